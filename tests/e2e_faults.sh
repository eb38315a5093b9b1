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

# a worker killed from outside (SIGKILL: another process's OOM kill) or a
# timeout says nothing of the variant: stored as a transient failure and
# measured again on the next run; a crash of the variant's own is not,
# unless --retry-failed
run killed 'killed:"block_n":8,"block_k":64,'
[ "$(py "$TMP/killed.json" 'j["measured"], j["failed"]')" = "(32, 2)" ] || fail "killed: $(cat "$TMP/killed.json")"; ok
[ "$(sql "$TMP/killed.db" "select count(*) from measurements where status='failed' and transient=1 and reason like '%signal 9%'")" = 2 ] \
  || fail "a SIGKILL is a transient failure"; ok
[ "$(sql "$TMP/crash.db" "select count(*) from measurements where status='failed' and transient=0")" = 2 ] \
  || fail "a SIGSEGV is the variant's own failure"; ok
[ "$(sql "$TMP/hang.db" "select count(*) from measurements where status='failed' and transient=1")" = 2 ] \
  || fail "a timeout is a transient failure"; ok
expect_exit 0 "$TMP/ka" "$MT" sweep --db "$TMP/killed.db" --model tiny --strategy grid --batch-sizes 1 --no-export --json --quiet
[ "$(py "$TMP/ka" 'j["measured"], j["retried"], j["failed"]')" = "(2, 2, 0)" ] || fail "the killed variants again: $(cat "$TMP/ka")"; ok
[ "$(sql "$TMP/killed.db" "select count(*) from measurements where status='failed'")" = 0 ] || fail "still failed"; ok
[ "$(sql "$TMP/killed.db" "select count(*) from measurements")" = 32 ] || fail "a retry replaces its row"; ok
expect_exit 0 "$TMP/ca" "$MT" sweep --db "$TMP/crash.db" --model tiny --strategy grid --batch-sizes 1 --no-export --json --quiet
[ "$(py "$TMP/ca" 'j["measured"], j["retried"]')" = "(0, 0)" ] || fail "a crash was measured again: $(cat "$TMP/ca")"; ok
expect_exit 0 "$TMP/cr" "$MT" sweep --db "$TMP/crash.db" --model tiny --strategy grid --batch-sizes 1 --no-export --json \
  --quiet --retry-failed
[ "$(py "$TMP/cr" 'j["measured"], j["retried"], j["failed"]')" = "(2, 2, 0)" ] || fail "--retry-failed: $(cat "$TMP/cr")"; ok

# a sweep in which no variant of a batch size passes has tuned nothing
# there: it says why and exits 1, and nothing is exported for it
MOETUNE_TEST_FAULT='nan:"threads"' expect_exit 1 "$TMP/none.json" "$MT" sweep --db "$TMP/none.db" --model tiny \
  --strategy grid --batch-sizes 1,2 --budget 3 --out "$TMP/none" --json --quiet
[ "$(py "$TMP/none.json" 'j["unverified_batch_sizes"]')" = "[1, 2]" ] || fail "unverified: $(cat "$TMP/none.json")"; ok
expect_in "$TMP/none.json" "M=1: none of its 3 variant(s) measured passed; the first failed with:"
expect_in "$TMP/none.json" "2 batch size(s) ended with no verified config"
[ -z "$(ls "$TMP/none" 2>/dev/null)" ] || fail "a sweep that verified nothing exported: $(ls "$TMP/none")"; ok

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
