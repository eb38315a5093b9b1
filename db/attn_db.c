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

static void bind_real(sqlite3_stmt *q, int i, double v)
{
    if (isnan(v)) sqlite3_bind_null(q, i);
    else sqlite3_bind_double(q, i, v);
}

static void bind_text(sqlite3_stmt *q, int i, const char *s)
{
    if (s) sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(q, i);
}

/* The key of one attention measurement into ?1..?7 */
static void bind_key(sqlite3_stmt *q, int64_t dev, int64_t prob, int64_t batch, int64_t ctx, int64_t cfg,
                     const char *khash, const char *policy)
{
    sqlite3_bind_int64(q, 1, dev);
    sqlite3_bind_int64(q, 2, prob);
    sqlite3_bind_int64(q, 3, batch);
    sqlite3_bind_int64(q, 4, ctx);
    sqlite3_bind_int64(q, 5, cfg);
    bind_text(q, 6, khash);
    bind_text(q, 7, policy);
}

const char *mt_attn_kernel_hash(const char *backend)
{
    /* the family owns its kernels' hashes: the GPU one for any GPU backend */
    return mt_family_attn_decode.kernel_hash(backend && strcmp(backend, "cpu") ? "cuda" : "cpu");
}

int mt_db_attn_insert(mt_db *db, const mt_attn_row *r)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(mt_db_sqlite(db),
                           "INSERT INTO measurements(sweep_id, device_id, problem_id, M, p2, config_id, "
                           "is_default, status, reason, median_us, spread_us, reps, rel_err, floor_us, kernel_hash, "
                           "moetune_version, timing_policy, transient) "
                           "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
                           -1, &q, NULL) != SQLITE_OK)
        return MT_EDB;
    if (r->sweep_id) sqlite3_bind_int64(q, 1, r->sweep_id);
    else sqlite3_bind_null(q, 1);
    sqlite3_bind_int64(q, 2, r->device_id);
    sqlite3_bind_int64(q, 3, r->problem_id);
    sqlite3_bind_int64(q, 4, r->batch);
    sqlite3_bind_int64(q, 5, r->ctx);
    sqlite3_bind_int64(q, 6, r->config_id);
    sqlite3_bind_int(q, 7, r->is_default);
    bind_text(q, 8, r->status);
    bind_text(q, 9, r->reason);
    bind_real(q, 10, r->median_us);
    bind_real(q, 11, r->spread_us);
    sqlite3_bind_int(q, 12, r->reps);
    bind_real(q, 13, r->rel_err);
    bind_real(q, 14, r->floor_us);
    bind_text(q, 15, r->kernel_hash);
    bind_text(q, 16, MOETUNE_VERSION);
    bind_text(q, 17, r->timing_policy);
    sqlite3_bind_int(q, 18, r->transient);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? MT_OK : MT_EDB;
}

int mt_db_attn_forget_failure(mt_db *db, int64_t dev, int64_t prob, int64_t batch, int64_t ctx, int64_t cfg,
                              const char *khash, const char *policy, int any_failure)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(mt_db_sqlite(db),
                           "DELETE FROM measurements WHERE device_id=?1 AND problem_id=?2 AND M=?3 AND p2=?4 "
                           "AND config_id=?5 AND kernel_hash=?6 AND timing_policy=?7 AND status='failed' AND "
                           "(transient=1 OR ?8)",
                           -1, &q, NULL) != SQLITE_OK)
        return MT_EDB;
    bind_key(q, dev, prob, batch, ctx, cfg, khash, policy);
    sqlite3_bind_int(q, 8, any_failure);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return MT_EDB;
    return sqlite3_changes(mt_db_sqlite(db)) > 0;
}

int mt_db_attn_get(mt_db *db, int64_t dev, int64_t prob, int64_t batch, int64_t ctx, int64_t cfg, const char *khash,
                   const char *policy, double *median)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(mt_db_sqlite(db),
                           "SELECT median_us, status FROM measurements WHERE device_id=?1 AND problem_id=?2 AND "
                           "M=?3 AND p2=?4 AND config_id=?5 AND kernel_hash=?6 AND timing_policy=?7",
                           -1, &q, NULL) != SQLITE_OK)
        return MT_EDB;
    bind_key(q, dev, prob, batch, ctx, cfg, khash, policy);
    int rc = sqlite3_step(q), found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        const char *st = mt_col_text(q, 1);
        *median = st && st[0] == 'f' ? NAN : sqlite3_column_double(q, 0);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : MT_EDB;
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
