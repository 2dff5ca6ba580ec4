"""Bounds on every size costsim reads, written once.

The model and layout specs, the HF importer, the native model format and the token-count parser all check
against these, so a config with ``"num_experts": 1e300`` or ``--context 1e30`` is one line naming the field
and its range (exit code 2), never a 300-digit parameter count or ``inf`` bytes. Each bound sits far past
any published or plausible model and low enough that costsim's arithmetic stays finite: products of a few
of them stay below 1e50, far inside float64. docs/cli.md ("Input bounds") gives the table and the reasons.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

MAX_LAYERS = 10_000            # layers (and layer periods, offsets, per-layer lists)
MAX_HEADS = 65_536             # attention, KV, linear-attention and SSM heads; B/C groups
MAX_HIDDEN = 2**20             # hidden_size (d_model)
MAX_WIDTH = 2**22              # FFN widths (dense, expert, shared total), d_inner, low ranks
MAX_HEAD_DIM = 4_096           # every per-head dimension
MAX_VOCAB = 2**24              # vocabulary (and its padding multiple)
MAX_EXPERTS = 65_536           # routed experts, top-k, shared experts
MAX_STATE = 65_536             # SSM state per channel (d_state)
MAX_KERNEL = 1_024             # short-convolution width
MAX_MULTIPLIER = 1_024         # Mamba's expand (d_inner = expand x hidden)
MAX_NORM_PARAMS = 2**30        # norm weights of one layer, or of the final norm
MAX_TOKENS = 10**9             # context, prompt, output, windows, chunks, top-k tokens, max_context
MAX_BATCH = 10**7              # sequences per decode step
MAX_DEGREE = 4_096             # each of tp, cp, pp, ep, dp
MAX_DEVICES = 65_536           # devices of a whole layout (tp x cp x pp x dp)


def shown(value: Any) -> str:
    """A value as the user wrote it, short: JSON spelling for true/false/null, no 300-digit integers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        if value.bit_length() > 100:
            return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
        return f"{value:,}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    return {list: "a list", tuple: "a list", dict: "an object"}.get(type(value), f"a {type(value).__name__}")


def whole_number_problem(value: Any, lo: int, hi: int) -> str | None:
    """None when ``value`` is a whole number from lo to hi (an int, or a float with no fraction); else what
    is wrong, worded to follow "field 'x' ". Text ("8"), true/false and lists are refused, not converted."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if value is None or isinstance(value, bool):
            what = shown(value)
        elif isinstance(value, str):
            what = f"{shown(value)} (text)"
        else:
            what = f"({shown(value)})"
        return f"has an invalid value {what}; give a whole number from {lo:,} to {hi:,}"
    if (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())) or not lo <= value <= hi:
        return f"must be a whole number from {lo:,} to {hi:,}, got {shown(value)}"
    return None


def whole(lo: int, hi: int) -> Any:
    """An int field from lo to hi whose error is whole_number_problem's line (via validation_errors.one_line)."""

    def check(value: Any) -> Any:
        problem = whole_number_problem(value, lo, hi)
        if problem:
            raise ValueError(problem)
        return int(value)

    return Annotated[int, BeforeValidator(check), Field(ge=lo, le=hi)]


Layers = whole(1, MAX_LAYERS)
Heads = whole(1, MAX_HEADS)
Hidden = whole(1, MAX_HIDDEN)
Width = whole(1, MAX_WIDTH)
WidthOrZero = whole(0, MAX_WIDTH)
HeadDim = whole(1, MAX_HEAD_DIM)
Vocab = whole(1, MAX_VOCAB)
Experts = whole(1, MAX_EXPERTS)
State = whole(1, MAX_STATE)
Kernel = whole(1, MAX_KERNEL)
NormParams = whole(0, MAX_NORM_PARAMS)
Tokens = whole(1, MAX_TOKENS)
Batch = whole(1, MAX_BATCH)
Degree = whole(1, MAX_DEGREE)
Devices = whole(1, MAX_DEVICES)
