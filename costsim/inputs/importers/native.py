"""costsim's own model file (TOML or JSON) for architectures that have no config.json yet.

Two forms:

1. A full spec: the fields of ``ModelSpec`` with an explicit ``layers`` list.
2. A pattern: ``mixers`` and ``ffns`` tables keyed by one letter, a ``pattern`` string tiled over
   ``num_layers`` (and optionally an ``ffn_pattern``). With ``base = "<preset or config path>"``
   the model starts as a copy of that one; a ``=`` in ``pattern`` keeps the base layer's mixer, so
   "Llama-3.1-70B with 3 of every 4 layers Gated DeltaNet" is ``base = "llama-3.1-70b"``,
   ``pattern = "GGG="`` and one ``[mixers.G]`` table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from costsim.errors import CostsimError
from costsim.inputs.pydantic_errors import one_line
from costsim.spec.bounds import MAX_HIDDEN, MAX_LAYERS, MAX_NORM_PARAMS, whole_number_problem
from costsim.spec.model import FFN, Layer, Mixer, ModelSpec

KEEP = "="
_MIXER = TypeAdapter(Mixer)
_FFN = TypeAdapter(FFN)

NATIVE_KEYS = {"layers", "pattern", "base", "mixers"}


def is_native(data: dict[str, Any]) -> bool:
    return "model_type" not in data and bool(NATIVE_KEYS & set(data))


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise CostsimError(f"{where}: field '{key}' must be a table of one-letter entries, e.g. [{key}.G]")
    return value


def _validate(adapter: TypeAdapter, value: Any, loc: str, where: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise CostsimError(one_line(exc, f"{where} [{loc}]")) from None


def _whole(data: dict[str, Any], key: str, default: int, lo: int, hi: int, where: str) -> int:
    """A whole-number field read before it is used in arithmetic (tiling, 2 x hidden): bounded first."""
    value = data.get(key, default)
    problem = whole_number_problem(value, lo, hi)
    if problem:
        raise CostsimError(f"{where}: field '{key}' {problem}")
    return int(value)


def _tile(pattern: str, n: int, field: str, where: str) -> str:
    if not pattern:
        raise CostsimError(f"{where}: field '{field}' is empty; give one letter per layer, e.g. \"GGGA\"")
    return (pattern * (n // len(pattern) + 1))[:n]


def from_native(data: dict[str, Any], where: str, load_base: Callable[[str], ModelSpec]) -> ModelSpec:
    if "layers" in data:
        return ModelSpec.model_validate(data)
    base = load_base(str(data["base"])) if "base" in data else None
    if "num_layers" not in data and base is None:
        raise CostsimError(f"{where}: field 'num_layers' is missing; set the number of layers")
    n_layers = _whole(data, "num_layers", base.num_layers if base else 0, 1, MAX_LAYERS, where)
    if "pattern" not in data:
        raise CostsimError(f"{where}: field 'pattern' is missing; give one mixer letter per layer, e.g. \"GGGA\"")
    mixers = {k: _validate(_MIXER, v, f"mixers.{k}", where) for k, v in _table(data, "mixers", where).items()}
    ffns = {k: _validate(_FFN, v, f"ffns.{k}", where) for k, v in _table(data, "ffns", where).items()}
    pattern = _tile(str(data["pattern"]), n_layers, "pattern", where)
    ffn_pattern = _tile(str(data["ffn_pattern"]), n_layers, "ffn_pattern", where) if "ffn_pattern" in data else None
    if ffn_pattern is None and base is None and len(ffns) > 1:
        raise CostsimError(f"{where}: several [ffns] but no 'ffn_pattern'; add one letter per layer")
    if "hidden_size" not in data and base is None:
        raise CostsimError(f"{where}: field 'hidden_size' is missing; set the model width")
    hidden = _whole(data, "hidden_size", base.hidden_size if base else 0, 1, MAX_HIDDEN, where)
    norm_params = _whole(data, "norm_params_per_layer", 2 * hidden, 0, MAX_NORM_PARAMS, where)
    layers = []
    for i, letter in enumerate(pattern):
        base_layer = base.layers[i] if base and i < base.num_layers else None
        if letter == KEEP:
            if base_layer is None:
                raise CostsimError(f"{where}: pattern '=' at layer {i} needs a 'base' model with that layer")
            mixer = base_layer.mixer
        elif letter == "-":
            mixer = None
        elif letter in mixers:
            mixer = mixers[letter]
        else:
            raise CostsimError(f"{where}: pattern letter '{letter}' has no [mixers.{letter}] table; add one")
        if ffn_pattern is not None:
            key = ffn_pattern[i]
            if key != "-" and key not in ffns:
                raise CostsimError(f"{where}: ffn_pattern letter '{key}' has no [ffns.{key}] table; add one")
            ffn = None if key == "-" else ffns[key]
        elif ffns:
            ffn = next(iter(ffns.values()))
        else:
            ffn = base_layer.ffn if base_layer else None
        layers.append(Layer(mixer=mixer, ffn=ffn,
                            norm_params=base_layer.norm_params if base_layer and "norm_params_per_layer" not in data
                            else norm_params))
    fields = {"name": data.get("name", base.name if base else "model"), "hidden_size": hidden,
              "vocab_size": data.get("vocab_size", base.vocab_size if base else None),
              "tie_embeddings": data.get("tie_embeddings", base.tie_embeddings if base else False),
              "final_norm_params": data.get("final_norm_params", hidden),
              "max_context": data.get("max_context", base.max_context if base else None),
              "source": f"costsim model file {where}" + (f" (base {data['base']})" if base else ""),
              "layers": layers}
    return ModelSpec.model_validate(fields)
