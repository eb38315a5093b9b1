# vLLM's format, proven on the shared corpus of real files: import, export,
# and the same JSON content (keys, order, values) every time, the same bytes
# where the original is in vLLM's own json.dump(indent=4) layout.
. "$(dirname "$0")/lib.sh"
CORPUS=${MT_SHARED:?}/data/vllm-configs
[ -d "$CORPUS" ] || fail "no corpus at $CORPUS"
DB=$TMP/i.db
expect_exit 1 "$TMP/imp" "$MT" import --db "$DB" "$CORPUS"
expect_in "$TMP/imp" "refused '$CORPUS/E=384,N=256,device_name=AMD_Instinct_MI350X,dtype=int4_w4a16,backend=flydsl.json': not a vLLM fused-MoE config file name"
total=$(ls "$CORPUS"/*.json | wc -l)
expect_in "$TMP/imp" "imported $((total - 1)) file(s), refused 1"
expect_exit 0 "$TMP/exp" "$MT" export --db "$DB" --out "$TMP/out" --format vllm
python3 - "$CORPUS" "$TMP/out" <<'PY' || fail "the round trip differs"
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
n = exact = 0
for f in sorted(os.listdir(src)):
    if "backend=flydsl" in f:
        continue
    a = open(os.path.join(src, f), "rb").read()
    b = open(os.path.join(out, f), "rb").read()  # the same file name
    pairs = lambda t: json.loads(t, object_pairs_hook=lambda kv: kv)
    assert pairs(a) == pairs(b), f"content differs: {f}"
    n += 1
    if (json.dumps(json.loads(a), indent=4) + "\n").encode() == a:
        assert a == b, f"bytes differ for a file in vLLM's layout: {f}"
        exact += 1
assert len(os.listdir(out)) == n, "extra files exported"
assert exact >= 20, f"only {exact} files in vLLM's layout"
print(f"{n} files equal in content, {exact} byte for byte")
PY
ok
# re-importing replaces, it does not duplicate
rows=$(sql "$DB" 'select count(*) from measurements')
expect_exit 1 "$TMP/imp2" "$MT" import --db "$DB" "$CORPUS"
[ "$(sql "$DB" 'select count(*) from measurements')" = "$rows" ] || fail "re-import duplicated rows"; ok

# a malformed file is refused with its reason, and the rest goes on
mkdir "$TMP/mixed"
cp "$CORPUS/E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json" "$TMP/mixed/"
printf '{\n    "1": {\n        "BLOCK_SIZE_M": 16,\n' >"$TMP/mixed/E=8,N=14336,device_name=NVIDIA_H100_80GB_HBM3.json"
printf '{"1": {"BLOCK_SIZE_M": "sixteen"}}' >"$TMP/mixed/E=8,N=4096,device_name=NVIDIA_H100_80GB_HBM3.json"
printf '{}' >"$TMP/mixed/notes.json"
expect_exit 1 "$TMP/m" "$MT" import --db "$TMP/m.db" --json "$TMP/mixed"
python3 - "$TMP/m" <<'PY' || fail "mixed import"
import json, sys
lines = open(sys.argv[1]).read()
j = json.loads(lines[lines.index("{"):lines.rindex("}") + 1])
r = {f["file"].rsplit("/", 1)[1]: f for f in j["files"]}
assert j["imported"] == 1 and j["refused"] == 3, j
assert "malformed JSON near line" in r["E=8,N=14336,device_name=NVIDIA_H100_80GB_HBM3.json"]["reason"]
assert "not an integer" in r["E=8,N=4096,device_name=NVIDIA_H100_80GB_HBM3.json"]["reason"]
assert "not a vLLM fused-MoE config file name" in r["notes.json"]["reason"]
PY
ok
done_ok
