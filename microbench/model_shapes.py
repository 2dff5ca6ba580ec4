"""Shapes of the synthetic models that microbench/model_step.py builds and times.

Plain Python (no torch), so costsim's tests can check that each entry matches the costsim model it
names (`model`: a preset name, or a model file relative to microbench/); a mismatch would make the
end-to-end comparison meaningless.

Measurement points are chosen so weights + cache fit in 75 GiB (the smaller of H100/H200 memory,
less workspace): decode (batch, context) and prefill (batch, prompt).
"""

from __future__ import annotations

MODELS: dict[str, dict] = {
    "llama-3.1-8b": {
        "model": "llama-3.1-8b",
        "kind": "gqa",
        "hidden": 4096,
        "layers": 32,
        "heads": 32,
        "kv_heads": 8,
        "head_dim": 128,
        "intermediate": 14336,
        "vocab": 128256,
        "decode": [(1, 8192), (8, 8192), (32, 8192), (64, 4096), (1, 32768), (4, 32768), (128, 2048)],
        "prefill": [(1, 2048), (1, 8192), (1, 32768), (4, 4096)],
    },
    "qwen3-next-dense-ffn": {
        "model": "models/qwen3-next-dense-ffn.toml",
        "kind": "hybrid_gdn",
        "hidden": 2048,
        "layers": 48,
        "pattern": "GGGA",  # G: gated DeltaNet, A: gated softmax attention
        "heads": 16,
        "kv_heads": 2,
        "head_dim": 256,
        "gdn_k_heads": 16,
        "gdn_v_heads": 32,
        "gdn_head_k": 128,
        "gdn_head_v": 128,
        "conv_kernel": 4,
        "intermediate": 5632,
        "vocab": 151936,
        "decode": [(1, 8192), (16, 8192), (64, 8192), (256, 4096), (1, 65536), (16, 65536)],
        "prefill": [(1, 4096), (1, 16384), (1, 65536), (8, 4096)],
    },
    "deepseek-v3-mla-16l": {
        "model": "models/deepseek-v3-mla-16l.toml",
        "kind": "mla",
        "hidden": 7168,
        "layers": 16,
        "heads": 128,
        "q_lora_rank": 1536,
        "kv_lora_rank": 512,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "intermediate": 18432,
        "vocab": 129280,
        "decode": [(1, 4096), (8, 4096), (32, 4096), (64, 2048), (1, 16384)],
        "prefill": [(1, 2048), (1, 8192), (4, 2048)],
    },
    # Kimi Linear's 27 mixers in its order (K: Kimi Delta Attention through fla, M: MLA without a query
    # LoRA, decode on FlashMLA where it is built), dense FFNs as wide as one token's experts
    "kimi-linear-dense-ffn": {
        "model": "models/kimi-linear-dense-ffn.toml",
        "kind": "hybrid_kda",
        "hidden": 2304,
        "layers": 27,
        "pattern": "KKKMKKKMKKKMKKKMKKKMKKKMKKM",
        "kda_heads": 32,
        "kda_head_k": 128,
        "kda_head_v": 128,
        "conv_kernel": 4,
        "heads": 32,
        "q_lora_rank": None,
        "kv_lora_rank": 512,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "intermediate": 9216,
        "vocab": 163840,
        "decode": [(1, 8192), (16, 8192), (64, 8192), (1, 65536), (16, 65536), (128, 4096)],
        "prefill": [(1, 4096), (1, 16384), (1, 65536), (8, 4096)],
    },
    # every layer a sliding window of 4096: decode past it reads a capped ring-buffer cache, prefill past
    # it runs FlexAttention (the SDPA backends take no window). H200 only: batch 128's window of cache
    # (68.7 GB) and the weights do not fit an H100's 80 GB
    "mistral-7b-v0.1": {
        "model": "mistral-7b-v0.1",
        "kind": "gqa",
        "hidden": 4096,
        "layers": 32,
        "heads": 32,
        "kv_heads": 8,
        "head_dim": 128,
        "intermediate": 14336,
        "vocab": 32000,
        "window": 4096,
        "decode": [(1, 2048), (1, 8192), (1, 131072), (16, 32768), (64, 32768), (128, 65536)],
        "prefill": [(1, 4096), (1, 16384), (1, 32768), (4, 8192)],
    },
    # tensor-parallel only (140 GB of weights): `torchrun --nproc_per_node 8 model_step.py --tp 8 --only llama-3.1-70b`
    "llama-3.1-70b": {
        "model": "llama-3.1-70b",
        "kind": "gqa",
        "tp_only": True,
        "hidden": 8192,
        "layers": 80,
        "heads": 64,
        "kv_heads": 8,
        "head_dim": 128,
        "intermediate": 28672,
        "vocab": 128256,
        "decode": [(1, 8192), (16, 8192), (64, 4096), (1, 32768), (8, 32768)],
        "prefill": [(1, 4096), (1, 16384)],
    },
}
