"""`costsim report` and `costsim crossover`: the page renders in a real browser with data in every
chart; crossings are where the two curves actually cross."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from costsim.analysis.crossover import crossover
from costsim.analysis.report import build_report
from costsim.analysis.sweeps import sweep
from costsim.cli import main
from costsim.spec.layout import Layout

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000"]


def test_report_has_every_section_with_data():
    page, charts = build_report(["llama-3.1-8b", "qwen3-next-80b-a3b"], ["h100-sxm"], "chat",
                                np.geomspace(1024, 1e6, 12), samples=20)
    assert charts == 6
    for section in ("Anatomy", "Memory", "Serving", "Scenario", "Frontier", "Accuracy"):
        assert f"<h2>{section}</h2>" in page
    # every figure was serialised with traces that carry numbers
    payloads = re.findall(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{', page, flags=re.S)
    assert len(payloads) == charts
    for payload in payloads:
        assert '"x":' in payload or '"y":' in payload
    # plotly is inlined, not fetched: the file opens offline
    assert '<script src="http' not in page and "plotly.js v" in page


def test_report_notes_devices_that_were_never_measured():
    page, _ = build_report(["llama-3.1-8b"], ["b200"], None, np.geomspace(1024, 1e5, 6), samples=10)
    assert "never measured" in page and "docs/validation.md gives that figure" in page
    # its kernels were never measured here, but its published records give it a band, and the page says so
    from costsim.inputs.hardware import load_hardware

    label = load_hardware("b200").calibration.label()
    assert "Error bands" in page and label in page


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (.ci/run installs Debian's chromium)")
def test_report_renders_in_headless_chromium(tmp_path, capsys):
    html = tmp_path / "report.html"
    assert main(["report", "-m", "llama-3.1-8b,mamba2-2.7b", "-H", "h100-sxm", "--scenario", "chat",
                 "--points", "10", "--samples", "20", "--out", str(html)]) == 0
    assert "6 charts" in capsys.readouterr().out
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           html.as_uri()], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0
    # plotly drew every chart (one plot-container per figure) and each has plotted traces
    assert proc.stdout.count('class="plot-container plotly"') == 6
    assert proc.stdout.count('class="trace') >= 5
    console_errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert not console_errors


def test_qwen3_next_overtakes_qwen3_32b_in_time_to_first_token_where_the_curves_cross():
    r = crossover("qwen3-32b", "qwen3-next-80b-a3b", "h100-sxm", "ttft_s", 100, 1e7, layout=Layout(tp=4))
    assert len(r["crossings"]) == 1
    c = r["crossings"][0]
    t = c["context_tokens"]
    assert 200 < t < 5_000
    assert (c["better_below"], c["better_above"]) == ("qwen3-32b", "qwen3-next-80b-a3b")
    # both curves, evaluated independently on either side of the crossing, swap order there
    grid = np.array([t * 0.9, t * 1.1])
    a = sweep(["qwen3-32b"], ["h100-sxm"], grid, layout=Layout(tp=4)).series[0]["ttft_s"]
    b = sweep(["qwen3-next-80b-a3b"], ["h100-sxm"], grid, layout=Layout(tp=4)).series[0]["ttft_s"]
    assert a[0] < b[0] and a[1] > b[1]


def test_crossover_cli_json_and_no_crossing(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["crossover", "-m", "qwen3-32b", "-m", "qwen3-next-80b-a3b", "--layout", "tp=4", "--metric",
                 "ttft_s", "-c", "100..10M", "-f", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["crossings"] and data["metric"] == "ttft_s"
    # the hybrid's 3B active parameters make every output token cheaper at every context
    assert main(["crossover", "-m", "qwen3-32b,qwen3-next-80b-a3b", "--layout", "tp=4"]) == 0
    assert "better everywhere" in capsys.readouterr().out


def test_crossover_where_a_model_stops_fitting():
    r = crossover("llama-3.1-8b", "mamba2-2.7b", "h100-sxm", "tpot_s", 1024, 1e7)
    assert any(c["cause"] == "memory" and c["better_above"] == "mamba2-2.7b" for c in r["crossings"])


@pytest.mark.parametrize(("args", "message"), [
    (["-m", "llama-3.1-8b"], "exactly two models"),
    (["-m", "llama-3.1-8b", "-m", "llama-3.1-8b"], "two different models"),
    (["-m", "llama-3.1-8b,mamba2-2.7b", "--metric", "speed"], "metric"),
    (["-m", "llama-3.1-8b,mamba2-2.7b", "-c", "32k"], "range"),
])
def test_crossover_bad_input_is_one_line(capsys, args, message):
    assert main(["crossover", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
