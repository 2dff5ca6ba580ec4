"""Where the bundled data lives: ``costsim/_data/<kind>`` in an installed wheel, the repository's
top-level folders in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # the costsim package (this file is in costsim/inputs/)


def data_dir(kind: str) -> Path:
    """kind: 'models', 'hardware_profiles', 'engine_profiles', 'scenarios', 'microbench' or 'measurements'."""
    installed = _PACKAGE / "_data" / kind
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / kind
