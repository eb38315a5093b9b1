#!/usr/bin/env bash
# Issue 9's probe of the small-batch attention rows, in one GPU call: the
# same rows timed by two builds of cuda_attn_check (.carry/old: the kernel
# before a change, .carry/bin: after; each binary embeds its kernel source),
# cold and warm L2, then Nsight Compute on single variants (the stall
# reasons and the SASS lines that stall most), and whether the shared-
# memory float atomics of the old source compile to compare-and-swap loops.
# Usage (device machine, repository root): OUT=dir bench/attn_probe.sh
# BUILDS: which columns to time (default "old new"): old, new, and the new
# build with the merge's overlapped launch turned off: nopdl (MOETUNE_DEBUG_CUDA=no-pdl: the merge
# launched plainly).
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
OUT=${OUT:-/tmp/attn_probe}
mkdir -p "$OUT"
NEW=$PWD/.carry/bin/cuda_attn_check OLD=$PWD/.carry/old/cuda_attn_check
BUILDS=${BUILDS:-old new}
# run_build NAME ARGS...: one column's binary with its environment
run_build() {
  local b=$1; shift
  case $b in
    old) [ -x "$OLD" ] && "$OLD" "$@" ;;
    new) "$NEW" "$@" ;;
    nopdl) MOETUNE_DEBUG_CUDA=no-pdl "$NEW" "$@" ;;
    *) echo "unknown build $b" >&2; return 2 ;;
  esac
}
ROWS=${ROWS-"8/1/256/16/1/511 32/8/128/16/1/2048 64/8/128/16/1/2048 16/16/64/32/1/2048 32/8/128/16/8/8192 64/8/128/16/32/8192"}
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader)"
# SASS of the old and new sources' value pass: ATOMS.CAS means a CAS loop
for v in old new; do
  src=$PWD/kernels/cuda/attn.cu; [ $v = old ] && src=$PWD/.carry/old/attn.cu
  [ -f "$src" ] || continue
  nvcc -arch=sm_90a -cubin -o "$OUT/$v.cubin" -I"$PWD/kernels/gpu" -DHEAD_DIM=256 -DGROUP=8 -DNUM_WARPS=8 "$src" &&
    cuobjdump -sass "$OUT/$v.cubin" >"$OUT/$v.sass" &&
    echo "$v source, D=256 G=8 8 warps: $(grep -c 'ATOMS' "$OUT/$v.sass") ATOMS lines ($(grep -o 'ATOMS\.[A-Z.]*' "$OUT/$v.sass" | sort | uniq -c | tr '\n' ' '))"
done
for row in $ROWS; do
  for b in $BUILDS; do
    run_build $b --equal --only "$row" >"$OUT/rows_${b}_${row//\//_}.txt" 2>&1 || continue
    run_build $b --equal --warm --only "$row" >"$OUT/warm_${b}_${row//\//_}.txt" 2>&1
    printf '%-22s %-5s cold: %s\n' "$row" $b "$(grep -E '^\| ' "$OUT/rows_${b}_${row//\//_}.txt" | tail -1)"
    printf '%-22s %-5s warm: %s\n' "$row" $b "$(grep -E '^\| ' "$OUT/warm_${b}_${row//\//_}.txt" | tail -1)"
  done
done
# Nsight Compute on single variants (PROF: "ROW@PART/WARPS/MMA/STAGE ...")
PROF=${PROF-"8/1/256/16/1/511@64/8/0/1 32/8/128/16/1/2048@128/8/0/1"}
for p in $PROF; do
  row=${p%@*} var=${p#*@}; tag=${row//\//_}_${var//\//_}
  for b in old new; do
    bin=$NEW; [ $b = old ] && bin=$OLD
    [ -x "$bin" ] || continue
    echo "== ncu $b $row variant $var"
    timeout 200 ncu --clock-control none -k regex:attn_ --launch-skip 1 --launch-count 2 \
      --section SpeedOfLight --section WarpStateStats --section SourceCounters --section MemoryWorkloadAnalysis \
      -o "$OUT/ncu_${b}_$tag" -f "$bin" --equal --reps 2 --only "$row" --variant "$var" >"$OUT/ncu_${b}_$tag.log" 2>&1
    ncu -i "$OUT/ncu_${b}_$tag.ncu-rep" --page details >"$OUT/ncu_${b}_$tag.txt" 2>&1
    grep -E "attn_|Duration|DRAM Throughput|Warp Cycles Per Issued|Stall|stall" "$OUT/ncu_${b}_$tag.txt" | head -24
    ncu -i "$OUT/ncu_${b}_$tag.ncu-rep" --page source --csv --print-source sass >"$OUT/src_${b}_$tag.csv" 2>&1
    python3 - "$OUT/src_${b}_$tag.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
hdr = next((i for i, r in enumerate(rows) if "Source" in r), None)
if hdr is None:
    print("  (no source page:", " ".join(sum(rows[:2], []))[:200], ")"); sys.exit()
h = rows[hdr]
col = next((i for i, n in enumerate(h) if n.startswith("Warp Stall Sampling (All")), None)
src = h.index("Source")
if col is None: print("  columns:", h[:12]); sys.exit()
body = [r for r in rows[hdr + 1:] if len(r) > col]
def num(x):
    try: return float(x.replace(",", ""))
    except ValueError: return 0.0
tot = sum(num(r[col]) for r in body) or 1
print("  top SASS lines by stall samples (%d samples):" % tot)
for r in sorted(body, key=lambda r: -num(r[col]))[:12]:
    print("   %5.1f%%  %s" % (100 * num(r[col]) / tot, r[src][:90]))
PY
  done
done
