"""Hugging Face config.json -> ModelSpec, one small function per model_type.

Each function reads only the fields that change cost. Multi-token-prediction modules, vision
towers and audio encoders are not part of the text model we cost and are left out (said in the
spec's ``source``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from costsim.errors import CostsimError
from costsim.inputs.importers.config_fields import ConfigReader
from costsim.spec.model import (
    ChunkedAttention,
    DenseAttention,
    DenseFFN,
    DSAttention,
    GatedDeltaNet,
    Layer,
    LinearAttention,
    Mamba2Mixer,
    MambaMixer,
    MLAttention,
    ModelSpec,
    MoEFFN,
    SlidingAttention,
)

Builder = Callable[[ConfigReader, str], ModelSpec]


def _heads(c: ConfigReader) -> dict[str, int]:
    d = c.int("hidden_size")
    heads = c.int("num_attention_heads")
    return {
        "num_heads": heads,
        "num_kv_heads": c.int("num_key_value_heads", heads),
        "head_dim": c.int("head_dim", d // heads),
    }


def _spec(c: ConfigReader, name: str, layers: list[Layer], *, tie_default: bool = False, vocab: int | None = None,
          note: str = "") -> ModelSpec:
    return ModelSpec(
        name=name,
        hidden_size=c.int("hidden_size"),
        vocab_size=vocab if vocab is not None else c.int("vocab_size"),
        tie_embeddings=c.bool("tie_word_embeddings", tie_default),
        layers=layers,
        final_norm_params=c.int("hidden_size"),
        max_context=c.optional_int("max_position_embeddings"),
        source=f"HF config.json (model_type {c.data.get('model_type')}){'; ' + note if note else ''}",
    )


def _dense_ffn(c: ConfigReader, key: str = "intermediate_size", activation: str = "swiglu") -> DenseFFN:
    return DenseFFN(intermediate_size=c.int(key), activation=activation)


# --- llama family: llama, mistral, qwen2, qwen3, mixtral, qwen3_moe ------------------------------


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


# --- DeepSeek V3 / V3.2 (MLA, DSA) and Kimi Linear (KDA + MLA) ------------------------------------


def _mla_fields(c: ConfigReader) -> dict[str, Any]:
    return {
        "num_heads": c.int("num_attention_heads"),
        "q_lora_rank": c.optional_int("q_lora_rank"),
        "kv_lora_rank": c.int("kv_lora_rank"),
        "qk_nope_head_dim": c.int("qk_nope_head_dim"),
        "qk_rope_head_dim": c.int("qk_rope_head_dim"),
        "v_head_dim": c.int("v_head_dim"),
    }


def _deepseek_moe(c: ConfigReader, i: int, experts_key: str = "n_routed_experts",
                  topk_key: str = "num_experts_per_tok") -> DenseFFN | MoEFFN:
    first_dense = c.int("first_k_dense_replace", 0, minimum=0)
    freq = c.int("moe_layer_freq", 1)
    if i < first_dense or i % freq:
        return _dense_ffn(c)
    f = c.int("moe_intermediate_size")
    return MoEFFN(
        num_experts=c.int(experts_key),
        top_k=c.int(topk_key),
        expert_intermediate_size=f,
        # DeepSeek names it n_shared_experts, Kimi Linear num_shared_experts
        shared_intermediate_size=c.int("n_shared_experts", c.data.get("num_shared_experts") or 0, minimum=0) * f,
        router_bias=c.str("topk_method", "noaux_tc") == "noaux_tc",
    )


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


def _kimi_linear(c: ConfigReader, name: str) -> ModelSpec:
    d = c.int("hidden_size")
    lin = c.sub("linear_attn_config")
    full_layers = {int(x) for x in lin.list("full_attn_layers")}  # 1-based in Kimi's config
    kda = GatedDeltaNet(
        variant="kda",
        num_k_heads=lin.int("num_heads"),
        num_v_heads=lin.int("num_heads"),
        head_k_dim=lin.int("head_dim"),
        head_v_dim=lin.int("head_dim"),
        conv_kernel=lin.int("short_conv_kernel_size", 4),
    )
    mla = MLAttention(**_mla_fields(c))
    layers = []
    for i in range(c.int("num_hidden_layers")):
        mixer = mla if (i + 1) in full_layers else kda
        layers.append(Layer(mixer=mixer, ffn=_deepseek_moe(c, i, "num_experts", "num_experts_per_token"),
                            norm_params=2 * d))
    return _spec(c, name, layers)


# --- Qwen3-Next (Gated DeltaNet 3:1) ---------------------------------------------------------------


def _qwen3_next(c: ConfigReader, name: str) -> ModelSpec:
    d = c.int("hidden_size")
    n_layers = c.int("num_hidden_layers")
    if c.has("layer_types"):
        kinds = c.list("layer_types")
    else:
        interval = c.int("full_attention_interval")
        kinds = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(n_layers)]
    attn = DenseAttention(**_heads(c), output_gate=True, qk_norm="rms", qkv_bias=c.bool("attention_bias", False))
    gdn = GatedDeltaNet(
        variant="gdn",
        num_k_heads=c.int("linear_num_key_heads"),
        num_v_heads=c.int("linear_num_value_heads"),
        head_k_dim=c.int("linear_key_head_dim"),
        head_v_dim=c.int("linear_value_head_dim"),
        conv_kernel=c.int("linear_conv_kernel_dim", 4),
    )
    moe = MoEFFN(num_experts=c.int("num_experts"), top_k=c.int("num_experts_per_tok"),
                 expert_intermediate_size=c.int("moe_intermediate_size"),
                 shared_intermediate_size=c.int("shared_expert_intermediate_size", 0, minimum=0),
                 shared_expert_gate=c.int("shared_expert_intermediate_size", 0, minimum=0) > 0)
    step = c.int("decoder_sparse_step", 1)
    dense_only = set(c.list("mlp_only_layers", []))
    layers = []
    for i, kind in enumerate(kinds):
        ffn = moe if (i not in dense_only and (i + 1) % step == 0) else _dense_ffn(c)
        layers.append(Layer(mixer=attn if kind == "full_attention" else gdn, ffn=ffn, norm_params=2 * d))
    return _spec(c, name, layers, note="multi-token-prediction layer not counted")


# --- MiniMax-Text-01 / M1 (lightning 7:1) and MiniMax-M2 -----------------------------------------


def _minimax(c: ConfigReader, name: str) -> ModelSpec:
    d = c.int("hidden_size")
    heads = _heads(c)
    softmax = DenseAttention(**heads)
    lightning = LinearAttention(num_heads=heads["num_heads"], head_dim=heads["head_dim"],
                                chunk_size=c.int("block_size", 256))
    types = c.list("attn_type_list")  # 0 = lightning, 1 = softmax
    moe = MoEFFN(num_experts=c.int("num_local_experts"), top_k=c.int("num_experts_per_tok"),
                 expert_intermediate_size=c.int("intermediate_size"))
    layers = [Layer(mixer=softmax if t == 1 else lightning, ffn=moe, norm_params=2 * d) for t in types]
    if len(layers) != c.int("num_hidden_layers"):
        raise CostsimError(f"{c.where}: attn_type_list has {len(layers)} entries but num_hidden_layers is "
                           f"{c.int('num_hidden_layers')}; make them agree")
    return _spec(c, name, layers)


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


# --- Gemma 3, GPT-OSS, Llama 4: local/global patterns ---------------------------------------------


def _text_config(c: ConfigReader) -> ConfigReader:
    return c.sub("text_config") if isinstance(c.data.get("text_config"), dict) else c


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


# --- Mamba2, Nemotron-H, Jamba ---------------------------------------------------------------------


def _pad_vocab(vocab: int, multiple: int) -> int:
    return -(-vocab // multiple) * multiple


def _mamba_ssm(c: ConfigReader, name: str) -> ModelSpec:
    """state-spaces/mamba_ssm MambaConfig: Mamba-1 or Mamba-2 layers, optional attention layers at
    attn_layer_idx and a gated MLP of width d_intermediate after every mixer (mamba_ssm defaults)."""
    d = c.int("d_model")
    ssm = c.sub("ssm_cfg") if c.has("ssm_cfg") else ConfigReader({}, c.where + " [ssm_cfg]")
    expand = ssm.int("expand", 2)
    kind = ssm.str("layer", "Mamba1")
    if kind == "Mamba2":
        head_dim = ssm.int("headdim", 64)
        mixer = Mamba2Mixer(num_heads=expand * d // head_dim, head_dim=head_dim, d_state=ssm.int("d_state", 128),
                            n_groups=ssm.int("ngroups", 1), conv_kernel=ssm.int("d_conv", 4),
                            chunk_size=ssm.int("chunk_size", 256), in_proj_bias=ssm.bool("bias", False),
                            out_proj_bias=ssm.bool("bias", False), conv_bias=ssm.bool("conv_bias", True))
    elif kind == "Mamba1":
        mixer = MambaMixer(d_inner=expand * d, d_state=ssm.int("d_state", 16), dt_rank=-(-d // 16),
                           conv_kernel=ssm.int("d_conv", 4), conv_bias=ssm.bool("conv_bias", True),
                           in_out_bias=ssm.bool("bias", False))
    else:
        raise CostsimError(f"{c.where}: ssm_cfg.layer '{kind}' is not supported; use Mamba1 or Mamba2")
    attn_layers = set(c.list("attn_layer_idx", []))
    attn = None
    if attn_layers:
        a = c.sub("attn_cfg")
        heads = a.int("num_heads")
        attn = DenseAttention(num_heads=heads, num_kv_heads=a.int("num_heads_kv", heads),
                              head_dim=a.int("head_dim", d // heads), qkv_bias=a.bool("qkv_proj_bias", True),
                              o_bias=a.bool("out_proj_bias", True))
    width = c.int("d_intermediate", 0, minimum=0)
    mlp = DenseFFN(intermediate_size=width) if width else None
    norms = 2 * d if mlp else d
    layers = [Layer(mixer=attn if i in attn_layers else mixer, ffn=mlp, norm_params=norms)
              for i in range(c.int("n_layer"))]
    vocab = _pad_vocab(c.int("vocab_size"), c.int("pad_vocab_size_multiple", 8))
    return ModelSpec(name=name, hidden_size=d, vocab_size=vocab, tie_embeddings=c.bool("tie_embeddings", True),
                     layers=layers, final_norm_params=d,
                     source="mamba_ssm config.json (vocab padded to pad_vocab_size_multiple)")


def _mamba2(c: ConfigReader, name: str) -> ModelSpec:
    if c.has("d_model"):
        return _mamba_ssm(c, name)
    d = c.int("hidden_size")
    mixer = Mamba2Mixer(num_heads=c.int("num_heads"), head_dim=c.int("head_dim"), d_state=c.int("state_size"),
                        n_groups=c.int("n_groups", 1), conv_kernel=c.int("conv_kernel", 4),
                        chunk_size=c.int("chunk_size", 256), in_proj_bias=c.bool("use_bias", False),
                        out_proj_bias=c.bool("use_bias", False), conv_bias=c.bool("use_conv_bias", True))
    layers = [Layer(mixer=mixer, norm_params=d) for _ in range(c.int("num_hidden_layers"))]
    return _spec(c, name, layers)  # transformers' Mamba2Config defaults to untied embeddings


def _nemotron_h(c: ConfigReader, name: str) -> ModelSpec:
    d = c.int("hidden_size")
    pattern = c.str("hybrid_override_pattern")
    heads = _heads(c)
    attn = DenseAttention(**heads, qkv_bias=c.bool("attention_bias", False), o_bias=c.bool("attention_bias", False))
    mamba = Mamba2Mixer(num_heads=c.int("mamba_num_heads"), head_dim=c.int("mamba_head_dim"),
                        d_state=c.int("ssm_state_size"), n_groups=c.int("n_groups", 1),
                        conv_kernel=c.int("conv_kernel", 4), chunk_size=c.int("chunk_size", 256),
                        in_proj_bias=c.bool("use_bias", False), out_proj_bias=c.bool("use_bias", False),
                        conv_bias=c.bool("use_conv_bias", True))
    mlp = DenseFFN(intermediate_size=c.int("intermediate_size"), activation="relu2", bias=c.bool("mlp_bias", False))
    blocks = {"M": Layer(mixer=mamba, norm_params=d), "*": Layer(mixer=attn, norm_params=d),
              "-": Layer(ffn=mlp, norm_params=d)}
    unknown = sorted(set(pattern) - set(blocks))
    if unknown:
        raise CostsimError(f"{c.where}: hybrid_override_pattern has unknown block(s) {unknown}; use M, * or -")
    if len(pattern) != c.int("num_hidden_layers"):
        raise CostsimError(f"{c.where}: hybrid_override_pattern has {len(pattern)} blocks but num_hidden_layers "
                           f"is {c.int('num_hidden_layers')}; make them agree")
    return _spec(c, name, [blocks[ch] for ch in pattern])


def _jamba(c: ConfigReader, name: str) -> ModelSpec:
    d = c.int("hidden_size")
    heads = _heads(c)
    attn = DenseAttention(**heads)
    expand = c.int("mamba_expand", 2)
    d_inner = expand * d
    dt_rank = c.raw("mamba_dt_rank", "auto")
    mamba = MambaMixer(d_inner=d_inner, d_state=c.int("mamba_d_state", 16),
                       dt_rank=-(-d // 16) if dt_rank == "auto" else c.int("mamba_dt_rank"),
                       conv_kernel=c.int("mamba_d_conv", 4), conv_bias=c.bool("mamba_conv_bias", True),
                       in_out_bias=c.bool("mamba_proj_bias", False), inner_layernorms=True)
    a_period, a_offset = c.int("attn_layer_period"), c.int("attn_layer_offset", minimum=0)
    e_period, e_offset = c.int("expert_layer_period"), c.int("expert_layer_offset", minimum=0)
    moe = MoEFFN(num_experts=c.int("num_experts"), top_k=c.int("num_experts_per_tok"),
                 expert_intermediate_size=c.int("intermediate_size"))
    dense = _dense_ffn(c)
    layers = [
        Layer(mixer=attn if i % a_period == a_offset else mamba,
              ffn=moe if i % e_period == e_offset else dense, norm_params=2 * d)
        for i in range(c.int("num_hidden_layers"))
    ]
    return _spec(c, name, layers)


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
