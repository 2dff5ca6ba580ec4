"""HardwareProfile: one accelerator (per chip), validated from ``hardware_profiles/<name>.toml``.

Every number is a datasheet or measured value with its source in ``sources`` (field -> "where;
date"). Peak FLOP/s are dense (a vendor sheet's 2:4-sparse figures are halved before they get
here). Efficiencies say what fraction of a peak real kernels reach, as a function of work size;
defaults come from published achieved figures until `costsim calibrate` fits them to measurements.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

Fraction = float


class Efficiency(BaseModel):
    """Achieved fraction of peak, per kernel class. A curve f(x) = max * x / (x + half) saturates
    at ``max`` and reaches half of it at ``half`` (bytes moved, or rows of a GEMM)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    memory_max: Fraction = Field(0.90, gt=0, le=1, description="large streaming reads/copies, of datasheet BW")
    memory_half_bytes: PositiveFloat = Field(16e6, description="bytes per kernel at which half of memory_max")
    matmul_max: Fraction = Field(0.75, gt=0, le=1, description="large dense GEMM, of dense peak")
    matmul_half_rows: PositiveFloat = Field(128, description="GEMM rows (tokens) at which half of matmul_max")
    matmul_latency_s: float = Field(0.0, ge=0, description="fixed time of one GEMM kernel beyond its roofline "
                                    "(setup, pipeline fill, epilogue); dominates GEMMs of a few MB")
    matmul_half_k: float = Field(0.0, ge=0, description="GEMM reduction depth K at which an output tile's "
                                 "mainloop takes half its time (prologue and epilogue per tile): compute runs "
                                 "at K / (K + matmul_half_k) of the curve; 0 = no dependence on K")
    matmul_roofline_exponent: float = Field(0.0, ge=0, description="GEMM time = (compute^a + memory^a)^(1/a): "
                                            "near the ridge point a GEMM's operand and output traffic overlap its "
                                            "math imperfectly; 0 = the plain max(compute, memory)")
    attention_max: Fraction = Field(0.55, gt=0, le=1, description="prefill attention kernels, of dense peak")
    attention_half_pairs: PositiveFloat = Field(2e6, description="(query,key) pairs per head at half")
    scan_max: Fraction = Field(0.25, gt=0, le=1, description="chunked linear/delta/SSD scans, of dense peak")
    scan_half_flops: PositiveFloat = Field(1e8, description="scan FLOPs per kernel at which half of scan_max")
    vector_max: Fraction = Field(0.60, gt=0, le=1, description="elementwise and state-update work, of vector peak")
    elementwise_latency_s: float = Field(
        0.7e-6, ge=0, description="fixed time of one small elementwise kernel (norm, rotary, activation) beyond an "
        "empty kernel's launch: about one dependent HBM round trip; its bytes then stream at memory_max")
    state_update_max: Fraction | None = Field(
        None, gt=0, le=1, description="recurrent state updates in decode (linear / delta / SSM), of datasheet BW; "
        "unset: the memory curve above")
    state_update_half_bytes: PositiveFloat | None = Field(
        None, description="bytes per state-update kernel at which half of state_update_max; unset: memory_half_bytes")
    splitkv_fixed_s: float = Field(0.0, ge=0, description="split-KV decode (FlashAttention-2's, at few sequence "
                                   "x KV-head pairs): fixed time of the split kernel and its combine kernel")
    splitkv_per_split_s: float = Field(0.0, ge=0, description="split-KV decode: time per split the combine "
                                       "kernel reduces")
    splitkv_per_block_s: float = Field(0.0, ge=0, description="split-KV decode: time one CTA takes per key block "
                                       "it streams (per wave); with the two above a floor under the roofline "
                                       "time, 0 = none")
    kernel_overhead_s: float = Field(4e-6, ge=0, description="launch + sync per kernel outside CUDA graphs")
    graph_overhead_s: float = Field(1e-6, ge=0, description="per kernel inside a CUDA graph (decode)")
    published_time_scale: PositiveFloat = Field(
        1.0, description="measured serving step time over the kernel model's on this device, fitted by `costsim "
        "calibrate --published` on published production records; multiplies every kernel of a step; 1 = not fitted")
    published_step_s: float = Field(
        0.0, ge=0, description="time per engine step on this device beyond the kernel model and the engine's own "
        "CPU time (driver, host, scheduler on this device family), fitted with published_time_scale; 0 = not fitted")
    published_step_s_by_engine: dict[str, float] = Field(
        default_factory=dict, description="published_step_s per engine where the fit tells engines apart "
        "(an engine not listed takes published_step_s)")
    implementations: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="per kernel implementation, keyed '<source>/<op>' (e.g. 'fla/linear_prefill'): fitted "
                    "values that replace the ones above for that implementation")

    def for_state_updates(self) -> Efficiency:
        """The memory curve recurrent state-update kernels follow (their own fit where calibrated)."""
        update = {}
        if self.state_update_max is not None:
            update["memory_max"] = self.state_update_max
        if self.state_update_half_bytes is not None:
            update["memory_half_bytes"] = self.state_update_half_bytes
        return self.model_copy(update=update) if update else self

    def for_source(self, source: str | None) -> Efficiency:
        """The efficiencies of one implementation: its fitted overrides on top of the defaults."""
        overrides = self.implementations.get(source or "", {})
        return self.model_copy(update=overrides) if overrides else self


class Calibration(BaseModel):
    """What a profile's timing rests on, and how far its predictions are from evidence it was not fitted on."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    status: Literal["measured", "published", "datasheet"] = Field(
        "datasheet", description="measured: fitted on costsim's own microbenchmark of this device; published: "
        "fitted on public production records; datasheet: peaks only, efficiencies borrowed")
    records: int = Field(0, ge=0, description="evidence records behind the fit and the band")
    sources: int = Field(0, ge=0, description="distinct sources among them")
    error_band: Fraction | None = Field(None, description="median |error| on records the fit did not see "
                                        "(leave-one-source-out for published fits); None: no such evidence")
    evidence: str = Field("", description="which records, and which held-out split the band comes from")

    def label(self) -> str:
        """'±12% (published, 41 records from 3 sources)' or 'uncalibrated: datasheet peaks only'."""
        if self.error_band is None:
            if self.status == "datasheet":
                return "uncalibrated: datasheet peaks only"
            return f"{self.status}, no held-out error yet"
        return f"±{self.error_band:.0%} ({self.status}, {self.records} records from {self.sources} sources)"


class HardwareProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    display_name: str
    vendor: Literal["nvidia", "amd", "google", "intel", "aws", "other"]
    kind: Literal["gpu", "tpu", "accelerator"] = "gpu"
    dense_tflops: dict[str, PositiveFloat] = Field(description="dense peak per dtype: fp32, tf32, bf16, fp8, fp4...")
    vector_tflops: PositiveFloat = Field(description="non-matrix fp32 peak (CUDA cores / vector units)")
    memory_gb: PositiveFloat = Field(description="device memory as the datasheet states it (vendors' HBM figures "
                                     "are binary: an '80 GB' H100 has 80 GiB, of which programs see 81,559 MiB)")
    memory_capacity_bytes: PositiveFloat | None = Field(
        None, description="bytes a program sees as the device's total (nvidia-smi's MiB x 2^20, or "
        "torch.cuda.get_device_properties().total_memory on a measured device); unset: memory_gb read as GiB")
    hbm_bandwidth_tb_s: PositiveFloat
    on_chip_mb: float = Field(0.0, ge=0, description="L2 / SRAM / VMEM, 10^6 bytes")
    compute_units: PositiveInt | None = Field(
        None, description="streaming multiprocessors (NVIDIA) or compute units (AMD); kernels that size their "
        "grid to the chip (FlashAttention-2's split-KV switch, costsim/families/kernel_tiles.py) need it")
    scale_up_gb_s: float = Field(0.0, ge=0, description="scale-up link bandwidth per chip, bidirectional")
    scale_up_domain: PositiveInt = 1
    scale_out_gb_s: float = Field(0.0, ge=0, description="scale-out network per chip")
    host_link_gb_s: float = Field(50.0, gt=0, description="device <-> host memory, per direction: PCIe Gen5 x16 "
                                  "(64 GB/s raw, ~50 achieved) unless the profile says otherwise (NVLink-C2C)")
    ssd_gb_s: float = Field(6.0, gt=0, description="local NVMe read bandwidth per device for offloaded caches")
    tdp_w: float = Field(0.0, ge=0)
    usd_per_hour: PositiveFloat = Field(description="default rental price per accelerator-hour")
    price_date: str
    efficiency: Efficiency = Efficiency()
    calibration: Calibration = Calibration()
    sources: dict[str, str] = Field(default_factory=dict, description="field -> source; date")

    @model_validator(mode="after")
    def _has_bf16(self) -> HardwareProfile:
        if "bf16" not in self.dense_tflops and "fp16" not in self.dense_tflops:
            raise ValueError("dense_tflops needs a bf16 (or fp16) entry")
        return self

    def peak_flops(self, dtype: str) -> float:
        """Dense matrix FLOP/s for a dtype; falls back to the nearest wider type the chip has."""
        for candidate in _FALLBACK.get(dtype, (dtype,)):
            if candidate in self.dense_tflops:
                return self.dense_tflops[candidate] * 1e12
        return self.dense_tflops.get("bf16", self.dense_tflops.get("fp16", 0.0)) * 1e12

    @property
    def memory_bytes(self) -> float:
        """Device memory in bytes as programs see it: the measured or reported total where the profile has
        one, else the datasheet figure read as GiB (what HBM stacks are built in)."""
        if self.memory_capacity_bytes is not None:
            return self.memory_capacity_bytes
        return self.memory_gb * 2.0**30

    @property
    def bandwidth_bytes_s(self) -> float:
        return self.hbm_bandwidth_tb_s * 1e12

    def evidence_fields(self) -> dict[str, object]:
        """What every answer on this device carries: its calibration and error band (docs/hardware.md)."""
        return {"calibration": {**self.calibration.model_dump(), "label": self.calibration.label()},
                "error_band": self.calibration.error_band}


# A chip without units for a narrow float runs it at the next wider float's rate (A100 fp8 -> bf16:
# weights are dequantised); integer units never stand in for float ones. FP4 weights on a chip without
# FP4 units (Hopper) run as weight-only quantisation with bf16 math (MXFP4 gpt-oss on an H100 in vLLM's
# Triton / Marlin kernels), not at the fp8 rate: there is no fp4 -> fp8 path in the engines.
_FALLBACK = {
    "fp4": ("fp4", "bf16"),
    "nvfp4": ("nvfp4", "fp4", "bf16"),  # both block-scaled formats run at the chip's FP4 tensor rate
    "mxfp4": ("mxfp4", "fp4", "bf16"),
    "int4": ("int4", "int8", "bf16"),
    "fp8": ("fp8", "bf16"),
    "int8": ("int8", "bf16"),
    "bf16": ("bf16", "fp16"),
    "fp16": ("fp16", "bf16"),
    "fp32": ("fp32", "tf32"),
    "tf32": ("tf32", "fp32"),
}
