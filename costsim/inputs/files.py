"""Reading the TOML data files (profiles, scenarios, price sheets) with one-line errors."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from costsim.errors import CostsimError
from costsim.inputs.pydantic_errors import one_line

Model = TypeVar("Model", bound=BaseModel)


def read_toml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise CostsimError(f"{path}: is a directory; pass a .toml file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CostsimError(f"{path}: cannot be read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CostsimError(f"{path}: malformed TOML: {exc}") from None


def load_toml_model(cls: type[Model], path: Path, default_name: bool = False) -> Model:
    """Read `path` and validate it as `cls`; the file's stem names it when it has no `name`."""
    data = read_toml(path)
    if default_name:
        data.setdefault("name", path.stem)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise CostsimError(one_line(exc, str(path))) from None


def json_lines(path: Path, missing: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file; `missing` finishes the error for
    an absent file. A malformed line stops with its number."""
    if not path.is_file():
        raise CostsimError(f"{path}: {missing}")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CostsimError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise CostsimError(f"{path}:{lineno}: expected a JSON object per line")
            yield lineno, record
