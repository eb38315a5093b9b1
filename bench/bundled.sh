#!/usr/bin/env bash
# The configs bundled with libmoetune (configs/), tuned on one GPU in one
# call with moetune's own CUDA kernels: vLLM's 18 batch sizes for each shape,
# every variant checked against the float64 oracle, into one database that
# comes back gzipped ($OUT/bundle.db.gz). Export them here, in moetune's
# format (every key, GEMV and NUM_SM included, and the kernel's hash):
#   gunzip -k bundle.db.gz && moetune export --db bundle.db --format moetune --out configs
# Usage (device machine, repository root):
#   OUT=... [SHAPES="mixtral-tp2 qwen3-30b-a3b mixtral-tp1"] [BUDGET=5%] [TIME=70] [DB_IN=FILE] bench/bundled.sh
# DB_IN: a database of an earlier run (carried, uncompressed) to go on from:
# the sweeps measure only what it lacks.
# Expects .carry/bin/moetune (built from the commit the files will name) and
# libcjson in .carry/lib.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
OUT=${OUT:-/tmp/mt_out}
mkdir -p "$OUT"
[ -n "${DB_IN:-}" ] && cp "$DB_IN" "$OUT/bundle.db"
log() { echo "== $(date -u +%T) $*"; }
log "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
for row in "mixtral-tp2|--model mixtral-8x7b --tp 2" "qwen3-30b-a3b|--model qwen3-30b-a3b" \
           "mixtral-tp1|--model mixtral-8x7b --tp 1"; do
  IFS='|' read -r name prob <<<"$row"
  [[ " ${SHAPES:-mixtral-tp2 qwen3-30b-a3b mixtral-tp1} " == *" $name "* ]] || continue
  log "sweep $name: $prob --strategy bayes --budget ${BUDGET:-5%} --time ${TIME:-70}"
  /usr/bin/time -f "wall %e s" timeout $(( ${TIME:-70} + 90 )) stdbuf -oL .carry/bin/moetune sweep --device cuda:0 \
    $prob --strategy bayes --budget "${BUDGET:-5%}" --time "${TIME:-70}" --db "$OUT/bundle.db" --no-export \
    >"$OUT/sweep-$name.txt" 2>&1
  echo "rc=$?"; grep -v "^moetune sweep: [0-9]* of" "$OUT/sweep-$name.txt" | tail -n 6
done
log "the picks (M: median us, fraction of the floor, config)"
python3 - "$OUT/bundle.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for pid, E, N, K in db.execute("select id, E, N, K from problems order by id"):
    print("E=%d N=%d K=%d" % (E, N, K))
    for M, t, eff, params in db.execute(
            "select m.M, min(m.median_us), m.efficiency, c.params from measurements m join configs c on c.id = m.config_id "
            "where m.problem_id = ? and m.status = 'ok' group by m.M order by m.M", (pid,)):
        print("  %5d %9.1f %5.2f %s" % (M, t, eff or 0, params))
PY
gzip -k "$OUT/bundle.db"
rm -f "$OUT/bundle.db"
