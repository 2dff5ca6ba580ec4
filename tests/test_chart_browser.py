"""The HTML charts render in a real browser (headless Chromium) without JavaScript errors."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from costsim.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (.ci/run installs Debian's chromium)")
@pytest.mark.parametrize("command", [
    ["sweep", "-m", "llama-3.1-8b,qwen3-next-80b-a3b", "-c", "1k..1M", "--points", "12"],
    ["compare", "-m", "llama-3.1-8b", "-H", "h100-sxm"],
    ["scenario", "run", "chat", "-m", "llama-3.1-8b,mamba2-2.7b", "--samples", "50"],
])
def test_chart_renders_without_js_errors(tmp_path, capsys, command):
    html = tmp_path / "chart.html"
    assert main([*command, "--plot", str(html), "-f", "json"]) == 0
    capsys.readouterr()
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           html.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "main-svg" in proc.stdout  # plotly drew its SVG: the script ran
    console_errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert not console_errors
