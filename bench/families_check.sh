#!/usr/bin/env bash
# The kernel-family interface on a GPU, in one call:
#  1. the cross-backend check (tests/test_backend_ops) on cuda:0, both
#     families, every dtype the GPU kernels take, correctness then --perf;
#  2. the runtime's GPU entry points (bench/cuda_runtime_check), checked;
#  3. old and new builds timed on one fused-MoE row and one attention row,
#     alternated ROUNDS times with fresh databases, each row's config fixed
#     (MoE: --only the point; attention: the grid's first point, the
#     default), every variant checked against the float64 reference.
# Usage (device machine, repository root): OUT=... [ROUNDS=3] bench/families_check.sh
# Expects .carry/bin/{moetune,test_backend_ops,cuda_runtime_check} (new), .carry/old/moetune
# (the baseline) and libcjson in .carry/lib.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
OUT=${OUT:-/tmp/mt_out}
mkdir -p "$OUT"
log() { echo "== $*"; }
log "$(date -u +%FT%TZ) commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
log "test_backend_ops --device cuda:0"
/usr/bin/time -f "wall %e s" .carry/bin/test_backend_ops --device cuda:0 --configs ${CONFIGS:-6} >"$OUT/backend_ops.txt" 2>&1
echo "rc=$?"; grep -v "^  ok" "$OUT/backend_ops.txt"; grep -c "^  ok" "$OUT/backend_ops.txt"
log "test_backend_ops --device cuda:0 --perf --configs 2"
.carry/bin/test_backend_ops --device cuda:0 --perf --configs 2 >"$OUT/backend_ops_perf.txt" 2>&1; echo "rc=$?"
tail -n 3 "$OUT/backend_ops_perf.txt"
log "test_backend_ops --device cuda:0 --fault nan (every case must fail)"
.carry/bin/test_backend_ops --device cuda:0 --fault nan --configs 2 2>&1 | tail -n 1
# the runtime as an engine calls it (mt_fused_moe_cuda and
# mt_attention_decode_cuda, their variants built and launched through the
# families' backend tables), checked against the float64 references
if [ -x .carry/bin/cuda_runtime_check ]; then
  log "cuda_runtime_check configs"
  timeout 240 .carry/bin/cuda_runtime_check configs >"$OUT/runtime_check.txt" 2>&1
  echo "rc=$?"; tail -n 12 "$OUT/runtime_check.txt"
fi
# the rows: mixtral-8x7b TP2 at M = 256 with its tuned point, and attention
# H=32 H_kv=8 D=128 page 16 at batch 8, context 4096 with the default
MOE_ONLY=BLOCK_SIZE_M=128,BLOCK_SIZE_N=64,BLOCK_SIZE_K=64,GROUP_SIZE_M=1,num_warps=8,num_stages=5,NUM_SM=0,GEMV=0
for round in $(seq 1 "${ROUNDS:-3}"); do
  for b in old bin; do
    db=$OUT/ab-$b-$round.db
    log "round $round, build $b"
    .carry/$b/moetune sweep --device cuda:0 --db "$db" --no-export --quiet --model mixtral-8x7b --tp 2 \
      --batch-sizes 256 --budget 1 --finalists 0 --compile-jobs 0 --only "$MOE_ONLY" >"$OUT/ab-last.txt" 2>&1 ||
      { echo "moe sweep failed ($b):"; tail -n 5 "$OUT/ab-last.txt"; }
    .carry/$b/moetune sweep --kernel attention --device cuda:0 --db "$db" --no-export --quiet --heads 32 --kv-heads 8 \
      --head-dim 128 --page-size 16 --batch-sizes 8 --contexts 4096 --strategy grid --budget 1 --compile-jobs 0 \
      >"$OUT/ab-last.txt" 2>&1 || { echo "attention sweep failed ($b):"; tail -n 5 "$OUT/ab-last.txt"; }
  done
done
python3 - "$OUT" "${ROUNDS:-3}" <<'PY'
import sqlite3, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
res = {}
for r in range(1, rounds + 1):
    for b in ("old", "bin"):
        c = sqlite3.connect("%s/ab-%s-%d.db" % (out, b, r))
        tables = {t for (t,) in c.execute("select name from sqlite_master where type='table'")}
        # the MoE row: the fused_moe problem's measurement (both schemas)
        for t, st in c.execute("select m.median_us, m.status from measurements m join problems p on p.id = m.problem_id "
                               "where p.kernel = 'fused_moe'"):
            res.setdefault("fused_moe mixtral-8x7b tp2 M=256", {}).setdefault(b, []).append(t if st == "ok" else None)
        # the attention row: attn_measurements before schema 8, measurements after
        q = ("select median_us, status from attn_measurements" if "attn_measurements" in tables else
             "select m.median_us, m.status from measurements m join problems p on p.id = m.problem_id "
             "where p.kernel = 'attn_decode'")
        for t, st in c.execute(q):
            res.setdefault("attn_decode 32/8/128/16 B=8 ctx=4096", {}).setdefault(b, []).append(t if st == "ok" else None)
print("| row | old us (rounds) | new us (rounds) | new / old (medians) |")
print("| --- | --- | --- | --- |")
f = lambda xs: " ".join("%.2f" % x if x else "FAILED" for x in xs)
for k in sorted(res):
    o, n = res[k].get("old", []), res[k].get("bin", [])
    ok = o and n and None not in o + n
    print("| %s | %s | %s | %s |" % (k, f(o), f(n), "%.3f" % (statistics.median(n) / statistics.median(o)) if ok else "-"))
PY
