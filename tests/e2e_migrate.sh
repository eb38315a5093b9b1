# Databases written by earlier releases open, migrate to the current schema
# with every row kept, and export the same files as those releases did.
# Schema 6 (tests/fixtures/v6.db): a CPU sweep with finalists, a crash and a
# timeout among its failures, an attention sweep, two imported vLLM files, a
# queued job; its vLLM exports are tests/fixtures/v6-export. Schema 7
# (tests/fixtures/v7.db): a CPU sweep with finalists, two CPU attention
# problems of one dtype, CUDA attention rows (one a transient failure) and
# two imported vLLM files (one fp8 with block scales), whose vLLM exports are
# tests/fixtures/v7-export.
. "$(dirname "$0")/lib.sh"
FIX=$(cd "$(dirname "$0")" && pwd)/fixtures
cp "$FIX/v6.db" "$TMP/m.db"
DB=$TMP/m.db
[ "$(sql "$TMP/m.db" 'pragma user_version')" = 6 ] || fail "the fixture is not at schema 6"; ok
# fused MoE's rows by status (the attention rows join them at schema 8)
count() { sql "$DB" "select group_concat(status || ':' || n) from (select status, count(*) n from measurements m
  join problems p on p.id = m.problem_id where p.kernel = 'fused_moe' group by status order by status)"; }
before=$(count)
# every attention row, by its problem's shape and its point, before and after
attn_rows_v6() { sql "$DB" "select group_concat(r, ';') from (select p.E || ',' || p.N || ',' || p.K || ',' || p.topk
  || ',' || p.dtype || '@' || a.batch || 'x' || a.ctx || '=' || c.params || ':' || a.status || ':' || ifnull(a.median_us, '')
  r from attn_measurements a join problems p on p.id = a.problem_id join configs c on c.id = a.config_id order by r)"; }
attn_rows_v8() { sql "$DB" "select group_concat(r, ';') from (select json_extract(p.key, '\$.H') || ',' ||
  json_extract(p.key, '\$.H_kv') || ',' || json_extract(p.key, '\$.D') || ',' || json_extract(p.key, '\$.page') || ',' ||
  p.dtype || '@' || m.M || 'x' || m.p2 || '=' || c.params || ':' || m.status || ':' || ifnull(m.median_us, '') r
  from measurements m join problems p on p.id = m.problem_id join configs c on c.id = m.config_id
  where p.kernel = 'attn_decode' order by r)"; }
attn_before=$(attn_rows_v6)
[ -n "$attn_before" ] || fail "the fixture has no attention rows"; ok
expect_exit 0 "$TMP/show" "$MT" show --db "$TMP/m.db"
[ "$(sql "$TMP/m.db" 'pragma user_version')" -ge 7 ] || fail "not migrated"; ok
[ "$(count)" = "$before" ] || fail "rows changed in the migration: $before -> $(count)"; ok
[ "$(attn_rows_v8)" = "$attn_before" ] || fail "attention rows changed: $attn_before -> $(attn_rows_v8)"; ok
[ "$(sql "$TMP/m.db" "select count(*) from problems where kernel = 'attn_decode' and E + N + K + topk > 0")" = 0 ] \
  || fail "attention problems still in fused MoE's columns"; ok
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

# schema 7, written by the release before the one-schema change
cp "$FIX/v7.db" "$TMP/m7.db"
DB=$TMP/m7.db
[ "$(sql "$DB" 'pragma user_version')" = 7 ] || fail "the fixture is not at schema 7"; ok
before=$(count)
attn_before=$(attn_rows_v6)
[ "$(sql "$DB" 'select count(distinct problem_id) || "/" || count(distinct device_id) from attn_measurements')" = 2/2 ] \
  || fail "the fixture lacks its two attention problems on two devices"; ok
expect_exit 0 "$TMP/show7" "$MT" show --db "$DB" --json
[ "$(sql "$DB" 'pragma user_version')" = 9 ] || fail "v7 not migrated to 9"; ok
# schema 9: the devices' fp8 rate, none measured yet
[ "$(sql "$DB" 'select count(*) from devices where peak_fp8_gflops is null')" = "$(sql "$DB" 'select count(*) from devices')" ] ||
  fail "a migrated device has an fp8 rate it never measured"; ok
[ "$(count)" = "$before" ] || fail "fused MoE rows changed in the migration: $before -> $(count)"; ok
[ "$(attn_rows_v8)" = "$attn_before" ] || fail "attention rows changed: $attn_before -> $(attn_rows_v8)"; ok
[ "$(sql "$DB" "select count(*) from measurements where status = 'failed' and transient = 1 and p2 = 128")" = 1 ] \
  || fail "the transient CUDA attention failure lost its kind"; ok
[ "$(sql "$DB" "select group_concat(key, ' ') from (select key from problems where kernel = 'attn_decode' order by id)")" = \
  '{"H":4,"H_kv":1,"D":32,"page":16,"dtype":"bf16"} {"H":8,"H_kv":2,"D":32,"page":16,"dtype":"bf16"}' ] \
  || fail "attention keys: $(sql "$DB" "select group_concat(key, ' ') from problems where kernel = 'attn_decode'")"; ok
# show lists both attention problems, on both devices, with their heads
[ "$(py "$TMP/show7" 'sorted((a["device"][:4], a["H"], a["H_kv"]) for a in j["attention"])')" = \
  "[('CPU_', 4, 1), ('CPU_', 8, 2), ('NVID', 8, 2)]" ] || fail "show after the migration: $(cat "$TMP/show7")"; ok
# the imported files come out as that release wrote them (tests/fixtures/v7-export)
expect_exit 0 "$TMP/ex7" "$MT" export --db "$DB" --out "$TMP/ex7_out" --format vllm
for f in "$FIX"/v7-export/*.json; do
  cmp -s "$f" "$TMP/ex7_out/$(basename "$f")" || fail "export after the migration differs: $(basename "$f")"; ok
done
# a sweep on the migrated database finds its problem again, and resumes
expect_exit 0 "$TMP/sw7" "$MT" sweep --device cpu --model tiny --batch-sizes 1,8 --budget 4 --finalists 2 --db "$DB" \
  --no-export --quiet --json
[ "$(sql "$DB" "select count(*) from problems where kernel = 'fused_moe'")" = 3 ] || fail "the sweep added a problem"; ok
done_ok
