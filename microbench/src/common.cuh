// costsim microbenchmark: shared harness (timing, JSON Lines records, random fill, checks).
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cmath>
#include <string>
#include <vector>
#include <algorithm>
#include <functional>
#include <cstring>

#define CK(x)                                                                                    \
  do {                                                                                           \
    cudaError_t e_ = (x);                                                                        \
    if (e_ != cudaSuccess) {                                                                     \
      fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, \
              #x);                                                                               \
      exit(2);                                                                                   \
    }                                                                                            \
  } while (0)
#define CKL() CK(cudaGetLastError())

typedef __nv_bfloat16 bf16;

// ---------------------------------------------------------------- run context
struct Ctx {
  FILE* out = nullptr;          // JSON Lines records
  bool quick = false;
  std::string hardware, gpu_name;
  cudaDeviceProp prop;
  size_t l2 = 50u << 20;
  size_t mem_total = 0;
  double target_s = 0.05;      // timed GPU seconds aimed at per point
  int records = 0;
  int checks_passed = 0, checks_failed = 0;
  std::vector<std::string> failed;
  double copy_bw = 0;          // measured large-copy bandwidth (B/s, read+write counted)
  double section_budget_s = 100; // wall seconds per section before it stops early
};
extern Ctx g;

double now_s();
bool past_deadline();  // --deadline seconds since start reached: sections stop early

// ---------------------------------------------------------------- JSON record builder
struct Rec {
  std::string s;
  explicit Rec(const char* op) { s = "{\"op\":\""; s += op; s += "\""; }
  Rec& str(const char* k, const std::string& v) {
    s += ",\""; s += k; s += "\":\""; s += v; s += "\""; return *this;
  }
  Rec& i(const char* k, long long v) {
    s += ",\""; s += k; s += "\":"; s += std::to_string(v); return *this;
  }
  Rec& f(const char* k, double v) {
    char b[64];
    if (std::isfinite(v)) snprintf(b, sizeof b, "%.6g", v); else snprintf(b, sizeof b, "null");
    s += ",\""; s += k; s += "\":"; s += b; return *this;
  }
  Rec& b(const char* k, bool v) { s += ",\""; s += k; s += v ? "\":true" : "\":false"; return *this; }
};

struct Timing { double med = 0, p10 = 0, p90 = 0; int reps = 0; };

// Writes the common fields + timing, and the record line.
void emit(Rec& r, const char* dtype, const char* source, const Timing& t, double flops, double bytes);

// ---------------------------------------------------------------- timing
// f(rep) enqueues one run on the default stream using input set (rep % nsets).
Timing bench(const std::function<void(int)>& f, double target_s = -1, int min_reps = 5, int max_reps = 2000);
int nsets_for(size_t bytes_per_set);  // rotation so that sets*bytes > 3x L2 (max 64)
bool fits(double bytes);              // < 60% of device memory

// ---------------------------------------------------------------- device buffers (grow-only pool)
void* pool_get(int slot, size_t bytes);
void pool_free_all();

// ---------------------------------------------------------------- random fill (hash RNG, uniform [-scale, scale])
void fill_bf16(bf16* p, size_t n, uint64_t seed, float scale, float offset = 0.f);
void fill_f32(float* p, size_t n, uint64_t seed, float scale, float offset = 0.f);
void fill_fp8(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float scale);
void fill_poison_bf16(bf16* p, size_t n);  // NaN
void fill_poison_f32(float* p, size_t n);

// ---------------------------------------------------------------- checks
std::vector<float> d2h_bf16(const bf16* p, size_t n);
std::vector<float> d2h_f32(const float* p, size_t n);
// relative L2 error, NaN/inf -> returns +inf
double rel_err(const std::vector<float>& out, const std::vector<float>& ref);
// logs "CHECK name ... PASS/FAIL", counts; returns pass
bool report_check(const std::string& name, double err, double bound);

static inline unsigned ceil_div(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

__device__ __forceinline__ uint32_t hash32(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
  return (uint32_t)x;
}

// sections
void run_memory();
void run_launch();
void run_gemm();
void run_decode_attention();
void run_prefill_attention();
void run_linear_decode();
void run_linear_prefill();
