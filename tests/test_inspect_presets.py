"""`costsim inspect` runs on every preset and every file in models/, in every format, and its JSON
carries the key names of the `estimate` contract (docs/contracts.md)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from costsim.cli import main
from costsim.inputs.models import presets

CONTRACT_KEYS = {
    "model", "context_tokens", "batch", "params_total", "params_active", "weight_bytes",
    "cache_bytes_per_sequence", "cache_bytes_by_kind", "prefill_flops", "decode_flops_per_token",
    "decode_bytes_per_step",
}
ALL = presets()


@pytest.mark.parametrize("preset", ALL, ids=lambda p: p.name)
def test_inspect_every_preset_json(preset, capsys):
    assert main(["inspect", preset.name, "--context", "128k", "-f", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= CONTRACT_KEYS
    assert out["cache_bytes_per_sequence"] == pytest.approx(sum(out["cache_bytes_by_kind"].values()))
    assert out["prefill_flops"] > 0 and out["decode_bytes_per_step"] > 0


@pytest.mark.parametrize("preset", ALL, ids=lambda p: p.name)
def test_inspect_every_model_file_by_path(preset, capsys):
    assert main(["inspect", str(preset.path), "-f", "table"]) == 0
    assert "params total" in capsys.readouterr().out


def test_csv_is_one_row_with_the_contract_columns(capsys):
    assert main(["inspect", "deepseek-v3", "-f", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 and int(rows[0]["params_total"]) == 671_026_419_200


def test_models_lists_every_preset(capsys):
    assert main(["models", "-f", "json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert names == {p.name for p in ALL}


def test_hf_repo_id_resolves_to_preset(capsys):
    assert main(["inspect", "deepseek-ai/DeepSeek-V3", "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["params_total"] == 671_026_419_200


def test_batch_scales_cache_reads_not_weights(capsys):
    main(["inspect", "llama-3.1-8b", "-c", "32k", "-f", "json"])
    one = json.loads(capsys.readouterr().out)
    main(["inspect", "llama-3.1-8b", "-c", "32k", "--batch", "8", "-f", "json"])
    eight = json.loads(capsys.readouterr().out)
    # weights are read once per step; only the 7 extra embedding rows (4096 x 2 B each) are added
    assert eight["decode_bytes_by_type"]["weights"] - one["decode_bytes_by_type"]["weights"] == 7 * 4096 * 2
    assert eight["decode_bytes_by_type"]["cache_read"] == pytest.approx(8 * one["decode_bytes_by_type"]["cache_read"])
