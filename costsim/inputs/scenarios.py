"""Load scenarios by name (scenarios/*.toml) or from a path, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

from costsim.errors import CostsimError
from costsim.inputs.data import data_dir
from costsim.inputs.files import load_toml_model
from costsim.spec.scenario import ApiPrice, Scenario


def scenario_paths() -> list[Path]:
    folder = data_dir("scenarios")
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def scenario_names() -> list[str]:
    return [p.stem for p in scenario_paths()]


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name (`costsim scenario list`) or a scenario .toml file."""
    text = str(name_or_path).strip()
    names = scenario_names()
    if text.lower() in names:
        return load_toml_model(Scenario, data_dir("scenarios") / f"{text.lower()}.toml", default_name=True)
    path = Path(text)
    if not path.is_file():
        if path.is_dir():
            raise CostsimError(f"{text}: is a directory; pass a scenario .toml file")
        if path.suffix == ".toml" or "/" in text or os.sep in text:
            raise CostsimError(f"{text}: no such scenario file; pass a shipped scenario name (see `costsim scenario "
                               "list`) or a scenario .toml")
        from costsim.inputs.names import not_found

        raise CostsimError(not_found(f"scenario '{text}'", "not a shipped scenario or a file", text, names,
                                     "costsim scenario list"))
    return load_toml_model(Scenario, path, default_name=True)


def price_sheet_paths() -> list[Path]:
    folder = data_dir("scenarios") / "api_prices"
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def load_api_price(name_or_path: str) -> ApiPrice:
    text = str(name_or_path).strip()
    names = [p.stem for p in price_sheet_paths()]
    if text.lower() in names:
        return load_toml_model(ApiPrice, data_dir("scenarios") / "api_prices" / f"{text.lower()}.toml",
                               default_name=True)
    path = Path(text)
    if not path.is_file():
        from costsim.inputs.names import not_found

        raise CostsimError(not_found(f"--api-prices '{text}'", "not a shipped price sheet or a file", text, names,
                                     noun="shipped"))
    return load_toml_model(ApiPrice, path, default_name=True)
