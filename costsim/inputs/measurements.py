"""Measurement files (measurements/*.jsonl) read and checked against the record contract (spec/measurement.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costsim.errors import CostsimError
from costsim.inputs.files import json_lines
from costsim.spec.measurement import record_problem


def read_measurements(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSON Lines file, header included; the first bad line stops with its number."""
    path = Path(path)
    records = []
    for lineno, record in json_lines(path, "no such measurement file; pass a .jsonl written by the microbenchmark"):
        problem = record_problem(record)
        if problem:
            raise CostsimError(f"{path}:{lineno}: {problem}")
        records.append(record)
    return records


def expand_paths(paths: list[str]) -> list[str]:
    """Files as given, and every .jsonl file of a folder given (sorted): `costsim validate measurements/published/`."""
    out: list[str] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.jsonl"))
            if not found:
                raise CostsimError(f"{text}: a folder with no .jsonl files; give measurement files or their folder")
            out += found
        else:
            out.append(text)
    return out
