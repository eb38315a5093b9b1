/*
 * The daemon's job queue, in the measurement database: a job is the
 * options of a sweep and the device (or device kind) it wants. Submitting,
 * claiming, progress, cancelling and finishing are each one transaction,
 * so a daemon killed at any moment leaves the queue consistent.
 */
#ifndef MT_JOBS_H
#define MT_JOBS_H

#include <stdint.h>

#include "db.h"

typedef struct mt_job {
    int64_t id;
    const char *args;     /* JSON array of sweep arguments */
    const char *device;   /* what the job asked for: any, cpu, cuda, cuda:N */
    const char *status;   /* queued, running, done, failed, cancelled */
    int attempts;
    const char *assigned; /* the device it runs or ran on, or NULL */
    int64_t daemon_pid, sweep_pid;
    int64_t done, total;  /* variants of the sweep */
    const char *best, *message;
    int exit_status;      /* -1: none */
    const char *submitted_at, *started_at, *finished_at;
} mt_job;
/* Strings live during the callback only. */
typedef int (*mt_job_cb)(const mt_job *j, void *user);

int mt_db_job_submit(mt_db *db, const char *args_json, const char *device, int64_t *id);
/* The oldest queued job that one of these device strings serves (a job for
 * "any", for the kind, e.g. "cuda", or for the device itself, "cuda:1"),
 * marked running on `device` for daemon_pid. *id is 0 when none is queued. */
int mt_db_job_claim(mt_db *db, const char *device, const char *kind, int64_t daemon_pid, int64_t *id);
int mt_db_job_set_pid(mt_db *db, int64_t id, int64_t sweep_pid);
/* From the sweep: progress and the best so far. */
int mt_db_job_progress(mt_db *db, int64_t id, int64_t done, int64_t total, const char *best);
/* status: done, failed, queued (back in the queue) or cancelled. A job
 * cancelled while it ran stays cancelled. */
int mt_db_job_finish(mt_db *db, int64_t id, const char *status, const char *message, int exit_status);
/* Cancel a queued or running job. *was gets its status before (a static
 * string), "missing" when there is no such job. */
int mt_db_job_cancel(mt_db *db, int64_t id, const char **was);
/* The job's status into buf ("" when missing). */
int mt_db_job_status(mt_db *db, int64_t id, char *buf, size_t n);
int mt_db_job_get(mt_db *db, int64_t id, mt_job_cb cb, void *user);
/* All jobs, queued and running first, then the latest finished (at most
 * `recent` of them). */
int mt_db_jobs(mt_db *db, int recent, mt_job_cb cb, void *user);
/* Running jobs back to queued (a daemon starting after one that died),
 * calling cb for each first so that a sweep still alive can be stopped. */
int mt_db_jobs_running(mt_db *db, mt_job_cb cb, void *user);
int mt_db_jobs_requeue_running(mt_db *db);
/* A note on a queued job that cannot run here (why it waits). */
int mt_db_job_note(mt_db *db, int64_t id, const char *message);

/* The daemon's view of its devices. */
int mt_db_daemon_device(mt_db *db, const char *device, const char *state, int failures, const char *message,
                        int64_t daemon_pid);
typedef int (*mt_daemon_device_cb)(const char *device, const char *state, int failures, const char *message,
                                   int64_t daemon_pid, const char *updated_at, void *user);
int mt_db_daemon_devices(mt_db *db, mt_daemon_device_cb cb, void *user);

#endif
