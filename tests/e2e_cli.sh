# Help, usage errors and the devices listing.
. "$(dirname "$0")/lib.sh"
for c in sweep devices show export import worker lookup replay; do
  expect_exit 0 "$TMP/h" "$MT" "$c" --help
  expect_in "$TMP/h" "usage: moetune $c"
  expect_exit 2 "$TMP/u" "$MT" "$c" --no-such-option
done
expect_exit 0 "$TMP/h" "$MT" --help
expect_in "$TMP/h" "sweep"
expect_exit 2 "$TMP/u" "$MT" frobnicate
expect_in "$TMP/u" "unknown command 'frobnicate'"
expect_exit 2 "$TMP/u" "$MT"
expect_exit 2 "$TMP/u" "$MT" sweep --device gpu7
expect_in "$TMP/u" "--device 'gpu7'"
expect_exit 2 "$TMP/u" "$MT" export
expect_in "$TMP/u" "--out DIR is required"
expect_exit 2 "$TMP/u" "$MT" sweep --strategy annealing
expect_in "$TMP/u" "--strategy 'annealing'"

expect_exit 0 "$TMP/d" "$MT" devices
expect_in "$TMP/d" "CPU_"
if ! ls /dev/nvidia0 >/dev/null 2>&1; then
  expect_in "$TMP/d" "no CUDA device"
  expect_exit 1 "$TMP/c" "$MT" sweep --device cuda:0 --db "$TMP/x.db"
  expect_in "$TMP/c" "no CUDA device"
fi
expect_exit 0 "$TMP/dj" "$MT" devices --json
[ "$(py "$TMP/dj" 'j["devices"][0]["backend"]')" = cpu ] || fail "devices --json lists the CPU first"; ok
if [ ! -d /sys/class/kfd ]; then
  expect_in "$TMP/d" "no AMD GPU: the amdgpu driver's KFD topology is absent"
  [ -n "$(py "$TMP/dj" 'j["hip"]')" ] || fail "devices --json says why there is no AMD GPU"; ok
fi
# AMD GPUs as the amdgpu driver describes them: a made-up KFD topology with
# an MI308X (PCI id 0x74a2) that reports MI300X as its product name
K=$TMP/kfd/sys/class/kfd/kfd/topology/nodes
mkdir -p "$K/0" "$K/1/mem_banks/0" "$TMP/kfd/sys/class/drm/renderD128/device"
printf 'cpu_cores_count 64\nsimd_count 0\n' >"$K/0/properties"
printf 'simd_count 320\nsimd_per_cu 4\ngfx_target_version 90402\nvendor_id 4098\ndevice_id 29858\ndrm_render_minor 128\n' >"$K/1/properties"
printf 'size_in_bytes 206141652992\n' >"$K/1/mem_banks/0/properties"
echo "AMD Instinct MI300X" >"$TMP/kfd/sys/class/drm/renderD128/device/product_name"
MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 0 "$TMP/dk" "$MT" devices
expect_in "$TMP/dk" "hip:0    AMD_Instinct_MI308X"
expect_in "$TMP/dk" "gfx942      80 CUs"
expect_in "$TMP/dk" "(tunable, untried: the HIP path has never run on an AMD GPU)"
MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 0 "$TMP/dkj" "$MT" devices --json
[ "$(py "$TMP/dkj" '[d["name"] for d in j["devices"] if d["backend"] == "hip"]')" = "['AMD_Instinct_MI308X']" ] ||
  fail "devices --json: the MI308X by its PCI id"; ok
# the sweep takes the listed GPU to its worker, which opens it through
# libamdhip64: here the HIP runtime sees none, and says so
MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 1 "$TMP/h" "$MT" sweep --device hip:0 --db "$TMP/x.db" --batch-sizes 1 --budget 2
expect_in "$TMP/h" "hip:0: no AMD GPU"
# a GPU the driver does not list is refused before any worker starts
MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 1 "$TMP/h1" "$MT" sweep --device hip:1 --db "$TMP/x.db"
expect_in "$TMP/h1" "no AMD GPU hip:1: the amdgpu driver lists 1"
expect_exit 1 "$TMP/h2" "$MT" sweep --device hip:0 --db "$TMP/x.db"
expect_in "$TMP/h2" "no AMD GPU"
# attention sweeps take an AMD GPU the same way
MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 1 "$TMP/ha" "$MT" sweep --kernel attention --device hip:0 --heads 8 --kv-heads 2 \
  --head-dim 64 --page-size 16 --batch-sizes 1 --contexts 40 --db "$TMP/x.db"
expect_in "$TMP/ha" "hip:0: no AMD GPU"
# --device auto with no NVIDIA GPU looks at AMD ones: listed by the driver
# but unusable by the HIP runtime, it says so and tunes the CPU instead
if ! ls /dev/nvidia0 >/dev/null 2>&1; then
  MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 0 "$TMP/au" "$MT" sweep --device auto --db "$TMP/auto.db" --experts 4 \
    --intermediate 64 --hidden 64 --topk 2 --batch-sizes 1 --budget 2 --no-export
  expect_in "$TMP/au" "the amdgpu driver lists 1 AMD GPU(s) but"
  expect_in "$TMP/au" "tuning the CPU backend"
  [ "$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select group_concat(backend) from devices").fetchone()[0])' "$TMP/auto.db")" = cpu ] ||
    fail "auto fell back to the CPU"; ok
fi

# a full disk on stdout is an error, not a silent success
if [ -w /dev/full ]; then
  set +e; "$MT" sweep --list-models >/dev/full 2>"$TMP/full.err"; rc=$?; set -e
  [ $rc -ne 0 ] || fail "writing to a full disk reported success"; ok
  touch "$TMP/full"; expect_in "$TMP/full" "cannot write the output"
fi
expect_exit 0 "$TMP/m" "$MT" sweep --list-models
expect_in "$TMP/m" "deepseek-v3"

# the worker measures any family through the one request; a dtype the
# backend's kernel does not take, an unknown family and a point of the
# wrong size are refused with the reason; the earlier shorthands still work
printf '%s\n' \
  '{"op":"measure","family":"attn_decode","key":{"H":4,"H_kv":1,"D":32,"page":16,"dtype":"fp16"},"point":[2,100],"params":{"partition":0,"pages_per_iter":1,"threads":1},"policy":{"max_reps":3}}' \
  '{"op":"measure","family":"fused_moe","key":{"E":4,"N":32,"K":64,"topk":2,"dtype":"fp16"},"point":[3],"params":{"block_m":4,"block_n":8,"block_k":64,"threads":1}}' \
  '{"op":"measure","family":"mla_decode","key":{},"point":[1]}' \
  '{"op":"measure","family":"fused_moe","key":{"E":4,"N":32,"K":64,"topk":2},"point":[3,4],"params":{}}' \
  '{"op":"measure","E":4,"N":32,"K":64,"topk":2,"dtype":"fp32","M":3,"params":{"block_m":4,"block_n":8,"block_k":64,"threads":1},"policy":{"max_reps":3}}' \
  '{"op":"measure_attn","H":4,"Hkv":1,"D":32,"page":16,"dtype":"bf16","batch":1,"ctx":40,"params":{"partition":0,"pages_per_iter":1,"threads":1},"policy":{"max_reps":3}}' \
  | "$MT" worker --device cpu >"$TMP/wk" 2>"$TMP/wk.err" || fail "the worker: $(cat "$TMP/wk.err")"
python3 - "$TMP/wk" <<'PY' || fail "worker replies: $(cat "$TMP/wk")"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 6, r
assert r[0]["status"] == "ok" and r[0]["rel_err"] <= r[0]["tolerance"] == 2e-2, r[0]
assert not r[1]["ok"] and "does not take dtype fp16 (it takes bf16,fp32,fp8_w8a8,fp8_w8a8_per_channel)" in r[1]["error"], r[1]
assert not r[2]["ok"] and "no kernel family 'mla_decode'" in r[2]["error"], r[2]
assert not r[3]["ok"] and "not an array of 1 integers" in r[3]["error"], r[3]
assert r[4]["status"] == "ok" and r[4]["experts_hit"] > 0, r[4]
assert r[5]["status"] == "ok", r[5]
PY
ok
# lookup: what the runtime picks, against the shared corpus
CORPUS=${MT_SHARED:?}/data/vllm-configs
expect_exit 0 "$TMP/l" "$MT" lookup --experts 8 --intermediate 7168 --device-name NVIDIA_H100_80GB_HBM3 --batch 100 \
  --config-dir "$CORPUS" --cache-dir '' --bundled-dir '' --tuned-dir ''
[ "$(py "$TMP/l" 'j["key"], j["source"], j["foreign"], j["config"]["BLOCK_SIZE_M"]')" = "(96, 'config dir', True, 32)" ] \
  || fail "lookup: $(cat "$TMP/l")"; ok
expect_exit 0 "$TMP/l2" "$MT" lookup --experts 8 --intermediate 7168 --device-name NVIDIA_H200 --batch 3 \
  --config-dir "$CORPUS" --cache-dir '' --bundled-dir '' --tuned-dir ''
[ "$(py "$TMP/l2" 'j["source"], j["key"]')" = "('config dir', 2)" ] || fail "H200 has its own file: $(cat "$TMP/l2")"; ok
expect_exit 0 "$TMP/l3" "$MT" lookup --experts 16 --intermediate 1792 --device-name NVIDIA_H100_80GB_HBM3 --batch 64 \
  --dtype int8_w8a16 --config-dir "$CORPUS" --cache-dir '' --bundled-dir '' --tuned-dir ''
[ "$(py "$TMP/l3" 'j["source"]')" = "config dir" ] || fail "dtype field: $(cat "$TMP/l3")"; ok
expect_exit 0 "$TMP/l4" "$MT" lookup --experts 128 --intermediate 768 --device-name AMD_Instinct_MI300X --batch 8 \
  --config-dir "$CORPUS" --cache-dir '' --bundled-dir '' --tuned-dir ''
[ "$(py "$TMP/l4" 'j["source"], j["config"]["num_stages"]')" = "('default', 2)" ] || fail "MI300X must not read MI308X"; ok
expect_in "$TMP/l4" "default heuristic"
expect_exit 2 "$TMP/l5" "$MT" lookup --experts 8 --batch 1
expect_in "$TMP/l5" "required"
expect_exit 2 "$TMP/l6" "$MT" lookup --experts 8 --intermediate 64 --batch 1 --block-shape 128
expect_in "$TMP/l6" "--block-shape '128'"
# any family through the one lookup: attention decode, its file's nearest
# batch then nearest context; the same file through an H200's eyes (same
# architecture); keys and points that do not fit the family are refused
mkdir -p "$TMP/attn_cfg"
cat >"$TMP/attn_cfg/attn_decode,H=32,H_kv=8,D=128,page=16,device_name=NVIDIA_H100_80GB_HBM3,dtype=bf16.json" <<'JSON'
{"1": {"512": {"partition": 256, "num_warps": 4}, "4096": {"partition": 1024, "num_warps": 8}},
 "32": {"512": {"partition": 128, "num_warps": 2, "mma": 1, "stage": 2, "query_split": 2}}}
JSON
ATTN_KEY='{"H":32,"H_kv":8,"D":128,"page":16,"dtype":"bf16"}'
expect_exit 0 "$TMP/la" "$MT" lookup --family attn_decode --key "$ATTN_KEY" --point 2,3000 \
  --device-name NVIDIA_H100_80GB_HBM3 --config-dir "$TMP/attn_cfg" --cache-dir '' --bundled-dir '' --tuned-dir ''
[ "$(py "$TMP/la" 'j["family"], j["point_key"], j["source"], j["config"]')" = \
  "('attn_decode', [1, 4096], 'config dir', {'partition': 1024, 'num_warps': 8})" ] || fail "attention lookup: $(cat "$TMP/la")"; ok
expect_exit 0 "$TMP/la2" "$MT" lookup --family attn_decode --key "$ATTN_KEY" --point 40,100 \
  --device-name NVIDIA_H200 --config-dir "$TMP/attn_cfg" --cache-dir '' --bundled-dir '' --tuned-dir ''
[ "$(py "$TMP/la2" 'j["source"], j["config"]["query_split"]')" = "('same architecture', 2)" ] \
  || fail "attention lookup, same architecture: $(cat "$TMP/la2")"; ok
expect_exit 2 "$TMP/la3" "$MT" lookup --family attn_decode --key '{"H":32,"H_kv":6,"D":128,"page":16}' --point 1,1
expect_in "$TMP/la3" "not a multiple"
expect_exit 2 "$TMP/la4" "$MT" lookup --family attn_decode --key "$ATTN_KEY" --point 1
expect_in "$TMP/la4" "takes 2 value(s) (batch,ctx)"
expect_exit 2 "$TMP/la5" "$MT" lookup --family mla_decode --key '{}' --point 1
expect_in "$TMP/la5" "expected one of fused_moe, attn_decode"
expect_exit 2 "$TMP/la6" "$MT" lookup --family attn_decode --key "$ATTN_KEY" --point 1,1 --experts 8
expect_in "$TMP/la6" "give one form"
# `moetune help COMMAND` is the command's --help
expect_exit 0 "$TMP/h1" "$MT" help sweep
"$MT" sweep --help >"$TMP/h2"
cmp -s "$TMP/h1" "$TMP/h2" || fail "moetune help sweep differs from moetune sweep --help"; ok
expect_exit 2 "$TMP/h3" "$MT" help nope
expect_in "$TMP/h3" "unknown command 'nope'"
# status --json: every key there, null where there is no value
expect_exit 0 "$TMP/sq" "$MT" submit --db "$TMP/st.db" --model tiny --batch-sizes 1 --budget 2
expect_exit 0 "$TMP/sj" "$MT" status --db "$TMP/st.db" --json
python3 - "$TMP/sj" <<'PY' || fail "status --json keys: $(cat "$TMP/sj")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["daemon_pid"] is None
job = j["jobs"][0]
for k in ("assigned_device", "best", "message", "exit_status", "sweep_pid", "started_at", "finished_at"):
    assert k in job and job[k] is None, k
PY
ok
# progress where stderr is not a terminal (a log): whole lines now and then,
# with --time's cut said even with --quiet; one slash in the paths printed
expect_exit 0 "$TMP/pg" env MOETUNE_PROGRESS_SECONDS=0.01 "$MT" sweep --db "$TMP/pg.db" --model tiny --batch-sizes 1,2 \
  --budget 4 --out "$TMP/pgout/"
grep -q "^moetune sweep: [0-9]* of [0-9]* ([0-9]* %)" "$TMP/pg.err" || fail "no progress line in a log: $(cat "$TMP/pg.err")"; ok
grep -q $'\r' "$TMP/pg.err" && fail "a log got a terminal redraw"; ok
grep -q "//" "$TMP/pg" && fail "a path with a double slash: $(grep // "$TMP/pg")"; ok
expect_in "$TMP/pg" "config files (moetune format, for libmoetune; vLLM's names hold only configs of vLLM's kernel (--engine vllm)): $TMP/pgout"
# (the batch sizes it did not reach have no config: said, and the exit is 1)
expect_exit 1 "$TMP/tq" "$MT" sweep --db "$TMP/tq.db" --model tiny --batch-sizes 1,2,4,8 --budget 6 --time 1s --quiet --no-export
expect_in "$TMP/tq" "--time 1 s reached"
expect_in "$TMP/tq" "no variant was measured (--time, --only or the budget left it out)"
expect_in "$TMP/tq" "--time ran out before they were reached, so nothing is exported for them; run the same command again"
done_ok
