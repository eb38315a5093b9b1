# moetune sweep --kernel attention on the CPU: every measurement stored and
# checked, a resumed run measures nothing again, faulty variants recorded
# with their reasons, bad input refused, and the attention config file
# written as Python's json.dump(indent=4) writes it.
. "$(dirname "$0")/lib.sh"
DB=$TMP/a.db
# the attention rows: measurements of attn_decode problems, the batch in M
# and the context length in p2
ATTN="(select m.*, m.M as batch, m.p2 as ctx from measurements m join problems p on p.id = m.problem_id
  where p.kernel = 'attn_decode')"
args=(sweep --kernel attention --heads 8 --kv-heads 2 --head-dim 64 --page-size 16 --batch-sizes 1,3 --contexts 40,300
      --budget 5 --finalists 2 --finalist-rounds 2 --db "$DB" --out "$TMP/out" --quiet)
expect_exit 0 "$TMP/s1" "$MT" "${args[@]}"
expect_in "$TMP/s1" "measured 20 variants (0 failed, 0 aborted as clearly slower), 0 already in the database"
[ "$(sql "$DB" "select count(*) from $ATTN where status='ok' and rel_err < 0.02")" = 20 ] || fail "20 checked rows"; ok
[ "$(sql "$DB" "select count(distinct batch || 'x' || ctx) from $ATTN")" = 4 ] || fail "4 (batch, ctx) pairs"; ok
[ "$(sql "$DB" "select kernel || ' ' || key || ' ' || E || N || K || topk from problems")" = \
  'attn_decode {"H":8,"H_kv":2,"D":64,"page":16,"dtype":"bf16"} 0000' ] || fail "the problem row: $(sql "$DB" "select * from problems")"; ok
F=$(ls "$TMP"/out/attn_decode,*.json)
case "$F" in *"attn_decode,H=8,H_kv=2,D=64,page=16,device_name=CPU_"*",dtype=bf16.json") ok ;; *) fail "file name $F" ;; esac
python3 - "$F" <<'PY' || fail "the attention file's layout"
import json, sys
text = open(sys.argv[1]).read()
j = json.loads(text)
assert list(j) == ["1", "3"] and all(list(v) == ["40", "300"] for v in j.values()), j
for v in j.values():
    for p in v.values():
        assert list(p) == ["partition", "pages_per_iter", "threads"] and p["partition"] % 16 == 0, p
assert text == json.dumps(j, indent=4) + "\n"
PY
ok
# export writes the same file; publish carries it to a bucket and pull back
expect_exit 0 "$TMP/exo" "$MT" export --db "$DB" --out "$TMP/ex"
cmp -s "$F" "$TMP/ex/$(basename "$F")" || fail "export's attention file differs from the sweep's"; ok
# every measurement as a grid CSV (batch, ctx, the parameters), and a
# strategy replayed on it per (batch, context) pair
expect_exit 0 "$TMP/gx" "$MT" export --db "$DB" --format grid --out "$TMP/grid"
G=$(ls "$TMP"/grid/attn_decode,*.grid.csv)
[ "$(sed -n 2p "$G")" = "batch,ctx,partition,pages_per_iter,threads,median_us,status,is_default" ] \
  || fail "the grid's header: $(head -2 "$G")"; ok
[ "$(grep -c ',ok,' "$G")" = "$(sql "$DB" "select count(*) from $ATTN where status='ok'")" ] || fail "the grid's rows"; ok
expect_exit 0 "$TMP/gr" "$MT" replay "$G" --partial --seeds 2 --json
[ "$(py "$TMP/gr" 'sorted((r["batch"], r["ctx"], r["points"]) for r in j["batch_sizes"])')" = \
  "[(1, 40, 5), (1, 300, 5), (3, 40, 5), (3, 300, 5)]" ] || fail "replay of the attention grid: $(cat "$TMP/gr")"; ok
expect_exit 0 "$TMP/pb" "$MT" publish "file://$TMP/bucket" --db "$DB"
expect_exit 0 "$TMP/pl" "$MT" pull "file://$TMP/bucket" --cache "$TMP/cache" --no-db
cmp -s "$F" "$TMP/cache/$(basename "$F")" || fail "the attention file did not travel through the bucket"; ok
expect_exit 0 "$TMP/s2" "$MT" "${args[@]}"
expect_in "$TMP/s2" "measured 0 variants (0 failed, 0 aborted as clearly slower), 20 already in the database"
# --json: the counts and each pair's best, as the stored rows say
expect_exit 0 "$TMP/s2j" "$MT" "${args[@]}" --json
[ "$(py "$TMP/s2j" 'j["measured"], j["skipped"], len(j["table"]["results"]), j["table"]["key"]["H_kv"], j["unverified_points"]')" = \
  "(0, 20, 4, 2, [])" ] || fail "attention --json: $(cat "$TMP/s2j")"; ok
# finalists, per (batch, context) pair as per batch size: the best 2 and the
# default measured again side by side over 2 rounds, and the fastest of
# those is the pair's best
[ "$(sql "$DB" "select count(distinct M || 'x' || p2) || ' ' || min(rounds) from finalists")" = "4 2" ] \
  || fail "finalists of each pair: $(sql "$DB" "select * from finalists")"; ok
fin=$(sql "$DB" "select min(median_us) || ' ' || count(*) from finalists where M = 3 and p2 = 300")
[ "$(py "$TMP/s2j" '[abs(r["median_us"] - '"${fin% *}"') <= 1e-6 * r["median_us"] and r["finalists"] == '"${fin#* }"' for r in j["table"]["results"] if r["batch"] == 3 and r["ctx"] == 300]')" = "[True]" ] \
  || fail "the JSON's best is not the finalists' winner ($fin): $(cat "$TMP/s2j")"; ok
[ "$(py "$TMP/s2j" 'json.dumps([r["params"] for r in j["table"]["results"] if r["batch"] == 3 and r["ctx"] == 300][0], separators=(",", ":"))')" = \
  "$(sql "$DB" "select c.params from finalists f join configs c on c.id = f.config_id where f.M = 3 and f.p2 = 300 order by f.median_us limit 1")" ] \
  || fail "the file's config is not the finalists' winner"; ok
# --time: a sweep cut short says so (even with --quiet), stores what it measured, and the next run goes on
expect_exit 0 "$TMP/st" "$MT" sweep --kernel attention --heads 4 --kv-heads 4 --head-dim 32 --batch-sizes 1,2,3 \
  --contexts 64,128 --strategy grid --time 0.001s --db "$TMP/t.db" --no-export --quiet
expect_in "$TMP/st" "--time 0 s reached"
[ "$(sql "$TMP/t.db" "select status from sweeps")" = "time limit" ] || fail "the sweep's record: $(sql "$TMP/t.db" "select status from sweeps")"; ok
# --abort-factor is checked as the fused-MoE sweep checks it
expect_exit 2 "$TMP/sa" "$MT" sweep --kernel attention --heads 4 --kv-heads 4 --head-dim 32 --abort-factor 1.01
expect_in "$TMP/sa" "at least 1.05"
# (finalists are tested above; the runs below measure without them)
# a variant that returns NaN is failed with its reason; the others pass
MOETUNE_TEST_FAULT='nan:"pages_per_iter":2' expect_exit 0 "$TMP/s3" "$MT" sweep --kernel attention --finalists 0 --heads 4 --kv-heads 4 \
  --head-dim 32 --batch-sizes 2 --contexts 200 --strategy grid --db "$TMP/f.db" --no-export --quiet
[ "$(sql "$TMP/f.db" "select count(*) from $ATTN where status='failed' and reason like '%NaN%' and reason is not null")" -gt 0 ] \
  || fail "NaN variants failed"; ok
[ "$(sql "$TMP/f.db" "select count(*) from $ATTN m join configs c on c.id = m.config_id where (m.status = 'failed') != (c.params like '%\"pages_per_iter\":2,%')")" = 0 ] \
  || fail "exactly the faulty variants failed"; ok
# show lists the attention tables too (it said "no measurements yet")
expect_exit 0 "$TMP/sh" "$MT" show --db "$DB"
expect_in "$TMP/sh" "attn_decode H=8 H_kv=2 D=64 page=16 bf16"
grep -q "no measurements yet" "$TMP/sh" && fail "show: no measurements, with attention rows"; ok
expect_exit 0 "$TMP/shj" "$MT" show --db "$DB" --json
[ "$(py "$TMP/shj" 'len(j["attention"][0]["results"])')" = "$(sql "$DB" "select count(distinct batch || ',' || ctx) from $ATTN where status='ok'")" ] \
  || fail "show --json's attention rows: $(cat "$TMP/shj")"; ok
# the plan is said first, with a total that does not move
expect_exit 0 "$TMP/s3h" "$MT" sweep --kernel attention --finalists 0 --heads 4 --kv-heads 4 --head-dim 32 --batch-sizes 2 \
  --contexts 200 --strategy grid --db "$TMP/f.db" --no-export
expect_in "$TMP/s3h" "moetune sweep: attn_decode on CPU_"
expect_in "$TMP/s3h" ": attention H=4, H_kv=4, D=32, page=16, dtype=bf16, 1 point, "
# a variant whose fault poisons the device context (the worker answers
# "fatal" and exits) fails alone: the next variant gets a new worker
MOETUNE_TEST_FAULT='fatal:"pages_per_iter":2,"threads":1' expect_exit 0 "$TMP/ft" "$MT" sweep --kernel attention --finalists 0 --heads 4 \
  --kv-heads 4 --head-dim 32 --batch-sizes 2 --contexts 200 --strategy grid --db "$TMP/ft.db" --no-export --quiet
[ "$(sql "$TMP/ft.db" "select count(*) from $ATTN m join configs c on c.id = m.config_id where (m.status = 'failed') != (c.params like '%\"pages_per_iter\":2,\"threads\":1%')")" = 0 ] \
  || fail "a fatal answer blamed the next variant: $(sql "$TMP/ft.db" "select group_concat(reason) from $ATTN where status='failed'")"; ok
# a worker killed from outside: a transient failure, measured again next time
MOETUNE_TEST_FAULT='killed:"pages_per_iter":2' expect_exit 0 "$TMP/k1" "$MT" sweep --kernel attention --finalists 0 --heads 4 \
  --kv-heads 4 --head-dim 32 --batch-sizes 2 --contexts 200 --strategy grid --db "$TMP/k.db" --no-export --quiet
nk=$(sql "$TMP/k.db" "select count(*) from $ATTN where status='failed' and transient=1")
[ "$nk" -gt 0 ] || fail "a killed attention variant is a transient failure"; ok
expect_exit 0 "$TMP/k2" "$MT" sweep --kernel attention --finalists 0 --heads 4 --kv-heads 4 --head-dim 32 --batch-sizes 2 --contexts 200 \
  --strategy grid --db "$TMP/k.db" --no-export --quiet
expect_in "$TMP/k2" ", $nk failed before and measured again"
[ "$(sql "$TMP/k.db" "select count(*) from $ATTN where status='failed'")" = 0 ] || fail "still failed"; ok
# every variant failing: nothing verified, the sweep says so and exits 1
MOETUNE_TEST_FAULT='nan:"threads"' expect_exit 1 "$TMP/n1" "$MT" sweep --kernel attention --finalists 0 --heads 4 --kv-heads 4 \
  --head-dim 32 --batch-sizes 2 --contexts 200 --strategy grid --budget 3 --db "$TMP/n.db" --no-export --quiet
expect_in "$TMP/n1" "batch 2 ctx 200: none of its 3 variant(s) measured passed; the first failed with: output holds NaN"
expect_in "$TMP/n1" "1 point(s) ended with no verified config"
expect_exit 2 "$TMP/b1" "$MT" sweep --kernel attention --heads 6 --kv-heads 4 --head-dim 64 --db "$TMP/b.db"
expect_in "$TMP/b1" "not a multiple of --kv-heads"
expect_exit 2 "$TMP/b2" "$MT" sweep --kernel attention --heads 8 --kv-heads 2 --db "$TMP/b.db"
expect_in "$TMP/b2" "the attention sweep needs --head-dim"
expect_exit 2 "$TMP/b2n" "$MT" sweep --kernel attention --db "$TMP/b.db"
expect_in "$TMP/b2n" "the attention sweep needs --heads, --kv-heads and --head-dim"
expect_exit 2 "$TMP/b3" "$MT" sweep --kernel attention --heads 8 --kv-heads 2 --head-dim 64 --contexts 0 --db "$TMP/b.db"
expect_exit 2 "$TMP/bd" "$MT" sweep --kernel attention --heads 8 --kv-heads 2 --head-dim 64 --dtype int3 --db "$TMP/b.db"
expect_in "$TMP/bd" "--dtype 'int3': expected one of bf16,fp16,fp32 (the CPU's), bf16,fp16 (GPUs')"
expect_exit 2 "$TMP/b4" "$MT" sweep --kernel transformer
expect_in "$TMP/b4" "--kernel 'transformer'"
# --compile-jobs as the fused-MoE sweep takes it: checked, and accepted on the CPU (nothing to compile)
expect_exit 2 "$TMP/b5" "$MT" sweep --kernel attention --heads 8 --kv-heads 2 --head-dim 64 --compile-jobs -1 --db "$TMP/b.db"
expect_in "$TMP/b5" "--compile-jobs"
expect_exit 0 "$TMP/b6" "$MT" sweep --kernel attention --finalists 0 --device cpu --heads 4 --kv-heads 4 --head-dim 32 --batch-sizes 1 \
  --contexts 40 --budget 5 --compile-jobs 0 --db "$TMP/b.db" --no-export --quiet
# daemon jobs: submitted for the CPU, checked at submit, run to the end
Q=$TMP/q.db
expect_exit 2 "$TMP/j0" "$MT" submit --db "$Q" --device hip --kernel attention --heads 8 --kv-heads 2 --head-dim 32
expect_in "$TMP/j0" "attention jobs run on the CPU and CUDA GPUs"
if ! ls /dev/nvidia0 >/dev/null 2>&1; then
  expect_exit 1 "$TMP/jc" "$MT" sweep --kernel attention --device cuda:0 --heads 8 --kv-heads 2 --head-dim 32 --db "$TMP/c.db"
  expect_in "$TMP/jc" "no CUDA device"
fi
expect_exit 2 "$TMP/j1" "$MT" submit --db "$Q" --device cpu --kernel attention --heads 8 --kv-heads 3 --head-dim 32
expect_in "$TMP/j1" "moetune submit: --heads 8 is not a multiple of --kv-heads 3"
expect_exit 2 "$TMP/j2" "$MT" submit --db "$Q" --device cpu --kernel attention --heads 8 --kv-heads 2 --head-dim 32 --job 4
expect_exit 0 "$TMP/j3" "$MT" submit --db "$Q" --device cpu --kernel attention --finalists 0 --heads 8 --kv-heads 2 --head-dim 32 \
  --batch-sizes 1,2 --contexts 64 --budget 3 --no-export
expect_exit 0 "$TMP/j4" "$MT" submit --db "$Q" --kernel fused_moe --model tiny --batch-sizes 1 --budget 2 --no-export
expect_exit 0 "$TMP/jd" "$MT" daemon --db "$Q" --devices cpu --until-idle --poll 0.05
[ "$(sql "$Q" "select group_concat(status || ':' || done || '/' || total) from jobs")" = "done:6/6,done:2/2" ] \
  || fail "jobs: $(sql "$Q" "select group_concat(status || ':' || done || '/' || total || ':' || coalesce(message,'')) from jobs")"; ok
[ "$(sql "$Q" "select count(*) from $ATTN")" = 6 ] || fail "the attention job's 6 rows"; ok
# shards of the (batch, context) pairs cover them once
for i in 0 1; do
  expect_exit 0 "$TMP/sh$i" "$MT" sweep --kernel attention --finalists 0 --heads 4 --kv-heads 4 --head-dim 32 --batch-sizes 1,2 \
    --contexts 32,64,96 --budget 1 --shard $i/2 --db "$TMP/sh$i.db" --no-export --quiet
done
python3 - "$TMP/sh0.db" "$TMP/sh1.db" <<'PY' || fail "two shards do not split the pairs"
import sqlite3, sys
a, b = (set(sqlite3.connect(p).execute("select M, p2 from measurements").fetchall()) for p in sys.argv[1:])
assert a and b and not (a & b) and len(a | b) == 6, (a, b)
PY
ok
# the MoE sweep takes --kernel fused_moe as its own
expect_exit 0 "$TMP/m" "$MT" sweep --kernel fused_moe --model tiny --batch-sizes 1 --budget 2 --db "$TMP/m.db" --no-export --quiet
done_ok
