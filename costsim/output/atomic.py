"""Write files atomically: a crash never leaves a half-written CSV, JSON or HTML behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from costsim.errors import CostsimError


def write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    if path.is_dir():
        raise CostsimError(f"--output: {path} is a directory; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CostsimError(f"--output: folder {folder} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
