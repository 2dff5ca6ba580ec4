#!/usr/bin/env bash
# Build the costsim CUDA microbenchmark.
#   ./build.sh                 build build/costsim_bench (needs nvcc; cuBLASLt for the gemm section)
#   ./build.sh --compile-only  compile every source to an object (no GPU needed); gemm_lt.cu only when
#                              cublasLt.h is found, otherwise the cuBLAS-free stub is linked instead
#   BUILD_NO_CUBLAS=1          build without cuBLAS (the gemm section then reports itself skipped)
#   CUDA_ARCH=sm_80            override the target (default: sm_90a on Hopper or when no GPU is
#                              visible, else the local GPU's compute capability)
#   CUBLAS_HOME=/path          where include/cublasLt.h and lib/libcublasLt.so live, if not in the toolkit
set -euo pipefail
cd "$(dirname "$0")"
COMPILE_ONLY=0
for a in "$@"; do
  case "$a" in
    --compile-only) COMPILE_ONLY=1 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $a" >&2; exit 1 ;;
  esac
done
command -v nvcc >/dev/null || { echo "build.sh: nvcc not found (install the CUDA toolkit)" >&2; exit 1; }

# ---- target architecture
if [ -z "${CUDA_ARCH:-}" ]; then
  cc=""
  if command -v nvidia-smi >/dev/null 2>&1; then
    cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)
  fi
  if [ -z "$cc" ] || [ "$cc" = "90" ]; then CUDA_ARCH=sm_90a; else CUDA_ARCH="sm_$cc"; fi
fi
num=${CUDA_ARCH#sm_}
GENCODE="-gencode=arch=compute_${num},code=${CUDA_ARCH}"
if [ "$num" -lt 80 ] 2>/dev/null; then
  echo "build.sh: the attention kernels need sm_80 or newer (bf16 mma.sync); target $CUDA_ARCH" >&2; exit 1
fi

# ---- cuBLAS headers/libs: toolkit, CUBLAS_HOME, or the nvidia-cublas pip wheel
find_cublas() {
  local cands=("${CUBLAS_HOME:-}" "$(dirname "$(dirname "$(command -v nvcc)")")" /usr/local/cuda /usr)
  local py
  for py in python3 python; do
    if command -v $py >/dev/null 2>&1; then
      local d
      d=$($py - <<'PY' 2>/dev/null || true
import importlib.util, os
for name in ("nvidia.cu13", "nvidia.cublas", "nvidia.cu12"):
    try:
        s = importlib.util.find_spec(name)
    except Exception:
        s = None
    if s and s.submodule_search_locations:
        for p in s.submodule_search_locations:
            if os.path.exists(os.path.join(p, "include", "cublasLt.h")):
                print(p); raise SystemExit
PY
)
      [ -n "$d" ] && cands+=("$d")
    fi
  done
  for c in "${cands[@]}"; do
    [ -n "$c" ] && [ -f "$c/include/cublasLt.h" ] && { echo "$c"; return; }
    [ -n "$c" ] && [ -f "$c/targets/x86_64-linux/include/cublasLt.h" ] && { echo "$c/targets/x86_64-linux"; return; }
  done
}
CUBLAS_DIR=""
if [ "${BUILD_NO_CUBLAS:-0}" != "1" ]; then CUBLAS_DIR=$(find_cublas || true); fi

mkdir -p build
FLAGS=(-O3 -std=c++17 "$GENCODE" -lineinfo -Xptxas=-v --expt-relaxed-constexpr)
SRCS=(main mem attn linear)
objs=()
for s in "${SRCS[@]}"; do
  echo "nvcc src/$s.cu ($CUDA_ARCH)"
  nvcc "${FLAGS[@]}" -c "src/$s.cu" -o "build/$s.o" 2> "build/$s.ptxas.txt" || { cat "build/$s.ptxas.txt" >&2; exit 1; }
  grep -E "error|warning" "build/$s.ptxas.txt" | grep -v "Xptxas" >&2 || true
  objs+=("build/$s.o")
done
LINK=()
if [ -n "$CUBLAS_DIR" ]; then
  echo "nvcc src/gemm_lt.cu (cuBLASLt from $CUBLAS_DIR)"
  nvcc "${FLAGS[@]}" -I"$CUBLAS_DIR/include" -c src/gemm_lt.cu -o build/gemm_lt.o 2> build/gemm_lt.ptxas.txt || { cat build/gemm_lt.ptxas.txt >&2; exit 1; }
  objs+=(build/gemm_lt.o)
  libdir="$CUBLAS_DIR/lib64"; [ -d "$libdir" ] || libdir="$CUBLAS_DIR/lib"
  if [ -f "$libdir/libcublasLt.so" ]; then LINK=(-L"$libdir" -lcublasLt -Xlinker -rpath -Xlinker "$libdir")
  else
    so=$(ls "$libdir"/libcublasLt.so.* 2>/dev/null | head -1 || true)
    if [ -n "$so" ]; then LINK=(-Xlinker "$so" -Xlinker "$libdir/libcublas.so.${so##*.so.}" -Xlinker -rpath -Xlinker "$libdir")
    elif [ "$COMPILE_ONLY" = 0 ]; then echo "build.sh: cublasLt.h found but no libcublasLt in $libdir" >&2; exit 1; fi
  fi
else
  echo "nvcc src/gemm_stub.cu (no cuBLAS: gemm section disabled)"
  nvcc "${FLAGS[@]}" -c src/gemm_stub.cu -o build/gemm_stub.o 2> build/gemm_stub.ptxas.txt || { cat build/gemm_stub.ptxas.txt >&2; exit 1; }
  objs+=(build/gemm_stub.o)
fi
if [ "$COMPILE_ONLY" = 1 ]; then
  echo "compile-only: all sources compiled for $CUDA_ARCH"
  exit 0
fi
nvcc "${FLAGS[@]}" "${objs[@]}" "${LINK[@]}" -o build/costsim_bench
echo "built build/costsim_bench ($CUDA_ARCH${CUBLAS_DIR:+, cuBLASLt})"
