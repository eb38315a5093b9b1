# kill -9 in the middle of a sweep loses no committed measurement, and the
# same command afterwards measures only what is missing.
. "$(dirname "$0")/lib.sh"
DB=$TMP/r.db
args=(sweep --db "$DB" --model tiny --batch-sizes 1,8,16 --budget 12 --no-export --quiet)
"$MT" "${args[@]}" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do
  n=$(sql "$DB" 'select count(*) from measurements' 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 6 ] && break
  sleep 0.1
done
kill -9 $pid
wait $pid 2>/dev/null || true
before=$(sql "$DB" 'select count(*) from measurements')
[ "$before" -ge 6 ] && [ "$before" -lt 36 ] || fail "killed with $before rows: expected a sweep caught in the middle"; ok
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); open(sys.argv[2],"w").write(repr(c.execute("select id,M,config_id,median_us from measurements order by id").fetchall()))' "$DB" "$TMP/rows_before"
[ "$(sql "$DB" 'select status from sweeps')" = running ] || fail "the killed sweep stays marked running"; ok
expect_exit 0 "$TMP/j" "$MT" "${args[@]}" --json
[ "$(py "$TMP/j" 'j["skipped"]')" = "$before" ] || fail "skipped $(py "$TMP/j" 'j["skipped"]'), want $before"; ok
[ "$(py "$TMP/j" 'j["measured"] + j["skipped"]')" = 36 ] || fail "measured + skipped != 36"; ok
[ "$(sql "$DB" 'select count(*) from measurements')" = 36 ] || fail "36 rows after the resume"; ok
# the killed sweep's row is found dead by the next sweep and marked so
[ "$(sql "$DB" 'select group_concat(status) from (select status from sweeps order by id)')" = "killed,done" ] \
  || fail "sweeps after a kill and a resume: $(sql "$DB" 'select group_concat(status) from sweeps')"; ok
python3 - "$DB" "$TMP/rows_before" <<'PY' || fail "rows taken before the kill changed"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
before = eval(open(sys.argv[2]).read())
after = c.execute("select id,M,config_id,median_us from measurements order by id").fetchall()
assert after[:len(before)] == before
PY
ok

# SIGINT: the sweep stops after the variant in flight, says so, exits 130,
# and keeps what it measured
DB2=$TMP/int.db
"$MT" sweep --db "$DB2" --model tiny --batch-sizes 1,8 --budget 12 --no-export --quiet >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
for _ in $(seq 600); do
  n=$(sql "$DB2" 'select count(*) from measurements' 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 3 ] && break
  sleep 0.1
done
kill -INT $pid
set +e; wait $pid; rc=$?; set -e
[ $rc = 130 ] || fail "an interrupted sweep exits 130, got $rc"; ok
expect_in "$TMP/int" "interrupted"
[ "$(sql "$DB2" 'select status from sweeps')" = interrupted ] || fail "the sweep is recorded as interrupted"; ok
[ "$(sql "$DB2" "select count(*) from measurements where status='failed'")" = 0 ] || fail "the abandoned variant was blamed"; ok
# two sweeps of one problem at once on one database: each batch size is
# measured by one of them while the other waits, so no variant is measured
# twice, and both end with the whole table
DB3=$TMP/two.db
"$MT" sweep --db "$DB3" --model tiny --batch-sizes 1,8 --budget 6 --no-export --quiet --json --finalists 0 >"$TMP/two1" 2>"$TMP/two1.err" &
p1=$!
"$MT" sweep --db "$DB3" --model tiny --batch-sizes 1,8 --budget 6 --no-export --quiet --json --finalists 0 >"$TMP/two2" 2>"$TMP/two2.err" &
p2=$!
wait $p1 || fail "the first of two sweeps failed: $(cat "$TMP/two1.err")"
wait $p2 || fail "the second of two sweeps failed: $(cat "$TMP/two2.err")"
ok
rows=$(sql "$DB3" 'select count(*) from measurements')
m1=$(py "$TMP/two1" 'j["measured"]'); m2=$(py "$TMP/two2" 'j["measured"]')
[ $((m1 + m2)) = "$rows" ] || fail "two sweeps measured $m1 + $m2 variants for $rows rows: some twice"; ok
grep -q "is measuring M=" "$TMP/two1.err" "$TMP/two2.err" || fail "neither sweep said it waited for the other"; ok
done_ok
