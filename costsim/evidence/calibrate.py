"""`costsim calibrate`: fit a hardware profile's efficiency parameters to measured kernels.

Few, physical parameters, each fitted on the records that isolate it, with scipy's least squares
on log time (soft-L1 loss, so a few odd points do not drag the fit) and bounds that keep them
physical (no efficiency above 1):

- memory curve (memory_max, memory_half_bytes) on device copies;
- GEMM curve (matmul_max, matmul_half_rows, matmul_latency_s, matmul_half_k, matmul_roofline_exponent) on
  cuBLASLt GEMMs, memory curve held;
- prefill attention (attention_max, attention_half_pairs) on one attention implementation;
- chunked scans (scan_max) on one scan implementation;
- launch overheads from the launch records (medians).

Hold-out by a fixed rule, stratified by regime (`hold_out_split`): within each group the records are
put in strata by the kernel path they take (`regime`: FlashAttention-2 decode's split-KV schedule, one
stratum elsewhere); within each stratum the distinct shapes are sorted by size and every other shape
(with all its variants: read/copy, dtypes, implementations) is held out, the first one fitted. So a
regime seen at two shapes or more is in both sets, one seen at a single shape is fitted, and the report
gives the error on the fitted and on the held-out records.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from costsim.errors import CostsimError
from costsim.evidence.validate import flash2_schedule, implementation_key, predict_record
from costsim.spec.hardware import HardwareProfile

SIZE_KEYS = ("bytes", "m", "seq_len", "context", "batch")


@dataclass(frozen=True)
class Group:
    name: str
    params: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]
    select: Any  # record -> bool


def _size(r: dict) -> tuple:
    return (*(float(r.get(k, 0)) for k in SIZE_KEYS), float(r.get("n", 0)) * float(r.get("k", 0)))


def regime(r: dict, hw: HardwareProfile) -> str:
    """The kernel path a record takes, as far as it changes which efficiencies its time shows: for
    FlashAttention-2's softmax decode, unsplit (its ordinary forward kernel, bound by the padded query
    tile's compute) or split-KV with its split count rounded up to a power of two (validate's split-KV
    floor, kernel_tiles.flash2_split_schedule); '' (one stratum) for everything else."""
    if r.get("op") != "attention_decode" or r.get("source") != "torch-sdpa-flash" or r.get("kv_lora_rank"):
        return ""
    if hw.compute_units is None:
        return ""
    schedule = flash2_schedule(r, hw)
    if schedule is None:
        return "flash2 unsplit"
    return f"flash2 split-KV <= {2 ** math.ceil(math.log2(max(schedule[0], 1)))} splits"


def hold_out_split(records: list[dict], hw: HardwareProfile) -> tuple[list[dict], list[dict]]:
    """(fit, held-out) records of one group: within each regime (`regime`), the distinct shapes sorted by
    size, every other one held out with all its variants, starting with the second; a regime of one shape
    is fitted. Both lists keep the records' order; together they are the records, each once."""
    keys = [(regime(r, hw), _size(r)) for r in records]
    strata: dict[str, set[tuple]] = {}
    for stratum, size in keys:
        strata.setdefault(stratum, set()).add(size)
    held = {(stratum, size) for stratum, sizes in strata.items() for size in sorted(sizes)[1::2]}
    flags = [key in held for key in keys]
    return ([r for r, h in zip(records, flags, strict=True) if not h],
            [r for r, h in zip(records, flags, strict=True) if h])


def groups(attention_source: str, scan_source: str) -> list[Group]:
    return [
        Group("memory", ("memory_max", "memory_half_bytes"), ((0.3, 1.0), (1e4, 1e9)),
              lambda r: r["op"] == "copy" and r["source"] == "microbench"),
        Group("gemm", ("matmul_max", "matmul_half_rows", "matmul_latency_s", "matmul_half_k",
                       "matmul_roofline_exponent"),
              ((0.05, 1.0), (1.0, 8192.0), (1e-8, 3e-5), (1.0, 8192.0), (1.0, 64.0)),
              lambda r: r["op"] == "gemm"),
        Group("prefill attention", ("attention_max", "attention_half_pairs"), ((0.05, 1.0), (1e3, 1e9)),
              lambda r: r["op"] == "attention_prefill" and r["source"] == attention_source
              and not r.get("blocks_selected")),
        Group("chunked scan", ("scan_max", "scan_half_flops"), ((0.005, 1.0), (1e6, 1e14)),
              lambda r: r["op"] == "linear_prefill" and r["source"] == scan_source),
        Group("state update", ("state_update_max", "state_update_half_bytes"), ((0.05, 1.0), (1e4, 1e10)),
              lambda r: r["op"] == "linear_decode" and r["source"] == scan_source),
    ]


# Per implementation: which efficiencies describe one kernel of that op class.
IMPLEMENTATION_PARAMS: dict[str, tuple[tuple[str, tuple[float, float]], ...]] = {
    "attention_prefill": (("attention_max", (0.05, 1.0)), ("attention_half_pairs", (1e3, 1e9))),
    "attention_decode": (("memory_max", (0.05, 1.0)), ("memory_half_bytes", (1e4, 1e10)),
                         ("attention_max", (0.02, 1.0))),
    "linear_decode": (("state_update_max", (0.05, 1.0)), ("state_update_half_bytes", (1e4, 1e10))),
    "linear_prefill": (("scan_max", (0.005, 1.0)), ("scan_half_flops", (1e6, 1e14))),
}


# FlashAttention-2's split-KV decode (validate._split_kv_floor): its tables get these terms too
SPLIT_KV_PARAMS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("splitkv_fixed_s", (1e-7, 5e-5)), ("splitkv_per_split_s", (1e-9, 2e-6)), ("splitkv_per_block_s", (1e-8, 2e-5)))
SPLIT_KV_TABLES = "torch-sdpa-flash/attention_decode/"

# The combine's time per split shows only over a wide range of split counts: the H100's records reach 32
# splits, and there the split-KV terms trade off against the memory curve (fitted on them, they put the
# H100's per-split time at twice the H200's on the same GH100 SMs); the H200's reach 128.
SPLIT_KV_MIN_SPLITS = 64


def _max_splits(body: list[dict], key: str, hw: HardwareProfile) -> int:
    """The most splits FlashAttention-2 runs among the records of one table (0 if none splits)."""
    schedules = (flash2_schedule(r, hw) for r in body
                 if r["op"] == "attention_decode" and implementation_key(r) == key)
    return max((s[0] for s in schedules if s), default=0)


UNSET_START = {"matmul_half_k": 64.0, "matmul_roofline_exponent": 4.0,
               "splitkv_fixed_s": 5e-6, "splitkv_per_split_s": 1e-7, "splitkv_per_block_s": 2e-6}


def _with(hw: HardwareProfile, values: dict[str, float]) -> HardwareProfile:
    eff = hw.efficiency.model_copy(update=values)
    return hw.model_copy(update={"efficiency": eff})


def _errors(records: list[dict], hw: HardwareProfile) -> np.ndarray:
    return np.array([predict_record(r, hw) / r["time_s"] - 1.0 for r in records])


def _summary(errors: np.ndarray) -> dict[str, float]:
    if errors.size == 0:
        return {"count": 0}
    a = np.abs(errors)
    return {"count": int(a.size), "median_abs": float(np.median(a)), "p90_abs": float(np.percentile(a, 90)),
            "max_abs": float(a.max())}


def calibrate(records: list[dict], hw: HardwareProfile, attention_source: str = "torch-sdpa-cudnn",
              scan_source: str = "fla") -> dict[str, Any]:
    """Fit the profile's efficiencies to measurement records (least squares on log time, every other
    shape of each regime held out, `hold_out_split`): top-level groups, then one table per implementation.
    Returns the fitted values, the per-group report, held-out error by op class and source, and the
    fitted profile."""
    body = [r for r in records if r.get("op")]
    if not body:
        raise CostsimError("calibrate: no measurement records; pass files written by `costsim bench run`")
    earlier = dict(hw.efficiency.implementations)
    hw = _with(hw, {"implementations": {}})  # fit from the defaults, not from an earlier fit
    launches = {r["variant"]: r["time_s"] for r in body if r["op"] == "launch"}
    fitted: dict[str, float] = {}
    if "graph" in launches:
        fitted["graph_overhead_s"] = float(launches["graph"])
    if "stream" in launches:
        fitted["kernel_overhead_s"] = float(launches["stream"])
    hw = _with(hw, fitted)
    report = []
    for g in groups(attention_source, scan_source):
        values, entry = _fit_group(g, body, hw)
        report.append(entry)
        if values:
            hw = _with(hw, values)
            fitted.update(values)
    implementations: dict[str, dict[str, float]] = {}
    for key in sorted({implementation_key(r) for r in body if r["op"] in IMPLEMENTATION_PARAMS}):
        params = IMPLEMENTATION_PARAMS[key.split("/")[1]]
        if key.startswith(SPLIT_KV_TABLES) and _max_splits(body, key, hw) >= SPLIT_KV_MIN_SPLITS:
            params = params + SPLIT_KV_PARAMS
        g = Group(key, tuple(p for p, _ in params), tuple(b for _, b in params),
                  lambda r, key=key: r["op"] in IMPLEMENTATION_PARAMS and implementation_key(r) == key)
        values, entry = _fit_group(g, body, hw)
        report.append(entry)
        if values:
            implementations[key] = values
    # implementations these records do not cover keep their earlier fit (e.g. H100 torch kernels on H200);
    # they are listed, since a table whose key costsim no longer produces would be kept but never read
    kept_earlier = sorted(set(earlier) - set(implementations))
    implementations = {**earlier, **implementations}
    fitted_hw = _with(hw, {"implementations": implementations})
    held = {id(r): r for entry in report for r in entry.pop("_held", [])}
    return {"hardware": hw.name, "efficiency": fitted, "implementations": implementations,
            "kept_earlier": kept_earlier, "groups": report,
            "held_out_by_op": _by(held.values(), fitted_hw, lambda r: r["op"]),
            "held_out_by_source": _by(held.values(), fitted_hw, lambda r: r["source"]),
            "profile": fitted_hw}


def _by(records: Any, hw: HardwareProfile, label_of: Any) -> dict[str, dict[str, float]]:
    """Error of the held-out records under the final profile (every table in place), grouped."""
    groups_: dict[str, list[dict]] = {}
    for r in records:
        groups_.setdefault(label_of(r), []).append(r)
    return {k: _summary(_errors(v, hw)) for k, v in sorted(groups_.items())}


def _fit_group(g: Group, body: list[dict], hw: HardwareProfile) -> tuple[dict[str, float], dict[str, Any]]:
    from scipy.optimize import least_squares

    chosen = [r for r in body if g.select(r)]
    fit_set, hold_set = hold_out_split(chosen, hw)  # every other shape per regime, variants together
    if len(fit_set) < len(g.params) + 2 and len(fit_set) >= 2:
        # too few shapes for the whole curve: fit its ceiling only, keep the rest as it is
        g = Group(g.name, g.params[:1], g.bounds[:1], g.select)
    if len(fit_set) < len(g.params) + 1:
        return {}, {"group": g.name, "skipped": f"{len(fit_set)} records to fit"}
    before = _summary(_errors(hold_set, hw))
    lo = np.log([b[0] for b in g.bounds])
    hi = np.log([b[1] for b in g.bounds])
    # a parameter not set yet (state_update_*) starts from the memory curve it refines
    fallback = {"state_update_max": "memory_max", "state_update_half_bytes": "memory_half_bytes"}
    current = [getattr(hw.efficiency, p) if getattr(hw.efficiency, p) is not None
               else getattr(hw.efficiency, fallback[p]) for p in g.params]
    # terms that are off (0) start from a value inside their range, not at its edge
    current = [UNSET_START.get(p, c) if c == 0 else c for p, c in zip(g.params, current, strict=True)]
    initial = [max(c, b[0]) for c, b in zip(current, g.bounds, strict=True)]
    start = np.clip(np.log(initial), lo + 1e-9, hi - 1e-9)
    times = np.array([r["time_s"] for r in fit_set])

    def residual(x: np.ndarray, fit_set=fit_set, times=times, g=g, base=hw) -> np.ndarray:
        trial = _with(base, dict(zip(g.params, np.exp(x), strict=True)))
        predicted = np.array([predict_record(r, trial) for r in fit_set])
        return np.log(predicted) - np.log(times)

    # A ceiling that binds nowhere at the start has no gradient (a decode kernel is memory-bound until
    # its compute ceiling drops below the padded work it does): start again with the ceilings lowered
    # and keep the best fit.
    ceilings = np.array([p.endswith("_max") for p in g.params])
    sol = None
    for scale in (1.0, 0.5, 0.25) if ceilings.any() else (1.0,):
        x0 = np.clip(np.where(ceilings, start + np.log(scale), start), lo + 1e-9, hi - 1e-9)
        trial_sol = least_squares(residual, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1)
        if sol is None or trial_sol.cost < 0.999 * sol.cost:  # a real improvement, not a flat direction
            sol = trial_sol
    values = dict(zip(g.params, (float(v) for v in np.exp(sol.x)), strict=True))
    after = _with(hw, values)
    return values, {"group": g.name, "params": values, "fit": _summary(_errors(fit_set, after)),
                    "held_out_before": before, "held_out": _summary(_errors(hold_set, after)),
                    "_held": hold_set}


def transfer(fitted: dict[str, float], implementations: dict[str, dict[str, float]],
             records: list[dict]) -> dict[str, Any]:
    """Apply efficiencies fitted on one GPU to another GPU's profile (its own peaks and bandwidth)
    and report the error on that GPU's records: what a user of an unmeasured GPU relies on."""
    from costsim.inputs.hardware import load_hardware

    by_op: dict[str, list[float]] = {}
    profiles: dict[str, HardwareProfile] = {}
    for r in records:
        if not r.get("op") or r["op"] == "launch":
            continue
        if r["hardware"] not in profiles:
            profiles[r["hardware"]] = _with(load_hardware(r["hardware"]),
                                            {**fitted, "implementations": implementations})
        error = predict_record(r, profiles[r["hardware"]]) / r["time_s"] - 1.0
        by_op.setdefault(r["op"], []).append(error)
        by_op.setdefault("all", []).append(error)
    return {op: _summary(np.asarray(errs)) for op, errs in sorted(by_op.items())}


def write_profile(path: Path, fitted: dict[str, float], sources: list[str],
                  implementations: dict[str, dict[str, float]] | None = None) -> None:
    """Replace the [efficiency] values in a profile TOML in place (and its per-implementation tables)
    and record where they came from."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'^\[efficiency\.implementations\."[^"]*"\]\n(?:(?!^\[).*\n?)*', "", text, flags=re.M)
    section = re.search(r"^\[efficiency\]\n(.*?)(?=^\[|\Z)", text, flags=re.S | re.M)
    if section is None:
        raise CostsimError(f"{path}: no [efficiency] table to update")
    body = section.group(1)
    for key, value in fitted.items():
        line = f"{key} = {value:.6g}"
        pattern = re.compile(rf"^{key}\s*=.*$", flags=re.M)
        body = pattern.sub(line, body) if pattern.search(body) else body.rstrip("\n") + f"\n{line}\n"
    for key, values in (implementations or {}).items():
        body = body.rstrip("\n") + f'\n\n[efficiency.implementations."{key}"]\n'
        body += "".join(f"{k} = {v:.6g}\n" for k, v in values.items())
    text = text[: section.start(1)] + body.rstrip("\n") + "\n\n" + text[section.end(1):].lstrip("\n")
    note = (f'efficiency = "fitted by costsim calibrate on {", ".join(sources)}; '
            f'{dt.date.today().isoformat()}"')
    text = re.sub(r"^efficiency\s*=.*$", note, text, count=1, flags=re.M)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
