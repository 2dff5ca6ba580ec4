// GEMM through cuBLASLt (bf16 and fp8 e4m3), the only file that needs cuBLAS.
// y[M,N] (row-major, bf16) = x[M,K] . W[N,K]^T, i.e. a linear layer with M tokens.
// In cuBLASLt's column-major terms: D(N x M) = W^T(op T, stored K x N) * x(op N, stored K x M), the
// "TN" layout that Hopper's fp8 kernels require.
#include "common.cuh"
#include <cublasLt.h>

#define CKB(x)                                                                         \
  do {                                                                                 \
    cublasStatus_t s_ = (x);                                                           \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                 \
      fprintf(stderr, "cuBLAS error %d at %s:%d: %s\n", (int)s_, __FILE__, __LINE__, #x); \
      exit(2);                                                                         \
    }                                                                                  \
  } while (0)

template <typename T>
__device__ __forceinline__ double to_d(T v) { return (double)(float)v; }

// reference for sampled output elements, double accumulation
template <typename T>
__global__ void k_gemm_samples(const T* x, const T* w, int M, int N, int K, const int* sm, const int* sn,
                               int ns, double* out) {
  int s = blockIdx.x;
  if (s >= ns) return;
  int m = sm[s], n = sn[s];
  double acc = 0;
  for (int k = threadIdx.x; k < K; k += blockDim.x) acc += to_d(x[(size_t)m * K + k]) * to_d(w[(size_t)n * K + k]);
  __shared__ double red[256];
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) red[threadIdx.x] += red[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[s] = red[0];
}

struct LtGemm {
  cublasLtHandle_t h = nullptr;
  void* ws = nullptr;
  size_t ws_bytes = 64u << 20;
  LtGemm() {
    CKB(cublasLtCreate(&h));
    CK(cudaMalloc(&ws, ws_bytes));
  }
  ~LtGemm() {
    cudaFree(ws);
    cublasLtDestroy(h);
  }
};

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo;
  bool ok = false;
  void destroy() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

static Plan make_plan(LtGemm& lt, bool fp8, int M, int N, int K) {
  Plan p;
  cudaDataType_t in_t = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  CKB(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CKB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CKB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  CKB(cublasLtMatrixLayoutCreate(&p.a, in_t, K, N, K));   // W stored K x N col-major (= [N,K] row-major)
  CKB(cublasLtMatrixLayoutCreate(&p.b, in_t, K, M, K));   // x stored K x M col-major (= [M,K] row-major)
  CKB(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, N, M, N));
  cublasLtMatmulPreference_t pref;
  CKB(cublasLtMatmulPreferenceCreate(&pref));
  CKB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &lt.ws_bytes,
                                           sizeof lt.ws_bytes));
  cublasLtMatmulHeuristicResult_t res[1];
  int n = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt.h, p.op, p.a, p.b, p.c, p.c, pref, 1, res, &n);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_SUCCESS && n > 0) {
    p.algo = res[0].algo;
    p.ok = true;
  }
  return p;
}

static void run_plan(LtGemm& lt, Plan& p, const void* w, const void* x, void* y) {
  float alpha = 1.f, beta = 0.f;
  CKB(cublasLtMatmul(lt.h, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo, lt.ws, lt.ws_bytes, 0));
}

void run_gemm() {
  LtGemm lt;
  struct Shape { const char* model; const char* layer; int n, k; };
  std::vector<Shape> shapes = {
      {"llama-3.1-8b", "qkv", 6144, 4096},         {"llama-3.1-8b", "o", 4096, 4096},
      {"llama-3.1-8b", "gate_up", 28672, 4096},    {"llama-3.1-8b", "down", 4096, 14336},
      {"llama-3.1-70b", "qkv", 10240, 8192},       {"llama-3.1-70b", "o", 8192, 8192},
      {"llama-3.1-70b", "gate_up", 57344, 8192},   {"llama-3.1-70b", "down", 8192, 28672},
      {"deepseek-v3", "expert_gate_up", 4096, 7168}, {"deepseek-v3", "expert_down", 7168, 2048},
      {"qwen3-next", "expert_gate_up", 1024, 2048},  {"qwen3-next", "expert_down", 2048, 512},
  };
  std::vector<int> Ms = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
  if (g.quick) {
    Ms = {1, 64, 4096};
    shapes = {shapes[0], shapes[3]};
  }
  double t0 = now_s();
  const int NS = 256;
  int* d_sm = (int*)pool_get(10, NS * sizeof(int));
  int* d_sn = (int*)pool_get(11, NS * sizeof(int));
  double* d_ref = (double*)pool_get(12, NS * sizeof(double));
  for (int fp8 = 0; fp8 < 2; fp8++) {
    bool dtype_failed = false;
    for (auto& sh : shapes) {
      for (int M : Ms) {
        if (dtype_failed) break;
        if (now_s() - t0 > 2.0 * g.section_budget_s || past_deadline()) { fprintf(stderr, "gemm: section budget reached\n"); return; }
        int N = sh.n, K = sh.k;
        size_t es = fp8 ? 1 : 2;
        size_t xb = (size_t)M * K * es, wb = (size_t)N * K * es, yb = (size_t)M * N * 2;
        size_t setb = xb + wb + yb;
        int sets = nsets_for(setb);
        if (!fits((double)setb * sets)) { fprintf(stderr, "skip gemm %d %d %d: memory\n", M, N, K); continue; }
        char* X = (char*)pool_get(0, xb * sets);
        char* W = (char*)pool_get(1, wb * sets);
        char* Y = (char*)pool_get(2, yb * sets);
        uint64_t seed = 1000 + M * 7 + N * 13 + K;
        if (fp8) {
          fill_fp8((__nv_fp8_e4m3*)X, xb * sets, seed, 2.f);
          fill_fp8((__nv_fp8_e4m3*)W, wb * sets, seed + 1, 2.f);
        } else {
          fill_bf16((bf16*)X, xb * sets / 2, seed, 1.f);
          fill_bf16((bf16*)W, wb * sets / 2, seed + 1, 1.f);
        }
        fill_poison_bf16((bf16*)Y, yb / 2);
        Plan p = make_plan(lt, fp8, M, N, K);
        if (!p.ok) {
          fprintf(stderr, "gemm %s M=%d N=%d K=%d: no cuBLASLt algorithm, skipped\n", fp8 ? "fp8" : "bf16", M, N, K);
          p.destroy();
          continue;
        }
        // correctness: sampled outputs vs double-accumulated reference, every point
        run_plan(lt, p, W, X, Y);
        CKL();
        std::vector<int> hm(NS), hn(NS);
        for (int s = 0; s < NS; s++) {
          hm[s] = (int)((s * 2654435761u + 17u) % (unsigned)M);
          hn[s] = (int)((s * 40503u * 97u + 3u * s) % (unsigned)N);
        }
        CK(cudaMemcpy(d_sm, hm.data(), NS * sizeof(int), cudaMemcpyHostToDevice));
        CK(cudaMemcpy(d_sn, hn.data(), NS * sizeof(int), cudaMemcpyHostToDevice));
        if (fp8)
          k_gemm_samples<__nv_fp8_e4m3><<<NS, 256>>>((const __nv_fp8_e4m3*)X, (const __nv_fp8_e4m3*)W, M, N, K, d_sm,
                                                     d_sn, NS, d_ref);
        else
          k_gemm_samples<bf16><<<NS, 256>>>((const bf16*)X, (const bf16*)W, M, N, K, d_sm, d_sn, NS, d_ref);
        CKL();
        std::vector<double> ref(NS);
        CK(cudaMemcpy(ref.data(), d_ref, NS * sizeof(double), cudaMemcpyDeviceToHost));
        std::vector<float> yo(NS), yr(NS);
        for (int s = 0; s < NS; s++) {
          bf16 v;
          CK(cudaMemcpy(&v, (bf16*)Y + (size_t)hm[s] * N + hn[s], 2, cudaMemcpyDeviceToHost));
          yo[s] = __bfloat162float(v);
          yr[s] = (float)ref[s];
        }
        char name[160];
        snprintf(name, sizeof name, "gemm cublasLt %s %s/%s M=%d N=%d K=%d (256 sampled outputs)", fp8 ? "fp8" : "bf16",
                 sh.model, sh.layer, M, N, K);
        double err = rel_err(yo, yr);
        bool verbose = (M == 1 || M == 4096 || err > 1e-2);
        bool ok;
        if (verbose) ok = report_check(name, err, 1e-2);
        else ok = err <= 1e-2;
        if (!ok) { p.destroy(); continue; }
        Timing t = bench([&](int r) {
          int s = r % sets;
          run_plan(lt, p, W + wb * s, X + xb * s, Y + yb * s);
        });
        p.destroy();
        double flops = 2.0 * M * N * K;
        Rec rec("gemm");
        rec.i("m", M).i("n", N).i("k", K).str("model", sh.model).str("layer", sh.layer).f("check_rel_err", err);
        if (fp8) rec.str("fp8_format", "e4m3").str("out_dtype", "bf16");
        emit(rec, fp8 ? "fp8" : "bf16", "cublas", t, flops, (double)setb);
        fprintf(stderr, "gemm %-4s %-13s %-14s M=%5d N=%5d K=%5d %9.2f us %7.1f TF/s %7.1f GB/s\n", fp8 ? "fp8" : "bf16",
                sh.model, sh.layer, M, N, K, t.med * 1e6, flops / t.med / 1e12, setb / t.med / 1e9);
      }
    }
  }
  // square reference points (the GEMM ceiling)
  for (int fp8 = 0; fp8 < 2; fp8++) {
    int S = g.quick ? 4096 : 8192;
    size_t es = fp8 ? 1 : 2;
    size_t xb = (size_t)S * S * es, yb = (size_t)S * S * 2;
    char* X = (char*)pool_get(0, xb);
    char* W = (char*)pool_get(1, xb);
    char* Y = (char*)pool_get(2, yb);
    if (fp8) { fill_fp8((__nv_fp8_e4m3*)X, xb, 1, 2.f); fill_fp8((__nv_fp8_e4m3*)W, xb, 2, 2.f); }
    else { fill_bf16((bf16*)X, xb / 2, 1, 1.f); fill_bf16((bf16*)W, xb / 2, 2, 1.f); }
    Plan p = make_plan(lt, fp8, S, S, S);
    if (!p.ok) continue;
    Timing t = bench([&](int) { run_plan(lt, p, W, X, Y); }, g.target_s * 4, 10);
    p.destroy();
    double flops = 2.0 * S * S * S;
    Rec rec("gemm");
    rec.i("m", S).i("n", S).i("k", S).str("model", "square").str("layer", "square");
    if (fp8) rec.str("fp8_format", "e4m3").str("out_dtype", "bf16");
    emit(rec, fp8 ? "fp8" : "bf16", "cublas", t, flops, (double)(2 * xb + yb));
    fprintf(stderr, "gemm %s square %d: %.1f TF/s\n", fp8 ? "fp8" : "bf16", S, flops / t.med / 1e12);
  }
}
