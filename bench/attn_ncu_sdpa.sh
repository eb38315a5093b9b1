#!/usr/bin/env bash
# Issue 9: Nsight Compute on one large decode row for moetune's kernel and
# torch's SDPA side by side: how many bytes each reads from DRAM, at what
# rate, and how the L2 sees the requests (sectors per request, hit rate).
# ncu flushes the caches before each profiled kernel; clocks as found.
# Usage (device machine, repository root): OUT=dir bench/attn_ncu_sdpa.sh
# ROW=H/HKV/D/PAGE/B/CTX, VARIANT=PART/WARPS/MMA/STAGE (moetune's best there)
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
OUT=${OUT:-/tmp/attn_ncu_sdpa}
mkdir -p "$OUT"
ROW=${ROW:-64/8/128/16/32/8192} VARIANT=${VARIANT:-8192/2/1/2}
IFS=/ read -r H HKV D PS B CTX <<<"$ROW"
SECTIONS="--section SpeedOfLight --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy"
METRICS="--metrics dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_requests_srcunit_tex_op_read.sum,lts__t_sector_op_read_hit_rate.pct"
timeout 240 ncu --clock-control none -k regex:attn_ --launch-skip 2 --launch-count 2 $SECTIONS $METRICS \
  .carry/bin/cuda_attn_check --equal --reps 2 --only "$ROW" --variant "$VARIANT" >"$OUT/ncu_moetune.txt" 2>&1
cat >"$OUT/sdpa_once.py" <<PY
import torch, torch.nn.functional as F
dev = torch.device("cuda")
q = torch.rand($B, $H, 1, $D, dtype=torch.bfloat16, device=dev) * 2 - 1
k = torch.rand($B, $HKV, $CTX, $D, dtype=torch.bfloat16, device=dev) * 2 - 1
v = torch.rand($B, $HKV, $CTX, $D, dtype=torch.bfloat16, device=dev) * 2 - 1
for _ in range(3):
    F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStart()
F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStop()
PY
timeout 240 ncu --clock-control none --profile-from-start off $SECTIONS $METRICS python3 "$OUT/sdpa_once.py" \
  >"$OUT/ncu_sdpa.txt" 2>&1
for f in moetune sdpa; do
  echo "== $f, $ROW (moetune: variant $VARIANT)"
  grep -E "^  [a-zA-Z_].*\(|Duration|DRAM Throughput|Memory Throughput|L2 Hit Rate|Registers Per Thread|Achieved Occupancy|Theoretical Occupancy|Grid Size|Block Size|dram__bytes|lts__t_sectors_srcunit|lts__t_requests|lts__t_sector_op_read_hit|Max Bandwidth|L1/TEX Hit" \
    "$OUT/ncu_$f.txt" | sed 's/  */ /g' | head -40
done
