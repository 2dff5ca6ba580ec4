"""Engine profiles by name or path, what each can serve, and the kernel plan the timing model takes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from costsim.data import data_dir
from costsim.engine.timing import KernelPlan
from costsim.errors import CostsimError
from costsim.files import load_toml_model
from costsim.spec.engine import EngineProfile
from costsim.spec.hardware import HardwareProfile
from costsim.spec.model import ModelSpec

DEFAULT_ENGINE = "vllm"


def engine_names() -> list[str]:
    folder = data_dir("engine_profiles")
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


@lru_cache(maxsize=16)
def _load_named(name: str) -> EngineProfile:
    return load_toml_model(EngineProfile, data_dir("engine_profiles") / f"{name}.toml")


def load_engine(name_or_path: str | Path | EngineProfile | None = None) -> EngineProfile:
    """An engine profile by name (vllm, sglang, trtllm, pytorch-eager) or from a .toml file; None: vllm."""
    if isinstance(name_or_path, EngineProfile):
        return name_or_path
    text = str(name_or_path if name_or_path is not None else DEFAULT_ENGINE).strip()
    if text.lower() in engine_names():
        return _load_named(text.lower())
    path = Path(text)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise CostsimError(f"--engine: {text}: no such engine profile file")
        return load_toml_model(EngineProfile, path)
    from costsim.names import not_found

    raise CostsimError(not_found(f"--engine '{text}'", "not an engine profile or a .toml path", text, engine_names(),
                                 noun="engines"))


def engine_or_none(engine: str | Path | EngineProfile | None) -> EngineProfile | None:
    """What a Python entry point's `engine=` names: a profile, a name or path (vllm, the default), or None /
    'none' for costsim's own kernel list and 10% reserve (`--engine none`)."""
    if engine is None or (isinstance(engine, str) and engine.strip().lower() == "none"):
        return None
    return load_engine(engine)


def step_loop_engine(engine: str | Path | EngineProfile | None, command: str) -> EngineProfile:
    """serve and frontier simulate an engine's step loop: None or 'none' has no loop to run."""
    profile = engine_or_none(engine)
    if profile is None:
        raise CostsimError(f"--engine: {command} simulates a serving engine's step loop; name one (vllm, sglang, "
                           "trtllm, pytorch-eager or a profile .toml), not none")
    return profile


def check_serves(engine: EngineProfile, spec: ModelSpec, hw: HardwareProfile) -> None:
    """One-line refusal where the engine does not run this model's mixers or this vendor's devices."""
    vendors = getattr(hw, "vendor", None)
    if isinstance(vendors, str) and vendors not in engine.vendors:
        others = [n for n in engine_names() if hw.vendor in _load_named(n).vendors]
        raise CostsimError(f"--engine: {engine.name} does not run on {hw.vendor} devices ({hw.name}); engines that "
                           f"do: {', '.join(others) or 'none bundled'}")
    families = sorted({m.family for m, _ in spec.mixer_groups})
    missing = [f for f in families if f not in engine.families]
    if missing:
        others = [n for n in engine_names() if all(f in _load_named(n).families for f in families)]
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
