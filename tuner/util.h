/* What every subcommand shares: usage errors, the database path, logging to
 * stderr, problem options, progress, and a checked exit. */
#ifndef MT_UTIL_H
#define MT_UTIL_H

#include <stdint.h>
#include <stdio.h>

#include "db.h"
#include "problem.h"

/* Exit statuses: 0 success, 1 failure at run time, 2 bad usage. */
enum { MT_EXIT_OK = 0, MT_EXIT_FAIL = 1, MT_EXIT_USAGE = 2, MT_EXIT_INTERRUPTED = 130 };

/* "moetune CMD: MESSAGE" on stderr, then a hint; returns MT_EXIT_USAGE. */
int mt_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "moetune CMD: error: MESSAGE" on stderr; returns MT_EXIT_FAIL. */
int mt_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The library's log callback for the command line: to stderr with the level. */
void mt_cli_log(int level, const char *msg, void *user);
extern int mt_cli_verbose;

/* mkdir -p; 0 or -1 with errno. */
int mt_mkdir_p(const char *dir);

/* $XDG_DATA_HOME/moetune (or ~/.local/share/moetune), created if missing. */
int mt_data_dir(char *out, size_t n);
/* Where a sweep writes its config files: out when given, else the data
 * folder's configs/ (or ./moetune-configs without one); no trailing '/'. */
void mt_sweep_out_dir(const char *out, char *dir, size_t n);

/* Open --db (or the default) and report failures; returns an exit status. */
int mt_cli_open_db(const char *cmd, const char *path, mt_db **db);

/* The database path: the option's, else the default one. */
int mt_cli_db_path(const char *path, char *out, size_t n);
/* The pid of the daemon serving the database at db_path (it holds a lock on
 * DB.daemon), 0 when none does, -1 when one does but its pid is unknown. */
int mt_daemon_holder(const char *db_path);
/* The lock a sweep run for a job holds for its whole life, on
 * DB.job-ID.lock: how the daemon tells that job's sweep from an unrelated
 * process that was given the same pid later. mt_job_lock_take returns the
 * descriptor to keep open, -2 when another process holds it, -1 (errno)
 * when it cannot be made; mt_job_lock_held is 1 while some process holds
 * it. mt_job_lock_drop removes the file and closes fd. */
int mt_job_lock_take(const char *db_path, int64_t job);
int mt_job_lock_held(const char *db_path, int64_t job);
void mt_job_lock_drop(const char *db_path, int64_t job, int fd);
/* 1 when pid is a live `moetune ... sweep` process, and with job > 0 one
 * run with `--job JOB` (a stored pid may have been given to another
 * process since: its command line tells). */
int mt_sweep_process(int64_t pid, int64_t job);
int mt_sweep_process_alive(int64_t pid); /* mt_sweep_process(pid, 0) */
/* One point (a batch size; a batch and context) of one problem on one device is swept by one process at a
 * time on a database: a lock on a byte of DB.sweeps.lock. mt_m_lock_open
 * gives the file's descriptor (-1: locking is skipped); mt_m_lock waits
 * while another sweep holds it, saying so once, and returns 0, or -1 when
 * a signal ended the wait. */
int mt_m_lock_open(const char *db_path);
int mt_m_lock(int fd, int64_t dev, int64_t prob, const int64_t point[2], const char *what);
void mt_m_unlock(int fd, int64_t dev, int64_t prob, const int64_t point[2]);

/* --budget N or P%: *n set and *pct 0, or *pct in (0, 100] and *n 0;
 * returns an exit status (a usage error names cmd). */
int mt_parse_budget(const char *cmd, const char *arg, int64_t *n, double *pct);
/* --time: a duration such as 90s, 10m, 1h or seconds, into *seconds; a
 * usage error naming opt otherwise. */
int mt_parse_duration(const char *cmd, const char *opt, const char *arg, double *seconds);
/* --abort-factor: 0 (off) or a factor of at least 1.05. */
int mt_parse_abort_factor(const char *cmd, const char *arg, double *factor);

/* --shard I/N: MT_OK with 0 <= I < N <= 65536, else MT_EINVAL. */
int mt_shard_parse(const char *s, int *i, int *n);
/* Whether batch size number k (in the problem's list) of the problem
 * (E, N, K, topk) belongs to shard i of n. Round robin over the list, so
 * shards get an even share, offset by the problem, so that shard 0 does not
 * get the smallest (cheapest) batch size of every problem. */
int mt_shard_keep(int64_t E, int64_t N, int64_t K, int64_t topk, int k, int i, int n);

/* Flush and close stdout; a failure (a full disk) is an error. */
int mt_cli_finish(const char *cmd, int status);

/* Problem options shared by sweep (and later submit). */
typedef struct mt_problem_opts {
    const char *model, *model_config, *dtype, *batch_sizes;
    int64_t experts, intermediate, hidden, topk;
    int tp, ep;
    /* an engine's kernel (vllm, sglang): --dtype takes the engine's names
     * (fp8_w8a8, int8_w8a8, int8_w8a16) and a quantised model config's
     * scheme is taken as the engine would run it */
    const char *engine;
    const char *block_shape; /* "128,128" */
    int no_shared_fusion;    /* --disable-shared-experts-fusion, as SGLang names it */
    int per_channel;         /* --per-channel: fp8 weights per output channel, activations per token */
    int64_t group_size;      /* --group-size: int4_w4a16's group (0: the config's, else 128) */
    int zero_points;         /* --zero-points: int4_w4a16 with a zero point per group (AWQ's scheme) */
} mt_problem_opts;

typedef struct mt_problem_spec {
    mt_model_shape model;
    int64_t E, N;
    int dtype;       /* moetune's kernels: the element type; an engine's: the compute type */
    char qdtype[32]; /* the problem's dtype as stored and named (bf16, fp8_w8a8, ...) */
    int64_t block_n, block_k;
    int64_t *ms; /* batch sizes, malloc'ed */
    int n_ms;
} mt_problem_spec;

/* Resolve the options into a problem; returns an exit status (usage errors
 * printed). default_model is used when no model or shape is given. */
int mt_problem_opts_resolve(const char *cmd, const mt_problem_opts *o, const char *default_model,
                            const char *default_batch_sizes, mt_problem_spec *out);

/* Parse a positive integer option value, or report a usage error. */
int mt_parse_int_opt(const char *cmd, const char *opt, const char *val, int64_t min, int64_t max, int64_t *out);

/* Progress on stderr: on a terminal one line redrawn; elsewhere (Slurm and
 * Kubernetes logs) a line every MOETUNE_PROGRESS_SECONDS (default 30) or
 * every tenth of the total, whichever comes first; nothing with quiet. */
typedef struct mt_progress {
    int tty, log;
    double start, last, interval;
    int next_tenth;
    const char *who; /* "sweep", "compile": the lines' prefix */
} mt_progress;
void mt_progress_init(mt_progress *p, int quiet);
void mt_progress_init_named(mt_progress *p, int quiet, const char *who);
void mt_progress_update(mt_progress *p, int done, int total, const char *best);
void mt_progress_end(mt_progress *p);
double mt_now(void);

/* Quote s for a JSON string into f. */
void mt_json_str(FILE *f, const char *s);

#endif
