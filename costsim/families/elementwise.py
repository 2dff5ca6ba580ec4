"""Elementwise kernels a serving engine launches around each mixer and FFN, besides GEMMs and the
attention/scan core: the fused residual-add + RMSNorm before each block, rotary embedding, output
gates, the FFN activation, and each family's own small passes (MLA's latent norms; the short
convolution, gating and gated norm of Gated DeltaNet and Mamba).

Each is a separate streaming kernel in vLLM / SGLang (fused_add_rms_norm, rotary_embedding,
reshape_and_cache_flash / concat_and_cache_mla, silu_and_mul, causal_conv1d, gdn gating, gated
RMSNorm): it reads and writes activations once, so its time is its bytes over the bandwidth achieved at
that size, plus a fixed latency. At batch 1 these dominate the gap between weight-read time and step
time; at long prefills they are 5-10% of the step. Counts are elements read + written per token, in
activation precision; the engine multiplies by tokens and prices each kernel on its own.
"""

from __future__ import annotations

from costsim.families import delta, ssm
from costsim.spec.model import FFN, Mixer, MoEFFN

# fused residual add + RMSNorm: reads x and the residual, writes the normed x and the new residual
ADD_NORM = 4.0
SOFTMAX_HEADS = ("dense", "sliding", "chunked", "nsa")


def mixer_kernels(m: Mixer, d: int) -> list[float]:
    """Elements moved per token by each elementwise kernel of one mixer block, its pre-norm included."""
    kernels = [ADD_NORM * d]
    if m.family in SOFTMAX_HEADS:
        kernels.append(2.0 * (m.num_heads + m.num_kv_heads) * m.head_dim)  # rotary on q and k (q/k norm fused)
        # the new tokens' K and V into the paged cache (vLLM's reshape_and_cache_flash): read, write once
        kernels.append(4.0 * m.num_kv_heads * m.head_dim)
        if m.output_gate:
            kernels.append(3.0 * m.num_heads * m.head_dim)  # sigmoid(gate) * o: read both, write one
    elif m.family in ("mla", "dsa"):
        if m.q_lora_rank:
            kernels.append(2.0 * m.q_lora_rank)  # RMSNorm of the query latent
        kernels.append(2.0 * m.kv_lora_rank)  # RMSNorm of the cached latent
        kernels.append(2.0 * (m.num_heads + 1) * m.qk_rope_head_dim)  # rotary on q_rope and the shared k_rope
        kernels.append(2.0 * (m.kv_lora_rank + m.qk_rope_head_dim))  # latent + k_rope into the cache
    elif m.family == "gated_delta":
        kernels.append(2.0 * delta.conv_dim(m))  # short causal conv + SiLU on q, k, v
        if m.variant == "kda":  # a decay per channel: read its projection, write it in fp32 (two elements)
            kernels.append(3.0 * delta.key_dim(m) + 2.0 * m.num_v_heads)
        else:
            kernels.append(4.0 * m.num_v_heads)  # decay and beta gates, one each per value head
        kernels.append(3.0 * delta.value_dim(m))  # gated RMSNorm: read o and z, write
    elif m.family == "linear":
        kernels.append(3.0 * m.num_heads * m.head_dim)  # output norm x gate
    elif m.family in ("mamba2", "mamba"):
        d_inner = m.num_heads * m.head_dim if m.family == "mamba2" else m.d_inner
        kernels.append(2.0 * ssm.conv_dim(m))  # short causal conv + SiLU
        kernels.append(3.0 * d_inner)  # gated norm / output gate
    return kernels


def ffn_kernels(block: FFN, d: int) -> list[float]:
    """Elements moved per token by each elementwise kernel of one FFN block, its pre-norm included."""
    kernels = [ADD_NORM * d]
    gated = block.activation in ("swiglu", "geglu")
    per_unit = 3.0 if gated else 2.0  # act(gate) * up: read two, write one; plain act: read, write
    if isinstance(block, MoEFFN):
        kernels.append(per_unit * block.top_k * block.expert_intermediate_size)
        kernels.append(4.0 * block.top_k * d)  # permute tokens to experts and the weighted un-permute
        if block.shared_intermediate_size:
            kernels.append(per_unit * block.shared_intermediate_size)
    else:
        kernels.append(per_unit * block.intermediate_size)
    return kernels


def final_norm_kernels(d: int) -> list[float]:
    return [ADD_NORM * d]
