#include "db.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_col.h"
#include "family.h"
#include "log.h"
#include "moetune/moetune.h"

/* Migrations, applied in order, each in its own BEGIN IMMEDIATE. A step is
 * never edited once released: changes go in a new step. */
static const struct { int version; const char *sql; } migrations[] = {
    {1,
     "CREATE TABLE devices("
     " id INTEGER PRIMARY KEY,"
     " backend TEXT NOT NULL,"
     " name TEXT NOT NULL,"          /* as vLLM spells it in file names */
     " raw_name TEXT NOT NULL,"
     " arch TEXT NOT NULL DEFAULT '',"
     " cores INTEGER NOT NULL DEFAULT 0,"
     " memory_bytes INTEGER NOT NULL DEFAULT 0,"
     " driver TEXT NOT NULL DEFAULT '',"
     " toolkit TEXT NOT NULL DEFAULT '',"
     " bandwidth_gbs REAL,"
     " peak_gflops REAL,"
     " ceilings_at TEXT,"
     " UNIQUE(backend, name, raw_name, arch, cores, memory_bytes));"
     "CREATE TABLE problems("
     " id INTEGER PRIMARY KEY,"
     " kernel TEXT NOT NULL,"
     " dtype TEXT NOT NULL,"
     " E INTEGER NOT NULL, N INTEGER NOT NULL, K INTEGER NOT NULL, topk INTEGER NOT NULL,"
     " block_n INTEGER NOT NULL DEFAULT 0, block_k INTEGER NOT NULL DEFAULT 0,"
     " renormalize INTEGER NOT NULL DEFAULT 1,"
     " UNIQUE(kernel, dtype, E, N, K, topk, block_n, block_k, renormalize));"
     "CREATE TABLE configs("
     " id INTEGER PRIMARY KEY,"
     " backend TEXT NOT NULL,"
     " params TEXT NOT NULL,"
     " UNIQUE(backend, params));"
     "CREATE TABLE sweeps("
     " id INTEGER PRIMARY KEY,"
     " device_id INTEGER NOT NULL REFERENCES devices(id),"
     " problem_id INTEGER NOT NULL REFERENCES problems(id),"
     " strategy TEXT NOT NULL, budget INTEGER NOT NULL, batch_sizes TEXT NOT NULL, command TEXT NOT NULL,"
     " started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
     " finished_at TEXT, status TEXT NOT NULL DEFAULT 'running');"
     "CREATE TABLE measurements("
     " id INTEGER PRIMARY KEY,"
     " sweep_id INTEGER REFERENCES sweeps(id),"
     " device_id INTEGER NOT NULL REFERENCES devices(id),"
     " problem_id INTEGER NOT NULL REFERENCES problems(id),"
     " M INTEGER NOT NULL,"
     " config_id INTEGER NOT NULL REFERENCES configs(id),"
     " is_default INTEGER NOT NULL DEFAULT 0,"
     " status TEXT NOT NULL CHECK (status IN ('ok','failed','foreign')),"
     " reason TEXT,"
     " median_us REAL, spread_us REAL, reps INTEGER,"
     " rel_err REAL, tolerance REAL, floor_us REAL, efficiency REAL,"
     " kernel_hash TEXT NOT NULL, moetune_version TEXT NOT NULL, timing_policy TEXT NOT NULL,"
     " ord INTEGER NOT NULL DEFAULT 0,"
     " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
     " UNIQUE(device_id, problem_id, M, config_id, kernel_hash, timing_policy));"
     "CREATE INDEX measurements_best ON measurements(device_id, problem_id, status, M, median_us);"
     "CREATE TABLE imports("
     " id INTEGER PRIMARY KEY,"
     " device_id INTEGER NOT NULL REFERENCES devices(id),"
     " problem_id INTEGER NOT NULL REFERENCES problems(id),"
     " file TEXT NOT NULL, key_order TEXT NOT NULL, extra TEXT NOT NULL,"
     " imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
     " UNIQUE(device_id, problem_id));"},
    /* GPU variants carry the compiler's resource report; GPUs their cache
     * and shared-memory sizes */
    {2, "ALTER TABLE measurements ADD COLUMN resources TEXT;"
        "ALTER TABLE devices ADD COLUMN l2_bytes INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE devices ADD COLUMN smem_per_block INTEGER NOT NULL DEFAULT 0;"},
    /* finalists: the best few per M measured again side by side at the end
     * of a sweep; the winner is chosen from these */
    {3, "CREATE TABLE finalists("
        " id INTEGER PRIMARY KEY,"
        " sweep_id INTEGER NOT NULL REFERENCES sweeps(id),"
        " device_id INTEGER NOT NULL REFERENCES devices(id),"
        " problem_id INTEGER NOT NULL REFERENCES problems(id),"
        " M INTEGER NOT NULL,"
        " config_id INTEGER NOT NULL REFERENCES configs(id),"
        " median_us REAL NOT NULL, rounds INTEGER NOT NULL,"
        " kernel_hash TEXT NOT NULL, timing_policy TEXT NOT NULL,"
        " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));"
        "CREATE INDEX finalists_by_m ON finalists(device_id, problem_id, M, kernel_hash, sweep_id);"},
    /* 'aborted': stopped early, clearly slower than the incumbent. SQLite
     * cannot change a CHECK: the table is rebuilt with its rows */
    {4, "CREATE TABLE measurements_v4("
        " id INTEGER PRIMARY KEY,"
        " sweep_id INTEGER REFERENCES sweeps(id),"
        " device_id INTEGER NOT NULL REFERENCES devices(id),"
        " problem_id INTEGER NOT NULL REFERENCES problems(id),"
        " M INTEGER NOT NULL,"
        " config_id INTEGER NOT NULL REFERENCES configs(id),"
        " is_default INTEGER NOT NULL DEFAULT 0,"
        " status TEXT NOT NULL CHECK (status IN ('ok','failed','foreign','aborted')),"
        " reason TEXT,"
        " median_us REAL, spread_us REAL, reps INTEGER,"
        " rel_err REAL, tolerance REAL, floor_us REAL, efficiency REAL,"
        " kernel_hash TEXT NOT NULL, moetune_version TEXT NOT NULL, timing_policy TEXT NOT NULL,"
        " ord INTEGER NOT NULL DEFAULT 0,"
        " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
        " resources TEXT,"
        " UNIQUE(device_id, problem_id, M, config_id, kernel_hash, timing_policy));"
        "INSERT INTO measurements_v4 SELECT id, sweep_id, device_id, problem_id, M, config_id, is_default, status,"
        " reason, median_us, spread_us, reps, rel_err, tolerance, floor_us, efficiency, kernel_hash, moetune_version,"
        " timing_policy, ord, created_at, resources FROM measurements;"
        "DROP TABLE measurements;"
        "ALTER TABLE measurements_v4 RENAME TO measurements;"
        "CREATE INDEX measurements_best ON measurements(device_id, problem_id, status, M, median_us);"},
    /* the daemon's job queue: a job is sweep options (a JSON array of
     * arguments) for a device or device kind; daemons are the devices'
     * state as the daemon last saw it */
    {5, "CREATE TABLE jobs("
        " id INTEGER PRIMARY KEY,"
        " args TEXT NOT NULL,"
        " device TEXT NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('queued','running','done','failed','cancelled')),"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " assigned_device TEXT, daemon_pid INTEGER, sweep_pid INTEGER,"
        " done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0, best TEXT, message TEXT,"
        " exit_status INTEGER,"
        " submitted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
        " started_at TEXT, finished_at TEXT);"
        "CREATE INDEX jobs_by_status ON jobs(status, id);"
        "CREATE TABLE daemon_devices("
        " device TEXT PRIMARY KEY, state TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0, message TEXT,"
        " daemon_pid INTEGER, updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));"},
    /* attention decode: measured per (batch, context length) of a problem
     * whose kernel is 'attn_decode' (E, N, K, topk holding num_heads,
     * num_kv_heads, head_dim, page_size) */
    {6, "CREATE TABLE attn_measurements("
        " id INTEGER PRIMARY KEY,"
        " sweep_id INTEGER REFERENCES sweeps(id),"
        " device_id INTEGER NOT NULL REFERENCES devices(id),"
        " problem_id INTEGER NOT NULL REFERENCES problems(id),"
        " batch INTEGER NOT NULL, ctx INTEGER NOT NULL,"
        " config_id INTEGER NOT NULL REFERENCES configs(id),"
        " is_default INTEGER NOT NULL DEFAULT 0,"
        " status TEXT NOT NULL CHECK (status IN ('ok','failed','aborted')),"
        " reason TEXT, median_us REAL, spread_us REAL, reps INTEGER, rel_err REAL, floor_us REAL,"
        " kernel_hash TEXT NOT NULL, moetune_version TEXT NOT NULL, timing_policy TEXT NOT NULL,"
        " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
        " UNIQUE(device_id, problem_id, batch, ctx, config_id, kernel_hash, timing_policy));"},
    /* a failure that did not come from the variant (a timeout, a signal
     * from outside: another process's OOM kill) is measured again on the
     * next run; rows stored before are classified by their reason */
    {7, "ALTER TABLE measurements ADD COLUMN transient INTEGER NOT NULL DEFAULT 0;"
        /* a sweep's process, so that one killed (kill -9) is found and
         * marked instead of staying 'running' */
        "ALTER TABLE sweeps ADD COLUMN pid INTEGER;"
        "ALTER TABLE sweeps ADD COLUMN host TEXT;"
        "ALTER TABLE attn_measurements ADD COLUMN transient INTEGER NOT NULL DEFAULT 0;"
        "UPDATE measurements SET transient=1 WHERE status='failed' AND (reason LIKE 'timed out after %' OR "
        " reason LIKE 'worker died: killed by signal 9 %' OR reason LIKE 'worker died: killed by signal 15 %' OR "
        " reason LIKE 'worker died: killed by signal 2 %' OR reason LIKE 'worker died: killed by signal 1 %');"
        "UPDATE attn_measurements SET transient=1 WHERE status='failed' AND (reason LIKE 'timed out after %' OR "
        " reason LIKE 'worker died: killed by signal 9 %' OR reason LIKE 'worker died: killed by signal 15 %' OR "
        " reason LIKE 'worker died: killed by signal 2 %' OR reason LIKE 'worker died: killed by signal 1 %');"},
    /* one schema for every kernel family: a problem is (family, key as the
     * family's canonical JSON, families/registry.c), so that attention's
     * heads no longer sit in fused MoE's E, N, K and topk (those columns stay
     * for fused MoE's queries, 0 for other families); a measurement is
     * (problem, point, config, kernel hash, timing policy), the point in M
     * (the family's first point field: fused MoE's M, attention's batch) and
     * p2 (its second: attention's context length; 0 where there is none).
     * The attention rows move into measurements. Tables are rebuilt the way
     * SQLite's documentation gives (new table, copy, drop, rename), with
     * foreign keys off: mt_db_open turns them on after migrating. */
    {8, "CREATE TABLE problems_v8("
        " id INTEGER PRIMARY KEY,"
        " kernel TEXT NOT NULL," /* the family */
        " key TEXT NOT NULL,"
        " dtype TEXT NOT NULL,"
        " E INTEGER NOT NULL, N INTEGER NOT NULL, K INTEGER NOT NULL, topk INTEGER NOT NULL,"
        " block_n INTEGER NOT NULL DEFAULT 0, block_k INTEGER NOT NULL DEFAULT 0,"
        " renormalize INTEGER NOT NULL DEFAULT 1,"
        " UNIQUE(kernel, key, renormalize));"
        "INSERT INTO problems_v8 SELECT id, kernel,"
        " CASE kernel WHEN 'attn_decode' THEN"
        "  '{\"H\":' || E || ',\"H_kv\":' || N || ',\"D\":' || K || ',\"page\":' || topk || ',\"dtype\":\"' || dtype || '\"}'"
        " ELSE '{\"E\":' || E || ',\"N\":' || N || ',\"K\":' || K || ',\"topk\":' || topk || ',\"block_n\":' || block_n ||"
        "  ',\"block_k\":' || block_k || ',\"dtype\":\"' || dtype || '\"}' END,"
        " dtype, CASE kernel WHEN 'attn_decode' THEN 0 ELSE E END, CASE kernel WHEN 'attn_decode' THEN 0 ELSE N END,"
        " CASE kernel WHEN 'attn_decode' THEN 0 ELSE K END, CASE kernel WHEN 'attn_decode' THEN 0 ELSE topk END,"
        " block_n, block_k, renormalize FROM problems ORDER BY id;"
        "DROP TABLE problems;"
        "ALTER TABLE problems_v8 RENAME TO problems;"
        "CREATE TABLE measurements_v8("
        " id INTEGER PRIMARY KEY,"
        " sweep_id INTEGER REFERENCES sweeps(id),"
        " device_id INTEGER NOT NULL REFERENCES devices(id),"
        " problem_id INTEGER NOT NULL REFERENCES problems(id),"
        " M INTEGER NOT NULL,"
        " p2 INTEGER NOT NULL DEFAULT 0,"
        " config_id INTEGER NOT NULL REFERENCES configs(id),"
        " is_default INTEGER NOT NULL DEFAULT 0,"
        " status TEXT NOT NULL CHECK (status IN ('ok','failed','foreign','aborted')),"
        " reason TEXT,"
        " median_us REAL, spread_us REAL, reps INTEGER,"
        " rel_err REAL, tolerance REAL, floor_us REAL, efficiency REAL,"
        " kernel_hash TEXT NOT NULL, moetune_version TEXT NOT NULL, timing_policy TEXT NOT NULL,"
        " ord INTEGER NOT NULL DEFAULT 0,"
        " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
        " resources TEXT,"
        " transient INTEGER NOT NULL DEFAULT 0,"
        " UNIQUE(device_id, problem_id, M, p2, config_id, kernel_hash, timing_policy));"
        "INSERT INTO measurements_v8(id, sweep_id, device_id, problem_id, M, p2, config_id, is_default, status, reason,"
        " median_us, spread_us, reps, rel_err, tolerance, floor_us, efficiency, kernel_hash, moetune_version,"
        " timing_policy, ord, created_at, resources, transient)"
        " SELECT id, sweep_id, device_id, problem_id, M, 0, config_id, is_default, status, reason, median_us, spread_us,"
        " reps, rel_err, tolerance, floor_us, efficiency, kernel_hash, moetune_version, timing_policy, ord, created_at,"
        " resources, transient FROM measurements ORDER BY id;"
        "INSERT INTO measurements_v8(sweep_id, device_id, problem_id, M, p2, config_id, is_default, status, reason,"
        " median_us, spread_us, reps, rel_err, floor_us, kernel_hash, moetune_version, timing_policy, created_at, transient)"
        " SELECT sweep_id, device_id, problem_id, batch, ctx, config_id, is_default, status, reason, median_us, spread_us,"
        " reps, rel_err, floor_us, kernel_hash, moetune_version, timing_policy, created_at, transient"
        " FROM attn_measurements ORDER BY id;"
        "DROP TABLE measurements;"
        "DROP TABLE attn_measurements;"
        "ALTER TABLE measurements_v8 RENAME TO measurements;"
        "CREATE INDEX measurements_best ON measurements(device_id, problem_id, status, M, p2, median_us);"
        "ALTER TABLE finalists ADD COLUMN p2 INTEGER NOT NULL DEFAULT 0;"},
    /* 9: the device's dense fp8 (e4m3) matmul rate, the compute ceiling of
     * fp8 problems (NULL: not measured, or no fp8 tensor cores) */
    {9, "ALTER TABLE devices ADD COLUMN peak_fp8_gflops REAL;"},
};
#define N_MIGRATIONS (int)(sizeof migrations / sizeof migrations[0])

enum stmt_id {
    S_DEV_FIND, S_DEV_INSERT, S_DEV_CEIL, S_PROB_FIND, S_PROB_INSERT, S_CFG_FIND, S_CFG_INSERT,
    S_SWEEP_BEGIN, S_SWEEP_END, S_MEAS_EXISTS, S_MEAS_INSERT, S_MEAS_RETRY, S_PAIRS, S_RESULTS_OK, S_RESULTS_OK_HASH,
    S_RESULTS_FOREIGN, S_COUNTS, S_RELATED, S_SHAPES, S_FIN_INSERT, S_FIN_WINNER, S_IMPORT_DEL_ROWS, S_IMPORT_UPSERT, S_IMPORT_GET, S_COUNT_ALL, S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_DEV_FIND] = "SELECT id, bandwidth_gbs, peak_gflops, peak_fp8_gflops FROM devices WHERE backend=?1 AND name=?2 AND "
                   "raw_name=?3 AND arch=?4 AND cores=?5 AND memory_bytes=?6",
    /* OR IGNORE: another process may add the same row between our find and
     * our insert (two sweeps starting on one database); the upserts then
     * find the row it added */
    [S_DEV_INSERT] = "INSERT OR IGNORE INTO devices(backend,name,raw_name,arch,cores,memory_bytes,driver,toolkit,l2_bytes,"
                     "smem_per_block) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [S_DEV_CEIL] = "UPDATE devices SET bandwidth_gbs=?2, peak_gflops=?3, peak_fp8_gflops=?4, "
                   "ceilings_at=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id=?1",
    [S_PROB_FIND] = "SELECT id FROM problems WHERE kernel=?1 AND key=?10 AND renormalize=?9",
    [S_PROB_INSERT] = "INSERT OR IGNORE INTO problems(kernel,dtype,E,N,K,topk,block_n,block_k,renormalize,key) "
                      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [S_CFG_FIND] = "SELECT id FROM configs WHERE backend=?1 AND params=?2",
    [S_CFG_INSERT] = "INSERT OR IGNORE INTO configs(backend, params) VALUES(?1,?2)",
    [S_SWEEP_BEGIN] = "INSERT INTO sweeps(device_id,problem_id,strategy,budget,batch_sizes,command,pid,host) "
                      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [S_SWEEP_END] = "UPDATE sweeps SET status=?2, finished_at=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id=?1",
    [S_MEAS_EXISTS] = "SELECT status, median_us, transient FROM measurements WHERE device_id=?1 AND problem_id=?2 AND M=?3 AND "
                      "p2=?7 AND config_id=?4 AND kernel_hash=?5 AND timing_policy=?6",
    [S_MEAS_INSERT] = "INSERT INTO measurements(sweep_id,device_id,problem_id,M,config_id,is_default,status,"
                      "reason,median_us,spread_us,reps,rel_err,tolerance,floor_us,efficiency,kernel_hash,"
                      "moetune_version,timing_policy,ord,resources,transient,p2) "
                      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22)",
    /* a failed row measured again: replaced by the new outcome, in place */
    [S_MEAS_RETRY] = "UPDATE measurements SET sweep_id=?1, is_default=?6, status=?7, reason=?8, median_us=?9, "
                     "spread_us=?10, reps=?11, rel_err=?12, tolerance=?13, floor_us=?14, efficiency=?15, "
                     "moetune_version=?17, ord=?19, resources=?20, transient=?21, "
                     "created_at=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE device_id=?2 AND problem_id=?3 AND M=?4 "
                     "AND p2=?22 AND config_id=?5 AND kernel_hash=?16 AND timing_policy=?18 AND status='failed'",
    [S_PAIRS] = "SELECT DISTINCT d.id,d.backend,d.name,d.raw_name,d.arch,d.cores,d.memory_bytes,d.driver,"
                "d.toolkit,d.bandwidth_gbs,d.peak_gflops,p.id,p.kernel,p.dtype,p.E,p.N,p.K,p.topk,p.block_n,"
                "p.block_k,p.renormalize,d.l2_bytes,d.smem_per_block,p.key,d.peak_fp8_gflops FROM measurements m "
                "JOIN devices d ON d.id=m.device_id "
                "JOIN problems p ON p.id=m.problem_id WHERE m.status=?1 AND p.kernel=?2 ORDER BY d.id, p.id",
    /* a point's rows together (M, then p2), fastest first */
    [S_RESULTS_OK] = "SELECT m.M,m.config_id,c.backend,c.params,m.status,m.reason,m.median_us,m.spread_us,"
                     "m.rel_err,m.floor_us,m.efficiency,m.reps,m.is_default,m.ord,m.p2 FROM measurements m "
                     "JOIN configs c ON c.id=m.config_id WHERE m.device_id=?1 AND m.problem_id=?2 AND "
                     "m.status=?3 ORDER BY m.M, m.p2, m.median_us, m.id",
    [S_RESULTS_OK_HASH] = "SELECT m.M,m.config_id,c.backend,c.params,m.status,m.reason,m.median_us,"
                          "m.spread_us,m.rel_err,m.floor_us,m.efficiency,m.reps,m.is_default,m.ord,m.p2 FROM "
                          "measurements m JOIN configs c ON c.id=m.config_id WHERE m.device_id=?1 AND "
                          "m.problem_id=?2 AND m.status=?3 AND m.kernel_hash=?4 ORDER BY m.M, m.p2, m.median_us, m.id",
    [S_RESULTS_FOREIGN] = "SELECT m.M,m.config_id,c.backend,c.params,m.status,m.reason,m.median_us,"
                          "m.spread_us,m.rel_err,m.floor_us,m.efficiency,m.reps,m.is_default,m.ord,m.p2 FROM "
                          "measurements m JOIN configs c ON c.id=m.config_id WHERE m.device_id=?1 AND "
                          "m.problem_id=?2 AND m.status=?3 ORDER BY m.ord, m.M, m.p2",
    [S_COUNTS] = "SELECT coalesce(sum(status='ok'),0), coalesce(sum(status='failed'),0) FROM measurements "
                 "WHERE device_id=?1 AND problem_id=?2 AND (?3 IS NULL OR kernel_hash=?3)",
    [S_IMPORT_DEL_ROWS] = "DELETE FROM measurements WHERE device_id=?1 AND problem_id=?2 AND status='foreign'",
    [S_IMPORT_UPSERT] = "INSERT INTO imports(device_id,problem_id,file,key_order,extra) VALUES(?1,?2,?3,?4,?5) "
                        "ON CONFLICT(device_id,problem_id) DO UPDATE SET file=excluded.file, "
                        "key_order=excluded.key_order, extra=excluded.extra, "
                        "imported_at=strftime('%Y-%m-%dT%H:%M:%fZ','now')",
    [S_IMPORT_GET] = "SELECT key_order, extra FROM imports WHERE device_id=?1 AND problem_id=?2",
    [S_COUNT_ALL] = "SELECT count(*) FROM measurements",
    [S_FIN_INSERT] = "INSERT INTO finalists(sweep_id,device_id,problem_id,M,config_id,median_us,rounds,kernel_hash,"
                     "timing_policy,p2) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    /* the fastest finalist of the latest sweep that ran finalists for this point */
    [S_FIN_WINNER] = "SELECT f.config_id, c.params, f.median_us FROM finalists f JOIN configs c ON c.id=f.config_id "
                     "WHERE f.device_id=?1 AND f.problem_id=?2 AND f.M=?3 AND f.p2=?5 AND (?4 IS NULL OR "
                     "f.kernel_hash=?4) AND f.sweep_id=(SELECT max(sweep_id) FROM finalists WHERE device_id=?1 AND "
                     "problem_id=?2 AND M=?3 AND p2=?5 AND (?4 IS NULL OR kernel_hash=?4)) ORDER BY f.median_us, f.id",
    /* verified rows of the same problem (family and key) on other devices,
     * and the rows imported for any problem of the family with the same
     * first two key fields (vLLM names its files by E and N only) */
    [S_RELATED] = "SELECT d.name, p.dtype, m.M, m.p2, c.params, m.status, m.median_us FROM measurements m "
                  "JOIN devices d ON d.id=m.device_id JOIN configs c ON c.id=m.config_id "
                  "JOIN problems p ON p.id=m.problem_id WHERE p.kernel=?1 AND m.device_id != ?3 AND "
                  "((m.status='ok' AND p.key=?2) OR (m.status='foreign' AND p.E=?4 AND p.N=?5)) "
                  "ORDER BY d.name, m.status, m.M, m.p2, m.median_us, m.ord",
    [S_SHAPES] = "SELECT p.id, p.key, m.M, m.p2, c.params, m.median_us FROM measurements m "
                 "JOIN configs c ON c.id=m.config_id JOIN problems p ON p.id=m.problem_id "
                 "WHERE p.kernel=?5 AND m.device_id=?1 AND m.problem_id != ?2 AND p.dtype=?3 "
                 "AND m.status='ok' AND m.kernel_hash=?4 ORDER BY p.id, m.M, m.p2, m.median_us, m.ord",
};

struct mt_db {
    sqlite3 *h;
    sqlite3_stmt *st[S_COUNT];
};

sqlite3 *mt_db_sqlite(mt_db *db) { return db ? db->h : NULL; }

int mt_db_name_twins(mt_db *db, int64_t dev, int64_t prob, int same_fp8_name, mt_problem *twins, int max)
{
    sqlite3_stmt *s = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT q.id, q.K, q.topk, q.dtype, q.block_n, q.block_k FROM problems p JOIN problems q ON q.kernel = p.kernel AND "
                           "(q.dtype = p.dtype OR replace(q.dtype, '_zp', '') = replace(p.dtype, '_zp', '') OR "
                           "(?3 AND replace(q.dtype, '_per_channel', '') = replace(p.dtype, '_per_channel', ''))) AND "
                           "q.E = p.E AND q.N = p.N AND ((q.block_n = p.block_n AND q.block_k = p.block_k) OR "
                           "(NOT (q.block_n > 0 AND q.block_k > 0) AND NOT (p.block_n > 0 AND p.block_k > 0))) AND "
                           "q.id <> p.id WHERE p.id = ?1 AND EXISTS (SELECT 1 FROM "
                           "measurements m WHERE m.problem_id = q.id AND m.device_id = ?2 AND m.status = 'ok') "
                           "ORDER BY q.id",
                           -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(s, 1, prob);
    sqlite3_bind_int64(s, 2, dev);
    sqlite3_bind_int(s, 3, same_fp8_name);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n < max) {
            mt_problem *t = &twins[n];
            memset(t, 0, sizeof *t);
            t->id = sqlite3_column_int64(s, 0);
            t->K = sqlite3_column_int64(s, 1);
            t->topk = sqlite3_column_int64(s, 2);
            const unsigned char *dt = sqlite3_column_text(s, 3);
            snprintf(t->dtype, sizeof t->dtype, "%s", dt ? (const char *)dt : "");
            t->block_n = sqlite3_column_int64(s, 4);
            t->block_k = sqlite3_column_int64(s, 5);
        }
        n++;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? n : -1;
}

int mt_db_latest_kernel_hash(mt_db *db, int64_t dev, int64_t prob, const char *like, const char *not_like, char *out,
                             size_t n)
{
    sqlite3_stmt *s = NULL;
    int rc = MT_ENOTFOUND;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT kernel_hash FROM measurements WHERE device_id = ?1 AND problem_id = ?2 "
                           "AND status = 'ok' AND (?3 IS NULL OR kernel_hash LIKE ?3) "
                           "AND (?4 IS NULL OR kernel_hash NOT LIKE ?4) ORDER BY id DESC LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK)
        return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    if (like) sqlite3_bind_text(s, 3, like, -1, SQLITE_TRANSIENT);
    if (not_like) sqlite3_bind_text(s, 4, not_like, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(s, 0));
        rc = MT_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

const char *mt_db_errmsg(mt_db *db)
{
    return db && db->h ? sqlite3_errmsg(db->h) : "no database";
}

/* Prepared once per handle, reset before each use. */
static sqlite3_stmt *stmt(mt_db *db, enum stmt_id id)
{
    if (!db->st[id]) {
        if (sqlite3_prepare_v3(db->h, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &db->st[id], NULL) != SQLITE_OK) {
            mt_err("cannot prepare statement %d: %s", (int)id, sqlite3_errmsg(db->h));
            return NULL;
        }
    } else {
        sqlite3_reset(db->st[id]);
        sqlite3_clear_bindings(db->st[id]);
    }
    return db->st[id];
}

static int exec(mt_db *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        mt_err("database: %s", msg ? msg : sqlite3_errmsg(db->h));
        sqlite3_free(msg);
        return MT_EDB;
    }
    return MT_OK;
}

int mt_db_begin(mt_db *db) { return exec(db, "BEGIN IMMEDIATE"); }
int mt_db_commit(mt_db *db) { return exec(db, "COMMIT"); }
void mt_db_rollback(mt_db *db)
{
    if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

static int classify(int rc)
{
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) return MT_ECORRUPT;
    if (rc == SQLITE_CANTOPEN || rc == SQLITE_READONLY || rc == SQLITE_PERM || rc == SQLITE_IOERR ||
        rc == SQLITE_FULL)
        return MT_EIO;
    return MT_EDB;
}

static const char *hint(int status)
{
    switch (status) {
    case MT_EIO: return "check that the folder exists and is writable, or pass --db PATH";
    case MT_ECORRUPT: return "the file was left untouched; move it aside or pass --db PATH";
    case MT_ESCHEMA: return "upgrade moetune, or pass --db PATH for a separate database";
    default: return "see the message above";
    }
}

/* The file's schema version: an SQLite result code, SQLITE_OK with *v set */
static int user_version(sqlite3 *h, int *v)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &q, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int(q, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    return rc;
}

int mt_db_open(mt_db **out, const char *path, char *err, size_t err_len)
{
    mt_db *db;
    int rc, status, version = 0;
    *out = NULL;
    if (!path || !*path) {
        /* SQLite takes "" as a private temporary database: a sweep would
         * run, exit 0 and keep nothing */
        snprintf(err, err_len, "the database path is empty: give a file (--db PATH), or leave --db out for the default");
        return MT_EINVAL;
    }
    db = calloc(1, sizeof *db);
    if (!db) return MT_ENOMEM;
    rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) goto fail_rc;
    /* a database from elsewhere may be hostile: no SQL functions with side
     * effects from its schema (views, triggers), no writes to its schema
     * by pragma */
    sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_extended_result_codes(db->h, 0);
    sqlite3_busy_timeout(db->h, 10000);
    /* Reading user_version is the first touch of the file: a file that is
     * not a database fails here, before anything is written to it. */
    if ((rc = user_version(db->h, &version)) != SQLITE_OK) goto fail_rc;
    if (version > MT_DB_SCHEMA_VERSION) {
        status = MT_ESCHEMA;
        snprintf(err, err_len, "cannot use database '%s': its schema version %d is newer than this moetune's (%d); %s",
                 path, version, MT_DB_SCHEMA_VERSION, hint(status));
        goto fail;
    }
    /* Turning a new file to WAL takes an exclusive lock, for which SQLite
     * does not wait on the busy handler: two processes opening the same new
     * file at once (two sweeps, the daemon's workers) got "database is
     * locked" here. Retried for the busy timeout's 10 s. */
    for (int waited = 0;; waited += 10) {
        rc = sqlite3_exec(db->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
        if (rc != SQLITE_BUSY || waited >= 10000) break;
        sqlite3_sleep(10);
    }
    if (rc != SQLITE_OK) goto fail_rc;
    for (int i = 0; i < N_MIGRATIONS; i++) {
        char sql[64];
        if (migrations[i].version <= version) continue;
        rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        /* the version again, under the write lock: another process opening
         * the same new file at the same moment may have migrated it while
         * this one waited for the lock (two sweeps of the daemon do) */
        if (rc == SQLITE_OK) rc = user_version(db->h, &version);
        if (rc == SQLITE_OK && migrations[i].version <= version) {
            rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
            if (rc == SQLITE_OK) continue;
        }
        if (rc == SQLITE_OK) rc = sqlite3_exec(db->h, migrations[i].sql, NULL, NULL, NULL);
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", migrations[i].version);
        if (rc == SQLITE_OK) rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            /* the reason, before the rollback resets it */
            status = classify(rc);
            snprintf(err, err_len, "cannot migrate database '%s' to schema %d: %s; nothing was changed", path,
                     migrations[i].version, sqlite3_errmsg(db->h));
            mt_db_rollback(db);
            goto fail;
        }
    }
    /* after the migrations, which rebuild referenced tables (SQLite
     * ignores this pragma inside a transaction) */
    if ((rc = sqlite3_exec(db->h, "PRAGMA foreign_keys=ON", NULL, NULL, NULL)) != SQLITE_OK) goto fail_rc;
    *out = db;
    return MT_OK;

fail_rc:
    status = classify(rc);
    snprintf(err, err_len, "cannot open database '%s': %s; %s", path,
             db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc), hint(status));
fail:
    sqlite3_close(db->h);
    free(db);
    return status;
}

void mt_db_close(mt_db *db)
{
    if (!db) return;
    for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(db->st[i]);
    sqlite3_close(db->h);
    free(db);
}

/* done_reading: a cached statement that returned a row is reset as soon as
 * the row is read. Left active, it holds its read snapshot open, and in WAL
 * mode this connection's next write then fails at once with "database is
 * locked" whenever another process committed in between (no busy wait
 * helps: the snapshot is stale). Two sweeps on one database (the daemon,
 * one per GPU) met exactly that on a two-GPU machine
 * (bench/results/2026-11-24-h200x2-daemon). */
static int fail(mt_db *db, const char *what)
{
    mt_err("database: %s: %s", what, sqlite3_errmsg(db->h));
    return MT_EDB;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

static void bind_real(sqlite3_stmt *s, int i, double v)
{
    if (isnan(v)) sqlite3_bind_null(s, i);
    else sqlite3_bind_double(s, i, v);
}

static double col_real(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

/* Find a row by its unique key, else insert it. The row another process
 * inserts between our find and our insert (two sweeps starting on one
 * database) makes the insert a no-op (OR IGNORE), and the second find
 * returns it. bind fills the find statement (the key) or the insert one
 * (key and the rest); found reads the found row. */
typedef void (*bind_fn)(sqlite3_stmt *s, const void *row, int insert);
static int find_or_insert(mt_db *db, enum stmt_id find, enum stmt_id insert, bind_fn bind, const void *row,
                          void (*found)(sqlite3_stmt *s, void *out), void *out, int64_t *id, const char *what)
{
    char why[96];
    for (int pass = 0;; pass++) {
        sqlite3_stmt *s = stmt(db, find);
        if (!s) return MT_EDB;
        bind(s, row, 0);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *id = sqlite3_column_int64(s, 0);
            if (found) found(s, out);
            sqlite3_reset(s); /* see done_reading */
            return MT_OK;
        }
        snprintf(why, sizeof why, "find %s", what);
        if (rc != SQLITE_DONE) return fail(db, why);
        snprintf(why, sizeof why, "insert %s: the row was neither added nor found", what);
        if (pass) return fail(db, why);
        if (!(s = stmt(db, insert))) return MT_EDB;
        bind(s, row, 1);
        snprintf(why, sizeof why, "insert %s", what);
        if (sqlite3_step(s) != SQLITE_DONE) return fail(db, why);
        if (sqlite3_changes(db->h) == 1) {
            *id = sqlite3_last_insert_rowid(db->h);
            return MT_OK;
        }
    }
}

static void bind_device(sqlite3_stmt *s, const void *row, int insert)
{
    const mt_device_info *d = row;
    bind_text(s, 1, d->backend);
    bind_text(s, 2, d->name);
    bind_text(s, 3, d->raw_name);
    bind_text(s, 4, d->arch);
    sqlite3_bind_int(s, 5, d->cores);
    sqlite3_bind_int64(s, 6, d->memory_bytes);
    if (!insert) return;
    bind_text(s, 7, d->driver);
    bind_text(s, 8, d->toolkit);
    sqlite3_bind_int64(s, 9, d->l2_bytes);
    sqlite3_bind_int(s, 10, d->smem_per_block);
}

/* a found device's measured ceilings */
static void device_found(sqlite3_stmt *s, void *out)
{
    mt_device_info *d = out;
    d->bandwidth_gbs = sqlite3_column_type(s, 1) == SQLITE_NULL ? 0 : sqlite3_column_double(s, 1);
    d->peak_gflops = sqlite3_column_type(s, 2) == SQLITE_NULL ? 0 : sqlite3_column_double(s, 2);
    d->peak_fp8_gflops = sqlite3_column_type(s, 3) == SQLITE_NULL ? 0 : sqlite3_column_double(s, 3);
}

int mt_db_device_upsert(mt_db *db, mt_device_info *d)
{
    d->bandwidth_gbs = d->peak_gflops = d->peak_fp8_gflops = 0;
    return find_or_insert(db, S_DEV_FIND, S_DEV_INSERT, bind_device, d, device_found, d, &d->id, "device");
}

int mt_db_device_set_ceilings(mt_db *db, int64_t id, double bw, double peak, double peak_fp8)
{
    sqlite3_stmt *s = stmt(db, S_DEV_CEIL);
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_double(s, 2, bw);
    sqlite3_bind_double(s, 3, peak);
    if (peak_fp8 > 0) sqlite3_bind_double(s, 4, peak_fp8);
    else sqlite3_bind_null(s, 4);
    return sqlite3_step(s) == SQLITE_DONE ? MT_OK : fail(db, "store ceilings");
}

static void bind_problem(sqlite3_stmt *s, const void *row, int insert)
{
    const mt_problem *p = row;
    (void)insert; /* the key is the whole row */
    bind_text(s, 1, p->kernel);
    bind_text(s, 2, p->dtype);
    sqlite3_bind_int64(s, 3, p->E);
    sqlite3_bind_int64(s, 4, p->N);
    sqlite3_bind_int64(s, 5, p->K);
    sqlite3_bind_int64(s, 6, p->topk);
    sqlite3_bind_int64(s, 7, p->block_n);
    sqlite3_bind_int64(s, 8, p->block_k);
    sqlite3_bind_int(s, 9, p->renormalize);
    bind_text(s, 10, p->key);
}

int mt_problem_key_of(mt_problem *p, char *why, size_t n)
{
    const mt_family *f = mt_family_find(p->kernel);
    mt_family_key k;
    char tmp[8];
    if (!why) why = tmp, n = sizeof tmp;
    if (!f) return snprintf(why, n, "no kernel family '%.40s'", p->kernel), MT_EINVAL;
    if (f == &mt_family_fused_moe) {
        /* fused MoE's key is its columns */
        memset(&k, 0, sizeof k);
        k.v[MT_MOE_KEY_E] = p->E;
        k.v[MT_MOE_KEY_N] = p->N;
        k.v[MT_MOE_KEY_K] = p->K;
        k.v[MT_MOE_KEY_TOPK] = p->topk;
        k.v[MT_MOE_KEY_BLOCK_N] = p->block_n;
        k.v[MT_MOE_KEY_BLOCK_K] = p->block_k;
        if (strlen(p->dtype) >= sizeof k.dtype) return snprintf(why, n, "dtype too long"), MT_EINVAL;
        snprintf(k.dtype, sizeof k.dtype, "%s", p->dtype);
    } else {
        /* another family's is its key: checked and written canonically;
         * the columns of fused MoE's are not its own */
        int rc = mt_family_key_parse(f, p->key, &k, why, n);
        if (rc != MT_OK) return rc;
        snprintf(p->dtype, sizeof p->dtype, "%s", k.dtype);
        p->E = p->N = p->K = p->topk = p->block_n = p->block_k = 0;
    }
    if (mt_family_key_format(f, &k, p->key, sizeof p->key) != MT_OK)
        return snprintf(why, n, "the %s key does not fit", f->name), MT_EINVAL;
    return MT_OK;
}

int mt_db_problem_upsert(mt_db *db, mt_problem *p)
{
    char why[300];
    if (mt_problem_key_of(p, why, sizeof why) != MT_OK) {
        mt_log_emit(MT_LOG_ERROR, "cannot store the problem: %s", why);
        return MT_EINVAL;
    }
    return find_or_insert(db, S_PROB_FIND, S_PROB_INSERT, bind_problem, p, NULL, NULL, &p->id, "problem");
}

struct cfg_row { const char *backend, *params; };
static void bind_config(sqlite3_stmt *s, const void *row, int insert)
{
    const struct cfg_row *c = row;
    (void)insert; /* the key is the whole row */
    bind_text(s, 1, c->backend);
    bind_text(s, 2, c->params);
}

int mt_db_config_upsert(mt_db *db, const char *backend, const char *params, int64_t *id)
{
    struct cfg_row c = {backend, params};
    return find_or_insert(db, S_CFG_FIND, S_CFG_INSERT, bind_config, &c, NULL, NULL, id, "config");
}

int mt_db_sweep_begin(mt_db *db, int64_t dev, int64_t prob, const char *strategy, int budget,
                      const char *batch_sizes, const char *command, int64_t *id)
{
    sqlite3_stmt *s = stmt(db, S_SWEEP_BEGIN);
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    bind_text(s, 3, strategy);
    sqlite3_bind_int(s, 4, budget);
    bind_text(s, 5, batch_sizes);
    bind_text(s, 6, command);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    sqlite3_bind_int64(s, 7, (int64_t)getpid());
    bind_text(s, 8, host);
    if (sqlite3_step(s) != SQLITE_DONE) return fail(db, "record sweep");
    *id = sqlite3_last_insert_rowid(db->h);
    return MT_OK;
}

int mt_db_partial_sweeps(mt_db *db, int64_t dev, int64_t prob)
{
    sqlite3_stmt *q = NULL;
    int n = -1;
    /* a full grid is strategy grid with no budget, no --only and no --time */
    if (sqlite3_prepare_v2(db->h,
                           "SELECT count(*) FROM sweeps WHERE device_id=?1 AND problem_id=?2 AND (strategy != 'grid' OR "
                           "budget > 0 OR command LIKE '% --budget%' OR command LIKE '% --only%' OR "
                           "command LIKE '% --time%' OR command LIKE '% --shard%' OR status != 'done')",
                           -1, &q, NULL) != SQLITE_OK)
        return fail(db, "read sweeps");
    sqlite3_bind_int64(q, 1, dev);
    sqlite3_bind_int64(q, 2, prob);
    if (sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return n;
}

int mt_db_sweeps_reap(mt_db *db, int (*alive)(int64_t pid))
{
    char host[256] = "";
    sqlite3_stmt *q = NULL;
    int64_t dead[256];
    int n = 0, rc;
    gethostname(host, sizeof host - 1);
    if (sqlite3_prepare_v2(db->h, "SELECT id, pid FROM sweeps WHERE status='running' AND host=?1 AND pid IS NOT NULL",
                           -1, &q, NULL) != SQLITE_OK)
        return fail(db, "read running sweeps");
    bind_text(q, 1, host);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && n < 256)
        if (!alive(sqlite3_column_int64(q, 1))) dead[n++] = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    for (int i = 0; i < n; i++) {
        if (sqlite3_prepare_v2(db->h, "UPDATE sweeps SET status='killed' WHERE id=?1 AND status='running'", -1, &q,
                               NULL) != SQLITE_OK)
            return fail(db, "mark a killed sweep");
        sqlite3_bind_int64(q, 1, dead[i]);
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE) return fail(db, "mark a killed sweep");
    }
    return n;
}

int mt_db_sweep_end(mt_db *db, int64_t id, const char *status)
{
    sqlite3_stmt *s = stmt(db, S_SWEEP_END);
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, status);
    return sqlite3_step(s) == SQLITE_DONE ? MT_OK : fail(db, "finish sweep");
}

int mt_db_measurement_exists(mt_db *db, int64_t dev, int64_t prob, int64_t M, int64_t cfg, const char *hash,
                             const char *policy)
{
    return mt_db_measurement_get(db, dev, prob, M, cfg, hash, policy, NULL, NULL);
}

int mt_db_measurement_get(mt_db *db, int64_t dev, int64_t prob, int64_t M, int64_t cfg, const char *hash,
                          const char *policy, double *median_us, int *failed)
{
    int64_t point[2] = {M, 0};
    return mt_db_point_get(db, dev, prob, point, cfg, hash, policy, median_us, failed);
}

int mt_db_point_get(mt_db *db, int64_t dev, int64_t prob, const int64_t point[2], int64_t cfg, const char *hash,
                    const char *policy, double *median_us, int *failed)
{
    sqlite3_stmt *s = stmt(db, S_MEAS_EXISTS);
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    sqlite3_bind_int64(s, 3, point[0]);
    sqlite3_bind_int64(s, 7, point[1]);
    sqlite3_bind_int64(s, 4, cfg);
    bind_text(s, 5, hash);
    bind_text(s, 6, policy);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        /* a failed variant reads as NAN: a search learns from it too */
        /* an aborted variant reads as its partial figure: slow, and known so */
        const unsigned char *st = sqlite3_column_text(s, 0);
        int timed = st && (!strcmp((const char *)st, "ok") || !strcmp((const char *)st, "aborted"));
        if (median_us) *median_us = timed && sqlite3_column_type(s, 1) != SQLITE_NULL ? sqlite3_column_double(s, 1) : NAN;
        if (failed)
            *failed = st && !strcmp((const char *)st, "failed") ? (sqlite3_column_int(s, 2) ? MT_FAILED_TRANSIENT
                                                                                             : MT_FAILED_VARIANT)
                                                                : 0;
        sqlite3_reset(s);
        return 1;
    }
    if (rc == SQLITE_DONE) return 0;
    return fail(db, "look up measurement");
}

static int measurement_write(mt_db *db, const mt_measurement *m, int retry)
{
    sqlite3_stmt *s = stmt(db, retry ? S_MEAS_RETRY : S_MEAS_INSERT);
    if (!s) return MT_EDB;
    if (m->sweep_id) sqlite3_bind_int64(s, 1, m->sweep_id);
    sqlite3_bind_int64(s, 2, m->device_id);
    sqlite3_bind_int64(s, 3, m->problem_id);
    sqlite3_bind_int64(s, 4, m->M);
    sqlite3_bind_int64(s, 5, m->config_id);
    sqlite3_bind_int(s, 6, m->is_default);
    bind_text(s, 7, m->status);
    bind_text(s, 8, m->reason);
    bind_real(s, 9, m->median_us);
    bind_real(s, 10, m->spread_us);
    if (m->reps > 0) sqlite3_bind_int(s, 11, m->reps);
    bind_real(s, 12, m->rel_err);
    bind_real(s, 13, m->tolerance);
    bind_real(s, 14, m->floor_us);
    bind_real(s, 15, m->efficiency);
    bind_text(s, 16, m->kernel_hash);
    bind_text(s, 17, MOETUNE_VERSION);
    bind_text(s, 18, m->timing_policy);
    sqlite3_bind_int64(s, 19, m->ord);
    bind_text(s, 20, m->resources);
    sqlite3_bind_int(s, 21, m->transient);
    sqlite3_bind_int64(s, 22, m->p2);
    if (sqlite3_step(s) != SQLITE_DONE) return fail(db, retry ? "store a measurement again" : "insert measurement");
    return retry && sqlite3_changes(db->h) == 0 ? MT_ENOTFOUND : MT_OK;
}

int mt_db_measurement_insert(mt_db *db, const mt_measurement *m) { return measurement_write(db, m, 0); }

int mt_db_measurement_retry(mt_db *db, const mt_measurement *m) { return measurement_write(db, m, 1); }

int mt_db_pairs(mt_db *db, const char *status, mt_pair_cb cb, void *user)
{
    return mt_db_family_pairs(db, "fused_moe", status, cb, user);
}

int mt_db_family_pairs(mt_db *db, const char *family, const char *status, mt_pair_cb cb, void *user)
{
    sqlite3_stmt *s = stmt(db, S_PAIRS);
    int rc;
    if (!s) return MT_EDB;
    bind_text(s, 1, status);
    bind_text(s, 2, family);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        mt_device_info d;
        mt_problem p;
        memset(&d, 0, sizeof d);
        memset(&p, 0, sizeof p);
        d.id = sqlite3_column_int64(s, 0);
        copy_col(d.backend, sizeof d.backend, s, 1);
        copy_col(d.name, sizeof d.name, s, 2);
        copy_col(d.raw_name, sizeof d.raw_name, s, 3);
        copy_col(d.arch, sizeof d.arch, s, 4);
        d.cores = sqlite3_column_int(s, 5);
        d.memory_bytes = sqlite3_column_int64(s, 6);
        copy_col(d.driver, sizeof d.driver, s, 7);
        copy_col(d.toolkit, sizeof d.toolkit, s, 8);
        d.bandwidth_gbs = sqlite3_column_double(s, 9);
        d.peak_gflops = sqlite3_column_double(s, 10);
        d.peak_fp8_gflops = sqlite3_column_type(s, 24) == SQLITE_NULL ? 0 : sqlite3_column_double(s, 24);
        p.id = sqlite3_column_int64(s, 11);
        copy_col(p.kernel, sizeof p.kernel, s, 12);
        copy_col(p.dtype, sizeof p.dtype, s, 13);
        p.E = sqlite3_column_int64(s, 14);
        p.N = sqlite3_column_int64(s, 15);
        p.K = sqlite3_column_int64(s, 16);
        p.topk = sqlite3_column_int64(s, 17);
        p.block_n = sqlite3_column_int64(s, 18);
        p.block_k = sqlite3_column_int64(s, 19);
        p.renormalize = sqlite3_column_int(s, 20);
        d.l2_bytes = sqlite3_column_int64(s, 21);
        d.smem_per_block = sqlite3_column_int(s, 22);
        copy_col(p.key, sizeof p.key, s, 23);
        /* the callback may run other statements, but never S_PAIRS */
        if ((rc = cb(&d, &p, user)) != 0) {
            sqlite3_reset(s);
            return rc;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MT_OK : fail(db, "list results");
}

int mt_db_results(mt_db *db, int64_t dev, int64_t prob, const char *status, const char *hash,
                  mt_result_cb cb, void *user)
{
    enum stmt_id id = strcmp(status, "foreign") == 0 ? S_RESULTS_FOREIGN : hash ? S_RESULTS_OK_HASH : S_RESULTS_OK;
    sqlite3_stmt *s = stmt(db, id);
    int rc;
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    bind_text(s, 3, status);
    if (id == S_RESULTS_OK_HASH) bind_text(s, 4, hash);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        mt_result_row r;
        memset(&r, 0, sizeof r);
        r.device_id = dev;
        r.problem_id = prob;
        r.M = sqlite3_column_int64(s, 0);
        r.config_id = sqlite3_column_int64(s, 1);
        r.backend = mt_col_text(s, 2);
        r.params = mt_col_text(s, 3);
        r.status = mt_col_text(s, 4);
        r.reason = mt_col_text(s, 5);
        r.median_us = col_real(s, 6);
        r.spread_us = col_real(s, 7);
        r.rel_err = col_real(s, 8);
        r.floor_us = col_real(s, 9);
        r.efficiency = col_real(s, 10);
        r.reps = sqlite3_column_int(s, 11);
        r.is_default = sqlite3_column_int(s, 12);
        r.ord = sqlite3_column_int64(s, 13);
        r.p2 = sqlite3_column_int64(s, 14);
        if ((rc = cb(&r, user)) != 0) {
            sqlite3_reset(s);
            return rc;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MT_OK : fail(db, "read results");
}

int mt_db_counts(mt_db *db, int64_t dev, int64_t prob, const char *hash, int64_t *ok, int64_t *failed)
{
    sqlite3_stmt *s = stmt(db, S_COUNTS);
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    bind_text(s, 3, hash);
    if (sqlite3_step(s) != SQLITE_ROW) return fail(db, "count results");
    *ok = sqlite3_column_int64(s, 0);
    *failed = sqlite3_column_int64(s, 1);
    sqlite3_reset(s);
    return MT_OK;
}

int mt_db_import_begin(mt_db *db, int64_t dev, int64_t prob, const char *file, const char *order, const char *extra)
{
    sqlite3_stmt *s = stmt(db, S_IMPORT_DEL_ROWS);
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    if (sqlite3_step(s) != SQLITE_DONE) return fail(db, "replace imported rows");
    s = stmt(db, S_IMPORT_UPSERT);
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    bind_text(s, 3, file);
    bind_text(s, 4, order);
    bind_text(s, 5, extra);
    return sqlite3_step(s) == SQLITE_DONE ? MT_OK : fail(db, "record import");
}

int mt_db_import_get(mt_db *db, int64_t dev, int64_t prob, char **order, char **extra)
{
    sqlite3_stmt *s = stmt(db, S_IMPORT_GET);
    int rc;
    *order = *extra = NULL;
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return MT_ENOTFOUND;
    if (rc != SQLITE_ROW) return fail(db, "read import");
    *order = strdup(mt_col_text(s, 0));
    *extra = strdup(mt_col_text(s, 1));
    sqlite3_reset(s);
    if (!*order || !*extra) {
        free(*order);
        free(*extra);
        *order = *extra = NULL;
        return MT_ENOMEM;
    }
    return MT_OK;
}

int64_t mt_db_count_measurements(mt_db *db)
{
    sqlite3_stmt *s = stmt(db, S_COUNT_ALL);
    int64_t n = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
    if (s) sqlite3_reset(s);
    return n;
}

int mt_db_related(mt_db *db, const mt_problem *p, int64_t exclude_device, mt_related_cb cb, void *user)
{
    sqlite3_stmt *s = stmt(db, S_RELATED);
    int rc;
    if (!s) return MT_EDB;
    bind_text(s, 1, p->kernel);
    bind_text(s, 2, p->key);
    sqlite3_bind_int64(s, 3, exclude_device);
    sqlite3_bind_int64(s, 4, p->E);
    sqlite3_bind_int64(s, 5, p->N);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        mt_related_row r = {mt_col_text(s, 0), mt_col_text(s, 1), {sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3)},
                            mt_col_text(s, 4), mt_col_text(s, 5), col_real(s, 6)};
        if ((rc = cb(&r, user)) != 0) {
            sqlite3_reset(s);
            return rc;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MT_OK : fail(db, "read related results");
}

int mt_db_other_keys(mt_db *db, int64_t device, const mt_problem *p, const char *hash, mt_shape_cb cb, void *user)
{
    sqlite3_stmt *s = stmt(db, S_SHAPES);
    int rc;
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, device);
    sqlite3_bind_int64(s, 2, p->id);
    bind_text(s, 3, p->dtype);
    bind_text(s, 4, hash);
    bind_text(s, 5, p->kernel);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        mt_shape_row r = {sqlite3_column_int64(s, 0), mt_col_text(s, 1),
                          {sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3)}, mt_col_text(s, 4), col_real(s, 5)};
        if ((rc = cb(&r, user)) != 0) {
            sqlite3_reset(s);
            return rc;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MT_OK : fail(db, "read other problems' results");
}

int mt_db_finalist_insert(mt_db *db, int64_t sweep, int64_t dev, int64_t prob, const int64_t point[2], int64_t cfg,
                          double median, int rounds, const char *hash, const char *policy)
{
    sqlite3_stmt *s = stmt(db, S_FIN_INSERT);
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, sweep);
    sqlite3_bind_int64(s, 2, dev);
    sqlite3_bind_int64(s, 3, prob);
    sqlite3_bind_int64(s, 4, point[0]);
    sqlite3_bind_int64(s, 5, cfg);
    sqlite3_bind_double(s, 6, median);
    sqlite3_bind_int(s, 7, rounds);
    bind_text(s, 8, hash);
    bind_text(s, 9, policy);
    sqlite3_bind_int64(s, 10, point[1]);
    return sqlite3_step(s) == SQLITE_DONE ? MT_OK : fail(db, "insert finalist");
}

int mt_db_finalists(mt_db *db, int64_t dev, int64_t prob, const int64_t point[2], const char *hash, mt_finalist_cb cb,
                    void *user)
{
    sqlite3_stmt *s = stmt(db, S_FIN_WINNER);
    int rc;
    if (!s) return MT_EDB;
    sqlite3_bind_int64(s, 1, dev);
    sqlite3_bind_int64(s, 2, prob);
    sqlite3_bind_int64(s, 3, point[0]);
    bind_text(s, 4, hash);
    sqlite3_bind_int64(s, 5, point[1]);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((rc = cb(sqlite3_column_int64(s, 0), mt_col_text(s, 1), sqlite3_column_double(s, 2),
                     user)) != 0) {
            sqlite3_reset(s);
            return rc;
        }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MT_OK : fail(db, "read finalists");
}
