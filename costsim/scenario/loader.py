"""Load scenarios by name (scenarios/*.toml) or from a path, with one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from costsim.data import data_dir
from costsim.errors import CostsimError
from costsim.spec.scenario import ApiPrice, Scenario
from costsim.validation_errors import one_line


def scenario_paths() -> list[Path]:
    folder = data_dir("scenarios")
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def scenario_names() -> list[str]:
    return [p.stem for p in scenario_paths()]


def load_scenario(name_or_path: str) -> Scenario:
    text = str(name_or_path).strip()
    path = data_dir("scenarios") / f"{text}.toml"
    if not path.is_file():
        path = Path(text)
        if not path.is_file():
            raise CostsimError(f"scenario '{text}': not a shipped scenario or a file; shipped: "
                               f"{', '.join(scenario_names())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CostsimError(f"{path}: cannot be read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CostsimError(f"{path}: malformed TOML: {exc}") from None
    data.setdefault("name", path.stem)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise CostsimError(one_line(exc, str(path))) from None


def price_sheet_paths() -> list[Path]:
    folder = data_dir("scenarios") / "api_prices"
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def load_api_price(name_or_path: str) -> ApiPrice:
    text = str(name_or_path).strip()
    path = data_dir("scenarios") / "api_prices" / f"{text}.toml"
    if not path.is_file():
        path = Path(text)
        if not path.is_file():
            names = ", ".join(p.stem for p in price_sheet_paths())
            raise CostsimError(f"--api-prices: '{text}' is not a shipped price sheet or a file; shipped: {names}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CostsimError(f"{path}: cannot be read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CostsimError(f"{path}: malformed TOML: {exc}") from None
    data.setdefault("name", path.stem)
    try:
        return ApiPrice.model_validate(data)
    except ValidationError as exc:
        raise CostsimError(one_line(exc, str(path))) from None
