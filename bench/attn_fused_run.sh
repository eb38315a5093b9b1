#!/usr/bin/env bash
# Issue 9, session 13: the merge fused into the partial kernel (the last
# block of a sequence's partitions merges them; MOETUNE_CUDA_ATTN_FUSED_MERGE=1)
# checked and timed against the merge kernel, in one call.
# (1) every variant of SHAPES checked against the float64 reference with the
# fused merge on (cuda_attn_check --check-only, splits 1, 2 and 4);
# (2) ENTRIES timed with .carry/bin (the merge kernel) and .carry/fm (a
# wrapper: the same binary with the switch on), alternated.
# Usage (device machine, repository root): OUT=dir bench/attn_fused_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/fused_run}
mkdir -p "$OUT"
echo "== $(date -u +%FT%TZ) commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader
s=$(date +%s)
MOETUNE_CUDA_ATTN_FUSED_MERGE=1 timeout ${CHECK_LIMIT:-150} .carry/bin/cuda_attn_check --check-only --compile-jobs 16 \
  --shapes ${SHAPES:-1:1} --query-split 1,2,4 >"$OUT/check.txt" 2>&1
echo "check rc=$? in $(( $(date +%s) - s )) s: $(grep -E 'variants checked' "$OUT/check.txt")"
grep '^  H=' "$OUT/check.txt" | grep -v ': ok' | grep -v refuse | head -5
OUT=$OUT BUILDS=${BUILDS:-"bin fm bin fm"} ENTRIES=${ENTRIES:-"64/8/128/16/8/511@256/2/1/2/2 64/8/128/16/8/511@128/2/1/2
  32/8/128/16/8/511@128/2/1/2 64/8/128/16/8/2048@512/2/1/2 64/8/128/16/32/511@512/2/1/2/2 8/1/256/16/8/8192@512/4/1/2"} \
  timeout ${PROBE_LIMIT:-240} bash bench/attn_locality_probe.sh 2>&1 | sed 's/unchecked //; s/ of floor//g'
