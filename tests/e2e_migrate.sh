# A database written by the release before this one (schema 6: a CPU sweep
# with finalists, a crash and a timeout among its failures, an attention
# sweep, two imported vLLM files, a queued job; tests/fixtures/v6.db) opens,
# migrates to the current schema with every row kept, and exports the same
# vLLM files as that release did (tests/fixtures/v6-export).
. "$(dirname "$0")/lib.sh"
FIX=$(cd "$(dirname "$0")" && pwd)/fixtures
cp "$FIX/v6.db" "$TMP/m.db"
[ "$(sql "$TMP/m.db" 'pragma user_version')" = 6 ] || fail "the fixture is not at schema 6"; ok
count() { sql "$TMP/m.db" "select group_concat(status || ':' || n) from (select status, count(*) n from measurements group by status order by status)"; }
before=$(count)
attn_before=$(sql "$TMP/m.db" 'select count(*) from attn_measurements')
expect_exit 0 "$TMP/show" "$MT" show --db "$TMP/m.db"
[ "$(sql "$TMP/m.db" 'pragma user_version')" -ge 7 ] || fail "not migrated"; ok
[ "$(count)" = "$before" ] || fail "rows changed in the migration: $before -> $(count)"; ok
[ "$(sql "$TMP/m.db" 'select count(*) from attn_measurements')" = "$attn_before" ] || fail "attention rows changed"; ok
# the failures of the old rows are classified by their reason: the timeout
# is transient (measured again), the crashes are the variant's own
[ "$(sql "$TMP/m.db" "select count(*) from measurements where status='failed' and transient=1 and reason like 'timed out%'")" = 1 ] \
  || fail "the old timeout is not transient"; ok
[ "$(sql "$TMP/m.db" "select count(*) from measurements where status='failed' and transient=0 and reason like '%signal 11%'")" = 2 ] \
  || fail "the old crashes are not the variant's own"; ok
# the imported files come out as that release wrote them, byte for byte
expect_exit 0 "$TMP/ex" "$MT" export --db "$TMP/m.db" --out "$TMP/ex_out" --format vllm
for f in "$FIX"/v6-export/*.json; do
  cmp -s "$f" "$TMP/ex_out/$(basename "$f")" || fail "export after the migration differs: $(basename "$f")"; ok
done
expect_exit 0 "$TMP/st" "$MT" status --db "$TMP/m.db" --json
[ "$(py "$TMP/st" 'len(j["jobs"]), j["jobs"][0]["status"]')" = "(1, 'queued')" ] || fail "the queued job: $(cat "$TMP/st")"; ok
# opening it again changes nothing
expect_exit 0 "$TMP/show2" "$MT" show --db "$TMP/m.db"
[ "$(count)" = "$before" ] || fail "a second open changed rows"; ok
done_ok
