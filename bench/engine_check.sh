#!/usr/bin/env bash
# The engine worker on a GPU, in one call: vLLM's entry point (the test
# double's exact signature, tests/engines) computing with moetune's own
# Triton fused-MoE kernel (bench/triton_moe.py: vLLM's six parameters with
# vLLM's meaning), since the GPU machine has Triton but no vLLM.
#  1. the worker's e4m3 rounding against torch's float8_e4m3fn cast;
#  2. every dtype through the worker protocol, a few configs each, checked
#     against the float64 reference (status, error, time);
#  3. sweeps through `moetune sweep --engine vllm`: bf16 Mixtral-8x7B TP2 and
#     block-fp8 DeepSeek-V3 TP8 at BATCHES, the wall time and where it went
#     (the worker's summary: compiles, checks, timing), and the files;
#  4. (down) SGLang's down GEMM tuned on its own, its gain over the pinned
#     gate-up config alone;
#  5. (grid) the quality check against the full grid.
# Usage (device machine, repository root):
#   OUT=... [PARTS="probe bf16 fp8 down grid"] [DOWN_BATCHES=64,1024] [DOWN_TIME=120] [GRID_BATCHES=64,1024] [GRID_TIMEOUT=400] [BATCHES=64|all] [BUDGET=20] [TIME=150] [COMPILE_JOBS=16] [FINALISTS=0]
#   [SWEEP_TIMEOUT=280] [FP8_DB_IN=FILE] bench/engine_check.sh
# FP8_DB_IN: the fp8 tune's database of an earlier call (carried,
# uncompressed) to go on from, since a whole fp8 tune outlasts one call.
# Expects .carry/bin/moetune and libcjson in .carry/lib.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
export PYTHONPATH=$PWD/tests/engines MOETUNE_PYTHON=python3 MOETUNE_ENGINE_WORKER=$PWD/python/moetune-engine-worker
export MOETUNE_DOUBLE_KERNEL=$PWD/bench/triton_moe.py:fused
OUT=${OUT:-/tmp/mt_out}
mkdir -p "$OUT"
log() { echo "== $*"; }
log "$(date -u +%FT%TZ) commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'

PARTS=${PARTS:-probe bf16 fp8}
if [[ " $PARTS " == *" probe "* ]]; then
log "e4m3 rounding: the worker's against torch's cast"
python3 - <<'PY'
import sys, torch
sys.path.insert(0, "python")
from moetune_engine.quant import e4m3_round
g = torch.Generator().manual_seed(3)
x = torch.randn(1000000, generator=g) * 10.0 ** torch.randint(-4, 3, (1000000,), generator=g)
a = e4m3_round(x)
b = x.clamp(-448, 448).to(torch.float8_e4m3fn).float()
print("values 1000000, mismatches", int((a != b).sum()))
PY

log "every dtype through the worker (Mixtral TP2 E=8 N=7168 K=4096 at M=64; DeepSeek-V3 TP8 E=256 N=256 K=7168 at M=64)"
python3 - "$OUT" <<'PY' >"$OUT/probe_requests.jsonl"
import json
mix = {"E": 8, "N": 7168, "K": 4096, "topk": 2}
ds = {"E": 256, "N": 256, "K": 7168, "topk": 8}
cfgs = [dict(BLOCK_SIZE_M=16, BLOCK_SIZE_N=64, BLOCK_SIZE_K=128, GROUP_SIZE_M=1, num_warps=4, num_stages=4),
        dict(BLOCK_SIZE_M=64, BLOCK_SIZE_N=128, BLOCK_SIZE_K=128, GROUP_SIZE_M=16, num_warps=8, num_stages=3),
        dict(BLOCK_SIZE_M=128, BLOCK_SIZE_N=256, BLOCK_SIZE_K=64, GROUP_SIZE_M=1, num_warps=8, num_stages=5)]
print(json.dumps({"op": "hello"}))
for key in [dict(mix, dtype="bf16"), dict(mix, dtype="fp16"), dict(mix, dtype="fp8_w8a8"),
            dict(mix, dtype="fp8_w8a8", per_channel=1), dict(mix, dtype="int8_w8a16"),
            dict(mix, dtype="int8_w8a16", block_k=128), dict(mix, dtype="int8_w8a8"),
            dict(mix, dtype="int4_w4a16", block_k=128), dict(mix, dtype="int4_w4a16_zp", block_k=128),
            dict(ds, dtype="fp8_w8a8", block_n=128, block_k=128), dict(ds, dtype="bf16")]:
    for c in cfgs:
        print(json.dumps({"op": "measure", "family": "fused_moe", "key": key, "point": [64], "params": c, "seed": 11,
                          "renormalize": 1, "policy": {"warmup": 3, "min_reps": 10, "max_reps": 100, "min_time_s": 0.02,
                                                       "cold": 1, "check_rows": 32, "tolerance": 0.02, "routings": 4}}))
PY
timeout 420 python3 python/moetune-engine-worker --engine vllm --device cuda:0 <"$OUT/probe_requests.jsonl" \
  >"$OUT/probe_replies.jsonl" 2>"$OUT/probe_stderr.txt"
echo "rc=$?"; tail -n 3 "$OUT/probe_stderr.txt"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
reqs = [json.loads(l) for l in open(out + "/probe_requests.jsonl")]
reps = [json.loads(l) for l in open(out + "/probe_replies.jsonl")]
print(reps[0].get("kernel"), reps[0].get("raw_name"), "->", reps[0].get("name"))
print("| key | config | status | rel_err | tolerance | median us | compile s | reason |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for q, r in zip(reqs[1:], reps[1:]):
    k = q["key"]; c = q["params"]
    ks = "E=%d N=%d K=%d %s%s%s" % (k["E"], k["N"], k["K"], k["dtype"], " block" if k.get("block_n") else
                                    " group %d" % k["block_k"] if k.get("block_k") else "",
                                    " per-channel" if k.get("per_channel") else "")
    cs = "%d/%d/%d g%d w%d s%d" % tuple(c[x] for x in ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M",
                                                        "num_warps", "num_stages"))
    t = r.get("times", {})
    med = r.get("median_us")
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (ks, cs, r.get("status", r.get("error")),
          "%.2e" % r["rel_err"] if "rel_err" in r else "-", r.get("tolerance", "-"),
          "%.1f" % med if med else "-", t.get("compile_s", "-"), (r.get("reason") or "")[:60]))
PY
fi

for job in "bf16 --model mixtral-8x7b --tp 2" "fp8 --model deepseek-v3 --tp 8 --dtype fp8_w8a8 --block-shape 128,128"; do
  name=${job%% *}; args=${job#* }
  [[ " $PARTS " == *" $name "* ]] || continue
  [ "$name" = fp8 ] && [ -n "${FP8_DB_IN:-}" ] && cp "$FP8_DB_IN" "$OUT/engine-fp8.db"
  # BATCHES=all: vLLM's 18 batch sizes (the sweep's default); FINALISTS=3: the sweep's default
  bs="--batch-sizes ${BATCHES:-64}"; [ "${BATCHES:-64}" = all ] && bs=""
  log "sweep --engine vllm $args $bs --budget ${BUDGET:-20} --time ${TIME:-150} --compile-jobs ${COMPILE_JOBS:-16} --finalists ${FINALISTS:-0}"
  start=$(date +%s.%N)
  timeout "${SWEEP_TIMEOUT:-280}" stdbuf -oL .carry/bin/moetune sweep --engine vllm --device cuda:0 $args $bs \
    --budget "${BUDGET:-20}" --time "${TIME:-150}" --compile-jobs "${COMPILE_JOBS:-16}" --finalists "${FINALISTS:-0}" \
    --db "$OUT/engine-$name.db" --out "$OUT/configs-$name" >"$OUT/sweep-$name.txt" 2>&1
  echo "rc=$? wall $(python3 -c "import time; print('%.1f s' % (time.time() - $start))")"
  grep -v "^moetune sweep: .* of .* (" "$OUT/sweep-$name.txt" | tail -n 12
  ls "$OUT/configs-$name" 2>/dev/null
done

# SGLang's down GEMM on its own (--down), through SGLang's entry point (the
# double's exact signature, the same Triton kernel): the gate-up tune, then
# the down GEMM with each batch size's gate-up config pinned; the file pair
if [[ " $PARTS " == *" down "* ]]; then
  log "sweep --engine sglang --model mixtral-8x7b --tp 2 --batch-sizes ${DOWN_BATCHES:-64,1024} --down --time ${DOWN_TIME:-120}"
  start=$(date +%s.%N)
  timeout $(( ${DOWN_TIME:-120} + 60 )) stdbuf -oL .carry/bin/moetune sweep --engine sglang --device cuda:0 --model mixtral-8x7b \
    --tp 2 --batch-sizes "${DOWN_BATCHES:-64,1024}" --budget "${BUDGET:-20}" --time "${DOWN_TIME:-120}" --down \
    --compile-jobs "${COMPILE_JOBS:-16}" --db "$OUT/engine-down.db" --out "$OUT/configs-down" >"$OUT/sweep-down.txt" 2>&1
  echo "rc=$? wall $(python3 -c "import time; print('%.1f s' % (time.time() - $start))")"
  grep -v "^moetune sweep: .* of .* (" "$OUT/sweep-down.txt" | tail -n 8
  for f in "$OUT"/configs-down/configs/triton_*/*.json; do echo "$(basename "$f")"; cat "$f"; done
  python3 - "$OUT/engine-down.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("| M | down GEMM: variants ok / failed | pinned gate-up config alone us | best down us | ratio |")
print("| --- | --- | --- | --- | --- |")
for (M,) in db.execute("select distinct M from measurements where kernel_hash like '%down GEMM%' order by M"):
    q = "from measurements where M = ? and kernel_hash like '%down GEMM%'"
    ok = db.execute("select count(*) " + q + " and status = 'ok'", (M,)).fetchone()[0]
    bad = db.execute("select count(*) " + q + " and status = 'failed'", (M,)).fetchone()[0]
    d = db.execute("select min(median_us) " + q + " and status = 'ok' and is_default = 1", (M,)).fetchone()[0]
    b = db.execute("select min(median_us) " + q + " and status = 'ok'", (M,)).fetchone()[0]
    print("| %d | %d / %d | %s | %s | %s |" % (M, ok, bad, "%.1f" % d if d else "-", "%.1f" % b if b else "-",
                                              "%.3f" % (b / d) if b and d else "-"))
PY
fi

# the quality check: the full grid (every valid config, vLLM's 1,920 less the
# ones out of shared memory) at GRID_BATCHES, early abort on, in its own
# database; then the tuned picks (the bf16 sweep's vLLM file) against the
# grid's best, both as measured in the grid run
if [[ " $PARTS " == *" grid "* ]]; then
  log "grid: sweep --engine vllm --model mixtral-8x7b --tp 2 --strategy grid --batch-sizes ${GRID_BATCHES:-64,1024}"
  start=$(date +%s.%N)
  timeout "${GRID_TIMEOUT:-400}" stdbuf -oL .carry/bin/moetune sweep --engine vllm --device cuda:0 --model mixtral-8x7b --tp 2 \
    --strategy grid --abort-factor 1.3 --finalists 0 --batch-sizes "${GRID_BATCHES:-64,1024}" --compile-jobs "${COMPILE_JOBS:-16}" \
    --db "$OUT/grid-bf16.db" --no-export >"$OUT/grid-bf16.txt" 2>&1
  echo "rc=$? wall $(python3 -c "import time; print('%.1f s' % (time.time() - $start))")"
  grep -v "^moetune sweep: .* of .* (" "$OUT/grid-bf16.txt" | tail -n 8
  python3 - "$OUT" <<'PY'
import glob, json, sqlite3, sys
out = sys.argv[1]
files = glob.glob(out + "/configs-bf16/E=8,N=7168,*.json")
picks = json.load(open(files[0])) if files else {}
db = sqlite3.connect(out + "/grid-bf16.db")
print("| M | grid: configs ok / failed / aborted | grid best us | tuned pick | pick in the grid us | pick / best |")
print("| --- | --- | --- | --- | --- | --- |")
for (M,) in db.execute("select distinct M from measurements order by M"):
    rows = [(json.loads(p), st, t) for p, st, t in db.execute(
        "select c.params, m.status, m.median_us from measurements m join configs c on c.id = m.config_id where m.M = ?", (M,))]
    ok = [r for r in rows if r[1] == "ok"]
    best = min(r[2] for r in ok) if ok else float("nan")
    pick = picks.get(str(M))
    mine = [r[2] for r in rows if pick and r[1] in ("ok", "aborted") and all(int(r[0].get(k, -1)) == int(v) for k, v in pick.items() if k in r[0])]
    pt = mine[0] if mine else float("nan")
    print("| %d | %d / %d / %d | %.1f | %s | %.1f | %.3f |" % (M, len(ok), sum(r[1] == "failed" for r in rows),
          sum(r[1] == "aborted" for r in rows), best, json.dumps(pick) if pick else "-", pt, pt / best))
PY
fi
