# The replay harness: a synthetic grid with a known optimum, every strategy,
# determinism for a seed; and a grid exported from a real (small) sweep.
. "$(dirname "$0")/lib.sh"
python3 - "$TMP/synthetic.grid.csv" <<'PY'
import math, sys
rows = ["M,block_m,block_n,median_us,status,is_default"]
for M in (1, 64):
    for a in range(12):
        for b in range(12):
            if a == 11 and b < 3:      # a failed corner teaches nothing good
                rows.append(f"{M},{a},{b},,failed,0"); continue
            t = 50 + M * 0.1 + (a - 7) ** 2 + 0.5 * (b - (2 if M == 1 else 9)) ** 2 + 0.3 * math.sin(a * b)
            rows.append(f"{M},{a},{b},{t:.4f},ok,{1 if (a, b) == (0, 0) else 0}")
open(sys.argv[1], "w").write("\n".join(rows) + "\n")
PY
for s in grid random bayes; do
  expect_exit 0 "$TMP/$s.json" "$MT" replay "$TMP/synthetic.grid.csv" --strategy $s --seeds 10 --budget 30 --json
done
python3 - "$TMP" <<'PY' || fail "replay results"
import json, sys
d = sys.argv[1]
r = {s: json.load(open(f"{d}/{s}.json")) for s in ("grid", "random", "bayes")}
for s, j in r.items():
    assert j["strategy"] == s and [b["M"] for b in j["batch_sizes"]] == [1, 64], j
    for b in j["batch_sizes"]:
        assert b["points"] == 144 and b["budget"] == 30
        # the optimum is known: the grid's minimum among successes
        assert abs(b["optimum_us"] - min(50 + b["M"] * 0.1 + (a - 7) ** 2 + 0.5 * (c - (2 if b["M"] == 1 else 9)) ** 2
                   + 0.3 * __import__("math").sin(a * c) for a in range(12) for c in range(12)
                   if not (a == 11 and c < 3))) < 1e-3
for b in r["bayes"]["batch_sizes"]:
    assert b["evals_to_2pct"] is not None and b["evals_to_2pct"] <= 30, b
    assert b["score"] > 0.5, b
assert sum(b["score"] for b in r["bayes"]["batch_sizes"]) > sum(b["score"] for b in r["random"]["batch_sizes"])
PY
ok
# the same seed, the same answer
expect_exit 0 "$TMP/bayes2.json" "$MT" replay "$TMP/synthetic.grid.csv" --strategy bayes --seeds 10 --budget 30 --json
cmp -s "$TMP/bayes.json" "$TMP/bayes2.json" || fail "replay is not deterministic"; ok
# seeds spread over processes give the same answer, for the joint search too
expect_exit 0 "$TMP/bayes3.json" "$MT" replay "$TMP/synthetic.grid.csv" --strategy bayes --seeds 10 --budget 30 --json --jobs 3
cmp -s "$TMP/bayes.json" "$TMP/bayes3.json" || fail "replay --jobs 3 differs from one process"; ok
expect_exit 2 "$TMP/b" "$MT" replay "$TMP/synthetic.grid.csv" --jobs 0
# a real grid: a small sweep exported with --format grid
expect_exit 0 "$TMP/s" "$MT" sweep --db "$TMP/r.db" --model tiny --batch-sizes 1 --quiet --no-export --strategy grid
expect_exit 0 "$TMP/e" "$MT" export --db "$TMP/r.db" --out "$TMP/grid" --format grid
csv=$(ls "$TMP"/grid/*.grid.csv)
[ "$(($(wc -l <"$csv") - 1))" = "$(sql "$TMP/r.db" 'select count(*) from measurements')" ] || fail "one CSV row per measurement"; ok
head -1 "$csv" | grep -qx 'M,block_m,block_n,block_k,threads,median_us,status,is_default' || fail "CSV header: $(head -1 "$csv")"; ok
expect_exit 0 "$TMP/rr" "$MT" replay "$csv" --seeds 3 --budget 6
expect_in "$TMP/rr" "evals to 2%"
# a grid of the points a Bayesian sweep chose says it is partial, and a
# replay on it (where every strategy would score near 1) is refused unless asked
expect_exit 0 "$TMP/s2" "$MT" sweep --db "$TMP/rb.db" --model tiny --batch-sizes 1 --budget 6 --quiet --no-export
expect_exit 0 "$TMP/e2" "$MT" export --db "$TMP/rb.db" --out "$TMP/gridb" --format grid
csvb=$(ls "$TMP"/gridb/*.grid.csv)
head -1 "$csvb" | grep -q '^# partial' || fail "a bayes sweep's grid is not marked partial: $(head -1 "$csvb")"; ok
expect_exit 2 "$TMP/rp" "$MT" replay "$csvb" --seeds 3 --budget 3
expect_in "$TMP/rp" "is a partial grid"
expect_exit 0 "$TMP/rp2" "$MT" replay "$csvb" --seeds 3 --budget 3 --partial
# bad input
printf 'x,y\n1,2\n' >"$TMP/bad.csv"
expect_exit 2 "$TMP/b" "$MT" replay "$TMP/bad.csv"
expect_in "$TMP/b" "not a grid CSV"
done_ok
