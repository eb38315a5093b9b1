#!/usr/bin/env bash
# Two builds of moetune, same run, same configs: each row's point fixed with
# --only (so that only the kernels change), every variant checked against
# the float64 oracle as in any sweep, the builds alternated ROUNDS times
# with fresh databases. Prints the median of each (build, row) per round
# and the ratio new / old.
# Usage (device machine, repository root):
#   OUT=... [ROUNDS=2] bench/moe_ab.sh
# Expects .carry/B/moetune for each B of BUILDS (default "old bin"; the
# first is the baseline; B+VAR=VALUE runs build B with that environment
# variable set); ROWS below, or ROWS="MODEL@TP@M,M..@POINT ..." (POINT: the eight
# CUDA keys in space order).
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
OUT=${OUT:-/tmp/mt_out}
mkdir -p "$OUT"
# the tuned points of call 38 (bench/results/2026-11-24-h100-moe-gemv)
ROWS=${ROWS:-"qwen3-30b-a3b@1@64,256@64,32,64,32,4,3,0,0
qwen3-30b-a3b@1@1024,8192@64,64,64,1,8,3,0,0
qwen3-30b-a3b@1@4096@128,128,64,1,8,4,0,0
deepseek-v3@8@1024@64,64,64,16,4,2,0,0
deepseek-v3@8@4096@128,64,64,16,8,3,0,0
mixtral-8x7b@1@1024@128,128,64,32,8,4,0,0
mixtral-8x7b@1@4096@128,128,64,16,8,3,0,0
mixtral-8x7b@2@64@64,32,128,1,8,3,0,0
mixtral-8x7b@2@256@128,64,64,1,8,5,0,0"}
KEYS=(BLOCK_SIZE_M BLOCK_SIZE_N BLOCK_SIZE_K GROUP_SIZE_M num_warps num_stages NUM_SM GEMV)
for round in $(seq 1 "${ROUNDS:-2}"); do
  for b in ${BUILDS:-old bin}; do
    dir=${b%%+*}; envs=(); [ "$dir" != "$b" ] && envs=("${b#*+}")
    db=$OUT/ab-$(tr -c 'A-Za-z0-9\n' _ <<<"$b")-$round.db
    for row in $ROWS; do
      IFS=@ read -r model tp ms point <<<"$row"
      IFS=, read -ra v <<<"$point"
      only=""
      for i in "${!KEYS[@]}"; do only="$only${only:+,}${KEYS[$i]}=${v[$i]}"; done
      env "${envs[@]}" .carry/$dir/moetune sweep --device cuda:0 --db "$db" --no-export --quiet --model "$model" --tp "$tp" \
        --batch-sizes "$ms" --budget 1 --finalists 0 --compile-jobs 0 --only "$only" >"$OUT/ab-last.txt" 2>&1 ||
        { echo "sweep failed ($b $row):"; tail -n 5 "$OUT/ab-last.txt"; }
    done
  done
done
python3 - "$OUT" "${ROUNDS:-2}" ${BUILDS:-old bin} <<'PY'
import re, sqlite3, sys, statistics
out, rounds, builds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res = {}
for r in range(1, rounds + 1):
    for b in builds:
        c = sqlite3.connect("%s/ab-%s-%d.db" % (out, re.sub("[^A-Za-z0-9]", "_", b), r))
        q = ("select p.E, p.N, p.K, p.topk, m.M, m.median_us, m.status from measurements m "
             "join problems p on p.id = m.problem_id")
        for E, N, K, topk, M, t, st in c.execute(q):
            res.setdefault((E, N, K, topk, M), {}).setdefault(b, []).append(t if st == "ok" else None)
print("| E | N | K | topk | M | " + " | ".join("%s us (rounds)" % b for b in builds) + " | " +
      " | ".join("%s / %s" % (b, builds[0]) for b in builds[1:]) + " |")
print("| --- " * (5 + 2 * len(builds) - 1) + "|")
f = lambda xs: " ".join("%.1f" % x if x else "FAILED" for x in xs)
for k in sorted(res):
    o = res[k].get(builds[0], [])
    cells, ratios = [f(res[k].get(b, [])) for b in builds], []
    for b in builds[1:]:
        n = res[k].get(b, [])
        ok = o and n and None not in o + n
        ratios.append("%.3f" % (statistics.median(n) / statistics.median(o)) if ok else "-")
    print("| %d | %d | %d | %d | %d | " % k + " | ".join(cells + ratios) + " |")
bad = sum(1 for v in res.values() for xs in v.values() for x in xs if x is None)
print("failed measurements: %d" % bad)
PY
