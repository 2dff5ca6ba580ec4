"""ModelSpec: an ordered list of layers, each an attention *mixer* and an *FFN*.

One pydantic model per attention family, discriminated by ``family``; FFNs discriminated by
``kind``. Hybrids are simply lists with mixed mixers. Dtypes are not here: they are deployment
choices (see ``costsim.spec.dtypes.Precision``).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from costsim.spec.bounds import (
    MAX_LAYERS,
    Experts,
    HeadDim,
    Heads,
    Hidden,
    Kernel,
    NormParams,
    State,
    Tokens,
    Vocab,
    Width,
    WidthOrZero,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _SoftmaxHeads(_Strict):
    num_heads: Heads
    num_kv_heads: Heads
    head_dim: HeadDim
    qkv_bias: bool = False
    o_bias: bool = False
    output_gate: bool = Field(False, description="Qwen3-Next: q_proj also emits a sigmoid gate per output element")
    qk_norm: Literal["none", "rms", "l2"] = Field("none", description="rms has head_dim weights for q and k; l2 none")
    sinks: bool = Field(False, description="GPT-OSS: one learned logit per head, no KV")

    @model_validator(mode="after")
    def _groups_divide(self) -> _SoftmaxHeads:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
            )
        return self


class DenseAttention(_SoftmaxHeads):
    """Full causal softmax attention: MHA (kv = q heads), GQA, MQA (kv = 1)."""

    family: Literal["dense"] = "dense"


class SlidingAttention(_SoftmaxHeads):
    """Each query attends the ``window`` most recent tokens, itself included (Mistral, Gemma 3 local,
    GPT-OSS even layers)."""

    family: Literal["sliding"] = "sliding"
    window: Tokens


class ChunkedAttention(_SoftmaxHeads):
    """Query t attends [C*floor(t/C), t] (Llama 4 local layers)."""

    family: Literal["chunked"] = "chunked"
    chunk: Tokens


class _MLAFields(_Strict):
    num_heads: Heads
    q_lora_rank: Width | None = None
    kv_lora_rank: Width
    qk_nope_head_dim: HeadDim
    qk_rope_head_dim: HeadDim
    v_head_dim: HeadDim


class MLAttention(_MLAFields):
    """DeepSeek multi-head latent attention: caches one latent (kv_lora_rank) plus one shared rope key
    per token. Prefill runs in whichever of the expanded (MHA) and absorbed (MQA) forms needs fewer
    FLOPs (expanded for a fresh prompt); decode always runs absorbed."""

    family: Literal["mla"] = "mla"


class DSAttention(_MLAFields):
    """DeepSeek Sparse Attention (V3.2): a lightning indexer scores every past token with FP8 keys,
    then MLA attends only the top-k (form chosen as for MLA; absorbed in decode)."""

    family: Literal["dsa"] = "dsa"
    index_n_heads: Heads
    index_head_dim: HeadDim
    index_topk: Tokens


class NSAttention(_SoftmaxHeads):
    """Native Sparse Attention: compressed, selected and sliding-window branches over a GQA cache."""

    family: Literal["nsa"] = "nsa"
    compress_block: Tokens = 32
    compress_stride: Tokens = 16
    select_block: Tokens = 64
    select_count: Tokens = 16
    window: Tokens = 512


class LinearAttention(_Strict):
    """Lightning / linear attention with decay (MiniMax-01/M1): state d_k x d_v per head."""

    family: Literal["linear"] = "linear"
    num_heads: Heads
    head_dim: HeadDim
    chunk_size: Tokens = 256
    output_gate: bool = True


class GatedDeltaNet(_Strict):
    """Gated delta rule: Gated DeltaNet (scalar decay per head; Qwen3-Next) or KDA (per-channel decay;
    Kimi Linear). Key heads may be fewer than value heads; the state follows the value heads."""

    family: Literal["gated_delta"] = "gated_delta"
    variant: Literal["gdn", "kda"] = "gdn"
    num_k_heads: Heads
    num_v_heads: Heads
    head_k_dim: HeadDim
    head_v_dim: HeadDim
    conv_kernel: Kernel = 4
    chunk_size: Tokens = 64
    gate_low_rank: WidthOrZero = Field(0, description="KDA: rank of the decay and output-gate projections "
                                     "(0 = head_v_dim, as in Kimi Linear)")

    @model_validator(mode="after")
    def _heads_divide(self) -> GatedDeltaNet:
        if self.num_v_heads % self.num_k_heads:
            raise ValueError(
                f"num_v_heads ({self.num_v_heads}) must be a multiple of num_k_heads ({self.num_k_heads})"
            )
        return self


class Mamba2Mixer(_Strict):
    """Mamba-2 (SSD): H heads of P channels, state N per channel shared by G groups of B/C."""

    family: Literal["mamba2"] = "mamba2"
    num_heads: Heads
    head_dim: HeadDim
    d_state: State
    n_groups: Heads = 1
    conv_kernel: Kernel = 4
    chunk_size: Tokens = 256
    in_proj_bias: bool = False
    out_proj_bias: bool = False
    conv_bias: bool = True

    @property
    def d_inner(self) -> int:
        return self.num_heads * self.head_dim


class MambaMixer(_Strict):
    """Mamba-1 selective scan (Jamba): state d_state per inner channel."""

    family: Literal["mamba"] = "mamba"
    d_inner: Width
    d_state: State
    dt_rank: Width
    conv_kernel: Kernel = 4
    conv_bias: bool = True
    in_out_bias: bool = False
    inner_layernorms: bool = Field(False, description="Jamba: RMSNorms on dt, B and C")


Mixer = Annotated[
    DenseAttention
    | SlidingAttention
    | ChunkedAttention
    | MLAttention
    | DSAttention
    | NSAttention
    | LinearAttention
    | GatedDeltaNet
    | Mamba2Mixer
    | MambaMixer,
    Field(discriminator="family"),
]

SOFTMAX_FAMILIES = ("dense", "sliding", "chunked", "mla", "dsa", "nsa")
RECURRENT_FAMILIES = ("linear", "gated_delta", "mamba2", "mamba")

Activation = Literal["swiglu", "geglu", "gelu", "relu2", "relu", "silu"]
GATED_ACTIVATIONS = ("swiglu", "geglu")


class DenseFFN(_Strict):
    kind: Literal["dense"] = "dense"
    intermediate_size: Width
    activation: Activation = "swiglu"
    bias: bool = False


class MoEFFN(_Strict):
    """Routed experts (top-k of E) plus optional always-on shared experts."""

    kind: Literal["moe"] = "moe"
    num_experts: Experts
    top_k: Experts
    expert_intermediate_size: Width
    shared_intermediate_size: WidthOrZero = Field(0, description="total width of the shared expert(s)")
    activation: Activation = "swiglu"
    expert_bias: bool = Field(False, description="GPT-OSS: biases on expert projections")
    router_bias: bool = Field(False, description="a bias (or DeepSeek's score-correction bias) per expert")
    shared_expert_gate: bool = Field(False, description="Qwen3-Next: sigmoid gate d -> 1 on the shared expert")

    @model_validator(mode="after")
    def _topk_fits(self) -> MoEFFN:
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k ({self.top_k}) cannot exceed num_experts ({self.num_experts})")
        return self


FFN = Annotated[DenseFFN | MoEFFN, Field(discriminator="kind")]


class Layer(_Strict):
    mixer: Mixer | None = None
    ffn: FFN | None = None
    norm_params: NormParams = Field(0, description="weights of this layer's norms (e.g. 2 x hidden)")

    @model_validator(mode="after")
    def _not_empty(self) -> Layer:
        if self.mixer is None and self.ffn is None:
            raise ValueError("a layer needs a mixer, an ffn, or both")
        return self


PATTERN_LETTERS = {
    "dense": "A", "sliding": "S", "chunked": "C", "mla": "M", "dsa": "D", "nsa": "N",
    "linear": "L", "gated_delta": "G", "mamba2": "2", "mamba": "1",
}


class ModelSpec(_Strict):
    name: str
    hidden_size: Hidden
    vocab_size: Vocab
    tie_embeddings: bool = False
    layers: list[Layer]
    final_norm_params: NormParams = 0
    max_context: Tokens | None = None
    source: str = ""

    @field_validator("layers", mode="before")
    @classmethod
    def _layer_count(cls, layers: object) -> object:
        # counted before each layer is validated: 10^6 layers are refused without building one
        if isinstance(layers, list | tuple) and not 1 <= len(layers) <= MAX_LAYERS:
            raise ValueError(f"must have from 1 to {MAX_LAYERS:,} layers, got {len(layers):,}")
        return layers

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def mixer_groups(self) -> list[tuple[Mixer, int]]:
        """Distinct mixers with how many layers use each; identical layers are costed once."""
        return _groups(self.layers)[0]

    @property
    def ffn_groups(self) -> list[tuple[FFN, int]]:
        return _groups(self.layers)[1]

    def layer_pattern(self) -> str:
        """One letter per layer's mixer, e.g. 'GGGA...' ('-' for an FFN-only layer); see PATTERN_LETTERS."""
        return "".join(PATTERN_LETTERS[lay.mixer.family] if lay.mixer else "-" for lay in self.layers)

    def layer_mix(self) -> str:
        """'36 gated_delta + 12 dense': layers per mixer family (ffn_only for FFN-only blocks)."""
        counts: dict[str, int] = {}
        for layer in self.layers:
            kind = layer.mixer.family if layer.mixer else "ffn_only"
            counts[kind] = counts.get(kind, 0) + 1
        return " + ".join(f"{n} {kind}" for kind, n in counts.items())


# Grouping hashes every layer's pydantic model, which costs more than the numpy work of a small
# sweep; remember it per layers list. The list itself is kept in the cache so its id is never reused
# while the entry lives (model_copy(update={"layers": ...}) makes a new list, hence a new entry).
_GROUP_CACHE: OrderedDict[int, tuple[list, tuple[list, list]]] = OrderedDict()
_GROUP_CACHE_SIZE = 256


def _groups(layers: list[Layer]) -> tuple[list, list]:
    hit = _GROUP_CACHE.get(id(layers))
    if hit is not None and hit[0] is layers:
        _GROUP_CACHE.move_to_end(id(layers))
        return hit[1]
    groups = (list(Counter(lay.mixer for lay in layers if lay.mixer is not None).items()),
              list(Counter(lay.ffn for lay in layers if lay.ffn is not None).items()))
    _GROUP_CACHE[id(layers)] = (layers, groups)
    if len(_GROUP_CACHE) > _GROUP_CACHE_SIZE:
        _GROUP_CACHE.popitem(last=False)
    return groups
