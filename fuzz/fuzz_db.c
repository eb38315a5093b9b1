/* Hostile databases: input's first byte picks the mode. 'S': the rest is SQL
 * run against a database moetune made (dropping columns, NULLs, wrong
 * types, triggers), then every read path: show's collection, export and
 * the listings. Else: the bytes are the database file itself. */
#include <sqlite3.h>

#include "attn_db.h"
#include "db.h"
#include "export.h"
#include "fuzz_util.h"
#include "jobs.h"

static int pair_cb(const mt_device_info *dv, const mt_problem *pr, void *u)
{
    mt_best_list l;
    if (mt_best_collect(u, dv->id, pr->id, NULL, &l) == MT_OK) mt_best_list_free(&l);
    return 0;
}

static int job_cb(const mt_job *j, void *u)
{
    (void)j, (void)u;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[512], out[512];
    const char *dir = fuzz_dir();
    snprintf(path, sizeof path, "%s/h.db", dir);
    unlink(path);
    snprintf(out, sizeof out, "%s-wal", path);
    unlink(out);
    snprintf(out, sizeof out, "%s-shm", path);
    unlink(out);
    mt_db *db = NULL;
    if (size && data[0] == 'S') {
        if (mt_db_open(&db, path, err, sizeof err) != MT_OK) abort();
        mt_device_info d = {.backend = "cpu", .name = "CPU_X", .raw_name = "x"};
        mt_problem p = {.kernel = "fused_moe", .dtype = "bf16", .E = 8, .N = 64, .K = 64, .topk = 2, .renormalize = 1};
        int64_t cfg;
        mt_db_device_upsert(db, &d);
        mt_db_problem_upsert(db, &p);
        mt_db_config_upsert(db, "cpu", "{\"block_m\":4}", &cfg);
        mt_measurement m = {.device_id = d.id, .problem_id = p.id, .config_id = cfg, .M = 1, .status = "ok",
                            .median_us = 1, .spread_us = 0, .rel_err = 0, .tolerance = 1, .floor_us = 1,
                            .efficiency = 1, .reps = 3, .kernel_hash = "h", .timing_policy = "p"};
        mt_db_measurement_insert(db, &m);
        /* an attention problem and row too, for the SQL to corrupt */
        mt_problem a = {.kernel = "attn_decode", .key = "{\"H\":8,\"H_kv\":2,\"D\":64,\"page\":16}"};
        int64_t acfg;
        mt_db_problem_upsert(db, &a);
        mt_db_config_upsert(db, "cpu", "{\"partition\":0,\"pages_per_iter\":1,\"threads\":1}", &acfg);
        mt_attn_row ar = {0, d.id, a.id, 2, 100, acfg, 1, "ok", NULL, 5.0, 0.1, 1e-3, 1.0, 3, mt_attn_kernel_hash("cpu"),
                          "p", NULL, 0};
        mt_db_attn_insert(db, &ar);
        mt_db_close(db);
        db = NULL;
        sqlite3 *h;
        if (sqlite3_open(path, &h) == SQLITE_OK) {
            char *sql = malloc(size);
            if (sql) {
                memcpy(sql, data + 1, size - 1);
                sql[size - 1] = 0;
                sqlite3_exec(h, sql, NULL, NULL, NULL);
                free(sql);
            }
        }
        sqlite3_close(h);
    } else {
        fuzz_write(dir, "h.db", data, size, path, sizeof path);
    }
    if (mt_db_open(&db, path, err, sizeof err) == MT_OK) {
        mt_db_pairs(db, "ok", pair_cb, db);
        mt_db_jobs(db, 10, job_cb, NULL);
        snprintf(out, sizeof out, "%s/exp", dir);
        mkdir(out, 0755);
        mt_export_opts eo = {out, 1, 1, 0, 0, 0, 1};
        mt_export_stats es;
        mt_export(db, &eo, &es);
        eo.grid = 1;
        mt_export(db, &eo, &es);
        mt_db_close(db);
    }
    return 0;
}
