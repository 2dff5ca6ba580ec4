#!/usr/bin/env bash
# Build libcostsim_flashmla.so: microbench/flashmla_capi.cu (our C entry point) with FlashMLA's Hopper
# dense MLA decode, its scheduler and its combine kernel, from a FlashMLA checkout and the CUTLASS commit
# it pins (FlashMLA's csrc/cutlass submodule). Nothing of FlashMLA is kept in this repository.
#
#   microbench/build_flashmla.sh FLASHMLA_DIR CUTLASS_DIR OUT.so
#
# Needs nvcc >= 12.3 (sm_90a); no GPU and no PyTorch. Two cores take several minutes.
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 FLASHMLA_DIR CUTLASS_DIR OUT.so" >&2
  exit 2
fi
fm=$(cd "$1" && pwd)
cut=$(cd "$2" && pwd)
out=$3
here=$(cd "$(dirname "$0")" && pwd)
for f in "$fm/csrc/params.h" "$fm/csrc/sm90/decode/dense/instantiations/bf16.cu" "$cut/include/cute/tensor.hpp"; do
  [ -f "$f" ] || { echo "build_flashmla.sh: $f is missing; pass a FlashMLA checkout and its CUTLASS" >&2; exit 2; }
done
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
flags=(-O3 -std=c++20 -DNDEBUG -D_USE_MATH_DEFINES --expt-relaxed-constexpr --expt-extended-lambda --use_fast_math
       -Xcompiler -fPIC -gencode arch=compute_90a,code=sm_90a
       -I"$fm/csrc" -I"$fm/csrc/kerutils/include" -I"$fm/csrc/sm90" -I"$cut/include" -I"$cut/tools/util/include")
sources=("$here/flashmla_capi.cu" "$fm/csrc/smxx/decode/get_decoding_sched_meta/get_decoding_sched_meta.cu"
         "$fm/csrc/smxx/decode/combine/combine.cu" "$fm/csrc/sm90/decode/dense/instantiations/bf16.cu")
pids=()
for i in "${!sources[@]}"; do
  nvcc "${flags[@]}" -c "${sources[$i]}" -o "$obj/$i.o" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
nvcc -shared -gencode arch=compute_90a,code=sm_90a "$obj"/*.o -o "$out"
echo "built $out"
