"""What every Hugging Face config reader shares: head counts, the spec's common fields, dense and
DeepSeek-style MoE FFNs, MLA's fields, multimodal text configs, vocabulary padding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from costsim.inputs.importers.config_fields import ConfigReader
from costsim.spec.model import (
    DenseFFN,
    Layer,
    ModelSpec,
    MoEFFN,
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


def _text_config(c: ConfigReader) -> ConfigReader:
    return c.sub("text_config") if isinstance(c.data.get("text_config"), dict) else c


def _pad_vocab(vocab: int, multiple: int) -> int:
    return -(-vocab // multiple) * multiple
