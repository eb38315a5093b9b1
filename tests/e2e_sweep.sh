# A small sweep end to end: every measurement stored, the table, the rerun
# that measures nothing again, and the export in both formats.
. "$(dirname "$0")/lib.sh"
DB=$TMP/s.db
# the grid: every variant measured in full (bayes, the default, aborts clearly slower ones)
expect_exit 0 "$TMP/j" "$MT" sweep --device auto --db "$DB" --model tiny --batch-sizes 1,16 --strategy grid --budget 5 --out "$TMP/out" --json --quiet
[ "$(py "$TMP/j" 'j["measured"]')" = 10 ] || fail "measured $(py "$TMP/j" 'j["measured"]'), want 10"; ok
[ "$(py "$TMP/j" 'j["failed"]')" = 0 ] || fail "variants failed"; ok
[ "$(sql "$DB" 'select count(*) from measurements')" = 10 ] || fail "10 rows stored"; ok
[ "$(sql "$DB" "select count(*) from measurements where status='ok' and rel_err < tolerance and median_us > 0 and reps >= 7")" = 10 ] \
  || fail "every row is checked and timed"; ok
[ "$(sql "$DB" 'select count(*) from measurements where is_default=1')" = 2 ] || fail "the default is measured for each M"; ok
[ "$(sql "$DB" 'select count(*) from devices where bandwidth_gbs > 0 and peak_gflops > 0')" = 1 ] || fail "ceilings stored"; ok
[ "$(sql "$DB" 'select count(*) from measurements where floor_us > 0 and abs(efficiency - floor_us/median_us) < 1e-9')" = 10 ] \
  || fail "floor and fraction of floor stored"; ok
[ "$(sql "$DB" "select status from sweeps")" = done ] || fail "the sweep is recorded as done"; ok
python3 - "$TMP/j" <<'PY' || fail "the JSON table is wrong"
import json, sys
j = json.load(open(sys.argv[1]))
rows = j["table"]["results"]
assert [r["M"] for r in rows] == [1, 16], rows
for r in rows:
    assert r["median_us"] > 0 and 0 < r["fraction_of_floor"] <= 1.5, r
    assert r["default_params"] is not None
    assert r["median_us"] <= r["default_median_us"], "the best never loses to the default"
    assert r["speedup_vs_default"] >= 1.0
    assert r["variants_ok"] == 5
PY
ok
# finalists: the best 3 of each M and the default, measured again side by side
[ "$(sql "$DB" 'select count(distinct M) from finalists')" = 2 ] || fail "finalists for both batch sizes"; ok
[ "$(sql "$DB" 'select count(*) from finalists f where exists (select 1 from measurements m where m.config_id=f.config_id and m.M=f.M and m.is_default=1)')" = 2 ] \
  || fail "the default is among each M's finalists"; ok
[ "$(sql "$DB" 'select min(rounds) from finalists')" = 3 ] || fail "three rounds"; ok
python3 - "$DB" "$TMP/j" <<'PY' || fail "the winner is the fastest finalist"
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1]); t = json.load(open(sys.argv[2]))["table"]["results"]
for r in t:
    win = c.execute("select c.params, f.median_us from finalists f join configs c on c.id = f.config_id where f.M = ? order by f.median_us limit 1", (r["M"],)).fetchone()
    assert json.loads(win[0]) == r["params"] and abs(win[1] - r["median_us"]) < 1e-6 * win[1], (win, r)
PY
ok
# the same sweep again measures nothing
expect_exit 0 "$TMP/j2" "$MT" sweep --db "$DB" --model tiny --batch-sizes 1,16 --strategy grid --budget 5 --no-export --json --quiet
[ "$(py "$TMP/j2" 'j["measured"]')" = 0 ] && [ "$(py "$TMP/j2" 'j["skipped"]')" = 10 ] || fail "the rerun measured again"; ok
[ "$(sql "$DB" 'select count(*) from measurements')" = 10 ] || fail "no duplicate rows"; ok
[ "$(sql "$DB" 'select count(distinct sweep_id) from finalists')" = 1 ] || fail "the rerun did not run finalists again"; ok

expect_exit 0 "$TMP/show" "$MT" show --db "$DB"
expect_in "$TMP/show" "floor/t"
expect_in "$TMP/show" "speedup"
f=$(ls "$TMP/out"/*.moetune.json)
[ "$(echo "$f" | wc -l)" = 1 ] || fail "one moetune file"; ok
case "$(basename "$f")" in E=8,N=256,K=512,topk=2,device_name=CPU_*,backend=cpu,dtype=bf16.moetune.json) ok ;; *) fail "file name $f" ;; esac
python3 - "$f" "$TMP/j" <<'PY' || fail "the moetune file is wrong"
import json, sys
f = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))["table"]["results"]
assert f["format"] == "moetune-config/1" and f["backend"] == "cpu"
assert f["device"]["bandwidth_gbs"] > 0 and f["provenance"]["kernel_hash"].startswith("cpu-")
assert list(f["configs"]) == ["1", "16"]
for r in t:
    c = f["configs"][str(r["M"])]
    assert abs(c["median_us"] - r["median_us"]) < 1e-6 * r["median_us"]
    assert c["params"] == r["params"]
    assert set(c["params"]) == {"block_m", "block_n", "block_k", "threads"}
    assert c["rel_err"] < 1e-3 and c["floor_us"] > 0 and c["speedup_vs_default"] >= 1
PY
ok
# vLLM's names hold only configs measured on vLLM's kernel
expect_exit 1 "$TMP/v" "$MT" export --db "$DB" --out "$TMP/v_out" --format vllm
expect_in "$TMP/v" "not written under vLLM's names: vLLM launches its own kernel"
[ -z "$(ls "$TMP/v_out")" ] || fail "no vLLM file for CPU results"; ok
expect_exit 0 "$TMP/a" "$MT" export --db "$DB" --out "$TMP/a_out"
expect_in "$TMP/a" ".moetune.json"
# early abort: a low factor stops slow variants after 3 repetitions, with
# their partial figure, and they never become the best
expect_exit 0 "$TMP/ab" "$MT" sweep --db "$TMP/ab.db" --model tiny --batch-sizes 32 --budget 14 --strategy random \
  --abort-factor 1.05 --finalists 0 --no-export --json --quiet
[ "$(py "$TMP/ab" 'j["aborted"] > 0 and j["measured"] == 14')" = True ] || fail "aborts: $(cat "$TMP/ab")"; ok
[ "$(sql "$TMP/ab.db" "select count(*) from measurements where status='aborted' and reps = 3 and median_us > 0 and reason like 'aborted:%'")" = \
  "$(py "$TMP/ab" 'j["aborted"]')" ] || fail "aborted rows keep their partial figure"; ok
[ "$(sql "$TMP/ab.db" "select count(*) from measurements where status='ok' and median_us <= (select min(median_us) from measurements where status='aborted') / 1.05")" -ge 1 ] \
  || fail "an aborted variant is slower than a verified one"; ok
expect_exit 2 "$TMP/ab2" "$MT" sweep --db "$TMP/ab.db" --abort-factor 0.5
expect_in "$TMP/ab2" "--abort-factor '0.5'"
# two sweeps at once on one database (as the daemon runs one per GPU): each
# finds the device and problem rows the other may have just written, and
# commits while the other reads; none may fail with "database is locked"
# (a lookup left active kept its snapshot: seen on two H200s), and the new
# file's schema is created once (both used to migrate it)
for i in 1 2 3; do
  TWO=$TMP/two$i.db
  "$MT" sweep --db "$TWO" --model tiny --batch-sizes 1,4,16 --strategy grid --budget 4 --finalists 0 --no-export \
    --quiet >"$TMP/two_a$i" 2>&1 & a=$!
  "$MT" sweep --db "$TWO" --experts 4 --intermediate 64 --hidden 128 --topk 2 --batch-sizes 1,4,16 --strategy grid \
    --budget 4 --finalists 0 --no-export --quiet >"$TMP/two_b$i" 2>&1 & b=$!
  wait $a || { cat "$TMP/two_a$i"; fail "round $i: the first of two concurrent sweeps failed"; }
  wait $b || { cat "$TMP/two_b$i"; fail "round $i: the second of two concurrent sweeps failed"; }
  ! grep -l "locked" "$TMP/two_a$i" "$TMP/two_b$i" || fail "round $i: a concurrent sweep met a locked database"
  [ "$(sql "$TWO" 'select count(*) from measurements')" = 24 ] || fail "round $i: both sweeps' 24 measurements stored"
  [ "$(sql "$TWO" "select count(*) from sweeps where status='done'")" = 2 ] || fail "round $i: two sweeps done"
done
ok
# the same start, short and many times: both processes open the new file
# (turning it to WAL needs a lock SQLite does not wait for) and record the
# same device in the same instant (a find, then an insert, in each); before
# the fixes about a third of these pairs failed, with "database is locked"
# or a UNIQUE constraint on devices
for i in $(seq 1 12); do
  TWO=$TMP/short$i.db
  "$MT" sweep --db "$TWO" --model tiny --batch-sizes 1 --strategy grid --budget 1 --finalists 0 --no-export --quiet \
    >"$TMP/short_a$i" 2>&1 & a=$!
  "$MT" sweep --db "$TWO" --model tiny --batch-sizes 2 --strategy grid --budget 1 --finalists 0 --no-export --quiet \
    >"$TMP/short_b$i" 2>&1 & b=$!
  wait $a || { cat "$TMP/short_a$i"; fail "short round $i: the first of two concurrent sweeps failed"; }
  wait $b || { cat "$TMP/short_b$i"; fail "short round $i: the second of two concurrent sweeps failed"; }
  [ "$(sql "$TWO" 'select count(*) from devices')" = 1 ] || fail "short round $i: one device row"
  [ "$(sql "$TWO" 'select count(*) from problems')" = 1 ] || fail "short round $i: one problem row (both swept tiny)"
done
ok
# the same sweep twice at once (a job resubmitted while it runs): both store
# the same variants, the second writer of each finds the first's row and
# keeps it (it used to stop with a UNIQUE constraint, every time)
for i in 1 2 3; do
  TWO=$TMP/same$i.db
  "$MT" sweep --db "$TWO" --model tiny --batch-sizes 1,4 --strategy grid --budget 3 --finalists 0 --no-export --quiet \
    >"$TMP/same_a$i" 2>&1 & a=$!
  "$MT" sweep --db "$TWO" --model tiny --batch-sizes 1,4 --strategy grid --budget 3 --finalists 0 --no-export --quiet \
    >"$TMP/same_b$i" 2>&1 & b=$!
  wait $a || { cat "$TMP/same_a$i"; fail "same round $i: the first of two identical sweeps failed"; }
  wait $b || { cat "$TMP/same_b$i"; fail "same round $i: the second of two identical sweeps failed"; }
  [ "$(sql "$TWO" 'select count(*) from measurements')" = 6 ] || fail "same round $i: 6 measurements, one per variant and M"
  [ "$(sql "$TWO" "select count(*) from sweeps where status='done'")" = 2 ] || fail "same round $i: both sweeps done"
done
ok
# the default job's defaults: the XDG database and folder
expect_exit 0 "$TMP/x" "$MT" sweep --batch-sizes 2 --budget 2 --quiet
[ -f "$XDG_DATA_HOME/moetune/moetune.db" ] || fail "default database"; ok
[ "$(sql "$XDG_DATA_HOME/moetune/moetune.db" "select strategy from sweeps")" = bayes ] || fail "bayes is the default strategy"; ok
ls "$XDG_DATA_HOME"/moetune/configs/*.moetune.json >/dev/null || fail "default export folder"
ok
# what the sweep just wrote is what the runtime serves, with no option:
# lookup picks this machine's device as the sweep did, and says which
expect_exit 0 "$TMP/lk" "$MT" lookup --experts 8 --intermediate 256 --hidden 512 --topk 2 --batch 2
expect_in "$TMP/lk" '"source":"tuned"'
expect_in "$TMP/lk" "moetune lookup: device CPU_"
[ "$(py "$TMP/lk" 'j["file"].startswith(sys.argv[1] if False else "'"$XDG_DATA_HOME"'/moetune/configs/")')" = True ] \
  || fail "the tuned file: $(cat "$TMP/lk")"; ok
# --only: every variant measured has the fixed values; a batch size where no
# point has them (block_m 8 over M = 1's two pairs) is said, and skipped
ODB=$TMP/only.db
# (the sweep tuned nothing at M=1: it fails, saying so)
expect_exit 1 "$TMP/o" "$MT" sweep --device cpu --db "$ODB" --model tiny --batch-sizes 1,8 --only block_m=8,threads=1 \
  --budget 4 --no-export --quiet
expect_in "$TMP/o" "M=1: no valid point has --only block_m=8,threads=1"
expect_in "$TMP/o" "1 batch size(s) ended with no verified config"
[ "$(sql "$ODB" 'select count(*) from measurements')" = 4 ] || fail "4 variants at M = 8 only"; ok
[ "$(sql "$ODB" "select count(*) from measurements m join configs c on c.id = m.config_id where m.M = 8
  and json_extract(c.params, '$.block_m') = 8 and json_extract(c.params, '$.threads') = 1")" = 4 ] ||
  fail "every measured config has block_m 8 and threads 1"; ok
# moetune's fp8 kernel on the CPU: each scheme is its own problem, named as
# files and the database name it, every variant checked against the fp8
# oracle; the file says the scheme in full and the runtime finds it
FDB=$TMP/fp8.db
for scheme in "" "--per-channel" "--block-shape 32,64"; do
  expect_exit 0 "$TMP/f8" "$MT" sweep --device cpu --db "$FDB" --experts 4 --intermediate 96 --hidden 192 --topk 2 \
    --dtype fp8_w8a8 $scheme --batch-sizes 3 --strategy grid --budget 3 --finalists 0 --out "$TMP/f8out" --json --quiet
  [ "$(py "$TMP/f8" 'j["failed"]')" = 0 ] || fail "fp8 $scheme: a variant failed: $(cat "$TMP/f8")"; ok
done
[ "$(sql "$FDB" "select group_concat(dtype || ':' || block_n || 'x' || block_k, ' ') from (select * from problems order by id)")" = \
  "fp8_w8a8:0x0 fp8_w8a8_per_channel:0x0 fp8_w8a8:32x64" ] || fail "three fp8 problems: $(sql "$FDB" 'select * from problems')"; ok
[ "$(sql "$FDB" "select count(*) from measurements where status='ok' and rel_err < 1e-3 and rel_err > 0")" = 9 ] ||
  fail "every fp8 variant checked and within the tolerance"; ok
B="$TMP/f8out/E=4,N=96,K=192,topk=2,device_name=$(sql "$FDB" 'select name from devices'),backend=cpu,dtype=fp8_w8a8,block_shape=[32,64].moetune.json"
[ -f "$B" ] || fail "the block scheme's file: $(ls "$TMP/f8out")"; ok
[ -f "${B%,block_shape*}.moetune.json" ] && [ -f "${B%,dtype=*},dtype=fp8_w8a8_per_channel.moetune.json" ] ||
  fail "the per-tensor and per-channel files: $(ls "$TMP/f8out")"; ok
[ "$(py "$B" 'j["problem"]["quant"]["scheme"] + " " + str(j["problem"]["quant"]["block_shape"]) + " " + j["problem"]["quant"]["activation_scales"]')" = \
  "block [32, 64] per token, in 1x64 groups" ] || fail "the scheme in full: $(py "$B" 'j["problem"]')"; ok
expect_exit 0 "$TMP/f8l" "$MT" lookup --device cpu --experts 4 --intermediate 96 --hidden 192 --topk 2 --batch 3 \
  --dtype fp8_w8a8 --block-shape 32,64 --config-dir "$TMP/f8out"
expect_in "$TMP/f8l" "block_shape=[32,64].moetune.json"
# fp8 problems are bound by the device's fp8 rate where it has one
# (measured on GPUs with fp8 tensor cores; here, a CPU, set by hand to a
# thousand times its multiply-add rate): an fp8 floor far under the bf16
# floor of the same shape, which keeps the multiply-add rate; and the
# exported file's device carries the fp8 rate
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update devices set peak_fp8_gflops = peak_gflops * 1000"); c.commit()' "$FDB"
for dt in fp8_w8a8 bf16; do
  expect_exit 0 "$TMP/f8c" "$MT" sweep --device cpu --db "$FDB" --experts 4 --intermediate 96 --hidden 192 --topk 2 \
    --dtype $dt --batch-sizes 48 --strategy grid --budget 1 --finalists 0 --out "$TMP/f8c.d" --quiet
done
f8=$(sql "$FDB" "select m.floor_us from measurements m join problems p on p.id = m.problem_id where m.M = 48 and p.dtype = 'fp8_w8a8' and p.block_n = 0")
b16=$(sql "$FDB" "select m.floor_us from measurements m join problems p on p.id = m.problem_id where m.M = 48 and p.dtype = 'bf16'")
python3 -c "import sys; f, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(not (0 < f < b / 10))" "$f8" "$b16" ||
  fail "fp8 floor $f8 us against bf16's $b16 us: the fp8 rate was not used"; ok
[ "$(py "$(ls "$TMP"/f8c.d/*dtype=fp8_w8a8.moetune.json)" 'j["device"]["peak_fp8_gflops"] > j["device"]["peak_gflops"]')" = True ] ||
  fail "the exported device lacks its fp8 rate"; ok
# a wrong pairing is refused
expect_exit 2 "$TMP/f8e" "$MT" sweep --device cpu --db "$FDB" --model tiny --dtype bf16 --per-channel
expect_in "$TMP/f8e" "--per-channel is taken with --dtype fp8_w8a8"
expect_exit 2 "$TMP/f8e" "$MT" sweep --device cpu --db "$FDB" --model tiny --dtype fp8_w8a8 --per-channel --block-shape 128,128
expect_in "$TMP/f8e" "--per-channel is taken with --dtype fp8_w8a8 and no --block-shape"
expect_exit 2 "$TMP/f8e" "$MT" sweep --device cpu --db "$FDB" --model tiny --dtype fp8_w8a8 --block-shape 128
expect_in "$TMP/f8e" "--block-shape '128': expected N,K"
# a preset named for its fp8 checkpoint tunes that scheme, and says so
expect_exit 0 "$TMP/f8p" "$MT" sweep --device cpu --model qwen3-30b-a3b-fp8 --dry-run
expect_in "$TMP/f8p" "tuning moetune's fp8_w8a8 kernel with its weight blocks"
expect_in "$TMP/f8p" "fp8_w8a8"
done_ok
