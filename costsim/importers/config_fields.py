"""Reading fields out of a config dict with errors that name the field and the fix."""

from __future__ import annotations

import math
from typing import Any

from costsim.errors import CostsimError

_MISSING = object()


class ConfigReader:
    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _fail(self, key: str, problem: str) -> CostsimError:
        return CostsimError(f"{self.where}: field '{key}' {problem}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise self._fail(key, "is missing; add it to the config")
            return default
        return value

    def int(self, key: str, default: Any = _MISSING, *, minimum: int = 1) -> int:
        value = self.raw(key, default)
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, f"must be a whole number, got {value!r}")
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise self._fail(key, f"must be a whole number, got {value!r}")
        if value < minimum:
            raise self._fail(key, f"must be >= {minimum}, got {value!r}")
        return int(value)

    def optional_int(self, key: str, *, minimum: int = 1) -> int | None:
        return self.int(key, None, minimum=minimum) if self.has(key) else None

    def bool(self, key: str, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, got {value!r}")
        return value

    def str(self, key: str, default: Any = _MISSING) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self._fail(key, f"must be a string, got {value!r}")
        return value

    def list(self, key: str, default: Any = _MISSING) -> list:
        value = self.raw(key, default)
        if not isinstance(value, list):
            raise self._fail(key, f"must be a list, got {type(value).__name__}")
        return value

    def sub(self, key: str) -> ConfigReader:
        value = self.raw(key)
        if not isinstance(value, dict):
            raise self._fail(key, "must be an object")
        return ConfigReader(value, f"{self.where} [{key}]")
