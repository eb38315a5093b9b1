#!/usr/bin/env bash
# One call on the GPU machine: device facts, then sweeps that check every
# variant against the float64 oracle and time it, then the tables.
# Usage (device machine, repository root): bench/cuda_run.sh smoke|full
# Expects the binary built here in .carry/bin and libcjson in .carry/lib.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-smoke}
MT=${MT:-$PWD/.carry/bin/moetune}
OUT=${OUT:-/tmp/mt_out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
DB=$OUT/gpu.db
log() { echo "== $*"; }
log "$(date -u +%FT%TZ) mode=$mode commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
"$MT" devices
sweep() { log "sweep $*"; /usr/bin/time -f "wall %e s" "$MT" sweep --device cuda:0 --db "$DB" --out "$OUT/configs" --quiet "$@" >"$OUT/last.txt" 2>&1; rc=$?; tail -n 30 "$OUT/last.txt"; echo "rc=$rc"; }
case $mode in
smoke)
  sweep --experts 16 --intermediate 512 --hidden 1024 --topk 2 --batch-sizes 1,37,256 --budget 6
  sweep --model qwen3-30b-a3b --batch-sizes 1,64,1024 --budget 4
  ;;
full)
  sweep --model qwen3-30b-a3b --batch-sizes 1,8,64,256,1024,4096 --budget ${BUDGET:-24}
  sweep --model mixtral-8x7b --tp 2 --batch-sizes 1,8,64,256,1024,4096 --budget ${BUDGET:-24}
  ;;
esac
log "failures by reason"
python3 - "$DB" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for row in c.execute("select substr(reason,1,120), count(*) from measurements where status='failed' group by 1 order by 2 desc limit 12"):
    print(row)
print("ok:", c.execute("select count(*) from measurements where status='ok'").fetchone()[0],
      "failed:", c.execute("select count(*) from measurements where status='failed'").fetchone()[0])
print("max rel err of ok rows:", c.execute("select max(rel_err) from measurements where status='ok'").fetchone()[0])
print(c.execute("select name, bandwidth_gbs, peak_gflops from devices").fetchall())
PY
"$MT" show --db "$DB" | tee "$OUT/show.txt"
# file names with '=' and ',' do not come back from the device machine: pack them
tar czf "$OUT/configs.tgz" -C "$OUT" configs 2>/dev/null && rm -rf "$OUT/configs"
