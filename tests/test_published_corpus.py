"""The corpus of published production measurements (measurements/published/*.jsonl): every record reads
against the contract, every value is the number its quote prints (a unit change aside), and the corpus
covers what a hardware comparison needs."""

from __future__ import annotations

import re

import pytest

from costsim.evidence.published import METRICS, read_published
from costsim.inputs.data import data_dir

FOLDER = data_dir("measurements") / "published"
FILES = sorted(FOLDER.glob("*.jsonl"))
RECORDS = [r for path in FILES for r in read_published(path)]
SCALE = {"ms": 1e-3, "us": 1e-6, "µs": 1e-6, "s": 1.0, "sec": 1.0}
MOE = {"deepseek-v3", "deepseek-v3.2-exp", "qwen3-235b-a22b", "mixtral-8x7b", "gpt-oss-120b", "gpt-oss-20b",
       "llama-4-scout", "qwen3-next-80b-a3b", "minimax-m2", "kimi-linear-48b-a3b"}
MLA_OR_HYBRID = {"deepseek-v3", "deepseek-v3.2-exp", "qwen3-next-80b-a3b", "kimi-linear-48b-a3b", "jamba-v0.1",
                 "nemotron-h-8b", "minimax-m1", "minimax-text-01"}
DENSE = {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen3-32b", "mistral-7b-v0.1", "gemma-3-27b",
         "llama-2-70b"}
THROUGHPUT = {"output_tokens_per_s", "output_tokens_per_s_per_device", "total_tokens_per_s", "requests_per_s"}
LATENCY = {"ttft_s", "tpot_s", "itl_s", "request_latency_s", "tokens_per_s_per_user"}


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in re.findall(r"\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?", text)]


def _printed(r: dict) -> bool:
    """The value is a number of the quote, as printed or in ms / µs turned into s."""
    if "quoted_value" in r:
        scale = SCALE.get(r.get("unit_as_printed", ""), 1.0)
        shown = float(str(r["quoted_value"]).replace(",", ""))
        return str(r["quoted_value"]) in r["quote"] and r["value"] == pytest.approx(shown * scale, rel=1e-9)
    return any(r["value"] == pytest.approx(n * s, rel=1e-6) for n in _numbers(r["quote"]) for s in (1.0, 1e-3, 1e-6))


def test_the_corpus_reads_and_every_record_is_sourced():
    assert FILES and len(RECORDS) == sum(1 for p in FILES for line in p.read_text().splitlines() if line.strip())
    for r in RECORDS:
        assert r["source"].startswith(("http", "github:")), r["source"]
        assert len(r["quote"]) >= 10 and r["metric"] in METRICS


def test_every_value_is_the_number_its_quote_prints():
    wrong = [(r["source"], r["quote"], r["value"]) for r in RECORDS if not _printed(r)]
    assert wrong == []


def test_a_value_not_in_its_quote_is_caught():
    r = {"quote": "| 1024/1024 | 6,430 | 6,924 | 1,620 |", "value": 1621.0}
    assert not _printed(r)
    assert _printed({**r, "value": 1620.0})
    assert _printed({"quote": "TTFT 23.5 ms", "value": 0.0235, "quoted_value": "23.5", "unit_as_printed": "ms"})
    assert not _printed({"quote": "TTFT 23.5 ms", "value": 23.5, "quoted_value": "23.5", "unit_as_printed": "ms"})


def test_the_corpus_covers_devices_engines_models_metrics_and_precisions():
    assert len(RECORDS) >= 250
    hardware = {r["hardware"] for r in RECORDS}
    assert len(hardware) >= 6 and {"b200", "mi300x", "mi355x"} <= hardware
    assert any(h.startswith("tpu-") for h in hardware)
    assert len({r["engine"] for r in RECORDS}) >= 3
    models = {r["model"] for r in RECORDS}
    assert len(models) >= 8 and len(models & MOE) >= 3 and models & DENSE and models & MLA_OR_HYBRID
    metrics = {r["metric"] for r in RECORDS}
    assert metrics & THROUGHPUT and metrics & LATENCY
    assert {"fp8", "fp4"} <= {r["weight_dtype"] for r in RECORDS}
