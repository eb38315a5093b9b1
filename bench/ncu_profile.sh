#!/usr/bin/env bash
# Per-kernel profiles with Nsight Compute (present on the GPU machine): the
# first launches of a sweep's default config, clocks left as found
# (--clock-control none), the sections that say what bounds a kernel.
# Usage (device machine, repository root): bench/ncu_profile.sh > profile.txt
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
MT=$PWD/.carry/bin/moetune
OUT_ERR=${TMPDIR:-/tmp}/ncu_profile.err
prof() { # KERNEL_REGEX LAUNCHES TITLE -- moetune args
  local re=$1 n=$2 title=$3; shift 4
  echo "== $title"
  timeout 300 ncu --target-processes all --clock-control none -k "regex:$re" --launch-count "$n" --csv \
    --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \
    "$MT" "$@" 2>"$OUT_ERR" | python3 -c '
import csv, sys
keep = ("Duration", "Memory Throughput", "DRAM Throughput", "Compute (SM) Throughput", "Registers Per Thread",
        "Grid Size", "Block Size", "Achieved Occupancy", "Theoretical Occupancy", "Waves Per SM",
        "Warp Cycles Per Issued Instruction", "Avg. Active Threads Per Warp", "L2 Hit Rate", "Mem Busy", "Max Bandwidth",
        "Dynamic Shared Memory Per Block", "Block Limit Registers", "Block Limit Shared Mem")
rows = [r for r in csv.reader(sys.stdin) if len(r) > 14 and r[0] != "ID"]
seen = []
for r in rows:
    k = (r[0], r[4])
    if k not in seen: seen.append(k)
for k in seen:
    vals = {r[12]: (r[14], r[13]) for r in rows if (r[0], r[4]) == k and r[12] in keep}
    print("  launch %s %s: " % k + "; ".join("%s %s %s" % (m, v, u) for m, (v, u) in vals.items()))
'
  grep -E "ERROR|error" "$OUT_ERR" | head -3
}
prof "moe_" 4 "Qwen3-30B-A3B M=1, default config" -- sweep --device cuda:0 --db /tmp/p1.db --no-export --quiet \
  --model qwen3-30b-a3b --batch-sizes 1 --budget 1 --finalists 0 --compile-jobs 0
prof "moe_" 4 "Mixtral-8x7B TP2 M=4096, default config" -- sweep --device cuda:0 --db /tmp/p2.db --no-export --quiet \
  --model mixtral-8x7b --tp 2 --batch-sizes 4096 --budget 1 --finalists 0 --compile-jobs 0
prof "attn_" 2 "attention 32/8/128 page 16, B=1 ctx=2048, default config" -- sweep --kernel attention --device cuda:0 \
  --db /tmp/p3.db --no-export --quiet --heads 32 --kv-heads 8 --head-dim 128 --page-size 16 --batch-sizes 1 \
  --contexts 2048 --budget 1
