// Decode (split-K, contiguous and paged, GQA/MHA and MLA-absorbed) and prefill (causal, sliding window,
// block-sparse) attention: drivers, naive references, correctness checks, sweeps.
#include "attn_kernel.cuh"

// kernel instances
#define DEC_GQA 128, 128, 1, 4, 64, 3, false
#define DEC_MLA 576, 256, 8, 1, 32, 2, true
constexpr int MLA_ROWS = 8 * 16;  // query heads per MLA CTA
#define PREFILL 128, 128, 4, 1, 64, 2, false

template <int DQK, int DV, int RG, int TG, int TN, int STAGES, bool VK>
static void launch_attn(const AttnArgs& a, dim3 grid) {
  using C = AttnCfg<DQK, DV, RG, TG, TN, STAGES, VK>;
  static bool init = false;
  if (!init) {
    CK(cudaFuncSetAttribute(attn_kernel<DQK, DV, RG, TG, TN, STAGES, VK>,
                            cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
    init = true;
  }
  attn_kernel<DQK, DV, RG, TG, TN, STAGES, VK><<<grid, C::NT, C::SMEM>>>(a);
}

// combine the splits of one (batch, head) row: warp 0 turns the per-split (m, l) into weights in shared
// memory, then every thread sums its value columns over the splits with independent loads
__global__ void k_combine(const float* opart, const float* ml, bf16* o, int nsplit, int DVtot) {
  extern __shared__ float wsm[];
  size_t row = blockIdx.x;
  const float* mlr = ml + row * nsplit * 2;
  if (threadIdx.x < 32) {
    float M = -INFINITY;
    for (int s = threadIdx.x; s < nsplit; s += 32) M = fmaxf(M, mlr[2 * s]);
    for (int k = 16; k > 0; k >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffff, M, k));
    float L = 0;
    for (int s = threadIdx.x; s < nsplit; s += 32) {
      float w = exp2f(mlr[2 * s] - M);
      wsm[s] = w;
      L += w * mlr[2 * s + 1];
    }
    for (int k = 16; k > 0; k >>= 1) L += __shfl_xor_sync(0xffffffff, L, k);
    __syncwarp();
    for (int s = threadIdx.x; s < nsplit; s += 32) wsm[s] /= L;
  }
  __syncthreads();
  const float* op = opart + row * nsplit * DVtot;
  for (int d = threadIdx.x; d < DVtot; d += blockDim.x) {
    float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
    int s = 0;
    for (; s + 3 < nsplit; s += 4) {
      acc0 += op[(size_t)s * DVtot + d] * wsm[s];
      acc1 += op[(size_t)(s + 1) * DVtot + d] * wsm[s + 1];
      acc2 += op[(size_t)(s + 2) * DVtot + d] * wsm[s + 2];
      acc3 += op[(size_t)(s + 3) * DVtot + d] * wsm[s + 3];
    }
    for (; s < nsplit; s++) acc0 += op[(size_t)s * DVtot + d] * wsm[s];
    o[row * DVtot + d] = __float2bfloat16((acc0 + acc1) + (acc2 + acc3));
  }
}

// ---------------------------------------------------------------- naive reference (one block per query row)
// q row: q + qoff; keys j in [0, nkeys): key row k + (kbase + j) * ldk, value row v + (kbase + j) * ldv.
// mask: prefill causal/window/block list. Scores in dynamic shared memory (double accumulation).
struct RefArgs {
  const bf16 *q, *k, *v;
  float* o;
  int mode, B, Hq, Hkv, G, dqk, dv, ldk, ldv, ctx, causal, window;
  const int *blk_idx, *blk_cnt;
  int blk_stride, qblock;
  float scale;
};
__global__ void k_ref_attn(RefArgs r) {
  extern __shared__ float sc[];
  __shared__ float red[256];
  int b = blockIdx.z, h = blockIdx.y, qi = blockIdx.x;  // decode: qi = 0
  int kvh = h / r.G;
  const bf16* q = r.mode == 0 ? r.q + ((size_t)b * r.Hq + h) * r.dqk : r.q + (((size_t)b * r.Hq + h) * r.ctx + qi) * r.dqk;
  size_t kbase = ((size_t)b * r.Hkv + kvh) * r.ctx;
  int nk = r.mode == 0 ? r.ctx : qi + 1;
  if (r.mode == 1 && !r.causal) nk = r.ctx;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < nk; j += blockDim.x) {
    bool ok = true;
    if (r.mode == 1) {
      if (r.window > 0 && qi - j >= r.window) ok = false;
      if (r.blk_idx) {
        int nqb = r.ctx / r.qblock;
        size_t id = ((size_t)b * r.Hq + h) * nqb + qi / r.qblock;
        bool in = false;
        for (int s = 0; s < r.blk_cnt[id]; s++) in |= r.blk_idx[id * r.blk_stride + s] == j / r.qblock;
        ok = ok && in;
      }
    }
    float val = -INFINITY;
    if (ok) {
      double acc = 0;
      const bf16* kr = r.k + (kbase + j) * r.ldk;
      for (int d = 0; d < r.dqk; d++) acc += (double)__bfloat162float(q[d]) * (double)__bfloat162float(kr[d]);
      val = (float)(acc * r.scale);
    }
    sc[j] = val;
    mx = fmaxf(mx, val);
  }
  red[threadIdx.x] = mx;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + o]);
    __syncthreads();
  }
  mx = red[0];
  __syncthreads();
  float sum = 0;
  for (int j = threadIdx.x; j < nk; j += blockDim.x) {
    float p = sc[j] == -INFINITY ? 0.f : expf(sc[j] - mx);
    sc[j] = p;
    sum += p;
  }
  red[threadIdx.x] = sum;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) red[threadIdx.x] += red[threadIdx.x + o];
    __syncthreads();
  }
  sum = red[0];
  for (int d = threadIdx.x; d < r.dv; d += blockDim.x) {
    double acc = 0;
    for (int j = 0; j < nk; j++)
      if (sc[j] != 0.f) acc += (double)sc[j] * (double)__bfloat162float(r.v[(kbase + j) * r.ldv + d]);
    size_t orow = r.mode == 0 ? ((size_t)b * r.Hq + h) : (((size_t)b * r.Hq + h) * r.ctx + qi);
    r.o[orow * r.dv + d] = (float)(acc / sum);
  }
}
static void ref_attn(const RefArgs& r, int nq) {
  size_t sm = (size_t)r.ctx * 4;
  CK(cudaFuncSetAttribute(k_ref_attn, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
  k_ref_attn<<<dim3(nq, r.Hq, r.B), 256, sm>>>(r);
  CKL();
}

// contiguous [B][Hkv][ctx][d] -> paged [page][Hkv][64][d] through the block table
__global__ void k_to_paged(const bf16* src, bf16* dst, const int* pt, int B, int Hkv, int ctx, int d, int maxp) {
  size_t n = (size_t)B * Hkv * ctx * d;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    int e = i % d;
    size_t r = i / d;
    int t = r % ctx;
    size_t bh = r / ctx;
    int h = bh % Hkv, b = bh / Hkv;
    int page = pt[(size_t)b * maxp + t / 64];
    dst[(((size_t)page * Hkv + h) * 64 + t % 64) * d + e] = src[i];
  }
}

// ---------------------------------------------------------------- decode
struct DecCfg {
  const char* name;
  int Hq, Hkv, dqk, dv;
  bool mla, paged;
};

struct DecPlan {
  AttnArgs a;
  dim3 grid;
  int nsplit;
};

static DecPlan plan_decode(const DecCfg& c, int B, int ctx, int force_split) {
  DecPlan p;
  AttnArgs& a = p.a;
  memset(&a, 0, sizeof a);
  a.mode = 0;
  a.B = B; a.Hq = c.Hq; a.Hkv = c.Hkv; a.G = c.Hq / c.Hkv; a.ctx = ctx;
  a.DVtot = c.dv;
  a.ldk = c.dqk; a.ldv = c.dv;
  if (c.mla) { a.nvh = c.dv / 256; a.hb = a.G / MLA_ROWS; }
  else { a.nvh = 1; a.hb = 1; }
  int per_split_ctas = c.Hkv * a.hb * a.nvh * B;
  int resident = c.mla ? g.prop.multiProcessorCount : 2 * g.prop.multiProcessorCount;
  int want = force_split > 0 ? force_split : std::max(1, (2 * resident + per_split_ctas - 1) / per_split_ctas);
  int max_split = std::max(1, ctx / 256);
  int ns = std::min(want, max_split);
  if (force_split > 0) ns = force_split;
  int sl = (ctx + ns - 1) / ns;
  sl = (sl + 63) / 64 * 64;
  ns = (ctx + sl - 1) / sl;
  a.split_len = sl; a.nsplit = ns;
  a.scale_log2 = (1.0f / sqrtf((float)(c.mla ? 192 : c.dqk))) * 1.4426950408889634f;
  p.grid = dim3(ns, c.Hkv * a.hb * a.nvh, B);
  p.nsplit = ns;
  return p;
}

static void run_decode(const DecPlan& p, const DecCfg& c) {
  if (c.mla) launch_attn<DEC_MLA>(p.a, p.grid);
  else launch_attn<DEC_GQA>(p.a, p.grid);
  CKL();
  if (p.nsplit > 1) {
    k_combine<<<p.a.B * p.a.Hq, 128, p.nsplit * sizeof(float)>>>(p.a.opart, p.a.mlpart, p.a.o, p.nsplit, p.a.DVtot);
  }
}

// buffers for one decode point (set s of nsets)
struct DecBufs {
  bf16 *q, *k, *v, *o;
  float *opart, *ml;
  int* pt;
  size_t qn, kn, vn, on;
};

static std::vector<int> make_page_table(int B, int ctx, int* maxp, uint64_t seed) {
  int mp = (ctx + 63) / 64;
  *maxp = mp;
  std::vector<int> pt((size_t)B * mp);
  for (size_t i = 0; i < pt.size(); i++) pt[i] = (int)i;
  // shuffle pages so that consecutive tokens are not consecutive in memory
  uint64_t x = seed * 6364136223846793005ULL + 1;
  for (size_t i = pt.size(); i > 1; i--) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    size_t j = (x >> 33) % i;
    std::swap(pt[i - 1], pt[j]);
  }
  return pt;
}

static bool check_decode(const DecCfg& c, int B, int ctx, int force_split) {
  DecPlan p = plan_decode(c, B, ctx, force_split);
  size_t qn = (size_t)B * c.Hq * c.dqk, on = (size_t)B * c.Hq * c.dv;
  size_t kn = (size_t)B * c.Hkv * ctx * c.dqk, vn = c.mla ? 0 : (size_t)B * c.Hkv * ctx * c.dv;
  bf16* q = (bf16*)pool_get(20, qn * 2);
  bf16* k = (bf16*)pool_get(21, kn * 2);
  bf16* v = c.mla ? k : (bf16*)pool_get(22, vn * 2);
  bf16* o = (bf16*)pool_get(23, on * 2);
  float* ref = (float*)pool_get(24, on * 4);
  float* opart = (float*)pool_get(25, (size_t)B * c.Hq * p.nsplit * c.dv * 4);
  float* ml = (float*)pool_get(26, (size_t)B * c.Hq * p.nsplit * 8);
  uint64_t seed = 77 + B * 1000 + ctx;
  fill_bf16(q, qn, seed, 1.f);
  fill_bf16(k, kn, seed + 1, 1.f);
  if (!c.mla) fill_bf16(v, vn, seed + 2, 1.f);
  fill_poison_bf16(o, on);
  RefArgs r;
  memset(&r, 0, sizeof r);
  r.q = q; r.k = k; r.v = v; r.o = ref; r.mode = 0; r.B = B; r.Hq = c.Hq; r.Hkv = c.Hkv; r.G = c.Hq / c.Hkv;
  r.dqk = c.dqk; r.dv = c.dv; r.ldk = c.dqk; r.ldv = c.mla ? c.dqk : c.dv; r.ctx = ctx;
  r.scale = 1.0f / sqrtf((float)(c.mla ? 192 : c.dqk));
  ref_attn(r, 1);
  p.a.q = q; p.a.o = o; p.a.opart = opart; p.a.mlpart = ml;
  if (c.paged) {
    int maxp;
    std::vector<int> pt = make_page_table(B, ctx, &maxp, seed);
    int* dpt = (int*)pool_get(27, pt.size() * 4);
    CK(cudaMemcpy(dpt, pt.data(), pt.size() * 4, cudaMemcpyHostToDevice));
    size_t pkn = (size_t)B * maxp * c.Hkv * 64 * c.dqk;
    bf16* pk = (bf16*)pool_get(28, pkn * 2);
    bf16* pv = (bf16*)pool_get(29, pkn * 2);
    fill_bf16(pk, pkn, 1, 1.f);  // the unused tail of each last page holds finite junk
    fill_bf16(pv, pkn, 2, 1.f);
    k_to_paged<<<1024, 256>>>(k, pk, dpt, B, c.Hkv, ctx, c.dqk, maxp);
    k_to_paged<<<1024, 256>>>(v, pv, dpt, B, c.Hkv, ctx, c.dv, maxp);
    CKL();
    p.a.k = pk; p.a.v = pv; p.a.page_table = dpt; p.a.max_pages = maxp;
  } else {
    p.a.k = k; p.a.v = v;
  }
  run_decode(p, c);
  CK(cudaDeviceSynchronize());
  double err = rel_err(d2h_bf16(o, on), d2h_f32(ref, on));
  char name[200];
  snprintf(name, sizeof name, "attention_decode %s B=%d ctx=%d Hq=%d Hkv=%d d=%d/%d splits=%d", c.name, B, ctx, c.Hq,
           c.Hkv, c.dqk, c.dv, p.nsplit);
  return report_check(name, err, 2e-2);
}

void run_decode_attention() {
  std::vector<DecCfg> cfgs = {
      {"mha_32h", 32, 32, 128, 128, false, false},
      {"gqa_32q_8kv", 32, 8, 128, 128, false, false},
      {"gqa_64q_8kv", 64, 8, 128, 128, false, false},
      {"gqa_64q_4kv", 64, 4, 128, 128, false, false},
      {"gqa_32q_8kv_paged64", 32, 8, 128, 128, false, true},
      {"mla_128h_576_512", 128, 1, 576, 512, true, false},
  };
  std::vector<int> ctxs = {1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144};
  std::vector<int> Bs = {1, 4, 16, 64, 256};
  if (g.quick) { ctxs = {4096, 32768}; Bs = {1, 64}; }
  double t0 = now_s();
  for (auto& c : cfgs) {
    // correctness: odd context (partial last tile), several splits, and the single-split path
    bool ok = check_decode(c, 2, 1000 + 37, 3) && check_decode(c, 3, 2 * 1024 + 5, 1) && check_decode(c, 1, 4099, 0);
    if (!ok) { fprintf(stderr, "attention_decode %s: check failed, not timed\n", c.name); continue; }
    for (int B : Bs) {
      for (int ctx : ctxs) {
        if (now_s() - t0 > 1.6 * g.section_budget_s || past_deadline()) { fprintf(stderr, "decode: section budget reached\n"); return; }
        double kvb = (double)B * c.Hkv * ctx * (c.dqk + (c.mla ? 0 : c.dv)) * 2;
        if (!fits(kvb)) continue;
        DecPlan p = plan_decode(c, B, ctx, 0);
        size_t qn = (size_t)B * c.Hq * c.dqk, on = (size_t)B * c.Hq * c.dv;
        size_t kn = (size_t)B * c.Hkv * ctx * c.dqk, vn = c.mla ? 0 : (size_t)B * c.Hkv * ctx * c.dv;
        int maxp = 0;
        std::vector<int> pt;
        if (c.paged) {
          pt = make_page_table(B, ctx, &maxp, 5);
          kn = (size_t)B * maxp * c.Hkv * 64 * c.dqk;
          vn = (size_t)B * maxp * c.Hkv * 64 * c.dv;
        }
        size_t setb = (qn + kn + vn + on) * 2;
        int sets = nsets_for(setb);
        bf16* q = (bf16*)pool_get(0, qn * 2 * sets);
        bf16* k = (bf16*)pool_get(1, kn * 2 * sets);
        bf16* v = c.mla ? k : (bf16*)pool_get(2, std::max<size_t>(vn, 1) * 2 * sets);
        bf16* o = (bf16*)pool_get(3, on * 2 * sets);
        float* opart = (float*)pool_get(4, (size_t)B * c.Hq * p.nsplit * c.dv * 4);
        float* ml = (float*)pool_get(5, (size_t)B * c.Hq * p.nsplit * 8);
        int* dpt = nullptr;
        if (c.paged) {
          dpt = (int*)pool_get(6, pt.size() * 4);
          CK(cudaMemcpy(dpt, pt.data(), pt.size() * 4, cudaMemcpyHostToDevice));
          p.a.page_table = dpt;
          p.a.max_pages = maxp;
        }
        fill_bf16(q, qn * sets, 3, 1.f);
        fill_bf16(k, kn * sets, 4, 1.f);
        if (!c.mla) fill_bf16(v, vn * sets, 5, 1.f);
        // small grids: also try half and twice the split count, keep the fastest (all checked paths)
        std::vector<int> cand = {p.nsplit};
        int grid_ctas = p.grid.y * B;
        if (grid_ctas < 2 * g.prop.multiProcessorCount) {
          if (p.nsplit >= 2) cand.push_back(p.nsplit / 2);
          if (p.nsplit * 2 <= ctx / 128) cand.push_back(p.nsplit * 2);
        }
        Timing t;
        int ncand = 0;
        for (int fs : cand) {
          DecPlan pc = plan_decode(c, B, ctx, fs);
          pc.a.page_table = p.a.page_table; pc.a.max_pages = p.a.max_pages;
          float* opc = (float*)pool_get(4, (size_t)B * c.Hq * pc.nsplit * c.dv * 4);
          float* mlc = (float*)pool_get(5, (size_t)B * c.Hq * pc.nsplit * 8);
          pc.a.opart = opc; pc.a.mlpart = mlc;
          Timing tc = bench([&](int r) {
            int s = r % sets;
            DecPlan pp = pc;
            pp.a.q = q + qn * s; pp.a.k = k + kn * s; pp.a.v = v + (c.mla ? kn : vn) * s; pp.a.o = o + on * s;
            run_decode(pp, c);
          });
          if (ncand++ == 0 || tc.med < t.med) { t = tc; p.nsplit = pc.nsplit; }
        }
        double bytes = (double)(B * (double)c.Hkv * ctx * (c.dqk + (c.mla ? 0 : c.dv)) * 2) + (qn + on) * 2.0;
        double flops = c.mla ? 2.0 * B * c.Hq * (double)ctx * (c.dqk + c.dv) : 4.0 * B * c.Hq * (double)ctx * c.dqk;
        Rec rec("attention_decode");
        rec.i("batch", B).i("context", ctx).i("heads", c.Hq).i("kv_heads", c.Hkv);
        if (c.mla) rec.i("head_dim", c.dqk).i("kv_lora_rank", 512).i("rope_dim", 64).i("v_head_dim", c.dv);
        else rec.i("head_dim", c.dqk);
        rec.str("variant", c.name).b("paged", c.paged).i("splits", p.nsplit).i("split_candidates", ncand);
        if (c.paged) rec.i("page_size", 64);
        emit(rec, "bf16", "microbench", t, flops, bytes);
        fprintf(stderr, "decode %-22s B=%3d ctx=%6d splits=%3d %10.2f us %7.1f GB/s (%.0f%% of copy) %6.1f TF/s\n", c.name,
                B, ctx, p.nsplit, t.med * 1e6, bytes / t.med / 1e9, 100 * bytes / t.med / g.copy_bw,
                flops / t.med / 1e12);
      }
    }
  }
}

// ---------------------------------------------------------------- prefill
struct PreCfg {
  const char* name;
  int causal, window, topk;  // topk > 0: block-sparse, number of 64-key blocks per 64-query block
};

static double prefill_pairs(int S, const PreCfg& c, const std::vector<int>& cnt, const std::vector<int>& idx,
                            int stride, int BH) {
  if (c.topk > 0) {
    double pairs = 0;
    int nqb = S / 64;
    for (int bh = 0; bh < BH; bh++)
      for (int qb = 0; qb < nqb; qb++) {
        size_t id = (size_t)bh * nqb + qb;
        for (int s = 0; s < cnt[id]; s++) pairs += idx[id * stride + s] == qb ? 64.0 * 65 / 2 : 64.0 * 64;
      }
    return pairs / BH;
  }
  if (!c.causal) return (double)S * S;
  if (c.window <= 0) return (double)S * (S + 1) / 2;
  double p = 0;
  for (int q = 0; q < S; q++) p += std::min(q + 1, c.window);
  return p;
}

static void make_blocks(int BH, int S, int topk, std::vector<int>& cnt, std::vector<int>& idx, int* stride,
                        uint64_t seed) {
  int nqb = S / 64;
  *stride = topk;
  cnt.assign((size_t)BH * nqb, 0);
  idx.assign((size_t)BH * nqb * topk, 0);
  uint64_t x = seed;
  std::vector<int> cand;
  for (int bh = 0; bh < BH; bh++)
    for (int qb = 0; qb < nqb; qb++) {
      size_t id = (size_t)bh * nqb + qb;
      int n = std::min(topk, qb + 1);
      cand.clear();
      for (int j = 0; j < qb; j++) cand.push_back(j);
      for (int i = 0; i < n - 1; i++) {  // partial Fisher-Yates: n-1 distinct earlier blocks
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t j = i + (x >> 33) % (cand.size() - i);
        std::swap(cand[i], cand[j]);
      }
      std::vector<int> sel(cand.begin(), cand.begin() + (n - 1));
      sel.push_back(qb);  // the diagonal block is always selected
      std::sort(sel.begin(), sel.end());
      cnt[id] = n;
      for (int i = 0; i < n; i++) idx[id * topk + i] = sel[i];
    }
}

static bool prefill_point(const PreCfg& c, int B, int S, int H, int Hkv, bool check) {
  const int D = 128;
  size_t qn = (size_t)B * H * S * D, kn = (size_t)B * Hkv * S * D;
  std::vector<int> cnt, idx;
  int stride = 0;
  if (c.topk > 0) make_blocks(B * H, S, c.topk, cnt, idx, &stride, 99 + S);
  size_t setb = (2 * qn + 2 * kn) * 2;
  int sets = check ? 1 : nsets_for(setb);
  bf16* q = (bf16*)pool_get(0, qn * 2 * sets);
  bf16* k = (bf16*)pool_get(1, kn * 2 * sets);
  bf16* v = (bf16*)pool_get(2, kn * 2 * sets);
  bf16* o = (bf16*)pool_get(3, qn * 2 * sets);
  int *dcnt = nullptr, *didx = nullptr;
  if (c.topk > 0) {
    dcnt = (int*)pool_get(4, cnt.size() * 4);
    didx = (int*)pool_get(5, idx.size() * 4);
    CK(cudaMemcpy(dcnt, cnt.data(), cnt.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(didx, idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
  }
  uint64_t seed = 500 + S + B;
  fill_bf16(q, qn * sets, seed, 1.f);
  fill_bf16(k, kn * sets, seed + 1, 1.f);
  fill_bf16(v, kn * sets, seed + 2, 1.f);
  AttnArgs a;
  memset(&a, 0, sizeof a);
  a.mode = 1; a.B = B; a.Hq = H; a.Hkv = Hkv; a.G = H / Hkv; a.ctx = S; a.DVtot = D; a.ldk = D; a.ldv = D;
  a.causal = c.causal; a.window = c.window; a.blk_idx = didx; a.blk_cnt = dcnt; a.blk_stride = stride;
  a.scale_log2 = (1.0f / sqrtf((float)D)) * 1.4426950408889634f;
  dim3 grid(S / 64, H, B);
  char name[200];
  snprintf(name, sizeof name, "attention_prefill %s B=%d S=%d H=%d Hkv=%d d=128", c.name, B, S, H, Hkv);
  if (check) {
    fill_poison_bf16(o, qn);
    a.q = q; a.k = k; a.v = v; a.o = o;
    launch_attn<PREFILL>(a, grid);
    CKL();
    float* ref = (float*)pool_get(6, qn * 4);
    RefArgs r;
    memset(&r, 0, sizeof r);
    r.q = q; r.k = k; r.v = v; r.o = ref; r.mode = 1; r.B = B; r.Hq = H; r.Hkv = Hkv; r.G = H / Hkv; r.dqk = D;
    r.dv = D; r.ldk = D; r.ldv = D; r.ctx = S; r.causal = c.causal; r.window = c.window; r.blk_idx = didx;
    r.blk_cnt = dcnt; r.blk_stride = stride; r.qblock = 64; r.scale = 1.0f / sqrtf((float)D);
    ref_attn(r, S);
    CK(cudaDeviceSynchronize());
    return report_check(name, rel_err(d2h_bf16(o, qn), d2h_f32(ref, qn)), 2e-2);
  }
  Timing t = bench([&](int rr) {
    int s = rr % sets;
    AttnArgs aa = a;
    aa.q = q + qn * s; aa.k = k + kn * s; aa.v = v + kn * s; aa.o = o + qn * s;
    launch_attn<PREFILL>(aa, grid);
  });
  double pairs = prefill_pairs(S, c, cnt, idx, stride, B * H);
  double flops = 4.0 * D * pairs * B * H;
  double bytes = (2.0 * qn + 2.0 * kn) * 2;
  Rec rec("attention_prefill");
  rec.i("batch", B).i("seq_len", S).i("heads", H).i("kv_heads", Hkv).i("head_dim", D).b("causal", c.causal != 0)
      .i("window", c.window).str("variant", c.name);
  if (c.topk > 0) rec.i("block_size", 64).i("blocks_selected", c.topk).f("pairs_fraction", pairs / ((double)S * (S + 1) / 2));
  emit(rec, "bf16", "microbench", t, flops, bytes);
  fprintf(stderr, "prefill %-16s B=%d S=%6d H=%d %10.1f us %7.1f TF/s\n", c.name, B, S, H, t.med * 1e6,
          flops / t.med / 1e12);
  return true;
}

void run_prefill_attention() {
  std::vector<PreCfg> cfgs = {{"causal", 1, 0, 0},          {"full", 0, 0, 0},
                              {"causal_window4096", 1, 4096, 0}, {"causal_window1024", 1, 1024, 0},
                              {"block_sparse_top16", 1, 0, 16},  {"block_sparse_top32", 1, 0, 32}};
  std::vector<int> Ss = {1024, 2048, 4096, 8192, 16384, 32768};
  if (g.quick) Ss = {2048, 8192};
  const int H = 32, Hkv = 8;
  double t0 = now_s();
  for (auto& c : cfgs) {
    // checks: a window / sparse pattern that matters at 1024 tokens
    PreCfg cc = c;
    if (cc.window > 0) cc.window = cc.window / 8 + 13;  // odd window, not tile aligned
    if (cc.topk > 0) cc.topk = cc.topk / 4;
    bool ok = prefill_point(cc, 2, 1024, 4, 2, true);
    if (!ok) { fprintf(stderr, "attention_prefill %s: check failed, not timed\n", c.name); continue; }
    for (int S : Ss) {
      if (now_s() - t0 > g.section_budget_s || past_deadline()) { fprintf(stderr, "prefill: section budget reached\n"); return; }
      // keep the token count per point near 32k-64k so the grid fills the chip
      int B = std::max(1, 16384 / S);
      prefill_point(c, B, S, H, Hkv, false);
      if (B > 1 && !g.quick) prefill_point(c, 1, S, H, Hkv, false);
    }
  }
}
