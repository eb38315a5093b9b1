# Variants that crash, hang or return NaN are recorded as failed with their
# reason; the worker is replaced and the sweep goes on; nothing failed is
# exported. The fault hook is MOETUNE_TEST_FAULT (tuner/measure.h).
. "$(dirname "$0")/lib.sh"
run() { # name fault extra-args...
  local name=$1 fault=$2; shift 2
  # the full grid: these check fault isolation over every variant, not the search
  MOETUNE_TEST_FAULT=$fault expect_exit 0 "$TMP/$name.json" "$MT" sweep --db "$TMP/$name.db" --model tiny --strategy grid \
    --batch-sizes 1 --out "$TMP/$name" --json --quiet "$@"
}
# M=1 has 32 valid variants; each fault matches two of them (threads 1 and 2)
run crash 'crash:"block_n":8,"block_k":64,'
[ "$(py "$TMP/crash.json" 'j["measured"], j["failed"]')" = "(32, 2)" ] || fail "crash: $(cat "$TMP/crash.json")"; ok
[ "$(sql "$TMP/crash.db" "select count(*) from measurements where status='failed' and reason like 'worker died:%'")" = 2 ] \
  || fail "crash reason"; ok

run hang 'hang:"block_n":16,"block_k":64,' --timeout 10
[ "$(py "$TMP/hang.json" 'j["measured"], j["failed"]')" = "(32, 2)" ] || fail "hang: $(cat "$TMP/hang.json")"; ok
[ "$(sql "$TMP/hang.db" "select count(*) from measurements where status='failed' and reason like 'timed out after 10 s%'")" = 2 ] \
  || fail "hang reason"; ok

run nan 'nan:"block_n":32,"block_k":64,'
[ "$(sql "$TMP/nan.db" "select count(*) from measurements where status='failed' and reason like '%NaN%'")" = 2 ] \
  || fail "nan reason"; ok

# every variant with two threads fails, the default among them: the export
# must hold only verified single-thread configs, and no default figure
run nan_all 'nan:"threads":2'
[ "$(py "$TMP/nan_all.json" 'j["failed"]')" = 16 ] || fail "16 two-thread variants fail"; ok
python3 - "$TMP"/nan_all/*.moetune.json <<'PY' || fail "a failed variant was exported"
import json, sys
c = json.load(open(sys.argv[1]))["configs"]["1"]
assert c["params"]["threads"] == 1, c
assert c["default_params"] is None and c["variants_failed"] == 16 and c["variants_ok"] == 16, c
PY
ok
done_ok
