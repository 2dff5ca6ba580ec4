"""Engine profiles by name or path: the bundled ones (engine_profiles/*.toml) or a user's .toml."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from costsim.errors import CostsimError
from costsim.inputs.data import data_dir
from costsim.inputs.files import load_toml_model
from costsim.spec.engine import EngineProfile

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
    from costsim.inputs.names import not_found

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
