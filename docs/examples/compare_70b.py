"""The README's comparison: $/Mtok output of Llama-3.1-70B at 32k tokens on every profile, under vLLM; where
one device does not hold it, the cheapest layout that does (bars), x markers where nothing up to 72 does.

    python docs/examples/compare_70b.py [--out-dir docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from costsim.analysis.sweeps import compare
from costsim.inputs.engines import load_engine
from costsim.output.plots import compare_figure


def main(out_dir: Path) -> list[Path]:
    from _render import save

    rows = compare("llama-3.1-70b", ["all"], 32_000, engine=load_engine("vllm"))
    return save(compare_figure(rows, "usd_per_mtok_output"), out_dir, "compare", height=560)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "img")
    print(*main(ap.parse_args().out_dir), sep="\n")
