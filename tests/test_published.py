"""Published production measurements (measurements/published/serve.jsonl): every record sourced and
quoted, and costsim serve's error on the records no fit saw, as docs/serving.md reports it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from costsim.errors import CostsimError
from costsim.evidence.published import check, fitted_on, read_published
from costsim.inputs.data import data_dir

PATH = data_dir("measurements") / "published" / "serve.jsonl"


@pytest.fixture(scope="module")
def result():
    return check(read_published(PATH))


def test_every_record_names_its_source_and_quote():
    records = read_published(PATH)
    assert len(records) >= 100
    for r in records:
        assert r["source"].startswith(("http", "github:")) and len(r["quote"]) >= 10
        assert r["kind"] == "serve" and r["value"] > 0


def test_at_least_thirty_cases_are_predicted(result):
    assert result["summary"]["cases"] >= 30
    predicted = {(r["model"], r["hardware"], r["isl"], r["osl"], r.get("concurrency"), r.get("request_rate"))
                 for r in result["records"] if r["error"] is not None}
    assert len(predicted) >= 30


def test_the_fit_and_held_out_sets_are_disjoint(result):
    fit = [r for r in result["records"] if fitted_on(r)]
    assert 0 < len(fit) < len(result["records"]) / 3
    assert all(r["engine"] == "trtllm" and r.get("request_rate") for r in fit)


def test_held_out_errors_hold_their_bounds(result):
    """Held-out records only: TPOT/ITL median signed error within +-8%, throughput median |error| within 12%.
    TTFT within 25% (24% today, after two corrections made on seeing these residuals: docs/serving.md)."""
    s = result["summary"]
    assert s["held_out/tpot_itl"]["count"] >= 8 and abs(s["held_out/tpot_itl"]["median_signed"]) <= 0.08
    assert s["held_out/throughput"]["count"] >= 40 and s["held_out/throughput"]["median_abs"] <= 0.12
    assert s["held_out/ttft"]["count"] >= 8 and s["held_out/ttft"]["median_abs"] <= 0.25


def test_what_is_not_modelled_is_said(result):
    skipped = [r for r in result["records"] if r["error"] is None]
    assert skipped and all(r.get("not_predicted") for r in skipped)
    assert any("attention data parallelism" in r["not_predicted"] for r in skipped)


def test_a_bad_published_record_is_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"kind": "serve", "model": "llama-3.1-8b"}) + "\n")
    with pytest.raises(CostsimError, match=r"bad.jsonl:1: a serve record needs"):
        read_published(bad)


def test_engine_style_steps_within_ten_percent_through_the_vllm_profile():
    from costsim.evidence.validate import predict_record
    from costsim.inputs.hardware import load_hardware
    from costsim.inputs.measurements import read_measurements

    hw = load_hardware("h200")
    records = [r for r in read_measurements(data_dir("measurements") / "h200-model-step-engine.jsonl")
               if r.get("op") == "model_step"]
    errors = np.array([predict_record(r, hw) / r["time_s"] - 1 for r in records])
    mixed = np.array([e for e, r in zip(errors, records, strict=True) if r["phase"] == "mixed"])
    assert len(records) >= 25 and np.median(np.abs(errors)) <= 0.10
    assert len(mixed) >= 6 and np.max(np.abs(mixed)) <= 0.05  # mixed steps were fitted on nothing


def _eager_records() -> list[dict]:
    from costsim.inputs.measurements import read_measurements

    return [r for path in sorted(data_dir("measurements").glob("h200-model-step-eager*.jsonl"))
            for r in read_measurements(path) if r.get("op") == "model_step"]


def test_eager_steps_through_the_pytorch_eager_profile():
    """Five eager runs on leased H200s (the same points each; one held to a single CPU core). The profile's
    elementwise_bandwidth and host_per_kernel_s were fitted on the Llama-3.1-8B records
    (benchmarks/fit_eager_host.py); the Qwen3-Next-like hybrid's are held out. The host is the least
    repeatable part: the same point differs by 1.25x (median max/min) between the runs, so the held-out
    bound is loose while its prefills, which the GPU's time sets, are held tight."""
    from costsim.evidence.validate import predict_record
    from costsim.inputs.hardware import load_hardware

    hw = load_hardware("h200")
    records = _eager_records()
    errors = np.array([predict_record(r, hw) / r["time_s"] - 1 for r in records])
    fitted = np.array([r["model"] == "llama-3.1-8b" for r in records])
    prefill = np.array([r["phase"] == "prefill" for r in records])
    assert len(records) >= 100 and fitted.sum() >= 60
    assert np.median(np.abs(errors)) <= 0.10
    assert np.median(np.abs(errors[fitted])) <= 0.08
    assert np.median(np.abs(errors[~fitted & prefill])) <= 0.10  # held out, GPU-bound at 4k-8k tokens
    assert np.median(np.abs(errors[~fitted])) <= 0.20  # held out: the hybrid's decode is host-bound


def test_eager_elementwise_rate_matches_the_profiler_on_the_held_out_hybrid():
    """The profiler's elementwise device time of each eager prefill (the GPU's own time: the same within 2%
    on every leased host) against costsim's through the pytorch-eager profile. At full streaming rate the
    Llama prefills came out 48% under; the rate was fitted on them; the hybrid's, held out, must agree
    within 25% (its GDN path adds ATen's generic depthwise convolution, which runs far slower still)."""
    from costsim.engine.timing import prefill_time
    from costsim.evidence.validate import model_for_record
    from costsim.inputs.engines import load_engine
    from costsim.inputs.hardware import load_hardware
    from costsim.serving.engines import kernel_plan
    from costsim.spec.dtypes import Precision

    hw, plan = load_hardware("h200"), kernel_plan(load_engine("pytorch-eager"))
    full = kernel_plan(load_engine("pytorch-eager").model_copy(update={"kernels": load_engine(
        "pytorch-eager").kernels.model_copy(update={"elementwise_bandwidth": 1.0})}))
    by_model: dict[str, list[tuple[float, float]]] = {}
    for r in _eager_records():
        if r["phase"] != "prefill" or "profile_s_by_class" not in r:
            continue
        spec, measured = model_for_record(r), r["profile_s_by_class"]["elementwise"]
        pair = tuple(float(prefill_time(spec, hw, r["seq_len"], 0, r["batch"], Precision(),
                                        chunk_tokens=int(r["seq_len"]), plan=pl).by_class["elementwise"])
                     / measured - 1 for pl in (plan, full))
        by_model.setdefault(r["model"], []).append(pair)
    llama, hybrid = (np.array(by_model[k]) for k in ("llama-3.1-8b", "models/qwen3-next-dense-ffn.toml"))
    assert len(llama) >= 10 and len(hybrid) >= 10
    assert np.median(llama[:, 1]) < -0.40  # at the full streaming rate: the miss the rate was fitted for
    assert abs(np.median(llama[:, 0])) <= 0.05
    assert -0.25 <= np.median(hybrid[:, 0]) < 0.0
