"""The README's sweep: $/Mtok output vs context for six architectures on one B200 (fp8 KV cache).

    python docs/examples/sweep_b200.py [--out-dir docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from costsim.analysis.sweeps import sweep
from costsim.inputs.engines import load_engine
from costsim.output.plots import sweep_figure
from costsim.spec.deployment import Deployment

MODELS = ["llama-3.1-8b", "qwen3-next-80b-a3b", "gemma-3-27b", "mamba2-2.7b", "deepseek-v3.2-exp",
          "kimi-linear-48b-a3b"]


def main(out_dir: Path) -> list[Path]:
    from _render import save

    result = sweep(MODELS, ["b200"], np.unique(np.round(np.geomspace(1024, 1_000_000, 80))),
                   Deployment(kv_cache="fp8"), engine=load_engine("vllm"))  # the command line's default
    return save(sweep_figure(result, "usd_per_mtok_output"), out_dir, "sweep")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "img")
    print(*main(ap.parse_args().out_dir), sep="\n")
