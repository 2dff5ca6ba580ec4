"""Agent workload scenarios: turns of new input, hidden reasoning and visible output, with prefix
caching, tool latency and context compaction. Token counts are fixed numbers or distributions."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, PositiveFloat, Tag, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LogNormal(_Strict):
    kind: Literal["lognormal"] = "lognormal"
    median: PositiveFloat
    sigma: float = Field(gt=0, le=5)


class Uniform(_Strict):
    kind: Literal["uniform"] = "uniform"
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"uniform needs low <= high, got low={self.low}, high={self.high}")
        return self


class Empirical(_Strict):
    kind: Literal["empirical"] = "empirical"
    values: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)


Distribution = Annotated[LogNormal | Uniform | Empirical, Field(discriminator="kind")]
def _tokens_kind(value: object) -> str:
    if isinstance(value, dict):
        return "distribution"
    return "distribution" if isinstance(value, LogNormal | Uniform | Empirical) else "fixed"


# A fixed count or a distribution; the discriminator makes errors name the right branch's field.
Tokens = Annotated[
    Annotated[Annotated[float, Field(ge=0, allow_inf_nan=False)], Tag("fixed")]
    | Annotated[Distribution, Tag("distribution")],
    Discriminator(_tokens_kind),
]


def sample(tokens: Tokens, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` whole token counts (a fixed number gives a constant array)."""
    if isinstance(tokens, int | float):
        return np.full(size, float(round(tokens)))
    if isinstance(tokens, LogNormal):
        values = rng.lognormal(np.log(tokens.median), tokens.sigma, size)
    elif isinstance(tokens, Uniform):
        values = rng.uniform(tokens.low, tokens.high, size)
    else:
        values = rng.choice(np.asarray(tokens.values, dtype=np.float64), size)
    return np.round(values)


class Turn(_Strict):
    input_tokens: Tokens = Field(0, description="new user message or tool result")
    reasoning_tokens: Tokens = Field(0, description="hidden chain of thought (decoded, then dropped from context)")
    output_tokens: Tokens = Field(0, description="visible answer or tool call (decoded, kept in context)")
    tool_latency_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.0, description="time until the next turn; the cache is held meanwhile")


class PrefixCache(_Strict):
    hit_rate: float = Field(1.0, ge=0, le=1, description="fraction of the previous context found in the cache")
    evict_after_s: float | None = Field(None, gt=0, description="a gap longer than this evicts the cache (a miss)")
    between_turns: Literal["keep", "recompute", "offload"] = Field(
        "keep", description="keep the cache in device memory during tool latency (paying for the memory), free it "
                            "and recompute the prefix next turn, or offload it to host memory / SSD and load the "
                            "hit part back next turn (no HBM held; the load adds to the turn's latency)")
    offload_tier: Literal["host", "ssd"] = Field(
        "host", description="with between_turns = offload: host memory (over the profile's host link) or local SSD")


class ContextPolicy(_Strict):
    limit_tokens: Annotated[float, Field(gt=0)] | None = None
    on_limit: Literal["compact", "truncate"] = "compact"
    compact_to_tokens: Annotated[float, Field(gt=0)] = 20_000


class SubAgents(_Strict):
    """Parallel sub-agents spawned after one of the parent's turns; each runs its own turns with its own
    context, and each returns `return_tokens` that the parent reads as input in its next turn."""

    count: int = Field(ge=1, le=10_000)
    after_turn: int = Field(0, ge=0, description="index of the parent turn after which they run")
    return_tokens: Tokens = 0
    system_prompt_tokens: Tokens = 0
    turns: list[Turn] = Field(default_factory=list)
    template: Turn | None = None
    repeat: int = Field(0, ge=0, le=100_000)
    prefix_cache: PrefixCache = PrefixCache()

    def as_scenario(self, parent: str) -> Scenario:
        return Scenario(name=f"{parent} sub-agent", system_prompt_tokens=self.system_prompt_tokens, turns=self.turns,
                        template=self.template, repeat=self.repeat, prefix_cache=self.prefix_cache)


class Scenario(_Strict):
    name: str
    description: str = ""
    sources: list[str] = Field(default_factory=list, description="where the numbers come from; assumptions say so")
    system_prompt_tokens: Tokens = 0
    turns: list[Turn] = Field(default_factory=list)
    template: Turn | None = None
    repeat: int = Field(0, ge=0, le=100_000, description="how many times `template` follows the turns")
    prefix_cache: PrefixCache = PrefixCache()
    context: ContextPolicy = ContextPolicy()
    subagents: SubAgents | None = None

    @model_validator(mode="after")
    def _has_turns(self) -> Scenario:
        if not self.turns and not (self.template and self.repeat):
            raise ValueError("a scenario needs `turns`, or a `template` with `repeat` >= 1")
        if self.repeat and self.template is None:
            raise ValueError("`repeat` is set but there is no [template] turn to repeat")
        if self.subagents is not None:
            if self.subagents.after_turn >= len(self.all_turns()):
                raise ValueError(f"subagents.after_turn {self.subagents.after_turn} is past the last parent turn "
                                 f"({len(self.all_turns()) - 1}); spawn them after an existing turn")
            self.subagents.as_scenario(self.name)  # their own turns must be valid too
        return self

    def all_turns(self) -> list[Turn]:
        return [*self.turns, *([self.template] * self.repeat if self.template else [])]


class ApiPrice(_Strict):
    """A provider's published price sheet for one model, USD per million tokens."""

    name: str
    provider: str
    model: str
    usd_per_mtok_input: float = Field(ge=0)
    usd_per_mtok_cached_input: float = Field(ge=0)
    usd_per_mtok_output: float = Field(ge=0)
    usd_per_mtok_cache_write: float | None = Field(None, ge=0, description="extra price of writing to the cache")
    long_context_threshold_tokens: float | None = Field(None, gt=0, description="prompts above it: long_* rates")
    long_usd_per_mtok_input: float | None = Field(None, ge=0)
    long_usd_per_mtok_cached_input: float | None = Field(None, ge=0)
    long_usd_per_mtok_output: float | None = Field(None, ge=0)
    date: str
    source: str
