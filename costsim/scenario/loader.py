"""Load scenarios by name (scenarios/*.toml) or from a path, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from costsim.data import data_dir
from costsim.errors import CostsimError
from costsim.files import load_toml_model
from costsim.spec.scenario import ApiPrice, Scenario


def scenario_paths() -> list[Path]:
    folder = data_dir("scenarios")
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def scenario_names() -> list[str]:
    return [p.stem for p in scenario_paths()]


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name (`costsim scenario list`) or a scenario .toml file."""
    text = str(name_or_path).strip()
    path = data_dir("scenarios") / f"{text}.toml"
    if not path.is_file():
        path = Path(text)
        if not path.is_file():
            raise CostsimError(f"scenario '{text}': not a shipped scenario or a file; shipped: "
                               f"{', '.join(scenario_names())}")
    return load_toml_model(Scenario, path, default_name=True)


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
    return load_toml_model(ApiPrice, path, default_name=True)
