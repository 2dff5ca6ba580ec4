// Memory bandwidth (read-only, copy) and kernel-launch latency.
#include "common.cuh"

// Read-only: every thread reads 16-byte vectors, 4 independent loads in flight per iteration;
// the XOR of everything is written only if it matches an impossible value, so nothing is elided.
__global__ void __launch_bounds__(512) k_read(const int4* __restrict__ p, size_t n, int* sink) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  size_t stride = (size_t)gridDim.x * blockDim.x;
  int acc = 0;
  for (; i + 3 * stride < n; i += 4 * stride) {
    int4 a = __ldcs(p + i), b = __ldcs(p + i + stride), c = __ldcs(p + i + 2 * stride), d = __ldcs(p + i + 3 * stride);
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n; i += stride) {
    int4 a = __ldcs(p + i);
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  if (acc == 0x7e5a11ed) *sink = acc;
}

__global__ void __launch_bounds__(512) k_copy(const int4* __restrict__ s, int4* __restrict__ d, size_t n) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    int4 a = __ldcs(s + i), b = __ldcs(s + i + stride), c = __ldcs(s + i + 2 * stride), e = __ldcs(s + i + 3 * stride);
    __stcs(d + i, a); __stcs(d + i + stride, b); __stcs(d + i + 2 * stride, c); __stcs(d + i + 3 * stride, e);
  }
  for (; i < n; i += stride) __stcs(d + i, __ldcs(s + i));
}

__global__ void k_xor(const int4* p, size_t n, unsigned long long* out) {
  unsigned long long acc = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    int4 a = p[i];
    acc += (unsigned)(a.x) * 3u + (unsigned)(a.y) * 5u + (unsigned)(a.z) * 7u + (unsigned)(a.w) * 11u + i;
  }
  atomicAdd(out, acc);
}

static unsigned grid_for(size_t n16) {
  unsigned per = g.prop.multiProcessorCount * 4;  // 4 blocks of 512 per SM
  return (unsigned)std::max<size_t>(1, std::min<size_t>(per, ceil_div(n16, 512)));
}

static double time_copy(size_t bytes, bool copy, Timing* tout, bool record, bool rotate = true) {
  size_t n16 = bytes / 16;
  int sets = rotate ? nsets_for(bytes) : 1;
  char* src = (char*)pool_get(0, bytes * sets);
  char* dst = copy ? (char*)pool_get(1, bytes * sets) : nullptr;
  int* sink = (int*)pool_get(2, 64);
  fill_f32((float*)src, bytes * sets / 4, 11, 1.f);
  unsigned grid = grid_for(n16);
  Timing t = bench([&](int r) {
    size_t off = (size_t)(r % sets) * bytes;
    if (copy) k_copy<<<grid, 512>>>((const int4*)(src + off), (int4*)(dst + off), n16);
    else k_read<<<grid, 512>>>((const int4*)(src + off), n16, sink);
  });
  if (tout) *tout = t;
  double moved = copy ? 2.0 * bytes : (double)bytes;
  return moved / t.med;
}

static bool check_copy() {
  size_t bytes = (64u << 20) + 4096;  // not a multiple of the grid stride
  size_t n16 = bytes / 16;
  int4* s = (int4*)pool_get(0, bytes);
  int4* d = (int4*)pool_get(1, bytes);
  fill_f32((float*)s, bytes / 4, 5, 1.f);
  fill_poison_f32((float*)d, bytes / 4);
  k_copy<<<grid_for(n16), 512>>>(s, d, n16);
  CKL();
  unsigned long long* h = (unsigned long long*)pool_get(2, 16);
  CK(cudaMemset(h, 0, 16));
  k_xor<<<264, 256>>>(s, n16, h);
  k_xor<<<264, 256>>>(d, n16, h + 1);
  unsigned long long hh[2];
  CK(cudaMemcpy(hh, h, 16, cudaMemcpyDeviceToHost));
  return report_check("copy: checksum of 64 MiB+4 KiB copied buffer", hh[0] == hh[1] ? 0.0 : 1.0, 0.0);
}

void measure_copy_bw() {
  if (g.copy_bw > 0) return;
  Timing t;
  g.copy_bw = time_copy(1ull << 30, true, &t, false);
  fprintf(stderr, "copy bandwidth (1 GiB, read+write counted): %.1f GB/s\n", g.copy_bw / 1e9);
}

void run_memory() {
  if (!check_copy()) return;
  double t0 = now_s();
  size_t maxb = g.quick ? (256ull << 20) : (8ull << 30);
  // measure the reference copy bandwidth first so every later record can quote its fraction
  measure_copy_bw();
  for (int copy = 0; copy < 2; copy++) {
    for (size_t b = 1u << 20; b <= maxb; b *= 2) {
      double need = (double)b * (copy ? 2 : 1) * nsets_for(b);
      if (!fits(need)) { fprintf(stderr, "skip %s %zu bytes: does not fit\n", copy ? "copy" : "read", b); continue; }
      Timing t;
      time_copy(b, copy, &t, true);
      Rec r("copy");
      r.i("bytes", (long long)b).str("mode", copy ? "copy" : "read").b("l2_rotated", true);
      double moved = copy ? 2.0 * b : (double)b;
      emit(r, "int8", "microbench", t, 0, moved);
      fprintf(stderr, "%-4s %10zu KiB  %9.2f us  %8.1f GB/s\n", copy ? "copy" : "read", b >> 10, t.med * 1e6,
              moved / t.med / 1e9);
      if (now_s() - t0 > g.section_budget_s || past_deadline()) { fprintf(stderr, "memory: section budget reached\n"); return; }
    }
  }
  // L2-resident (same buffer every rep) for the log only: shows the L2-to-HBM transition
  for (size_t b = 1u << 20; b <= (256u << 20); b *= 4) {
    Timing t;
    double bw = time_copy(b, false, &t, false, false);
    fprintf(stderr, "read (no rotation, L2 may hold it) %8zu KiB  %8.1f GB/s\n", b >> 10, bw / 1e9);
  }
}

// ---------------------------------------------------------------- launch latency
__global__ void k_empty(int x) {
  if (x == 12345 && threadIdx.x == 9999) printf("never\n");
}

void run_launch() {
  const int N = 2000;
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  // warm-up
  for (int i = 0; i < 100; i++) k_empty<<<1, 32, 0, st>>>(i);
  CK(cudaStreamSynchronize(st));
  int trials = g.quick ? 3 : 11;
  std::vector<double> plain, graph, sync;
  for (int tr = 0; tr < trials; tr++) {
    CK(cudaEventRecord(a, st));
    for (int i = 0; i < N; i++) k_empty<<<1, 32, 0, st>>>(i);
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    CKL();
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    plain.push_back(ms * 1e-3 / N);
  }
  // graph of N empty kernels
  cudaGraph_t gr;
  cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < N; i++) k_empty<<<1, 32, 0, st>>>(i);
  CK(cudaStreamEndCapture(st, &gr));
  CK(cudaGraphInstantiate(&ge, gr, 0));
  CK(cudaGraphLaunch(ge, st));
  CK(cudaStreamSynchronize(st));
  for (int tr = 0; tr < trials; tr++) {
    CK(cudaEventRecord(a, st));
    CK(cudaGraphLaunch(ge, st));
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    graph.push_back(ms * 1e-3 / N);
  }
  // launch + synchronize round trip (host clock)
  for (int tr = 0; tr < trials; tr++) {
    double t0 = now_s();
    for (int i = 0; i < 200; i++) {
      k_empty<<<1, 32, 0, st>>>(i);
      CK(cudaStreamSynchronize(st));
    }
    sync.push_back((now_s() - t0) / 200);
  }
  CK(cudaGraphExecDestroy(ge));
  CK(cudaGraphDestroy(gr));
  CK(cudaStreamDestroy(st));
  auto stat = [](std::vector<double> v, int reps) {
    std::sort(v.begin(), v.end());
    Timing t;
    t.med = v[v.size() / 2];
    t.p10 = v[v.size() / 10];
    t.p90 = v[std::min(v.size() - 1, v.size() * 9 / 10)];
    t.reps = reps;
    return t;
  };
  struct { const char* var; std::vector<double>* v; int per; } rows[] = {
      {"stream", &plain, N}, {"graph", &graph, N}, {"stream_sync", &sync, 200}};
  for (auto& rw : rows) {
    Timing t = stat(*rw.v, (int)rw.v->size());
    Rec r("launch");
    r.str("variant", rw.var).i("kernels_per_trial", rw.per).i("trials", (long long)rw.v->size());
    emit(r, "none", "microbench", t, 0, 0);
    fprintf(stderr, "launch %-12s %.2f us per kernel\n", rw.var, t.med * 1e6);
  }
}
