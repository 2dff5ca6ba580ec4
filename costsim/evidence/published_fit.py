"""`costsim calibrate --published`: each device fitted on the published production records of that device,
with a leave-one-source-out error, and the calibration status every profile then carries.

Two terms per device (spec/hardware.py): `published_time_scale` multiplies every kernel of a step (the
kernel model's error on that device as a whole: efficiencies it was never measured for), and a fixed
time per engine step for each engine (`published_step_s_by_engine`: host, driver and scheduler time of
that engine on that device family, e.g. a constant per step that no kernel explains). Both are found on
a grid by the median |log(predicted / measured)| over the device's records, each record predicted through
`costsim serve` (evidence/published.py) with the candidate values.

Devices of one architecture (FAMILIES: Blackwell's B200, B300, GB200, GB300; CDNA3's MI300X and MI325X)
are fitted together and share the terms, so a source that covers only one of them is checked by the
others'. Leave-one-source-out: for each source of a device, the two terms are fitted on the device's other
sources and the source's own records are predicted with them. The terms are applied to the profile only
where those held-out predictions beat the kernel model without them; the device's error band is then
their median |error|. Elsewhere (one source, or a fit other sources do not confirm) the terms stay at
1 and 0 and the band is the kernel model's error on the device's records, which no fit saw. Devices
with costsim's own microbenchmark fits (status `measured`) keep their kernel model (both terms stay at
1 and 0): their band is the error on their published records that no fit saw.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from costsim.evidence.published import fitted_on, predict
from costsim.inputs.hardware import load_hardware
from costsim.spec.hardware import Calibration, HardwareProfile

SCALES = np.geomspace(0.4, 2.5, 33)  # 5.9% apart
assert 1.0 in SCALES  # the middle candidate is no correction, which every fit is compared with
STEPS_S = (0.0, 0.5e-3, 1e-3, 2e-3)
MEASURED = ("h100-sxm", "h200")  # devices costsim's own microbenchmark fitted
# devices of one architecture share the two terms, so a source of one checks the fit of another
FAMILIES = {"blackwell": ("b200", "b300", "gb200", "gb300"), "cdna3": ("mi300x", "mi325x")}


def with_terms(hw: HardwareProfile, scale: float, step_s: float) -> HardwareProfile:
    eff = hw.efficiency.model_copy(update={"published_time_scale": float(scale), "published_step_s": float(step_s),
                                           "published_step_s_by_engine": {}})
    return hw.model_copy(update={"efficiency": eff})


def _log_errors(records: list[dict[str, Any]], hw: HardwareProfile) -> np.ndarray:
    out = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        predicted, _ = predict(r, hardware=hw)
        if predicted is not None and predicted > 0:
            out[i] = np.log(predicted / r["value"])
    return out


def grid(records: list[dict[str, Any]],
         profiles: dict[str, HardwareProfile]) -> tuple[list[tuple[float, float]], np.ndarray]:
    """Every (scale, step) candidate and the log errors of every record under it, each record on its own
    device's profile with the candidate terms (NaN: not predicted)."""
    settings = [(float(s), float(o)) for o in STEPS_S for s in SCALES]
    errors = np.empty((len(settings), len(records)))
    for name, hw in profiles.items():
        mine = [i for i, r in enumerate(records) if r["hardware"] == name]
        subset = [records[i] for i in mine]
        for k, (s, o) in enumerate(settings):
            errors[k, mine] = _log_errors(subset, with_terms(hw, s, o))
    return settings, errors


def choose(errors: np.ndarray, settings: list[tuple[float, float]], engines: np.ndarray,
           use: np.ndarray) -> tuple[float, dict[str, float], np.ndarray]:
    """The device's time scale, and a step time per engine, with the lowest median |log error| on the records
    in `use`; every record's log error under them (an engine absent from `use` gets no step time). Ties go
    to the smaller correction."""
    index = {setting: k for k, setting in enumerate(settings)}
    scales, steps = sorted({s for s, _ in settings}), sorted({o for _, o in settings})
    best: tuple[tuple[float, float], float, dict[str, float], np.ndarray] | None = None
    for scale in scales:
        step_of: dict[str, float] = {}
        for engine in sorted(set(engines[use])):
            rows = use & (engines == engine)
            scores = [_score(errors[index[(scale, o)], rows]) for o in steps]
            step_of[engine] = steps[int(np.argmin(scores))]  # the first of equal scores: the smallest step
        chosen = np.full(errors.shape[1], np.nan)
        for engine in set(engines):
            rows = engines == engine
            chosen[rows] = errors[index[(scale, step_of.get(engine, 0.0))], rows]
        key = (round(_score(chosen[use]), 6), abs(np.log(scale)))
        if best is None or key < best[0]:
            best = (key, scale, step_of, chosen)
    assert best is not None
    return best[1], best[2], best[3]


def _score(log_errors: np.ndarray) -> float:
    finite = log_errors[np.isfinite(log_errors)]
    return float(np.median(np.abs(finite))) if finite.size else np.inf


def fit_device(records: list[dict[str, Any]], hw: HardwareProfile | dict[str, HardwareProfile]) -> dict[str, Any]:
    """The fitted terms on all the records of a device (or of a family of devices, `hw` then a profile per
    name), and each source predicted by a fit that did not see it."""
    settings, errors = grid(records, hw if isinstance(hw, dict) else {hw.name: hw})
    sources = np.array([r["source"] for r in records])
    engines = np.array([r["engine"] for r in records])
    scale, steps, fitted = choose(errors, settings, engines, np.ones(len(records), dtype=bool))
    held = np.full(len(records), np.nan)
    folds = []
    for source in sorted(set(sources)):
        inside = sources == source
        if inside.all():
            break  # one source: nothing to hold out against
        k_scale, k_steps, k_errors = choose(errors, settings, engines, ~inside)
        held[inside] = k_errors[inside]
        folds.append({"source": str(source), "records": int(inside.sum()), "scale": k_scale, "step_s": k_steps,
                      "held_out_median_abs": _median_abs(k_errors[inside])})
    before = errors[settings.index((1.0, 0.0))]
    return {"scale": scale, "step_s": steps, "records": len(records), "predicted": int(np.isfinite(fitted).sum()),
            "sources": len(set(sources)), "fit_median_abs": _median_abs(fitted),
            "before_median_abs": _median_abs(before), "held_out": held, "before": before, "fitted": fitted,
            "folds": folds}


def _pairs(rows: list[dict[str, Any]], log_errors: np.ndarray) -> list[tuple[dict[str, Any], float]]:
    return [(r, float(np.expm1(x))) for r, x in zip(rows, log_errors, strict=True) if np.isfinite(x)]


def _band(pairs: list[tuple[dict[str, Any], float]]) -> float | None:
    """Median |error| of (record, error) pairs; None where there are none."""
    return _stats([e for _, e in pairs]).get("median_abs")


def _median_abs(log_errors: np.ndarray) -> float | None:
    """Median |error| of log errors (NaN: not predicted); None where none is finite."""
    return _stats(np.expm1(log_errors[np.isfinite(log_errors)])).get("median_abs")


def _stats(errors: Any) -> dict[str, Any]:
    e = np.asarray(errors, dtype=np.float64)
    if not e.size:
        return {"count": 0}
    return {"count": int(e.size), "median_abs": float(np.median(np.abs(e))),
            "p90_abs": float(np.quantile(np.abs(e), 0.9)), "median_signed": float(np.median(e))}


def calibrate_published(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Every device with published records: its fit (or, for measured devices, its held-out error) and the
    Calibration it then carries; the held-out errors pooled overall and per device, metric, engine,
    source and weight precision."""
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_device[r["hardware"]].append(r)
    devices: dict[str, Any] = {}
    fits: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    pooled: list[tuple[dict[str, Any], float]] = []
    for name, rows in sorted(by_device.items()):
        if name in MEASURED:
            held = [r for r in rows if not fitted_on(r)]
            errors = _pairs(held, _log_errors(held, load_hardware(name)))
            band = _band(errors)
            cal = Calibration(status="measured", records=len(errors), sources=len({r["source"] for r, _ in errors}),
                              error_band=band, evidence="kernel model fitted on costsim's own microbenchmark of "
                              "this device; band: its published serving records no fit saw")
            devices[name] = {"calibration": cal, "scale": 1.0, "step_s": {}, "records": len(rows)}
            pooled += errors
            continue
        family = next((f for f, members in FAMILIES.items() if name in members), name)
        if family not in fits:
            together = [r for r in records if r["hardware"] in FAMILIES.get(family, (name,))
                        and r["hardware"] not in MEASURED]
            fits[family] = (together, fit_device(together, {r["hardware"]: load_hardware(r["hardware"])
                                                            for r in together}))
        together, fit = fits[family]
        mine = np.array([r["hardware"] == name for r in together])
        held = _pairs(rows, fit["held_out"][mine])
        before = _pairs(rows, fit["before"][mine])
        held_band, before_band = _band(held), _band(before)
        # the terms are applied only where sources they did not see agree better than with no terms at all
        credible = held_band is not None and before_band is not None and held_band < before_band
        terms = {"scale": fit["scale"], "step_s": fit["step_s"]} if credible else {"scale": 1.0, "step_s": {}}
        if credible:
            errors, band, evidence = held, held_band, f"terms fitted on the {family} family; band: leave-one-source-out"
        else:
            errors, band = before, before_band
            evidence = ("terms not applied: " + ("one source, nothing checks a fit" if held_band is None else
                        f"leave-one-source-out ({held_band:.0%}) no better than none ({before_band:.0%})")
                        + "; band: the kernel model on these records, which no fit saw")
        if not errors:  # records, but none costsim can run as published: no evidence on this device yet
            cal = Calibration(status="datasheet", evidence=f"{len(rows)} published records, none that costsim serve "
                              "reproduces as published (see costsim validate measurements/published/)")
        else:
            cal = Calibration(status="published", records=len(errors),
                              sources=len({r["source"] for r, _ in errors}), error_band=band, evidence=evidence)
        devices[name] = {"calibration": cal, "applied": credible, "family": family, **terms, "records": len(rows),
                         "before_median_abs": before_band, "held_out_median_abs": held_band,
                         "fit_median_abs": _median_abs(fit["fitted"][mine]), "folds": fit["folds"]}
        pooled += errors
    summary = {"overall": _stats([e for _, e in pooled])}
    for key in ("hardware", "metric", "engine", "source", "weight_dtype"):
        groups: dict[str, list[float]] = defaultdict(list)
        for r, e in pooled:
            groups[str(r[key])].append(e)
        summary[f"by_{key}"] = {k: _stats(v) for k, v in sorted(groups.items())}
    tpot = defaultdict(list)
    for r, e in pooled:
        if r["metric"] in ("tpot_s", "itl_s"):
            tpot[r["hardware"]].append(e)
    summary["tpot_bias_by_hardware"] = {k: _stats(v) for k, v in sorted(tpot.items())}
    return {"devices": devices, "summary": summary}


def calibrate_files(paths: list[str], write: bool = False) -> dict[str, Any]:
    """`costsim calibrate --published`: the published records of `paths` (files or folders) fitted, and with
    `write` each device's terms and calibration stored in its profile; the result as plain data (records,
    devices with their calibration as a dict, summary)."""
    from costsim.evidence.published import read_published
    from costsim.inputs.data import data_dir
    from costsim.inputs.measurements import expand_paths

    records = [r for path in expand_paths(paths) for r in read_published(path)]
    result = calibrate_published(records)
    if write:
        for name, device in result["devices"].items():
            write_calibration(data_dir("hardware_profiles") / f"{name}.toml", device)
    devices = {name: {**{k: v for k, v in d.items() if k != "calibration"},
                      "calibration": d["calibration"].model_dump()} for name, d in result["devices"].items()}
    return {"records": len(records), "devices": devices, "summary": result["summary"]}


def write_calibration(path: Path, device: dict[str, Any]) -> None:
    """Store a device's two fitted terms in its profile's [efficiency] table and its [calibration] table,
    in place; the rest of the file is kept as it is."""
    import datetime as dt
    import re

    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^\[calibration\]\n(?:(?!^\[).*\n?)*", "", text, flags=re.M).rstrip("\n") + "\n"
    text = re.sub(r"^\[efficiency\.published_step_s_by_engine\]\n(?:(?!^\[).*\n?)*", "", text, flags=re.M)
    terms = {"published_time_scale": device["scale"], "published_step_s": 0.0}
    section = re.search(r"^\[efficiency\]\n(.*?)(?=^\[|\Z)", text, flags=re.S | re.M)
    if section is None:
        text += "\n[efficiency]\n" + "".join(f"{k} = {v:.6g}\n" for k, v in terms.items())
    else:
        body = section.group(1)
        for key, value in terms.items():
            line = f"{key} = {value:.6g}"
            pattern = re.compile(rf"^{key}\s*=.*$", flags=re.M)
            body = pattern.sub(line, body) if pattern.search(body) else body.rstrip("\n") + f"\n{line}\n"
        text = text[: section.start(1)] + body.rstrip("\n") + "\n\n" + text[section.end(1):].lstrip("\n")
    cal: Calibration = device["calibration"]
    lines = [f'status = "{cal.status}"', f"records = {cal.records}", f"sources = {cal.sources}"]
    if cal.error_band is not None:
        lines.append(f"error_band = {cal.error_band:.4f}")
    lines.append(f'evidence = "{cal.evidence}; costsim calibrate --published, {dt.date.today().isoformat()}"')
    text = text.rstrip("\n") + "\n\n[calibration]\n" + "\n".join(lines) + "\n"
    steps = {e: o for e, o in device["step_s"].items() if o > 0}
    if steps:
        text += "\n[efficiency.published_step_s_by_engine]\n" + "".join(f"{e} = {o:.6g}\n" for e, o in steps.items())
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
