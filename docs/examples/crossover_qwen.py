"""Where Qwen3-Next (hybrid, 3B active) overtakes dense Qwen3-32B in time to first token, on 4 H100s.

    python docs/examples/crossover_qwen.py [--out-dir docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from costsim.analysis.crossover import crossover, crossover_figure
from costsim.spec.layout import Layout


def main(out_dir: Path) -> list[Path]:
    from _render import save

    result = crossover("qwen3-32b", "qwen3-next-80b-a3b", "h100-sxm", "ttft_s", 100, 10_000_000,
                       layout=Layout(tp=4))
    return save(crossover_figure(result), out_dir, "crossover", 1000, 520)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "img")
    print(*main(ap.parse_args().out_dir), sep="\n")
