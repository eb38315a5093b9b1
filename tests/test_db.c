/* The database: migrations, refusal of newer and corrupt files (left
 * untouched), unique measurements, imports. Real SQLite files. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn_db.h"
#include "check.h"
#include "db.h"
#include "export.h"
#include "jobs.h"
#include "moetune/moetune.h"

static char dir[256];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static long file_size(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static int pair_fp8(const mt_device_info *d, const mt_problem *p, void *user)
{
    (void)p;
    *(double *)user = d->peak_fp8_gflops;
    return 0;
}

static void test_fresh_and_reopen(void)
{
    char p[512], err[512];
    mt_db *db;
    path_of(p, sizeof p, "a.db");
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK, "open: %s", err);
    mt_device_info d = {.backend = "cpu", .name = "CPU_X", .raw_name = "X", .arch = "x86_64", .cores = 2};
    CHECK(mt_db_device_upsert(db, &d) == MT_OK && d.id > 0, "device");
    int64_t first = d.id;
    CHECK(mt_db_device_upsert(db, &d) == MT_OK && d.id == first, "the same device is found, not added");
    CHECK(mt_db_device_set_ceilings(db, d.id, 10.5, 20.25, 0) == MT_OK, "ceilings");
    mt_problem pr = {.kernel = "fused_moe", .dtype = "bf16", .E = 8, .N = 64, .K = 128, .topk = 2, .renormalize = 1};
    CHECK(mt_db_problem_upsert(db, &pr) == MT_OK, "problem");
    int64_t cfg;
    CHECK(mt_db_config_upsert(db, "cpu", "{\"a\":1}", &cfg) == MT_OK, "config");
    mt_measurement m = {.device_id = d.id, .problem_id = pr.id, .config_id = cfg, .M = 8, .status = "ok",
                        .median_us = 12.5, .spread_us = 1, .reps = 9, .rel_err = 1e-7, .tolerance = 1e-3,
                        .floor_us = 5, .efficiency = 0.4, .kernel_hash = "h", .timing_policy = "p"};
    CHECK(mt_db_measurement_insert(db, &m) == MT_OK, "insert");
    CHECK(mt_db_measurement_exists(db, d.id, pr.id, 8, cfg, "h", "p") == 1, "exists");
    CHECK(mt_db_measurement_exists(db, d.id, pr.id, 8, cfg, "other-hash", "p") == 0, "another kernel hash is another measurement");
    CHECK(mt_db_measurement_insert(db, &m) != MT_OK, "a duplicate measurement is refused");
    m.status = "bogus";
    CHECK(mt_db_measurement_insert(db, &m) != MT_OK, "an unknown status is refused");
    mt_db_close(db);

    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK, "reopen: %s", err);
    CHECK(mt_db_count_measurements(db) == 1, "the measurement survived reopening");
    d.bandwidth_gbs = 0;
    CHECK(mt_db_device_upsert(db, &d) == MT_OK && fabs(d.bandwidth_gbs - 10.5) < 1e-12, "stored ceilings come back");
    CHECK(d.peak_fp8_gflops == 0, "no fp8 ceiling stored: none comes back (%g)", d.peak_fp8_gflops);
    /* the fp8 ceiling, stored with the device, comes back with it and with
     * its measurements' pairs (what export writes into the device) */
    CHECK(mt_db_device_set_ceilings(db, d.id, 10.5, 20.25, 1979.5) == MT_OK, "fp8 ceiling");
    CHECK(mt_db_device_upsert(db, &d) == MT_OK && fabs(d.peak_fp8_gflops - 1979.5) < 1e-9 &&
              fabs(d.peak_gflops - 20.25) < 1e-12,
          "the fp8 ceiling comes back (%g)", d.peak_fp8_gflops);
    double seen = -1;
    CHECK(mt_db_pairs(db, "ok", pair_fp8, &seen) == MT_OK && fabs(seen - 1979.5) < 1e-9,
          "a pair's device carries the fp8 ceiling (%g)", seen);
    mt_db_close(db);
}

/* Two connections to one file, as two sweeps of the daemon (one per GPU):
 * each lookup that finds a row, then the other commits, then the first
 * writes. A lookup left holding its read snapshot made that write fail at
 * once with "database is locked" (seen on a two-GPU machine). */
static void test_two_writers(void)
{
    char p[512], err[512];
    mt_db *a = NULL, *b = NULL;
    path_of(p, sizeof p, "two.db");
    CHECK(mt_db_open(&a, p, err, sizeof err) == MT_OK && mt_db_open(&b, p, err, sizeof err) == MT_OK, "open: %s", err);
    mt_device_info d = {.backend = "cpu", .name = "CPU_X", .raw_name = "X", .arch = "x86_64", .cores = 2};
    mt_problem pr = {.kernel = "fused_moe", .dtype = "bf16", .E = 8, .N = 64, .K = 128, .topk = 2, .renormalize = 1};
    int64_t cfg = 0, cfg2 = 0, ok = 0, failed = 0;
    CHECK(mt_db_device_upsert(a, &d) == MT_OK && mt_db_problem_upsert(a, &pr) == MT_OK &&
              mt_db_config_upsert(a, "cpu", "{\"a\":1}", &cfg) == MT_OK, "setup");
    mt_measurement m = {.device_id = d.id, .problem_id = pr.id, .config_id = cfg, .M = 8, .status = "ok",
                        .median_us = 12.5, .spread_us = 1, .reps = 9, .rel_err = 1e-7, .tolerance = 1e-3,
                        .floor_us = 5, .efficiency = 0.4, .kernel_hash = "h", .timing_policy = "p"};
    CHECK(mt_db_measurement_insert(a, &m) == MT_OK, "first measurement");
    int64_t sweep = 0;
    /* each lookup that finds its row, a commit by the other connection, then a write */
    mt_device_info d2 = d;
    CHECK(mt_db_device_upsert(a, &d2) == MT_OK && d2.id == d.id, "device found");
    CHECK(mt_db_config_upsert(b, "cpu", "{\"b\":1}", &cfg2) == MT_OK, "the other connection commits");
    CHECK(mt_db_device_set_ceilings(a, d.id, 1, 2, 0) == MT_OK, "ceilings after a found device");
    mt_problem pr2 = pr;
    CHECK(mt_db_problem_upsert(a, &pr2) == MT_OK && pr2.id == pr.id, "problem found");
    CHECK(mt_db_config_upsert(b, "cpu", "{\"c\":1}", &cfg2) == MT_OK, "the other connection commits");
    CHECK(mt_db_sweep_begin(a, d.id, pr.id, "grid", 0, "8", "test", &sweep) == MT_OK, "sweep after a found problem");
    CHECK(mt_db_config_upsert(a, "cpu", "{\"a\":1}", &cfg2) == MT_OK && cfg2 == cfg, "config found");
    CHECK(mt_db_config_upsert(b, "cpu", "{\"d\":1}", &cfg2) == MT_OK, "the other connection commits");
    m.M = 16;
    CHECK(mt_db_measurement_insert(a, &m) == MT_OK, "measurement after a found config");
    CHECK(mt_db_measurement_exists(a, d.id, pr.id, 16, cfg, "h", "p") == 1, "measurement found");
    CHECK(mt_db_config_upsert(b, "cpu", "{\"e\":1}", &cfg2) == MT_OK, "the other connection commits");
    m.M = 32;
    CHECK(mt_db_measurement_insert(a, &m) == MT_OK, "measurement after a found measurement");
    CHECK(mt_db_counts(a, d.id, pr.id, "h", &ok, &failed) == MT_OK && ok == 3, "counts: %lld", (long long)ok);
    CHECK(mt_db_config_upsert(b, "cpu", "{\"f\":1}", &cfg2) == MT_OK, "the other connection commits");
    m.M = 64;
    CHECK(mt_db_measurement_insert(a, &m) == MT_OK, "measurement after the counts");
    mt_db_close(a);
    mt_db_close(b);
}

static void test_newer_schema(void)
{
    char p[512], err[512];
    sqlite3 *h;
    mt_db *db;
    path_of(p, sizeof p, "newer.db");
    sqlite3_open(p, &h);
    sqlite3_exec(h, "CREATE TABLE future(x); INSERT INTO future VALUES(42); PRAGMA user_version=99;", 0, 0, 0);
    sqlite3_close(h);
    long before = file_size(p);
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_ESCHEMA, "a newer schema must be refused");
    CHECK(strstr(err, "99") && strstr(err, p), "the message names the file and version: %s", err);
    CHECK(file_size(p) == before, "the file is untouched");
    sqlite3_open(p, &h);
    sqlite3_stmt *s;
    sqlite3_prepare_v2(h, "SELECT x FROM future", -1, &s, 0);
    CHECK(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 42, "its data is intact");
    sqlite3_finalize(s);
    sqlite3_close(h);
}

static void test_corrupt(void)
{
    char p[512], err[512];
    mt_db *db;
    path_of(p, sizeof p, "corrupt.db");
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < 8192; i++) fputc((i * 7919) & 0xff, f);
    fclose(f);
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_ECORRUPT, "a file that is not a database must be refused: %s", err);
    CHECK(strstr(err, p) != NULL, "the message names the file: %s", err);
    CHECK(file_size(p) == 8192, "the file is untouched");
}

static void test_unwritable(void)
{
    char p[512], err[512];
    mt_db *db;
    /* under a regular file: impossible even for root */
    path_of(p, sizeof p, "plainfile");
    FILE *f = fopen(p, "w");
    fclose(f);
    path_of(p, sizeof p, "plainfile/x.db");
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_EIO, "an unopenable path: %s", err);
    CHECK(strstr(err, "plainfile/x.db") != NULL, "the message names the path: %s", err);
}

static int count_rows(const mt_result_row *r, void *u)
{
    (void)r;
    (*(int *)u)++;
    return 0;
}

static void test_import_replace(void)
{
    char p[512], err[512];
    mt_db *db;
    path_of(p, sizeof p, "imp.db");
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK, "open: %s", err);
    mt_device_info d = {.backend = "cuda", .name = "NVIDIA_H100", .raw_name = "NVIDIA_H100"};
    mt_problem pr = {.kernel = "fused_moe", .dtype = "vllm:", .E = 8, .N = 64};
    mt_db_device_upsert(db, &d);
    mt_db_problem_upsert(db, &pr);
    for (int round = 0; round < 2; round++) {
        CHECK(mt_db_import_begin(db, d.id, pr.id, "f.json", "[\"1\",\"2\"]", "{}") == MT_OK, "import begin");
        for (int k = 1; k <= 2; k++) {
            int64_t cfg;
            char js[64];
            snprintf(js, sizeof js, "{\"BLOCK_SIZE_M\":%d}", k * 16 + round);
            mt_db_config_upsert(db, "vllm", js, &cfg);
            mt_measurement m = {.device_id = d.id, .problem_id = pr.id, .config_id = cfg, .M = k,
                                .status = "foreign", .kernel_hash = "imported", .timing_policy = "none", .ord = k};
            m.median_us = m.spread_us = m.rel_err = m.tolerance = m.floor_us = m.efficiency = NAN;
            CHECK(mt_db_measurement_insert(db, &m) == MT_OK, "foreign row");
        }
    }
    int n = 0;
    mt_db_results(db, d.id, pr.id, "foreign", NULL, count_rows, &n);
    CHECK(n == 2, "re-importing replaces the rows: %d", n);
    char *order, *extra;
    CHECK(mt_db_import_get(db, d.id, pr.id, &order, &extra) == MT_OK && !strcmp(order, "[\"1\",\"2\"]"), "key order");
    free(order);
    free(extra);
    mt_db_close(db);
}

static int count_job(const mt_job *j, void *u)
{
    (void)j;
    ++*(int *)u;
    return 0;
}

/* The queue: the oldest job a device can serve, by device, kind or "any";
 * a cancel that lands while a job runs outlives its finish. */
static void test_jobs(void)
{
    char p[512], err[512], st[32];
    mt_db *db;
    path_of(p, sizeof p, "jobs.db");
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK, "open: %s", err);
    int64_t a, b, c, got;
    CHECK(mt_db_job_submit(db, "[\"--model\",\"tiny\"]", "cuda:1", &a) == MT_OK, "submit");
    mt_db_job_submit(db, "[]", "any", &b);
    mt_db_job_submit(db, "[]", "cpu", &c);
    CHECK(mt_db_job_claim(db, "cpu", "cpu", 42, &got) == MT_OK && got == b, "cpu gets the older 'any' job: %lld", (long long)got);
    CHECK(mt_db_job_claim(db, "cpu", "cpu", 42, &got) == MT_OK && got == c, "then its own: %lld", (long long)got);
    CHECK(mt_db_job_claim(db, "cpu", "cpu", 42, &got) == MT_OK && got == 0, "then none: %lld", (long long)got);
    CHECK(mt_db_job_claim(db, "cuda:0", "cuda", 42, &got) == MT_OK && got == 0, "cuda:0 cannot take cuda:1's job");
    CHECK(mt_db_job_claim(db, "cuda:1", "cuda", 42, &got) == MT_OK && got == a, "cuda:1 can");
    const char *was;
    CHECK(mt_db_job_cancel(db, b, &was) == MT_OK && !strcmp(was, "running"), "cancel a running job: %s", was);
    mt_db_job_finish(db, b, "done", "done", 0);
    mt_db_job_status(db, b, st, sizeof st);
    CHECK(!strcmp(st, "cancelled"), "a cancel outlives the finish: %s", st);
    CHECK(mt_db_job_cancel(db, 99, &was) == MT_OK && !strcmp(was, "missing"), "no job 99");
    /* a daemon that died: its running jobs go back, claimable again */
    CHECK(mt_db_jobs_requeue_running(db) == MT_OK, "requeue");
    mt_db_job_status(db, c, st, sizeof st);
    CHECK(!strcmp(st, "queued"), "requeued: %s", st);
    CHECK(mt_db_job_claim(db, "cpu", "cpu", 43, &got) == MT_OK && got == c, "claimed again");
    int n = 0;
    mt_db_jobs(db, 10, count_job, &n);
    CHECK(n == 3, "three jobs listed: %d", n);
    mt_db_close(db);
}

/* A database left at schema 1 by an older moetune is migrated, data kept. */
static void test_migrate_from_v1(void)
{
    char p[512], err[512];
    mt_db *db;
    sqlite3 *h;
    path_of(p, sizeof p, "v1.db");
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK, "open: %s", err);
    mt_device_info d = {.backend = "cpu", .name = "CPU_OLD", .raw_name = "old"};
    mt_db_device_upsert(db, &d);
    mt_db_close(db);
    /* take it back to what schema 1 was: its tables as that release
     * created them, with a device, a problem and a measurement */
    sqlite3_open(p, &h);
    CHECK(sqlite3_exec(h, "DROP TABLE finalists; DROP TABLE jobs; DROP TABLE daemon_devices; DROP TABLE imports;"
                          "DROP TABLE measurements; DROP TABLE sweeps; DROP TABLE configs; DROP TABLE problems;"
                          "DROP TABLE devices;"
                          "CREATE TABLE devices(id INTEGER PRIMARY KEY, backend TEXT NOT NULL, name TEXT NOT NULL,"
                          " raw_name TEXT NOT NULL, arch TEXT NOT NULL DEFAULT '', cores INTEGER NOT NULL DEFAULT 0,"
                          " memory_bytes INTEGER NOT NULL DEFAULT 0, driver TEXT NOT NULL DEFAULT '',"
                          " toolkit TEXT NOT NULL DEFAULT '', bandwidth_gbs REAL, peak_gflops REAL, ceilings_at TEXT,"
                          " UNIQUE(backend, name, raw_name, arch, cores, memory_bytes));"
                          "CREATE TABLE problems(id INTEGER PRIMARY KEY, kernel TEXT NOT NULL, dtype TEXT NOT NULL,"
                          " E INTEGER NOT NULL, N INTEGER NOT NULL, K INTEGER NOT NULL, topk INTEGER NOT NULL,"
                          " block_n INTEGER NOT NULL DEFAULT 0, block_k INTEGER NOT NULL DEFAULT 0,"
                          " renormalize INTEGER NOT NULL DEFAULT 1,"
                          " UNIQUE(kernel, dtype, E, N, K, topk, block_n, block_k, renormalize));"
                          "CREATE TABLE configs(id INTEGER PRIMARY KEY, backend TEXT NOT NULL, params TEXT NOT NULL,"
                          " UNIQUE(backend, params));"
                          "CREATE TABLE sweeps(id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL REFERENCES devices(id),"
                          " problem_id INTEGER NOT NULL REFERENCES problems(id), strategy TEXT NOT NULL,"
                          " budget INTEGER NOT NULL, batch_sizes TEXT NOT NULL, command TEXT NOT NULL,"
                          " started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
                          " finished_at TEXT, status TEXT NOT NULL DEFAULT 'running');"
                          "CREATE TABLE measurements(id INTEGER PRIMARY KEY, sweep_id INTEGER REFERENCES sweeps(id),"
                          " device_id INTEGER NOT NULL REFERENCES devices(id),"
                          " problem_id INTEGER NOT NULL REFERENCES problems(id), M INTEGER NOT NULL,"
                          " config_id INTEGER NOT NULL REFERENCES configs(id), is_default INTEGER NOT NULL DEFAULT 0,"
                          " status TEXT NOT NULL CHECK (status IN ('ok','failed','foreign')), reason TEXT,"
                          " median_us REAL, spread_us REAL, reps INTEGER, rel_err REAL, tolerance REAL, floor_us REAL,"
                          " efficiency REAL, kernel_hash TEXT NOT NULL, moetune_version TEXT NOT NULL,"
                          " timing_policy TEXT NOT NULL, ord INTEGER NOT NULL DEFAULT 0,"
                          " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
                          " UNIQUE(device_id, problem_id, M, config_id, kernel_hash, timing_policy));"
                          "CREATE INDEX measurements_best ON measurements(device_id, problem_id, status, M, median_us);"
                          "CREATE TABLE imports(id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL REFERENCES devices(id),"
                          " problem_id INTEGER NOT NULL REFERENCES problems(id), file TEXT NOT NULL,"
                          " key_order TEXT NOT NULL, extra TEXT NOT NULL,"
                          " imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
                          " UNIQUE(device_id, problem_id));"
                          "INSERT INTO devices(backend, name, raw_name) VALUES('cpu', 'CPU_OLD', 'old');"
                          "INSERT INTO problems(kernel, dtype, E, N, K, topk) VALUES('fused_moe', 'bf16', 8, 64, 32, 2);"
                          "INSERT INTO configs(backend, params) VALUES('cpu', '{\"block_m\":16}');"
                          "INSERT INTO measurements(device_id, problem_id, M, config_id, status, median_us, kernel_hash,"
                          " moetune_version, timing_policy) VALUES(1, 1, 4, 1, 'ok', 12.5, 'h', '0.0.1', 'p');"
                          "PRAGMA user_version=1;",
                          0, 0, 0) == SQLITE_OK,
          "downgrade: %s", sqlite3_errmsg(h));
    sqlite3_close(h);
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK, "migrate: %s", err);
    mt_db_close(db);
    sqlite3_open(p, &h);
    sqlite3_stmt *s;
    sqlite3_prepare_v2(h, "SELECT (SELECT user_version FROM pragma_user_version), "
                          "(SELECT count(*) FROM pragma_table_info('measurements') WHERE name='resources'), "
                          "(SELECT count(*) FROM devices WHERE name='CPU_OLD'), "
                          "(SELECT key FROM problems WHERE id=1), "
                          "(SELECT count(*) FROM measurements WHERE problem_id=1 AND M=4 AND p2=0 AND median_us=12.5)",
                       -1, &s, 0);
    CHECK(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == MT_DB_SCHEMA_VERSION &&
              sqlite3_column_int(s, 1) == 1 && sqlite3_column_int(s, 2) == 1 &&
              !strcmp((const char *)sqlite3_column_text(s, 3),
                      "{\"E\":8,\"N\":64,\"K\":32,\"topk\":2,\"block_n\":0,\"block_k\":0,\"dtype\":\"bf16\"}") &&
              sqlite3_column_int(s, 4) == 1,
          "migrated to %d with the new columns and the old rows (key %s)", sqlite3_column_int(s, 0),
          (const char *)sqlite3_column_text(s, 3));
    sqlite3_finalize(s);
    sqlite3_close(h);
    /* the key the migration wrote is the one the database API writes: the
     * same problem is found, not added again */
    mt_problem same = {.kernel = "fused_moe", .dtype = "bf16", .E = 8, .N = 64, .K = 32, .topk = 2, .renormalize = 1};
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK && mt_db_problem_upsert(db, &same) == MT_OK && same.id == 1,
          "the migrated problem is found by its key: id %lld", (long long)same.id);
    mt_db_close(db);
}

/* Problems are (family, key): attention's heads are its key's, not fused
 * MoE's columns, and two attention shapes of one dtype are two problems. */
static void test_problem_keys(void)
{
    char p[512], err[512];
    mt_db *db;
    path_of(p, sizeof p, "keys.db");
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK, "open: %s", err);
    mt_problem a = {.kernel = "attn_decode", .key = "{\"page\":16,\"H\":32,\"D\":128,\"H_kv\":8,\"dtype\":\"fp16\"}"};
    mt_problem b = {.kernel = "attn_decode", .key = "{\"H\":8,\"H_kv\":2,\"D\":64,\"page\":16,\"dtype\":\"fp16\"}"};
    mt_problem a2 = {.kernel = "attn_decode", .key = "{\"H\":32,\"H_kv\":8,\"D\":128,\"page\":16,\"dtype\":\"fp16\"}"};
    CHECK(mt_db_problem_upsert(db, &a) == MT_OK && mt_db_problem_upsert(db, &b) == MT_OK &&
              mt_db_problem_upsert(db, &a2) == MT_OK && a.id != b.id && a2.id == a.id,
          "two shapes, two problems; one shape written in another order, the same problem (%lld %lld %lld)",
          (long long)a.id, (long long)b.id, (long long)a2.id);
    CHECK(!strcmp(a.key, "{\"H\":32,\"H_kv\":8,\"D\":128,\"page\":16,\"dtype\":\"fp16\"}") && !strcmp(a.dtype, "fp16") &&
              a.E == 0 && a.N == 0 && a.K == 0 && a.topk == 0,
          "the key canonical, the dtype from it, fused MoE's fields not used: %s", a.key);
    mt_problem old = {.kernel = "attn_decode", .dtype = "bf16", .E = 32, .N = 8, .K = 128, .topk = 16};
    CHECK(mt_db_problem_upsert(db, &old) == MT_EINVAL, "an attention problem without its key is refused");
    mt_problem odd = {.kernel = "attn_decode", .key = "{\"H\":6,\"H_kv\":4,\"D\":64,\"page\":16}"};
    CHECK(mt_db_problem_upsert(db, &odd) == MT_EINVAL, "an impossible key is refused");
    mt_problem other = {.kernel = "mla_decode", .key = "{}"};
    CHECK(mt_db_problem_upsert(db, &other) == MT_EINVAL, "an unknown family is refused");
    /* a point is (M, p2): two context lengths of one batch are two rows,
     * the same point twice is refused; a transient failure is replaced
     * in place, the verified row left alone */
    mt_device_info d = {.backend = "cpu", .name = "CPU_K", .raw_name = "k"};
    int64_t cfg = 0;
    CHECK(mt_db_device_upsert(db, &d) == MT_OK && mt_db_config_upsert(db, "cpu", "{\"partition\":0}", &cfg) == MT_OK,
          "setup");
    mt_measurement m = {.device_id = d.id, .problem_id = a.id, .config_id = cfg, .M = 8, .p2 = 100, .status = "ok",
                        .median_us = 5, .spread_us = 0, .rel_err = 0, .tolerance = NAN, .floor_us = NAN,
                        .efficiency = NAN, .reps = 3, .kernel_hash = "h", .timing_policy = "p"};
    int rc1 = mt_db_measurement_insert(db, &m);
    m.p2 = 200;
    m.status = "failed";
    m.reason = "timed out after 60 s";
    m.transient = 1;
    int rc2 = mt_db_measurement_insert(db, &m);
    int rc3 = mt_db_measurement_insert(db, &m);
    CHECK(rc1 == MT_OK && rc2 == MT_OK && rc3 != MT_OK, "two context lengths, two rows; the same point twice refused");
    int64_t p100[2] = {8, 100}, p200[2] = {8, 200}, p300[2] = {8, 300};
    double med = 0;
    int failed = -1;
    CHECK(mt_db_point_get(db, d.id, a.id, p100, cfg, "h", "p", &med, &failed) == 1 && med == 5 && failed == 0 &&
              mt_db_point_get(db, d.id, a.id, p200, cfg, "h", "p", &med, &failed) == 1 && isnan(med) &&
              failed == MT_FAILED_TRANSIENT && mt_db_point_get(db, d.id, a.id, p300, cfg, "h", "p", &med, NULL) == 0,
          "each point read back as stored");
    /* measured again: the failure replaced in place, the verified row never */
    mt_measurement again = m;
    again.status = "ok", again.reason = NULL, again.transient = 0, again.median_us = 7;
    int r200 = mt_db_measurement_retry(db, &again);
    again.p2 = 100;
    int r100 = mt_db_measurement_retry(db, &again);
    CHECK(r200 == MT_OK && r100 == MT_ENOTFOUND &&
              mt_db_point_get(db, d.id, a.id, p200, cfg, "h", "p", &med, &failed) == 1 && med == 7 && failed == 0 &&
              mt_db_point_get(db, d.id, a.id, p100, cfg, "h", "p", &med, NULL) == 1 && med == 5,
          "the transient failure replaced, the verified row kept");
    mt_db_close(db);
}

/* Attention rows measured on a CUDA GPU (written here through the database
 * API: no GPU needed) are exported, as the CPU's are: the export asked for
 * the CPU kernel's hash only and wrote nothing for them. */
static void test_export_cuda_attention(void)
{
    char p[512], err[512], out[512], file[1024];
    mt_db *db;
    path_of(p, sizeof p, "attn_cuda.db");
    CHECK(mt_db_open(&db, p, err, sizeof err) == MT_OK, "open: %s", err);
    mt_device_info d = {.backend = "cuda", .name = "NVIDIA_H100_80GB_HBM3", .raw_name = "NVIDIA H100 80GB HBM3",
                        .arch = "sm_90", .cores = 132};
    mt_problem pr = {.kernel = "attn_decode", .key = "{\"H\":32,\"H_kv\":8,\"D\":128,\"page\":16}"};
    int64_t c1 = 0, c2 = 0;
    CHECK(mt_db_device_upsert(db, &d) == MT_OK && mt_db_problem_upsert(db, &pr) == MT_OK &&
              mt_db_config_upsert(db, "cuda", "{\"partition\":512,\"num_warps\":4,\"mma\":1,\"stage\":2}", &c1) == MT_OK &&
              mt_db_config_upsert(db, "cuda", "{\"partition\":256,\"num_warps\":8,\"mma\":0,\"stage\":0}", &c2) == MT_OK,
          "setup");
    const char *h = mt_attn_kernel_hash("cuda");
    CHECK(strcmp(h, mt_attn_kernel_hash("cpu")) != 0, "the CUDA and CPU attention kernels have their own hashes");
    mt_attn_row r1 = {0, d.id, pr.id, 8, 2048, c1, 0, "ok", NULL, 30.5, 0.2, 1e-3, 25.0, 9, h, "p", NULL, 0};
    mt_attn_row r2 = {0, d.id, pr.id, 8, 2048, c2, 1, "ok", NULL, 41.0, 0.2, 1e-3, 25.0, 9, h, "p", NULL, 0};
    CHECK(mt_db_attn_insert(db, &r1) == MT_OK && mt_db_attn_insert(db, &r2) == MT_OK, "rows");
    path_of(out, sizeof out, "attn_out");
    mkdir(out, 0755);
    mt_export_opts eo = {out, 1, 1, 0, 0, 0, 1};
    mt_export_stats es;
    CHECK(mt_export(db, &eo, &es) == MT_OK && es.failed == 0, "export");
    snprintf(file, sizeof file, "%s/attn_decode,H=32,H_kv=8,D=128,page=16,device_name=NVIDIA_H100_80GB_HBM3,dtype=bf16.json",
             out);
    FILE *f = fopen(file, "r");
    char text[4096] = "";
    if (f) {
        size_t k = fread(text, 1, sizeof text - 1, f);
        text[k] = 0;
        fclose(f);
    }
    CHECK(f != NULL, "the CUDA attention file was written: %s", file);
    CHECK(strstr(text, "\"partition\": 512") != NULL, "and holds the fastest config: %s", text);
    mt_db_close(db);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mt_test_db.XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_fresh_and_reopen();
    test_two_writers();
    test_newer_schema();
    test_corrupt();
    test_unwritable();
    test_import_replace();
    test_jobs();
    test_migrate_from_v1();
    test_problem_keys();
    test_export_cuda_attention();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_report("test_db");
}
