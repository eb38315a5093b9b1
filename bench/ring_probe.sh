#!/usr/bin/env bash
# Issue 9: ring depths (stage 2..4) and partitions of the one-pass attention
# variant on rows where SDPA still wins, one variant per cuda_attn_check run
# (deeper rings than the full table's grid checks).
# Usage (device machine, repository root): OUT=dir bench/ring_probe.sh
# ROWS, VARIANTS: H/HKV/D/PAGE/B/CTX and PART/WARPS/MMA/STAGE lists;
# BUILDS: "bin" (.carry/bin) and/or "old" (.carry/old: the build before a change).
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/ring_probe}
mkdir -p "$OUT"
ROWS=${ROWS:-"32/8/128/16/8/511 64/8/128/16/8/511 16/16/64/32/8/511"}
VARIANTS=${VARIANTS:-"64/2/1/2 64/2/1/3 128/2/1/2 128/2/1/3 128/2/1/4 128/4/1/3 256/2/1/3 256/2/1/4 256/4/1/3 512/2/1/4 512/4/1/3"}
for row in $ROWS; do
  for v in $VARIANTS; do
    for b in ${BUILDS:-bin}; do
      [ -x .carry/$b/cuda_attn_check ] || continue
      r=$(timeout 60 .carry/$b/cuda_attn_check --equal --only "$row" --variant "$v" 2>&1 | grep -E "^  H=|refuse|failed" | tail -1 | sed 's/.*partition/partition/')
      echo "$row $v $b: $r"
    done
  done
done | tee "$OUT/ring_probe.txt"
