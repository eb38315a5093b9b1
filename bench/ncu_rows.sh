#!/usr/bin/env bash
# Issue 8: what bounds the TARGETS rows that miss. Nsight Compute on each
# row's tuned config (call 38's winners, fixed with --only so that the sweep
# measures that one point; its first launches are the correctness run),
# clocks left as found (--clock-control none), caches flushed between
# passes (ncu's default), the speed-of-light figures plus the tensor pipes'
# activity and the warps' stall reasons. Full CSVs go to $OUT/ncu-rows.tgz,
# one line per kernel to stdout.
# Usage (device machine, repository root): OUT=... bench/ncu_rows.sh [ROW...]
# (ROW: a label below; default all)
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export XDG_CACHE_HOME=/tmp/mt_cache XDG_DATA_HOME=/tmp/mt_data
MT=${MT:-$PWD/.carry/bin/moetune}
OUT=${OUT:-/tmp/mt_out}
W=/tmp/ncu_rows
mkdir -p "$OUT" "$W"

# label|moetune problem|M|tuned point (call 38, bench/results/2026-11-24-h100-moe-gemv/show-call38.txt)
ROWS='qwen-1|--model qwen3-30b-a3b|1|16,64,64,1,4,2,0,1
ds-1|--model deepseek-v3 --tp 8|1|16,64,64,1,4,2,0,1
qwen-64|--model qwen3-30b-a3b|64|64,32,64,32,4,3,0,0
qwen-256|--model qwen3-30b-a3b|256|64,32,64,32,4,3,0,0
qwen-1024|--model qwen3-30b-a3b|1024|64,64,64,1,8,3,0,0
qwen-4096|--model qwen3-30b-a3b|4096|128,128,64,1,8,4,0,0
mix1-1024|--model mixtral-8x7b|1024|128,128,64,32,8,4,0,0
mix1-4096|--model mixtral-8x7b|4096|128,128,64,16,8,3,0,0
mix2-64|--model mixtral-8x7b --tp 2|64|64,32,128,1,8,3,0,0
mix2-256|--model mixtral-8x7b --tp 2|256|128,64,64,1,8,5,0,0'
KEYS=(BLOCK_SIZE_M BLOCK_SIZE_N BLOCK_SIZE_K GROUP_SIZE_M num_warps num_stages NUM_SM GEMV)

# extra metrics, kept where this ncu knows them (an unknown name fails the run)
WANT="sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active
sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active
sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active
dram__bytes_read.sum
dram__bytes_write.sum
lts__t_bytes.sum
smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio
smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio
smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio
smsp__average_warps_issue_stalled_wait_per_issue_active.ratio
smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio
smsp__average_warps_issue_stalled_mio_throttle_per_issue_active.ratio
smsp__average_warps_issue_stalled_lg_throttle_per_issue_active.ratio
smsp__average_warps_issue_stalled_membar_per_issue_active.ratio
smsp__average_warps_issue_stalled_selected_per_issue_active.ratio
smsp__average_warps_issue_stalled_not_selected_per_issue_active.ratio
smsp__average_warps_issue_stalled_dispatch_stall_per_issue_active.ratio
smsp__average_warps_issue_stalled_sleeping_per_issue_active.ratio
smsp__average_warps_issue_stalled_misc_per_issue_active.ratio"
ncu --query-metrics --chip gh100 >"$W/known.txt" 2>&1
MET=""
for m in $WANT; do
  grep -q "^${m%%.*} " "$W/known.txt" && MET="$MET${MET:+,}$m"
done
echo "metrics kept: $MET" | tr ',' '\n' | sed 's/^/  /'

for row in ${*:-qwen-1 ds-1 qwen-64 qwen-256 qwen-1024 qwen-4096 mix1-1024 mix1-4096 mix2-64 mix2-256}; do
  line=$(grep "^$row|" <<<"$ROWS") || { echo "no row $row"; continue; }
  IFS='|' read -r label prob m point <<<"$line"
  IFS=, read -ra v <<<"$point"
  only=""
  for i in "${!KEYS[@]}"; do only="$only${only:+,}${KEYS[$i]}=${v[$i]}"; done
  n=4; [ "${v[7]}" = 1 ] && n=2
  echo "== $label M=$m $only"
  # shellcheck disable=SC2086
  timeout 240 ncu --target-processes all --clock-control none -k "regex:moe_" --launch-count $n --csv \
    --section SpeedOfLight --section LaunchStats --section Occupancy --metrics "$MET" \
    "$MT" sweep --device cuda:0 --db "$W/$label.db" --no-export --quiet $prob --batch-sizes "$m" --budget 1 \
    --finalists 0 --compile-jobs 0 --only "$only" >"$W/$label.csv" 2>"$W/$label.err"
  echo "rc=$?"
  python3 - "$W/$label.csv" <<'PY'
import csv, sys
short = {"Duration": "us", "DRAM Throughput": "dram%", "Compute (SM) Throughput": "sm%", "Registers Per Thread": "regs",
         "Grid Size": "grid", "Block Size": "block", "Achieved Occupancy": "occ%", "Memory Throughput": "mem%"}
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 14 and r[0] != "ID"]
order = []
for r in rows:
    if (r[0], r[4]) not in order: order.append((r[0], r[4]))
for k in order:
    vals = {r[12]: (r[14], r[13]) for r in rows if (r[0], r[4]) == k}
    out = []
    for name, s in short.items():
        if name in vals:
            v, u = vals[name]
            if name == "Duration":
                f = float(v.replace(",", ""))
                v = "%.1f" % (f / 1000 if u in ("nsecond", "ns") else f if u in ("usecond", "us") else f * 1000)
            out.append("%s %s" % (s, v))
    for name, (v, u) in vals.items():
        if name.startswith("sm__pipe_tensor"): out.append("%s %s" % ("gmma%" if "gmma" in name else "hmma%", v))
        if name == "dram__bytes_read.sum": out.append("rd %s %s" % (v, u))
        if name == "dram__bytes_write.sum": out.append("wr %s %s" % (v, u))
    st = sorted(((float(v.replace(",", "")), n.split("stalled_")[1].split("_per_")[0])
                 for n, (v, u) in vals.items() if "issue_stalled" in n), reverse=True)[:4]
    out.append("stalls " + " ".join("%s %.1f" % (n, f) for f, n in st))
    name = k[1].split("(")[0].split("<")[0]
    print("  %-10s %s" % (name, "; ".join(out)))
PY
  grep -iE "==ERROR==|error" "$W/$label.err" | head -3
done
tar czf "$OUT/ncu-rows.tgz" -C "$W" .
