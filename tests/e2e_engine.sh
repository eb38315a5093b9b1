#!/usr/bin/env bash
# sweep --engine: the engine worker measuring vLLM's and SGLang's kernels,
# here their test doubles (tests/engines: the engines' exact signatures,
# computing on the CPU), end to end: the engines' spaces and dtypes, the
# check against the reference, crashes and wrong results of the engine,
# missing or unsupported engines, and the files each engine reads.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=
for p in ${MOETUNE_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then PY=$(command -v "$p"); break; fi
done
[ -n "$PY" ] || fail "no Python with torch (ci/install.sh installs python3-torch)"
export MOETUNE_PYTHON=$PY PYTHONPATH=$HERE/engines:$HERE/triton_stub
# the worker's e4m3 rounding against the doubles' (a table lookup, written
# independently): every code point, ties, saturation and 100,000 random values
"$PY" - "$HERE/../python" <<'PYEOF' || fail "e4m3 rounding"
import sys, torch
sys.path.insert(0, sys.argv[1])
from moetune_engine.quant import e4m3_round
import moe_double
t = moe_double._E4M3.float()
assert torch.equal(e4m3_round(t), t), "a code point moved"
g = torch.Generator().manual_seed(3)
x = torch.cat([torch.randn(100000, generator=g) * 10.0 ** torch.randint(-4, 3, (100000,), generator=g),
               (t[1:] + t[:-1]) / 2, torch.tensor([500.0, -1e6, 0.0])])
a, b = e4m3_round(x), moe_double.to_e4m3(x)
assert torch.equal(a, b), "differ at %s" % x[(a != b).nonzero()[:5].flatten()].tolist()
PYEOF
ok
SHAPE="--experts 8 --intermediate 128 --hidden 256 --topk 2 --batch-sizes 1,16 --finalists 0 --quiet --device cpu"

# vLLM, bf16, the current calling convention: vLLM's file, vLLM's keys only
expect_exit 0 "$TMP/v" "$MT" sweep --engine vllm $SHAPE --budget 6 --db "$TMP/v.db" --out "$TMP/v.d"
F="$TMP/v.d/E=8,N=128,device_name=CPU.json"
[ -f "$F" ] || fail "no vLLM file: $(ls "$TMP/v.d")"; ok
[ "$(py "$F" 'sorted(j)')" = "['1', '16', 'triton_version']" ] || fail "keys: $(py "$F" 'sorted(j)')"; ok
[ "$(py "$F" 'sorted(j["16"])')" = "['BLOCK_SIZE_K', 'BLOCK_SIZE_M', 'BLOCK_SIZE_N', 'GROUP_SIZE_M', 'num_stages', 'num_warps']" ] ||
  fail "entry keys: $(py "$F" 'sorted(j["16"])')"; ok
[ "$(py "$F" 'j["triton_version"]')" = "3.6.0" ] || fail "triton_version"; ok
[ "$(ls "$TMP/v.d" | wc -l)" = 1 ] || fail "files besides vLLM's: $(ls "$TMP/v.d")"; ok
[ "$(sql "$TMP/v.db" "select backend from devices")" = vllm ] || fail "device backend"; ok
case "$(sql "$TMP/v.db" "select distinct kernel_hash from measurements")" in
  "vllm 0.11.0, triton 3.6.0, quant_config") ok ;;
  *) fail "kernel id: $(sql "$TMP/v.db" "select distinct kernel_hash from measurements")" ;;
esac
[ "$(sql "$TMP/v.db" "select count(*) from measurements where status='ok' and not rel_err <= tolerance")" = 0 ] ||
  fail "a verified row above its tolerance"; ok
[ "$(sql "$TMP/v.db" "select count(*) from measurements where status='ok'")" -ge 2 ] || fail "no verified rows"; ok
# the same command again: every variant is taken from the database
expect_exit 0 "$TMP/v2" "$MT" sweep --engine vllm $SHAPE --budget 6 --db "$TMP/v.db" --out "$TMP/v.d"
expect_in "$TMP/v2" "measured 0 variants"

# the config vLLM runs today for the shape (its tuned folder, else its
# shipped configs/) is measured first at each batch size, as vLLM picks
# its entry (the nearest batch size): the pick is never slower than it
mkdir -p "$TMP/inuse"
cat >"$TMP/inuse/E=8,N=128,device_name=CPU.json" <<'EOF'
{"1": {"BLOCK_SIZE_M": 32, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 16, "num_warps": 8, "num_stages": 2},
 "12": {"BLOCK_SIZE_M": 64, "BLOCK_SIZE_N": 32, "BLOCK_SIZE_K": 256, "GROUP_SIZE_M": 1, "num_warps": 4, "num_stages": 3}}
EOF
VLLM_TUNED_CONFIG_FOLDER=$TMP/inuse expect_exit 0 "$TMP/iu" "$MT" sweep --engine vllm $SHAPE --budget 3 --db "$TMP/iu.db" --no-export
python3 - "$TMP/iu.db" <<'PY' || fail "the config in use was not measured first"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
want = {1: {"BLOCK_SIZE_M": 32, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 16, "num_warps": 8, "num_stages": 2},
        16: {"BLOCK_SIZE_M": 64, "BLOCK_SIZE_N": 32, "BLOCK_SIZE_K": 256, "GROUP_SIZE_M": 1, "num_warps": 4, "num_stages": 3}}
for M, cfg in want.items():
    first = db.execute("select c.params from measurements m join configs c on c.id = m.config_id where m.M = ? and "
                       "m.is_default = 0 order by m.id limit 1", (M,)).fetchone()
    assert first and json.loads(first[0]) == cfg, (M, first)
PY
ok
# a file that cannot be read is said, and the sweep goes on without it
echo '{"1": [' >"$TMP/inuse/E=8,N=128,device_name=CPU.json"
VLLM_TUNED_CONFIG_FOLDER=$TMP/inuse expect_exit 0 "$TMP/iu2" "$MT" sweep --engine vllm $SHAPE --budget 2 --db "$TMP/iu2.db" --no-export
expect_in "$TMP/iu2" "not read"

# SGLang's in use: configs/triton_X_Y_Z under SGLANG_MOE_CONFIG_DIR, the
# installed Triton's folder first, then the others newest first
mkdir -p "$TMP/sgin/configs/triton_3_4_0" "$TMP/sgin/configs/triton_3_1_0"
# (SGLang's spelling of the block shape, with its space)
cat >"$TMP/sgin/configs/triton_3_4_0/E=8,N=256,device_name=CPU,dtype=fp8_w8a8,block_shape=[128, 128].json" <<'EOF'
{"16": {"BLOCK_SIZE_M": 32, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 32, "num_warps": 4, "num_stages": 2}}
EOF
cat >"$TMP/sgin/configs/triton_3_1_0/E=8,N=256,device_name=CPU,dtype=fp8_w8a8,block_shape=[128, 128].json" <<'EOF'
{"16": {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 32, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 1, "num_warps": 8, "num_stages": 3}}
EOF
SGLANG_MOE_CONFIG_DIR=$TMP/sgin expect_exit 0 "$TMP/si" "$MT" sweep --engine sglang $SHAPE --intermediate 256 --budget 2 \
  --dtype fp8_w8a8 --block-shape 128,128 --db "$TMP/si.db" --no-export
expect_not_in() { ! grep -qsF -- "$2" "$1" "$1.err" || fail "output holds '$2'"; ok; }
expect_not_in "$TMP/si" "not read"
[ "$(sql "$TMP/si.db" "select c.params from measurements m join configs c on c.id = m.config_id where m.M = 16 and
  m.is_default = 0 order by m.id limit 1")" = '{"BLOCK_SIZE_M":32,"BLOCK_SIZE_N":64,"BLOCK_SIZE_K":128,"GROUP_SIZE_M":32,"num_warps":4,"num_stages":2}' ] ||
  fail "SGLang's config in use (triton_3_4_0, the newest beside the missing triton_3_6_0) was not measured first"; ok

# vLLM 0.10's keyword flags, fp8 per tensor: vLLM's dtype field
MOETUNE_DOUBLE_VLLM_API=flags expect_exit 0 "$TMP/f" "$MT" sweep --engine vllm $SHAPE --budget 5 --dtype fp8_w8a8 \
  --db "$TMP/f.db" --out "$TMP/f.d"
[ -f "$TMP/f.d/E=8,N=128,device_name=CPU,dtype=fp8_w8a8.json" ] || fail "fp8 file: $(ls "$TMP/f.d")"; ok
case "$(sql "$TMP/f.db" "select distinct kernel_hash from measurements")" in *", flags") ok ;; *) fail "flags api" ;; esac
# the roofline floor of a quantised dtype: its 1-byte weights
[ "$(sql "$TMP/f.db" "select count(*) from measurements where status = 'ok' and not floor_us > 0")" = 0 ] ||
  fail "an fp8 row without its floor"; ok

# SGLang, fp8 with 128x128 blocks: its name and folder, no triton_version,
# and SGLang's block filter (BLOCK_SIZE_K divides 128)
expect_exit 0 "$TMP/s" "$MT" sweep --engine sglang $SHAPE --intermediate 256 --budget 5 --dtype fp8_w8a8 \
  --block-shape 128,128 --db "$TMP/s.db" --out "$TMP/s.d"
F="$TMP/s.d/configs/triton_3_6_0/E=8,N=256,device_name=CPU,dtype=fp8_w8a8,block_shape=[128, 128].json"
[ -f "$F" ] || fail "no SGLang file: $(find "$TMP/s.d" -type f)"; ok
[ "$(py "$F" '"triton_version" in j')" = False ] || fail "SGLang's file holds triton_version"; ok
[ "$(find "$TMP/s.d" -type f | wc -l)" = 1 ] || fail "files besides SGLang's: $(find "$TMP/s.d" -type f)"; ok
[ "$(sql "$TMP/s.db" "select count(*) from measurements m join configs c on c.id = m.config_id
  where json_extract(c.params, '$.BLOCK_SIZE_K') = 256")" = 0 ] || fail "SGLang's block filter let BLOCK_SIZE_K 256 through"; ok

# vLLM runs a BLOCK_SIZE_K above the scale blocks' k as the blocks' k
# (its invoke_fused_moe_kernel clamps it), SGLang as it is: a 256 config
# over 128-wide blocks is vLLM's 128 kernel, and wrong through SGLang
"$PY" - >"$TMP/bk.in" <<'PYEOF'
import json
print(json.dumps({"op": "hello"}))
key = {"E": 4, "N": 256, "K": 512, "topk": 2, "dtype": "fp8_w8a8", "block_n": 128, "block_k": 128}
for bk in (256, 128):
    cfg = dict(BLOCK_SIZE_M=16, BLOCK_SIZE_N=64, BLOCK_SIZE_K=bk, GROUP_SIZE_M=1, num_warps=4, num_stages=2)
    print(json.dumps({"op": "measure", "family": "fused_moe", "key": key, "point": [4], "params": cfg, "seed": 5,
                      "renormalize": 1, "policy": {"warmup": 1, "min_reps": 2, "max_reps": 3, "min_time_s": 0,
                                                   "cold": 0, "check_rows": 4, "tolerance": 0.05, "routings": 1}}))
PYEOF
for eng in vllm sglang; do
  expect_exit 0 "$TMP/bk-$eng" "$PY" "$HERE/../python/moetune-engine-worker" --engine $eng --device cpu <"$TMP/bk.in"
  want="ok ok"; [ $eng = sglang ] && want="failed ok"
  [ "$(sed -n 2,3p "$TMP/bk-$eng" | "$PY" -c 'import json,sys; print(" ".join(json.loads(l)["status"] for l in sys.stdin))')" = "$want" ] ||
    fail "$eng's BLOCK_SIZE_K 256 over 128-wide blocks: $(cat "$TMP/bk-$eng")"; ok
done

# SGLang's down GEMM (--down), tuned on its own with each batch size's
# gate-up config pinned: a _down file beside the gate-up file with the same
# batch sizes, each with the gate-up file's BLOCK_SIZE_M (SGLang asserts
# they are equal); the down configs reach the kernel's second GEMM (wrong
# results of some are caught there), and the first measured at each batch
# size is the gate-up config's own (what SGLang runs without the file)
MOETUNE_DOUBLE_WRONG_DOWN='"BLOCK_SIZE_K":64' expect_exit 0 "$TMP/dn" "$MT" sweep --engine sglang $SHAPE --budget 6 \
  --down --json --db "$TMP/dn.db" --out "$TMP/dn.d"
UP="$TMP/dn.d/configs/triton_3_6_0/E=8,N=128,device_name=CPU.json" DN="$TMP/dn.d/configs/triton_3_6_0/E=8,N=128,device_name=CPU_down.json"
[ -f "$UP" ] && [ -f "$DN" ] || fail "SGLang's file pair: $(find "$TMP/dn.d" -type f)"; ok
python3 - "$UP" "$DN" <<'PY' || fail "the _down file does not match its gate-up file"
import json, sys
up, dn = (json.load(open(f)) for f in sys.argv[1:3])
assert list(up) == list(dn) == ["1", "16"], (list(up), list(dn))
for m in up:
    assert dn[m]["BLOCK_SIZE_M"] == up[m]["BLOCK_SIZE_M"], m
    assert list(dn[m]) == ["BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps", "num_stages"], dn[m]
    assert dn[m]["BLOCK_SIZE_K"] != 64, "a wrong down config was written"
PY
ok
[ "$(py "$TMP/dn" 'j["down_gemm"]["batch_sizes"]')" = 2 ] || fail "--json's down_gemm: $(cat "$TMP/dn")"; ok
[ "$(sql "$TMP/dn.db" "select count(distinct kernel_hash) from measurements
  where kernel_hash like 'sglang 0.5.3, triton 3.6.0, topk_output, down GEMM after gate-up %'")" = 2 ] ||
  fail "the down GEMM's rows: one kernel id per pinned gate-up config"; ok
[ "$(sql "$TMP/dn.db" "select count(*) from measurements m join configs c on c.id = m.config_id
  where m.kernel_hash like '%down GEMM%' and json_extract(c.params, '$.BLOCK_SIZE_M') is not null")" = 0 ] ||
  fail "a down-GEMM row carries its own BLOCK_SIZE_M"; ok
[ "$(sql "$TMP/dn.db" "select count(*) from measurements where kernel_hash like '%down GEMM%' and reason like 'wrong result%'")" -ge 1 ] ||
  fail "no wrong down config seen: the down config did not reach the second GEMM"; ok
python3 - "$TMP/dn.db" "$UP" <<'PY' || fail "the down GEMM's default is not the gate-up config's"
import json, sqlite3, sys
db, up = sqlite3.connect(sys.argv[1]), json.load(open(sys.argv[2]))
for m, cfg in up.items():
    rows = db.execute("select c.params from measurements m join configs c on c.id = m.config_id where m.M = ? and "
                      "m.is_default = 1 and m.kernel_hash like '%down GEMM%'", (int(m),)).fetchall()
    want = {k: v for k, v in cfg.items() if k != "BLOCK_SIZE_M"}
    assert [json.loads(r[0]) for r in rows] == [want], (m, rows, want)
PY
ok
# through a bucket: the _down file under its device, pulled beside its pair
expect_exit 0 "$TMP/dnp" "$MT" publish "file://$TMP/dnb" --db "$TMP/dn.db"
[ -f "$TMP/dnb/CPU/triton_3_6_0/${DN##*/}" ] || fail "the _down file's place in the bucket: $(find "$TMP/dnb" -type f)"; ok
expect_exit 0 "$TMP/dnl" "$MT" pull "file://$TMP/dnb" --cache "$TMP/dnc" --no-db
cmp -s "$DN" "$TMP/dnc/configs/triton_3_6_0/${DN##*/}" || fail "the pulled _down file differs: $(find "$TMP/dnc" -type f)"; ok
# again: nothing measured; a gate-up config without its down rows leaves
# the _down file unwritten (SGLang would pair a gate-up config with another
# batch size's down config), and says so
expect_exit 0 "$TMP/dn2" "$MT" sweep --engine sglang $SHAPE --budget 6 --down --db "$TMP/dn.db" --out "$TMP/dn.d"
expect_in "$TMP/dn2" "measured 0 variants"
python3 - "$TMP/dn.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("delete from finalists where M = 16 and kernel_hash like '%down GEMM%'")
db.execute("delete from measurements where M = 16 and kernel_hash like '%down GEMM%'")
db.commit()
PY
expect_exit 0 "$TMP/dn3" "$MT" export --db "$TMP/dn.db" --out "$TMP/dn3.d" --format vllm
expect_in "$TMP/dn3" "batch sizes 16 have no down GEMM tuned with this file's gate-up configs"
[ -f "$TMP/dn3.d/configs/triton_3_6_0/E=8,N=128,device_name=CPU.json" ] && [ ! -e "$TMP/dn3.d/configs/triton_3_6_0/${DN##*/}" ] ||
  fail "an incomplete _down file was written: $(find "$TMP/dn3.d" -type f)"; ok
# --down is SGLang's, and needs an SGLang with a down-GEMM config
expect_exit 2 "$TMP/dv" "$MT" sweep --engine vllm $SHAPE --down --db "$TMP/dv.db" --no-export
expect_in "$TMP/dv" "--down tunes SGLang's separate down-GEMM config: it needs --engine sglang"
MOETUNE_DOUBLE_SGLANG_API=topk_weights MOETUNE_DOUBLE_SGLANG_VERSION=0.4.6 expect_exit 1 "$TMP/d4" "$MT" sweep \
  --engine sglang $SHAPE --budget 2 --down --db "$TMP/d4.db" --no-export
expect_in "$TMP/d4" "SGLang 0.4.6 has no separate down-GEMM config"

# SGLang's folders through a bucket: published under the device as
# triton_X_Y_Z/NAME (the key without the name's space), pulled into the
# triton_X_Y_Z folder of the cache as SGLang spells the file, byte for byte
expect_exit 0 "$TMP/sp" "$MT" publish "file://$TMP/sb" --db "$TMP/s.db"
expect_in "$TMP/sp" "1 SGLang file(s) in their triton_X_Y_Z folders"
[ -f "$TMP/sb/CPU/triton_3_6_0/E=8,N=256,device_name=CPU,dtype=fp8_w8a8,block_shape=[128,128].json" ] ||
  fail "the bucket's layout: $(find "$TMP/sb" -type f)"; ok
expect_exit 0 "$TMP/sl" "$MT" pull "file://$TMP/sb" --cache "$TMP/sc" --db "$TMP/sl.db"
cmp -s "$F" "$TMP/sc/configs/triton_3_6_0/${F##*/}" || fail "the pulled SGLang file differs: $(find "$TMP/sc" -type f)"; ok
# SGLang's configs are not vLLM's foreign rows
[ "$(sql "$TMP/sl.db" "select count(*) from measurements")" = 0 ] || fail "a pulled SGLang file became foreign rows"; ok
expect_exit 0 "$TMP/sl2" "$MT" pull "file://$TMP/sb" --cache "$TMP/sc" --no-db
expect_in "$TMP/sl2" "0 file(s) fetched, 1 unchanged"
expect_exit 0 "$TMP/sp2" "$MT" publish "file://$TMP/sb" --db "$TMP/s.db"
expect_in "$TMP/sp2" "0 file(s) uploaded, 1 unchanged"
# a manifest whose folder is a path, or whose name hides one, is refused
# and writes nothing
for bad in '"folder": "../x"' '"folder": "triton_3_6_0/.."' '"folder": 7' '"name": "../E=8,N=256,device_name=CPU.json"'; do
  rm -rf "$TMP/sbad" "$TMP/scbad"; cp -r "$TMP/sb" "$TMP/sbad"
  python3 - "$TMP/sbad/CPU/manifest.json" "$bad" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["files"][0].update(json.loads("{%s}" % sys.argv[2]))
json.dump(m, open(sys.argv[1], "w"))
PY
  expect_exit 1 "$TMP/sbx" "$MT" pull "file://$TMP/sbad" --cache "$TMP/scbad" --no-db
  expect_in "$TMP/sbx" "refused, nothing of CPU replaced"
  [ -z "$(find "$TMP/scbad" "$TMP/x" -name '*.json' 2>/dev/null)" ] || fail "a hostile manifest wrote a file"; ok
done

# the engine's wrong results are caught by the check and never exported; a
# crash of the engine costs its variant only
MOETUNE_DOUBLE_WRONG='"BLOCK_SIZE_K":64' MOETUNE_DOUBLE_CRASH='"num_stages":5' \
  expect_exit 0 "$TMP/w" "$MT" sweep --engine vllm $SHAPE --strategy grid --budget 24 --db "$TMP/w.db" --out "$TMP/w.d"
[ "$(sql "$TMP/w.db" "select count(*) from measurements m join configs c on c.id = m.config_id
  where json_extract(c.params, '$.BLOCK_SIZE_K') = 64 and m.status = 'ok'")" = 0 ] || fail "a wrong result passed"; ok
[ "$(sql "$TMP/w.db" "select count(*) from measurements where reason like 'wrong result%'")" -ge 1 ] || fail "no wrong result seen"; ok
[ "$(sql "$TMP/w.db" "select count(*) from measurements where reason like '%signal 11%'")" -ge 1 ] || fail "no crash seen"; ok
[ "$(py "$TMP/w.d/E=8,N=128,device_name=CPU.json" '[j[m]["BLOCK_SIZE_K"] for m in ("1","16")].count(64)')" = 0 ] ||
  fail "a wrong config was exported"; ok

# an engine that is missing, too old, or of an unknown shape: said, with the version
mkdir -p "$TMP/empty"
PYTHONPATH=$TMP/empty expect_exit 1 "$TMP/m" "$MT" sweep --engine vllm $SHAPE --db "$TMP/m.db" --no-export
expect_in "$TMP/m" "vllm is not installed in the Python moetune runs"
MOETUNE_DOUBLE_VLLM_VERSION=0.5.1 expect_exit 1 "$TMP/o" "$MT" sweep --engine vllm $SHAPE --db "$TMP/m.db" --no-export
expect_in "$TMP/o" "vllm 0.5.1 found: moetune's vllm adapter supports vLLM 0.6.4 and later"
MOETUNE_PYTHON=/nonexistent/python expect_exit 1 "$TMP/p" "$MT" sweep --engine sglang $SHAPE --db "$TMP/m.db" --no-export
expect_in "$TMP/p" "cannot run '/nonexistent/python'"

# options
expect_exit 2 "$TMP/u" "$MT" sweep --engine tensorrt $SHAPE
expect_in "$TMP/u" "--engine 'tensorrt': expected vllm or sglang"
expect_exit 2 "$TMP/u" "$MT" sweep --block-shape 128,128 $SHAPE
expect_in "$TMP/u" "--block-shape is taken with --dtype fp8_w8a8 only (got bf16)"
expect_exit 2 "$TMP/u" "$MT" sweep --engine vllm --dtype mxfp4 $SHAPE
expect_in "$TMP/u" "mxfp4 is not measured yet"
expect_exit 2 "$TMP/u" "$MT" sweep --engine vllm --dtype bf16 --group-size 64 $SHAPE
expect_in "$TMP/u" "--group-size is taken with --dtype int4_w4a16 and int8_w8a16 only (got bf16)"
expect_exit 2 "$TMP/u" "$MT" sweep --engine vllm --dtype int4_w4a16 --group-size 96 $SHAPE
expect_in "$TMP/u" "needs K (256) and N (128) to be multiples of it"
expect_exit 2 "$TMP/u" "$MT" sweep --engine vllm --dtype bf16 --block-shape 128,128 $SHAPE
expect_in "$TMP/u" "--block-shape is taken with --dtype fp8_w8a8 only"
expect_exit 2 "$TMP/u" "$MT" sweep --engine vllm --dtype fp8_w8a8 --block-shape 128x128 $SHAPE
expect_in "$TMP/u" "expected N,K"
# a quantised checkpoint is tuned in its own scheme, and says so
expect_exit 0 "$TMP/q" "$MT" sweep --engine vllm --model-config "$HERE/fixtures/model-configs/deepseek-v3-fp8.json" \
  --tp 8 --dry-run --device cpu
expect_in "$TMP/q" "tuning vllm's kernel in fp8_w8a8 with its weight blocks"
expect_in "$TMP/q" "fp8_w8a8 block_shape=[128,128], batch sizes"
# compiling ahead in parallel processes: only what the search measures (of
# the 24 configs x 2 batch sizes, the budget's 4 x 2), in rounds of up to as
# many as there are processes (a quarter of the budget at most): the config
# about to be measured and the search's next proposals, all of which are
# then measured; a process that crashes loses its share only to the sweep,
# which measures (and stores) each variant as it comes
ONLY="--only BLOCK_SIZE_M=16,BLOCK_SIZE_N=32,num_stages=2"
LOUD=${SHAPE/ --quiet/}
expect_exit 0 "$TMP/c" "$MT" sweep --engine vllm $LOUD --budget 4 --compile-jobs 2 $ONLY --db "$TMP/c.db" --no-export
n=$(sed -n 's/.*compiled ahead: \([0-9]*\) configs in \([0-9]*\) rounds of up to 2 in parallel (0 failed.*/\1 \2/p' "$TMP/c.err")
read -r nc nr <<<"$n"
[ "$nc" = 8 ] && [ "$nr" = 4 ] || fail "compiled ahead '$n' (configs rounds): expected the 8 measured in 4 rounds of 2"; ok
expect_in "$TMP/c" "compiled ahead $nc configs in"
# and in the JSON, for tools that split the time
expect_exit 0 "$TMP/cj" "$MT" sweep --engine vllm $SHAPE --budget 2 --compile-jobs 2 $ONLY --db "$TMP/cj.db" --no-export --json
[ "$(py "$TMP/cj" 'j["compiled_ahead"]["configs"] >= 4 and j["compiled_ahead"]["rounds"] >= 2 and j["compiled_ahead"]["seconds"] > 0')" = True ] ||
  fail "the JSON lacks the compiles ahead: $(cat "$TMP/cj")"; ok
# a resumed sweep measures nothing again, and compiles nothing either
expect_exit 0 "$TMP/c1" "$MT" sweep --engine vllm $LOUD --budget 4 --compile-jobs 2 $ONLY --db "$TMP/c.db" --no-export
grep -q "compiled ahead" "$TMP/c1.err" && fail "a resumed sweep compiled stored configs again"; ok
MOETUNE_DOUBLE_CRASH='"BLOCK_SIZE_K":128' expect_exit 0 "$TMP/c2" "$MT" sweep --engine vllm $LOUD --budget 4 \
  --compile-jobs 2 $ONLY --db "$TMP/c2.db" --no-export
expect_in "$TMP/c2" "a compile-ahead process failed"
[ "$(sql "$TMP/c2.db" "select count(*) from measurements where status = 'ok'")" -ge 2 ] || fail "no verified rows"; ok
# not on the CPU unless asked
expect_exit 0 "$TMP/c3" "$MT" sweep --engine vllm $LOUD --budget 2 $ONLY --db "$TMP/c3.db" --no-export
grep -q "compiling the engine's kernels ahead" "$TMP/c3.err" && fail "compiled ahead on the CPU unasked"; ok

# fp8 with per-channel weights and per-token activations: its own problem,
# named fp8_w8a8 by vLLM and with per_channel_quant=True by SGLang; taken
# from a compressed-tensors config with the channel strategy
expect_exit 0 "$TMP/pc" "$MT" sweep --engine sglang $SHAPE --budget 4 --dtype fp8_w8a8 --per-channel --db "$TMP/pc.db" \
  --out "$TMP/pc.d"
[ -f "$TMP/pc.d/configs/triton_3_6_0/E=8,N=128,device_name=CPU,dtype=fp8_w8a8,per_channel_quant=True.json" ] ||
  fail "per-channel SGLang file: $(find "$TMP/pc.d" -type f)"; ok
[ "$(sql "$TMP/pc.db" "select dtype from problems")" = fp8_w8a8_per_channel ] || fail "per-channel problem"; ok
expect_exit 0 "$TMP/pc2" "$MT" sweep --engine vllm $SHAPE --budget 4 --dtype fp8_w8a8 --per-channel --db "$TMP/pc.db" \
  --out "$TMP/pc2.d"
[ -f "$TMP/pc2.d/E=8,N=128,device_name=CPU,dtype=fp8_w8a8.json" ] || fail "per-channel vLLM file: $(ls "$TMP/pc2.d")"; ok
expect_exit 0 "$TMP/pc3" "$MT" sweep --engine vllm --model-config "$HERE/fixtures/model-configs/mixtral-fp8-dynamic.json" \
  --tp 2 --dry-run --device cpu
expect_in "$TMP/pc3" "in fp8_w8a8 with per-channel weights"
expect_in "$TMP/pc3" "fp8_w8a8_per_channel, batch sizes"
expect_exit 2 "$TMP/pc4" "$MT" sweep --engine vllm $SHAPE --dtype fp8_w8a8 --per-channel --block-shape 128,128
expect_in "$TMP/pc4" "--per-channel is taken with --dtype fp8_w8a8 and no --block-shape"

# int4_w4a16 (GPTQ's symmetric groups, two values a byte): vLLM names it by
# the unpacked N, SGLang by the packed one; a GPTQ/AWQ config gives its group
expect_exit 0 "$TMP/i4" "$MT" sweep --engine vllm $SHAPE --budget 3 --dtype int4_w4a16 --group-size 64 --db "$TMP/i4.db" \
  --out "$TMP/i4.d"
[ -f "$TMP/i4.d/E=8,N=128,device_name=CPU,dtype=int4_w4a16.json" ] || fail "int4 vLLM file: $(ls "$TMP/i4.d")"; ok
[ "$(sql "$TMP/i4.db" "select block_n || ',' || block_k from problems")" = "0,64" ] || fail "int4 group"; ok
expect_exit 0 "$TMP/i5" "$MT" sweep --engine sglang $SHAPE --budget 3 --dtype int4_w4a16 --group-size 64 --db "$TMP/i4.db" \
  --out "$TMP/i5.d"
[ -f "$TMP/i5.d/configs/triton_3_6_0/E=8,N=64,device_name=CPU,dtype=int4_w4a16.json" ] ||
  fail "int4 SGLang file: $(find "$TMP/i5.d" -type f)"; ok
# int4 with a zero point per group (AWQ's scheme): its own problem, measured
# through the kernel's w1_zp/w2_zp path (the doubles unpack the zero points
# as vLLM's gptq_awq kernel reads them, so a wrong packing fails the check),
# named int4_w4a16 by both engines; with the symmetric problem in the same
# database the shared name is said
expect_exit 0 "$TMP/z4" "$MT" sweep --engine vllm $SHAPE --budget 3 --dtype int4_w4a16 --zero-points --group-size 64 \
  --db "$TMP/i4.db" --out "$TMP/z4.d"
[ "$(sql "$TMP/i4.db" "select dtype || ' ' || block_k from problems where dtype like '%zp'")" = "int4_w4a16_zp 64" ] ||
  fail "int4 zero-point problem: $(sql "$TMP/i4.db" "select dtype, block_k from problems")"; ok
[ "$(sql "$TMP/i4.db" "select count(*) from measurements m join problems p on p.id = m.problem_id
  where p.dtype = 'int4_w4a16_zp' and m.status = 'ok' and m.rel_err <= m.tolerance")" -ge 2 ] ||
  fail "no verified int4 zero-point rows: $(sql "$TMP/i4.db" "select status, reason from measurements limit 3")"; ok
[ -f "$TMP/z4.d/E=8,N=128,device_name=CPU,dtype=int4_w4a16.json" ] || fail "int4 zp vLLM file: $(ls "$TMP/z4.d")"; ok
expect_in "$TMP/z4" "problem int4_w4a16 in groups of 64 K=256 top-2 on CPU has the same vllm file name as this one (int4_w4a16_zp in groups of 64 K=256 top-2)"
# another group size is another problem under the same name too
expect_exit 0 "$TMP/z8" "$MT" sweep --engine vllm $SHAPE --budget 2 --dtype int4_w4a16 --group-size 128 \
  --db "$TMP/i4.db" --out "$TMP/z8.d"
expect_in "$TMP/z8" "problem int4_w4a16 in groups of 64 K=256 top-2 on CPU has the same vllm file name as this one (int4_w4a16 in groups of 128 K=256 top-2)"
MOETUNE_DOUBLE_SGLANG_API=topk_weights MOETUNE_DOUBLE_SGLANG_VERSION=0.4.6 expect_exit 0 "$TMP/z5" "$MT" sweep \
  --engine sglang $SHAPE --budget 3 --dtype int4_w4a16 --zero-points --group-size 64 --db "$TMP/z5.db" --out "$TMP/z5.d"
[ -f "$TMP/z5.d/configs/triton_3_6_0/E=8,N=64,device_name=CPU,dtype=int4_w4a16.json" ] ||
  fail "int4 zp SGLang file: $(find "$TMP/z5.d" -type f)"; ok
# int8_w8a16 in GPTQ's groups (stored with 128 added, block_shape [0, group]):
# its own problem beside the per-channel one, named int8_w8a16 as that;
# a GPTQ 8-bit config gives its group
expect_exit 0 "$TMP/g8" "$MT" sweep --engine vllm $SHAPE --budget 3 --dtype int8_w8a16 --group-size 64 --db "$TMP/g8.db" \
  --out "$TMP/g8.d"
[ "$(sql "$TMP/g8.db" "select dtype || ' ' || block_n || ',' || block_k from problems")" = "int8_w8a16 0,64" ] ||
  fail "int8 group problem: $(sql "$TMP/g8.db" "select dtype, block_n, block_k from problems")"; ok
[ "$(sql "$TMP/g8.db" "select count(*) from measurements where status = 'ok' and rel_err <= tolerance")" -ge 2 ] ||
  fail "no verified int8 group rows: $(sql "$TMP/g8.db" "select status, reason from measurements limit 3")"; ok
[ -f "$TMP/g8.d/E=8,N=128,device_name=CPU,dtype=int8_w8a16.json" ] || fail "int8 group vLLM file: $(ls "$TMP/g8.d")"; ok
expect_in "$TMP/g8" "vllm runs GPTQ and AWQ experts on its Marlin MoE kernel"
printf '%s\n' '{"num_local_experts": 8, "hidden_size": 4096, "intermediate_size": 14336, "num_experts_per_tok": 2,' \
  ' "quantization_config": {"bits": 8, "group_size": 128, "desc_act": false, "sym": true, "quant_method": "gptq"}}' \
  >"$TMP/gptq8.json"
expect_exit 0 "$TMP/g9" "$MT" sweep --engine sglang --model-config "$TMP/gptq8.json" --tp 2 --dry-run --device cpu
expect_in "$TMP/g9" "E=8 N=7168 K=4096 top-2 int8_w8a16 in groups of 128, batch sizes"
expect_in "$TMP/g9" "gptq, 8-bit weights in groups of 128; tuning sglang's kernel in int8_w8a16"
# zero points without int4, or for moetune's own kernels, are refused
expect_exit 2 "$TMP/z6" "$MT" sweep --engine vllm $SHAPE --dtype fp8_w8a8 --zero-points
expect_in "$TMP/z6" "--zero-points is taken with --dtype int4_w4a16 only (got fp8_w8a8)"
expect_exit 2 "$TMP/z7" "$MT" sweep $SHAPE --zero-points
expect_in "$TMP/z7" "--zero-points is taken with --engine and int4_w4a16"
# an AWQ config (zero_point true) is tuned with its zero points, and says so
expect_exit 0 "$TMP/i6" "$MT" sweep --engine vllm --model-config "$HERE/fixtures/model-configs/mixtral-awq.json" --tp 2 \
  --dry-run --device cpu
expect_in "$TMP/i6" "int4_w4a16_zp in groups of 128, batch sizes"
expect_in "$TMP/i6" "awq, 4-bit weights in groups of 128 with zero points; tuning vllm's kernel in int4_w4a16 with zero points"
# a model's group that does not divide the shard's N is halved as the
# engines' moe_wna16 loads the layer (down to 32, else refused), and said
printf '%s\n' '{"num_experts": 128, "hidden_size": 2048, "moe_intermediate_size": 768, "num_experts_per_tok": 8,' \
  ' "quantization_config": {"bits": 4, "group_size": 128, "quant_method": "awq", "zero_point": true}}' >"$TMP/qawq.json"
expect_exit 0 "$TMP/qa" "$MT" sweep --engine vllm --model-config "$TMP/qawq.json" --tp 8 --dry-run --device cpu
expect_in "$TMP/qa" "the model's groups of 128 do not divide N (96) or K (2048): vllm's moe_wna16 loads them as groups of 32"
expect_in "$TMP/qa" "E=128 N=96 K=2048 top-8 int4_w4a16_zp in groups of 32, batch sizes"
expect_exit 2 "$TMP/qa" "$MT" sweep --engine vllm --model-config "$TMP/qawq.json" --tp 16 --dry-run --device cpu
expect_in "$TMP/qa" "nor does any half of them down to 32: vllm's moe_wna16 refuses such a layer"
# (a group given on the command line is taken as given)
expect_exit 2 "$TMP/qa" "$MT" sweep --engine vllm --model-config "$TMP/qawq.json" --tp 8 --group-size 128 --dry-run --device cpu
expect_in "$TMP/qa" "int4_w4a16 in groups of 128 needs K (2048) and N (96) to be multiples of it"
# and which of the engine's kernels reads the file is said
expect_in "$TMP/i6" "vllm runs GPTQ and AWQ experts on its Marlin MoE kernel where the layer's shape allows"

# the fleet: vLLM's files through a bucket into the pull cache, a flat folder
# VLLM_TUNED_CONFIG_FOLDER can point at; SGLang's folders are said to stay out
expect_exit 0 "$TMP/pb" "$MT" publish "file://$TMP/bucket" --db "$TMP/v.db"
[ -f "$TMP/bucket/CPU/E=8,N=128,device_name=CPU.json" ] || fail "bucket: $(find "$TMP/bucket" -type f)"; ok
expect_exit 0 "$TMP/pl" "$MT" pull "file://$TMP/bucket" --cache "$TMP/cache" --no-db
cmp -s "$TMP/cache/E=8,N=128,device_name=CPU.json" "$TMP/v.d/E=8,N=128,device_name=CPU.json" || fail "pulled vLLM file"; ok

# names and layout against the engines' real files (../shared/data): each
# file's configs stored as measured on that engine's kernel, then exported,
# must come back byte for byte (vLLM: triton_version first; SGLang: its
# triton_X_Y_Z folder, block_shape with a space, per_channel_quant=True)
D=${MT_SHARED:-$HERE/../../shared}/data
[ -d "$D/vllm-configs" ] || fail "no shared data at $D"
expect_exit 0 "$TMP/rdb" "$MT" show --db "$TMP/real.db"
"$PY" - "$TMP/real.db" "$D" <<'PYEOF' || fail "cannot store the real files' configs"
import json, re, sqlite3, sys
db, d = sys.argv[1], sys.argv[2]
files = [("vllm", "3.4.0", "vllm-configs/E=128,N=1024,device_name=NVIDIA_H100,dtype=fp8_w8a8.json"),
         ("vllm", "3.5.1", "vllm-configs/E=128,N=384,device_name=NVIDIA_H100_80GB_HBM3.json"),
         ("sglang", "3.4.0", "sglang-configs/triton_3_4_0/E=161,N=192,device_name=NVIDIA_H200,dtype=fp8_w8a8,per_channel_quant=True.json"),
         ("sglang", "3.4.0", "sglang-configs/triton_3_4_0/E=257,N=256,device_name=NVIDIA_H20,dtype=fp8_w8a8,block_shape=[128, 128].json")]
c = sqlite3.connect(db)
for engine, triton, f in files:
    name = f.split("/")[-1]
    E, N = (int(x) for x in re.match(r"E=(\d+),N=(\d+)", name).groups())
    dev = re.search(r"device_name=([^,.]*)", name).group(1)
    dtype = re.search(r"dtype=([a-z0-9_]+)", name)
    dtype = dtype.group(1) if dtype else "bf16"
    if "per_channel_quant=True" in name:
        dtype += "_per_channel"
    bn, bk = (128, 128) if "block_shape" in name else (0, 0)
    K = 4096 + len(name)  # a K of its own: no two problems share a name
    c.execute("insert or ignore into devices(backend, name, raw_name) values (?, ?, ?)", (engine, dev, dev))
    dev_id = c.execute("select id from devices where backend = ? and name = ?", (engine, dev)).fetchone()[0]
    key = json.dumps({"E": E, "N": N, "K": K, "topk": 8, "block_n": bn, "block_k": bk, "dtype": dtype}, separators=(",", ":"))
    cur = c.execute("insert into problems(kernel, key, dtype, E, N, K, topk, block_n, block_k) values "
                    "('fused_moe', ?, ?, ?, ?, ?, 8, ?, ?)", (key, dtype, E, N, K, bn, bk))
    prob = cur.lastrowid
    for M, cfg in json.load(open(d + "/" + f)).items():
        if M == "triton_version":
            continue
        params = json.dumps(cfg, separators=(",", ":"))
        c.execute("insert or ignore into configs(backend, params) values (?, ?)", (engine, params))
        cid = c.execute("select id from configs where backend = ? and params = ?", (engine, params)).fetchone()[0]
        c.execute("insert into measurements(device_id, problem_id, M, config_id, status, median_us, kernel_hash, "
                  "moetune_version, timing_policy) values (?, ?, ?, ?, 'ok', 10.0, ?, 'test', 'test')",
                  (dev_id, prob, int(M), cid, "%s 0.0.0, triton %s, test" % (engine, triton)))
c.commit()
PYEOF
ok
expect_exit 0 "$TMP/rx" "$MT" export --db "$TMP/real.db" --out "$TMP/real.d" --format vllm
for f in "E=128,N=1024,device_name=NVIDIA_H100,dtype=fp8_w8a8.json" "E=128,N=384,device_name=NVIDIA_H100_80GB_HBM3.json"; do
  cmp "$TMP/real.d/$f" "$D/vllm-configs/$f" || fail "vLLM file $f differs from vLLM's"; ok
done
for f in "triton_3_4_0/E=161,N=192,device_name=NVIDIA_H200,dtype=fp8_w8a8,per_channel_quant=True.json" \
         "triton_3_4_0/E=257,N=256,device_name=NVIDIA_H20,dtype=fp8_w8a8,block_shape=[128, 128].json"; do
  cmp "$TMP/real.d/configs/$f" "$D/sglang-configs/$f" || fail "SGLang file $f differs from SGLang's"; ok
done

# a daemon job of an engine's kernel: the queue, the sweep, the file
expect_exit 0 "$TMP/j" "$MT" submit --db "$TMP/j.db" --device cpu --engine vllm $SHAPE --budget 3
expect_exit 0 "$TMP/jd" "$MT" daemon --db "$TMP/j.db" --devices cpu --until-idle --poll 0.2
[ "$(sql "$TMP/j.db" "select status from jobs")" = done ] || fail "job: $(sql "$TMP/j.db" "select status || ' ' || coalesce(message, '') from jobs")"; ok
[ "$(sql "$TMP/j.db" "select backend from devices where id in (select device_id from measurements)")" = vllm ] ||
  fail "the daemon's sweep did not measure vLLM's kernel"; ok

# two problems that only vLLM's name cannot tell apart (another K): said by
# the sweep, and a whole-database export writes the first and refuses the second
expect_exit 0 "$TMP/t" "$MT" sweep --engine vllm $SHAPE --hidden 128 --budget 3 --db "$TMP/v.db" --out "$TMP/t.d"
expect_in "$TMP/t" "has the same vllm file name as this one (bf16 K=128 top-2)"
expect_exit 1 "$TMP/x" "$MT" export --db "$TMP/v.db" --out "$TMP/x.d" --format vllm
expect_in "$TMP/x" "problem bf16 K=128 top-2 on CPU has the same vllm file name as bf16 K=256 top-2, which is written there"
[ "$(ls "$TMP/x.d")" = "E=8,N=128,device_name=CPU.json" ] || fail "export: $(ls "$TMP/x.d")"; ok
# the file written is the first problem's (K=256): its fastest config at M=16
"$PY" - "$TMP/v.db" "$TMP/x.d/E=8,N=128,device_name=CPU.json" <<'PYEOF' || fail "the exported file is not K=256's"
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
best = c.execute("select c.params from measurements m join problems p on p.id = m.problem_id join configs c on "
                 "c.id = m.config_id where m.status = 'ok' and m.M = 16 and p.K = 256 order by m.median_us limit 1").fetchone()
assert json.load(open(sys.argv[2]))["16"] == json.loads(best[0])
PYEOF
ok

# SGLang fuses DeepSeek-V3's shared expert: E+1, unless told as SGLang is
expect_exit 0 "$TMP/e" "$MT" sweep --engine sglang --model-config "$HERE/fixtures/model-configs/deepseek-v3-fp8.json" \
  --tp 8 --dry-run --device cpu
expect_in "$TMP/e" "E=257 N=256 K=7168 top-8 fp8_w8a8"
expect_in "$TMP/e" "SGLang fuses deepseek_v3's shared expert"
expect_exit 0 "$TMP/e" "$MT" sweep --engine sglang --model deepseek-v3 --tp 8 --dry-run --device cpu \
  --disable-shared-experts-fusion --dtype fp8_w8a8 --block-shape 128,128
expect_in "$TMP/e" "E=256 N=256"
expect_exit 0 "$TMP/e" "$MT" sweep --engine vllm --model deepseek-v3 --tp 8 --dry-run --device cpu
expect_in "$TMP/e" "E=256 N=256"
expect_in "$TMP/e" "this tunes vllm's kernel in bf16"
expect_exit 0 "$TMP/e" "$MT" sweep --engine sglang --model qwen3-30b-a3b --dry-run --device cpu
expect_in "$TMP/e" "E=128 N=768"
expect_exit 2 "$TMP/e" "$MT" sweep --engine vllm --model deepseek-v3 --disable-shared-experts-fusion --dry-run
expect_in "$TMP/e" "--disable-shared-experts-fusion is taken with --engine sglang"
done_ok
