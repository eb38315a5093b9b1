/* Merging one database into another: what shards of a sweep measured on
 * different nodes, brought together. Rows are matched by their natural
 * keys (a device by its name and properties, a problem by its family and
 * key, a config by its parameters, a measurement by device, problem, point,
 * config, kernel and timing policy), never by row id, so merging is idempotent and
 * the order of the inputs does not matter; where both hold a measurement,
 * the destination's is kept. All in one transaction. */
#include "merge.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "moetune/moetune.h"

static const char *const steps[] = {
    "INSERT OR IGNORE INTO devices(backend, name, raw_name, arch, cores, memory_bytes, driver, toolkit, bandwidth_gbs,"
    " peak_gflops, ceilings_at, l2_bytes, smem_per_block, peak_fp8_gflops) SELECT backend, name, raw_name, arch, cores,"
    " memory_bytes, driver, toolkit, bandwidth_gbs, peak_gflops, ceilings_at, l2_bytes, smem_per_block, peak_fp8_gflops"
    " FROM src.devices",
    "INSERT OR IGNORE INTO problems(kernel, key, dtype, E, N, K, topk, block_n, block_k, renormalize)"
    " SELECT kernel, key, dtype, E, N, K, topk, block_n, block_k, renormalize FROM src.problems",
    "INSERT OR IGNORE INTO configs(backend, params) SELECT backend, params FROM src.configs",
    "CREATE TEMP TABLE dmap AS SELECT s.id AS old, d.id AS new FROM src.devices s JOIN main.devices d"
    " ON d.backend = s.backend AND d.name = s.name AND d.raw_name = s.raw_name AND d.arch = s.arch"
    " AND d.cores = s.cores AND d.memory_bytes = s.memory_bytes",
    "CREATE TEMP TABLE pmap AS SELECT s.id AS old, p.id AS new FROM src.problems s JOIN main.problems p"
    " ON p.kernel = s.kernel AND p.key = s.key AND p.renormalize = s.renormalize",
    "CREATE TEMP TABLE cmap AS SELECT s.id AS old, c.id AS new FROM src.configs s JOIN main.configs c"
    " ON c.backend = s.backend AND c.params = s.params",
    /* a sweep is the same sweep when it started at the same moment with the
     * same command on the same device and problem */
    "INSERT INTO sweeps(device_id, problem_id, strategy, budget, batch_sizes, command, started_at, finished_at, status)"
    " SELECT dmap.new, pmap.new, s.strategy, s.budget, s.batch_sizes, s.command, s.started_at, s.finished_at, s.status"
    " FROM src.sweeps s JOIN dmap ON dmap.old = s.device_id JOIN pmap ON pmap.old = s.problem_id"
    " WHERE NOT EXISTS (SELECT 1 FROM main.sweeps m WHERE m.device_id = dmap.new AND m.problem_id = pmap.new"
    " AND m.started_at = s.started_at AND m.command = s.command) ORDER BY s.id",
    "CREATE TEMP TABLE smap AS SELECT s.id AS old, m.id AS new FROM src.sweeps s"
    " JOIN dmap ON dmap.old = s.device_id JOIN pmap ON pmap.old = s.problem_id"
    " JOIN main.sweeps m ON m.device_id = dmap.new AND m.problem_id = pmap.new AND m.started_at = s.started_at"
    " AND m.command = s.command",
};

static const char measurements_sql[] =
    "INSERT OR IGNORE INTO measurements(sweep_id, device_id, problem_id, M, p2, config_id, is_default, status, reason,"
    " median_us, spread_us, reps, rel_err, tolerance, floor_us, efficiency, kernel_hash, moetune_version,"
    " timing_policy, ord, created_at, resources, transient)"
    " SELECT smap.new, dmap.new, pmap.new, m.M, m.p2, cmap.new, m.is_default, m.status, m.reason, m.median_us, m.spread_us,"
    " m.reps, m.rel_err, m.tolerance, m.floor_us, m.efficiency, m.kernel_hash, m.moetune_version, m.timing_policy,"
    " m.ord, m.created_at, m.resources, m.transient FROM src.measurements m JOIN dmap ON dmap.old = m.device_id"
    " JOIN pmap ON pmap.old = m.problem_id JOIN cmap ON cmap.old = m.config_id LEFT JOIN smap ON smap.old = m.sweep_id"
    " ORDER BY m.id";

static const char *const tail[] = {
    "INSERT INTO finalists(sweep_id, device_id, problem_id, M, p2, config_id, median_us, rounds, kernel_hash,"
    " timing_policy, created_at) SELECT smap.new, dmap.new, pmap.new, f.M, f.p2, cmap.new, f.median_us, f.rounds,"
    " f.kernel_hash, f.timing_policy, f.created_at FROM src.finalists f JOIN smap ON smap.old = f.sweep_id"
    " JOIN dmap ON dmap.old = f.device_id JOIN pmap ON pmap.old = f.problem_id JOIN cmap ON cmap.old = f.config_id"
    " WHERE NOT EXISTS (SELECT 1 FROM main.finalists g WHERE g.sweep_id = smap.new AND g.M = f.M AND g.p2 = f.p2"
    " AND g.config_id = cmap.new)",
    "INSERT OR IGNORE INTO imports(device_id, problem_id, file, key_order, extra, imported_at)"
    " SELECT dmap.new, pmap.new, i.file, i.key_order, i.extra, i.imported_at FROM src.imports i"
    " JOIN dmap ON dmap.old = i.device_id JOIN pmap ON pmap.old = i.problem_id",
};

static int run(sqlite3 *h, const char *sql, char *err, size_t n)
{
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) == SQLITE_OK) return MT_OK;
    snprintf(err, n, "%s", msg ? msg : sqlite3_errmsg(h));
    sqlite3_free(msg);
    return MT_EDB;
}

int mt_db_merge(mt_db *db, const char *src_path, int64_t *added, int64_t *present, char *err, size_t n)
{
    sqlite3 *h = mt_db_sqlite(db);
    sqlite3_stmt *q = NULL;
    int rc;
    *added = *present = 0;
    if (sqlite3_prepare_v2(h, "ATTACH DATABASE ?1 AS src", -1, &q, NULL) != SQLITE_OK) {
        snprintf(err, n, "%s", sqlite3_errmsg(h));
        return MT_EDB;
    }
    sqlite3_bind_text(q, 1, src_path, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        snprintf(err, n, "cannot attach '%s': %s", src_path, sqlite3_errmsg(h));
        return MT_EDB;
    }
    if ((rc = run(h, "BEGIN IMMEDIATE", err, n)) != MT_OK) goto detach;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == MT_OK; i++) rc = run(h, steps[i], err, n);
    if (rc == MT_OK) {
        int64_t before = sqlite3_total_changes64(h);
        rc = run(h, measurements_sql, err, n);
        *added = sqlite3_total_changes64(h) - before;
    }
    for (size_t i = 0; i < sizeof tail / sizeof tail[0] && rc == MT_OK; i++) rc = run(h, tail[i], err, n);
    if (rc == MT_OK) {
        if (sqlite3_prepare_v2(h, "SELECT count(*) FROM src.measurements", -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW)
            *present = sqlite3_column_int64(q, 0) - *added;
        sqlite3_finalize(q);
    }
    sqlite3_exec(h, "DROP TABLE IF EXISTS temp.dmap; DROP TABLE IF EXISTS temp.pmap; DROP TABLE IF EXISTS temp.cmap;"
                    "DROP TABLE IF EXISTS temp.smap", NULL, NULL, NULL);
    if (rc == MT_OK) rc = run(h, "COMMIT", err, n);
    if (rc != MT_OK) sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
detach:
    sqlite3_exec(h, "DETACH DATABASE src", NULL, NULL, NULL);
    return rc;
}
