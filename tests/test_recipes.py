"""The four recipes of docs/architecture.md, each followed once: a family, a model type, a hardware
profile and an engine profile added the way the recipe says, then priced end to end. Where a recipe edits
a file of the package (a registry, a union), the test makes the same edit for its own duration."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pytest

import costsim
from costsim.families import FAMILY_MODULES, dense
from costsim.families import model_costs as mc
from costsim.families.cost import ArrayLike, Cost, Matrix, as_array
from costsim.inputs.importers import hf
from costsim.inputs.importers.config_fields import ConfigReader
from costsim.spec import model as model_spec
from costsim.spec.dtypes import Precision
from costsim.spec.model import DenseAttention, DenseFFN, Layer, ModelSpec

ROOT = Path(__file__).resolve().parents[1]
H100_BYTES = 85_520_809_984  # hardware_profiles/h100-sxm.toml's memory_capacity_bytes (nvidia-smi's 81,559 MiB)


# --- recipe 1: a family -------------------------------------------------------------------------------

class SharedKVAttention(model_spec._Strict):
    """Step 1 (spec/model.py): the mixer's fields and its family name. A toy: every query head reads one
    K/V head (multi-query attention), priced by its own module."""

    family: Literal["shared_kv"] = "shared_kv"
    num_heads: int
    head_dim: int


def _as_dense(m: SharedKVAttention) -> DenseAttention:
    return DenseAttention(num_heads=m.num_heads, num_kv_heads=1, head_dim=m.head_dim)


def _weight_matrices(m: SharedKVAttention, d: int) -> list[Matrix]:
    inner = m.num_heads * m.head_dim
    return [(d, inner), (d, m.head_dim), (d, m.head_dim), (inner, d)]


def _cache_bytes(m: SharedKVAttention, t: ArrayLike, p: Precision) -> dict[str, np.ndarray]:
    return {"kv": 2.0 * m.head_dim * p.kv_bytes * as_array(t)}


def _prefill(m: SharedKVAttention, d: int, n: ArrayLike, c: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    return dense.prefill(_as_dense(m), d, n, c, batch, p)


def _decode(m: SharedKVAttention, d: int, t: ArrayLike, batch: ArrayLike, p: Precision) -> Cost:
    return dense.decode(_as_dense(m), d, t, batch, p)


# step 2 (families/shared_kv.py): the five entry points every family module has
SHARED_KV_MODULE = SimpleNamespace(weight_matrices=_weight_matrices, extra_params=lambda m, d: 0,
                                   cache_bytes=_cache_bytes, prefill=_prefill, decode=_decode)


def _toy_model(mixer) -> ModelSpec:
    """16 layers, d 2,048, 16 heads of 128, FFN 8,192 (SwiGLU), vocabulary 32,000, untied; built without
    validation because the toy mixer is not in the spec's Mixer union (step 1's other half)."""
    layers = [Layer.model_construct(mixer=mixer, ffn=DenseFFN(intermediate_size=8192), norm_params=2 * 2048)] * 16
    return ModelSpec.model_construct(name="toy-shared-kv", hidden_size=2048, vocab_size=32_000, tie_embeddings=False,
                                     layers=layers, final_norm_params=2048, max_context=None, source="test")


@pytest.fixture
def shared_kv_family(monkeypatch):
    # step 3 (families/__init__.py, spec/model.py): register the module and the family's pattern letter
    monkeypatch.setitem(FAMILY_MODULES, "shared_kv", SHARED_KV_MODULE)
    monkeypatch.setitem(model_spec.PATTERN_LETTERS, "shared_kv", "Q")
    return SharedKVAttention(num_heads=16, head_dim=128)


def test_recipe_a_family_is_priced_end_to_end(shared_kv_family):
    spec = _toy_model(shared_kv_family)
    # per layer: q and o 2,048 x 2,048 each, k and v 2,048 x 128 each, FFN 3 x 2,048 x 8,192, norms 4,096
    per_layer = 2 * 2048 * 2048 + 2 * 2048 * 128 + 3 * 2048 * 8192 + 2 * 2048
    assert per_layer == 59_248_640
    assert mc.param_counts(spec).total == 16 * per_layer + 2 * 32_000 * 2048 + 2048 == 1_079_052_288
    # one K and one V of 128 bf16 values per layer and token
    assert float(mc.cache_bytes(spec, np.asarray(1000.0), Precision())) == 16 * 2 * 128 * 2 * 1000
    assert spec.layer_pattern() == "Q" * 16
    # the same work as the dense family's multi-query attention, token for token
    mqa = _toy_model(DenseAttention(num_heads=16, num_kv_heads=1, head_dim=128))
    ours, theirs = mc.decode_cost(spec, 8192.0, 4.0, Precision()), mc.decode_cost(mqa, 8192.0, 4.0, Precision())
    assert float(ours.total.flops) == pytest.approx(float(theirs.total.flops), rel=1e-12)
    assert float(ours.total.bytes_total) == pytest.approx(float(theirs.total.bytes_total), rel=1e-12)
    # and the whole answer: costsim's own reserve rule, so the batch is checkable by hand
    r = costsim.estimate(spec, "h100-sxm", context=32_768, engine=None)
    usable = H100_BYTES * 0.9 - 1_079_052_288 * 2
    assert r["max_batch"] == int(usable // (16 * 2 * 128 * 2 * 32_768)) == 278
    assert r["fits_memory"] and 0 < r["tpot_s"] < 1 and r["usd_per_mtok_output"] > 0


# --- recipe 2: a model type ---------------------------------------------------------------------------

def _toy_gqa(c: ConfigReader, name: str) -> ModelSpec:
    """Step 1 (inputs/importers/hf.py): one function that reads the fields that change cost."""
    d = c.int("hidden_size")
    mixer = DenseAttention(**hf._heads(c))
    layers = [Layer(mixer=mixer, ffn=DenseFFN(intermediate_size=c.int("ffn_hidden")), norm_params=2 * d)
              for _ in range(c.int("num_hidden_layers"))]
    return hf._spec(c, name, layers)


def test_recipe_a_model_type_reads_its_config(monkeypatch, tmp_path):
    monkeypatch.setitem(hf.BUILDERS, "toy_gqa", _toy_gqa)  # step 2: its model_type in BUILDERS
    config = {"model_type": "toy_gqa", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
              "num_key_value_heads": 2, "head_dim": 128, "ffn_hidden": 4096, "vocab_size": 1000,
              "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = costsim.load_model(str(tmp_path / "config.json"))
    # per layer: q, o 1,024 x 1,024; k, v 1,024 x 256; FFN 3 x 1,024 x 4,096; norms 2,048; tied embedding
    per_layer = 2 * 1024 * 1024 + 2 * 1024 * 256 + 3 * 1024 * 4096 + 2048
    final_norm = spec.final_norm_params
    assert mc.param_counts(spec).total == 4 * per_layer + 1000 * 1024 + final_norm
    assert float(mc.cache_bytes(spec, np.asarray(10.0), Precision())) == 4 * 2 * 2 * 128 * 2 * 10
    # a bad value of the new key gets the importer's one-line error naming it
    (tmp_path / "config.json").write_text(json.dumps({**config, "ffn_hidden": -5}))
    with pytest.raises(costsim.CostsimError, match="ffn_hidden"):
        costsim.load_model(str(tmp_path / "config.json"))


# --- recipe 3: a hardware profile ---------------------------------------------------------------------

def test_recipe_a_hardware_profile_from_a_toml(tmp_path):
    text = (ROOT / "hardware_profiles" / "h100-sxm.toml").read_text(encoding="utf-8")
    assert 'usd_per_hour = 2.25' in text
    text = text.replace('name = "h100-sxm"', 'name = "h100-half-price"').replace(
        "usd_per_hour = 2.25", "usd_per_hour = 1.125")
    path = tmp_path / "h100-half-price.toml"
    path.write_text(text)
    ours = costsim.estimate("llama-3.1-8b", str(path), context=8192, batch=8)
    theirs = costsim.estimate("llama-3.1-8b", "h100-sxm", context=8192, batch=8)
    assert ours["hardware"] == "h100-half-price"
    assert ours["tpot_s"] == theirs["tpot_s"]
    assert ours["usd_per_mtok_output"] == pytest.approx(theirs["usd_per_mtok_output"] / 2, rel=1e-12)


# --- recipe 4: an engine profile ----------------------------------------------------------------------

def test_recipe_an_engine_profile_from_a_toml(tmp_path):
    text = (ROOT / "engine_profiles" / "vllm.toml").read_text(encoding="utf-8")
    assert "max_num_seqs = 1024" in text
    path = tmp_path / "vllm-capped.toml"
    path.write_text(text.replace('name = "vllm"', 'name = "vllm-capped"', 1).replace("max_num_seqs = 1024",
                                                                                     "max_num_seqs = 8"))
    rows = costsim.serve("llama-3.1-8b", "h200", engine=str(path), isl=1024, osl=1024, concurrency="4,64")
    assert [r["batch"] for r in rows] == [4, 8]  # min(users, max_num_seqs)
    free = costsim.serve("llama-3.1-8b", "h200", engine="vllm", isl=1024, osl=1024, concurrency="4,64")
    assert free[0]["tpot_s"] == rows[0]["tpot_s"]  # below the cap the two engines are one
    assert rows[1]["ttft_s"]["p50"] > free[1]["ttft_s"]["p50"]  # past it, users wait for a slot
