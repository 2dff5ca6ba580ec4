"""What an engine profile can serve, and the kernel plan the timing model takes from it."""

from __future__ import annotations

from costsim.engine.timing import KernelPlan
from costsim.errors import CostsimError
from costsim.inputs.engines import engine_names, load_engine
from costsim.spec.engine import EngineProfile
from costsim.spec.hardware import HardwareProfile
from costsim.spec.model import ModelSpec


def check_serves(engine: EngineProfile, spec: ModelSpec, hw: HardwareProfile) -> None:
    """One-line refusal where the engine does not run this model's mixers or this vendor's devices."""
    vendors = getattr(hw, "vendor", None)
    if isinstance(vendors, str) and vendors not in engine.vendors:
        others = [n for n in engine_names() if hw.vendor in load_engine(n).vendors]
        raise CostsimError(f"--engine: {engine.name} does not run on {hw.vendor} devices ({hw.name}); engines that "
                           f"do: {', '.join(others) or 'none bundled'}")
    families = sorted({m.family for m, _ in spec.mixer_groups})
    missing = [f for f in families if f not in engine.families]
    if missing:
        others = [n for n in engine_names() if all(f in load_engine(n).families for f in families)]
        raise CostsimError(f"--engine: {engine.name} does not serve {', '.join(missing)} layers ({spec.name}); "
                           f"engines that do: {', '.join(others) or 'none bundled'}")


def kernel_plan(engine: EngineProfile) -> KernelPlan:
    """The profile's [kernels] as the timing model takes them (the plan holds every Kernels field, by the same
    name), with its attention tables ('' in a profile: none)."""
    a = engine.attention
    return KernelPlan(**engine.kernels.model_dump(), decode_table=a.decode_table or None,
                      prefill_table=a.prefill_table or None, mla_decode_table=a.mla_decode_table or None)


def attention_evidence(engine: EngineProfile, spec: ModelSpec, hw: HardwareProfile) -> list[dict[str, object]]:
    """Per attention phase the model runs: the engine's kernel, the fitted table that prices it, and whether
    that table exists in the hardware profile and is the kernel's own ('fitted'), a stand-in's, or absent
    ('unfitted': the profile's default efficiencies)."""
    from costsim.engine.timing import attention_table_key
    from costsim.spec.model import MLAttention

    plan = kernel_plan(engine)
    rows, seen = [], set()
    tables = getattr(getattr(hw, "efficiency", None), "implementations", {}) or {}
    for mixer, _ in spec.mixer_groups:
        if mixer.family not in ("dense", "sliding", "chunked", "nsa", "mla", "dsa"):
            continue
        for phase, klass in (("decode", "attention_decode"), ("prefill", "attention_prefill")):
            mla = isinstance(mixer, MLAttention)
            kernel = (engine.attention.mla_decode if mla and phase == "decode" else
                      engine.attention.decode if phase == "decode" else engine.attention.prefill)
            key = attention_table_key(klass, mixer, plan)
            if (phase, kernel, key) in seen:
                continue
            seen.add((phase, kernel, key))
            if key is None or key not in tables:
                status = "unfitted"
            elif kernel in engine.attention.measured:
                status = "fitted"
            else:
                status = "stand-in"
            rows.append({"phase": phase, "kernel": kernel, "table": key, "status": status})
    return rows
