#!/usr/bin/env bash
# Issue 9: what holds the large decode rows under SDPA's bandwidth. Each
# ROW@VARIANT timed (cuda_attn_check --equal --layers 32: one launch per
# graph and per layer of a decode step) with each build of BUILDS in turn
# (folders of .carry: bin, old, ...: the build before and after a change).
# Session 10 (bench/results/2026-11-24-h100-attn, calls 25 and 26) compared
# this way thread block clusters of neighbouring KV heads (commit 9a907b4's
# MOETUNE_CUDA_ATTN_CLUSTER, removed after: slower) and the L2 fetching K
# and V rows whole (.L2::256B, kept).
# Usage (device machine, repository root): OUT=dir bench/attn_locality_probe.sh
# ENTRIES: H/HKV/D/PAGE/B/CTX@PART/WARPS/MMA/STAGE[/QSPLIT] ...; ARGS: more
# cuda_attn_check options (--in-order)
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/locality_probe}
mkdir -p "$OUT"
ENTRIES=${ENTRIES:-"64/8/128/16/32/8192@8192/2/1/2 64/8/128/16/32/8192@1024/4/1/0 32/8/128/16/32/8192@1024/2/1/0
  64/8/128/16/32/2048@2048/2/1/2 64/8/128/16/32/2048@1024/4/1/0 16/16/64/32/32/8192@1024/2/1/0
  64/8/128/16/8/511@128/2/1/2 32/8/128/16/8/2048@512/2/1/2"}
one() { # build, row, variant
  timeout 120 .carry/$1/cuda_attn_check --equal --layers 32 ${ARGS:-} --only "$2" --variant "$3" 2>&1 |
    grep -E "^  H=|^    per layer|refuse|failed|rror" | tr '\n' ' ' | sed 's/  */ /g; s/.*partition [0-9]* warps [0-9]*[a-z0-9 ]*: //'
}
for e in $ENTRIES; do
  row=${e%@*} v=${e#*@}
  for b in ${BUILDS:-old bin old bin}; do
    [ -x .carry/$b/cuda_attn_check ] && echo "$row $v $b: $(one "$b" "$row" "$v")"
  done
done | tee "$OUT/locality_probe.txt"
