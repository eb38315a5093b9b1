/* Attention decode measurements (attn_db.h). */
#include "attn_db.h"
#include "family.h"

#include <math.h>
#include <sqlite3.h>

#include "db_col.h"
#include "log.h"
#include <stdio.h>
#include <string.h>

#include "moetune/moetune.h"

static void bind_text(sqlite3_stmt *q, int i, const char *s)
{
    if (s) sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(q, i);
}

const char *mt_attn_kernel_hash(const char *backend)
{
    /* the family owns its kernels' hashes: the GPU one for any GPU backend */
    return mt_family_attn_decode.kernel_hash(backend && strcmp(backend, "cpu") ? "cuda" : "cpu");
}

/* An attention row is a measurement of the one table: the batch in M, the
 * context length in p2, through the statements every family uses. */
int mt_db_attn_insert(mt_db *db, const mt_attn_row *r)
{
    mt_measurement m = {.sweep_id = r->sweep_id, .device_id = r->device_id, .problem_id = r->problem_id,
                        .config_id = r->config_id, .M = r->batch, .p2 = r->ctx, .is_default = r->is_default,
                        .status = r->status, .reason = r->reason, .median_us = r->median_us,
                        .spread_us = r->spread_us, .rel_err = r->rel_err, .tolerance = NAN, .floor_us = r->floor_us,
                        .efficiency = NAN, .reps = r->reps, .kernel_hash = r->kernel_hash,
                        .timing_policy = r->timing_policy, .transient = r->transient};
    return mt_db_measurement_insert(db, &m);
}

int mt_db_attn_best(mt_db *db, int64_t dev, int64_t prob, const char *khash, mt_attn_row_cb cb, void *user)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(mt_db_sqlite(db),
                           "SELECT a.M, a.p2, a.config_id, a.is_default, a.median_us, a.spread_us, a.reps, a.rel_err, "
                           "a.floor_us, c.params FROM measurements a JOIN configs c ON c.id = a.config_id "
                           "WHERE a.device_id=?1 AND a.problem_id=?2 AND a.status='ok' AND (?3 IS NULL OR a.kernel_hash=?3) "
                           "AND a.median_us = (SELECT min(b.median_us) FROM measurements b WHERE b.device_id=a.device_id "
                           "AND b.problem_id=a.problem_id AND b.M=a.M AND b.p2=a.p2 AND b.status='ok' AND "
                           "(?3 IS NULL OR b.kernel_hash=?3)) GROUP BY a.M, a.p2 ORDER BY a.M, a.p2",
                           -1, &q, NULL) != SQLITE_OK)
        return MT_EDB;
    sqlite3_bind_int64(q, 1, dev);
    sqlite3_bind_int64(q, 2, prob);
    bind_text(q, 3, khash);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        mt_attn_row r = {0};
        r.device_id = dev;
        r.problem_id = prob;
        r.batch = sqlite3_column_int64(q, 0);
        r.ctx = sqlite3_column_int64(q, 1);
        r.config_id = sqlite3_column_int64(q, 2);
        r.is_default = sqlite3_column_int(q, 3);
        r.status = "ok";
        r.median_us = sqlite3_column_double(q, 4);
        r.spread_us = sqlite3_column_double(q, 5);
        r.reps = sqlite3_column_int(q, 6);
        r.rel_err = sqlite3_column_double(q, 7);
        r.floor_us = sqlite3_column_type(q, 8) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 8);
        r.params = mt_col_text(q, 9);
        if (cb(&r, user)) break;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MT_OK : MT_EDB;
}

int mt_db_attn_pairs(mt_db *db, mt_attn_pair_cb cb, void *user)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(mt_db_sqlite(db),
                           "SELECT DISTINCT d.id, d.name, d.backend, p.id, p.kernel, p.key "
                           "FROM measurements a JOIN devices d ON d.id = a.device_id JOIN problems p ON p.id = a.problem_id "
                           "WHERE a.status = 'ok' AND p.kernel = 'attn_decode' ORDER BY d.id, p.id",
                           -1, &q, NULL) != SQLITE_OK)
        return MT_EDB;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        mt_problem p = {0};
        mt_family_key k;
        char why[300];
        p.id = sqlite3_column_int64(q, 3);
        snprintf(p.kernel, sizeof p.kernel, "%s", mt_col_text(q, 4));
        snprintf(p.key, sizeof p.key, "%s", mt_col_text(q, 5));
        /* a key this moetune cannot read (a hostile or damaged database) is
         * said and passed over */
        if (mt_family_key_parse(&mt_family_attn_decode, p.key, &k, why, sizeof why) != MT_OK) {
            mt_log_emit(MT_LOG_WARN, "skipping attention problem %lld: %s", (long long)p.id, why);
            continue;
        }
        snprintf(p.dtype, sizeof p.dtype, "%s", k.dtype);
        if (cb(sqlite3_column_int64(q, 0), mt_col_text(q, 1), mt_col_text(q, 2), &p, &k, user)) break;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MT_OK : MT_EDB;
}
