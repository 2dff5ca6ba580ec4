"""Deployment choices: how a model is served, independent of what the model is."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from costsim.spec.bounds import Batch, Devices, Tokens
from costsim.spec.dtypes import DtypeName, Precision


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weights: DtypeName = "bf16"
    kv_cache: DtypeName = "bf16"
    state: DtypeName = "fp32"
    experts: DtypeName | None = Field(None, description="routed experts' weights where they differ from `weights` "
                                      "(gpt-oss ships MXFP4 experts beside bf16 attention)")
    devices: Devices = Field(1, description="single device for now; multi-device layouts come later")
    memory_reserve_fraction: float = Field(0.10, ge=0, lt=1, description="activations, runtime, fragmentation")
    prefill_chunk_tokens: Tokens = Field(8192, description="chunked prefill: tokens per forward step")
    max_batch: Batch | Literal["auto"] = "auto"
    cuda_graphs: bool = Field(True, description="decode steps replayed as graphs (lower launch overhead)")
    utilisation: float = Field(1.0, gt=0, le=1, description="share of paid device time doing useful work; "
                               "dollars per useful second are price / utilisation")

    @property
    def precision(self) -> Precision:
        return Precision(weights=self.weights, kv_cache=self.kv_cache, state=self.state, experts=self.experts)
