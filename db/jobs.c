/* The job queue: plain statements prepared per call (jobs change a few
 * times a second at most), each write its own transaction. */
#include "jobs.h"

#include <sqlite3.h>

#include "db_col.h"
#include <stdio.h>
#include <string.h>

#include "moetune/moetune.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static int prep(mt_db *db, const char *sql, sqlite3_stmt **q)
{
    return sqlite3_prepare_v2(mt_db_sqlite(db), sql, -1, q, NULL) == SQLITE_OK ? MT_OK : MT_EDB;
}

static void bind_text(sqlite3_stmt *q, int i, const char *s)
{
    if (s) sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(q, i);
}

/* Run a statement that returns no rows. */
static int exec1(sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? MT_OK : MT_EDB;
}

int mt_db_job_submit(mt_db *db, const char *args_json, const char *device, int64_t *id)
{
    sqlite3_stmt *q;
    if (prep(db, "INSERT INTO jobs(args, device, status) VALUES(?1, ?2, 'queued')", &q)) return MT_EDB;
    bind_text(q, 1, args_json);
    bind_text(q, 2, device);
    int rc = exec1(q);
    if (rc == MT_OK && id) *id = sqlite3_last_insert_rowid(mt_db_sqlite(db));
    return rc;
}

int mt_db_job_claim(mt_db *db, const char *device, const char *kind, int64_t daemon_pid, int64_t *id)
{
    sqlite3 *h = mt_db_sqlite(db);
    sqlite3_stmt *q;
    *id = 0;
    /* IMMEDIATE: two daemons of two databases never share a file, but a
     * submit may write at the same moment */
    if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return MT_EDB;
    if (prep(db, "SELECT id FROM jobs WHERE status='queued' AND device IN ('any', ?1, ?2) ORDER BY id LIMIT 1", &q))
        goto fail;
    bind_text(q, 1, kind);
    bind_text(q, 2, device);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto fail;
    if (*id) {
        if (prep(db, "UPDATE jobs SET status='running', assigned_device=?2, daemon_pid=?3, sweep_pid=NULL, "
                     "attempts=attempts+1, message=NULL, started_at=COALESCE(started_at, " NOW ") WHERE id=?1", &q))
            goto fail;
        sqlite3_bind_int64(q, 1, *id);
        bind_text(q, 2, device);
        sqlite3_bind_int64(q, 3, daemon_pid);
        if (exec1(q) != MT_OK) goto fail;
    }
    if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return MT_OK;
fail:
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    *id = 0;
    return MT_EDB;
}

int mt_db_job_set_pid(mt_db *db, int64_t id, int64_t sweep_pid)
{
    sqlite3_stmt *q;
    if (prep(db, "UPDATE jobs SET sweep_pid=?2 WHERE id=?1", &q)) return MT_EDB;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, sweep_pid);
    return exec1(q);
}

int mt_db_job_progress(mt_db *db, int64_t id, int64_t done, int64_t total, const char *best)
{
    sqlite3_stmt *q;
    if (prep(db, "UPDATE jobs SET done=?2, total=?3, best=COALESCE(?4, best) WHERE id=?1", &q)) return MT_EDB;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, done);
    sqlite3_bind_int64(q, 3, total);
    bind_text(q, 4, best);
    return exec1(q);
}

int mt_db_job_finish(mt_db *db, int64_t id, const char *status, const char *message, int exit_status)
{
    sqlite3_stmt *q;
    int back = !strcmp(status, "queued");
    if (prep(db, back ? "UPDATE jobs SET status='queued', sweep_pid=NULL, daemon_pid=NULL, message=?3, exit_status=?4 "
                        "WHERE id=?1 AND status='running'"
                      : "UPDATE jobs SET status=CASE WHEN status='cancelled' THEN 'cancelled' ELSE ?2 END, "
                        "sweep_pid=NULL, message=COALESCE(?3, message), exit_status=?4, finished_at=" NOW
                        " WHERE id=?1",
             &q))
        return MT_EDB;
    sqlite3_bind_int64(q, 1, id);
    bind_text(q, 2, status);
    bind_text(q, 3, message);
    if (exit_status >= 0) sqlite3_bind_int(q, 4, exit_status);
    else sqlite3_bind_null(q, 4);
    return exec1(q);
}

int mt_db_job_status(mt_db *db, int64_t id, char *buf, size_t n)
{
    sqlite3_stmt *q;
    buf[0] = 0;
    if (prep(db, "SELECT status FROM jobs WHERE id=?1", &q)) return MT_EDB;
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) snprintf(buf, n, "%s", mt_col_text(q, 0));
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MT_OK : MT_EDB;
}

int mt_db_job_cancel(mt_db *db, int64_t id, const char **was)
{
    static const char *const names[] = {"queued", "running", "done", "failed", "cancelled"};
    char st[32];
    sqlite3 *h = mt_db_sqlite(db);
    *was = "missing";
    if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return MT_EDB;
    if (mt_db_job_status(db, id, st, sizeof st) != MT_OK) goto fail;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(st, names[i])) *was = names[i];
    if (!strcmp(st, "queued") || !strcmp(st, "running")) {
        sqlite3_stmt *q;
        /* a running job's sweep sees this and stops; the daemon then
         * records how it ended without changing the status */
        if (prep(db, "UPDATE jobs SET status='cancelled', finished_at=" NOW " WHERE id=?1", &q)) goto fail;
        sqlite3_bind_int64(q, 1, id);
        if (exec1(q) != MT_OK) goto fail;
    }
    if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return MT_OK;
fail:
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    return MT_EDB;
}

#define JOB_COLS "id, args, device, status, attempts, assigned_device, daemon_pid, sweep_pid, done, total, best, " \
                 "message, exit_status, submitted_at, started_at, finished_at"

/* NULL stays NULL here: the optional fields of a job (best, message, times) */
static const char *col(sqlite3_stmt *q, int i) { return (const char *)sqlite3_column_text(q, i); }

static int each(sqlite3_stmt *q, mt_job_cb cb, void *user)
{
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        /* the columns moetune always writes are "" when a damaged database holds NULL */
        mt_job j = {sqlite3_column_int64(q, 0), mt_col_text(q, 1), mt_col_text(q, 2), mt_col_text(q, 3),
                    sqlite3_column_int(q, 4), col(q, 5),
                    sqlite3_column_int64(q, 6), sqlite3_column_int64(q, 7), sqlite3_column_int64(q, 8),
                    sqlite3_column_int64(q, 9), col(q, 10), col(q, 11),
                    sqlite3_column_type(q, 12) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 12), mt_col_text(q, 13), col(q, 14),
                    col(q, 15)};
        if (cb(&j, user)) break;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MT_OK : MT_EDB;
}

int mt_db_job_get(mt_db *db, int64_t id, mt_job_cb cb, void *user)
{
    sqlite3_stmt *q;
    if (prep(db, "SELECT " JOB_COLS " FROM jobs WHERE id=?1", &q)) return MT_EDB;
    sqlite3_bind_int64(q, 1, id);
    return each(q, cb, user);
}

int mt_db_jobs(mt_db *db, int recent, mt_job_cb cb, void *user)
{
    sqlite3_stmt *q;
    if (prep(db, "SELECT " JOB_COLS " FROM (SELECT * FROM jobs WHERE status IN ('queued','running') UNION ALL "
                 "SELECT * FROM (SELECT * FROM jobs WHERE status NOT IN ('queued','running') ORDER BY id DESC LIMIT ?1)) "
                 "ORDER BY status NOT IN ('running'), status NOT IN ('queued'), id",
             &q))
        return MT_EDB;
    sqlite3_bind_int(q, 1, recent);
    return each(q, cb, user);
}

int mt_db_jobs_running(mt_db *db, mt_job_cb cb, void *user)
{
    sqlite3_stmt *q;
    if (prep(db, "SELECT " JOB_COLS " FROM jobs WHERE status='running' ORDER BY id", &q)) return MT_EDB;
    return each(q, cb, user);
}

int mt_db_jobs_requeue_running(mt_db *db)
{
    sqlite3_stmt *q;
    if (prep(db, "UPDATE jobs SET status='queued', sweep_pid=NULL, daemon_pid=NULL, "
                 "message='requeued: the daemon that ran it stopped' WHERE status='running'",
             &q))
        return MT_EDB;
    return exec1(q);
}

int mt_db_job_note(mt_db *db, int64_t id, const char *message)
{
    sqlite3_stmt *q;
    if (prep(db, "UPDATE jobs SET message=?2 WHERE id=?1 AND status='queued' AND message IS NOT ?2", &q)) return MT_EDB;
    sqlite3_bind_int64(q, 1, id);
    bind_text(q, 2, message);
    return exec1(q);
}

int mt_db_daemon_device(mt_db *db, const char *device, const char *state, int failures, const char *message,
                        int64_t daemon_pid)
{
    sqlite3_stmt *q;
    if (prep(db, "INSERT INTO daemon_devices(device, state, failures, message, daemon_pid) VALUES(?1,?2,?3,?4,?5) "
                 "ON CONFLICT(device) DO UPDATE SET state=?2, failures=?3, message=?4, daemon_pid=?5, updated_at=" NOW,
             &q))
        return MT_EDB;
    bind_text(q, 1, device);
    bind_text(q, 2, state);
    sqlite3_bind_int(q, 3, failures);
    bind_text(q, 4, message);
    sqlite3_bind_int64(q, 5, daemon_pid);
    return exec1(q);
}

int mt_db_daemon_devices(mt_db *db, mt_daemon_device_cb cb, void *user)
{
    sqlite3_stmt *q;
    int rc;
    if (prep(db, "SELECT device, state, failures, message, daemon_pid, updated_at FROM daemon_devices ORDER BY device",
             &q))
        return MT_EDB;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (cb(col(q, 0), col(q, 1), sqlite3_column_int(q, 2), col(q, 3), sqlite3_column_int64(q, 4), col(q, 5), user))
            break;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MT_OK : MT_EDB;
}
