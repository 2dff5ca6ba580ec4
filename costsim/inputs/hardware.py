"""Load hardware profiles by name or path, with field overrides (e.g. a different price)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from costsim.errors import CostsimError
from costsim.inputs.data import data_dir
from costsim.inputs.files import load_toml_model
from costsim.inputs.pydantic_errors import one_line
from costsim.spec.hardware import HardwareProfile


def profile_paths() -> list[Path]:
    folder = data_dir("hardware_profiles")
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def hardware_names() -> list[str]:
    return [p.stem for p in profile_paths()]


def _parse(path: Path) -> HardwareProfile:
    return load_toml_model(HardwareProfile, path)


@lru_cache(maxsize=64)
def _load_named(name: str) -> HardwareProfile:
    return _parse(data_dir("hardware_profiles") / f"{name}.toml")


def load_hardware(name_or_path: str | Path, **overrides: Any) -> HardwareProfile:
    """A profile by name (`costsim hardware`) or from a .toml file; keyword overrides replace fields
    (e.g. usd_per_hour=2.0). Unknown names and bad files raise CostsimError with the fix."""
    text = str(name_or_path).strip()
    key = text.lower()
    if key in hardware_names():
        profile = _load_named(key)
    elif Path(text).suffix == ".toml" or Path(text).exists():
        if not Path(text).exists():
            raise CostsimError(f"{text}: no such hardware profile file")
        profile = _parse(Path(text))
    else:
        from costsim.inputs.names import not_found

        raise CostsimError(not_found(f"hardware '{text}'", "not a profile", text, hardware_names(),
                                     "costsim hardware"))
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        return profile
    try:
        return HardwareProfile.model_validate({**profile.model_dump(), **overrides})
    except ValidationError as exc:
        raise CostsimError(one_line(exc, f"hardware '{text}' override")) from None
