#!/usr/bin/env bash
# Issue 9: the read ceiling of the KV cache's layouts against moetune's
# kernel and torch's SDPA on the same rows, in one call on the GPU machine.
# (1) bench/read_probe (built here with nvcc, carried in .carry/bin): every
# layout x load mechanism reading K and V only; (2) moetune's best variant of
# each row per layer of a decode step (cuda_attn_check --equal --layers 32);
# (3) torch's SDPA on the same shape's rows (bench/attn_sdpa.py --layers 32).
# Usage (device machine, repository root): OUT=dir bench/read_probe.sh
# PROBES: "B/HKV/CTX ..." for read_probe; ENTRIES: ROW@VARIANT as
# bench/attn_locality_probe.sh takes them; SDPA_SHAPES: LO:HI (empty: none).
# Built (here) with the rest when nvcc is found: cp build/read_probe .carry/bin/
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/read_probe}
mkdir -p "$OUT"
echo "== $(date -u +%FT%TZ) commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
for p in ${PROBES:-32/8/8192 32/8/2048 8/8/8192 8/32/2048}; do
  IFS=/ read -r b h c <<<"$p"
  echo "== read_probe $b $h $c"
  timeout 120 .carry/bin/read_probe "$b" "$h" "$c" 10 | tee "$OUT/read_probe_${b}_${h}_${c}.txt"
done
echo "== moetune per layer"
ENTRIES=${ENTRIES:-"64/8/128/16/32/8192@8192/2/1/2 64/8/128/16/32/2048@2048/2/1/2 64/8/128/16/8/8192@2048/2/1/2 32/32/128/16/8/2048@2048/2/1/2"}
for e in $ENTRIES; do
  row=${e%@*} v=${e#*@}
  r=$(timeout 120 .carry/bin/cuda_attn_check --equal --layers 32 --only "$row" --variant "$v" 2>&1 |
      grep -E "^    per layer|refuse|failed|rror" | tr '\n' ' ' | sed 's/  */ /g')
  echo "$row $v: $r"
done | tee "$OUT/moetune.txt"
if [ -n "${SDPA_SHAPES-1:2}" ]; then
  echo "== SDPA"
  timeout 300 python3 bench/attn_sdpa.py --layers 32 --shapes "${SDPA_SHAPES-1:2}" | tee "$OUT/sdpa.txt"
fi
