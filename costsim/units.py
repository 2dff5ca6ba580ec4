"""Parsing human token counts ("128k", "1M") and formatting SI quantities for tables."""

from __future__ import annotations

import math
import re
from decimal import Decimal, localcontext

from costsim.errors import CostsimError
from costsim.spec.bounds import MAX_BATCH, MAX_TOKENS, shown

_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000, "ki": 1024, "mi": 1024**2}
_TOKENS = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e\+?\d+)?)\s*(k|m|g|ki|mi)?\s*$", re.IGNORECASE)
# the largest count each option takes (costsim.spec.bounds); any other option is a token count
_LIMITS = {"--batch": (MAX_BATCH, "sequences"), "--requests": (MAX_TOKENS, "requests")}


def parse_tokens(text: str | int, field: str, *, allow_zero: bool = False, maximum: int | None = None) -> int:
    """'131072', '128k' (= 128,000), '128Ki' (= 131,072), '1M', '10m', '1e6' -> int tokens, from 1 (0 with
    allow_zero) to ``maximum`` (default: MAX_BATCH for --batch, else MAX_TOKENS). Decimal arithmetic, so
    '1e30' or a 40-digit count is refused by its size, never rounded into range."""
    limit, noun = _LIMITS.get(field, (MAX_TOKENS, "tokens"))
    hi = limit if maximum is None else maximum
    lo = 0 if allow_zero else 1
    given = shown(text) if isinstance(text, int) and not isinstance(text, bool) else str(text).strip()[:40]
    out_of_range = CostsimError(f"{field}: must be a whole number of {noun} from {lo:,} to {hi:,}, got {given}")
    if isinstance(text, int) and not isinstance(text, bool):
        value = Decimal(text)
    else:
        match = _TOKENS.match(str(text))
        if not match and _TOKENS.match(str(text).strip().removeprefix("-")):
            raise out_of_range
        if not match:
            raise CostsimError(f"{field}: '{text}' is not a token count; use e.g. 8192, 128k or 1M")
        mantissa = Decimal(match.group(1))
        if mantissa > hi:  # exact, and before any arithmetic: '1e999999999' is never expanded
            raise out_of_range
        with localcontext() as ctx:
            ctx.prec = len(match.group(1)) + 20  # enough digits that the product below is exact
            value = mantissa * _SUFFIX[(match.group(2) or "").lower()]
    if value != value.to_integral_value() or not lo <= value <= hi:
        raise out_of_range
    return int(value)


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


def fmt_duration(seconds: float | None) -> str:
    """A time in the unit that reads best: 8.54 ms, 1.15 s, 3.4 min, 11.4 h ('-' for None)."""
    if seconds is None:
        return "-"
    if not math.isfinite(seconds):
        return str(seconds)
    for unit, scale, limit in (("us", 1e-6, 1e-3), ("ms", 1e-3, 10.0), ("s", 1.0, 120.0), ("min", 60.0, 7200.0)):
        if abs(seconds) < limit:
            value = seconds / scale
            return f"{value:,.2f} {unit}" if abs(value) < 100 else f"{value:,.1f} {unit}"
    return f"{seconds / 3600.0:,.1f} h"
