"""Published production measurements (`measurements/published/*.jsonl`, kind = "serve") predicted by
`costsim serve`: each record's model, hardware, layout, precisions, engine, ISL/OSL and load become one
serve call, and the record's metric is read from its row (docs/serving.md, "Published cases").

Errors are signed, predicted / measured - 1, summarised per metric class: TPOT/ITL (signed median: is
costsim optimistic?), TTFT (median |error|), throughput (median |error|; offline and fixed concurrency).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from costsim.errors import CostsimError
from costsim.inputs.files import json_lines

LOADS = ("concurrency", "request_rate", "offline")
REQUIRED = ("model", "hardware", "devices", "layout", "weight_dtype", "kv_dtype", "engine", "isl", "osl",
            "metric", "value", "source", "quote")
METRICS = ("output_tokens_per_s", "output_tokens_per_s_per_device", "total_tokens_per_s", "tokens_per_s_per_user",
           "requests_per_s", "ttft_s", "tpot_s", "itl_s", "request_latency_s")
CLASS_OF = {"tpot_s": "tpot_itl", "itl_s": "tpot_itl", "ttft_s": "ttft", "request_latency_s": "latency",
            "tokens_per_s_per_user": "tpot_itl"}
STAT = {"mean": "mean", "median": "p50", "p50": "p50", "p99": "p99", "p90": "p99", None: "mean"}


def read_published(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for lineno, r in json_lines(Path(path), "no such published-measurement file"):
        missing = [k for k in REQUIRED if k not in r]
        if r.get("kind") != "serve" or missing:
            raise CostsimError(f"{path}:{lineno}: a serve record needs kind = 'serve' and {', '.join(missing) or 'it'}")
        if sum(1 for k in LOADS if r.get(k) not in (None, False)) != 1:
            raise CostsimError(f"{path}:{lineno}: give exactly one of concurrency, request_rate, offline")
        if r["metric"] not in METRICS:
            raise CostsimError(f"{path}:{lineno}: metric '{r['metric']}' is not one of {', '.join(METRICS)}")
        if not (isinstance(r["value"], int | float) and r["value"] > 0):
            raise CostsimError(f"{path}:{lineno}: value must be a positive number in SI units")
        out.append(r)
    return out


def case_key(r: dict[str, Any]) -> tuple:
    load = next(k for k in LOADS if r.get(k) not in (None, False))
    level = r.get(load) if load != "offline" else r.get("requests")
    return (r["model"], r["hardware"], r["devices"], json.dumps(r["layout"], sort_keys=True), r["weight_dtype"],
            r["kv_dtype"], r["engine"], r["isl"], r["osl"], load, level, r.get("speculative") is not None)


def _layout_text(layout: dict[str, Any]) -> str | None:
    parts = [f"{k}={int(v)}" for k, v in layout.items() if k in ("tp", "pp", "ep", "cp", "dp") and int(v) != 1]
    return ",".join(parts) or None


def _speculative(r: dict[str, Any]) -> str | None:
    text = (r.get("speculative") or "").lower()
    if not text:
        return None
    return "mtp" if "mtp" in text else "eagle3" if "eagle" in text else None


def fitted_on(r: dict[str, Any]) -> bool:
    """The records the engine overheads are fitted on (benchmarks/fit_engine_overheads.py): TensorRT-LLM's
    online-serving table at fixed request rates. Every other record is held out."""
    return r["engine"] == "trtllm" and r.get("request_rate") is not None


def predict(r: dict[str, Any], engine: Any = None, hardware: Any = None) -> tuple[float | None, str | None]:
    """The record's metric as costsim serve predicts it, or None and why (cannot run, not modelled);
    `engine` replaces the record's engine profile (the overhead fit tries candidates this way), `hardware`
    its device profile (the published device fit tries candidate efficiencies this way)."""
    from costsim.inputs.engines import step_loop_engine
    from costsim.inputs.hardware import load_hardware
    from costsim.inputs.models import load_model
    from costsim.serving.serve import serve
    from costsim.serving.workload import Workload
    from costsim.spec.deployment import Deployment
    from costsim.spec.layout import Layout, parse_layout

    if r.get("offline") and r["metric"] in ("ttft_s", "request_latency_s") and not r.get("requests"):
        return None, "an offline run's TTFT is its own queue, which needs the number of requests; the source gives none"
    if r.get("stream_interval_tokens", 1) > 1 and r["metric"] == "itl_s":
        return None, (f"the benchmark streamed {r['stream_interval_tokens']} tokens at a time: its ITL is a chunk's "
                      "interval, not a token's")
    if r.get("isl_is_upper_bound"):
        return None, "the source gives the dataset's longest prompt, not its mean: the input length is unknown"
    if r.get("disaggregated"):
        return None, ("disaggregated prefill and decode pools under a request load are not simulated by costsim serve "
                      "(costsim disaggregate prices one request on such pools)")
    if r["layout"].get("attention_dp"):
        return None, "attention data parallelism (attention on dp ranks, experts over ep) is not modelled yet"
    isl, osl = int(r["isl"]), int(r["osl"])
    # what `costsim serve` runs for this case (api.serve less its parsing of command-line text)
    if r.get("concurrency") is not None:
        work = Workload(isl, osl, concurrency=np.asarray([float(r["concurrency"])]))
    elif r.get("request_rate") is not None:
        work = Workload(isl, osl, request_rate=np.asarray([float(r["request_rate"])]))
    else:
        work = Workload(isl, osl, offline_requests=int(r.get("requests") or 1000))
    try:
        layout = _layout_text(r["layout"])
        device = hardware if hardware is not None else load_hardware(r["hardware"])
        row = serve(load_model(r["model"]), device,
                    Deployment(weights=r["weight_dtype"], kv_cache=r["kv_dtype"], experts=r.get("expert_dtype")),
                    parse_layout(layout) if layout else Layout(),
                    step_loop_engine(engine if engine is not None else r["engine"], "serve"), work,
                    _speculative(r))[0]
    except CostsimError as exc:
        return None, str(exc)
    if not row["fits_memory"] or row.get("reason"):
        return None, row.get("reason")
    value = row.get(r["metric"])
    if isinstance(value, dict):
        value = value[STAT.get(r.get("statistic"), "mean")]
    return (None, "no such output") if value is None else (float(value), None)


def check(records: list[dict[str, Any]]) -> dict[str, Any]:
    out = []
    for r in records:
        predicted, why = predict(r)
        row = {**r, "predicted": predicted, "error": None if predicted is None else predicted / r["value"] - 1.0,
               "metric_class": CLASS_OF.get(r["metric"], "throughput"), "fitted_on": fitted_on(r)}
        if why:
            row["not_predicted"] = why
        out.append(row)
    return {"records": out, "summary": summarise(out)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r["error"] is None:
            continue
        split = "fit" if r["fitted_on"] else "held_out"
        for key in (f"{split}/{r['metric_class']}", f"{split}/{r['metric_class']}:{r['engine']}",
                    f"{split}/{r['metric_class']}:{r['hardware']}", f"{split}/{r['metric_class']}:{r['weight_dtype']}",
                    f"{split}/source:{r['source']}"):
            groups.setdefault(key, []).append(r["error"])
    for key, errs in sorted(groups.items()):
        e = np.asarray(errs)
        summary[key] = {"count": len(e), "median_signed": float(np.median(e)),
                        "median_abs": float(np.median(np.abs(e))), "p90_abs": float(np.quantile(np.abs(e), 0.9)),
                        "max_abs": float(np.max(np.abs(e)))}
    summary["not_predicted"] = sum(1 for r in rows if r["error"] is None)
    summary["cases"] = len({case_key(r) for r in rows})
    return summary
