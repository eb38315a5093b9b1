#include "strategy.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    double ls[MAXD];  /* fitted length scales */
    double noise;
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
        /* Kernel Tuner's setting: 20 initial samples for a budget of 100 */
        s->n_init = s->budget / 5;
        if (s->n_init < 5) s->n_init = 5;
        if (s->n_init > 20) s->n_init = 20;
        for (int p = 0; p < s->d; p++) s->ls[p] = 0.5;
        s->noise = 1e-2;
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
    free(s);
}

/* ---- the Gaussian process ---- */

/* Matérn 5/2 with one length scale per dimension, unit signal variance
 * (the targets are standardised). */
static double matern52(const double *a, const double *b, const double *ls, int d)
{
    double r2 = 0;
    for (int p = 0; p < d; p++) {
        double u = (a[p] - b[p]) / ls[p];
        r2 += u * u;
    }
    double r = sqrt(5.0 * r2);
    return (1.0 + r + r * r / 3.0) * exp(-r);
}

/* Targets for the model: log(time), failures as clearly worse than the
 * worst success, standardised. Returns 0 when nothing succeeded yet. */
static int targets(const mt_search *s, double *y)
{
    double worst = -INFINITY, mean = 0, var = 0;
    int ok = 0;
    for (int i = 0; i < s->nobs; i++)
        if (!isnan(s->t[s->obs[i]])) {
            double v = log(s->t[s->obs[i]]);
            worst = v > worst ? v : worst;
            ok++;
        }
    if (!ok) return 0;
    /* failures teach the model: their neighbours look slow, so it stops
     * proposing them */
    for (int i = 0; i < s->nobs; i++) y[i] = isnan(s->t[s->obs[i]]) ? worst + 1.0 : log(s->t[s->obs[i]]);
    for (int i = 0; i < s->nobs; i++) mean += y[i];
    mean /= s->nobs;
    for (int i = 0; i < s->nobs; i++) var += (y[i] - mean) * (y[i] - mean);
    double sd = s->nobs > 1 ? sqrt(var / (s->nobs - 1)) : 1.0;
    if (!(sd > 1e-12)) sd = 1.0;
    for (int i = 0; i < s->nobs; i++) y[i] = (y[i] - mean) / sd;
    return 1;
}

/* Cholesky of K + noise I into L (row-major, lower); 0 on success. */
static int factor(const mt_search *s, const double *ls, double noise, double *L)
{
    int n = s->nobs, d = s->d;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double k = matern52(&s->x[(size_t)s->obs[i] * d], &s->x[(size_t)s->obs[j] * d], ls, d);
            L[(size_t)i * n + j] = k + (i == j ? noise : 0.0);
            L[(size_t)j * n + i] = L[(size_t)i * n + j];
        }
    return LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, L, n) != 0;
}

/* The log marginal likelihood (up to a constant) for these hyperparameters. */
static double lml(const mt_search *s, const double *y, const double *ls, double noise, double *L, double *alpha)
{
    int n = s->nobs;
    if (factor(s, ls, noise, L)) return -INFINITY;
    memcpy(alpha, y, (size_t)n * sizeof *alpha);
    if (LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', n, 1, L, n, alpha, 1) != 0) return -INFINITY;
    double fit = 0, logdet = 0;
    for (int i = 0; i < n; i++) {
        fit += y[i] * alpha[i];
        logdet += log(L[(size_t)i * n + i]);
    }
    return -0.5 * fit - logdet;
}

/* Fit the length scales and noise by maximising the marginal likelihood:
 * coordinate ascent over a log-spaced grid per dimension. */
static void fit(mt_search *s, const double *y, double *L, double *alpha)
{
    static const double grid[] = {0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5.0};
    static const double noises[] = {1e-4, 1e-3, 1e-2, 5e-2, 2e-1};
    double best = lml(s, y, s->ls, s->noise, L, alpha);
    for (int sweep = 0; sweep < 2; sweep++) {
        for (int p = 0; p < s->d; p++) {
            double keep = s->ls[p];
            for (size_t g = 0; g < sizeof grid / sizeof grid[0]; g++) {
                s->ls[p] = grid[g];
                double v = lml(s, y, s->ls, s->noise, L, alpha);
                if (v > best) {
                    best = v;
                    keep = grid[g];
                }
            }
            s->ls[p] = keep;
        }
        double keepn = s->noise;
        for (size_t g = 0; g < sizeof noises / sizeof noises[0]; g++) {
            double v = lml(s, y, s->ls, noises[g], L, alpha);
            if (v > best) {
                best = v;
                keepn = noises[g];
            }
        }
        s->noise = keepn;
    }
}

static double norm_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }
static double norm_pdf(double z) { return exp(-0.5 * z * z) / sqrt(2.0 * M_PI); }

/* The unmeasured point with the largest expected improvement; -1 on failure. */
static int propose_bayes(mt_search *s)
{
    int n = s->nobs, d = s->d, pick = -1;
    double *y = malloc((size_t)n * sizeof *y), *L = malloc((size_t)n * n * sizeof *L);
    double *alpha = malloc((size_t)n * sizeof *alpha), *ks = malloc((size_t)n * sizeof *ks);
    if (!y || !L || !alpha || !ks || !targets(s, y)) goto out;
    /* refitting costs O(n^3) per try: every step early, then every third */
    if (s->fitted_at < 0 || n < 30 || n - s->fitted_at >= 3) {
        fit(s, y, L, alpha);
        s->fitted_at = n;
    }
    if (lml(s, y, s->ls, s->noise, L, alpha) == -INFINITY) goto out;
    double best = INFINITY;
    for (int i = 0; i < n; i++) best = y[i] < best ? y[i] : best;
    double best_ei = -1;
    for (int c = 0; c < s->n; c++) {
        if (s->state[c]) continue;
        const double *xc = &s->x[(size_t)c * d];
        double mu = 0;
        for (int i = 0; i < n; i++) {
            ks[i] = matern52(xc, &s->x[(size_t)s->obs[i] * d], s->ls, d);
            mu += ks[i] * alpha[i];
        }
        /* variance: 1 - |L^-1 k*|^2 */
        if (LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'L', 'N', 'N', n, 1, L, n, ks, 1) != 0) continue;
        double v = 1.0;
        for (int i = 0; i < n; i++) v -= ks[i] * ks[i];
        double sd = v > 1e-12 ? sqrt(v) : 1e-6;
        double imp = best - mu - 0.01, z = imp / sd;
        double ei = imp * norm_cdf(z) + sd * norm_pdf(z);
        if (ei > best_ei) {
            best_ei = ei;
            pick = c;
        }
    }
out:
    free(y);
    free(L);
    free(alpha);
    free(ks);
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
