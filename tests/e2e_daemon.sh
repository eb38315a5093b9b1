# The daemon with the CPU worker: jobs submitted, checked, run, cancelled;
# one daemon per database; SIGTERM during a variant; kill -9 at random
# points and a restart that ends where an uninterrupted run ends; faulty
# variants inside a job; a device that keeps failing; shards.
. "$(dirname "$0")/lib.sh"
# wait_for SECONDS CMD...: poll until CMD succeeds
wait_for() {
  local t=$1; shift
  for _ in $(seq $((t * 20))); do "$@" && return 0; sleep 0.05; done
  return 1
}
rows() { sql "$1" 'select count(*) from measurements' 2>/dev/null || echo 0; }
has_rows() { [ "$(rows "$1")" -ge "$2" ]; }
job_status() { sql "$1" "select status from jobs where id=$2"; }
is_status() { [ "$(job_status "$1" "$2")" = "$3" ]; }

# --- submit checks the spec as the sweep will read it, and queues nothing bad
Q=$TMP/q.db
expect_exit 0 "$TMP/s0" "$MT" status --db "$Q"
expect_in "$TMP/s0" "no jobs"
expect_exit 2 "$TMP/s1" "$MT" submit --db "$Q" --model nope
expect_in "$TMP/s1" "unknown model 'nope'"
expect_in "$TMP/s1" "moetune submit:"
expect_exit 2 "$TMP/s2" "$MT" submit --db "$Q" --model tiny --budget 0
expect_in "$TMP/s2" "--budget '0'"
expect_exit 2 "$TMP/s3" "$MT" submit --db "$Q" --device gpu0 --model tiny
expect_in "$TMP/s3" "--device 'gpu0': expected any, cpu, cuda, cuda:N, hip or hip:N"
expect_exit 2 "$TMP/s4" "$MT" submit --db "$Q" --model tiny --job 3
expect_in "$TMP/s4" "the submit command's own"
expect_exit 2 "$TMP/s5" "$MT" submit --db "$Q" --model-config "$TMP/missing.json"
expect_in "$TMP/s5" "missing.json"
expect_exit 2 "$TMP/s6" "$MT" submit --db "$Q" --model tiny --batch-sizes 1,x
expect_exit 2 "$TMP/s7" "$MT" submit --db "$Q" --model tiny --strategy annealing
expect_in "$TMP/s7" "--strategy 'annealing'"
expect_exit 2 "$TMP/s8" "$MT" submit --db "$Q" --model tiny --shard 2/2
expect_in "$TMP/s8" "--shard '2/2'"
[ "$(sql "$Q" 'select count(*) from jobs')" = 0 ] || fail "a refused spec was queued"; ok

# --- a stale sweep pid that now belongs to an unrelated process: the
# daemon leaves that process alone (it holds no lock of the job, and its
# command line is not the job's sweep) and runs the job again
P=$TMP/pid.db
expect_exit 0 "$TMP/pj" "$MT" submit --db "$P" --model tiny --batch-sizes 1 --budget 2 --no-export
sleep 300 &
victim=$!
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update jobs set status=\"running\", assigned_device=\"cpu\", daemon_pid=999999999, sweep_pid=?", (int(sys.argv[2]),)); c.commit()' "$P" "$victim"
expect_exit 0 "$TMP/pd" "$MT" daemon --db "$P" --devices cpu --until-idle --poll 0.1
kill -0 $victim 2>/dev/null || fail "the daemon signalled an unrelated process that had the job's stale sweep pid"; ok
kill $victim; wait $victim 2>/dev/null || true
expect_in "$TMP/pd" "is not its sweep any more"
[ "$(job_status "$P" 1)" = done ] || fail "the job with a stale pid did not run again: $(job_status "$P" 1)"; ok
[ -z "$(ls "$TMP"/pid.db.job-* 2>/dev/null)" ] || fail "the job's lock file was left behind"; ok

# --- a queue served to the end: two CPU jobs run, a CUDA job waits (no GPU
# here, or with one: --devices cpu), a queued job cancelled never runs
expect_exit 0 "$TMP/j1" "$MT" submit --db "$Q" --json --model tiny --batch-sizes 1,4 --budget 4 --no-export
[ "$(py "$TMP/j1" 'j["job"]')" = 1 ] || fail "first job id"; ok
expect_exit 0 "$TMP/j2" "$MT" submit --db "$Q" --device cpu --experts 4 --intermediate 64 --hidden 128 --topk 2 \
  --batch-sizes 2 --budget 3 --strategy random --no-export
expect_in "$TMP/j2" "job 2 queued for cpu"
expect_exit 0 "$TMP/j3" "$MT" submit --db "$Q" --device cuda --model tiny --batch-sizes 2 --budget 2
expect_exit 0 "$TMP/j4" "$MT" submit --db "$Q" --model tiny --batch-sizes 8 --budget 2
expect_exit 0 "$TMP/c4" "$MT" cancel 4 --db "$Q"
expect_in "$TMP/c4" "job 4 cancelled (it had not started)"
expect_exit 1 "$TMP/c9" "$MT" cancel 9 --db "$Q"
expect_in "$TMP/c9" "there is no job 9"
expect_exit 0 "$TMP/d1" "$MT" daemon --db "$Q" --devices cpu --until-idle --poll 0.1
expect_in "$TMP/d1" "job 1: done on cpu"
expect_in "$TMP/d1" "job 2: done on cpu"
expect_exit 0 "$TMP/st" "$MT" status --db "$Q" --json
python3 - "$TMP/st" <<'PY' || fail "status after the queue ran: $(cat "$TMP/st")"
import json, sys
j = json.load(open(sys.argv[1]))
jobs = {x["id"]: x for x in j["jobs"]}
assert jobs[1]["status"] == "done" and jobs[1]["done"] == jobs[1]["total"] == 8 and jobs[1]["assigned_device"] == "cpu", jobs[1]
assert jobs[2]["status"] == "done" and jobs[2]["total"] == 3, jobs[2]
assert jobs[3]["status"] == "queued" and jobs[3]["message"].startswith("waiting: this host serves cpu"), jobs[3]
assert jobs[4]["status"] == "cancelled" and jobs[4]["attempts"] == 0, jobs[4]
assert j["daemon_pid"] is None
assert [d["device"] for d in j["devices"]] == ["cpu"]
PY
ok
expect_exit 0 "$TMP/stt" "$MT" status --db "$Q"
expect_in "$TMP/stt" "daemon: none serves"
expect_in "$TMP/stt" "waiting: this host serves cpu"
# the measurements are the jobs' own, on this device: 2 x 4 + 3
[ "$(sql "$Q" "select count(*) from measurements m join devices d on d.id = m.device_id where d.backend = 'cpu'")" = 11 ] \
  || fail "11 measurements on the CPU"; ok
expect_exit 0 "$TMP/c1" "$MT" cancel 1 --db "$Q"
expect_in "$TMP/c1" "had already ended (done)"

# --- --publish: each job that ends done is published
P=$TMP/p.db
"$MT" submit --db "$P" --model tiny --batch-sizes 1 --budget 2 --no-export >/dev/null
expect_exit 2 "$TMP/pb0" "$MT" daemon --db "$P" --devices cpu --until-idle --publish "ftp://nowhere/x"
expect_exit 0 "$TMP/pb" "$MT" daemon --db "$P" --devices cpu --until-idle --poll 0.05 --publish "file://$TMP/pub"
expect_in "$TMP/pb" "job 1: published to file://$TMP/pub"
[ "$(sql "$P" 'select message from jobs where id=1')" = "done; published" ] || fail "the job says it was published"; ok
ls "$TMP"/pub/*/manifest.json >/dev/null 2>&1 || fail "nothing published"; ok

# --- one daemon per database; SIGTERM during a variant; cancel while running
D=$TMP/d.db
"$MT" submit --db "$D" --model tiny --batch-sizes 1,2,4,8,16,32 --budget 30 --no-export >/dev/null
"$MT" submit --db "$D" --model tiny --batch-sizes 64 --budget 4 --no-export >/dev/null
"$MT" daemon --db "$D" --devices cpu --poll 0.1 --log "$TMP/d.log" &
dpid=$!
wait_for 60 has_rows "$D" 3 || fail "the daemon measured nothing"
expect_exit 1 "$TMP/second" "$MT" daemon --db "$D" --devices cpu
expect_in "$TMP/second" "another daemon (pid $dpid) serves"
expect_exit 0 "$TMP/std" "$MT" status --db "$D" --json
[ "$(py "$TMP/std" 'j["daemon_pid"]')" = $dpid ] || fail "status names the daemon's pid"; ok
[ "$(py "$TMP/std" '[x["status"] for x in j["jobs"]]')" = "['running', 'queued']" ] || fail "one running, one queued"; ok
# SIGHUP reopens the log
mv "$TMP/d.log" "$TMP/d.log.1"
kill -HUP $dpid
wait_for 20 grep -q "log reopened" "$TMP/d.log" 2>/dev/null || fail "SIGHUP did not reopen the log"; ok
kill -TERM $dpid
set +e; wait $dpid; rc=$?; set -e
[ $rc = 0 ] || fail "SIGTERM: the daemon exits 0, got $rc"; ok
[ "$(job_status "$D" 1)" = queued ] || fail "the job stopped by SIGTERM goes back to the queue"; ok
[ "$(sql "$D" "select count(*) from measurements where status='failed'")" = 0 ] || fail "the variant in flight was blamed"; ok
kept=$(rows "$D")
[ "$kept" -ge 3 ] || fail "committed rows kept"; ok
grep -q "stopping: 1 sweep(s) finish their variant in flight" "$TMP/d.log" || fail "the log says how it stops"; ok
# two signals in a row: the second does not wait for anything; the job
# goes back to the queue all the same
"$MT" daemon --db "$D" --devices cpu --poll 0.1 >"$TMP/d3.out" 2>&1 &
dpid=$!
n0=$(rows "$D")
wait_for 60 has_rows "$D" $((n0 + 1)) || fail "the daemon measured nothing"
kill -TERM $dpid; kill -TERM $dpid
t0=$(date +%s)
set +e; wait $dpid; rc=$?; set -e
[ $rc = 0 ] && [ $(( $(date +%s) - t0 )) -lt 10 ] || fail "two signals: exit $rc after $(( $(date +%s) - t0 )) s"; ok
[ "$(job_status "$D" 1)" = queued ] || { cat "$TMP/d3.out"; fail "after two signals the job is queued again"; }; ok
kept=$(rows "$D")
# again, and cancel the running job: its sweep stops, the next job runs
"$MT" daemon --db "$D" --devices cpu --poll 0.1 --until-idle >"$TMP/d2.out" 2>&1 &
dpid=$!
wait_for 60 has_rows "$D" $((kept + 2)) || fail "the restarted daemon measured nothing new"
expect_exit 0 "$TMP/cr" "$MT" cancel 1 --db "$D"
expect_in "$TMP/cr" "job 1 cancelled: its sweep stops after the variant in flight"
set +e; wait $dpid; rc=$?; set -e
[ $rc = 0 ] || { cat "$TMP/d2.out"; fail "daemon after a cancel exits 0, got $rc"; }; ok
[ "$(job_status "$D" 1)" = cancelled ] && [ "$(job_status "$D" 2)" = done ] || fail "job 1 cancelled, job 2 done"; ok
[ "$(sql "$D" 'select count(*) from (select M, config_id, count(*) c from measurements group by 1, 2 having c > 1)')" = 0 ] \
  || fail "a point measured twice"; ok

# --- kill -9 at random points, then a restart: the same measurements and
# the same winners as a run left alone (timings made deterministic by the
# test hook; the kernels still run and are checked)
export MOETUNE_TEST_TIMING=synthetic
spec=(--model tiny --batch-sizes 1,2,4,8 --strategy bayes --budget 10 --seed 7 --no-export)
R=$TMP/ref.db
"$MT" submit --db "$R" "${spec[@]}" >/dev/null
expect_exit 0 "$TMP/ref" "$MT" daemon --db "$R" --devices cpu --until-idle --poll 0.05
K=$TMP/kill.db
"$MT" submit --db "$K" "${spec[@]}" >/dev/null
total=$(rows "$R")
kills=0
for i in 1 2 3 4; do
  "$MT" daemon --db "$K" --devices cpu --poll 0.05 --until-idle >>"$TMP/kill.log" 2>&1 &
  dpid=$!
  target=$(( $(rows "$K") + 1 + RANDOM % 6 ))
  wait_for 60 has_rows "$K" $target || true
  if kill -9 $dpid 2>/dev/null; then kills=$((kills + 1)); fi
  wait $dpid 2>/dev/null || true
done
[ $kills -ge 2 ] || fail "only $kills kills landed mid-job"; ok
expect_exit 0 "$TMP/fin" "$MT" daemon --db "$K" --devices cpu --until-idle --poll 0.05
[ "$(job_status "$K" 1)" = done ] || fail "the killed job finished"; ok
[ "$(sql "$K" 'select attempts from jobs where id=1')" -ge 2 ] || fail "the job was resumed"; ok
python3 - "$R" "$K" <<'PY' || fail "a killed and restarted run differs from an uninterrupted one"
import sqlite3, sys
def rows(p):
    c = sqlite3.connect(p)
    return sorted(c.execute("select m.M, c.params, m.status, m.median_us from measurements m join configs c on c.id = m.config_id").fetchall())
def best(p):
    c = sqlite3.connect(p)
    return c.execute("select f.M, c.params from finalists f join configs c on c.id = f.config_id "
                     "where f.median_us = (select min(median_us) from finalists g where g.M = f.M) order by f.M").fetchall()
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert a == b, (len(a), len(b), set(a) ^ set(b))
assert len(set((m, p) for m, p, _, _ in b)) == len(b)
assert best(sys.argv[1]) == best(sys.argv[2]) and len(best(sys.argv[1])) == 4, (best(sys.argv[1]), best(sys.argv[2]))
PY
ok
[ "$(rows "$K")" = "$total" ] || fail "rows: $(rows "$K") against $total"; ok
unset MOETUNE_TEST_TIMING

# --- faulty variants inside a job: recorded with their reasons, the job done
F=$TMP/f.db
"$MT" submit --db "$F" --model tiny --batch-sizes 1 --strategy grid --timeout 5 --no-export >/dev/null
MOETUNE_TEST_FAULT='crash:"block_n":8,"block_k":64,;hang:"block_n":16,"block_k":64,;nan:"block_n":32,"block_k":64,' \
  expect_exit 0 "$TMP/fd" "$MT" daemon --db "$F" --devices cpu --until-idle --poll 0.1
[ "$(job_status "$F" 1)" = done ] || fail "a job with faulty variants finishes"; ok
[ "$(sql "$F" "select count(*) from measurements where status='failed' and reason like 'worker died:%'")" = 2 ] || fail "crashes"; ok
[ "$(sql "$F" "select count(*) from measurements where status='failed' and reason like 'timed out after 5 s%'")" = 2 ] || fail "hangs"; ok
[ "$(sql "$F" "select count(*) from measurements where status='failed' and reason like '%NaN%'")" = 2 ] || fail "NaN"; ok
[ "$(sql "$F" "select count(*) from measurements where status='ok'")" = 26 ] || fail "the other 26 pass"; ok

# --- a device that keeps failing is taken out of service, not spun on
G=$TMP/g.db
"$MT" submit --db "$G" --device cuda:7 --model tiny --batch-sizes 1 --budget 2 >/dev/null
expect_exit 1 "$TMP/g" "$MT" daemon --db "$G" --devices cuda:7 --poll 0.05 --max-failures 2 --max-attempts 5
expect_in "$TMP/g" "cuda:7: out of service: 2 sweeps in a row failed here"
expect_in "$TMP/g" "every device is out of service"
expect_exit 0 "$TMP/gs" "$MT" status --db "$G" --json
[ "$(py "$TMP/gs" 'j["devices"][0]["state"]')" = "out of service" ] || fail "status shows the device out of service"; ok
[ "$(py "$TMP/gs" 'j["jobs"][0]["status"], j["jobs"][0]["attempts"]')" = "('queued', 2)" ] || fail "the job waits for a good device"; ok

# --- an AMD GPU the driver lists (a made-up KFD topology) but the HIP
# runtime cannot open: served by default when there is no CUDA GPU, its
# sweeps fail with the reason, and it is taken out of service
KT=$TMP/kfd/sys/class/kfd/kfd/topology/nodes
mkdir -p "$KT/1/mem_banks/0"
printf 'simd_count 320\nsimd_per_cu 4\ngfx_target_version 90402\nvendor_id 4098\ndevice_id 29858\n' >"$KT/1/properties"
printf 'size_in_bytes 206141652992\n' >"$KT/1/mem_banks/0/properties"
H=$TMP/h.db
"$MT" submit --db "$H" --device hip --model tiny --batch-sizes 1 --budget 2 >/dev/null
if ! "$MT" devices 2>&1 | grep -q "^cuda:"; then
  MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 1 "$TMP/h" "$MT" daemon --db "$H" --poll 0.05 --max-failures 2 --max-attempts 5
  expect_in "$TMP/h" "on hip:0"
  expect_in "$TMP/h" "no AMD GPU"
  expect_in "$TMP/h" "hip:0: out of service: 2 sweeps in a row failed here"
  [ "$(job_status "$H" 1)" = queued ] || fail "the hip job waits for a good device"; ok
fi
expect_exit 2 "$TMP/hb" "$MT" daemon --db "$H" --devices hip:x
expect_in "$TMP/hb" "is not cpu, cuda:N or hip:N"

# --- shards: two shards of a sweep cover it exactly once
for i in 0 1; do
  expect_exit 0 "$TMP/sh$i" "$MT" sweep --db "$TMP/sh$i.db" --model tiny --batch-sizes 1,2,4,8,16 --budget 2 \
    --shard $i/2 --no-export --quiet --json
done
python3 - "$TMP/sh0.db" "$TMP/sh1.db" <<'PY' || fail "shards 0/2 and 1/2 do not split the batch sizes"
import sqlite3, sys
a, b = (set(r[0] for r in sqlite3.connect(p).execute("select distinct M from measurements")) for p in sys.argv[1:])
assert a and b and not (a & b) and a | b == {1, 2, 4, 8, 16}, (a, b)
PY
ok
# merged, the shards are the whole sweep: every batch size, each row once,
# and merging again adds nothing
expect_exit 0 "$TMP/mg" "$MT" merge --db "$TMP/all.db" "$TMP/sh0.db" "$TMP/sh1.db"
expect_exit 0 "$TMP/mg2" "$MT" merge --db "$TMP/all.db" "$TMP/sh1.db" "$TMP/sh0.db"
expect_in "$TMP/mg2" "0 measurements added"
n0=$(rows "$TMP/sh0.db"); n1=$(rows "$TMP/sh1.db")
[ "$(rows "$TMP/all.db")" = $((n0 + n1)) ] || fail "merged rows $(rows "$TMP/all.db") != $n0 + $n1"; ok
[ "$(sql "$TMP/all.db" 'select count(*) from finalists')" =   $(( $(sql "$TMP/sh0.db" 'select count(*) from finalists') + $(sql "$TMP/sh1.db" 'select count(*) from finalists') )) ]   || fail "finalists merged once"; ok
expect_exit 0 "$TMP/ex" "$MT" export --db "$TMP/all.db" --out "$TMP/merged"
python3 - "$TMP"/merged/*.moetune.json <<'PY' || fail "the merged export lacks batch sizes"
import json, sys
assert sorted(int(m) for m in json.load(open(sys.argv[1]))["configs"]) == [1, 2, 4, 8, 16]
PY
ok
expect_exit 2 "$TMP/mg3" "$MT" merge --db "$TMP/all.db" "$TMP/all.db"
expect_in "$TMP/mg3" "is the database itself"
echo "not a database" >"$TMP/junk.db"
expect_exit 2 "$TMP/mg4" "$MT" merge --db "$TMP/all.db" "$TMP/junk.db"
expect_in "$TMP/mg4" "file is not a database"
# a shard with none of a problem's batch sizes has nothing to do, and says so
expect_exit 0 "$TMP/sh3" "$MT" sweep --db "$TMP/sh3.db" --model tiny --batch-sizes 1 --budget 2 --shard 1/2 --no-export
expect_exit 0 "$TMP/sh4" "$MT" sweep --db "$TMP/sh4.db" --model tiny --batch-sizes 1 --budget 2 --shard 0/2 --no-export
grep -qsF "nothing to do" "$TMP/sh3.err" "$TMP/sh4.err" || fail "an empty shard says so"; ok
# the daemon passes its shard on
S=$TMP/s.db
"$MT" submit --db "$S" --model tiny --batch-sizes 1,2,4,8,16 --budget 2 --no-export >/dev/null
expect_exit 0 "$TMP/sd" "$MT" daemon --db "$S" --devices cpu --until-idle --shard 1/2 --poll 0.05
[ "$(sql "$S" 'select group_concat(M) from (select distinct M from measurements order by M)')" = \
  "$(sql "$TMP/sh1.db" 'select group_concat(M) from (select distinct M from measurements order by M)')" ] \
  || fail "the daemon's shard 1/2 is the sweep's"; ok
# the Slurm array script of docs/fleet, its tasks run by hand as Slurm would
# (on the CPU here), then its merge step
FLEET=$(dirname "$0")/../docs/fleet/slurm-array.sh
for i in 0 1 2; do
  SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_ID=$i MOETUNE_SHARED=$TMP/fleet MOETUNE_MODEL=tiny \
    MOETUNE_BATCH_SIZES=1,2,4,8 PATH="$(dirname "$MT"):$PATH" expect_exit 0 "$TMP/fl$i" bash "$FLEET"
done
MOETUNE_SHARED=$TMP/fleet MOETUNE_PUBLISH="file://$TMP/fleet-bucket" PATH="$(dirname "$MT"):$PATH" \
  expect_exit 0 "$TMP/flm" bash "$FLEET" merge
ls "$TMP"/fleet-bucket/*/manifest.json >/dev/null 2>&1 || fail "the fleet's merge step did not publish"; ok
python3 - "$TMP"/fleet/configs/*.moetune.json <<'PY' || fail "the fleet's merged configs lack batch sizes"
import json, sys
assert sorted(int(m) for m in json.load(open(sys.argv[1]))["configs"]) == [1, 2, 4, 8]
PY
ok
done_ok
