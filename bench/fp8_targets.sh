#!/usr/bin/env bash
# moetune's fp8 targets on one GPU, in one call.
#  1. test_backend_ops on cuda:0 (every family and dtype, fp8 included, against
#     the float64 device oracle);
#  2. cuda_fp8_check: every fp8 scheme at several tiles and the GEMV path
#     against the CPU's fp8 oracle, the runtime's fp8 entry point, and --time
#     (fp8 against bf16 with one tile);
#  3. bench/fp8_peer.py: the dense fp8 ceiling (cuBLASLt) and the peer pipeline
#     on torch._scaled_grouped_mm at M = 1 .. 4096;
#  4. the tuned pipelines through the tuner: per shape, an fp8 sweep in the
#     target's scheme and a bf16 sweep of the same shape, at the same M;
#  ab (asked by name): the M = 1 (GEMV) timing rows of an older build
#     (.carry/old/cuda_fp8_check) and of this one, alternately.
# Usage (device machine, repository root): OUT=... bench/fp8_targets.sh
#   PARTS="ops check peer sweep" (default all), BUDGET (variants per M, 10),
#   SWEEP_TIME (seconds of proposing per sweep, 40), SHAPES (of deepseek-v3-tp8
#   qwen3-30b-a3b mixtral-tp2; default all).
# Expects .carry/bin/{test_backend_ops,cuda_fp8_check,moetune} and libcjson in .carry/lib.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/mt_out}
PARTS=${PARTS:-ops check peer sweep}
MS=${MS:-1,8,64,256,1024,4096}
mkdir -p "$OUT"
log() { echo "== $(date -u +%T) $*"; }
has() { [[ " $PARTS " == *" $1 "* ]]; }
log "start"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
if has ops; then
  log "test_backend_ops --device cuda:0 --configs 2"
  timeout 120 .carry/bin/test_backend_ops --device cuda:0 --configs 2 >"$OUT/backend_ops.txt" 2>&1
  echo "rc=$?"; grep -v "^  ok" "$OUT/backend_ops.txt" | tail -n 12
fi
# ab: the fp8 small-batch (GEMV) rows at M = 1, an older build's kernels
# (.carry/old/cuda_fp8_check) against this one's, alternately, twice each
if has ab && [ -x .carry/old/cuda_fp8_check ]; then
  for i in 1 2; do
    for b in old bin; do
      log "cuda_fp8_check --time (M = 1 rows) .carry/$b, round $i"
      FP8_FROM=4 FP8_TIME_M=1 timeout 120 .carry/$b/cuda_fp8_check --time >"$OUT/ab-$b-$i.txt" 2>&1
      echo "rc=$?"; grep "^| .* | 1 |" "$OUT/ab-$b-$i.txt"
    done
  done
fi
if has check; then
  log "cuda_fp8_check --time"
  timeout 300 stdbuf -oL .carry/bin/cuda_fp8_check --time >"$OUT/fp8_check.txt" 2>&1
  echo "rc=$?"; grep -v "| ok |$" "$OUT/fp8_check.txt" | tail -n 40
fi
if has peer; then
  log "fp8_peer.py --batches $MS"
  timeout 120 python3 bench/fp8_peer.py --batches "$MS" >"$OUT/fp8_peer.txt" 2>&1
  echo "rc=$?"; cat "$OUT/fp8_peer.txt"
fi
if has sweep; then
  # the three target shapes: name, the preset's arguments, the fp8 scheme's
  for row in "deepseek-v3-tp8|--model deepseek-v3 --tp 8|--block-shape 128,128" \
             "qwen3-30b-a3b|--model qwen3-30b-a3b|--block-shape 128,128" \
             "mixtral-tp2|--model mixtral-8x7b --tp 2|"; do
    IFS='|' read -r name prob scheme <<<"$row"
    [[ " ${SHAPES:-$name} " == *" $name "* ]] || continue
    for dt in fp8 bf16; do
      if [ $dt = fp8 ]; then args="--dtype fp8_w8a8 $scheme"; else args="--dtype bf16"; fi
      log "sweep $name $dt: $prob $args"
      /usr/bin/time -f "wall %e s" timeout $(( ${SWEEP_TIME:-40} + 60 )) stdbuf -oL .carry/bin/moetune sweep --device cuda:0 \
        $prob $args --batch-sizes "$MS" --budget "${BUDGET:-10}" --time "${SWEEP_TIME:-40}s" --finalists 2 \
        --db "$OUT/targets.db" --out "$OUT/configs" --quiet >"$OUT/sweep-$name-$dt.txt" 2>&1
      echo "rc=$?"; grep -v "^moetune sweep: [0-9]* of" "$OUT/sweep-$name-$dt.txt" | tail -n 10
    done
  done
fi
log "end"
if [ -f "$OUT/targets.db" ]; then
  log "the device's stored ceilings"
  python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print(r) for r in c.execute("select name, bandwidth_gbs, peak_gflops, peak_fp8_gflops from devices")]' "$OUT/targets.db"
fi
python3 bench/fp8_table.py "$OUT" 2>&1 | tee "$OUT/table.md"
