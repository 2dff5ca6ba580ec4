"""Answers only for configurations that run (docs/serving.md, section 10): every preset on every profile
from 1k to 10M tokens, through compare / sweep and estimate, never prints a time or a dollar figure for a
configuration that does not fit; what does not fit one device is answered on a layout that does, or says
how many devices it needs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import costsim
from costsim.analysis.sweeps import TIMED_METRICS, sweep
from costsim.api import list_models
from costsim.cli import main
from costsim.inputs.engines import load_engine
from costsim.inputs.hardware import hardware_names

CONTEXTS = np.array([1e3, 3.2e4, 1e6, 1e7])
PRESETS = [m["name"] for m in list_models()]


def _assert_answers(series: list[dict]) -> None:
    for s in series:
        fits = np.asarray(s["fits_memory"], dtype=bool)
        for key in TIMED_METRICS:
            values = np.asarray(s[key], dtype=np.float64)
            assert not np.isfinite(values[~fits]).any(), f"{s['model']} on {s['hardware']}: {key} where it does not fit"
            assert np.all(np.isfinite(values[fits]) | (key == "usd_per_mtok_cached_input")), \
                f"{s['model']} on {s['hardware']}: {key} missing where it runs"
        assert np.all(np.asarray(s["batch"])[fits] <= np.asarray(s["max_batch"])[fits])


@pytest.mark.parametrize("engine", [None, "vllm"])
def test_every_preset_on_every_profile_one_device(engine):
    """One device only: every point either runs (finite figures, batch within the pool) or has none."""
    result = sweep(PRESETS, ["all"], CONTEXTS, engine=load_engine(engine) if engine else None, single_device=True)
    assert len(result.series) == len(PRESETS) * len(hardware_names())
    _assert_answers(result.series)
    assert all(np.all(np.asarray(s["devices"]) == 1) for s in result.series)
    # the sweep is not vacuous: both kinds of point occur
    fits = np.concatenate([np.asarray(s["fits_memory"], dtype=bool) for s in result.series])
    assert fits.any() and (~fits).any()


@pytest.mark.parametrize(("models", "hardware"), [
    (PRESETS, ["h100-sxm", "l40s"]),
    (["llama-3.1-70b", "deepseek-v3"], ["all"]),
])
def test_what_one_device_cannot_hold_moves_to_a_layout_that_can(models, hardware):
    """The default: one device where it fits; elsewhere the cheapest layout that fits (devices > 1), or no
    figures when nothing up to 72 devices does. Same answers as one device where one device holds it."""
    engine = load_engine("vllm")
    contexts = CONTEXTS[1::2]  # 32k and 10M: where most pairs need a layout
    placed = sweep(models, hardware, contexts, engine=engine)
    alone = sweep(models, hardware, contexts, engine=engine, single_device=True)
    _assert_answers(placed.series)
    moved = 0
    for p, a in zip(placed.series, alone.series, strict=True):
        one = np.asarray(a["fits_memory"], dtype=bool)
        devices = np.asarray(p["devices"])
        assert np.all(devices[one] == 1) and np.array_equal(np.asarray(p["tpot_s"])[one], np.asarray(a["tpot_s"])[one])
        runs_elsewhere = np.asarray(p["fits_memory"], dtype=bool) & ~one
        assert np.all(devices[runs_elsewhere] > 1)
        assert all(label != "single" for label in np.asarray(p["layout"], dtype=object)[runs_elsewhere])
        moved += int(runs_elsewhere.sum())
    assert moved > 0


def test_compare_table_prints_no_figure_where_nothing_runs(capsys):
    assert main(["compare", "-m", "llama-3.1-8b", "-H", "all", "-c", "1M", "--single-device"]) == 0
    table = capsys.readouterr().out
    cells = [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()]
    rows = [row for row in cells if row[1:2] == ["no"]]
    assert rows and all(set(row[3:]) == {"-"} for row in rows)
    assert [row for row in cells if row[1:2] == ["yes"]]  # 131 GB of cache: the 192-288 GB devices hold it


@pytest.mark.parametrize("model", PRESETS)
def test_estimate_of_every_preset_at_10m_tokens_on_one_h100(model):
    """estimate with --single-device: figures only where it fits; otherwise null figures and a reason that
    says how many devices (or what else) it needs."""
    r = costsim.estimate(model, "h100-sxm", context=10_000_000, engine="vllm", single_device=True)
    timed = [r[k] for k in ("ttft_s", "tpot_s", "usd_per_mtok_output", "usd_per_mtok_input")]
    if r["fits_memory"]:
        assert all(v is not None and v > 0 for v in timed) and r["batch"] <= r["max_batch"]
    else:
        assert all(v is None for v in timed) and r["reason"].startswith("does not fit")
        assert "needs >= " in r["reason"] or "no layout of up to 72" in r["reason"]


@pytest.mark.parametrize("hardware", hardware_names())
def test_estimate_of_a_70b_model_on_every_profile_runs_somewhere_or_says_why(hardware):
    r = costsim.estimate("llama-3.1-70b", hardware, context=32_000, engine="vllm")
    if "placement" in r:
        assert r["fits_memory"] and r["devices"] > 1 and r["tpot_s"] > 0 and r["batch"] <= r["max_batch"]
        assert r["usd_per_mtok_cached_input"] is not None and r["usd_per_mtok_cached_input"] < r["usd_per_mtok_input"]
    elif r["fits_memory"]:
        assert r["tpot_s"] > 0 and r["batch"] <= r["max_batch"]
    else:
        assert r["tpot_s"] is None and r["usd_per_mtok_output"] is None and "does not fit" in r["reason"]


def test_a_batch_that_does_not_fit_one_device_is_answered_on_a_layout_that_holds_it():
    """Llama-3.1-8B at 32k on an H100: vLLM's pool holds 14 sequences; 100 asked go to a layout whose pool
    holds at least 100, never to a cheaper, impossible single-device price."""
    alone = costsim.estimate("llama-3.1-8b", "h100-sxm", context=32_000, batch=100, engine="vllm",
                             single_device=True)
    assert not alone["fits_memory"] and alone["max_batch"] < 100 and alone["usd_per_mtok_output"] is None
    placed = costsim.estimate("llama-3.1-8b", "h100-sxm", context=32_000, batch=100, engine="vllm")
    assert placed["batch"] == 100 and placed["max_batch"] >= 100 and placed["devices"] > 1


def test_an_unmet_latency_target_is_reported_with_the_best_value(capsys):
    r = costsim.estimate("llama-3.1-8b", "h100-sxm", context=32_000, tpot_ms=1, engine="vllm")
    assert r["tpot_target_met"] is False and r["batch"] == 1
    assert any("--tpot-ms 1: unmet" in w and f"{r['tpot_s'] * 1e3:,.2f} ms" in w for w in r["warnings"])
    assert main(["estimate", "--tpot-ms", "1"]) == 0
    out = capsys.readouterr()
    assert "UNMET" in out.out and "warning: --tpot-ms 1: unmet" in out.err
    met = costsim.estimate("llama-3.1-8b", "h100-sxm", context=32_000, tpot_ms=100, engine="vllm")
    assert met["tpot_target_met"] is True and met["tpot_s"] <= 0.1 and not met["warnings"]


def test_a_context_past_the_models_maximum_is_a_warning(capsys):
    assert main(["estimate", "-m", "llama-3.1-8b", "-c", "10M", "-f", "json", "--single-device"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert any("exceeds llama-3.1-8b's maximum of 131,072 tokens" in w for w in data["warnings"])
    assert "warning: --context 10,000,000 exceeds" in out.err


def test_hand_checked_shortfall_and_devices_needed():
    """docs/serving.md, section 10: 70B bf16 at 8k on one H100 is short by 141.11 + 2.62 - 76.97 GB."""
    r = costsim.estimate("llama-3.1-70b", "h100-sxm", context=8_000, single_device=True)
    usable = 0.9 * 81_559 * 2**20
    weights = 70_553_706_496 * 2
    cache = 2 * 80 * 8 * 128 * 2 * 8_000
    assert r["weight_bytes"] == weights and r["cache_bytes_per_sequence"] == cache
    assert r["memory_shortfall_bytes"] == pytest.approx(weights + cache - usable)
    assert "needs >= 2 x h100-sxm" in r["reason"]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"costsim {costsim.__version__}"


def test_the_refusal_suggests_the_smaller_type_of_the_larger_part():
    """DeepSeek-V3's 1.34 TB of bf16 weights dwarf a 32k cache: fp8 weights; Llama-3.1-8B's 10M-token cache
    (1.31 TB) dwarfs its 16 GB of weights: an fp8 cache."""
    big_weights = costsim.estimate("deepseek-v3", "h100-sxm", context=32_000, single_device=True)
    big_cache = costsim.estimate("llama-3.1-8b", "h100-sxm", context=10_000_000, single_device=True)
    assert "--weight-dtype fp8" in big_weights["reason"] and "--kv-dtype" not in big_weights["reason"]
    assert "--kv-dtype fp8" in big_cache["reason"] and "--weight-dtype" not in big_cache["reason"]
    already = costsim.estimate("llama-3.1-8b", "h100-sxm", context=10_000_000, kv_cache="fp8", single_device=True)
    assert "` or --kv-dtype" not in already["reason"] and "--kv-dtype fp8`" in already["reason"]  # in the plan hint
