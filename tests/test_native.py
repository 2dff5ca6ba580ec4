"""costsim's own model file: pattern form, base models, explicit layers, and its errors."""

from __future__ import annotations

import pytest

import costsim
from costsim.errors import CostsimError
from costsim.inputs.models import load_model_file

GDN = """
[mixers.G]
family = "gated_delta"
num_k_heads = 16
num_v_heads = 32
head_k_dim = 128
head_v_dim = 128
"""


def write(tmp_path, text: str, name: str = "m.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_standalone_pattern_model(tmp_path):
    text = """
name = "toy"
hidden_size = 2048
vocab_size = 32000
num_layers = 8
pattern = "GGGA"
ffn_pattern = "DM"
[mixers.A]
family = "dense"
num_heads = 16
num_kv_heads = 2
head_dim = 128
[ffns.D]
kind = "dense"
intermediate_size = 8192
[ffns.M]
kind = "moe"
num_experts = 64
top_k = 4
expert_intermediate_size = 512
""" + GDN
    spec = load_model_file(write(tmp_path, text))
    assert spec.layer_pattern() == "GGGAGGGA"
    assert [lay.ffn.kind for lay in spec.layers] == ["dense", "moe"] * 4
    counts = costsim.param_counts(spec)
    assert counts.total > counts.active


def test_base_keep_and_replace(tmp_path):
    spec = load_model_file(write(tmp_path, 'base = "llama-3.1-8b"\npattern = "G="\n' + GDN))
    base = costsim.load_model("llama-3.1-8b")
    assert spec.layer_pattern() == "GA" * 16
    assert spec.hidden_size == base.hidden_size and spec.vocab_size == base.vocab_size
    # half the layers keep their KV cache
    assert costsim.cache_bytes_by_kind(spec, 1000)["dense"] == 1000 * 131_072 / 2


def test_explicit_layers_json_roundtrip(tmp_path):
    spec = costsim.load_model("qwen3-next-80b-a3b")
    path = write(tmp_path, spec.model_dump_json(), "spec.json")
    again = load_model_file(path)
    assert costsim.param_counts(again).total == costsim.param_counts(spec).total == 79_674_391_296


@pytest.mark.parametrize(("text", "needle"), [
    ('base = "llama-3.1-8b"\npattern = "GX"\n' + GDN, "letter 'X'"),
    ('base = "llama-3.1-8b"\n' + GDN, "'pattern'"),
    ('hidden_size = 64\nvocab_size = 10\npattern = "="\nnum_layers = 2\n', "needs a 'base'"),
    ('base = "llama-3.1-8b"\npattern = "G"\n[mixers.G]\nfamily = "gated_delta"\nnum_k_heads = 16\n', "num_v_heads"),
    ('base = "llama-3.1-8b"\npattern = "G"\n[mixers.G]\nfamily = "rwkv7"\n', "mixers"),
    ('base = "no-such-model"\npattern = "="\n', "no-such-model"),
    ('pattern = "G"\n' + GDN, "num_layers"),
])
def test_errors_name_the_problem(tmp_path, text, needle):
    with pytest.raises(CostsimError, match=needle):
        load_model_file(write(tmp_path, text))


def test_malformed_toml(tmp_path):
    with pytest.raises(CostsimError, match="malformed TOML"):
        load_model_file(write(tmp_path, "pattern = [unclosed"))


def test_wrong_types_and_self_reference(tmp_path):
    with pytest.raises(CostsimError, match="invalid value"):
        load_model_file(write(tmp_path, 'base = "llama-3.1-8b"\npattern = "G="\nnum_layers = "abc"\n' + GDN))
    path = tmp_path / "loop.toml"
    path.write_text(f'base = "{path}"\npattern = "="\n')
    with pytest.raises(CostsimError, match="itself"):
        load_model_file(path)
