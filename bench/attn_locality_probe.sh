#!/usr/bin/env bash
# Issue 9: what holds the large decode rows under SDPA's bandwidth. Each
# ROW@VARIANT timed (cuda_attn_check --equal --layers 32: one launch per
# graph and per layer of a decode step) as built (bin), with the blocks of
# neighbouring KV heads launched as clusters (bin, MOETUNE_CUDA_ATTN_CLUSTER=8:
# they run at once and read the same tokens' rows together), and with the
# L2 prefetching 256-byte lines on every cp.async (l2: a build whose
# tile_cuda.h says .L2::256B).
# Usage (device machine, repository root): OUT=dir bench/attn_locality_probe.sh
# ENTRIES: H/HKV/D/PAGE/B/CTX@PART/WARPS/MMA/STAGE ...
# CONFIGS: BUILD:CLUSTER ... (BUILD a folder of .carry: bin, old, l2; CLUSTER
# 0 for none), each entry timed under each in turn
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/locality_probe}
mkdir -p "$OUT"
ENTRIES=${ENTRIES:-"64/8/128/16/32/8192@8192/2/1/2 64/8/128/16/32/8192@1024/4/1/0 32/8/128/16/32/8192@1024/2/1/0
  64/8/128/16/32/2048@2048/2/1/2 64/8/128/16/32/2048@1024/4/1/0 16/16/64/32/32/8192@1024/2/1/0
  64/8/128/16/8/511@128/2/1/2 32/8/128/16/8/2048@512/2/1/2"}
one() { # build, cluster, row, variant
  MOETUNE_CUDA_ATTN_CLUSTER=$2 timeout 120 .carry/$1/cuda_attn_check --equal --layers 32 --only "$3" --variant "$4" 2>&1 |
    grep -E "^  H=|^    per layer|refuse|failed|rror" | tr '\n' ' ' | sed 's/  */ /g; s/.*partition [0-9]* warps [0-9]*[a-z0-9 ]*: //'
}
for e in $ENTRIES; do
  row=${e%@*} v=${e#*@}
  for c in ${CONFIGS:-bin:0 bin:8 l2:0 bin:0}; do
    b=${c%:*} n=${c#*:}
    [ -x .carry/$b/cuda_attn_check ] && echo "$row $v $b cluster $n: $(one "$b" "$n" "$row" "$v")"
  done
done | tee "$OUT/locality_probe.txt"
