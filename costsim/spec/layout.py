"""A parallel layout of one model replica over several devices (issue 7).

    devices per replica = tp x cp x pp
    tp: tensor parallel (heads, FFN width, vocabulary split; two all-reduces per layer)
    cp: context parallel (the prompt and the cache split along the sequence; ring attention in prefill)
    pp: pipeline parallel (consecutive layers per stage; activations passed stage to stage)
    ep: expert parallel, MoE experts spread over ep of the tp x cp devices of a stage (all-to-all
        dispatch and combine instead of the FFN all-reduce); 1 = experts split by tp like a dense FFN
    dp: independent replicas (throughput and cost scale together; $/token unchanged)

Devices are numbered tp fastest, then cp, then pp, so a group of g devices at stride s sits inside
the scale-up domain (NVLink, ICI) when g x s <= the domain size.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, model_validator

from costsim.errors import CostsimError
from costsim.spec.bounds import MAX_DEGREE, MAX_DEVICES, Degree

FIELDS = ("tp", "cp", "pp", "ep", "dp")


class Layout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    tp: Degree = 1
    cp: Degree = 1
    pp: Degree = 1
    ep: Degree = 1
    dp: Degree = 1

    @model_validator(mode="after")
    def _devices_bounded(self) -> Layout:
        if self.devices > MAX_DEVICES:
            raise ValueError(_too_many_devices(self.devices))
        return self

    @property
    def devices_per_replica(self) -> int:
        return self.tp * self.cp * self.pp

    @property
    def devices(self) -> int:
        return self.devices_per_replica * self.dp

    def label(self) -> str:
        return ",".join(f"{k}={getattr(self, k)}" for k in FIELDS if getattr(self, k) != 1) or "single"

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in FIELDS}


def _too_many_devices(devices: int) -> str:
    return f"tp x cp x pp x dp is {devices:,} devices; give at most {MAX_DEVICES:,}"


def parse_layout(text: str) -> Layout:
    """'tp=8,pp=2' (any of tp, cp, pp, ep, dp; missing ones are 1). One-line errors name the fix."""
    values: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in FIELDS:
            raise CostsimError(f"--layout: '{part}' is not key=value with key one of {', '.join(FIELDS)} "
                               "(e.g. tp=8,pp=2)")
        digits = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", digits):
            raise CostsimError(f"--layout: {key}={value!r} is not a whole number; use e.g. {key}=2")
        # compared as text first: a 5,000-digit degree is out of range, not an int() error
        number = int(digits) if len(digits.lstrip("+-")) <= 12 else MAX_DEGREE + 1
        if number < 1:
            raise CostsimError(f"--layout: {key} must be at least 1, got {number}")
        if number > MAX_DEGREE:
            raise CostsimError(f"--layout: {key} must be a whole number from 1 to {MAX_DEGREE:,}, got {digits[:40]}")
        values[key] = number
    if not values:
        raise CostsimError("--layout: empty; give e.g. tp=8 or tp=4,pp=2")
    devices = 1
    for key in ("tp", "cp", "pp", "dp"):
        devices *= values.get(key, 1)
    if devices > MAX_DEVICES:
        raise CostsimError(f"--layout: {_too_many_devices(devices)}")
    return Layout(**values)
