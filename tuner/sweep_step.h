/* One step of a sweep, the same for every kernel family: a config at a
 * point looked up in the database (a stored figure is reused; a failure
 * that was not the variant's, or any with --retry-failed, is measured
 * again), else measured by the worker with the one measure request, the
 * reply turned into a stored row (status, reason, figures, the family's
 * floor, a timeout or an outside kill marked transient), and the worker
 * replaced after a crash or a "fatal" answer. */
#ifndef MT_SWEEP_STEP_H
#define MT_SWEEP_STEP_H

#include <signal.h>
#include <stdint.h>

#include "db.h"
#include "family_tuning.h"
#include "measure.h"
#include "space.h"
#include "workerpool.h"

typedef struct mt_sweep_ctx {
    mt_db *db;
    mt_worker *w;
    const mt_family_tuning *t;
    const mt_family_key *key; /* the family's key, parsed */
    const char *key_json;     /* and as the problem stores it */
    int renormalize;          /* fused MoE's routing */
    const mt_device_info *dev;
    int64_t problem_id, sweep_id;
    const char *kernel_hash, *policy_text;
    double timeout_s;
    int retry_failed;
    /* Compiling ahead (an engine's Triton kernels, which compile on their
     * first call): before a config not compiled yet is measured, it and
     * the search's likely next proposals (mt_search_peek, prefetch_n in
     * all, none stored already) go to prefetch in one call, which compiles
     * them in parallel; its status only says whether it ran (a config it
     * could not compile is measured, and its failure stored, as any
     * other; the callback keeps its own tally). NULL: each variant
     * compiles when it is measured. */
    int (*prefetch)(void *user, const int64_t point[2], const char *const *params, int n);
    void *prefetch_user;
    int prefetch_n;
    /* What a measure request at point says besides the config: JSON
     * members ("pin":{...}: SGLang's gate-up config, pinned while its down
     * GEMM is tuned), or NULL; the text lives until the next call. NULL:
     * nothing. */
    const char *(*request_extra)(void *user, const int64_t point[2]);
    void *extra_user;
} mt_sweep_ctx;

typedef struct mt_step {
    enum { MT_STEP_STORED, MT_STEP_MEASURED, MT_STEP_ABANDONED } kind;
    int retried;         /* a stored failure measured again */
    const char *status;  /* "ok", "failed", "aborted" (measured) */
    double median_us;    /* what the search learns: the figure, the partial one when aborted, NaN when failed */
    char reason[512];    /* a failure's */
} mt_step;

/* One config (params, its row cfg_id) of the sweep's problem at point,
 * on inputs drawn from seed, stopped early past abort_us (0: never).
 * stop, when set by a signal while the worker runs, abandons the variant
 * (MT_STEP_ABANDONED: nothing stored). MT_OK, or MT_EDB when the database
 * refused the row, MT_ECRASH when no worker could be started again; why
 * says which. */
int mt_sweep_step(const mt_sweep_ctx *c, const int64_t point[2], const char *params, int64_t cfg_id, int is_default,
                  uint64_t seed, const mt_policy *pol, const volatile sig_atomic_t *stop, mt_step *out, char *why, size_t n);

/* One point of a sweep searched: the strategy's proposals in turn, each
 * through mt_sweep_step, until the search is done, the deadline passes or
 * a signal stops it. The same loop for every family; what differs (the
 * label, the progress line, a job's row) goes through the callback. */
struct mt_search;
typedef struct mt_point_search {
    struct mt_search *search;
    const mt_space *sp;
    const mt_config *pts, *def;
    int64_t point[2];
    const char *label;    /* "M=64", "batch 8 ctx 512": for messages */
    uint64_t seed;        /* the point's inputs, alike for every config */
    double abort_factor;  /* > 0: stop a variant this much slower than the incumbent */
    double deadline;      /* mt_now() past which no variant starts (0: none) */
    int warn_failures;    /* say each failed variant (a log, not a terminal) */
    /* after each measured variant: done so far and "LABEL best .. us" */
    void (*progress)(void *user, int done, const char *best);
    void *user;
    /* counters, added to */
    int done, measured, skipped, failed, aborted, retried;
    double best;          /* the point's best figure measured here (INFINITY: none) */
    int out_of_time;      /* the deadline stopped it */
} mt_point_search;

/* MT_OK (also when stopped), or what mt_sweep_step returned, why saying it. */
int mt_sweep_search_point(const mt_sweep_ctx *c, mt_point_search *ps, mt_policy *pol,
                          const volatile sig_atomic_t *stop, char *why, size_t n);

#endif
