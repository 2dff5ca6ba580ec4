"""Load a model by preset name or from a file (HF config.json, or costsim's own TOML/JSON)."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from costsim.errors import CostsimError
from costsim.inputs.data import data_dir
from costsim.inputs.importers.hf import from_hf_config
from costsim.inputs.importers.native import from_native, is_native
from costsim.inputs.pydantic_errors import one_line
from costsim.spec.model import ModelSpec

MODEL_SUFFIXES = (".json", ".toml")


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path


ALIASES_FILE = "aliases.toml"  # HF repo ids of the presets, in models/ beside them; not a model
HF_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "https://hf.co/", "hf.co/")


def presets() -> list[Preset]:
    folder = data_dir("models")
    if not folder.is_dir():
        return []
    return [Preset(p.stem, p) for p in sorted(folder.iterdir())
            if p.suffix in MODEL_SUFFIXES and p.name != ALIASES_FILE]


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
    except ValueError as exc:  # e.g. an integer literal of thousands of digits, refused by the parser itself
        raise CostsimError(f"{path}: unreadable number ({' '.join(str(exc).split())[:80]}); no size field "
                           "takes more than a few digits") from None
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


@lru_cache(maxsize=1)
def hf_repos() -> dict[str, tuple[str, str]]:
    """Lowercased HF repo id -> (repo id as HF spells it, preset): each preset's own repo and the variants
    that share its config (models/aliases.toml says why each does)."""
    path = data_dir("models") / ALIASES_FILE
    if not path.is_file():
        return {}
    table: dict[str, tuple[str, str]] = {}
    for preset, entry in tomllib.loads(path.read_text(encoding="utf-8")).items():
        for repo in [entry["repo"], *(a["id"] for a in entry.get("aliases", []))]:
            table[repo.lower()] = (repo, preset)
    return table


def _repo_id(text: str) -> str | None:
    """`org/Name` (or a huggingface.co address of one) -> 'org/Name'; None for anything else."""
    for prefix in HF_PREFIXES:
        if text.lower().startswith(prefix):
            parts = text[len(prefix):].strip("/").split("/")
            return "/".join(parts[:2]) if len(parts) >= 2 and all(parts[:2]) else None
    parts = text.split("/")
    if len(parts) != 2 or text.startswith((".", "~")):
        return None
    ok = all(p and p[0].isalnum() and all(ch.isalnum() or ch in "-_." for ch in p) for p in parts)
    return text if ok else None


def _from_repo(repo: str, text: str, names: list[str]) -> ModelSpec:
    known = hf_repos()
    if repo.lower() in known:
        return _load_preset(known[repo.lower()][1])
    if repo.rsplit("/", 1)[-1].lower() in names:  # any org's copy named like the preset
        return _load_preset(repo.rsplit("/", 1)[-1].lower())
    from costsim.inputs.names import close_names, did_you_mean

    guess = did_you_mean(close_names(repo, [spelled for spelled, _ in known.values()]))
    fetch = (f"download https://huggingface.co/{repo}/resolve/main/config.json and pass its path "
             "(costsim inspect path/to/config.json)")
    raise CostsimError(f"model '{text}': not a preset, a known Hugging Face repo or a file; "
                       + (f"{guess} Or {fetch}" if guess else fetch))


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A preset name (``deepseek-v3``; case-insensitive), an HF repo id whose last part names a preset
    (``deepseek-ai/DeepSeek-V3``), or a path to a config.json / costsim model file."""
    # (docs/api.md is generated from this docstring.) Also: the HF repo ids in models/aliases.toml (variants
    # with the preset's config, e.g. meta-llama/Llama-3.1-8B-Instruct), and huggingface.co addresses of either.
    text = str(name_or_path).strip()
    if not text:
        raise CostsimError("model: empty name; pass a preset name (see `costsim models`) or a config path")
    key = text.lower()
    names = preset_names()
    if key in names:
        return _load_preset(key)
    path = Path(text)
    address = key.startswith(HF_PREFIXES)  # a huggingface.co address is never a local path
    if not address and (path.suffix.lower() in MODEL_SUFFIXES or path.exists()):
        return load_model_file(path)
    repo = _repo_id(text)
    if repo is not None:
        return _from_repo(repo, text, names)
    if address:
        raise CostsimError(f"model '{text}': not a Hugging Face model address; give it as org/Name "
                           "(e.g. meta-llama/Llama-3.1-8B)")
    if "/" in text or os.sep in text or (os.altsep and os.altsep in text):
        return load_model_file(path)
    from costsim.inputs.names import normalise, not_found

    plain = normalise(text)  # the name part of a known repo (DeepSeek-R1), unless a preset is spelled so too
    repos = [] if plain in map(normalise, names) else [
        spelled for spelled, _ in hf_repos().values() if normalise(spelled.rsplit("/", 1)[-1]) == plain]
    raise CostsimError(not_found(f"model '{text}'", "not a preset or a file", text, names, "costsim models",
                                 first=repos))
