"""Hugging Face configs of recurrent and hybrid models (Kimi Linear, Qwen3-Next, MiniMax lightning attention,
Mamba, Mamba-2, Nemotron-H, Jamba) -> ModelSpec; the shared readers are in hf_common.py."""

from __future__ import annotations

from costsim.errors import CostsimError
from costsim.inputs.importers.config_fields import ConfigReader
from costsim.inputs.importers.hf_common import _deepseek_moe, _dense_ffn, _heads, _mla_fields, _pad_vocab, _spec
from costsim.spec.model import (
    DenseAttention,
    DenseFFN,
    GatedDeltaNet,
    Layer,
    LinearAttention,
    Mamba2Mixer,
    MambaMixer,
    MLAttention,
    ModelSpec,
    MoEFFN,
)


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
