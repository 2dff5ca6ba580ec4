"""What is bundled: `costsim models`, `inspect`, `hardware`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from costsim.cli.common import (
    DEFAULT_MODEL,
    ContextOpt,
    Dtype,
    Format,
    FormatOpt,
    KvDtypeOpt,
    OutputOpt,
    StateDtypeOpt,
    WeightDtypeOpt,
    _precision,
    _render,
)


def models(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """List the preset models (use the name with --model / inspect)."""
    from costsim.api import list_models
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_count

    rows = list_models()
    _render(fmt, output, rows, rows, lambda: dumps_table(
        ["name", "layers", "mixers", "params total", "params active", "source file"],
        [[r["name"], r["num_layers"], r["layer_mix"], fmt_count(r["params_total"]),
          fmt_count(r["params_active"]), r["file"]] for r in rows]))


def inspect(
    model: Annotated[str, typer.Argument(help="preset name (see `costsim models`) or path to a config.json")]
    = DEFAULT_MODEL,
    context: ContextOpt = "131072",
    batch: Annotated[str, typer.Option(help="sequences per decode step (for decode bytes)")] = "1",
    weight_dtype: WeightDtypeOpt = Dtype.bf16,
    kv_dtype: KvDtypeOpt = Dtype.bf16,
    state_dtype: StateDtypeOpt = Dtype.fp32,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Parameters, cache per token and per sequence, prefill and decode FLOPs and bytes of a model."""
    from costsim.api import inspect_model, load_model
    from costsim.units import parse_tokens

    n = parse_tokens(context, "--context")
    result = inspect_model(load_model(model), n, _precision(weight_dtype, kv_dtype, state_dtype),
                           parse_tokens(batch, "--batch"))
    _render(fmt, output, result, [result], lambda: _inspect_table(result))


def hardware_list(fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """List the hardware profiles (use the name with --hardware)."""
    from costsim.api import list_hardware
    from costsim.output.formats import dumps_table

    rows = list_hardware()
    _render(fmt, output, rows, rows, lambda: dumps_table(
        ["name", "device", "bf16 TFLOP/s", "fp8 TFLOP/s", "memory GB", "TB/s", "USD/h", "calibration", "error band"],
        [[r["name"], r["display_name"], r["bf16_dense_tflops"], r["fp8_dense_tflops"] or "-", r["memory_gb"],
          r["hbm_bandwidth_tb_s"], f"{r['usd_per_hour']:.2f}", r["calibration"],
          "-" if r["error_band"] is None else f"±{r['error_band']:.0%}"] for r in rows]))


def _inspect_table(r: dict[str, Any]) -> str:
    from costsim.output.formats import dumps_table
    from costsim.units import fmt_bytes, fmt_count, fmt_si

    rows: list[list[Any]] = [
        ["layers", f"{r['num_layers']}  ({r['layer_mix']})"],
        ["pattern", r["layer_pattern"]],
        ["params total", fmt_count(r["params_total"])],
        ["params active / token", fmt_count(r["params_active"])],
        ["params embedding + head", fmt_count(r["params_embedding"])],
        ["weights", fmt_bytes(r["weight_bytes"])],
        ["cache per token (growing)", f"{r['cache_bytes_per_token']:,.0f} B"],
        ["cache fixed (windows, state)", fmt_bytes(r["cache_bytes_fixed"])],
        [f"cache per sequence @ {r['context_tokens']:,}", fmt_bytes(r["cache_bytes_per_sequence"])],
    ]
    rows += [[f"  {kind}", fmt_bytes(v)] for kind, v in r["cache_bytes_by_kind"].items()]
    rows += [
        [f"prefill {r['context_tokens']:,} tokens", fmt_si(r["prefill_flops"], "FLOP")],
        [f"decode / token @ {r['context_tokens']:,}", fmt_si(r["decode_flops_per_token"], "FLOP")],
        [f"decode bytes / step (batch {r['batch']})", fmt_bytes(r["decode_bytes_per_step"])],
    ]
    rows += [[f"  {k}", fmt_bytes(v)] for k, v in r["decode_bytes_by_type"].items() if v]
    rows.append(["decode intensity", f"{r['decode_arithmetic_intensity']:.2f} FLOP/B"])
    p = r["precision"]
    title = f"{r['model']}  (weights {p['weights']}, kv {p['kv_cache']}, state {p['state']})"
    return dumps_table(["quantity", "value"], rows, title=title)
