// costsim microbenchmark: entry point and harness implementation.
#include "common.cuh"
#include <chrono>
#include <ctime>
#include <cstring>
#include <map>

Ctx g;

// wall clock for the section budgets: the larger of the steady and the real-time clock's elapsed time
// (a VM's steady clock was seen to run slow)
static double t_start_steady = -1, t_start_real = -1;
double now_s() {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  double r = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (t_start_steady < 0) { t_start_steady = s; t_start_real = r; }
  return std::max(s - t_start_steady, r - t_start_real);
}
double g_deadline = 1e30;
bool past_deadline() { return now_s() > g_deadline; }

// holds the GPU busy while the timed launches are queued, so that per-rep times are GPU times and
// not the host's launch rate (a launch cost ~4 us of host time on the lent VM)
__global__ void k_spin(long long cycles) {
  long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
}

// ---------------------------------------------------------------- records
void emit(Rec& r, const char* dtype, const char* source, const Timing& t, double flops, double bytes) {
  r.str("hardware", g.hardware).str("gpu_name", g.gpu_name).str("dtype", dtype).str("source", source);
  r.f("time_s", t.med).f("p10_s", t.p10).f("p90_s", t.p90).i("reps", t.reps);
  if (flops > 0) r.f("flops", flops).f("achieved_tflops", flops / t.med / 1e12);
  if (bytes > 0) r.f("bytes_moved", bytes).f("achieved_gb_s", bytes / t.med / 1e9);
  if (bytes > 0 && g.copy_bw > 0) r.f("frac_copy_bw", bytes / t.med / g.copy_bw);
  std::string line = r.s + "}\n";
  fputs(line.c_str(), g.out);
  fflush(g.out);
  g.records++;
}

// ---------------------------------------------------------------- timing
Timing bench(const std::function<void(int)>& f, double target_s, int min_reps, int max_reps) {
  if (target_s <= 0) target_s = g.target_s;
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  // warm-up (also module load / heuristics), then a rough estimate
  f(0);
  CKL();
  CK(cudaDeviceSynchronize());
  CK(cudaEventRecord(a));
  for (int i = 1; i <= 3; i++) f(i);
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  CKL();
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  double est = std::max(ms / 3e3, 1e-7);
  bool spin = est < 100e-6;
  if (spin) max_reps = std::min(max_reps, 400);
  int reps = (int)std::min<double>(max_reps, std::max<double>(min_reps, target_s / est));
  std::vector<cudaEvent_t> ev(reps + 1);
  for (auto& e : ev) CK(cudaEventCreate(&e));
  if (spin) {
    int khz = 0;
    cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0);
    double us = std::min(30000.0, reps * 12.0 + 200);
    k_spin<<<1, 1>>>((long long)(us * 1e-3 * khz));
  }
  for (int i = 0; i < reps; i++) {
    CK(cudaEventRecord(ev[i]));
    f(i + 4);
  }
  CK(cudaEventRecord(ev[reps]));
  CK(cudaEventSynchronize(ev[reps]));
  CKL();
  std::vector<double> ts(reps);
  for (int i = 0; i < reps; i++) {
    float m = 0;
    CK(cudaEventElapsedTime(&m, ev[i], ev[i + 1]));
    ts[i] = m * 1e-3;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ts.begin(), ts.end());
  Timing t;
  t.reps = reps;
  t.med = ts[reps / 2];
  t.p10 = ts[reps / 10];
  t.p90 = ts[std::min(reps - 1, (reps * 9) / 10)];
  return t;
}

int nsets_for(size_t bytes_per_set) {
  size_t want = 3 * g.l2;
  size_t n = (want + bytes_per_set - 1) / std::max<size_t>(bytes_per_set, 1);
  return (int)std::min<size_t>(std::max<size_t>(n, 1), 64);
}

bool fits(double bytes) { return bytes < 0.6 * (double)g.mem_total; }

// ---------------------------------------------------------------- pool
static std::map<int, std::pair<void*, size_t>> s_pool;
void* pool_get(int slot, size_t bytes) {
  auto& e = s_pool[slot];
  if (e.second < bytes) {
    if (e.first) CK(cudaFree(e.first));
    e.first = nullptr;
    e.second = 0;
    CK(cudaMalloc(&e.first, bytes));
    e.second = bytes;
  }
  return e.first;
}
void pool_free_all() {
  for (auto& kv : s_pool)
    if (kv.second.first) CK(cudaFree(kv.second.first));
  s_pool.clear();
}

// ---------------------------------------------------------------- fills
__device__ __forceinline__ float urand(uint64_t seed, size_t i) {
  return (hash32(seed * 0x9E3779B97F4A7C15ULL + i) >> 8) * (1.0f / 16777216.0f) * 2.f - 1.f;
}
__global__ void k_fill_bf16(bf16* p, size_t n, uint64_t seed, float scale, float offset) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __float2bfloat16(offset + scale * urand(seed, i));
}
__global__ void k_fill_f32(float* p, size_t n, uint64_t seed, float scale, float offset) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = offset + scale * urand(seed, i);
}
__global__ void k_fill_fp8(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __nv_fp8_e4m3(scale * urand(seed, i));
}
__global__ void k_poison_bf16(bf16* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __ushort_as_bfloat16((unsigned short)0x7fc0);
}
__global__ void k_poison_f32(float* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __int_as_float(0x7fc00000);
}
static unsigned fill_grid(size_t n) { return (unsigned)std::min<size_t>(ceil_div(n, 256), 132 * 32); }
void fill_bf16(bf16* p, size_t n, uint64_t seed, float scale, float offset) {
  k_fill_bf16<<<fill_grid(n), 256>>>(p, n, seed, scale, offset); CKL();
}
void fill_f32(float* p, size_t n, uint64_t seed, float scale, float offset) {
  k_fill_f32<<<fill_grid(n), 256>>>(p, n, seed, scale, offset); CKL();
}
void fill_fp8(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float scale) {
  k_fill_fp8<<<fill_grid(n), 256>>>(p, n, seed, scale); CKL();
}
void fill_poison_bf16(bf16* p, size_t n) { k_poison_bf16<<<fill_grid(n), 256>>>(p, n); CKL(); }
void fill_poison_f32(float* p, size_t n) { k_poison_f32<<<fill_grid(n), 256>>>(p, n); CKL(); }

// ---------------------------------------------------------------- checks
std::vector<float> d2h_bf16(const bf16* p, size_t n) {
  std::vector<bf16> h(n);
  CK(cudaMemcpy(h.data(), p, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<float> o(n);
  for (size_t i = 0; i < n; i++) o[i] = __bfloat162float(h[i]);
  return o;
}
std::vector<float> d2h_f32(const float* p, size_t n) {
  std::vector<float> o(n);
  CK(cudaMemcpy(o.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
  return o;
}
double rel_err(const std::vector<float>& out, const std::vector<float>& ref) {
  if (out.size() != ref.size() || out.empty()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); i++) {
    if (!std::isfinite(out[i])) return INFINITY;
    double d = (double)out[i] - ref[i];
    num += d * d;
    den += (double)ref[i] * ref[i];
  }
  if (den == 0) return num == 0 ? 0 : INFINITY;
  return std::sqrt(num / den);
}
bool report_check(const std::string& name, double err, double bound) {
  bool ok = std::isfinite(err) && err <= bound;
  fprintf(stderr, "CHECK %-70s rel_err=%.3e bound=%.1e %s\n", name.c_str(), err, bound, ok ? "PASS" : "FAIL");
  if (ok) g.checks_passed++;
  else {
    g.checks_failed++;
    g.failed.push_back(name);
  }
  return ok;
}

// ---------------------------------------------------------------- header
static std::string slug(const std::string& name) {
  std::string s;
  std::string n = name;
  if (n.rfind("NVIDIA ", 0) == 0) n = n.substr(7);
  for (char c : n) {
    if (isalnum((unsigned char)c)) s += (char)tolower(c);
    else if (!s.empty() && s.back() != '-') s += '-';
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s;
}
static std::string hardware_for(const std::string& name) {
  if (name.find("H200") != std::string::npos) return "h200";
  if (name.find("H100") != std::string::npos) {
    if (name.find("PCIe") != std::string::npos) return "h100-pcie";
    if (name.find("NVL") != std::string::npos) return "h100-nvl";
    return "h100-sxm";  // "NVIDIA H100 80GB HBM3" is the SXM part
  }
  return slug(name);
}
static std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if ((unsigned char)c < 0x20) o += ' ';
    else o += c;
  }
  return o;
}
static std::string smi(const char* fields) {
  std::string cmd = std::string("nvidia-smi --query-gpu=") + fields + " --format=csv,noheader,nounits -i 0 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[512] = {0};
  std::string s;
  while (fgets(buf, sizeof buf, p)) s += buf;
  pclose(p);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

static void usage() {
  fprintf(stderr,
          "costsim_bench [--quick] [--out FILE] [--only a,b,...] [--hardware NAME] [--deadline SECONDS]\n"
          "  sections: memory,launch,gemm,decode,linear_decode,prefill,linear_prefill (default: all)\n"
          "  records (JSON Lines) go to stdout or FILE; checks and progress to stderr\n");
}

int main(int argc, char** argv) {
  std::string outpath, only, hw_override, cmdline;
  for (int i = 0; i < argc; i++) { if (i) cmdline += ' '; cmdline += argv[i]; }
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--quick") g.quick = true;
    else if (a == "--out" && i + 1 < argc) outpath = argv[++i];
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--hardware" && i + 1 < argc) hw_override = argv[++i];
    else if (a == "--deadline" && i + 1 < argc) g_deadline = atof(argv[++i]);
    else if (a == "-h" || a == "--help") { usage(); return 0; }
    else { fprintf(stderr, "unknown argument: %s\n", a.c_str()); usage(); return 1; }
  }
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    fprintf(stderr, "costsim_bench: no CUDA GPU visible; nothing to measure\n");
    return 3;
  }
  g.out = stdout;
  if (!outpath.empty()) {
    g.out = fopen(outpath.c_str(), "w");
    if (!g.out) { fprintf(stderr, "cannot open %s\n", outpath.c_str()); return 1; }
  }
  CK(cudaSetDevice(0));
  CK(cudaGetDeviceProperties(&g.prop, 0));
  g.gpu_name = g.prop.name;
  g.hardware = hw_override.empty() ? hardware_for(g.gpu_name) : hw_override;
  g.l2 = g.prop.l2CacheSize;
  size_t fr = 0;
  CK(cudaMemGetInfo(&fr, &g.mem_total));
  if (g.quick) { g.target_s = 0.01; g.section_budget_s = 12; }
  else { g.target_s = 0.04; g.section_budget_s = 60; }

  int drv = 0, rt = 0, clk = 0, mclk = 0, busw = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0);
  cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&busw, cudaDevAttrGlobalMemoryBusWidth, 0);
  std::string drv_str = smi("driver_version");
  std::string clocks = smi("clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit,temperature.gpu");
  char date[64];
  time_t tt = time(nullptr);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
  {
    std::string h = "{\"record\":\"header\"";
    auto kv = [&](const char* k, const std::string& v) { h += ",\"" + std::string(k) + "\":\"" + json_escape(v) + "\""; };
    auto kn = [&](const char* k, long long v) { h += ",\"" + std::string(k) + "\":" + std::to_string(v); };
    kv("gpu_name", g.gpu_name);
    kv("hardware", g.hardware);
    kv("driver", drv_str);
    kn("cuda_driver_api", drv);
    kn("cuda_runtime", rt);
    kv("compute_capability", std::to_string(g.prop.major) + "." + std::to_string(g.prop.minor));
    kn("sm_count", g.prop.multiProcessorCount);
    kn("l2_bytes", (long long)g.l2);
    kn("memory_bytes", (long long)g.mem_total);
    kn("sm_clock_max_khz", clk);
    kn("mem_clock_max_khz", mclk);
    kn("mem_bus_width_bits", busw);
    kv("nvidia_smi_clocks_sm_smmax_mem_memmax_powerlimit_temp", clocks);
    kv("date", date);
    kv("command", cmdline);
    kv("mode", g.quick ? "quick" : "full");
    h += "}\n";
    fputs(h.c_str(), g.out);
    fflush(g.out);
  }
  fprintf(stderr, "GPU %s (%s), %d SMs, L2 %zu MiB, mem %.1f GiB, driver %s, runtime %d, sm clk max %d MHz\n",
          g.gpu_name.c_str(), g.hardware.c_str(), g.prop.multiProcessorCount, g.l2 >> 20, g.mem_total / 1073741824.0,
          drv_str.c_str(), rt, clk / 1000);

  auto want = [&](const char* s) {
    if (only.empty()) return true;
    std::string o = "," + only + ",";
    return o.find("," + std::string(s) + ",") != std::string::npos;
  };
  struct Sec { const char* name; void (*fn)(); };
  Sec secs[] = {{"memory", run_memory},
                {"launch", run_launch},
                {"gemm", run_gemm},
                {"decode", run_decode_attention},
                {"linear_decode", run_linear_decode},
                {"prefill", run_prefill_attention},
                {"linear_prefill", run_linear_prefill}};
  double t0 = now_s();
  double real0 = (double)time(nullptr);
  for (auto& s : secs) {
    if (!want(s.name)) continue;
    if (past_deadline()) { fprintf(stderr, "== section %s skipped: --deadline reached\n", s.name); continue; }
    double ts = now_s();
    int r0 = g.records;
    fprintf(stderr, "== section %s\n", s.name);
    s.fn();
    CK(cudaDeviceSynchronize());
    pool_free_all();
    fprintf(stderr, "== section %s done: %d records, %.1f s\n", s.name, g.records - r0, now_s() - ts);
  }
  fprintf(stderr, "DONE records=%d checks_passed=%d checks_failed=%d wall=%.1f s (time(): %.0f s)\n", g.records,
          g.checks_passed, g.checks_failed, now_s() - t0, (double)time(nullptr) - real0);
  for (auto& f : g.failed) fprintf(stderr, "FAILED CHECK: %s (its timings were not recorded)\n", f.c_str());
  if (g.out != stdout) fclose(g.out);
  return g.checks_failed ? 4 : 0;
}
