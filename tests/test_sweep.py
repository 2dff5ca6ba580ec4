"""Sweeps and comparisons: vectorised results equal point estimates; charts are written."""

from __future__ import annotations

import json

import numpy as np
import pytest

import costsim
from costsim.analysis.sweeps import compare, parse_context_range, sweep
from costsim.cli import main
from costsim.errors import CostsimError


def test_context_range_is_log_spaced_whole_tokens():
    c = parse_context_range("1k..10M", 5)
    np.testing.assert_array_equal(c, [1000, 10000, 100000, 1000000, 10000000])
    with pytest.raises(CostsimError, match="increase"):
        parse_context_range("1M..1k", 5)
    with pytest.raises(CostsimError, match="--context"):
        parse_context_range("abc..1M", 5)


def test_sweep_points_equal_single_estimates():
    contexts = parse_context_range("4k..256k", 7)
    result = sweep(["llama-3.1-8b", "qwen3-next-80b-a3b"], ["h100-sxm"], contexts, batch=2)
    for s in result.series:
        for i in (0, 3, 6):
            point = costsim.estimate(s["model"], s["hardware"], context=int(contexts[i]), batch=2,
                                     single_device=True)
            if point["tpot_s"] is None:  # two sequences do not fit one device: no figures in either
                assert np.isnan(s["tpot_s"][i]) and np.isnan(s["usd_per_mtok_output"][i])
                continue
            assert s["tpot_s"][i] == pytest.approx(point["tpot_s"], rel=1e-9)
            assert s["usd_per_mtok_output"][i] == pytest.approx(point["usd_per_mtok_output"], rel=1e-9)


def test_columns_are_long_format():
    result = sweep(["llama-3.1-8b"], ["h100-sxm"], parse_context_range("1k..1M", 10))
    cols = result.columns()
    assert len(cols["model"]) == 10 and set(cols) >= {"context_tokens", "usd_per_mtok_output", "fits_memory"}


def test_compare_marks_models_that_do_not_fit():
    rows = compare("deepseek-v3", ["h100-sxm"], 8192, single_device=True)
    assert not rows[0]["fits_memory"] and rows[0]["max_batch"] == 0 and np.isnan(rows[0]["usd_per_mtok_output"])


def test_compare_answers_on_the_cheapest_layout_that_fits():
    """671B parameters in bf16 (1.34 TB) need at least 17 H100s of 80 GiB for the weights alone."""
    rows = compare("deepseek-v3", ["h100-sxm"], 8192)
    assert rows[0]["fits_memory"] and rows[0]["devices"] >= 17 and rows[0]["layout"] != "single"
    assert np.isfinite(rows[0]["usd_per_mtok_output"])


def test_sweep_cli_json_and_plot(tmp_path, capsys):
    html = tmp_path / "s.html"
    code = main(["sweep", "-m", "llama-3.1-8b,mamba2-2.7b", "-c", "1k..1M", "--points", "6", "--plot", str(html),
                 "-f", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["series"]) == 2 and len(out["contexts"]) == 6
    text = html.read_text()
    assert "plotly" in text.lower() and "llama-3.1-8b" in text


def test_compare_cli_plot(tmp_path, capsys):
    html = tmp_path / "c.html"
    assert main(["compare", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--plot", str(html), "-f", "csv"]) == 0
    assert capsys.readouterr().out.startswith("model,hardware,")
    assert html.stat().st_size > 100_000  # plotly.js embedded: opens offline


@pytest.mark.parametrize(("args", "needle"), [
    (["sweep", "--metric", "vibes"], "--metric"),
    (["sweep", "-c", "1M..1k"], "--context"),
    (["sweep", "-c", "1k..1M", "--points", "1"], "--points"),
    (["sweep", "-H", "h100-sxm,nope"], "nope"),
    (["compare", "-m", "nope"], "nope"),
    (["compare", "--price", "0"], "--price"),
])
def test_bad_sweep_input(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
