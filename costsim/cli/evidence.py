"""Measurements: `costsim validate`, `calibrate`, `bench`."""

from __future__ import annotations

from typing import Annotated

import typer

from costsim.cli.common import DEFAULT_HARDWARE, Format, FormatOpt, OutputOpt, _emit, _write


def validate(
    files: Annotated[list[str], typer.Argument(help="measurement .jsonl files written by the microbenchmark, "
                                               "published records, or a folder of them")],
    hardware: Annotated[str | None, typer.Option("--hardware", "-H", help="profile for all records "
                                                 "(default: each record's own)")] = None,
    plot: Annotated[str | None, typer.Option(help="write predicted-vs-measured chart (HTML) here")] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Predict every measured kernel with the timing model; error per record, per op, family, source."""
    from costsim.evidence.validate import validate as run_validate
    from costsim.inputs.measurements import expand_paths, read_measurements
    from costsim.output.formats import dumps_csv, dumps_json, dumps_table

    files = expand_paths(files)
    serve_files = [p for p in files if _is_serve_file(p)]
    if serve_files:
        if len(serve_files) != len(files):
            from costsim.errors import CostsimError

            raise CostsimError("validate: give published serve records (kind = serve) and kernel records in "
                               "separate calls")
        _validate_published(serve_files, fmt, output)
        return
    records = [r for path in files for r in read_measurements(path)]
    result = run_validate(records, hardware)
    if plot:
        from costsim.output.plots import validation_figure, write_html

        write_html(validation_figure(result["records"]), plot)
    if fmt is Format.json:
        _write(dumps_json(result), output)
    elif fmt is Format.csv:
        _write(dumps_csv(result["records"]), output)
    else:
        rows = []
        for group in ("by_implementation", "by_source", "by_hardware"):
            for label, st in result["summary"][group].items():
                rows.append([group[3:], label, st["count"], f"{st['median_abs']:.1%}", f"{st['p90_abs']:.1%}",
                             f"{st['max_abs']:.1%}", f"{st['median_signed']:+.1%}"])
        _write(dumps_table(["by", "group", "records", "median |err|", "p90 |err|", "max |err|", "median err"], rows,
                           title="predicted vs measured kernel time (err = predicted/measured - 1)"), output)


def _is_serve_file(path: str) -> bool:
    import json
    from pathlib import Path

    try:
        with Path(path).open(encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip()), "")
        return json.loads(first).get("kind") == "serve"
    except (OSError, ValueError, AttributeError):
        return False


def _validate_published(files: list[str], fmt: Format, output: str | None) -> None:
    """Published serving measurements predicted by costsim serve, fit and held-out sets apart."""
    from costsim.evidence.published import check, read_published
    from costsim.output.formats import dumps_csv, dumps_json, dumps_table

    result = check([r for path in files for r in read_published(path)])
    if fmt is Format.json:
        _write(dumps_json(result), output)
        return
    if fmt is Format.csv:
        _write(dumps_csv([{k: v for k, v in r.items() if k not in ("layout", "quote")} for r in result["records"]]),
               output)
        return
    def label(key: str) -> str:  # a source's address without its commit, shortened for the table (JSON: whole)
        import re

        key = re.sub(r"@[0-9a-f]{7,40}$", "", key).replace("source:github:", "source:")
        return key if len(key) <= 72 else key[:key.index(":") + 1] + "..." + key[-(68 - key.index(":")):]

    rows = [[label(k), v["count"], f"{v['median_signed']:+.1%}", f"{v['median_abs']:.1%}", f"{v['p90_abs']:.1%}",
             f"{v['max_abs']:.1%}"] for k, v in result["summary"].items() if isinstance(v, dict)]
    text = dumps_table(["set/metric[:group]", "records", "median err", "median |err|", "p90 |err|", "max |err|"],
                       rows, title="costsim serve vs published measurements (err = predicted/measured - 1)")
    text += (f"\n\n{result['summary']['cases']} cases; {result['summary']['not_predicted']} records not predicted "
             "(see --format json: not_predicted says why)")
    _write(text, output)


def calibrate(
    files: Annotated[list[str] | None, typer.Argument(help="measurement .jsonl files of one GPU (with "
                                                     "--published: published records, default "
                                                     "measurements/published/)")] = None,
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="profile to fit")] = DEFAULT_HARDWARE,
    attention_source: Annotated[str, typer.Option(help="prefill attention the engine assumes")] = "torch-sdpa-cudnn",
    scan_source: Annotated[str, typer.Option(help="chunked-scan implementation the engine assumes")] = "fla",
    write: Annotated[bool, typer.Option("--write", help="store the fitted values in the profile file")] = False,
    predict: Annotated[list[str] | None, typer.Option(help="measurements of another GPU: apply the fit to its "
                                                      "profile and report the error there")] = None,
    published: Annotated[bool, typer.Option("--published", help="fit every device with published serving "
                                            "records (time scale and step time), leave-one-source-out")] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Fit the profile's efficiency parameters to measurements; report fitted and held-out error."""
    from pathlib import Path

    if published:
        _calibrate_published(files or [], write, fmt, output)
        return
    if not files:
        from costsim.errors import CostsimError

        raise CostsimError("calibrate: give the measurement .jsonl files to fit (or --published)")

    from costsim.evidence.calibrate import calibrate as run_calibrate
    from costsim.evidence.calibrate import write_profile
    from costsim.inputs.data import data_dir
    from costsim.inputs.hardware import load_hardware
    from costsim.inputs.measurements import read_measurements
    from costsim.output.formats import dumps_json, dumps_table

    hw = load_hardware(hardware)
    records = [r for path in files for r in read_measurements(path)
               if r.get("record") == "header" or r.get("hardware") == hw.name]
    result = run_calibrate(records, hw, attention_source, scan_source)
    if write:
        is_file = Path(hardware).suffix == ".toml"
        target = Path(hardware) if is_file else data_dir("hardware_profiles") / f"{hw.name}.toml"
        write_profile(target, result["efficiency"], [Path(f).name for f in files], result["implementations"])
    shown = {k: v for k, v in result.items() if k != "profile"}
    if predict:
        from costsim.evidence.calibrate import transfer

        shown["transfer"] = transfer(result["efficiency"], result["implementations"],
                                     [r for p in predict for r in read_measurements(p)])
    if fmt is Format.table:
        rows = []
        for g in result["groups"]:
            if "skipped" in g:
                rows.append([g["group"], "skipped: " + g["skipped"], "", "", ""])
                continue
            params = ", ".join(f"{k}={v:.4g}" for k, v in g["params"].items())
            rows.append([g["group"], params, f"{g['fit']['median_abs']:.1%}",
                         f"{g['held_out_before']['median_abs']:.1%}", f"{g['held_out']['median_abs']:.1%}"])
        text = dumps_table(["group", "fitted", "fit median |err|", "held-out before", "held-out after"], rows,
                           title=f"calibration of {hw.name}" + (" (written)" if write else ""))
        held = [[by, k, st["count"], f"{st['median_abs']:.1%}", f"{st['p90_abs']:.1%}", f"{st['max_abs']:.1%}"]
                for by in ("op", "source") for k, st in result[f"held_out_by_{by}"].items() if st["count"]]
        text += "\n\n" + dumps_table(["by", "group", "records", "median |err|", "p90 |err|", "max |err|"], held,
                                     title="held-out records (every other shape within each regime), under the "
                                           "fitted profile")
        if result["kept_earlier"]:
            text += ("\n\nkept from the profile, not refit by these records (a key costsim no longer produces is "
                     "never read; delete its table by hand): " + ", ".join(result["kept_earlier"]))
        if predict:
            moved = [[op, st["count"], f"{st['median_abs']:.1%}", f"{st['p90_abs']:.1%}"]
                     for op, st in shown["transfer"].items()]
            text += "\n\n" + dumps_table(["op", "records", "median |err|", "p90 |err|"], moved,
                                           title=f"fit of {hw.name} applied to {', '.join(predict)}")
        _write(text, output)
    else:
        _write(dumps_json(shown), output)


bench_app = typer.Typer(help="The bundled CUDA microbenchmark.", no_args_is_help=True)


@bench_app.command("run")
def bench_run(
    out: Annotated[str, typer.Option(help="JSON Lines file to write")] = "measurements/local.jsonl",
    quick: Annotated[bool, typer.Option(help="a few points per op, seconds instead of a minute")] = False,
    no_torch: Annotated[bool, typer.Option("--no-torch", help="skip the PyTorch / fla kernels")] = False,
    torch_deadline: Annotated[float | None, typer.Option(
        min=1, help="seconds the PyTorch / fla part may take (default 480; 90 with --quick)")] = None,
) -> None:
    """Build and run the microbenchmark (needs nvcc and an NVIDIA GPU); write measurement records."""
    from pathlib import Path

    from costsim.evidence.bench import run_bench

    for path in run_bench(Path(out), quick=quick, torch_kernels=not no_torch, torch_deadline_s=torch_deadline):
        _emit(f"wrote {path}")


@bench_app.command("model-step")
def bench_model_step(
    out: Annotated[str, typer.Option(help="JSON Lines file to write")] = "measurements/local-model-step.jsonl",
    quick: Annotated[bool, typer.Option(help="one decode and one prefill point per model")] = False,
    deadline: Annotated[float | None, typer.Option(min=1, help="seconds for all five models (default 600)")] = None,
) -> None:
    """Time whole decode steps and prefills of synthetic models (real shapes, random weights) with CUDA
    graphs; compare with `costsim validate FILE`. Needs PyTorch with CUDA (and fla for the hybrid)."""
    from pathlib import Path

    from costsim.evidence.bench import run_model_steps

    _emit(f"wrote {run_model_steps(Path(out), quick=quick, deadline_s=deadline)}")


def _calibrate_published(files: list[str], write: bool, fmt: Format, output: str | None) -> None:
    """`costsim calibrate --published`: every device's fit on its published records, and the held-out error."""
    from costsim.evidence.published_fit import calibrate_files
    from costsim.inputs.data import data_dir
    from costsim.output.formats import dumps_json, dumps_table

    result = calibrate_files(files or [str(data_dir("measurements") / "published")], write)
    if fmt is not Format.table:
        _write(dumps_json({k: result[k] for k in ("devices", "summary")}), output)
        return

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    def steps(by_engine: dict[str, float]) -> str:
        return ", ".join(f"{e} {o * 1e3:.1f}" for e, o in sorted(by_engine.items()) if o > 0) or "0"

    rows = [[name, d.get("family", "-"), d["calibration"]["status"], d["records"], d["calibration"]["sources"],
             f"{d['scale']:.3f}", steps(d["step_s"]), pct(d.get("before_median_abs")), pct(d.get("fit_median_abs")),
             pct(d["calibration"]["error_band"])] for name, d in result["devices"].items()]
    text = dumps_table(["device", "fitted with", "status", "records", "sources", "time scale", "step ms by engine",
                        "before", "fitted", "band"], rows,
                       title="published serving records: each device's fit (median |error|; band: leave-one-source-"
                             "out, or the kernel model where no terms are applied)" + (" (written)" if write else ""))
    summary = result["summary"]
    held = [["all", "", summary["overall"].get("count", 0), pct(summary["overall"].get("median_abs")),
             pct(summary["overall"].get("p90_abs")), pct(summary["overall"].get("median_signed"))]]
    for group in ("by_hardware", "by_metric", "by_engine", "by_weight_dtype"):
        held += [[group[3:], k, v["count"], pct(v["median_abs"]), pct(v["p90_abs"]), pct(v["median_signed"])]
                 for k, v in summary[group].items() if v["count"]]
    text += "\n\n" + dumps_table(["by", "group", "records", "median |err|", "p90 |err|", "median err"], held,
                                 title="held-out errors (err = predicted/measured - 1)")
    _write(text, output)

