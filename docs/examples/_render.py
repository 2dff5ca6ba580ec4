"""Shared by the gallery scripts: write a figure's HTML and, where Chromium is installed, a PNG of it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


def png_from_html(html: Path, png: Path, width: int = 1100, height: int = 600) -> bool:
    """Screenshot `html` into `png` with headless Chromium; False when no Chromium is installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        "--virtual-time-budget=10000", f"--screenshot={png}", html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=180)
    return png.is_file()


def save(fig, out_dir: Path, name: str, width: int = 1100, height: int = 600) -> list[Path]:
    from costsim.output.plots import write_html

    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / f"{name}.html"
    write_html(fig, html)
    written = [html]
    if png_from_html(html, out_dir / f"{name}.png", width, height):
        written.append(out_dir / f"{name}.png")
    return written
