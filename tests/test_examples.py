"""The gallery scripts in docs/examples/ run and write their charts (docs examples run in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "docs" / "examples").glob("*.py")
                  if not p.name.startswith("_"))


def test_there_is_a_gallery():
    assert {p.stem for p in EXAMPLES} >= {"sweep_b200", "plan_to_10m", "crossover_qwen", "report_overview"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(tmp_path, script):
    proc = subprocess.run([sys.executable, str(script), "--out-dir", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = [Path(line) for line in proc.stdout.split()]
    assert written and all(p.is_file() and p.stat().st_size > 10_000 for p in written)
    assert any(p.suffix == ".html" for p in written)
