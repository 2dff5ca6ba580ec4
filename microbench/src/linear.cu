// Recurrent family: one decode step of the state update (lightning / GLA / GDN / KDA / Mamba2), and a
// chunked prefill scan for linear attention with scalar decay (chunk 64).
//
// State S per (batch, value head): DK rows x DV columns, fp32, row-major. Inputs bf16.
//   lightning: S = a_h S + k v^T                     o = S^T q        (a_h fixed per head)
//   gla:       S = diag(a) S + k v^T                 o = S^T q        (a per key channel, data dependent)
//   gdn:       S' = a S;  S = S' + b k (v - S'^T k)^T   o = S^T q     (scalar gate a, write strength b)
//   kda:       as gdn with a per key channel
//   mamba2:    h = exp(dt A) h + dt B x^T;  y = h^T C + D x   (rows = d_state N, cols = head_dim P;
//              B, C shared by the heads of a group: k = B, q = C, v = x)
// q and k have `heads` heads, v/o/state have `value_heads`; value head h uses key head h / (Hv/Hk).
#include "common.cuh"

enum Var { LIGHTNING = 0, GLA = 1, GDN = 2, KDA = 3, MAMBA2 = 4 };
static const char* var_name[] = {"lightning", "gla", "gdn", "kda", "mamba2"};

struct LinArgs {
  float* S;
  const bf16 *q, *k, *v;
  bf16* o;
  const float* gate;  // log decay: [Hv] (lightning), [B][Hv] (gdn; mamba2: dt), [B][Hv][DK] (gla, kda)
  const float* beta;  // [B][Hv] (gdn, kda)
  const float* A;     // mamba2 [Hv] (negative), D skip [Hv] in A + Hv
  int B, Hk, Hv;
};

template <int VAR, int DK, int DV>
__global__ void __launch_bounds__(256) k_state_step(LinArgs a) {
  constexpr int TPR = DV / 4, RPP = 256 / TPR, ROWS = DK / RPP;
  const int bh = blockIdx.x, b = bh / a.Hv, h = bh % a.Hv, kh = h / (a.Hv / a.Hk);
  const int tid = threadIdx.x, c0 = (tid % TPR) * 4, r0 = tid / TPR;
  float* S = a.S + (size_t)bh * DK * DV;
  const bf16* q = a.q + ((size_t)b * a.Hk + kh) * DK;
  const bf16* k = a.k + ((size_t)b * a.Hk + kh) * DK;
  __shared__ float red[2][RPP][DV];
  __shared__ float s_kq;
  __shared__ float sk[DK], sq[DK], sdec[DK];  // per-row scalars, loaded once per CTA
  float4 s[ROWS];
#pragma unroll
  for (int i = 0; i < ROWS; i++) s[i] = __ldcs(reinterpret_cast<const float4*>(S + (size_t)(r0 + i * RPP) * DV + c0));
  for (int r = tid; r < DK; r += 256) {
    sk[r] = __bfloat162float(k[r]);
    sq[r] = __bfloat162float(q[r]);
    if (VAR == GLA || VAR == KDA) sdec[r] = __expf(a.gate[(size_t)bh * DK + r]);
  }
  __syncthreads();
  float vv[4];
  {
    const bf16* v = a.v + (size_t)bh * DV + c0;
#pragma unroll
    for (int j = 0; j < 4; j++) vv[j] = __bfloat162float(v[j]);
  }
  float sdecay = 1.f, dt = 1.f;
  if (VAR == LIGHTNING) sdecay = __expf(a.gate[h]);
  if (VAR == GDN) sdecay = __expf(a.gate[bh]);
  if (VAR == MAMBA2) { dt = a.gate[bh]; sdecay = __expf(dt * a.A[h]); }
  float p0[4] = {0, 0, 0, 0}, p1[4] = {0, 0, 0, 0};
#pragma unroll
  for (int i = 0; i < ROWS; i++) {
    int r = r0 + i * RPP;
    float kr = sk[r], qr = sq[r];
    float dec = (VAR == GLA || VAR == KDA) ? sdec[r] : sdecay;
    float* e = reinterpret_cast<float*>(&s[i]);
    if (VAR == GDN || VAR == KDA) {
#pragma unroll
      for (int j = 0; j < 4; j++) {
        e[j] *= dec;
        p0[j] += e[j] * kr;
        p1[j] += e[j] * qr;
      }
    } else {
      float kk = VAR == MAMBA2 ? kr * dt : kr;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        e[j] = e[j] * dec + kk * vv[j];
        p1[j] += e[j] * qr;
      }
    }
  }
  if (VAR == GDN || VAR == KDA) {
    if (tid < 32) {  // k . q
      float x = 0;
      for (int r = tid; r < DK; r += 32) x += sk[r] * sq[r];
      for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffff, x, o);
      if (tid == 0) s_kq = x;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) red[0][r0][c0 + j] = p0[j];
  }
#pragma unroll
  for (int j = 0; j < 4; j++) red[1][r0][c0 + j] = p1[j];
  __syncthreads();
  float u[4] = {0, 0, 0, 0}, w[4] = {0, 0, 0, 0};
#pragma unroll
  for (int rr = 0; rr < RPP; rr++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      if (VAR == GDN || VAR == KDA) u[j] += red[0][rr][c0 + j];
      w[j] += red[1][rr][c0 + j];
    }
  float ov[4];
  if (VAR == GDN || VAR == KDA) {
    float beta = a.beta[bh];
    float vn[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
      vn[j] = beta * (vv[j] - u[j]);
      ov[j] = w[j] + s_kq * vn[j];
    }
#pragma unroll
    for (int i = 0; i < ROWS; i++) {
      int r = r0 + i * RPP;
      float kr = sk[r];
      float* e = reinterpret_cast<float*>(&s[i]);
#pragma unroll
      for (int j = 0; j < 4; j++) e[j] += kr * vn[j];
    }
  } else {
#pragma unroll
    for (int j = 0; j < 4; j++) ov[j] = w[j] + (VAR == MAMBA2 ? a.A[a.Hv + h] * vv[j] : 0.f);
  }
#pragma unroll
  for (int i = 0; i < ROWS; i++) __stcs(reinterpret_cast<float4*>(S + (size_t)(r0 + i * RPP) * DV + c0), s[i]);
  if (r0 == 0) {
    bf16* o = a.o + (size_t)bh * DV + c0;
#pragma unroll
    for (int j = 0; j < 4; j++) o[j] = __float2bfloat16(ov[j]);
  }
}

// naive reference: one thread per (b, h, column), double accumulation, two passes for the delta rule
__global__ void k_state_ref(int var, LinArgs a, int DK, int DV, float* o_ref) {
  size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (idx >= (size_t)a.B * a.Hv * DV) return;
  int c = idx % DV;
  int bh = idx / DV, b = bh / a.Hv, h = bh % a.Hv, kh = h / (a.Hv / a.Hk);
  float* S = a.S + (size_t)bh * DK * DV;
  const bf16* q = a.q + ((size_t)b * a.Hk + kh) * DK;
  const bf16* k = a.k + ((size_t)b * a.Hk + kh) * DK;
  double v = __bfloat162float(a.v[(size_t)bh * DV + c]);
  double dt = 1;
  auto decay = [&](int r) -> double {
    if (var == LIGHTNING) return exp((double)a.gate[h]);
    if (var == GDN) return exp((double)a.gate[bh]);
    if (var == MAMBA2) return exp((double)a.gate[bh] * a.A[h]);
    return exp((double)a.gate[(size_t)bh * DK + r]);
  };
  if (var == MAMBA2) dt = a.gate[bh];
  if (var == GDN || var == KDA) {
    double u = 0;
    for (int r = 0; r < DK; r++) u += decay(r) * S[(size_t)r * DV + c] * (double)__bfloat162float(k[r]);
    double vn = a.beta[bh] * (v - u);
    for (int r = 0; r < DK; r++)
      S[(size_t)r * DV + c] = (float)(decay(r) * S[(size_t)r * DV + c] + (double)__bfloat162float(k[r]) * vn);
  } else {
    for (int r = 0; r < DK; r++)
      S[(size_t)r * DV + c] = (float)(decay(r) * S[(size_t)r * DV + c] + dt * (double)__bfloat162float(k[r]) * v);
  }
  double o = 0;
  for (int r = 0; r < DK; r++) o += (double)S[(size_t)r * DV + c] * (double)__bfloat162float(q[r]);
  if (var == MAMBA2) o += a.A[a.Hv + h] * v;
  o_ref[idx] = (float)o;
}

struct LinCfg {
  const char* model;
  int var, Hk, Hv, DK, DV;
};

static void launch_step(const LinCfg& c, const LinArgs& a) {
  dim3 grid(a.B * a.Hv);
#define L(V, DK, DV) k_state_step<V, DK, DV><<<grid, 256>>>(a)
  if (c.DK == 128 && c.DV == 128) {
    switch (c.var) {
      case LIGHTNING: L(LIGHTNING, 128, 128); break;
      case GLA: L(GLA, 128, 128); break;
      case GDN: L(GDN, 128, 128); break;
      case KDA: L(KDA, 128, 128); break;
      default: fprintf(stderr, "unsupported\n"); exit(2);
    }
  } else if (c.var == MAMBA2 && c.DK == 128 && c.DV == 64) {
    L(MAMBA2, 128, 64);
  } else {
    fprintf(stderr, "unsupported state shape\n");
    exit(2);
  }
#undef L
}

struct LinBufs {
  float *S, *gate, *beta, *A;
  bf16 *q, *k, *v, *o;
  size_t sn, qn, vn, gn;
};

static void lin_alloc(const LinCfg& c, int B, int sets, LinBufs& L, int slot0) {
  L.sn = (size_t)B * c.Hv * c.DK * c.DV;
  L.qn = (size_t)B * c.Hk * c.DK;
  L.vn = (size_t)B * c.Hv * c.DV;
  L.gn = (c.var == GLA || c.var == KDA) ? (size_t)B * c.Hv * c.DK : (size_t)B * c.Hv;
  L.S = (float*)pool_get(slot0 + 0, L.sn * 4 * sets);
  L.q = (bf16*)pool_get(slot0 + 1, L.qn * 2 * sets);
  L.k = (bf16*)pool_get(slot0 + 2, L.qn * 2 * sets);
  L.v = (bf16*)pool_get(slot0 + 3, L.vn * 2 * sets);
  L.o = (bf16*)pool_get(slot0 + 4, L.vn * 2 * sets);
  L.gate = (float*)pool_get(slot0 + 5, L.gn * 4 * sets);
  L.beta = (float*)pool_get(slot0 + 6, (size_t)B * c.Hv * 4 * sets);
  L.A = (float*)pool_get(slot0 + 7, 2 * c.Hv * 4);
  uint64_t sd = 31 + B;
  fill_f32(L.S, L.sn * sets, sd, 1.f);
  fill_bf16(L.q, L.qn * sets, sd + 1, 1.f / sqrtf((float)c.DK) * 1.7f);
  fill_bf16(L.k, L.qn * sets, sd + 2, 1.f / sqrtf((float)c.DK) * 1.7f);
  fill_bf16(L.v, L.vn * sets, sd + 3, 1.f);
  if (c.var == MAMBA2) fill_f32(L.gate, L.gn * sets, sd + 4, 0.05f, 0.06f);  // dt in (0.01, 0.11)
  else fill_f32(L.gate, L.gn * sets, sd + 4, 0.05f, -0.06f);                 // log decay in (-0.11, -0.01)
  fill_f32(L.beta, (size_t)B * c.Hv * sets, sd + 5, 0.4f, 0.5f);
  fill_f32(L.A, c.Hv, sd + 6, 0.5f, -1.f);  // A in (-1.5, -0.5)
  fill_f32(L.A + c.Hv, c.Hv, sd + 7, 1.f);  // D
}

static LinArgs lin_args(const LinCfg& c, int B, LinBufs& L, int s) {
  LinArgs a;
  a.S = L.S + L.sn * s; a.q = L.q + L.qn * s; a.k = L.k + L.qn * s; a.v = L.v + L.vn * s; a.o = L.o + L.vn * s;
  a.gate = L.gate + L.gn * s; a.beta = L.beta + (size_t)B * c.Hv * s; a.A = L.A;
  a.B = B; a.Hk = c.Hk; a.Hv = c.Hv;
  return a;
}

static bool check_step(const LinCfg& c, int B) {
  LinBufs L;
  lin_alloc(c, B, 1, L, 40);
  float* S0 = (float*)pool_get(50, L.sn * 4);
  float* oref = (float*)pool_get(51, L.vn * 4);
  CK(cudaMemcpy(S0, L.S, L.sn * 4, cudaMemcpyDeviceToDevice));
  fill_poison_bf16(L.o, L.vn);
  LinArgs a = lin_args(c, B, L, 0);
  launch_step(c, a);
  CKL();
  LinArgs r = a;
  r.S = S0;
  k_state_ref<<<ceil_div(L.vn, 128), 128>>>(c.var, r, c.DK, c.DV, oref);
  CKL();
  CK(cudaDeviceSynchronize());
  char name[200];
  snprintf(name, sizeof name, "linear_decode %s (%s) B=%d Hk=%d Hv=%d %dx%d: output", var_name[c.var], c.model, B, c.Hk,
           c.Hv, c.DK, c.DV);
  bool ok = report_check(name, rel_err(d2h_bf16(L.o, L.vn), d2h_f32(oref, L.vn)), 1e-2);
  snprintf(name, sizeof name, "linear_decode %s (%s) B=%d: new state", var_name[c.var], c.model, B);
  ok = report_check(name, rel_err(d2h_f32(L.S, L.sn), d2h_f32(S0, L.sn)), 1e-5) && ok;
  return ok;
}

void run_linear_decode() {
  std::vector<LinCfg> cfgs = {
      {"minimax-m1 lightning", LIGHTNING, 64, 64, 128, 128},
      {"gla 32h", GLA, 32, 32, 128, 128},
      {"qwen3-next gdn", GDN, 16, 32, 128, 128},
      {"kimi-linear kda", KDA, 32, 32, 128, 128},
      {"nemotron-h mamba2", MAMBA2, 8, 128, 128, 64},
  };
  std::vector<int> Bs = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  if (g.quick) Bs = {1, 64, 256};
  double t0 = now_s();
  for (auto& c : cfgs) {
    if (!(check_step(c, 3) && check_step(c, 1))) {
      fprintf(stderr, "linear_decode %s: check failed, not timed\n", var_name[c.var]);
      continue;
    }
    for (int B : Bs) {
      if (now_s() - t0 > g.section_budget_s || past_deadline()) { fprintf(stderr, "linear_decode: section budget reached\n"); return; }
      size_t sn = (size_t)B * c.Hv * c.DK * c.DV;
      size_t setb = sn * 4 + (size_t)B * (2 * c.Hk * c.DK + 2 * c.Hv * c.DV) * 2;
      int sets = nsets_for(setb);
      LinBufs L;
      lin_alloc(c, B, sets, L, 0);
      Timing t = bench([&](int r) { launch_step(c, lin_args(c, B, L, r % sets)); });
      size_t gbytes = ((c.var == GLA || c.var == KDA) ? (size_t)B * c.Hv * c.DK : (size_t)B * c.Hv) * 4;
      double bytes = 2.0 * sn * 4 + (double)B * (2 * c.Hk * c.DK + 2 * c.Hv * c.DV) * 2 + gbytes;
      double flops = (double)B * c.Hv * c.DK * c.DV * ((c.var == GDN || c.var == KDA) ? 7 : 5);
      Rec rec("linear_decode");
      rec.str("variant", var_name[c.var]).i("batch", B).i("heads", c.Hk).i("value_heads", c.Hv).i("head_dim_k", c.DK)
          .i("head_dim_v", c.DV).str("state_dtype", "fp32").str("model", c.model);
      emit(rec, "bf16", "microbench", t, flops, bytes);
      fprintf(stderr, "linear_decode %-9s B=%4d %9.2f us %7.1f GB/s (%.0f%% of copy)\n", var_name[c.var], B,
              t.med * 1e6, bytes / t.med / 1e9, 100 * bytes / t.med / g.copy_bw);
    }
  }
}

// ================================================================ chunked prefill scan (lightning / scalar decay)
// q, k: [B][H][T][128], v, o: [B][H][T][128]; per-head decay g = exp(gate_h); chunk C = 64.
// K1: dS_c = sum_j g^(63-j) k_j v_j^T                         (per chunk, parallel)
// K2: H_c = state entering chunk c; S <- g^64 S + dS_c         (sequential over chunks, in place over dS)
// K3: o_i = g^(i+1) q_i^T H_c + sum_{j<=i} g^(i-j) (q_i.k_j) v_j  (per chunk, parallel)
constexpr int CH = 64, HD = 128;

__global__ void __launch_bounds__(256) k_chunk_state(const bf16* k, const bf16* v, const float* gate, float* dS,
                                                     int H, int T) {
  int c = blockIdx.x, bh = blockIdx.y, h = bh % H;
  int nc = T / CH;
  __shared__ float ks[CH][HD];
  __shared__ bf16 vs[CH][HD];
  float lg = gate[h];
  const bf16* kp = k + ((size_t)bh * T + (size_t)c * CH) * HD;
  const bf16* vp = v + ((size_t)bh * T + (size_t)c * CH) * HD;
  for (int e = threadIdx.x; e < CH * HD; e += 256) {
    int j = e / HD, d = e % HD;
    ks[j][d] = __bfloat162float(kp[e]) * __expf(lg * (CH - 1 - j));
    vs[j][d] = vp[e];
  }
  __syncthreads();
  int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  float acc[8][8] = {};
  for (int j = 0; j < CH; j++) {
    float a[8], b[8];
#pragma unroll
    for (int i = 0; i < 8; i++) a[i] = ks[j][ty * 8 + i];
#pragma unroll
    for (int i = 0; i < 8; i++) b[i] = __bfloat162float(vs[j][tx * 8 + i]);
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
      for (int jj = 0; jj < 8; jj++) acc[i][jj] += a[i] * b[jj];
  }
  float* out = dS + ((size_t)bh * nc + c) * HD * HD;
#pragma unroll
  for (int i = 0; i < 8; i++) {
    float4* p = reinterpret_cast<float4*>(out + (size_t)(ty * 8 + i) * HD + tx * 8);
    p[0] = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
    p[1] = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
  }
}

__global__ void k_chunk_pass(float* dS, const float* gate, int H, int nc) {
  int bh = blockIdx.y, h = bh % H;
  int e = blockIdx.x * blockDim.x + threadIdx.x;  // element of the 128x128 state
  float g64 = __expf(gate[h] * CH);
  float s = 0;
  float* p = dS + (size_t)bh * nc * HD * HD + e;
  float next = p[0];
  for (int c = 0; c < nc; c++) {
    float d = next;
    if (c + 1 < nc) next = p[(size_t)(c + 1) * HD * HD];
    p[(size_t)c * HD * HD] = s;  // state entering chunk c
    s = g64 * s + d;
  }
}

__global__ void __launch_bounds__(256) k_chunk_out(const bf16* q, const bf16* k, const bf16* v, const float* gate,
                                                   const float* Hs, bf16* o, int H, int T) {
  int c = blockIdx.x, bh = blockIdx.y, h = bh % H;
  int nc = T / CH;
  extern __shared__ float sm[];
  float* qs = sm;                    // [CH][HD+4]
  float* ks = qs + CH * (HD + 4);    // [CH][HD+4]
  float* A = ks + CH * (HD + 4);     // [CH][CH+1]
  float* hs = A + CH * (CH + 1);     // [32][HD]
  float lg = gate[h];
  size_t base = ((size_t)bh * T + (size_t)c * CH) * HD;
  for (int e = threadIdx.x; e < CH * HD; e += 256) {
    int j = e / HD, d = e % HD;
    qs[j * (HD + 4) + d] = __bfloat162float(q[base + e]);
    ks[j * (HD + 4) + d] = __bfloat162float(k[base + e]);
  }
  __syncthreads();
  // A[i][j] = g^(i-j) q_i.k_j for j <= i
  {
    int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    float acc[4][4] = {};
    for (int d = 0; d < HD; d++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = qs[(ty * 4 + i) * (HD + 4) + d];
#pragma unroll
      for (int i = 0; i < 4; i++) b[i] = ks[(tx * 4 + i) * (HD + 4) + d];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) {
        int ii = ty * 4 + i, jj = tx * 4 + j;
        A[ii * (CH + 1) + jj] = jj <= ii ? acc[i][j] * __expf(lg * (ii - jj)) : 0.f;
      }
  }
  __syncthreads();
  // O = diag(g^(i+1)) Q H + A V: thread -> rows ty*4..+4, cols tx*8..+8
  int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  float acc[4][8] = {};
  const float* Hc = Hs + ((size_t)bh * nc + c) * HD * HD;
  for (int d0 = 0; d0 < HD; d0 += 32) {
    for (int e = threadIdx.x; e < 32 * HD / 4; e += 256)
      reinterpret_cast<float4*>(hs)[e] = reinterpret_cast<const float4*>(Hc + (size_t)d0 * HD)[e];
    __syncthreads();
    for (int d = 0; d < 32; d++) {
      float a[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = qs[(ty * 4 + i) * (HD + 4) + d0 + d];
      float4 b0 = reinterpret_cast<const float4*>(hs + d * HD + tx * 8)[0];
      float4 b1 = reinterpret_cast<const float4*>(hs + d * HD + tx * 8)[1];
      float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    float f = __expf(lg * (ty * 4 + i + 1));
#pragma unroll
    for (int j = 0; j < 8; j++) acc[i][j] *= f;
  }
  // reuse ks as V (float)
  for (int e = threadIdx.x; e < CH * HD; e += 256) {
    int j = e / HD, d = e % HD;
    ks[j * (HD + 4) + d] = __bfloat162float(v[base + e]);
  }
  __syncthreads();
  for (int j = 0; j < CH; j++) {
    float a[4];
#pragma unroll
    for (int i = 0; i < 4; i++) a[i] = A[(ty * 4 + i) * (CH + 1) + j];
    float b[8];
#pragma unroll
    for (int jj = 0; jj < 8; jj++) b[jj] = ks[j * (HD + 4) + tx * 8 + jj];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int jj = 0; jj < 8; jj++) acc[i][jj] += a[i] * b[jj];
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int jj = 0; jj < 8; jj++) o[base + (size_t)(ty * 4 + i) * HD + tx * 8 + jj] = __float2bfloat16(acc[i][jj]);
}

static const int OUT_SMEM = (2 * CH * (HD + 4) + CH * (CH + 1) + 32 * HD) * 4;

static void chunk_scan(const bf16* q, const bf16* k, const bf16* v, const float* gate, float* dS, bf16* o, int B,
                       int H, int T) {
  int nc = T / CH;
  k_chunk_state<<<dim3(nc, B * H), 256>>>(k, v, gate, dS, H, T);
  k_chunk_pass<<<dim3(HD * HD / 256, B * H), 256>>>(dS, gate, H, nc);
  k_chunk_out<<<dim3(nc, B * H), 256, OUT_SMEM>>>(q, k, v, gate, dS, o, H, T);
}

// sequential reference: one thread per (b, h, column), double state column kept in global scratch
__global__ void k_scan_ref(const bf16* q, const bf16* k, const bf16* v, const float* gate, double* Scol, float* o,
                           int B, int H, int T) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= B * H * HD) return;
  int c = idx % HD, bh = idx / HD, h = bh % H;
  double g = exp((double)gate[h]);
  double* S = Scol + (size_t)idx * HD;
  for (int r = 0; r < HD; r++) S[r] = 0;
  for (int t = 0; t < T; t++) {
    size_t base = ((size_t)bh * T + t) * HD;
    double vv = __bfloat162float(v[base + c]), acc = 0;
    for (int r = 0; r < HD; r++) {
      S[r] = g * S[r] + (double)__bfloat162float(k[base + r]) * vv;
      acc += S[r] * (double)__bfloat162float(q[base + r]);
    }
    o[base + c] = (float)acc;
  }
}

// ================================================================ chunked gated delta rule (GDN), chunk 64
// Per value head, state S (d_k x d_v), S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T, o_t = S_t^T q_t.
// Within a chunk with cumulative decay g_t = prod_{j<=t} a_j and d_t = b_t (v_t - a_t S_{t-1}^T k_t):
//   (I + A) D = diag(b) V - diag(b g) K S0,  A_tj = b_t (g_t/g_j) k_t.k_j  (j < t)
//   => D = U - W S0 with [W | U] = (I + A)^-1 [diag(b g) K | diag(b) V]          (K1, parallel per chunk)
//   O = diag(g) Q S0 + M D,  M_tj = (g_t/g_j) q_t.k_j (j <= t);  S_C = g_C S0 + sum_t (g_C/g_t) k_t d_t^T
//                                                                                  (K2, sequential per chunk)
// K2 runs one CTA per (batch, value head, 32 value columns): the columns of S are independent.
constexpr int GK1_SMEM = (CH * HD + 2 * CH * (CH + 1) + CH * 2 * HD + 2 * CH) * 4;
__global__ void __launch_bounds__(256) k_gdn_prep(const bf16* q, const bf16* k, const bf16* v, const float* lga,
                                                  const float* beta, float* W, float* U, float* M, float* gcum,
                                                  int Hk, int Hv, int T) {
  extern __shared__ float sm[];
  float* Ks = sm;                    // [CH][HD]
  float* A = Ks + CH * HD;           // [CH][CH+1]
  float* Ms = A + CH * (CH + 1);     // [CH][CH+1]
  float* X = Ms + CH * (CH + 1);     // [CH][2*HD]  (Q staged here first)
  float* gc = X + CH * 2 * HD;       // [CH]
  float* bt = gc + CH;               // [CH]
  int c = blockIdx.x, bh = blockIdx.y, b = bh / Hv, h = bh % Hv, kh = h / (Hv / Hk);
  int nc = T / CH, tid = threadIdx.x;
  size_t kbase = (((size_t)b * Hk + kh) * T + (size_t)c * CH) * HD;
  size_t vbase = ((size_t)bh * T + (size_t)c * CH) * HD;
  size_t gbase = (size_t)bh * T + (size_t)c * CH;
  for (int e = tid; e < CH * HD; e += 256) {
    Ks[e] = __bfloat162float(k[kbase + e]);
    X[e] = __bfloat162float(q[kbase + e]);  // Q, [CH][HD] packed
  }
  if (tid == 0) {
    float s = 0;
    for (int t = 0; t < CH; t++) { s += lga[gbase + t]; gc[t] = s; }
  }
  if (tid < CH) bt[tid] = beta[gbase + tid];
  __syncthreads();
  {  // A and M, 4x4 tile per thread
    int ty = tid / 16, tx = tid % 16;
    float kk[4][4] = {}, qk[4][4] = {};
    for (int d = 0; d < HD; d++) {
      float kt[4], qt[4], kj[4];
#pragma unroll
      for (int i = 0; i < 4; i++) { kt[i] = Ks[(ty * 4 + i) * HD + d]; qt[i] = X[(ty * 4 + i) * HD + d]; kj[i] = Ks[(tx * 4 + i) * HD + d]; }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) { kk[i][j] += kt[i] * kj[j]; qk[i][j] += qt[i] * kj[j]; }
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) {
        int t = ty * 4 + i, jj = tx * 4 + j;
        float r = __expf(gc[t] - gc[jj]);
        A[t * (CH + 1) + jj] = jj < t ? bt[t] * r * kk[i][j] : 0.f;
        Ms[t * (CH + 1) + jj] = jj <= t ? r * qk[i][j] : 0.f;
      }
  }
  __syncthreads();
  // right-hand side [diag(b g) K | diag(b) V], then forward substitution, one column per thread
  for (int e = tid; e < CH * 2 * HD; e += 256) {
    int t = e / (2 * HD), col = e % (2 * HD);
    X[e] = col < HD ? bt[t] * __expf(gc[t]) * Ks[t * HD + col] : bt[t] * __bfloat162float(v[vbase + (size_t)t * HD + col - HD]);
  }
  __syncthreads();
  {
    int col = tid;  // 256 columns
    for (int t = 1; t < CH; t++) {
      float x = X[t * 2 * HD + col];
      for (int j = 0; j < t; j++) x -= A[t * (CH + 1) + j] * X[j * 2 * HD + col];
      X[t * 2 * HD + col] = x;
    }
  }
  __syncthreads();
  size_t cb = (size_t)bh * nc + c;
  for (int e = tid; e < CH * HD; e += 256) {
    int t = e / HD, d = e % HD;
    W[cb * CH * HD + e] = X[t * 2 * HD + d];
    U[cb * CH * HD + e] = X[t * 2 * HD + HD + d];
  }
  for (int e = tid; e < CH * CH; e += 256) M[cb * CH * CH + e] = Ms[(e / CH) * (CH + 1) + e % CH];
  if (tid < CH) gcum[gbase + tid] = gc[tid];
}

constexpr int VB = 32;  // value columns per CTA in the sequential pass
constexpr int GK2_SMEM = (3 * CH * HD + CH * VB + CH * CH + CH * VB + HD * VB + CH) * 4;
__global__ void __launch_bounds__(256) k_gdn_scan(const bf16* q, const bf16* k, const float* W, const float* U,
                                                  const float* M, const float* gcum, bf16* o, int Hk, int Hv, int T) {
  extern __shared__ float sm[];
  float* Ws = sm;               // [CH][HD]
  float* Qs = Ws + CH * HD;     // [CH][HD]
  float* Ks = Qs + CH * HD;     // [CH][HD]
  float* Us = Ks + CH * HD;     // [CH][VB]
  float* Mc = Us + CH * VB;     // [CH][CH]
  float* Dl = Mc + CH * CH;     // [CH][VB]
  float* S = Dl + CH * VB;      // [HD][VB]
  float* gc = S + HD * VB;      // [CH]
  int cb0 = blockIdx.x * VB, bh = blockIdx.y, b = bh / Hv, h = bh % Hv, kh = h / (Hv / Hk);
  int nc = T / CH, tid = threadIdx.x;
  for (int e = tid; e < HD * VB; e += 256) S[e] = 0.f;
  for (int c = 0; c < nc; c++) {
    size_t cb = (size_t)bh * nc + c;
    size_t kbase = (((size_t)b * Hk + kh) * T + (size_t)c * CH) * HD;
    for (int e = tid; e < CH * HD; e += 256) {
      Ws[e] = W[cb * CH * HD + e];
      Qs[e] = __bfloat162float(q[kbase + e]);
      Ks[e] = __bfloat162float(k[kbase + e]);
    }
    for (int e = tid; e < CH * VB; e += 256) Us[e] = U[cb * CH * HD + (e / VB) * HD + cb0 + e % VB];
    for (int e = tid; e < CH * CH; e += 256) Mc[e] = M[cb * CH * CH + e];
    if (tid < CH) gc[tid] = gcum[(size_t)bh * T + (size_t)c * CH + tid];
    __syncthreads();
    int t = tid / 4, c8 = (tid % 4) * 8;
    {  // D = U - W S
      float acc[8];
#pragma unroll
      for (int j = 0; j < 8; j++) acc[j] = Us[t * VB + c8 + j];
      for (int d = 0; d < HD; d++) {
        float w = Ws[t * HD + d];
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] -= w * S[d * VB + c8 + j];
      }
#pragma unroll
      for (int j = 0; j < 8; j++) Dl[t * VB + c8 + j] = acc[j];
    }
    __syncthreads();
    {  // O = diag(g) Q S + M D
      float acc[8] = {}, acc2[8] = {};
      for (int d = 0; d < HD; d++) {
        float x = Qs[t * HD + d];
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] += x * S[d * VB + c8 + j];
      }
      for (int jj = 0; jj <= t; jj++) {
        float m = Mc[t * CH + jj];
#pragma unroll
        for (int j = 0; j < 8; j++) acc2[j] += m * Dl[jj * VB + c8 + j];
      }
      float gt = __expf(gc[t]);
      bf16* op = o + ((size_t)bh * T + (size_t)c * CH + t) * HD + cb0 + c8;
#pragma unroll
      for (int j = 0; j < 8; j++) op[j] = __float2bfloat16(gt * acc[j] + acc2[j]);
    }
    __syncthreads();
    {  // S = g_C S + sum_t (g_C/g_t) k_t d_t^T
      int d = tid / 2, c16 = (tid % 2) * 16;
      float gC = gc[CH - 1];
      float acc[16];
      float eg = __expf(gC);
#pragma unroll
      for (int j = 0; j < 16; j++) acc[j] = eg * S[d * VB + c16 + j];
      for (int tt = 0; tt < CH; tt++) {
        float kk = Ks[tt * HD + d] * __expf(gC - gc[tt]);
#pragma unroll
        for (int j = 0; j < 16; j++) acc[j] += kk * Dl[tt * VB + c16 + j];
      }
#pragma unroll
      for (int j = 0; j < 16; j++) S[d * VB + c16 + j] = acc[j];
    }
    __syncthreads();
  }
}

static void gdn_chunk(const bf16* q, const bf16* k, const bf16* v, const float* lga, const float* beta, float* W,
                      float* U, float* M, float* gcum, bf16* o, int B, int Hk, int Hv, int T) {
  int nc = T / CH;
  k_gdn_prep<<<dim3(nc, B * Hv), 256, GK1_SMEM>>>(q, k, v, lga, beta, W, U, M, gcum, Hk, Hv, T);
  k_gdn_scan<<<dim3(HD / VB, B * Hv), 256, GK2_SMEM>>>(q, k, W, U, M, gcum, o, Hk, Hv, T);
}

// token-by-token reference, one thread per (b, value head, column), double state column in scratch
__global__ void k_gdn_ref(const bf16* q, const bf16* k, const bf16* v, const float* lga, const float* beta,
                          double* Scol, float* o, int B, int Hk, int Hv, int T) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= B * Hv * HD) return;
  int c = idx % HD, bh = idx / HD, b = bh / Hv, h = bh % Hv, kh = h / (Hv / Hk);
  double* S = Scol + (size_t)idx * HD;
  for (int r = 0; r < HD; r++) S[r] = 0;
  for (int t = 0; t < T; t++) {
    size_t kb = (((size_t)b * Hk + kh) * T + t) * HD, vb = ((size_t)bh * T + t) * HD;
    double a = exp((double)lga[(size_t)bh * T + t]), bb = beta[(size_t)bh * T + t];
    double u = 0;
    for (int r = 0; r < HD; r++) { S[r] *= a; u += S[r] * (double)__bfloat162float(k[kb + r]); }
    double dlt = bb * ((double)__bfloat162float(v[vb + c]) - u), acc = 0;
    for (int r = 0; r < HD; r++) {
      S[r] += (double)__bfloat162float(k[kb + r]) * dlt;
      acc += S[r] * (double)__bfloat162float(q[kb + r]);
    }
    o[vb + c] = (float)acc;
  }
}

static void run_gdn_prefill() {
  CK(cudaFuncSetAttribute(k_gdn_prep, cudaFuncAttributeMaxDynamicSharedMemorySize, GK1_SMEM));
  CK(cudaFuncSetAttribute(k_gdn_scan, cudaFuncAttributeMaxDynamicSharedMemorySize, GK2_SMEM));
  struct Bufs { bf16 *q, *k, *v, *o; float *lga, *beta, *W, *U, *M, *gc; };
  auto alloc = [&](int B, int Hk, int Hv, int T, int sets) {
    Bufs x;
    size_t nk = (size_t)B * Hk * T * HD, nv = (size_t)B * Hv * T * HD, ng = (size_t)B * Hv * T;
    x.q = (bf16*)pool_get(0, nk * 2 * sets); x.k = (bf16*)pool_get(1, nk * 2 * sets);
    x.v = (bf16*)pool_get(2, nv * 2 * sets); x.o = (bf16*)pool_get(3, nv * 2 * sets);
    x.lga = (float*)pool_get(4, ng * 4 * sets); x.beta = (float*)pool_get(5, ng * 4 * sets);
    x.W = (float*)pool_get(6, nv * 4); x.U = (float*)pool_get(7, nv * 4);
    x.M = (float*)pool_get(8, ng * CH * 4); x.gc = (float*)pool_get(9, ng * 4);
    // k scaled to |k| ~ 1 (models L2-normalise k), q likewise; decay in (0.90, 0.99), beta in (0.1, 0.9)
    fill_bf16(x.q, nk * sets, 11, 1.7f / sqrtf((float)HD));
    fill_bf16(x.k, nk * sets, 12, 1.7f / sqrtf((float)HD));
    fill_bf16(x.v, nv * sets, 13, 1.f);
    fill_f32(x.lga, ng * sets, 14, 0.045f, -0.055f);
    fill_f32(x.beta, ng * sets, 15, 0.4f, 0.5f);
    return x;
  };
  {  // check against the token-by-token recurrence
    int B = 2, Hk = 2, Hv = 4, T = 512;
    Bufs x = alloc(B, Hk, Hv, T, 1);
    size_t nv = (size_t)B * Hv * T * HD;
    fill_poison_bf16(x.o, nv);
    gdn_chunk(x.q, x.k, x.v, x.lga, x.beta, x.W, x.U, x.M, x.gc, x.o, B, Hk, Hv, T);
    CKL();
    double* Sc = (double*)pool_get(20, (size_t)B * Hv * HD * HD * 8);
    float* oref = (float*)pool_get(21, nv * 4);
    k_gdn_ref<<<ceil_div(B * Hv * HD, 128), 128>>>(x.q, x.k, x.v, x.lga, x.beta, Sc, oref, B, Hk, Hv, T);
    CKL();
    CK(cudaDeviceSynchronize());
    if (!report_check("linear_prefill gdn chunk64 B=2 Hk=2 Hv=4 T=512 128x128 vs token-by-token recurrence",
                      rel_err(d2h_bf16(x.o, nv), d2h_f32(oref, nv)), 1e-2)) {
      fprintf(stderr, "linear_prefill gdn: check failed, not timed\n");
      return;
    }
  }
  struct Cfg { const char* model; int Hk, Hv; };
  std::vector<Cfg> cfgs = {{"qwen3-next gdn", 16, 32}};
  std::vector<int> Ts = {1024, 2048, 4096, 8192, 16384, 32768};
  if (g.quick) Ts = {4096};
  double t0 = now_s();
  for (auto& c : cfgs)
    for (int T : Ts) {
      if (now_s() - t0 > g.section_budget_s || past_deadline()) { fprintf(stderr, "gdn prefill: budget reached\n"); return; }
      int B = 1;
      size_t nk = (size_t)B * c.Hk * T * HD, nv = (size_t)B * c.Hv * T * HD, ng = (size_t)B * c.Hv * T;
      int sets = nsets_for((2 * nk + 2 * nv) * 2 + 2 * ng * 4);
      Bufs x = alloc(B, c.Hk, c.Hv, T, sets);
      Timing t = bench([&](int r) {
        int s = r % sets;
        gdn_chunk(x.q + nk * s, x.k + nk * s, x.v + nv * s, x.lga + ng * s, x.beta + ng * s, x.W, x.U, x.M, x.gc,
                  x.o + nv * s, B, c.Hk, c.Hv, T);
      });
      double nch = (double)B * c.Hv * (T / CH);
      double flops = nch * (4.0 * CH * CH * HD /*KK^T, QK^T*/ + (double)CH * CH * 2 * HD /*substitution*/ +
                            6.0 * CH * HD * HD /*WS, QS, K^T D*/ + (double)CH * CH * HD /*M D*/);
      double bytes = (2.0 * nk + 2.0 * nv) * 2 + 2.0 * ng * 4 + nch * (2.0 * CH * HD * 4 * 2 + CH * CH * 4 * 2);
      Rec rec("linear_prefill");
      rec.str("variant", "gdn").i("batch", B).i("seq_len", T).i("heads", c.Hk).i("value_heads", c.Hv)
          .i("head_dim_k", HD).i("head_dim_v", HD).i("chunk", CH).str("model", c.model).str("state_dtype", "fp32");
      emit(rec, "bf16", "microbench", t, flops, bytes);
      fprintf(stderr, "linear_prefill gdn Hk=%d Hv=%d T=%6d %10.1f us %6.2f TF/s %7.1f GB/s\n", c.Hk, c.Hv, T,
              t.med * 1e6, flops / t.med / 1e12, bytes / t.med / 1e9);
    }
}

void run_linear_prefill() {
  CK(cudaFuncSetAttribute(k_chunk_out, cudaFuncAttributeMaxDynamicSharedMemorySize, OUT_SMEM));
  auto bufs = [&](int B, int H, int T, int sets, bf16** q, bf16** k, bf16** v, bf16** o, float** gate, float** dS) {
    size_t n = (size_t)B * H * T * HD;
    *q = (bf16*)pool_get(0, n * 2 * sets);
    *k = (bf16*)pool_get(1, n * 2 * sets);
    *v = (bf16*)pool_get(2, n * 2 * sets);
    *o = (bf16*)pool_get(3, n * 2 * sets);
    *gate = (float*)pool_get(4, H * 4);
    *dS = (float*)pool_get(5, (size_t)B * H * (T / CH) * HD * HD * 4);
    fill_bf16(*q, n * sets, 1, 0.15f);
    fill_bf16(*k, n * sets, 2, 0.15f);
    fill_bf16(*v, n * sets, 3, 1.f);
    fill_f32(*gate, H, 4, 0.02f, -0.03f);
  };
  {  // check
    int B = 2, H = 3, T = 512;
    bf16 *q, *k, *v, *o;
    float *gate, *dS;
    bufs(B, H, T, 1, &q, &k, &v, &o, &gate, &dS);
    size_t n = (size_t)B * H * T * HD;
    fill_poison_bf16(o, n);
    chunk_scan(q, k, v, gate, dS, o, B, H, T);
    CKL();
    double* Sc = (double*)pool_get(6, (size_t)B * H * HD * HD * 8);
    float* oref = (float*)pool_get(7, n * 4);
    k_scan_ref<<<ceil_div(B * H * HD, 128), 128>>>(q, k, v, gate, Sc, oref, B, H, T);
    CKL();
    CK(cudaDeviceSynchronize());
    if (!report_check("linear_prefill lightning chunk64 B=2 H=3 T=512 128x128 vs sequential recurrence",
                      rel_err(d2h_bf16(o, n), d2h_f32(oref, n)), 1e-2)) {
      fprintf(stderr, "linear_prefill: check failed, not timed\n");
      run_gdn_prefill();
      return;
    }
  }
  struct Cfg { const char* model; int H; };
  std::vector<Cfg> cfgs = {{"minimax-m1 lightning", 64}, {"gla/linear 16h", 16}};
  std::vector<int> Ts = {1024, 2048, 4096, 8192, 16384, 32768};
  if (g.quick) Ts = {4096};
  double t0 = now_s();
  for (auto& c : cfgs)
    for (int T : Ts) {
      if (now_s() - t0 > g.section_budget_s || past_deadline()) { fprintf(stderr, "linear_prefill: section budget reached\n"); return; }
      int B = 1, H = c.H;
      size_t n = (size_t)B * H * T * HD;
      int sets = nsets_for(n * 8);
      bf16 *q, *k, *v, *o;
      float *gate, *dS;
      bufs(B, H, T, sets, &q, &k, &v, &o, &gate, &dS);
      Timing t = bench([&](int r) {
        size_t off = n * (r % sets);
        chunk_scan(q + off, k + off, v + off, gate, dS, o + off, B, H, T);
      });
      int nc = T / CH;
      double flops = (double)B * H * nc * (2.0 * HD * HD * CH /*K1*/ + 2.0 * CH * CH * HD /*QK^T*/ +
                                           2.0 * CH * HD * HD /*QH*/ + 2.0 * CH * CH * HD /*AV*/);
      double bytes = 4.0 * n * 2 + (double)B * H * nc * HD * HD * 4 * 4;  // q,k,v,o + dS write/read/write/read
      Rec rec("linear_prefill");
      rec.str("variant", "lightning").i("batch", B).i("seq_len", T).i("heads", H).i("value_heads", H)
          .i("head_dim_k", HD).i("head_dim_v", HD).i("chunk", CH).str("model", c.model).str("state_dtype", "fp32");
      emit(rec, "bf16", "microbench", t, flops, bytes);
      fprintf(stderr, "linear_prefill lightning H=%d T=%6d %10.1f us %6.2f TF/s %7.1f GB/s\n", H, T, t.med * 1e6,
              flops / t.med / 1e12, bytes / t.med / 1e9);
    }
  run_gdn_prefill();
}
