"""Options, output formats and helpers every command shares."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from costsim.errors import CostsimError

DEFAULT_MODEL = "llama-3.1-70b"


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Dtype(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    int8 = "int8"
    fp4 = "fp4"
    nvfp4 = "nvfp4"
    mxfp4 = "mxfp4"
    int4 = "int4"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]


WeightDtypeOpt = Annotated[Dtype, typer.Option(help="weight storage type")]


KvDtypeOpt = Annotated[Dtype, typer.Option(help="KV / latent cache type")]


StateDtypeOpt = Annotated[Dtype, typer.Option(help="recurrent state type")]
ExpertDtypeOpt = Annotated[Dtype | None, typer.Option(
    "--expert-dtype", help="routed experts' weight type where the checkpoint stores them apart (gpt-oss: mxfp4 "
    "experts, bf16 attention); default: --weight-dtype")]


PriceOpt = Annotated[float | None, typer.Option(help="override the profile's USD per device-hour")]


OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="write to this file instead of stdout")]


ContextOpt = Annotated[str, typer.Option("--context", "-c", help="context tokens: 8192, 128k, 1M, 10M")]


LayoutOpt = Annotated[str | None, typer.Option(help="several devices per system: tp=8,pp=2 (tp, cp, pp, ep, dp)")]


PlanOpt = Annotated[str | None, typer.Option("--plan", help="auto: the cheapest layout per point up to "
                                                            "--max-devices (docs/deployments.md)")]


MaxDevicesOpt = Annotated[int, typer.Option(help="with --plan auto: the largest layout considered")]


SingleDeviceOpt = Annotated[bool, typer.Option("--single-device", help="one device only: where the model or the "
                                                                       "batch does not fit, say what it needs "
                                                                       "instead of answering on a layout")]


def _no_engine(name: str | None) -> str | None:
    """--engine none: costsim's own kernel list and 10% reserve (the model its harnesses check), no engine."""
    return None if name is None or name.strip().lower() == "none" else name


EngineOpt = Annotated[str | None, typer.Option("--engine", callback=_no_engine,
                                               help="serving engine: vllm (default), sglang, trtllm, pytorch-eager, "
                                                    "a profile .toml, or none (costsim's own kernel list)")]


def _engine(name: str | None):
    """The --engine profile (None: costsim's own kernel list and reserve)."""
    from costsim.inputs.engines import engine_or_none

    return engine_or_none(name)


def _layout_choice(layout: str | None, plan_mode: str | None, max_devices: int):
    """(Layout or None, plan_auto) from --layout / --plan, with one-line errors."""
    from costsim.api import check_max_devices
    from costsim.errors import CostsimError
    from costsim.spec.layout import parse_layout

    if plan_mode is not None and plan_mode.strip().lower() != "auto":
        raise CostsimError(f"--plan: only 'auto' is understood, got {plan_mode!r}; or give --layout tp=8,...")
    if layout is not None and plan_mode is not None:
        raise CostsimError("--layout and --plan auto exclude each other; give one")
    check_max_devices(max_devices)
    return (parse_layout(layout) if layout is not None else None), plan_mode is not None


def _precision(weights: Dtype, kv: Dtype, state: Dtype):
    return _deployment(weights, kv, state).precision


def _check_metric_and_price(metric: str, price: float | None) -> None:
    from costsim.analysis.sweeps import METRICS
    from costsim.api import check_price

    if metric not in METRICS:
        raise CostsimError(f"--metric: '{metric}' is not one of {', '.join(METRICS)}")
    check_price(price)


def _deployment(weights: Dtype, kv: Dtype, state: Dtype):
    from costsim.spec.deployment import Deployment

    return Deployment(weights=weights.value, kv_cache=kv.value, state=state.value)


def _warn(warnings: list[str]) -> None:
    """Warnings go to stderr (and stay in the JSON): the answer on stdout stays machine-readable."""
    for w in dict.fromkeys(warnings):
        sys.stderr.write(f"warning: {w}\n")


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _render(fmt: Format, output: str | None, data: Any, csv_rows: list[dict[str, Any]], table) -> None:
    """The same three formats for every command; `table` is called only when a table is asked for."""
    from costsim.output.formats import dumps_csv, dumps_json

    if fmt is Format.json:
        _write(dumps_json(data), output)
    elif fmt is Format.csv:
        _write(dumps_csv(csv_rows), output)
    else:
        _write(table(), output)


DEFAULT_ESTIMATE_MODEL = "llama-3.1-8b"


DEFAULT_HARDWARE = "h100-sxm"


def _write(text: str, output: str | None) -> None:
    if output is None:
        _emit(text)
        return
    from costsim.output.atomic import write_atomic

    write_atomic(output, text if text.endswith("\n") else text + "\n")
