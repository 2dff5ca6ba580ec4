"""Reading fields out of a config dict with errors that name the field and the fix.

Every whole number is checked against its bound (costsim.spec.bounds) when it is read, before any
arithmetic: ``"num_experts": 1e300`` is refused as it stands, never int()-converted into a 301-digit
integer and multiplied into a parameter count.
"""

from __future__ import annotations

from typing import Any

from costsim.errors import CostsimError
from costsim.spec.bounds import (
    MAX_EXPERTS,
    MAX_HEAD_DIM,
    MAX_HEADS,
    MAX_HIDDEN,
    MAX_KERNEL,
    MAX_LAYERS,
    MAX_MULTIPLIER,
    MAX_STATE,
    MAX_TOKENS,
    MAX_VOCAB,
    MAX_WIDTH,
    whole_number_problem,
)

_MISSING = object()

# The largest value of each HF config key (the key names are shared across model types). A key not listed
# here is held to MAX_WIDTH, which keeps any product of a few read values finite.
_KEYS_BY_BOUND = (  # pairs, not a dict: several bounds share a value
    (MAX_LAYERS, ("num_hidden_layers", "n_layer", "first_k_dense_replace", "moe_layer_freq", "decoder_sparse_step",
                  "full_attention_interval", "sliding_window_pattern", "interleave_moe_layer_step",
                  "attn_layer_period", "attn_layer_offset", "expert_layer_period", "expert_layer_offset")),
    (MAX_HEADS, ("num_attention_heads", "num_key_value_heads", "num_heads", "num_heads_kv", "linear_num_key_heads",
                 "linear_num_value_heads", "index_n_heads", "mamba_num_heads", "n_groups", "ngroups")),
    (MAX_HIDDEN, ("hidden_size", "d_model")),
    (MAX_WIDTH, ("intermediate_size", "moe_intermediate_size", "shared_expert_intermediate_size",
                 "intermediate_size_mlp", "d_intermediate", "q_lora_rank", "kv_lora_rank", "mamba_dt_rank")),
    (MAX_HEAD_DIM, ("head_dim", "headdim", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "index_head_dim",
                    "linear_key_head_dim", "linear_value_head_dim", "mamba_head_dim")),
    (MAX_VOCAB, ("vocab_size", "pad_vocab_size_multiple")),
    (MAX_EXPERTS, ("num_experts", "num_local_experts", "n_routed_experts", "num_experts_per_tok",
                   "num_experts_per_token", "experts_per_token", "n_shared_experts")),
    (MAX_STATE, ("d_state", "state_size", "ssm_state_size", "mamba_d_state")),
    (MAX_KERNEL, ("d_conv", "conv_kernel", "linear_conv_kernel_dim", "short_conv_kernel_size", "mamba_d_conv")),
    (MAX_MULTIPLIER, ("expand", "mamba_expand")),
    (MAX_TOKENS, ("max_position_embeddings", "sliding_window", "attention_chunk_size", "block_size", "chunk_size",
                  "index_topk")),
)
KEY_BOUNDS = {key: bound for bound, keys in _KEYS_BY_BOUND for key in keys}


class ConfigReader:
    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _fail(self, key: str, problem: str) -> CostsimError:
        return CostsimError(f"{self.where}: field '{key}' {problem}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise self._fail(key, "is missing; add it to the config")
            return default
        return value

    def int(self, key: str, default: Any = _MISSING, *, minimum: int = 1) -> int:
        """A whole number from ``minimum`` to the key's bound (KEY_BOUNDS); a default is checked too."""
        value = self.raw(key, default)
        if value is None:
            return value
        problem = whole_number_problem(value, minimum, KEY_BOUNDS.get(key, MAX_WIDTH))
        if problem:
            raise self._fail(key, problem)
        return int(value)

    def optional_int(self, key: str, *, minimum: int = 1) -> int | None:
        return self.int(key, None, minimum=minimum) if self.has(key) else None

    def bool(self, key: str, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, got {value!r}")
        return value

    def str(self, key: str, default: Any = _MISSING) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self._fail(key, f"must be a string, got {value!r}")
        return value

    def list(self, key: str, default: Any = _MISSING) -> list:
        """A list; every list costsim reads from a config holds at most one entry per layer."""
        value = self.raw(key, default)
        if not isinstance(value, list):
            raise self._fail(key, f"must be a list, got {type(value).__name__}")
        if len(value) > MAX_LAYERS:
            raise self._fail(key, f"must have at most {MAX_LAYERS:,} entries (one per layer), got {len(value):,}")
        return value

    def sub(self, key: str) -> ConfigReader:
        value = self.raw(key)
        if not isinstance(value, dict):
            raise self._fail(key, "must be an object")
        return ConfigReader(value, f"{self.where} [{key}]")
