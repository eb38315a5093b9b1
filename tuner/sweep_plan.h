/* The plan of a sweep, the same for every kernel family: the problem's
 * points (fused MoE: batch sizes; attention: (batch, context) pairs), each
 * with its valid configs, a search within the budget, the default, the
 * space's seeds and warm starts (configs known on other devices of the
 * architecture and the winners of neighbouring keys here); then each point
 * searched (mt_sweep_search_point), one point at a time per database, its
 * finalists measured again side by side, and at the end the points left
 * with no verified config said. The sweep commands parse their family's
 * options, resolve the device and export; everything between goes
 * through here. */
#ifndef MT_SWEEP_PLAN_H
#define MT_SWEEP_PLAN_H

#include <signal.h>
#include <stdint.h>

#include "sweep_step.h"

#define MT_PLAN_MAX_FINALISTS 32
#define MT_PLAN_MAX_ROUNDS 9

typedef struct mt_plan_opts {
    int strategy;
    int64_t budget;      /* variants per point (0: the whole space) */
    double budget_pct;   /* or this share of each point's valid configs (at least 5) */
    int64_t seed;
    double abort_factor; /* > 0: stop a variant this much slower than the incumbent */
    double time_s;       /* > 0: no variant starts after this much wall time */
    int finalists;       /* > 1: the best this many of each point (and the default) measured again */
    int rounds;          /* of the finalists */
    int quiet;
    int64_t job;         /* the daemon's job: progress and cancelling through its row */
    const char *only;    /* --only, for the message of a point it leaves empty */
    int lock_fd;         /* mt_m_lock_open's, -1: no lock */
    /* per point, the config measured as the default where it is a valid
     * point (SGLang's down GEMM: the gate-up config's, which SGLang runs
     * without a _down file); NULL: the space's default */
    const mt_config *defaults;
    /* a config file in vLLM's format (the engine's config in use for the
     * problem): its entry nearest each point is proposed first; NULL: none */
    const char *seed_file;
} mt_plan_opts;

typedef struct mt_plan_counts {
    int measured, skipped, failed, aborted, retried;
    int out_of_time; /* --time ended it */
    int cancelled;   /* the job was cancelled */
} mt_plan_counts;

typedef struct mt_plan mt_plan;

/* The plan of the sweep context's problem (c->sweep_id may still be 0) on
 * space sp over n points: enumerated, searches made and warm-started.
 * MT_OK, or MT_ENOMEM with why. */
int mt_plan_new(mt_plan **out, const mt_sweep_ctx *c, const mt_problem *prob, const mt_space *sp,
                const int64_t (*points)[2], int n, const mt_plan_opts *o, char *why, size_t wn);
/* The variants the plan will measure at most (for progress). */
int mt_plan_total(const mt_plan *p);
/* Each point searched, its finalists measured, until done, stopped by
 * *stop (a signal; a cancelled job sets it too) or past --time. The
 * counters are added to r. MT_OK (also when stopped), or a status with why. */
int mt_plan_run(mt_plan *p, const mt_sweep_ctx *c, mt_policy *pol, volatile sig_atomic_t *stop, mt_plan_counts *r,
                char *why, size_t wn);
/* The points left with no verified config of c's kernel source, each said
 * with its failures and the first reason; up to max of them into out
 * (point and the 2-level text "[8,512]" or "64" into text); their count,
 * and into unreached (where not NULL) how many of them had no variant
 * measured at all. */
int mt_plan_unverified(const mt_plan *p, const mt_sweep_ctx *c, int64_t (*out)[2], int max, int *unreached);
/* A point as text: "M=64", "batch 8 ctx 512" (for messages). */
void mt_plan_point_label(const mt_family *f, const int64_t point[2], char *out, size_t n);
/* A daemon's job (0: none) is this sweep's: its row must exist, and the
 * job's lock on the database db_path (held until exit: the daemon signals
 * a stored pid only while it is held) is taken into *lock. MT_OK, or a
 * status with why. */
int mt_plan_claim_job(mt_db *db, const char *db_path, int64_t job, int *lock, char *why, size_t wn);
void mt_plan_free(mt_plan *p);

#endif
