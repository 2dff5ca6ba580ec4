"""An engine's KV pool on one device, by its own rule, from the capacity programs see.

    fraction_of_total (vLLM, SGLang):  weights + pool = capacity x fraction - runtime - activations
    fraction_of_free (TensorRT-LLM):   pool = (capacity - weights - runtime - activations) x fraction

`activations` is the peak of the engine's profiling forward: the largest step's tokens through the widest
layer, or the sampler's fp32 logits after it, whichever is larger,
    max(activation_copies x max_batched_tokens x (4 d + 2 w) x act_bytes, logits_copies x max_num_seqs x V x 4),
with w the widest FFN per device (top_k experts' width for MoE) and V the vocabulary per device
(docs/serving.md derives it and checks Llama-3.1-70B fp8 on one H100 by hand).
"""

from __future__ import annotations

from collections.abc import Callable

from costsim.spec.dtypes import Precision
from costsim.spec.engine import EngineProfile
from costsim.spec.hardware import HardwareProfile
from costsim.spec.model import ModelSpec, MoEFFN


def ffn_width(spec: ModelSpec) -> int:
    """Widest FFN a token passes through (per device of a sharded model): the activation tensor's width."""
    widths = [0]
    for block, _ in spec.ffn_groups:
        if isinstance(block, MoEFFN):
            widths.append(block.top_k * block.expert_intermediate_size + block.shared_intermediate_size)
        else:
            widths.append(block.intermediate_size)
    return max(widths)


def activation_bytes(engine: EngineProfile, spec: ModelSpec, p: Precision) -> float:
    m, s = engine.memory, engine.scheduler
    tokens = s.max_batched_tokens
    hidden = tokens * (4 * spec.hidden_size + 2 * ffn_width(spec)) * p.act_bytes
    logits = min(s.max_num_seqs, tokens) * spec.vocab_size * 4.0
    # the sampler runs after the forward has freed its activations: the peak is the larger of the two
    return max(m.activation_copies * hidden, m.logits_copies * logits)


def weights_and_pool_budget(engine: EngineProfile, hw: HardwareProfile, p: Precision
                            ) -> Callable[[ModelSpec, float], float]:
    """budget(stage, weights): the bytes one device gives its weights and KV pool under the engine's rule."""
    m = engine.memory
    capacity = hw.memory_bytes

    def budget(stage: ModelSpec, weights: float) -> float:
        outside = m.runtime_bytes + activation_bytes(engine, stage, p)
        if m.rule == "fraction_of_total":
            return capacity * m.fraction - outside
        return weights + max(capacity - weights - outside, 0.0) * m.fraction

    return budget


def pool_breakdown(engine: EngineProfile, hw: HardwareProfile, stage: ModelSpec, weights: float,
                   p: Precision) -> dict[str, float]:
    """The figures behind one device's pool, for the output and the hand check in docs/serving.md."""
    budget = weights_and_pool_budget(engine, hw, p)(stage, weights)
    return {"capacity_bytes": hw.memory_bytes, "weight_bytes": weights,
            "activation_bytes": activation_bytes(engine, stage, p), "runtime_bytes": engine.memory.runtime_bytes,
            "kv_pool_bytes": budget - weights}
