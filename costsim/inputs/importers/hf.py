"""Hugging Face config.json -> ModelSpec, one small function per model_type.

Each function reads only the fields that change cost. Multi-token-prediction modules, vision
towers and audio encoders are not part of the text model we cost and are left out (said in the
spec's ``source``).
"""

from __future__ import annotations

from typing import Any

from costsim.errors import CostsimError
from costsim.inputs.importers.config_fields import ConfigReader
from costsim.inputs.importers.hf_common import (
    Builder,
    _deepseek_moe,
    _dense_ffn,
    _heads,
    _mla_fields,
    _spec,
    _text_config,
)
from costsim.inputs.importers.hf_hybrid import _jamba, _kimi_linear, _mamba2, _minimax, _nemotron_h, _qwen3_next
from costsim.spec.model import (
    ChunkedAttention,
    DenseAttention,
    DenseFFN,
    DSAttention,
    Layer,
    MLAttention,
    ModelSpec,
    MoEFFN,
    SlidingAttention,
)


def _llama_like(c: ConfigReader, name: str) -> ModelSpec:
    mt = c.data.get("model_type")
    d = c.int("hidden_size")
    n_layers = c.int("num_hidden_layers")
    qkv_bias = mt == "qwen2" or c.bool("attention_bias", False)
    common = dict(**_heads(c), qkv_bias=qkv_bias, o_bias=c.bool("attention_bias", False) and mt != "qwen2",
                  qk_norm="rms" if mt in ("qwen3", "qwen3_moe") else "none")
    window = c.optional_int("sliding_window")
    use_window = window is not None and mt in ("mistral", "mixtral")
    if mt == "qwen2" and c.bool("use_sliding_window", False):
        raise CostsimError(f"{c.where}: use_sliding_window=true for qwen2 is not supported; set it to false")
    mixer = SlidingAttention(window=window, **common) if use_window else DenseAttention(**common)

    def ffn_for(i: int):
        if mt == "mixtral":
            return MoEFFN(num_experts=c.int("num_local_experts"), top_k=c.int("num_experts_per_tok"),
                          expert_intermediate_size=c.int("intermediate_size"))
        if mt == "qwen3_moe":
            step = c.int("decoder_sparse_step", 1)
            dense_only = set(c.list("mlp_only_layers", []))
            if i not in dense_only and (i + 1) % step == 0:
                return MoEFFN(num_experts=c.int("num_experts"), top_k=c.int("num_experts_per_tok"),
                              expert_intermediate_size=c.int("moe_intermediate_size"))
        return _dense_ffn(c)

    layers = [Layer(mixer=mixer, ffn=ffn_for(i), norm_params=2 * d) for i in range(n_layers)]
    return _spec(c, name, layers)


def _deepseek(c: ConfigReader, name: str) -> ModelSpec:
    d = c.int("hidden_size")
    if c.has("index_topk"):
        mixer = DSAttention(**_mla_fields(c), index_n_heads=c.int("index_n_heads"),
                            index_head_dim=c.int("index_head_dim"), index_topk=c.int("index_topk"))
    else:
        mixer = MLAttention(**_mla_fields(c))
    layers = [Layer(mixer=mixer, ffn=_deepseek_moe(c, i), norm_params=2 * d)
              for i in range(c.int("num_hidden_layers"))]
    return _spec(c, name, layers, note="multi-token-prediction modules not counted")


def _minimax_m2(c: ConfigReader, name: str) -> ModelSpec:
    d = c.int("hidden_size")
    heads = _heads(c)
    attn = DenseAttention(**heads)
    moe = MoEFFN(num_experts=c.int("num_local_experts"), top_k=c.int("num_experts_per_tok"),
                 expert_intermediate_size=c.int("intermediate_size"),
                 router_bias=c.bool("use_routing_bias", False))
    # q/k RMSNorm over all heads at once ("per_layer"): weights n_h*h and n_kv*h, counted as norms
    qk_norm = (heads["num_heads"] + heads["num_kv_heads"]) * heads["head_dim"] if c.bool("use_qk_norm", False) else 0
    layers = [Layer(mixer=attn, ffn=moe, norm_params=2 * d + qk_norm) for _ in range(c.int("num_hidden_layers"))]
    return _spec(c, name, layers, note="multi-token-prediction modules not counted")


def _gemma3(c: ConfigReader, name: str) -> ModelSpec:
    t = _text_config(c)
    d = t.int("hidden_size")
    heads = _heads(t)
    n_layers = t.int("num_hidden_layers")
    if t.has("layer_types"):
        kinds = t.list("layer_types")
    else:
        pattern = t.int("sliding_window_pattern", 6)
        kinds = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n_layers)]
    local = SlidingAttention(window=t.int("sliding_window"), qk_norm="rms", **heads)
    full = DenseAttention(qk_norm="rms", **heads)
    ffn = DenseFFN(intermediate_size=t.int("intermediate_size"), activation="geglu")
    layers = [Layer(mixer=full if k == "full_attention" else local, ffn=ffn, norm_params=4 * d) for k in kinds]
    tie = c.bool("tie_word_embeddings", t.bool("tie_word_embeddings", True))
    spec = _spec(t, name, layers, tie_default=True, vocab=t.int("vocab_size", 262208),
                 note="text model only; vision tower not counted" if t is not c else "")
    return spec.model_copy(update={"tie_embeddings": tie})


def _gpt_oss(c: ConfigReader, name: str) -> ModelSpec:
    d = c.int("hidden_size")
    heads = _heads(c)
    n_layers = c.int("num_hidden_layers")
    kinds = c.list("layer_types") if c.has("layer_types") else [
        "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)]
    bias = c.bool("attention_bias", True)
    local = SlidingAttention(window=c.int("sliding_window"), qkv_bias=bias, o_bias=bias, sinks=True, **heads)
    full = DenseAttention(qkv_bias=bias, o_bias=bias, sinks=True, **heads)
    moe = MoEFFN(num_experts=c.int("num_local_experts"),
                 top_k=c.int("num_experts_per_tok", c.data.get("experts_per_token")),
                 expert_intermediate_size=c.int("intermediate_size"), expert_bias=True, router_bias=True)
    layers = [Layer(mixer=full if k == "full_attention" else local, ffn=moe, norm_params=2 * d) for k in kinds]
    return _spec(c, name, layers)


def _llama4(c: ConfigReader, name: str) -> ModelSpec:
    t = _text_config(c)
    d = t.int("hidden_size")
    heads = _heads(t)
    n_layers = t.int("num_hidden_layers")
    chunk = t.int("attention_chunk_size")
    qk = "l2" if t.bool("use_qk_norm", True) else "none"
    if t.has("no_rope_layers"):
        rope_layers = t.list("no_rope_layers")  # 1 = uses rope (chunked local), 0 = NoPE global
        is_global = [flag == 0 for flag in rope_layers]
    else:
        is_global = [(i + 1) % 4 == 0 for i in range(n_layers)]
    local = ChunkedAttention(chunk=chunk, qk_norm=qk, **heads)
    full = DenseAttention(**heads)
    step = t.int("interleave_moe_layer_step", 1)
    moe_layers = set(t.list("moe_layers", [])) or {i for i in range(n_layers) if (i + 1) % step == 0}
    f = t.int("intermediate_size")
    moe = MoEFFN(num_experts=t.int("num_local_experts"), top_k=t.int("num_experts_per_tok"),
                 expert_intermediate_size=f, shared_intermediate_size=f)
    dense = DenseFFN(intermediate_size=t.int("intermediate_size_mlp"))
    layers = [Layer(mixer=full if is_global[i] else local, ffn=moe if i in moe_layers else dense,
                    norm_params=2 * d) for i in range(n_layers)]
    return _spec(t, name, layers, note="text model only; vision encoder not counted" if t is not c else "")


BUILDERS: dict[str, Builder] = {
    "llama": _llama_like,
    "mistral": _llama_like,
    "mixtral": _llama_like,
    "qwen2": _llama_like,
    "qwen3": _llama_like,
    "qwen3_moe": _llama_like,
    "qwen3_next": _qwen3_next,
    "deepseek_v2": _deepseek,  # same fields as V3 (MLA, MoE with shared experts)
    "deepseek_v3": _deepseek,
    "deepseek_v32": _deepseek,
    "kimi_linear": _kimi_linear,
    "minimax": _minimax,
    "minimax_text_01": _minimax,
    "minimax_m1": _minimax,
    "minimax_m2": _minimax_m2,
    "gemma3": _gemma3,
    "gemma3_text": _gemma3,
    "gpt_oss": _gpt_oss,
    "llama4": _llama4,
    "llama4_text": _llama4,
    "mamba2": _mamba2,
    "nemotron_h": _nemotron_h,
    "jamba": _jamba,
}


def from_hf_config(data: dict[str, Any], name: str, where: str = "config.json") -> ModelSpec:
    if not isinstance(data, dict):
        raise CostsimError(f"{where}: expected a JSON object at the top level")
    c = ConfigReader(data, where)
    model_type = data.get("model_type")
    if model_type is None and "d_model" in data and "n_layer" in data:
        model_type = "mamba2"  # state-spaces checkpoints carry no model_type
    if model_type is None:
        raise CostsimError(f"{where}: field 'model_type' is missing; supported: {', '.join(sorted(BUILDERS))}")
    builder = BUILDERS.get(model_type)
    if builder is None:
        raise CostsimError(
            f"{where}: model_type '{model_type}' is not supported; supported: {', '.join(sorted(BUILDERS))}"
        )
    return builder(c, name)
