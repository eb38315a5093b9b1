#include "strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gp.h"
#include "moetune/moetune.h"

int mt_strategy_parse(const char *name)
{
    if (!name) return -1;
    if (!strcmp(name, "grid")) return MT_STRATEGY_GRID;
    if (!strcmp(name, "random")) return MT_STRATEGY_RANDOM;
    if (!strcmp(name, "bayes")) return MT_STRATEGY_BAYES;
    return -1;
}

const char *mt_strategy_name(int kind)
{
    return kind == MT_STRATEGY_RANDOM ? "random" : kind == MT_STRATEGY_BAYES ? "bayes" : "grid";
}

#define MAXD (MT_SPACE_MAX_PARAMS)

struct mt_search {
    int kind, n, budget, proposed, def_idx;
    const mt_config *pts;
    const mt_space *sp;
    int *order;       /* grid and random: the fixed order */
    double *x;        /* bayes: encoded points [n][d] */
    int d;
    char *state;      /* 0 unmeasured, 1 proposed, 2 reported */
    double *t;        /* reported times (NAN: failed) */
    int *obs;         /* indices reported, in order */
    int nobs;
    uint64_t rng;
    int n_init;
    mt_gp gp;         /* hyperparameters carry over between proposals */
    int fitted_at;    /* nobs at the last hyperparameter fit */
};

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int same(const mt_config *a, const mt_config *b, int np)
{
    for (int i = 0; i < np; i++)
        if (a->v[i] != b->v[i]) return 0;
    return 1;
}

int mt_search_new(mt_search **out, int kind, const mt_space *sp, const mt_config *pts, int n, const mt_config *def,
                  int64_t M, int budget, uint64_t seed)
{
    (void)M;
    mt_search *s = calloc(1, sizeof *s);
    if (!s) return MT_ENOMEM;
    s->kind = kind;
    s->n = n;
    s->sp = sp;
    s->pts = pts;
    s->budget = budget > 0 && budget < n ? budget : n;
    s->rng = seed ^ 0x5eed5eed5eedull;
    s->def_idx = -1;
    for (int i = 0; def && i < n; i++)
        if (same(&pts[i], def, sp->nparams)) s->def_idx = i;
    s->order = malloc(((size_t)n + 1) * sizeof *s->order);
    s->state = calloc((size_t)n + 1, 1);
    s->t = malloc(((size_t)n + 1) * sizeof *s->t);
    s->obs = malloc(((size_t)n + 1) * sizeof *s->obs);
    if (!s->order || !s->state || !s->t || !s->obs) {
        mt_search_free(s);
        return MT_ENOMEM;
    }
    if (kind == MT_STRATEGY_GRID) {
        mt_grid_order(pts, n, def, sp->nparams, s->budget, s->order);
    } else {
        /* random: the default, then a seeded shuffle of the rest; bayes
         * uses the same order for its initial design */
        int k = 0;
        if (s->def_idx >= 0) s->order[k++] = s->def_idx;
        for (int i = 0; i < n; i++)
            if (i != s->def_idx) s->order[k++] = i;
        int first = s->def_idx >= 0;
        for (int i = n - 1; i > first; i--) {
            int j = first + (int)(next_u64(&s->rng) % (uint64_t)(i - first + 1));
            int tmp = s->order[i];
            s->order[i] = s->order[j];
            s->order[j] = tmp;
        }
    }
    if (kind == MT_STRATEGY_BAYES) {
        /* encoding: each parameter by the position of its value in the
         * declared list, scaled to [0, 1]; the lists are powers of two
         * (log2 of the sizes) or short ordinal lists */
        s->d = sp->nparams;
        s->x = malloc((size_t)n * (size_t)s->d * sizeof *s->x);
        if (!s->x) {
            mt_search_free(s);
            return MT_ENOMEM;
        }
        for (int i = 0; i < n; i++)
            for (int p = 0; p < s->d; p++) {
                const mt_param_def *pd = &sp->params[p];
                int pos = 0;
                for (int v = 0; v < pd->nvalues; v++)
                    if (pd->values[v] == pts[i].v[p]) pos = v;
                s->x[(size_t)i * s->d + p] = pd->nvalues > 1 ? (double)pos / (pd->nvalues - 1) : 0.0;
            }
        /* the initial design: a tenth of the budget, 3 to 20 points (Kernel
         * Tuner uses 20 of 100; replays of our grids favour fewer, see
         * bench/results/2026-11-23-replay) */
        s->n_init = s->budget / 10;
        if (s->n_init < 3) s->n_init = 3;
        if (s->n_init > 20) s->n_init = 20;
        s->fitted_at = -1;
    }
    *out = s;
    return MT_OK;
}

void mt_search_free(mt_search *s)
{
    if (!s) return;
    free(s->order);
    free(s->state);
    free(s->t);
    free(s->obs);
    free(s->x);
    mt_gp_free(&s->gp);
    free(s);
}

/* ---- the Bayesian proposal ---- */

/* The unmeasured point with the largest expected improvement of log(time);
 * -1 when nothing succeeded yet or the model cannot be fitted. */
static int propose_bayes(mt_search *s)
{
    int n = s->nobs, d = s->d, pick = -1, ok = 0;
    double worst = -INFINITY;
    double *X = malloc((size_t)n * (size_t)d * sizeof *X), *y = malloc((size_t)n * sizeof *y);
    if (!X || !y) goto out;
    for (int i = 0; i < n; i++) {
        double t = s->t[s->obs[i]];
        memcpy(&X[(size_t)i * d], &s->x[(size_t)s->obs[i] * d], (size_t)d * sizeof *X);
        if (!isnan(t)) {
            ok++;
            worst = log(t) > worst ? log(t) : worst;
        }
    }
    if (!ok) goto out;
    /* failures teach the model: they look clearly slower than the worst
     * success, so their neighbours stop being proposed */
    double best = INFINITY;
    for (int i = 0; i < n; i++) {
        double t = s->t[s->obs[i]];
        y[i] = isnan(t) ? worst + 1.0 : log(t);
        best = y[i] < best ? y[i] : best;
    }
    /* refitting the hyperparameters costs O(n^3) per try: every step
     * early, then every third */
    int optimize = s->fitted_at < 0 || n < 30 || n - s->fitted_at >= 3;
    if (mt_gp_fit(&s->gp, X, y, n, d, optimize) != 0) goto out;
    if (optimize) s->fitted_at = n;
    double best_ei = -1;
    for (int c = 0; c < s->n; c++) {
        if (s->state[c]) continue;
        double mu, sd;
        mt_gp_predict(&s->gp, &s->x[(size_t)c * d], &mu, &sd);
        double ei = mt_ei(mu, sd, best, 0.01 * s->gp.ysd);
        if (ei > best_ei) {
            best_ei = ei;
            pick = c;
        }
    }
out:
    free(X);
    free(y);
    return pick;
}

int mt_search_next(mt_search *s, int *idx)
{
    if (s->proposed >= s->budget) return 0;
    int pick = -1;
    if (s->kind != MT_STRATEGY_BAYES || s->proposed < s->n_init) {
        /* the fixed order; a point already proposed (a resumed search) is skipped */
        for (int k = 0; k < s->n && pick < 0; k++)
            if (!s->state[s->order[k]]) pick = s->order[k];
    } else {
        pick = propose_bayes(s);
        if (pick < 0) /* the model could not be fitted: fall back to the order */
            for (int k = 0; k < s->n && pick < 0; k++)
                if (!s->state[s->order[k]]) pick = s->order[k];
    }
    if (pick < 0) return 0;
    s->state[pick] = 1;
    s->proposed++;
    *idx = pick;
    return 1;
}

void mt_search_report(mt_search *s, int idx, double time_us)
{
    if (idx < 0 || idx >= s->n || s->state[idx] == 2) return;
    s->state[idx] = 2;
    s->t[idx] = time_us > 0 ? time_us : NAN;
    s->obs[s->nobs++] = idx;
}

int mt_search_best(const mt_search *s, double *time_us)
{
    int best = -1;
    for (int i = 0; i < s->nobs; i++) {
        int k = s->obs[i];
        if (!isnan(s->t[k]) && (best < 0 || s->t[k] < s->t[best])) best = k;
    }
    if (best >= 0 && time_us) *time_us = s->t[best];
    return best;
}
