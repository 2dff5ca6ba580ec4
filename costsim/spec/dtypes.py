"""Storage types and their sizes. Dtypes are deployment choices, not model facts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

DtypeName = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4", "nvfp4", "mxfp4", "int4"]

# Block-scaled 4-bit formats store a scale beside every block of 4-bit E2M1 values: NVFP4 one FP8 (E4M3)
# byte per 16 values (4.5 bits a value; its per-tensor FP32 scale is negligible), OCP MXFP4 one E8M0
# byte per 32 (4.25 bits). "fp4" is the bare 4-bit element, scales not counted. FP8 with DeepSeek's
# 128 x 128 block scales adds one FP32 per 16,384 values (0.02%), left out. Sources: docs/methodology.md.
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "nvfp4": 0.5 + 1.0 / 16,
    "mxfp4": 0.5 + 1.0 / 32,
    "int4": 0.5,
}


def dtype_bytes(name: str) -> float:
    return DTYPE_BYTES[name]


class Precision(BaseModel):
    """Bytes per element of each kind of data a deployment stores.

    The recurrent state defaults to fp32 because the reference kernels (fla, MiniMax, mamba_ssm)
    accumulate it in fp32; serving engines often keep it in bf16 — pass ``state="bf16"`` then.
    The short-convolution state follows the activations, as in vLLM and mamba_ssm.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weights: DtypeName = "bf16"
    kv_cache: DtypeName = "bf16"
    state: DtypeName = "fp32"
    activations: DtypeName = "bf16"
    experts: DtypeName | None = None  # routed experts' weights where a checkpoint stores them apart (gpt-oss: mxfp4)

    @property
    def weight_bytes(self) -> float:
        return DTYPE_BYTES[self.weights]

    @property
    def expert_dtype(self) -> str:
        """The routed experts' weight type: `experts` where given, else `weights`."""
        return self.experts or self.weights

    @property
    def expert_weight_bytes(self) -> float:
        return DTYPE_BYTES[self.expert_dtype]

    @property
    def kv_bytes(self) -> float:
        return DTYPE_BYTES[self.kv_cache]

    @property
    def state_bytes(self) -> float:
        return DTYPE_BYTES[self.state]

    @property
    def act_bytes(self) -> float:
        return DTYPE_BYTES[self.activations]
