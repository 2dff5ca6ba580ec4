"""Bounded, seeded fuzzing of every input costsim reads (tests/fuzz_inputs.py): malformed config.json,
hardware profiles, scenario files and CLI arguments. Each must end with exit code 2, one line on stderr
naming the problem, nothing on stdout (no number), and no traceback. The long run (100,000 inputs) is
`python benchmarks/fuzz_long.py`; its count is in docs/performance.md."""

from __future__ import annotations

import random

import pytest
from fuzz_inputs import GENERATORS

from costsim.cli import main

PER_KIND = 120


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_malformed_inputs_are_one_line_errors(kind, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(f"costsim-fuzz-{kind}")
    for i in range(PER_KIND):
        args = GENERATORS[kind](rng, tmp_path)
        code = main(args)
        out = capsys.readouterr()
        where = f"{kind} #{i}: costsim {' '.join(args)!r}"
        assert code == 2, f"{where} exited {code}; stdout {out.out[:300]!r} stderr {out.err[:300]!r}"
        assert out.out == "", f"{where} printed a result: {out.out[:300]!r}"
        assert out.err.count("\n") == 1 and out.err.startswith("error: "), f"{where}: {out.err[:500]!r}"
        assert "Traceback" not in out.err and "internal error" not in out.err, f"{where}: {out.err[:500]!r}"
