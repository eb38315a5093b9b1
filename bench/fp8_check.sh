#!/usr/bin/env bash
# moetune's fp8 CUDA kernels on a GPU, in one call: test_backend_ops on
# cuda:0 (every family and dtype of the GPU kernels, against the float64
# device oracle), then bench/cuda_fp8_check: every fp8 scheme at several
# tiles against the CPU's fp8 oracle, and --time: fp8 against bf16 with the
# same tile on Mixtral TP2, Qwen3-30B-A3B and DeepSeek-V3 TP8 shapes; then a
# sweep of the fp8 kernel through the tuner, and bench/fp8_peer.py: the same
# pipeline on torch._scaled_grouped_mm.
# Usage (device machine, repository root): OUT=... bench/fp8_check.sh
# Expects .carry/bin/{test_backend_ops,cuda_fp8_check,moetune} and libcjson in .carry/lib.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
OUT=${OUT:-/tmp/mt_out}
mkdir -p "$OUT"
log() { echo "== $*"; }
log "$(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
log "test_backend_ops --device cuda:0 --configs ${CONFIGS:-3}"
timeout 200 .carry/bin/test_backend_ops --device cuda:0 --configs ${CONFIGS:-3} >"$OUT/backend_ops.txt" 2>&1
echo "rc=$?"; grep -v "^  ok" "$OUT/backend_ops.txt" | tail -n 20
log "cuda_fp8_check --time"
timeout 400 stdbuf -oL .carry/bin/cuda_fp8_check --time 2>&1 | tee "$OUT/fp8_check.txt" | tail -n 120
echo "rc=${PIPESTATUS[0]}"
# a sweep of moetune's fp8 CUDA kernel through the whole tuner: Qwen3-30B-A3B's
# FP8 checkpoint (128x128 blocks) at two batch sizes, every variant checked
# against the device's fp8 oracle
log "sweep --device cuda:0 --model qwen3-30b-a3b-fp8 --batch-sizes 8,256 --budget ${BUDGET:-12}"
/usr/bin/time -f "wall %e s" timeout 300 .carry/bin/moetune sweep --device cuda:0 --db "$OUT/fp8-sweep.db" \
  --model qwen3-30b-a3b-fp8 --batch-sizes 8,256 --budget "${BUDGET:-12}" --out "$OUT/fp8-configs" >"$OUT/fp8-sweep.txt" 2>&1
echo "rc=$?"; grep -v "^moetune sweep: [0-9]* of" "$OUT/fp8-sweep.txt" | tail -n 20
# the peer: the same pipeline on torch._scaled_grouped_mm (row-wise scales)
log "fp8_peer.py"
timeout 300 python3 bench/fp8_peer.py 2>&1 | tee "$OUT/fp8_peer.txt" | tail -n 30
echo "rc=${PIPESTATUS[0]}"
