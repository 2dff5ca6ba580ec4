"""Load a model by preset name or from a file (HF config.json, or costsim's own TOML/JSON)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from costsim.data import data_dir
from costsim.errors import CostsimError
from costsim.importers.hf import from_hf_config
from costsim.importers.native import from_native, is_native
from costsim.spec.model import ModelSpec
from costsim.validation_errors import one_line

MODEL_SUFFIXES = (".json", ".toml")


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path


def presets() -> list[Preset]:
    folder = data_dir("models")
    if not folder.is_dir():
        return []
    return [Preset(p.stem, p) for p in sorted(folder.iterdir()) if p.suffix in MODEL_SUFFIXES]


def preset_names() -> list[str]:
    return [p.name for p in presets()]


def _read_file(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise CostsimError(f"{path}: is a directory; pass a config.json or model file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CostsimError(f"{path}: cannot be read ({exc.__class__.__name__}); pass a readable UTF-8 file") from None
    if not text.strip():
        raise CostsimError(f"{path}: is empty; pass a config.json or model file")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except json.JSONDecodeError as exc:
        raise CostsimError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CostsimError(f"{path}: malformed TOML: {exc}") from None
    if not isinstance(data, dict):
        raise CostsimError(f"{path}: expected a JSON object at the top level")
    return data


def _from_data(data: dict[str, Any], name: str, where: str) -> ModelSpec:
    try:
        if is_native(data):
            return from_native(data, where, load_model)
        return from_hf_config(data, name, where)
    except ValidationError as exc:
        raise CostsimError(one_line(exc, where)) from None
    except CostsimError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # a value of the wrong type somewhere we did not anticipate: still one line, never a traceback
        raise CostsimError(f"{where}: invalid value ({type(exc).__name__}: {exc}); check the fields") from None
    except RecursionError:
        raise CostsimError(f"{where}: 'base' refers back to itself; point it at another model") from None


def load_model_file(path: str | Path) -> ModelSpec:
    path = Path(path)
    if not path.exists():
        raise CostsimError(f"{path}: no such file; pass a preset name (see `costsim models`) or a config path")
    return _from_data(_read_file(path), path.stem if path.name != "config.json" else path.parent.name, str(path))


@lru_cache(maxsize=64)
def _load_preset(name: str) -> ModelSpec:
    for preset in presets():
        if preset.name == name:
            return _from_data(_read_file(preset.path), preset.name, preset.path.name)
    raise KeyError(name)


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A preset name (``deepseek-v3``; case-insensitive), an HF repo id whose last part names a preset
    (``deepseek-ai/DeepSeek-V3``), or a path to a config.json / costsim model file."""
    text = str(name_or_path)
    if not text.strip():
        raise CostsimError("model: empty name; pass a preset name (see `costsim models`) or a config path")
    key = text.strip().lower()
    names = preset_names()
    for candidate in (key, key.rsplit("/", 1)[-1]):
        if candidate in names:
            return _load_preset(candidate)
    path = Path(text)
    if path.exists() or path.suffix in MODEL_SUFFIXES or "/" in text:
        return load_model_file(path)
    raise CostsimError(
        f"model '{text}': not a preset or a file; presets: {', '.join(names) or '(none installed)'}"
    )
