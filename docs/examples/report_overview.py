"""The README's report screenshot: `costsim report` for three architectures on H100 and B200 with the
coding-agent scenario (the HTML is self-contained; the PNG is its first screen).

    python docs/examples/report_overview.py [--out-dir docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from costsim.analysis.report import build_report, write_report


def main(out_dir: Path) -> list[Path]:
    from _render import png_from_html

    out_dir.mkdir(parents=True, exist_ok=True)
    page, _ = build_report(["llama-3.1-8b", "qwen3-next-80b-a3b", "deepseek-v3"], ["h100-sxm", "b200"],
                           "coding-agent", samples=300)
    html = out_dir / "report.html"
    write_report(html, page)
    written = [html]
    if png_from_html(html, out_dir / "report.png", 1240, 1900):
        written.append(out_dir / "report.png")
    return written


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "img")
    print(*main(ap.parse_args().out_dir), sep="\n")
