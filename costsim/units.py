"""Parsing human token counts ("128k", "1M") and formatting SI quantities for tables."""

from __future__ import annotations

import math
import re

from costsim.errors import CostsimError

_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000, "ki": 1024, "mi": 1024**2}
_TOKENS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(k|m|g|ki|mi)?\s*$", re.IGNORECASE)


def parse_tokens(text: str | int, field: str, *, allow_zero: bool = False) -> int:
    """'131072', '128k' (= 128,000), '128Ki' (= 131,072), '1M', '10m' -> int tokens."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _TOKENS.match(str(text))
        if not match and _TOKENS.match(str(text).strip().removeprefix("-")):
            raise CostsimError(f"{field}: must be {'>= 0' if allow_zero else 'positive'}, got {text}")
        if not match:
            raise CostsimError(f"{field}: '{text}' is not a token count; use e.g. 8192, 128k or 1M")
        number = float(match.group(1)) * _SUFFIX[(match.group(2) or "").lower()]
        if not number.is_integer():
            raise CostsimError(f"{field}: '{text}' is not a whole number of tokens")
        value = int(number)
    if value < 0 or (value == 0 and not allow_zero):
        raise CostsimError(f"{field}: must be {'>= 0' if allow_zero else 'positive'}, got {text}")
    return value


def fmt_bytes(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(x) >= scale:
            return f"{x / scale:,.2f} {unit}"
    return f"{x:,.0f} B"


def fmt_si(x: float, unit: str) -> str:
    if not math.isfinite(x):
        return str(x)
    for prefix, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:,.3g} {prefix}{unit}"
    return f"{x:,.3g} {unit}"


def fmt_count(x: int) -> str:
    return f"{x:,} ({x / 1e9:.2f} B)" if x >= 1e8 else f"{x:,}"
