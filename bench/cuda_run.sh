#!/usr/bin/env bash
# One call on the GPU machine: device facts, then sweeps that check every
# variant against the float64 oracle and time it, then the tables.
# Usage (device machine, repository root): bench/cuda_run.sh MODE [MODE...]
# (modes run in turn on one database; see the case below)
# Expects the binary built here in .carry/bin and libcjson in .carry/lib.
set -uo pipefail
cd "$(dirname "$0")/.."
modes=${*:-smoke}
MT=${MT:-$PWD/.carry/bin/moetune}
OUT=${OUT:-/tmp/mt_out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
DB=$OUT/gpu.db
# a database carried in (.carry/gpu.db) continues where an earlier call stopped
[ -f "$PWD/.carry/gpu.db" ] && cp "$PWD/.carry/gpu.db" "$DB"
[ -f "$PWD/.carry/gpu.db.gz" ] && gunzip -c "$PWD/.carry/gpu.db.gz" >"$DB"
log() { echo "== $*"; }
log "$(date -u +%FT%TZ) modes=$modes commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
"$MT" devices
sweep() { log "sweep $*"; /usr/bin/time -f "wall %e s" "$MT" sweep --device cuda:0 --db "$DB" --out "$OUT/configs" --quiet "$@" >"$OUT/last.txt" 2>&1; rc=$?; tail -n 30 "$OUT/last.txt"; echo "rc=$rc"; }
for mode in $modes; do
log "mode $mode"
case $mode in
smoke)
  sweep --experts 16 --intermediate 512 --hidden 1024 --topk 2 --batch-sizes 1,37,256 --budget 6
  sweep --model qwen3-30b-a3b --batch-sizes 1,64,1024 --budget 4
  ;;
full)
  # vLLM's 18 batch sizes (the default when none are given)
  sweep --model qwen3-30b-a3b --budget ${BUDGET:-24}
  sweep --model mixtral-8x7b --tp 2 --budget ${BUDGET:-24}
  ;;
fullgrid)
  # every valid config at every batch size (vLLM's 18 unless MS is set), for
  # replaying strategies offline; the kernels are compiled first, in parallel
  log "moetune compile --device cuda:0"
  /usr/bin/time -f "compile wall %e s" "$MT" compile --device cuda:0 --quiet; echo "rc=$?"
  # MODELS: NAME or NAME@TP, in turn, all within TIME seconds together
  end=$(( $(date +%s) + ${TIME:-480} ))
  for m in ${MODELS:-qwen3-30b-a3b}; do
    name=${m%%@*}; tp=${m#*@}; [ "$tp" = "$m" ] && tp=
    left=$(( end - $(date +%s) )); [ $left -gt 5 ] || break
    sweep --model $name ${tp:+--tp $tp} ${MS:+--batch-sizes $MS} --strategy grid --time ${left}s --no-export --finalists 0 ${ABORT:+--abort-factor $ABORT}
  done
  python3 - "$DB" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print("measurements per problem and M (ok / all), and the rate:")
for p in c.execute("select id, E, N, K, topk from problems").fetchall():
    rows = c.execute("select M, sum(status='ok'), count(*) from measurements where problem_id=? group by M order by M", (p[0],)).fetchall()
    if rows: print(" E=%d N=%d K=%d top%d:" % p[1:], " ".join("%d:%d/%d" % r for r in rows))
for r in c.execute("select sweep_id, count(*), (julianday(max(created_at)) - julianday(min(created_at))) * 86400 "
                   "from measurements group by sweep_id order by sweep_id"):
    print("sweep %d: %d measurements in %.0f s, %.1f ms each" % (r[0], r[1], r[2] or 0, 1e3 * (r[2] or 0) / r[1]))
PY
  "$MT" export --db "$DB" --out "$OUT/grid" --format grid >/dev/null && ls "$OUT/grid"
  ;;
bayes)
  # a full tune of one shape over vLLM's 18 batch sizes with the Bayesian search, timed
  /usr/bin/time -f "full tune wall %e s" "$MT" sweep --device cuda:0 --db "$DB" --out "$OUT/configs" --quiet \
    --model ${MODEL:-mixtral-8x7b} --tp ${TP:-2} --strategy bayes --budget ${BUDGET:-40} | tail -22
  ;;
sidebyside)
  # issue 5's live check: full tunes of the two recorded grids' shapes with
  # the Bayesian search at 5 % of each batch size's points (a fresh database:
  # nothing to warm-start from), timed; then the grids' best configs and the
  # tunes' picks measured again side by side (bench/sidebyside.py)
  log "moetune compile --device cuda:0"
  /usr/bin/time -f "compile wall %e s" "$MT" compile --device cuda:0 --quiet; echo "rc=$?"
  for m in qwen3-30b-a3b@ mixtral-8x7b@8; do
    name=${m%%@*}; tp=${m#*@}
    log "full tune $name ${tp:+tp $tp}: bayes, budget ${BUDGET:-5%}"
    /usr/bin/time -f "full tune wall %e s" "$MT" sweep --device cuda:0 --db "$OUT/bayes.db" --out "$OUT/configs" --quiet \
      --model $name ${tp:+--tp $tp} --strategy bayes --budget ${BUDGET:-5%} --compile-jobs 0 >"$OUT/tune_$name.txt" 2>&1
    echo "rc=$?"; tail -n 22 "$OUT/tune_$name.txt"
  done
  sqlite3 "$OUT/bayes.db" "select id, strategy, started_at, finished_at, status from sweeps" 2>/dev/null ||
    python3 -c 'import sqlite3,sys; [print(r) for r in sqlite3.connect(sys.argv[1]).execute("select id, strategy, started_at, finished_at, status from sweeps")]' "$OUT/bayes.db"
  for g in "qwen3-30b-a3b-18M 128,768,2048,8" "mixtral-8x7b-tp8-18M 8,1792,4096,2"; do
    set -- $g
    log "side by side $1"
    python3 bench/sidebyside.py --moetune "$MT" --grid bench/data/h100-$1.grid.csv --shape $2 --db "$OUT/bayes.db" \
      --top ${TOP:-12} --rounds ${ROUNDS:-5} --csv "$OUT/sbs_$1.csv" 2>"$OUT/sbs_$1.log" | tee "$OUT/sbs_$1.md"
  done
  cp "$OUT/bayes.db" "$DB"
  ;;
daemon2)
  # issue 6 on a machine with two GPUs (nvidia-h200-x2): the daemon runs two
  # jobs at once, one sweep per GPU; nvidia-smi is sampled every second to
  # show both busy and which process ran where
  # (COMPILE=0 skips filling the kernel cache first; MS picks batch sizes)
  if [ "${COMPILE:-1}" = 1 ]; then log "moetune compile --device cuda:0"; "$MT" compile --device cuda:0 --quiet; echo "rc=$?"; fi
  DBD=$OUT/daemon.db
  "$MT" submit --db "$DBD" --device cuda --model qwen3-30b-a3b --strategy bayes --budget ${BUDGET:-5%} ${MS:+--batch-sizes $MS} --no-export
  "$MT" submit --db "$DBD" --device cuda --model mixtral-8x7b --tp 8 --strategy bayes --budget ${BUDGET:-5%} ${MS:+--batch-sizes $MS} --no-export
  (while sleep 1; do
     nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used,pci.bus_id --format=csv,noheader | sed 's/^/gpu, /'
     nvidia-smi --query-compute-apps=pid,gpu_bus_id,used_memory --format=csv,noheader | sed 's/^/app, /'
   done) >"$OUT/smi.txt" 2>&1 &
  smi=$!
  /usr/bin/time -f "daemon wall %e s" "$MT" daemon --db "$DBD" --until-idle --log "$OUT/daemon.log"; echo "rc=$?"
  kill $smi 2>/dev/null
  cat "$OUT/daemon.log"
  "$MT" status --db "$DBD"
  python3 - "$DBD" "$OUT/smi.txt" <<'PY'
import sqlite3, sys, collections
c = sqlite3.connect(sys.argv[1])
jobs = c.execute("select id, status, assigned_device, started_at, finished_at, done, total from jobs order by id").fetchall()
for j in jobs: print("job %d %s on %s, %s .. %s, %d/%d variants" % j)
a, b = jobs[0], jobs[1]
print("the two jobs overlapped in time:", a[3] < b[4] and b[3] < a[4], "; on different GPUs:", a[2] != b[2])
for r in c.execute("select s.id, s.command, count(m.id) from sweeps s left join measurements m on m.sweep_id = s.id group by s.id"):
    print("sweep %d: %d measurements: %s" % (r[0], r[2], r[1]))
# one sample is a pair of lines (one per GPU) a few ms apart: key it by its
# second, not by the full timestamp (which differs between the two lines)
busy = collections.defaultdict(set)
span = {}
t = None
for line in open(sys.argv[2]):
    f = [x.strip() for x in line.split(",")]
    if f[0] == "gpu" and len(f) >= 4:
        t = f[1][:19]
        if f[3].split()[0].isdigit() and int(f[3].split()[0]) > 0: busy[t].add(f[2])
    elif f[0] == "app" and len(f) >= 3 and t:
        k = (f[1], f[2]); span.setdefault(k, [t, t])[1] = t
both = [t for t in busy if len(busy[t]) == 2]
print("seconds sampled with both GPUs busy:", len(both), "of", len(busy), "with any busy")
for (pid, bus), (t0, t1) in sorted(span.items(), key=lambda kv: kv[0][1]):
    print("process %s on GPU %s seen %s .. %s" % (pid, bus, t0[11:], t1[11:]))
PY
  cp "$DBD" "$DB"
  ;;
attn)
  # issue 9: the paged attention decode kernels against the double reference,
  # then timed against the KV-read floor (bench/cuda_attn_check.c)
  log "cuda_attn_check"
  # SHAPES=LO:HI: the table's shapes LO..HI only (the full table in two calls
  # of the 10-minute limit; SDPA=0 in all but one)
  # (CHECK_ONLY=1: the unequal-length pass checks the rows with a reference, untimed)
  # (JOBS=N: every variant compiled first by N processes at once; the
  # second run finds them in the cache. Not yet run on the GPU: session 10
  # ran out of device time)
  # (QSPLIT=1,2,4: the ring's variants with each split of a KV head's queries, as the tuner offers them)
  # (CHECK=0: no unequal-length pass, the equal rows only)
  [ "${CHECK:-1}" = 0 ] || "$PWD/.carry/bin/cuda_attn_check" ${QUICK:+--quick} ${SHAPES:+--shapes $SHAPES} ${QSPLIT:+--query-split $QSPLIT} ${CHECK_ONLY:+--check-only} ${JOBS:+--compile-jobs $JOBS} | tee "$OUT/attn.txt"; echo "rc=$?"
  # the same rows with equal lengths, against torch's SDPA (issue 9's target)
  # (LAYERS=N: also per layer of a decode step's graph of N launches, each
  # over its own layer's KV cache, for both moetune and SDPA)
  # (IN_ORDER=1: each sequence's pages in order instead of shuffled, the
  # layout SDPA's dense cache has; JOBS again: with CHECK=0 this pass compiles)
  "$PWD/.carry/bin/cuda_attn_check" ${QUICK:+--quick} ${SHAPES:+--shapes $SHAPES} ${QSPLIT:+--query-split $QSPLIT} ${LAYERS:+--layers $LAYERS} ${IN_ORDER:+--in-order} ${JOBS:+--compile-jobs $JOBS} --equal >"$OUT/attn_equal.txt"; echo "rc=$?"
  # SDPA=0 skips torch's rows (they do not change with moetune's kernel)
  [ "${SDPA:-1}" = 0 ] || python3 bench/attn_sdpa.py ${QUICK:+--quick} ${SHAPES:+--shapes $SHAPES} ${LAYERS:+--layers $LAYERS} | tee "$OUT/sdpa.txt"
  tail -n 40 "$OUT/attn_equal.txt"
  # the targets: moetune against SDPA and the floor, row by row
  [ "${SDPA:-1}" = 0 ] || python3 bench/attn_targets.py "$OUT/attn_equal.txt" "$OUT/sdpa.txt" | tee "$OUT/targets.txt"
  ;;
attnsweep)
  # issue 9: attention sweeps on the GPU through moetune's worker (checked
  # against the double reference, L2 flushed, stored, exported); a grid
  # of every valid (partition, warps) per (batch, context)
  # ASHAPES: "H Hkv D page" entries separated by commas
  IFS=, read -ra shapes <<<"${ASHAPES:-32 8 128 16,64 8 128 16,8 1 256 16}"
  for sh in "${shapes[@]}"; do
    set -- $sh
    log "sweep --kernel attention H=$1 Hkv=$2 D=$3 page=$4"
    /usr/bin/time -f "wall %e s" "$MT" sweep --kernel attention --device cuda:0 --db "$DB" --out "$OUT/configs" --quiet \
      --heads $1 --kv-heads $2 --head-dim $3 --page-size $4 --batch-sizes ${ABS:-1,8,32} --contexts ${ACTX:-512,2048,8192} \
      --strategy grid >"$OUT/attn_$1_$2_$3.txt" 2>&1; echo "rc=$?"; tail -n 14 "$OUT/attn_$1_$2_$3.txt"
  done
  ;;
runtime)
  # libmoetune as an engine calls it: mt_fused_moe_cuda with the bundled configs
  log "cuda_runtime_check configs"
  "$PWD/.carry/bin/cuda_runtime_check" "$PWD/configs"; echo "rc=$?"
  ;;
auto)
  # the main job as a user types it: the device picked automatically
  log "moetune sweep --device auto --model mixtral-8x7b --tp 2 --batch-sizes 1,64 --budget 6"
  "$MT" sweep --device auto --db "$DB" --out "$OUT/configs" --model mixtral-8x7b --tp 2 --batch-sizes 1,64 --budget 6
  echo "rc=$?"; ls "$OUT/configs"
  ;;
gemv)
  # issue 8: the small-batch path (GEMV=1: two kernels, no tiles) against the
  # tiled path at the same batch sizes, same run: each model's sweep over the
  # tiled points (GEMV=0, BUDGET of them), then every GEMV point; every
  # variant checked against the float64 oracle as always. Then the best of
  # each path per problem and M, and the targets table.
  for m in ${MODELS:-mixtral-8x7b@1 mixtral-8x7b@2 qwen3-30b-a3b@1 deepseek-v3@8}; do
    name=${m%%@*}; tp=${m#*@}
    sweep --model $name --tp $tp --batch-sizes ${MS:-1,8} --budget ${BUDGET:-10%} --only GEMV=0
    sweep --model $name --tp $tp --batch-sizes ${MS:-1,8} --strategy grid --only GEMV=1
  done
  python3 - "$DB" <<'PY' | tee "$OUT/gemv.txt"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print("| E | N | K | topk | M | tiled best us | GEMV best us | GEMV / tiled | checked ok / failed |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for pid, E, N, K, topk in c.execute("select id, E, N, K, topk from problems order by id").fetchall():
    for (M,) in c.execute("select distinct M from measurements where problem_id=? order by M", (pid,)).fetchall():
        best = {}
        for g in (0, 1):
            r = c.execute("select min(m.median_us), count(*) from measurements m "
                          "join configs f on f.id=m.config_id where m.problem_id=? and m.M=? and m.status='ok' "
                          "and coalesce(json_extract(f.params,'$.GEMV'),0)=?", (pid, M, g)).fetchone()
            best[g] = r
        bad = c.execute("select count(*) from measurements where problem_id=? and M=? and status='failed'", (pid, M)).fetchone()[0]
        t, g = best[0][0], best[1][0]
        print("| %d | %d | %d | %d | %d | %s | %s | %s | %d / %d |" % (E, N, K, topk, M, "%.1f" % t if t else "-",
              "%.1f" % g if g else "-", "%.2f" % (g / t) if t and g else "-", (best[0][1] or 0) + (best[1][1] or 0), bad))
PY
  python3 bench/targets_table.py "$DB" | tee "$OUT/targets.md"
  ;;
targets)
  # TARGETS.md's shapes and batch sizes
  for m in "--model mixtral-8x7b" "--model mixtral-8x7b --tp 2" "--model qwen3-30b-a3b" "--model deepseek-v3 --tp 8"; do
    sweep $m --batch-sizes 1,8,64,256,1024,4096 --budget ${BUDGET:-40}
  done
  ;;
wgmma)
  # issue 8: Hopper's warpgroup MMA (tiles of 64-row blocks on sm_90a).
  # First a sample of a small shape's variants, each checked against the
  # float64 oracle; stop there if any failed. Then TARGETS.md's shapes at
  # the compute-heavy batch sizes (MS), and the same for AB (NAME@TP@M) with
  # ABENV (default MOETUNE_DEBUG_CUDA=no-wgmma, the mma.sync path) in the same run,
  # as the baseline. The smoke's batch sizes 1 and 4 split K.
  sweep --experts 16 --intermediate 512 --hidden 1024 --topk 2 --batch-sizes 1,4,37,256 --strategy random --budget 30 --no-export
  bad=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from measurements where status='failed'\").fetchone()[0])" "$DB")
  echo "failed after the smoke: $bad"
  if [ "$bad" = 0 ]; then
    for m in ${MODELS:-mixtral-8x7b@1 mixtral-8x7b@2 qwen3-30b-a3b@1}; do
      name=${m%%@*}; tp=${m#*@}
      sweep --model $name --tp $tp --batch-sizes ${MS:-256,1024,4096} --budget ${BUDGET:-40}
    done
    for ab in ${AB:-mixtral-8x7b@2@4096 qwen3-30b-a3b@1@4096}; do
      IFS=@ read -r name tp m <<<"$ab"
      log "baseline, ${ABENV:-MOETUNE_DEBUG_CUDA=no-wgmma}: $name tp $tp M=$m"
      env ${ABENV:-MOETUNE_DEBUG_CUDA=no-wgmma} "$MT" sweep --device cuda:0 --db "$OUT/mma.db" --no-export --quiet --model $name --tp $tp \
        --batch-sizes $m --budget ${BUDGET:-40} 2>&1 | tail -n 4
    done
    python3 bench/targets_table.py "$DB" | tee "$OUT/targets.md"
  fi
  ;;
hardening)
  # what a new user and a hostile input hit first, on a GPU: lookup picks the
  # GPU and serves what the sweep just wrote; a problem too large for the
  # GPU is refused with the need; a worker killed from outside is measured
  # again on the next run; a batch size with no verified variant fails
  log "lookup with no device named (before any sweep)"
  "$MT" lookup --experts 8 --intermediate 7168 --batch 100; echo "rc=$?"
  log "sweep into the default folder, then lookup"
  "$MT" sweep --device auto --db "$DB" --model mixtral-8x7b --tp 2 --batch-sizes 1,64 --budget 6 --compile-jobs 0 --quiet
  echo "rc=$?"
  "$MT" lookup --experts 8 --intermediate 7168 --hidden 4096 --topk 2 --batch 64; echo "rc=$?"
  log "a problem larger than the GPU"
  "$MT" sweep --device cuda:0 --db "$OUT/big.db" --experts 1024 --intermediate 16384 --hidden 8192 --topk 8 \
    --batch-sizes 1 --quiet; echo "rc=$?"
  "$MT" sweep --device cuda:0 --model deepseek-v3 --dry-run; echo "rc=$?"
  small=(--experts 16 --intermediate 512 --hidden 1024 --topk 2 --batch-sizes 37 --budget 8 --no-export --compile-jobs 0
         --strategy grid --finalists 0 --json --quiet)
  log "a worker killed from outside (SIGKILL), then the same sweep again"
  MOETUNE_TEST_FAULT='killed:"num_stages":3' "$MT" sweep --device cuda:0 --db "$OUT/killed.db" "${small[@]}" \
    >"$OUT/killed1.json"; echo "rc=$?"
  "$MT" sweep --device cuda:0 --db "$OUT/killed.db" "${small[@]}" >"$OUT/killed2.json"; echo "rc=$?"
  python3 - "$OUT/killed1.json" "$OUT/killed2.json" "$OUT/killed.db" <<'PY'
import json, sqlite3, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
print("first run: measured %d, failed %d; second: measured %d, retried %d, failed %d" %
      (a["measured"], a["failed"], b["measured"], b["retried"], b["failed"]))
c = sqlite3.connect(sys.argv[3])
print("failed rows left:", c.execute("select count(*) from measurements where status='failed'").fetchone()[0])
PY
  log "no variant passes at one batch size"
  MOETUNE_TEST_FAULT='nan:"num_warps"' "$MT" sweep --device cuda:0 --db "$OUT/nan.db" "${small[@]}" >"$OUT/nan.json"
  echo "rc=$?"; head -c 300 "$OUT/nan.json"; echo
  ;;
faults)
  # fault isolation on the GPU: each fault hits the variants whose parameters
  # contain the pattern; the others must pass and the sweep must finish
  small=(--experts 16 --intermediate 512 --hidden 1024 --topk 2 --batch-sizes 37 --budget 12 --no-export)
  for f in 'gpufault:"num_stages":2' 'crash:"num_stages":3' 'hang:"num_stages":4' 'nan:"num_stages":5'; do
    kind=${f%%:*}
    log "fault $f"
    MOETUNE_TEST_FAULT=$f "$MT" sweep --device cuda:0 --db "$OUT/fault_$kind.db" --quiet --timeout 10 --json "${small[@]}" \
      >"$OUT/fault_$kind.json" 2>"$OUT/fault_$kind.err"; echo "rc=$?"
    python3 - "$OUT/fault_$kind.db" "$f" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1]); pat = sys.argv[2].split(":", 1)[1]
rows = c.execute("select c.params, m.status, m.reason from measurements m join configs c on c.id = m.config_id").fetchall()
hit = [r for r in rows if pat in r[0]]
bad = [r for r in rows if (pat in r[0]) != (r[1] == "failed")]
print(f"{len(rows)} variants, {len(hit)} faulty, all faulty failed and all others passed: {not bad}")
for r in hit[:2]: print("  reason:", r[2])
for r in bad[:3]: print("  WRONG:", r)
PY
  done
  # chunking: M=4096 through a 1000-token workspace
  sweep --model qwen3-30b-a3b --batch-sizes 4096 --budget 4 --max-tokens 1000 --no-export
  ;;
esac
done
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
# at most 8 files come back, and names with '=' or ',' do not: pack the rest
# (files over 16 MiB do not come back: the database travels compressed)
(cd "$OUT" && tar czf /tmp/mt_run.tgz --exclude=gpu.db --exclude=show.txt . && \
  find . -mindepth 1 -maxdepth 1 ! -name gpu.db ! -name show.txt -exec rm -rf {} + && mv /tmp/mt_run.tgz run.tgz && \
  gzip -f gpu.db && ls -la)
