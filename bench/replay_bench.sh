#!/usr/bin/env bash
# Every recorded grid in bench/data, every strategy, budgets of 5 % and 10 %
# of each batch size's points, 20 seeds: the table of issue 5's targets.
# usage: bench/replay_bench.sh [build/moetune]
set -euo pipefail
cd "$(dirname "$0")/.."
MT=${1:-build/moetune}
JOBS=${JOBS:-$(nproc)}
GRIDS=${GRIDS:-bench/data/*.grid.csv}
echo "| grid | strategy | budget | batch sizes | median evals to 2 % | M within 2 % (median seed) | M within 1 % | mean score |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for f in $GRIDS; do
  for frac in ${FRACS:-0.05 0.10}; do
    for s in ${STRATS:-grid random bayes bayes-per-m}; do
      # the per-M ablation at 5 % only: it costs as much as the joint search
      [ $s = bayes-per-m ] && [ $frac != 0.05 ] && continue
      # SLOW10: the costly strategies only at 10 % (the cheap ones are in the table at 5 %)
      [ -n "${SLOW10:-}" ] && [ $frac = 0.10 ] && [ $s != bayes ] && continue
      args=(--strategy ${s%-per-m}); [ $s = bayes-per-m ] && args+=(--per-m)
      "$MT" replay "$f" "${args[@]}" --seeds 20 --jobs $JOBS --fraction $frac --json | python3 -c '
import json, statistics, sys
j = json.load(sys.stdin); b = j["batch_sizes"]; name, frac = sys.argv[1], float(sys.argv[2])
w2 = sum(1 for x in b if x["evals_to_2pct"] is not None); w1 = sum(1 for x in b if x["evals_to_1pct"] is not None)
e2 = [x["evals_to_2pct"] for x in b if x["evals_to_2pct"] is not None]
st = j["strategy"] + ("" if j.get("joint") or j["strategy"] != "bayes" else " (per M)"); med = statistics.median(e2) if e2 else "-"; sc = statistics.mean(x["score"] for x in b)
print(f"| {name} | {st} | {frac:.0%} | {len(b)} | {med} | {w2}/{len(b)} | {w1}/{len(b)} | {sc:.3f} |")
' "$(basename "$f" .grid.csv)" "$frac"
    done
  done
done
