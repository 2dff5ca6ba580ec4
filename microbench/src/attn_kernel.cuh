// One tiled tensor-core (mma.sync m16n8k16, bf16 in, fp32 accumulate) attention kernel, used for
//  * decode (split-K / flash-decoding): query rows = the query heads that share one KV head (GQA/MHA,
//    padded to 16) or a block of 64 heads (MLA absorbed: 576-dim keys, values = first 512 dims of the
//    same latent row); warps split the tokens of each tile; partial results per split are combined by
//    a second small kernel;
//  * prefill: query rows = 64 consecutive positions of one head; causal, sliding window, or a list of
//    selected key blocks (block-sparse, DSA/NSA-style).
// K/V tiles go global -> shared with cp.async (16-byte chunks), STAGES deep; operands come out of shared
// memory with ldmatrix (rows padded by 16 bytes, so the 8 rows of each 8x8 matrix hit distinct banks).
#pragma once
#include "common.cuh"

struct AttnArgs {
  int mode;  // 0 = decode, 1 = prefill
  const bf16* q;
  const bf16* k;
  const bf16* v;  // unused when values come from the key rows (MLA)
  bf16* o;
  float* opart;   // decode, nsplit > 1: [B*Hq][nsplit][DVtot] unnormalised
  float* mlpart;  // [B*Hq][nsplit][2] (m in log2 units, l)
  int B, Hq, Hkv;
  int G;          // query heads per KV head (decode)
  int nvh;        // value column blocks per CTA (decode MLA: DVtot / DV)
  int hb;         // head blocks per KV head (decode)
  int DVtot;      // full value width
  int ldk, ldv;   // row strides (elements) of K and V
  int ctx;        // decode: tokens in cache; prefill: sequence length
  int split_len, nsplit;
  const int* page_table;  // decode paged: [B][max_pages], page = 64 tokens, layout [page][Hkv][64][d]
  int max_pages;
  int causal, window;     // prefill
  const int* blk_idx;     // prefill block-sparse: [B*Hq*nqb][blk_stride]
  const int* blk_cnt;     // [B*Hq*nqb]
  int blk_stride;
  float scale_log2;       // softmax scale * log2(e)
};

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldm_x4(uint32_t* r, const void* p) {
  unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void ldm_x4_t(uint32_t* r, const void* p) {
  unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

template <int DQK, int DV, int RG, int TG, int TN, int STAGES, bool V_FROM_K>
struct AttnCfg {
  static constexpr int NT = 32 * RG * TG;
  static constexpr int WN = TN / TG;  // tokens per warp per tile
  static constexpr int LDQ = DQK + 8, LDKS = DQK + 8, LDVS = DV + 8;
  static constexpr int Q_BYTES = RG * 16 * LDQ * 2;
  static constexpr int K_BYTES = TN * LDKS * 2;
  static constexpr int V_BYTES = V_FROM_K ? 0 : TN * LDVS * 2;
  static constexpr int STAGE_BYTES = STAGES * (K_BYTES + V_BYTES);
  static constexpr int COMB_BYTES = RG * TG * (16 * DV + 32) * 4;
  // after the loop the whole buffer (Q included) is reused to combine the warps' partial results
  static constexpr int SMEM = Q_BYTES + STAGE_BYTES > COMB_BYTES ? Q_BYTES + STAGE_BYTES : COMB_BYTES;
  static_assert(SMEM <= 227 * 1024, "shared memory over the sm_90 per-block limit");
  static_assert(WN % 16 == 0, "tokens per warp must be a multiple of 16");
  static_assert(DQK % 16 == 0 && DV % 16 == 0, "dims must be multiples of 16");
};

template <int DQK, int DV, int RG, int TG, int TN, int STAGES, bool V_FROM_K>
__global__ void __launch_bounds__(32 * RG * TG) attn_kernel(const AttnArgs a) {
  using C = AttnCfg<DQK, DV, RG, TG, TN, STAGES, V_FROM_K>;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* Qs = (bf16*)smem;
  unsigned char* stage_base = smem + C::Q_BYTES;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int rg = warp / TG, tg = warp % TG;
  const int b = blockIdx.z;

  // ---------------- what this CTA does
  int kvh, head0 = 0, rows_valid, vcol = 0, t_begin = 0, t_end = 0, q0 = 0, ntiles, split = 0;
  size_t kv_base_k = 0, kv_base_v = 0;
  const int* blist = nullptr;
  int nqb = 0;
  if (a.mode == 0) {
    split = blockIdx.x;
    int y = blockIdx.y;
    kvh = y / (a.hb * a.nvh);
    int hbi = (y / a.nvh) % a.hb;
    int vh = y % a.nvh;
    head0 = kvh * a.G + hbi * RG * 16;
    rows_valid = min(RG * 16, a.G - hbi * RG * 16);
    vcol = vh * DV;
    t_begin = split * a.split_len;
    t_end = min(a.ctx, t_begin + a.split_len);
    ntiles = (t_end - t_begin + TN - 1) / TN;
    kv_base_k = ((size_t)b * a.Hkv + kvh) * a.ctx;
    kv_base_v = kv_base_k;
  } else {
    int qb = blockIdx.x;
    head0 = blockIdx.y;
    kvh = head0 / (a.Hq / a.Hkv);
    rows_valid = RG * 16;
    q0 = qb * RG * 16;
    nqb = a.ctx / (RG * 16);
    kv_base_k = ((size_t)b * a.Hkv + kvh) * a.ctx;
    kv_base_v = kv_base_k;
    if (a.blk_idx) {
      size_t id = ((size_t)b * a.Hq + head0) * nqb + qb;
      blist = a.blk_idx + id * a.blk_stride;
      ntiles = a.blk_cnt[id];
      t_end = a.ctx;
    } else {
      int last = q0 + RG * 16 - 1;
      int hi = a.causal ? last / TN + 1 : a.ctx / TN;
      int lo = 0;
      if (a.window > 0) lo = max(0, q0 - a.window + 1) / TN;
      t_begin = lo * TN;
      ntiles = hi - lo;
      t_end = a.ctx;
    }
  }

  auto tile_start = [&](int j) -> int { return blist ? blist[j] * TN : t_begin + j * TN; };
  auto krow_ptr = [&](int t, const bf16* base, int ld) -> const bf16* {
    if (a.mode == 0 && a.page_table) {
      int page = a.page_table[(size_t)b * a.max_pages + (t >> 6)];
      return base + (((size_t)page * a.Hkv + kvh) * 64 + (t & 63)) * ld;
    }
    return base + (kv_base_k + t) * ld;
  };
  auto load_tile = [&](int j, int st) {
    int ts = tile_start(j);
    bf16* Ks = (bf16*)(stage_base + st * (C::K_BYTES + C::V_BYTES));
    constexpr int KCH = DQK / 8;
    for (int c = tid; c < TN * KCH; c += C::NT) {
      int r = c / KCH, cc = c % KCH;
      int t = min(ts + r, t_end - 1);
      cp_async16(Ks + r * C::LDKS + cc * 8, krow_ptr(t, a.k, a.ldk) + cc * 8);
    }
    if (!V_FROM_K) {
      bf16* Vs = (bf16*)(stage_base + st * (C::K_BYTES + C::V_BYTES) + C::K_BYTES);
      constexpr int VCH = DV / 8;
      for (int c = tid; c < TN * VCH; c += C::NT) {
        int r = c / VCH, cc = c % VCH;
        int t = min(ts + r, t_end - 1);
        cp_async16(Vs + r * C::LDVS + cc * 8, krow_ptr(t, a.v, a.ldv) + vcol + cc * 8);
      }
    }
  };

  // ---------------- Q -> shared (rows past rows_valid are zero)
  {
    constexpr int QCH = DQK / 8;
    for (int c = tid; c < RG * 16 * QCH; c += C::NT) {
      int r = c / QCH, cc = c % QCH;
      bf16* dst = Qs + r * C::LDQ + cc * 8;
      if (r < rows_valid) {
        const bf16* src = a.mode == 0 ? a.q + ((size_t)b * a.Hq + head0 + r) * DQK
                                      : a.q + (((size_t)b * a.Hq + head0) * a.ctx + q0 + r) * DQK;
        cp_async16(dst, src + cc * 8);
      } else {
        *reinterpret_cast<int4*>(dst) = make_int4(0, 0, 0, 0);
      }
    }
  }
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ntiles) load_tile(s, s);
    cp_async_commit();
  }

  float o[DV / 8][4];
#pragma unroll
  for (int i = 0; i < DV / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.f, 0.f};
  const int gq = lane >> 2, tq = lane & 3;

  for (int j = 0; j < ntiles; j++) {
    {
      int jn = j + STAGES - 1;
      if (jn < ntiles) load_tile(jn, jn % STAGES);
      cp_async_commit();
    }
    cp_async_wait<STAGES - 1>();
    __syncthreads();
    const int st = j % STAGES;
    const bf16* Ks = (const bf16*)(stage_base + st * (C::K_BYTES + C::V_BYTES));
    const bf16* Vs = V_FROM_K ? Ks : (const bf16*)(stage_base + st * (C::K_BYTES + C::V_BYTES) + C::K_BYTES);
    constexpr int LDV_S = V_FROM_K ? C::LDKS : C::LDVS;
    const int vcol_s = V_FROM_K ? vcol : 0;
    const int ts = tile_start(j);

    // S = Q K^T  (16 rows x WN tokens per warp)
    float s[C::WN / 8][4];
#pragma unroll
    for (int i = 0; i < C::WN / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll 4
    for (int kk = 0; kk < DQK; kk += 16) {
      uint32_t af[4];
      ldm_x4(af, Qs + (rg * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * C::LDQ + kk + 8 * (lane >> 4));
#pragma unroll
      for (int nt = 0; nt < C::WN / 8; nt += 2) {
        uint32_t bfr[4];
        ldm_x4(bfr, Ks + (tg * C::WN + nt * 8 + (lane & 7) + 8 * (lane >> 4)) * C::LDKS + kk + 8 * ((lane >> 3) & 1));
        mma16816(s[nt], af, bfr[0], bfr[1]);
        mma16816(s[nt + 1], af, bfr[2], bfr[3]);
      }
    }
    // scale, mask, online softmax
    bool need_mask;
    if (a.mode == 0) need_mask = ts + TN > t_end;
    else need_mask = (a.causal && ts + TN - 1 > q0) || (a.window > 0 && q0 + RG * 16 - 1 - ts >= a.window);
#pragma unroll
    for (int nt = 0; nt < C::WN / 8; nt++) {
#pragma unroll
      for (int i = 0; i < 4; i++) {
        float x = s[nt][i] * a.scale_log2;
        if (need_mask) {
          int kpos = ts + tg * C::WN + nt * 8 + 2 * tq + (i & 1);
          bool ok;
          if (a.mode == 0) ok = kpos < t_end;
          else {
            int qpos = q0 + rg * 16 + gq + 8 * (i >> 1);
            ok = (!a.causal || kpos <= qpos) && (a.window <= 0 || qpos - kpos < a.window);
          }
          if (!ok) x = -INFINITY;
        }
        s[nt][i] = x;
      }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float mx = m_r[h];
#pragma unroll
      for (int nt = 0; nt < C::WN / 8; nt++) mx = fmaxf(mx, fmaxf(s[nt][2 * h], s[nt][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
      float mu = mx == -INFINITY ? 0.f : mx;
      float alpha = exp2f(m_r[h] - mu);  // m_r = -inf -> 0
      m_r[h] = mx;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < C::WN / 8; nt++) {
        float p0 = exp2f(s[nt][2 * h] - mu), p1 = exp2f(s[nt][2 * h + 1] - mu);
        s[nt][2 * h] = p0;
        s[nt][2 * h + 1] = p1;
        sum += p0 + p1;
      }
      l_r[h] = l_r[h] * alpha + sum;
#pragma unroll
      for (int dt = 0; dt < DV / 8; dt++) {
        o[dt][2 * h] *= alpha;
        o[dt][2 * h + 1] *= alpha;
      }
    }
    // O += P V
#pragma unroll
    for (int kt = 0; kt < C::WN / 16; kt++) {
      uint32_t pa[4];
      pa[0] = pack_bf16(s[2 * kt][0], s[2 * kt][1]);
      pa[1] = pack_bf16(s[2 * kt][2], s[2 * kt][3]);
      pa[2] = pack_bf16(s[2 * kt + 1][0], s[2 * kt + 1][1]);
      pa[3] = pack_bf16(s[2 * kt + 1][2], s[2 * kt + 1][3]);
      const bf16* vrow = Vs + (tg * C::WN + kt * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LDV_S + vcol_s + 8 * (lane >> 4);
#pragma unroll
      for (int dt = 0; dt < DV / 8; dt += 2) {
        uint32_t bfr[4];
        ldm_x4_t(bfr, vrow + dt * 8);
        mma16816(o[dt], pa, bfr[0], bfr[1]);
        mma16816(o[dt + 1], pa, bfr[2], bfr[3]);
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  __syncthreads();

  // ---------------- combine the TG warps of each row group through shared memory, write out
  float* comb = (float*)smem;  // [RG*TG][16*DV + 32]
  {
    float* mine = comb + (size_t)warp * (16 * DV + 32);
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float l = l_r[h];
      l += __shfl_xor_sync(0xffffffff, l, 1);
      l += __shfl_xor_sync(0xffffffff, l, 2);
      if (tq == 0) {
        mine[16 * DV + gq + 8 * h] = m_r[h];
        mine[16 * DV + 16 + gq + 8 * h] = l;
      }
#pragma unroll
      for (int dt = 0; dt < DV / 8; dt++) {
        int row = gq + 8 * h, col = dt * 8 + 2 * tq;
        mine[row * DV + col] = o[dt][2 * h];
        mine[row * DV + col + 1] = o[dt][2 * h + 1];
      }
    }
  }
  __syncthreads();
  for (int e = tid; e < RG * 16 * DV; e += C::NT) {
    int rgi = e / (16 * DV), rem = e % (16 * DV), row = rem / DV, col = rem % DV;
    int r = rgi * 16 + row;
    if (r >= rows_valid) continue;
    float M = -INFINITY;
#pragma unroll
    for (int t = 0; t < TG; t++) M = fmaxf(M, comb[(size_t)(rgi * TG + t) * (16 * DV + 32) + 16 * DV + row]);
    float Mu = M == -INFINITY ? 0.f : M;
    float L = 0.f, acc = 0.f;
#pragma unroll
    for (int t = 0; t < TG; t++) {
      const float* w = comb + (size_t)(rgi * TG + t) * (16 * DV + 32);
      float f = exp2f(w[16 * DV + row] - Mu);
      L += w[16 * DV + 16 + row] * f;
      acc += w[row * DV + col] * f;
    }
    if (a.mode == 0) {
      size_t hrow = (size_t)b * a.Hq + head0 + r;
      if (a.nsplit == 1) {
        a.o[hrow * a.DVtot + vcol + col] = __float2bfloat16(acc / L);
      } else {
        a.opart[(hrow * a.nsplit + split) * a.DVtot + vcol + col] = acc;
        if (col == 0 && vcol == 0) {
          a.mlpart[(hrow * a.nsplit + split) * 2] = M;
          a.mlpart[(hrow * a.nsplit + split) * 2 + 1] = L;
        }
      }
    } else {
      a.o[(((size_t)b * a.Hq + head0) * a.ctx + q0 + r) * DV + col] = __float2bfloat16(acc / L);
    }
  }
}
