#!/usr/bin/env bash
# Build, check and measure; writes <outdir>/<hardware>.jsonl and <hardware>.log
# (<hardware>-quick.* with --quick). <hardware> is the profile name the benchmark derives from the
# GPU's own name (e.g. "NVIDIA H100 80GB HBM3" -> h100-sxm, "NVIDIA H200" -> h200).
#   ./run.sh [--quick] [--outdir DIR] [--only memory,launch,gemm,decode,linear_decode,prefill,linear_prefill]
#   DEADLINE=480 (seconds; default 480, 100 with --quick): sections stop early once it has passed
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
outdir="$here/../measurements"
args=()
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; args+=(--quick) ;;
    --outdir) outdir="$2"; shift ;;
    --only) args+=(--only "$2"); shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 1 ;;
  esac
  shift
done
"$here/build.sh"
mkdir -p "$outdir"
tmp="$outdir/run-$$.jsonl"
log="$outdir/run-$$.log"
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) microbench/run.sh ${args[*]:-}"
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv 2>&1 || true
  nvcc --version | tail -2
} > "$log"
set +e
# sections stop starting new points after DEADLINE seconds; the process is killed after DEADLINE+60
deadline=${DEADLINE:-$([ "$quick" = 1 ] && echo 100 || echo 480)}
timeout $((deadline + 60)) "$here/build/costsim_bench" "${args[@]}" --deadline "$deadline" --out "$tmp" 2> >(tee -a "$log" >&2)
rc=$?
set -e
sleep 0.5
hw=$(head -1 "$tmp" | sed -E 's/.*"hardware":"([^"]*)".*/\1/')
[ -n "$hw" ] || hw=unknown
suffix=""; [ "$quick" = 1 ] && suffix="-quick"
mv "$tmp" "$outdir/$hw$suffix.jsonl"
mv "$log" "$outdir/$hw$suffix.log"
echo "wrote $outdir/$hw$suffix.jsonl ($(($(wc -l < "$outdir/$hw$suffix.jsonl") - 1)) records) and $outdir/$hw$suffix.log; exit $rc" >&2
exit $rc
