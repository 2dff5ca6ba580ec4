"""Importer behaviour on variants of the real configs: the same model written another way gives the
same numbers; fields that change cost change them by the amount a person computes by hand."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import costsim
from costsim.errors import CostsimError
from costsim.inputs.importers.hf import BUILDERS, from_hf_config

MODELS = Path(__file__).parent.parent / "models"


def config(name: str) -> dict:
    return json.loads((MODELS / f"{name}.json").read_text())


def total(cfg: dict, name: str = "x") -> int:
    return costsim.param_counts(from_hf_config(cfg, name)).total


def test_qwen2_adds_qkv_biases():
    cfg = dict(config("llama-3.1-8b"), model_type="qwen2")
    assert total(cfg) - 8_030_261_248 == 32 * (4096 + 1024 + 1024)


def test_gemma3_text_config_alone_matches_multimodal_wrapper():
    wrapper = config("gemma-3-27b")
    text_only = dict(wrapper["text_config"], model_type="gemma3_text")
    assert total(text_only) == total(wrapper) == 27_009_346_304


def test_mamba2_transformers_format_matches_mamba_ssm_format():
    hf = {"model_type": "mamba2", "hidden_size": 2560, "num_hidden_layers": 64, "num_heads": 80, "head_dim": 64,
          "state_size": 128, "n_groups": 1, "conv_kernel": 4, "vocab_size": 50288, "tie_word_embeddings": True,
          "use_bias": False, "use_conv_bias": True}
    assert total(hf) == total(config("mamba2-2.7b")) == 2_702_599_680


def test_mamba_ssm_hybrid_with_attention_and_mlp():
    cfg = dict(config("mamba2-2.7b"), attn_layer_idx=[9, 18], attn_cfg={"num_heads": 20, "head_dim": 128},
               d_intermediate=1024)
    spec = from_hf_config(cfg, "hybrid")
    assert spec.layer_pattern().count("A") == 2
    assert all(layer.ffn is not None for layer in spec.layers)


def test_deepseek_v32_indexer_params():
    v3, v32 = config("deepseek-v3"), config("deepseek-v3.2-exp")
    per_layer = 1536 * 64 * 128 + 7168 * 128 + 7168 * 64 + 2 * 128  # wq_b, wk, weights_proj, key LayerNorm
    assert total(v32) - total(v3) == 61 * per_layer


def test_llama4_explicit_no_rope_layers():
    cfg = copy.deepcopy(config("llama-4-scout"))
    cfg["text_config"]["no_rope_layers"] = [0 if i % 2 else 1 for i in range(48)]
    assert from_hf_config(cfg, "x").layer_pattern() == "CA" * 24


def test_mistral_without_window_is_full_attention():
    cfg = dict(config("mistral-7b-v0.1"), sliding_window=None)
    assert set(from_hf_config(cfg, "x").layer_pattern()) == {"A"}


@pytest.mark.parametrize("name", sorted(p.stem for p in MODELS.glob("*.json")))
def test_missing_hidden_size_is_named(name):
    cfg = copy.deepcopy(config(name))
    target = cfg["text_config"] if isinstance(cfg.get("text_config"), dict) else cfg
    key = "d_model" if "d_model" in target else "hidden_size"
    del target[key]
    if key == "d_model":
        with pytest.raises(CostsimError, match="model_type"):
            from_hf_config(cfg, name)
    else:
        with pytest.raises(CostsimError, match=f"'{key}'"):
            from_hf_config(cfg, name)


def test_every_required_model_type_is_supported():
    required = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "qwen3_next", "deepseek_v3",
                "kimi_linear", "minimax", "minimax_m2", "gemma3", "gemma3_text", "gpt_oss", "llama4", "mamba2",
                "nemotron_h", "jamba"}
    assert required <= set(BUILDERS)


def test_nemotron_pattern_length_must_match(tmp_path):
    cfg = dict(config("nemotron-h-8b"), num_hidden_layers=50)
    with pytest.raises(CostsimError, match="hybrid_override_pattern"):
        from_hf_config(cfg, "x")
