#include "sweep_plan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export.h" /* mt_best_collect */
#include "jobs.h"
#include "log.h"
#include "strategy.h"
#include "util.h"
#include "warmstart.h"

struct mt_plan {
    mt_plan_opts o;
    mt_problem prob;
    const mt_space *sp;
    int n;
    int64_t (*points)[2];
    mt_config **pts;
    mt_config *defs;
    mt_search **search;
    int *order;
    mt_search_pool *pool; /* what one point teaches the next */
    int total;
};

/* The inputs of a point: round 0 is what the search measures on, later
 * finalist rounds draw new ones, alike for every finalist, so that the
 * winner is fastest over several routings and not one. (The batch size
 * alone gives fused MoE's seeds, as before there were families.) */
static uint64_t inputs_seed(int64_t seed, const int64_t point[2], int round)
{
    return ((uint64_t)seed * 0x9e3779b97f4a7c15ull ^ (uint64_t)point[0] * 1000003ull ^ (uint64_t)point[1] * 7919ull) +
           (uint64_t)round * 0xbf58476d1ce4e5b9ull;
}

/* the search's own seed per point, so that a resumed search proposes what
 * it did */
static uint64_t search_seed(int64_t seed, const mt_family *f, const int64_t point[2])
{
    return (uint64_t)seed * 0x2545f4914f6cdd1dull +
           (uint64_t)(f->npoint > 1 ? point[0] * 131071 + point[1] : point[0]);
}

void mt_plan_point_label(const mt_family *f, const int64_t point[2], char *out, size_t n)
{
    if (f->npoint > 1)
        snprintf(out, n, "%s %lld %s %lld", f->point[0], (long long)point[0], f->point[1], (long long)point[1]);
    else
        snprintf(out, n, "%s=%lld", f->point[0], (long long)point[0]);
}

int mt_plan_new(mt_plan **out, const mt_sweep_ctx *c, const mt_problem *prob, const mt_space *sp,
                const int64_t (*points)[2], int n, const mt_plan_opts *o, char *why, size_t wn)
{
    mt_plan *p = calloc(1, sizeof *p);
    *out = p;
    if (!p) return snprintf(why, wn, "out of memory"), MT_ENOMEM;
    p->o = *o;
    p->prob = *prob;
    p->sp = sp;
    p->n = n;
    p->points = calloc((size_t)n + 1, sizeof *p->points);
    p->pts = calloc((size_t)n + 1, sizeof *p->pts);
    p->defs = calloc((size_t)n + 1, sizeof *p->defs);
    p->search = calloc((size_t)n + 1, sizeof *p->search);
    p->order = calloc((size_t)n + 1, sizeof *p->order);
    if (!p->points || !p->pts || !p->defs || !p->search || !p->order || mt_search_pool_new(&p->pool) != MT_OK)
        return snprintf(why, wn, "out of memory"), MT_ENOMEM;
    const mt_family *f = c->t->family;
    int min_budget = 0;
    for (int i = 0; i < n; i++) {
        memcpy(p->points[i], points[i], sizeof p->points[i]);
        mt_space_ctx x;
        c->t->space_ctx(c->key, points[i], c->dev->cores, c->dev->smem_per_block, &x);
        int k = mt_space_enumerate(sp, &x, &p->pts[i]);
        if (k < 0) return snprintf(why, wn, "out of memory"), MT_ENOMEM;
        char label[64];
        mt_plan_point_label(f, points[i], label, sizeof label);
        if (k == 0 && o->only)
            fprintf(stderr, "moetune sweep: %s: no valid point has --only %s; nothing measured there\n", label, o->only);
        sp->default_config(sp, &x, &p->defs[i]);
        char dwhy[256];
        if (o->defaults && sp->valid(sp, &o->defaults[i], &x, dwhy, sizeof dwhy)) p->defs[i] = o->defaults[i];
        /* a percentage budget rounds up, as replay's --fraction does, so a
         * replayed figure and a live sweep spend the same */
        int budget = o->budget_pct > 0 ? (int)ceil(k * o->budget_pct / 100.0) : (int)o->budget;
        if (o->budget_pct > 0 && budget < 5) budget = 5;
        /* the model's input is the point's work: its fields' product (the
         * batch size; sequences x context) */
        int64_t work = points[i][0] * (f->npoint > 1 && points[i][1] > 0 ? points[i][1] : 1);
        if (mt_search_new(&p->search[i], o->strategy, sp, p->pts[i], k, &p->defs[i], work, budget,
                          search_seed(o->seed, f, points[i])) != MT_OK)
            return snprintf(why, wn, "out of memory"), MT_ENOMEM;
        mt_search_attach(p->search[i], p->pool);
        /* the engine's config in use: measured first, so the pick is never
         * slower than what the engine runs today */
        char fwhy[256];
        if (o->seed_file && mt_warm_start_file(o->seed_file, sp, p->pts[i], k, points[i][0], p->search[i], fwhy,
                                               sizeof fwhy) < 0 && i == 0)
            mt_warn("%s: not read (%s): no warm start from it", o->seed_file, fwhy);
        /* another kernel path's representative (fused MoE's GEMV path at
         * small batch sizes): measured early, so that the search compares
         * the paths however small its budget */
        mt_config seeds[4];
        for (int s = 0, ns = mt_space_seeds(sp, &x, seeds, 4); s < ns; s++)
            for (int j = 0; j < k; j++)
                if (!memcmp(&p->pts[i][j], &seeds[s], sizeof seeds[s])) mt_search_suggest(p->search[i], j);
        /* warm start: what vLLM and other devices of this architecture
         * found, then the winners of neighbouring keys on this device,
         * proposed right after the default */
        int ws = mt_warm_start(c->db, c->dev, prob, sp, p->pts[i], k, points[i], p->search[i]);
        int wss = mt_warm_start_shapes(c->db, c->dev, prob, c->kernel_hash, sp, p->pts[i], k, points[i], p->search[i]);
        if (wss > 0) ws = (ws > 0 ? ws : 0) + wss;
        if (ws > 0) mt_debug("%s: %d warm-start suggestion(s)", label, ws);
        int eff = budget > 0 && budget < k ? budget : k; /* what this point will measure */
        p->total += eff;
        if (i == 0 || eff < min_budget) min_budget = eff;
    }
    /* bayes goes coarse to fine over the points (mt_search_order), so that
     * each sees the winners of a neighbour on both sides */
    mt_search_order(o->strategy, n, min_budget, p->order);
    return MT_OK;
}

int mt_plan_total(const mt_plan *p) { return p ? p->total : 0; }

/* ---- finalists ---- */

struct top {
    int64_t point[2];
    int64_t cfg[MT_PLAN_MAX_FINALISTS + 1];
    char params[MT_PLAN_MAX_FINALISTS + 1][256];
    int n, max, has_default;
};

/* rows come by point, then fastest first: the first `max` of the point,
 * plus the default wherever it stands */
static int top_row(const mt_result_row *r, void *u)
{
    struct top *t = u;
    if (r->M != t->point[0] || r->p2 != t->point[1]) return 0;
    for (int i = 0; i < t->n; i++)
        if (t->cfg[i] == r->config_id) return 0;
    int room = t->n < t->max || (r->is_default && !t->has_default && t->n < MT_PLAN_MAX_FINALISTS + 1);
    if (!room) return 0;
    t->cfg[t->n] = r->config_id;
    snprintf(t->params[t->n], sizeof t->params[t->n], "%s", r->params);
    t->has_default |= r->is_default;
    t->n++;
    return 0;
}

static int count_fin(int64_t cfg, const char *params, double median, void *u)
{
    (void)cfg, (void)params, (void)median;
    ++*(int *)u;
    return 0;
}

/* The best few of a point (the default always among them) measured
 * again, round after round, side by side, on fresh inputs; each one's
 * median over the rounds is stored and the fastest is the winner. A
 * variant that fails here drops out. */
static int run_finalists(const mt_plan *p, const mt_sweep_ctx *c, const int64_t point[2], const mt_policy *pol,
                         volatile sig_atomic_t *stop, char *why, size_t wn)
{
    static struct top t; /* 8 KiB: off the stack */
    memset(&t, 0, sizeof t);
    memcpy(t.point, point, sizeof t.point);
    t.max = p->o.finalists;
    int rounds = p->o.rounds < 1 ? 1 : p->o.rounds > MT_PLAN_MAX_ROUNDS ? MT_PLAN_MAX_ROUNDS : p->o.rounds;
    if (mt_db_results(c->db, c->dev->id, c->problem_id, "ok", c->kernel_hash, top_row, &t) != MT_OK)
        return snprintf(why, wn, "cannot read the database: %s", mt_db_errmsg(c->db)), MT_EDB;
    if (t.n < 2) return MT_OK; /* nothing to choose between */
    double med[MT_PLAN_MAX_FINALISTS + 1][MT_PLAN_MAX_ROUNDS];
    int alive[MT_PLAN_MAX_FINALISTS + 1];
    for (int i = 0; i < t.n; i++) alive[i] = 1;
    const mt_family *f = c->t->family;
    for (int r = 0; r < rounds && !*stop; r++)
        for (int i = 0; i < t.n && !*stop; i++) {
            if (!alive[i]) continue;
            char req[2048], err[512], *reply = NULL;
            if (mt_measure_request(req, sizeof req, f->name, c->key_json, point, f->npoint, c->renormalize, t.params[i],
                                   inputs_seed(p->o.seed, point, r), pol,
                                   c->request_extra ? c->request_extra(c->extra_user, point) : NULL) != MT_OK)
                req[0] = 0;
            int crc = mt_worker_call(c->w, req, c->timeout_s, &reply, err, sizeof err);
            cJSON *j = crc == MT_OK ? cJSON_Parse(reply) : NULL;
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "median_us");
            if (cJSON_IsString(st) && !strcmp(st->valuestring, "ok") && cJSON_IsNumber(v)) med[i][r] = v->valuedouble;
            else alive[i] = 0;
            int fatal = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "fatal"));
            cJSON_Delete(j);
            free(reply);
            if ((crc != MT_OK || fatal) && mt_worker_restart(c->w, err, sizeof err) != MT_OK)
                return snprintf(why, wn, "cannot restart the worker: %s", err), MT_ECRASH;
        }
    if (*stop) return MT_OK;
    for (int i = 0; i < t.n; i++) {
        if (!alive[i]) continue;
        /* the median of the rounds */
        for (int a = 1; a < rounds; a++)
            for (int b = a; b > 0 && med[i][b] < med[i][b - 1]; b--) {
                double x = med[i][b];
                med[i][b] = med[i][b - 1];
                med[i][b - 1] = x;
            }
        double m = rounds % 2 ? med[i][rounds / 2] : 0.5 * (med[i][rounds / 2 - 1] + med[i][rounds / 2]);
        if (mt_db_finalist_insert(c->db, c->sweep_id, c->dev->id, c->problem_id, point, t.cfg[i], m, rounds,
                                  c->kernel_hash, c->policy_text) != MT_OK)
            return snprintf(why, wn, "cannot store a finalist: %s", mt_db_errmsg(c->db)), MT_EDB;
    }
    return MT_OK;
}

/* ---- the run ---- */

/* the progress line and the job's row after each measured variant; a
 * cancel seen in the job's row stops the sweep after the measurement just
 * committed */
struct tick { mt_progress *prog; mt_db *db; int64_t job; int total; volatile sig_atomic_t *stop; int *cancelled; };
static void job_tick(struct tick *t, int done, const char *best)
{
    char st[32];
    if (mt_db_job_progress(t->db, t->job, done, t->total, best) != MT_OK)
        mt_warn("job %lld: cannot record progress", (long long)t->job);
    if (mt_db_job_status(t->db, t->job, st, sizeof st) == MT_OK && !strcmp(st, "cancelled")) {
        *t->cancelled = 1;
        *t->stop = 1;
    }
}
static void tick(void *user, int done, const char *best)
{
    struct tick *t = user;
    mt_progress_update(t->prog, done, t->total, best);
    if (t->job) job_tick(t, done, best);
}

int mt_plan_run(mt_plan *p, const mt_sweep_ctx *c, mt_policy *pol, volatile sig_atomic_t *stop, mt_plan_counts *r,
                char *why, size_t wn)
{
    const mt_family *f = c->t->family;
    mt_progress prog;
    mt_progress_init(&prog, p->o.quiet);
    struct tick tc = {&prog, c->db, p->o.job, p->total, stop, &r->cancelled};
    if (p->o.job) job_tick(&tc, 0, NULL);
    int done = 0, rc = MT_OK;
    double t_start = mt_now();
    for (int oi = 0; oi < p->n && !*stop && rc == MT_OK && !r->out_of_time; oi++) {
        const int i = p->order[oi];
        char label[64], what[96];
        mt_plan_point_label(f, p->points[i], label, sizeof label);
        /* one process measures a point at a time: a second sweep of the
         * same problem waits, then finds the point's rows stored */
        snprintf(what, sizeof what, "%s of this problem", label);
        if (mt_m_lock(p->o.lock_fd, c->dev->id, c->problem_id, p->points[i], what) != 0) break;
        /* the same inputs for every config of a point (fused MoE's routing
         * decides how many experts and tiles there are to run, so inputs
         * drawn per config made a config look fast for its routing) */
        mt_point_search pt = {.search = p->search[i], .sp = p->sp, .pts = p->pts[i], .def = &p->defs[i],
                              .point = {p->points[i][0], p->points[i][1]}, .label = label,
                              .seed = inputs_seed(p->o.seed, p->points[i], 0), .abort_factor = p->o.abort_factor,
                              .deadline = p->o.time_s > 0 ? t_start + p->o.time_s : 0,
                              .warn_failures = !p->o.quiet && !prog.tty, .progress = tick, .user = &tc, .done = done,
                              .best = INFINITY};
        rc = mt_sweep_search_point(c, &pt, pol, stop, why, wn);
        done = pt.done;
        r->measured += pt.measured, r->skipped += pt.skipped, r->failed += pt.failed, r->aborted += pt.aborted;
        r->retried += pt.retried;
        r->out_of_time = pt.out_of_time;
        /* a rerun that measured nothing new keeps the finalists it has */
        int had = 0;
        if (rc == MT_OK && !*stop && !r->out_of_time && p->o.finalists > 1 && pt.measured == 0)
            mt_db_finalists(c->db, c->dev->id, c->problem_id, p->points[i], c->kernel_hash, count_fin, &had);
        if (rc == MT_OK && !*stop && !r->out_of_time && p->o.finalists > 1 && (pt.measured > 0 || !had))
            rc = run_finalists(p, c, p->points[i], pol, stop, why, wn);
        mt_m_unlock(p->o.lock_fd, c->dev->id, c->problem_id, p->points[i]);
    }
    /* the job's progress at the end, also when every point was stored before */
    if (p->o.job) job_tick(&tc, done, NULL);
    mt_progress_end(&prog);
    return rc;
}

/* failures of one point, for the report of a point left with none verified */
struct fail_tally { int64_t point[2]; int n; char first[200]; };
static int tally_failed(const mt_result_row *r, void *u)
{
    struct fail_tally *t = u;
    if (r->M != t->point[0] || r->p2 != t->point[1]) return 0;
    if (!t->n++) snprintf(t->first, sizeof t->first, "%s", r->reason && *r->reason ? r->reason : "failed");
    return 0;
}

int mt_plan_unverified(const mt_plan *p, const mt_sweep_ctx *c, int64_t (*out)[2], int max, int *unreached)
{
    mt_best_list l;
    int n = 0;
    if (unreached) *unreached = 0;
    if (mt_best_collect(c->db, c->dev->id, c->problem_id, c->kernel_hash, &l) != MT_OK) return 0;
    for (int i = 0; i < p->n; i++) {
        int found = 0;
        for (int k = 0; k < l.n && !found; k++) found = l.v[k].M == p->points[i][0] && l.v[k].p2 == p->points[i][1];
        if (found) continue;
        struct fail_tally t = {{p->points[i][0], p->points[i][1]}, 0, ""};
        char label[64];
        mt_plan_point_label(c->t->family, p->points[i], label, sizeof label);
        mt_db_results(c->db, c->dev->id, c->problem_id, "failed", c->kernel_hash, tally_failed, &t);
        if (t.n)
            mt_err("%s: none of its %d variant(s) measured passed; the first failed with: %s", label, t.n, t.first);
        else {
            mt_err("%s: no variant was measured (--time, --only or the budget left it out)", label);
            if (unreached) (*unreached)++;
        }
        if (n < max) memcpy(out[n], p->points[i], sizeof out[n]);
        n++;
    }
    mt_best_list_free(&l);
    return n;
}

int mt_plan_claim_job(mt_db *db, const char *db_path, int64_t job, int *lock, char *why, size_t wn)
{
    char st[32];
    if (!job) return MT_OK;
    if (mt_db_job_status(db, job, st, sizeof st) != MT_OK || !st[0])
        return snprintf(why, wn, "--job %lld: no such job in the database", (long long)job), MT_ENOTFOUND;
    /* held until exit: the daemon signals a stored pid only while it is held */
    if (db_path && db_path[0] && (*lock = mt_job_lock_take(db_path, job)) == -2)
        return snprintf(why, wn, "--job %lld: another sweep runs this job", (long long)job), MT_EINVAL;
    return MT_OK;
}

void mt_plan_free(mt_plan *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        if (p->pts) free(p->pts[i]);
        if (p->search) mt_search_free(p->search[i]);
    }
    free(p->points);
    free(p->pts);
    free(p->defs);
    free(p->search);
    free(p->order);
    mt_search_pool_free(p->pool);
    free(p);
}
