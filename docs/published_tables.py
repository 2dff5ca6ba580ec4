"""The published-evidence tables of docs/validation.md and docs/hardware.md, from the stored result of the
published calibration (measurements/published/calibration.json):

    python docs/published_tables.py --fit    # run costsim calibrate --published, store the result, write
                                             # each device's terms and calibration into its profile
    python docs/published_tables.py          # rewrite the two tables from the stored result

A test renders the tables from the stored result and fails if the docs are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "measurements" / "published" / "calibration.json"
BEGIN, END = "<!-- published-evidence:begin -->", "<!-- published-evidence:end -->"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def fit() -> dict[str, Any]:
    from costsim.evidence.published_fit import calibrate_files

    stored = calibrate_files([str(RESULT.parent)], write=True)
    RESULT.write_text(json.dumps(stored, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return stored


def validation_table(stored: dict[str, Any]) -> str:
    s = stored["summary"]
    lines = [f"{stored['records']} published records; errors of costsim serve on records its fit did not see "
             "(leave-one-source-out for published fits; for H100 and H200, whose kernels costsim measures, the records "
             "no fit saw). err = predicted / measured - 1.", "",
             "| group | records | median \\|err\\| | p90 \\|err\\| | median err |", "|---|---|---|---|---|"]
    o = s["overall"]
    lines.append(f"| all | {o.get('count', 0)} | {_pct(o.get('median_abs'))} | {_pct(o.get('p90_abs'))} | "
                 f"{_pct(o.get('median_signed'))} |")
    for group in ("by_hardware", "by_engine", "by_metric", "by_weight_dtype"):
        for key, st in s[group].items():
            if st["count"]:
                lines.append(f"| {group[3:]} {key} | {st['count']} | {_pct(st['median_abs'])} | "
                             f"{_pct(st['p90_abs'])} | {_pct(st['median_signed'])} |")
    lines += ["", "TPOT / ITL signed bias per device (held out):", "",
              "| device | records | median err |", "|---|---|---|"]
    lines += [f"| {k} | {v['count']} | {_pct(v['median_signed'])} |" for k, v in s["tpot_bias_by_hardware"].items()]
    return "\n".join(lines)


def hardware_table(stored: dict[str, Any]) -> str:
    lines = ["| profile | fitted with | calibration | records (sources) | time scale | step time per engine | "
             "no terms | fit, held out | error band |", "|---|---|---|---|---|---|---|---|---|"]
    for name, d in sorted(stored["devices"].items()):
        cal = d["calibration"]
        applied = "" if d.get("applied", True) else " (not applied)"
        lines.append(f"| {name} | {d.get('family', '-')} | {cal['status']} | {cal['records']} ({cal['sources']}) | "
                     f"{d['scale']:.3f}{applied} | "
                     f"{_steps(d['step_s'])} | {_pct(d.get('before_median_abs'))} | "
                     f"{_pct(d.get('held_out_median_abs'))} | {_pct(cal['error_band'])} |")
    return "\n".join(lines) + ("\n\nEvery other profile is `datasheet`: peaks only, no evidence yet; its answers say "
                               "\"uncalibrated: datasheet peaks only\".")


def _steps(by_engine: dict[str, float]) -> str:
    shown = [f"{e} {o * 1e3:.1f} ms" for e, o in sorted(by_engine.items()) if o > 0]
    return ", ".join(shown) or "0"


def _replace(text: str, table: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table + "\n" + text[end:]


def render_pages(stored: dict[str, Any]) -> dict[Path, str]:
    pages = {ROOT / "docs" / "validation.md": validation_table(stored),
             ROOT / "docs" / "hardware.md": hardware_table(stored)}
    return {path: _replace(path.read_text(encoding="utf-8"), table) for path, table in pages.items()}


def main() -> None:
    stored = fit() if "--fit" in sys.argv else json.loads(RESULT.read_text(encoding="utf-8"))
    for path, text in render_pages(stored).items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
