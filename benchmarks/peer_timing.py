"""Run inside an environment where the peers are installed (`pip install llm-analysis genz-llm`):
times one estimate of each peer for Llama-3.1-8B-like shapes on one H100 at 8k context and prints
JSON. Called by bench_peers.py; calls as documented in docs/peers.md."""

from __future__ import annotations

import io
import json
import logging
import statistics
import sys
import time
from contextlib import redirect_stderr, redirect_stdout

logging.disable(logging.CRITICAL)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (first call loads configs)
    runs = []
    for _ in range(repeats):
        sink = io.StringIO()
        with redirect_stdout(sink), redirect_stderr(sink):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def llm_analysis_case() -> float:
    from llm_analysis.analysis import infer

    # llm-analysis needs ffn divisible by hidden (a plain MLP); its bundled Llama-2-7B config is the
    # closest same-size case (per-estimate cost barely depends on the shape); its max_seq_len is 4096
    def call():
        infer(model_name="NousResearch_Llama-2-7b-hf", gpu_name="h100-sxm-80gb", dtype_name="w16a16e16",
              batch_size_per_gpu=1, tp_size=1, seq_len=4000, num_tokens_to_generate=1, cost_per_gpu_hour=2.0,
              log_level="CRITICAL")

    return timed(call, 30)


def genz_case() -> float:
    from GenZ import decode_moddeling

    def call():
        decode_moddeling(model="meta-llama/Llama-3.1-8B", batch_size=1, input_tokens=8192, output_tokens=0, Bb=1,
                         system_name="H100_GPU", bits="bf16", tensor_parallel=1, system_eff=1)

    return timed(call, 10)


if __name__ == "__main__":
    out = {}
    for name, case in (("llm-analysis", llm_analysis_case), ("genz-llm", genz_case)):
        try:
            out[name] = case()
        except Exception as exc:  # a peer that fails is reported, not fatal
            out[name] = f"failed: {type(exc).__name__}: {exc}"[:200]
    sys.stdout.write(json.dumps(out) + "\n")
