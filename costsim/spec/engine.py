"""EngineProfile: how a serving engine runs a model, validated from ``engine_profiles/<name>.toml``.

The third input beside the model and the hardware. It says which kernels a step launches (fused
projections and elementwise passes, or PyTorch's unfused ops), which attention kernel runs per phase
and which of costsim's fitted tables prices it, how the engine sizes its KV pool, what its scheduler
admits per step, what CPU time a step and a request cost beyond the GPU's, and how speculative
decoding changes the tokens per step. Every number carries its source in ``sources``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

FAMILIES = ("dense", "sliding", "chunked", "nsa", "mla", "dsa", "linear", "gated_delta", "mamba2", "mamba")
VENDORS = ("nvidia", "amd", "google", "intel", "aws", "other")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Kernels(_Strict):
    """The kernel list of one layer: how many launches each piece of work takes and what it streams."""

    fused_projections: bool = Field(True, description="projections that read the same input run as one GEMM "
                                    "(QKV; gate+up; MLA's q_a + kv_a); False: one GEMM per weight matrix")
    norm_kernels: PositiveInt = Field(1, description="launches per RMSNorm (with its residual add): 1 fused, "
                                      "about 8 in PyTorch eager (add, fp32 upcast, pow, mean, rsqrt, mul, cast, "
                                      "weight mul)")
    norm_traffic: PositiveFloat = Field(1.0, description="bytes a norm moves relative to the fused kernel's "
                                        "(eager re-reads and writes the row per op, some in fp32)")
    rope_kernels: PositiveInt = Field(1, description="launches per rotary embedding (eager rotate_half: slice, "
                                      "neg, cat, two muls, add, per q and k)")
    activation_kernels: PositiveInt = Field(1, description="launches per gated activation (1: SiLU-and-mul; "
                                            "eager: SiLU, then mul)")
    other_traffic: PositiveFloat = Field(1.0, description="bytes of the other elementwise passes relative to "
                                         "fused kernels")
    recurrent_pass_kernels: PositiveInt = Field(1, description="launches per elementwise pass of a recurrent "
                                                "layer (short conv, gates, gated norm): 1 fused; HF's torch code "
                                                "runs each as about 10 ops")
    recurrent_pass_traffic: PositiveFloat = Field(1.0, description="bytes those passes move relative to "
                                                  "fused kernels (HF's torch path: casts to fp32, strided "
                                                  "copies of transposed views, repeated heads; about 9x)")
    cuda_graphs: bool = Field(True, description="decode steps replayed as CUDA graphs (a graph node's gap per "
                                                "kernel) instead of launched from the host")
    max_graph_batch: PositiveInt = Field(512, description="largest decode batch captured as a graph; larger "
                                                          "batches launch from the host")
    host_per_kernel_s: NonNegativeFloat = Field(0.0, description="host time to issue one kernel outside a "
                                                "graph (Python dispatch in eager PyTorch); a step takes at "
                                                "least kernels x this")
    qk_norm_kernels: NonNegativeInt = Field(0, description="launches of the per-head q and k RMSNorms of "
                                            "attention with qk_norm = 'rms' beyond the rotary kernel they are "
                                            "fused into (0 fused; eager: two HF RMSNorms, about 16)")
    recurrent_prefill_kernels: PositiveInt = Field(1, description="launches of one chunked recurrent prefill "
                                                   "(fla's chunk_gated_delta_rule: about 9) where costsim "
                                                   "otherwise counts one")
    host_attention_call_s: NonNegativeFloat = Field(0.0, description="host time of one attention library call "
                                                    "(SDPA's backend dispatch) beyond its kernels' launches")
    host_recurrent_decode_call_s: NonNegativeFloat = Field(0.0, description="host time of one recurrent "
                                                           "decode call (fla's fused_recurrent Triton path) "
                                                           "beyond its kernels' launches")
    host_recurrent_prefill_call_s: NonNegativeFloat = Field(0.0, description="the same for one chunked "
                                                            "recurrent prefill call")
    elementwise_bandwidth: float = Field(1.0, gt=0.0, le=1.0, description="fraction of the device's "
                                         "streaming rate the elementwise kernels reach (1: fused, vectorised "
                                         "kernels; eager PyTorch's TensorIterator ops with fp32 temporaries "
                                         "and strided copies: about half, fitted on profiled steps)")


class Attention(_Strict):
    """The attention kernels per phase, and costsim's fitted table that prices each (an implementation
    key prefix of the hardware profile: 'torch-sdpa-cudnn', 'torch-sdpa-flash', 'flashmla', 'fla');
    a backend with no table of its own is priced with the named stand-in, reported as such."""

    decode: str = Field(description="softmax decode kernel the engine runs (e.g. flashattention-3, xqa)")
    prefill: str = Field(description="softmax prefill kernel")
    mla_decode: str = Field("flashmla", description="MLA decode kernel")
    decode_table: str | None = Field(None, description="fitted table that prices softmax decode")
    prefill_table: str | None = Field(None, description="fitted table that prices softmax prefill")
    mla_decode_table: str | None = Field("flashmla", description="fitted table that prices MLA decode")
    measured: list[str] = Field(default_factory=list, description="backends costsim has kernel records of "
                                "(their table is their own); the others are stand-ins")


class Memory(_Strict):
    """How the engine sizes its KV pool on one device of `capacity` bytes (the hardware profile's)."""

    rule: Literal["fraction_of_total", "fraction_of_free"] = Field(
        description="fraction_of_total: pool = capacity x fraction - weights - activations - runtime (vLLM's "
        "gpu_memory_utilization, SGLang's mem_fraction_static); fraction_of_free: pool = (capacity - weights - "
        "activations - runtime) x fraction (TensorRT-LLM's free_gpu_memory_fraction)")
    fraction: float = Field(gt=0, le=1)
    runtime_bytes: NonNegativeFloat = Field(0.0, description="CUDA context, cuBLAS/NCCL workspaces, graph "
                                            "pools that the rule leaves outside the fraction")
    activation_copies: NonNegativeFloat = Field(1.0, description="live activation tensors of the peak forward, "
                                                "in units of (tokens x (4 d + 2 FFN width)) elements")
    logits_copies: NonNegativeFloat = Field(2.0, description="fp32 logits of the sampler's batch held at the "
                                            "peak (logits and probabilities)")


class Scheduler(_Strict):
    max_num_seqs: PositiveInt = Field(description="most sequences running at once")
    max_batched_tokens: PositiveInt = Field(description="most new tokens per step (prefill chunks + decodes)")
    chunked_prefill: bool = Field(True, description="a prompt is split into chunks mixed with decodes; off: "
                                  "a prefill step runs alone and decodes wait")
    prefix_caching: bool = True
    continuous_batching: bool = Field(True, description="sequences join and leave the running batch every "
                                      "step; False: static batches that start and end together (HF generate)")
    reserve_full_context: bool = Field(False, description="a request is admitted only when the pool can hold "
                                       "its whole prompt + output (TensorRT-LLM's GUARANTEED_NO_EVICT); False: "
                                       "the pool holds the running batch at its average context (vLLM/SGLang "
                                       "admit while blocks are free and preempt when they run out)")


class Overheads(_Strict):
    """CPU time the GPU timeline does not hide, and the fixed path of a request."""

    step_s: NonNegativeFloat = Field(0.0, description="per engine step: scheduling, input preparation, "
                                     "sampling launch; not hidden by CUDA graphs")
    per_sequence_s: NonNegativeFloat = Field(0.0, description="per running sequence per step: sampling, "
                                             "detokenisation, output processing")
    overlapped: bool = Field(False, description="the engine prepares step n+1 while step n runs (async / "
                             "overlap scheduler): a step takes max(GPU, CPU) instead of their sum")
    ttft_floor_s: NonNegativeFloat = Field(0.0, description="per request: HTTP, tokenisation, the first "
                                           "scheduling pass, detokenising the first token")


class Speculation(_Strict):
    """A speculative decoding method: k draft tokens per step, verified in one forward of k + 1 tokens."""

    method: Literal["mtp", "eagle3", "draft"]
    draft_tokens: PositiveInt = Field(description="tokens drafted per step (k)")
    acceptance_length: PositiveFloat = Field(description="mean tokens emitted per verification step, the bonus "
                                             "token included (1 <= tau <= k + 1)")
    draft_layers: PositiveFloat = Field(1.0, description="decoder layers the drafter runs per drafted token, "
                                        "in units of the target's layers (MTP head / EAGLE-3: one)")
    draft_vocab: PositiveInt | None = Field(None, description="the drafter's LM-head width (EAGLE-3: 32,000); "
                                            "unset: the target's vocabulary")
    source: str = Field(description="where the acceptance length comes from, with its conditions")

    @model_validator(mode="after")
    def _tau_in_range(self) -> Speculation:
        if not 1.0 <= self.acceptance_length <= self.draft_tokens + 1:
            raise ValueError(f"acceptance_length {self.acceptance_length} must lie in [1, draft_tokens + 1 = "
                             f"{self.draft_tokens + 1}]")
        return self


class EngineProfile(_Strict):
    name: str
    display_name: str
    version: str = Field(description="the release the defaults below are read from")
    vendors: list[Literal["nvidia", "amd", "google", "intel", "aws", "other"]] = Field(
        description="accelerator vendors the engine runs on")
    families: list[str] = Field(description="mixer families the engine serves")
    kernels: Kernels = Kernels()
    attention: Attention
    memory: Memory
    scheduler: Scheduler
    overheads: Overheads = Overheads()
    speculation: dict[str, Speculation] = Field(default_factory=dict, description="named methods, chosen with "
                                                "--speculative")
    sources: dict[str, str] = Field(default_factory=dict, description="field -> source; date")

    @model_validator(mode="after")
    def _known_families(self) -> EngineProfile:
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"families: unknown {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
        return self
