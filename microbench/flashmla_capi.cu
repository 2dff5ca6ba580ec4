// A C entry point over FlashMLA's dense MLA decode (Hopper, bf16), so that microbench/flashmla_decode.py
// can call it through ctypes with PyTorch's tensors and stream, without building a PyTorch extension.
// FlashMLA itself is not part of this repository: microbench/build_flashmla.sh compiles this file together
// with the three FlashMLA sources it calls, from a checkout the user provides (MIT licence).
//
// One query token per sequence and one latent KV head (DeepSeek's absorbed MLA decode): FlashMLA's own
// interface then treats the H query heads as H query rows of that single head, which is the layout below.

#include <cmath>

#include <cuda_runtime.h>

#include "params.h"
#include "sm90/decode/dense/splitkv_mla.h"
#include "smxx/decode/combine/combine.h"
#include "smxx/decode/get_decoding_sched_meta/get_decoding_sched_meta.h"

namespace {

constexpr int kHeadDimK = 576;    // 512 latent dims + 64 rope dims
constexpr int kHeadDimV = 512;    // the latent dims double as the values
constexpr int kPageTokens = 64;   // FlashMLA's only supported page size
constexpr int kRowsPerTile = 64;  // query rows (heads) per program; sets how many SM partitions fit
constexpr int kFixedOverheadBlocks = 5;  // FlashMLA's scheduler charges each split this many pages

}  // namespace

extern "C" {

// How many SM partitions FlashMLA's scheduler splits the work into for `heads` query heads.
int costsim_flashmla_sm_parts(int num_sms, int heads) {
    int tiles = (heads + kRowsPerTile - 1) / kRowsPerTile;
    int parts = num_sms / tiles;
    return parts > 1 ? parts : 1;
}

// softmax(q . K^T * scale) . V over each sequence's first seqlens[b] cached tokens.
//   q           (batch, heads, 576) bf16, contiguous
//   kcache      (num_pages, 64, 576) bf16: the latent cache in 64-token pages
//   page_table  (batch, pages_per_seq) int32: sequence b's pages, in order
//   seqlens     (batch,) int32
//   out         (batch, heads, 512) bf16;  lse (batch, heads) fp32
//   workspace:  sched_meta (sm_parts, 8) int32, num_splits (batch + 1) int32,
//               lse_accum (batch + sm_parts, heads) fp32, out_accum (batch + sm_parts, heads, 512) fp32
// plan != 0 first fills sched_meta and num_splits from seqlens (FlashMLA's get_mla_metadata); a serving
// engine does that once per step and every layer reuses it, so later layers pass plan = 0.
// Returns the CUDA error code of the launches (0 on success).
int costsim_flashmla_decode(void* q, void* kcache, int* page_table, int pages_per_seq, int* seqlens, void* out,
                            float* lse, int* sched_meta, int* num_splits, float* lse_accum, float* out_accum,
                            int batch, int heads, int num_pages, int sm_parts, float scale, int plan,
                            void* stream) {
    cudaStream_t s = static_cast<cudaStream_t>(stream);

    if (plan) {
        GetDecodeSchedMetaParams sched{};
        sched.b = batch;
        sched.s_q = 1;
        sched.block_size_n = kPageTokens;
        sched.fixed_overhead_num_blocks = kFixedOverheadBlocks;
        sched.topk = -1;  // dense attention: every cached token
        sched.extra_topk = -1;
        sched.topk_length = nullptr;
        sched.extra_topk_length = nullptr;
        sched.seqlens_k_ptr = seqlens;
        sched.tile_scheduler_metadata_ptr = reinterpret_cast<DecodingSchedMeta*>(sched_meta);
        sched.num_splits_ptr = num_splits;
        sched.num_sm_parts = sm_parts;
        sched.stream = s;
        smxx::decode::run_get_decoding_sched_meta_kernel(sched);
    }

    // Strides in elements. Query rows are the heads (rows of the one KV head); the KV-head dimension has
    // size 1, so its stride only has to be consistent.
    DenseAttnDecodeParams p{};
    p.b = batch;
    p.s_q = 1;
    p.q_seq_per_hk = heads;
    p.d = kHeadDimK;
    p.d_v = kHeadDimV;
    p.h_q = heads;
    p.h_k = 1;
    p.num_blocks = num_pages;
    p.q_head_per_hk = heads;
    p.is_causal = false;  // one query token sees every cached key
    p.scale_softmax = scale;
    p.scale_softmax_log2 = scale * static_cast<float>(M_LOG2E);
    p.q_ptr = q;
    p.k_ptr = kcache;
    p.o_ptr = out;
    p.softmax_lse_ptr = lse;
    p.q_batch_stride = static_cast<int64_t>(heads) * kHeadDimK;
    p.q_row_stride = kHeadDimK;
    p.q_head_stride = kHeadDimK;
    p.k_batch_stride = static_cast<int64_t>(kPageTokens) * kHeadDimK;
    p.k_row_stride = kHeadDimK;
    p.k_head_stride = kHeadDimK;
    p.o_batch_stride = static_cast<int64_t>(heads) * kHeadDimV;
    p.o_row_stride = kHeadDimV;
    p.o_head_stride = static_cast<int64_t>(heads) * kHeadDimV;
    p.block_table = page_table;
    p.block_table_batch_stride = pages_per_seq;
    p.page_block_size = kPageTokens;
    p.seqlens_k_ptr = seqlens;
    p.tile_scheduler_metadata_ptr = reinterpret_cast<DecodingSchedMeta*>(sched_meta);
    p.num_sm_parts = sm_parts;
    p.num_splits_ptr = num_splits;
    p.total_num_splits = batch + sm_parts;
    p.softmax_lseaccum_ptr = lse_accum;
    p.oaccum_ptr = out_accum;
    p.stream = s;
    sm90::run_flash_splitkv_mla_kernel<cutlass::bfloat16_t>(p);

    CombineParams c{};
    c.b = batch;
    c.s_q = 1;
    c.h_q = heads;
    c.d_v = kHeadDimV;
    c.lse = lse;
    c.out = out;
    c.stride_lse_b = heads;
    c.stride_lse_s_q = heads;
    c.stride_o_b = heads * kHeadDimV;
    c.stride_o_s_q = heads * kHeadDimV;
    c.stride_o_h_q = kHeadDimV;
    c.lse_accum = lse_accum;
    c.o_accum = out_accum;
    c.stride_lse_accum_split = heads;
    c.stride_lse_accum_s_q = heads;
    c.stride_o_accum_split = heads * kHeadDimV;
    c.stride_o_accum_s_q = heads * kHeadDimV;
    c.stride_o_accum_h_q = kHeadDimV;
    c.tile_scheduler_metadata_ptr = reinterpret_cast<DecodingSchedMeta*>(sched_meta);
    c.num_splits_ptr = num_splits;
    c.num_sm_parts = sm_parts;
    c.attn_sink = nullptr;
    c.stream = s;
    smxx::decode::run_flash_mla_combine_kernel<cutlass::bfloat16_t>(c);

    return static_cast<int>(cudaGetLastError());
}

}  // extern "C"
