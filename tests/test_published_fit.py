"""The published device fit (evidence/published_fit.py): its two terms do what they say, the fit recovers a
known answer, every profile carries its calibration, and every answer carries the band."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import costsim
from costsim.engine.timing import decode_step_time
from costsim.evidence.published import predict, read_published
from costsim.evidence.published_fit import SCALES, fit_device, with_terms
from costsim.inputs.data import data_dir
from costsim.inputs.hardware import hardware_names, load_hardware
from costsim.spec.hardware import Calibration

STORED = data_dir("measurements") / "published" / "calibration.json"


def test_the_time_scale_multiplies_every_kernel_and_the_step_time_adds_per_engine_step():
    spec, b200 = costsim.load_model("llama-3.1-8b"), with_terms(load_hardware("b200"), 1.0, 0.0)
    plain = decode_step_time(spec, b200, 4096.0, 8.0).total_s
    assert decode_step_time(spec, with_terms(b200, 2.0, 0.0), 4096.0, 8.0).total_s == pytest.approx(2 * plain)
    from costsim.inputs.engines import load_engine
    from costsim.serving.layouts import Replica
    from costsim.spec.deployment import Deployment
    from costsim.spec.layout import Layout

    def tpot(hw):
        return float(Replica(spec, hw, Deployment(), Layout(), True, engine=load_engine("vllm"))
                     .tpot(np.asarray(4096.0), np.asarray(8.0)))

    assert tpot(with_terms(b200, 1.0, 1e-3)) == pytest.approx(tpot(b200) + 1e-3, rel=1e-9)


def test_ties_go_to_no_correction():
    from costsim.evidence.published_fit import choose

    settings = [(0.8, 0.0), (1.0, 0.0), (1.25, 0.0)]
    engines, use = np.array(["vllm", "vllm"]), np.array([True, True])
    errors = np.log(np.array([[1.1, 0.9], [1.1, 0.9], [1.1, 0.9]]))  # every candidate equally good
    assert choose(errors, settings, engines, use)[0] == 1.0
    errors[2] = 0.0  # the last one is exact
    assert choose(errors, settings, engines, use)[0] == 1.25


def test_the_fit_recovers_a_known_device_scale():
    records = [r for r in read_published(data_dir("measurements") / "published" / "nvidia.jsonl")
               if r["hardware"] == "b200" and r["engine"] == "trtllm" and r.get("offline")
               and predict(r)[0] is not None][:6]
    assert len(records) == 6
    truth = with_terms(load_hardware("b200"), SCALES[20], 0.0)
    made = []
    for i, r in enumerate(records):
        value, why = predict(r, hardware=truth)
        assert why is None
        made.append({**r, "value": value, "source": f"source-{i % 2}"})  # two sources, three records each
    fit = fit_device(made, load_hardware("b200"))
    assert fit["scale"] == pytest.approx(SCALES[20]) and set(fit["step_s"].values()) == {0.0}
    assert fit["fit_median_abs"] == pytest.approx(0.0, abs=1e-9)
    assert len(fit["folds"]) == 2 and all(f["scale"] == pytest.approx(SCALES[20]) for f in fit["folds"])


def test_each_engine_gets_its_own_step_time():
    from costsim.evidence.published_fit import choose

    settings = [(s, o) for o in (0.0, 1e-3) for s in (1.0, 1.5)]
    # records 0-1 (vllm) are exact with a 1 ms step, records 2-3 (sglang) with none, both at scale 1.5
    errors = np.full((4, 4), 0.5)
    errors[settings.index((1.5, 1e-3)), :2] = 0.0
    errors[settings.index((1.5, 0.0)), 2:] = 0.0
    scale, steps, chosen = choose(errors, settings, np.array(["vllm", "vllm", "sglang", "sglang"]),
                                  np.ones(4, dtype=bool))
    assert scale == 1.5 and steps == {"vllm": 1e-3, "sglang": 0.0} and np.all(chosen == 0.0)


def test_the_label_says_what_the_evidence_is():
    assert Calibration().label() == "uncalibrated: datasheet peaks only"
    band = Calibration(status="published", records=41, sources=3, error_band=0.12)
    assert band.label() == "±12% (published, 41 records from 3 sources)"
    assert Calibration(status="published", records=5, sources=1).label() == "published, no held-out error yet"


def test_every_profile_carries_the_calibration_the_stored_fit_gives_it():
    stored = json.loads(STORED.read_text(encoding="utf-8"))
    for name in hardware_names():
        hw = load_hardware(name)
        if name in stored["devices"]:
            d = stored["devices"][name]
            assert hw.calibration.status == d["calibration"]["status"]
            assert hw.calibration.records == d["calibration"]["records"]
            assert hw.efficiency.published_time_scale == pytest.approx(d["scale"], rel=1e-5)
            assert hw.efficiency.published_step_s_by_engine == pytest.approx({e: o for e, o in d["step_s"].items()
                                                                              if o > 0}, abs=1e-9)
        else:
            assert hw.calibration.status == "datasheet" and hw.calibration.error_band is None
    assert load_hardware("h100-sxm").calibration.status == "measured"


def test_every_answer_carries_its_band():
    est = costsim.estimate("llama-3.1-8b", "b200", context="8k")
    assert est["calibration"]["status"] == load_hardware("b200").calibration.status
    assert est["error_band"] == load_hardware("b200").calibration.error_band
    rows = costsim.serve("llama-3.1-8b", "h200", concurrency="1,8")
    assert all(r["calibration"]["label"] == load_hardware("h200").calibration.label() for r in rows)
    from costsim.analysis.sweeps import compare

    assert {r["hardware"]: r["calibration"]["status"] for r in compare("llama-3.1-8b", ["l4", "h100-sxm"], 8192)} \
        == {"l4": "datasheet", "h100-sxm": "measured"}


def test_the_docs_tables_are_current():
    sys.path.insert(0, str(data_dir("measurements").parent / "docs"))
    import published_tables

    for path, text in published_tables.render_pages(json.loads(STORED.read_text(encoding="utf-8"))).items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run python docs/published_tables.py"


def test_the_readme_shows_the_bands_the_compare_command_prints(capsys):
    """The README's compare example is the command's own output (rerun it after a refit)."""
    from costsim.cli import main

    readme = (data_dir("measurements").parent / "README.md").read_text(encoding="utf-8")
    shown = readme.split("```text\nhardware")[1].split("```")[0]
    assert main(["compare", "-m", "llama-3.1-70b", "-H", "h100-sxm,h200,b200,gb200,mi300x,mi355x,l40s", "-c", "32k",
                 "--weight-dtype", "fp8", "--kv-dtype", "fp8"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines()[1:]
               if line.strip() and not line.startswith(("---", "x N"))]
    assert ("hardware" + shown).strip().splitlines() == printed
    assert "±" in shown and "uncalibrated" in shown


def test_bad_published_input_is_one_line(tmp_path, capsys):
    from costsim.cli import main

    assert main(["validate", str(tmp_path)]) == 2
    assert "a folder with no .jsonl files" in capsys.readouterr().err
    assert main(["calibrate", "--published", str(tmp_path / "none.jsonl")]) == 2
    assert "no such published-measurement file" in capsys.readouterr().err
    assert main(["calibrate"]) == 2
    assert "give the measurement .jsonl files" in capsys.readouterr().err


def test_calibrate_published_prints_each_device(tmp_path, capsys):
    from costsim.cli import main

    records = [r for r in read_published(data_dir("measurements") / "published" / "nvidia.jsonl")
               if r["hardware"] == "gb200" and predict(r)[0] is not None][:4]
    path = tmp_path / "few.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["calibrate", "--published", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gb200" in out and "blackwell" in out and "held-out errors" in out
    assert main(["calibrate", "--published", str(path), "-f", "json"]) == 0
    status = json.loads(capsys.readouterr().out)["devices"]["gb200"]["calibration"]["status"]
    assert status in ("published", "datasheet")
