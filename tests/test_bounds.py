"""Every size field has a range (costsim.spec.bounds, docs/cli.md "Input bounds"): an absurd value in a
real preset's config.json, in a costsim model file or in an option is one line naming the field and the
range, exit code 2, before any arithmetic; a value at the bound is accepted and gives finite figures."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest

from costsim.cli import main
from costsim.errors import CostsimError
from costsim.inputs.importers.config_fields import KEY_BOUNDS
from costsim.spec import bounds
from costsim.spec.layout import Layout, parse_layout
from costsim.units import parse_tokens

ROOT = Path(__file__).resolve().parent.parent
ABSURD = [1e300, -1, 0, 1.5, 10**12, "8", True]
# (preset, config key, its range as the message states it)
FIELDS = [
    ("qwen3-235b-a22b", "num_experts", "1 to 65,536"),
    ("qwen3-235b-a22b", "num_experts_per_tok", "1 to 65,536"),
    ("qwen3-235b-a22b", "num_hidden_layers", "1 to 10,000"),
    ("qwen3-235b-a22b", "hidden_size", "1 to 1,048,576"),
    ("qwen3-235b-a22b", "moe_intermediate_size", "1 to 4,194,304"),
    ("qwen3-235b-a22b", "head_dim", "1 to 4,096"),
    ("qwen3-235b-a22b", "vocab_size", "1 to 16,777,216"),
    ("qwen3-235b-a22b", "max_position_embeddings", "1 to 1,000,000,000"),
    ("mixtral-8x7b", "num_local_experts", "1 to 65,536"),
    ("mixtral-8x7b", "num_attention_heads", "1 to 65,536"),
    ("mixtral-8x7b", "num_key_value_heads", "1 to 65,536"),
    ("mixtral-8x7b", "intermediate_size", "1 to 4,194,304"),
    ("mixtral-8x7b", "sliding_window", "1 to 1,000,000,000"),
]


def _config(tmp_path: Path, preset: str, **changes) -> Path:
    data = json.loads((ROOT / "models" / f"{preset}.json").read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / f"{preset}-changed.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _one_line_error(capsys, args: list[str]) -> str:
    code = main(args)
    out = capsys.readouterr()
    assert code == 2, f"{args} exited {code}: {out.err[:300]!r}"
    assert out.out == "", out.out[:300]
    assert out.err.count("\n") == 1 and out.err.startswith("error: "), out.err[:500]
    return out.err.strip()


@pytest.mark.parametrize("command", ["inspect", "estimate"])
@pytest.mark.parametrize("value", ABSURD, ids=repr)
@pytest.mark.parametrize(("preset", "key", "span"), FIELDS, ids=[f"{p}:{k}" for p, k, _ in FIELDS])
def test_an_absurd_config_field_is_one_line_naming_it(tmp_path, capsys, command, value, preset, key, span):
    path = _config(tmp_path, preset, **{key: value})
    args = ["inspect", str(path)] if command == "inspect" else ["estimate", "-m", str(path)]
    line = _one_line_error(capsys, args)
    assert f"field '{key}'" in line and f"whole number from {span}" in line, line


def test_the_message_of_issue_19(tmp_path, capsys):
    path = _config(tmp_path, "qwen3-235b-a22b", num_experts=1e300)
    assert _one_line_error(capsys, ["inspect", str(path)]) == (
        f"error: {path}: field 'num_experts' must be a whole number from 1 to 65,536, got 1e+300")


def test_a_huge_layer_count_is_refused_before_any_layer_is_built(tmp_path, capsys):
    path = _config(tmp_path, "mixtral-8x7b", num_hidden_layers=10**18)
    started = time.perf_counter()
    assert "'num_hidden_layers'" in _one_line_error(capsys, ["inspect", str(path)])
    assert time.perf_counter() - started < 5


def test_a_per_layer_list_longer_than_the_layer_bound(tmp_path, capsys):
    path = _config(tmp_path, "qwen3-235b-a22b", mlp_only_layers=list(range(10_001)))
    assert "field 'mlp_only_layers' must have at most 10,000 entries" in _one_line_error(capsys, ["inspect", str(path)])


def test_a_derived_size_past_its_bound_names_the_spec_field(tmp_path, capsys):
    # no head_dim in the config: hidden / heads = 8,192 per head is past the head-dim bound
    data = {"model_type": "llama", "hidden_size": 8192, "intermediate_size": 1024, "num_attention_heads": 1,
            "num_hidden_layers": 2, "vocab_size": 1000}
    path = tmp_path / "wide-head.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert "field 'head_dim' must be a whole number from 1 to 4,096, got 8,192" in _one_line_error(
        capsys, ["inspect", str(path)])


@pytest.mark.parametrize(("args", "needles"), [
    (["estimate", "--context", "1e30"], ["--context", "from 1 to 1,000,000,000", "1e30"]),
    (["inspect", "llama-3.1-8b", "--context", "1e30"], ["--context", "from 1 to 1,000,000,000"]),
    (["estimate", "--context", "1" + "0" * 40], ["--context", "from 1 to 1,000,000,000"]),
    (["estimate", "--context", "1e999999999"], ["--context", "from 1 to 1,000,000,000"]),
    (["sweep", "--context", "1k..1e30"], ["--context", "from 1 to 1,000,000,000"]),
    (["estimate", "--prompt", "2g", "--output-tokens", "10"], ["--prompt", "from 1 to 1,000,000,000"]),
    (["estimate", "--batch", "1e12"], ["--batch", "from 1 to 10,000,000"]),
    (["estimate", "--batch", "1000000000000"], ["--batch", "from 1 to 10,000,000"]),
    (["estimate", "--layout", "tp=100000"], ["--layout", "tp", "from 1 to 4,096"]),
    (["estimate", "--layout", "dp=" + "9" * 5000], ["--layout", "dp", "from 1 to 4,096"]),
    (["estimate", "--layout", "tp=4096,dp=32"], ["--layout", "at most 65,536"]),
])
def test_an_absurd_option_is_one_line_naming_it(capsys, args, needles):
    line = _one_line_error(capsys, args)
    for needle in needles:
        assert needle in line, line


@pytest.mark.parametrize(("text", "needle"), [
    ('base = "llama-3.1-8b"\npattern = "="\nnum_layers = 1e300\n', "field 'num_layers' must be a whole number"),
    ('base = "llama-3.1-8b"\npattern = "="\nnum_layers = "8"\n', "field 'num_layers' has an invalid value '8'"),
    ('base = "llama-3.1-8b"\npattern = "="\nhidden_size = 1.5\n', "field 'hidden_size' must be a whole number"),
    ('base = "llama-3.1-8b"\npattern = "G="\n[mixers.G]\nfamily = "gated_delta"\nnum_k_heads = 16\n'
     'num_v_heads = 1e300\nhead_k_dim = 128\nhead_v_dim = 128\n',
     "num_v_heads' must be a whole number from 1 to 65,536"),
    ('base = "llama-3.1-8b"\npattern = "="\nvocab_size = true\n', "field 'vocab_size' has an invalid value true"),
])
def test_native_model_file_fields_are_bounded(tmp_path, capsys, text, needle):
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    assert needle in _one_line_error(capsys, ["inspect", str(path)])


def test_an_explicit_layers_list_past_the_bound(tmp_path, capsys):
    layer = {"mixer": {"family": "dense", "num_heads": 8, "num_kv_heads": 8, "head_dim": 64},
             "ffn": {"kind": "dense", "intermediate_size": 1024}}
    path = tmp_path / "deep.json"
    path.write_text(json.dumps({"name": "deep", "hidden_size": 512, "vocab_size": 1000,
                                "layers": [layer] * 10_001}), encoding="utf-8")
    assert "field 'layers' must have from 1 to 10,000 layers, got 10,001" in _one_line_error(
        capsys, ["inspect", str(path)])


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


def test_every_model_field_at_its_bound_at_once_is_finite(tmp_path, capsys):
    path = _config(tmp_path, "qwen3-235b-a22b", num_hidden_layers=10_000, hidden_size=2**20,
                   num_attention_heads=65_536, num_key_value_heads=65_536, head_dim=4_096,
                   intermediate_size=2**22, moe_intermediate_size=2**22, num_experts=65_536,
                   num_experts_per_tok=65_536, vocab_size=2**24, max_position_embeddings=10**9)
    assert main(["inspect", str(path), "--context", "1g", "--batch", "10000000", "-f", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_layers"] == 10_000 and result["context_tokens"] == 10**9
    assert all(math.isfinite(x) for x in _numbers(result))
    assert result["params_total"] > 2**63  # exact: a Python integer, not int64


def test_values_at_the_bound_are_accepted(tmp_path, capsys):
    path = _config(tmp_path, "qwen3-235b-a22b", num_experts=65_536, num_experts_per_tok=65_536)
    assert main(["estimate", "-m", str(path), "--context", "1g", "--batch", "10m", "-f", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["context_tokens"] == 10**9 and result["batch"] == 10**7
    assert all(math.isfinite(x) for x in _numbers(result))
    assert parse_layout("tp=4096,dp=16").devices == 65_536
    assert Layout(tp=4096, dp=16).devices == 65_536


def test_parse_tokens_is_exact():
    assert parse_tokens("1e9", "--context") == parse_tokens("1g", "--context") == 10**9
    assert parse_tokens("1.5e3", "--context") == 1500
    assert parse_tokens("128Ki", "--context") == 131_072
    for text in ("1.0000000000000000000000000001k", "1000000001", "0e99", "1.5"):
        with pytest.raises(CostsimError, match="whole number of tokens from 1 to 1,000,000,000"):
            parse_tokens(text, "--context")
    assert parse_tokens("0", "--x", allow_zero=True) == 0
    with pytest.raises(CostsimError, match="from 1 to 10,000,000"):
        parse_tokens(10**7 + 1, "--batch")


def test_every_key_the_hf_importer_reads_has_its_bound():
    readers = sorted((ROOT / "costsim" / "inputs" / "importers").glob("hf*.py"))
    source = "".join(p.read_text(encoding="utf-8") for p in readers)
    keys = set(re.findall(r"\b(?:c|t|a|lin|ssm)\.(?:int|optional_int)\(\"(\w+)\"", source))
    keys |= set(re.findall(r"(?:experts_key|topk_key)(?:: str)? = \"(\w+)\"", source))
    keys |= set(re.findall(r"_deepseek_moe\(c, i, \"(\w+)\", \"(\w+)\"\)", source)[0])
    assert len(keys) > 50
    assert keys <= set(KEY_BOUNDS), sorted(keys - set(KEY_BOUNDS))
    assert KEY_BOUNDS["num_local_experts"] == bounds.MAX_EXPERTS and KEY_BOUNDS["mamba_d_state"] == bounds.MAX_STATE
