/* The options every sweep takes, whatever its family: the search
 * (strategy, budget, seed, early abort, --time, finalists), the worker's
 * limits, where results go, a daemon's job and a shard. One table and one
 * parser; each family's sweep adds only its problem's options. */
#ifndef MT_SWEEP_OPTS_H
#define MT_SWEEP_OPTS_H

#include <getopt.h>
#include <stdint.h>

typedef struct mt_sweep_common {
    const char *device, *db, *out;
    int device_given;
    int strategy;
    int64_t budget;      /* per point; 0: unset */
    double budget_pct;   /* --budget P% */
    int64_t seed, timeout, compile_jobs, job;
    double abort_factor; /* < 0: unset (1.3 for random and bayes, off for grid) */
    double time_s;
    int finalists, rounds;
    int no_export, json, quiet, retry_failed;
    int shard_i, shard_n;
} mt_sweep_common;

/* option ids from MT_SWEEP_OPT_BASE; a family's own take others */
#define MT_SWEEP_OPT_BASE 1000
extern const struct option mt_sweep_common_options[];
extern const int mt_sweep_ncommon;

/* the defaults, with the family's default strategy */
void mt_sweep_common_init(mt_sweep_common *c, int strategy);
/* One option of the table (id, its argument) into c: MT_EXIT_OK, a usage
 * error's exit status (said), or -1 when id is not one of the table's. */
int mt_sweep_common_opt(const char *me, int id, const char *arg, mt_sweep_common *c);
/* what depends on other options, once all are read (the abort factor's
 * default follows the strategy) */
void mt_sweep_common_finish(mt_sweep_common *c);

#endif
