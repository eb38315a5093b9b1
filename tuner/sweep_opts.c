#include "sweep_opts.h"

#include <stdio.h>
#include <string.h>

#include "moetune/moetune.h"
#include "strategy.h"
#include "sweep_plan.h"
#include "util.h"

enum {
    O_DEVICE = MT_SWEEP_OPT_BASE, O_DB, O_OUT, O_STRATEGY, O_BUDGET, O_SEED, O_TIMEOUT, O_TIME, O_ABORT, O_FINALISTS,
    O_ROUNDS, O_COMPILE_JOBS, O_JOB, O_SHARD, O_NO_EXPORT, O_JSON, O_QUIET, O_RETRY_FAILED, O_END
};

const struct option mt_sweep_common_options[] = {
    {"device", required_argument, 0, O_DEVICE},       {"db", required_argument, 0, O_DB},
    {"out", required_argument, 0, O_OUT},             {"strategy", required_argument, 0, O_STRATEGY},
    {"budget", required_argument, 0, O_BUDGET},       {"seed", required_argument, 0, O_SEED},
    {"timeout", required_argument, 0, O_TIMEOUT},     {"time", required_argument, 0, O_TIME},
    {"abort-factor", required_argument, 0, O_ABORT},  {"finalists", required_argument, 0, O_FINALISTS},
    {"finalist-rounds", required_argument, 0, O_ROUNDS}, {"compile-jobs", required_argument, 0, O_COMPILE_JOBS},
    {"job", required_argument, 0, O_JOB},             {"shard", required_argument, 0, O_SHARD},
    {"no-export", no_argument, 0, O_NO_EXPORT},       {"json", no_argument, 0, O_JSON},
    {"quiet", no_argument, 0, O_QUIET},               {"retry-failed", no_argument, 0, O_RETRY_FAILED},
};
const int mt_sweep_ncommon = (int)(sizeof mt_sweep_common_options / sizeof mt_sweep_common_options[0]);

void mt_sweep_common_init(mt_sweep_common *c, int strategy)
{
    memset(c, 0, sizeof *c);
    c->device = "auto";
    c->strategy = strategy;
    c->seed = 1;
    c->timeout = 60;
    c->compile_jobs = -1; /* unset: the online CPUs */
    c->abort_factor = -1;
    c->finalists = 3;
    c->rounds = 3;
}

int mt_sweep_common_opt(const char *me, int id, const char *arg, mt_sweep_common *c)
{
    int64_t v;
    int rc = MT_EXIT_OK;
    switch (id) {
    case O_DEVICE: c->device = arg, c->device_given = 1; break;
    case O_DB: c->db = arg; break;
    case O_OUT: c->out = arg; break;
    case O_STRATEGY:
        if ((c->strategy = mt_strategy_parse(arg)) < 0)
            return mt_usage_error(me, "--strategy '%s': expected grid, random or bayes", arg);
        break;
    case O_BUDGET: rc = mt_parse_budget(me, arg, &c->budget, &c->budget_pct); break;
    case O_SEED: rc = mt_parse_int_opt(me, "--seed", arg, 0, INT64_MAX, &c->seed); break;
    case O_TIMEOUT: rc = mt_parse_int_opt(me, "--timeout", arg, 1, 86400, &c->timeout); break;
    case O_TIME: rc = mt_parse_duration(me, "--time", arg, &c->time_s); break;
    case O_ABORT: rc = mt_parse_abort_factor(me, arg, &c->abort_factor); break;
    case O_FINALISTS:
        rc = mt_parse_int_opt(me, "--finalists", arg, 0, MT_PLAN_MAX_FINALISTS, &v);
        c->finalists = (int)v;
        break;
    case O_ROUNDS:
        rc = mt_parse_int_opt(me, "--finalist-rounds", arg, 1, MT_PLAN_MAX_ROUNDS, &v);
        c->rounds = (int)v;
        break;
    case O_COMPILE_JOBS: rc = mt_parse_int_opt(me, "--compile-jobs", arg, 0, 1024, &c->compile_jobs); break;
    case O_JOB: rc = mt_parse_int_opt(me, "--job", arg, 1, INT64_MAX, &c->job); break;
    case O_SHARD:
        if (mt_shard_parse(arg, &c->shard_i, &c->shard_n) != MT_OK)
            return mt_usage_error(me, "--shard '%s': expected I/N with 0 <= I < N, e.g. 0/4 (Slurm's "
                                  "SLURM_ARRAY_TASK_ID or Kubernetes' JOB_COMPLETION_INDEX as I)", arg);
        break;
    case O_NO_EXPORT: c->no_export = 1; break;
    case O_JSON: c->json = 1; break;
    case O_QUIET: c->quiet = 1; break;
    case O_RETRY_FAILED: c->retry_failed = 1; break;
    default: return -1;
    }
    return rc;
}

void mt_sweep_common_finish(mt_sweep_common *c)
{
    /* a recorded grid must hold full figures: no abort there by default */
    if (c->abort_factor < 0) c->abort_factor = c->strategy == MT_STRATEGY_GRID ? 0 : 1.3;
}
