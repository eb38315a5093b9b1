#!/usr/bin/env bash
# Issue 9: a kernel change checked and timed against the build before it, in
# one call. (1) Every variant of the table's shapes checked against the
# float64 reference with the new build (cuda_attn_check --check-only, its
# variants compiled ahead in JOBS processes; CHECK=0 skips it). (2) Chosen
# rows' variants (ENTRIES, as attn_locality_probe.sh takes them) timed with
# each build of BUILDS in turn (one launch per graph and per layer of a
# decode step). Session 11 compared this way the ring's rows by bulk copies
# (bench/results/2026-11-24-h100-attn, calls 34 and 35; not kept).
# CHECK_ARGS: more cuda_attn_check options for (1) (--shapes, --query-split);
# ARGS: for (2) (--in-order); SDPA=LO:HI: (3) SDPA per layer on those shapes
# in the same call (bench/attn_sdpa.py --layers 32); NCU="ROW@VARIANT ...":
# (4) Nsight Compute (speed of light, warp state, memory, occupancy) on those
# variants with each build of BUILDS once (one partial-kernel launch after a
# warm-up one).
# Usage (device machine, repository root): OUT=dir bench/attn_ab_run.sh
# Expects .carry/bin (this build), .carry/old (the build before), .carry/lib.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
OUT=${OUT:-/tmp/bulk_run}
mkdir -p "$OUT"
echo "== $(date -u +%FT%TZ) commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
if [ "${CHECK:-1}" = 1 ]; then
  s=$(date +%s)
  timeout ${CHECK_LIMIT:-240} .carry/bin/cuda_attn_check --check-only --compile-jobs ${JOBS:-16} ${CHECK_ARGS:-} >"$OUT/check.txt" 2>&1
  echo "check rc=$? in $(( $(date +%s) - s )) s: $(grep -E 'compiled ahead' "$OUT/check.txt" | tr '\n' ' ')"
  grep -E "variants checked" "$OUT/check.txt"
  echo "ring variants ok: $(grep -c 'ring[0-9]: ok' "$OUT/check.txt"), not ok: $(grep '^  H=.* mma ring' "$OUT/check.txt" | grep -vc ': ok')"
  grep '^  H=.* mma' "$OUT/check.txt" | grep -v ': ok' | head -8
fi
OUT=$OUT ENTRIES=${ENTRIES:-"64/8/128/16/32/8192@8192/2/1/2 64/8/128/16/32/8192@8192/4/1/2
  64/8/128/16/32/2048@2048/2/1/2 32/8/128/16/32/8192@8192/2/1/2 16/16/64/32/32/8192@8192/2/1/2
  8/1/256/16/32/8192@1024/2/1/2 64/8/128/16/8/8192@2048/2/1/2 32/8/128/16/8/2048@512/2/1/2
  64/8/128/16/8/511@128/2/1/2 32/32/128/16/8/2048@1024/4/1/2"} BUILDS=${BUILDS:-"old bin old bin"} \
  timeout ${PROBE_LIMIT:-300} bash bench/attn_locality_probe.sh >/dev/null 2>&1
echo "probe rc=$?"
if [ -n "${SDPA:-}" ]; then
  timeout 200 python3 bench/attn_sdpa.py --layers 32 --shapes "$SDPA" >"$OUT/sdpa.txt" 2>&1
  echo "sdpa rc=$?"
fi
for p in ${NCU:-}; do
  row=${p%@*} var=${p#*@}
  for b in $(printf '%s\n' ${BUILDS:-old bin} | awk '!seen[$0]++'); do
    tag=${b}_${row//\//_}_${var//\//_}
    timeout 120 ncu --clock-control none -k regex:attn_partial --launch-skip 1 --launch-count 1 \
      --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section Occupancy \
      -o "$OUT/ncu_$tag" -f .carry/$b/cuda_attn_check --equal --reps 2 ${ARGS:-} --only "$row" --variant "$var" \
      >"$OUT/ncu_$tag.log" 2>&1
    ncu -i "$OUT/ncu_$tag.ncu-rep" --page details >"$OUT/ncu_$tag.txt" 2>&1
    echo "== ncu $b $row $var: $(grep -E '^ +(Duration|DRAM Throughput|Registers Per Thread|Warp Cycles Per Issued Instruction) ' "$OUT/ncu_$tag.txt" | sed 's/  */ /g' | tr '\n' ';')"
  done
done >"$OUT/ncu_summary.txt"
cat "$OUT/locality_probe.txt"
cat "$OUT/ncu_summary.txt"
[ -f "$OUT/sdpa.txt" ] && cat "$OUT/sdpa.txt"
