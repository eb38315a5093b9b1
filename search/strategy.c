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
    int *sugg;        /* suggested points, proposed after the default */
    int nsugg;
    mt_gp gp;         /* hyperparameters carry over between proposals */
    int64_t M;
    struct mt_search_pool *pool;
    int fitted_at;    /* nobs at the last hyperparameter fit */
    int full_at;      /* nobs at the last full hyperparameter search */
    int *cand, *rank; /* bayes: buffers of the proposal */
    double *xs, *mu, *sdv;
    double last_ei;   /* the model's expected improvement of its last proposal (log time) */
    int asked;        /* mt_search_next was called: the neighbours' winners are suggested */
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
    mt_search *s = calloc(1, sizeof *s);
    if (!s) return MT_ENOMEM;
    s->kind = kind;
    s->n = n;
    s->sp = sp;
    s->pts = pts;
    s->budget = budget > 0 && budget < n ? budget : n;
    s->rng = seed ^ 0x5eed5eed5eedull;
    s->def_idx = -1;
    s->M = M;
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
        /* the proposal's buffers, kept: candidates, their inputs and predictions */
        s->cand = malloc((size_t)n * sizeof *s->cand);
        s->rank = malloc((size_t)n * sizeof *s->rank);
        s->xs = malloc((size_t)n * (size_t)(s->d + 1) * sizeof *s->xs);
        s->mu = malloc((size_t)n * sizeof *s->mu);
        s->sdv = malloc((size_t)n * sizeof *s->sdv);
        if (!s->x || !s->cand || !s->rank || !s->xs || !s->mu || !s->sdv) {
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
        s->full_at = -1;
        s->last_ei = -1; /* no model proposal yet */
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
    free(s->cand);
    free(s->rank);
    free(s->xs);
    free(s->mu);
    free(s->sdv);
    free(s->sugg);
    mt_gp_free(&s->gp);
    free(s);
}

/* ---- the shared pool ---- */

#define POOL_D (MT_SPACE_MAX_PARAMS + 1)

struct mt_search_pool {
    int n, cap;
    double (*x)[POOL_D]; /* config encoding, then log2(M) scaled */
    double *t;           /* time, NAN for a failure */
    int64_t *M;
};

int mt_search_pool_new(mt_search_pool **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? MT_OK : MT_ENOMEM;
}

void mt_search_pool_free(mt_search_pool *p)
{
    if (!p) return;
    free(p->x);
    free(p->t);
    free(p->M);
    free(p);
}

void mt_search_attach(mt_search *s, mt_search_pool *pool) { s->pool = pool; }

void mt_search_order(int kind, int n, int min_budget, int *order)
{
    for (int i = 0; i < n; i++) order[i] = i;
    if (kind != MT_STRATEGY_BAYES || n < 3 || min_budget < MT_SEARCH_NEIGHBOUR_BUDGET) return;
    /* coarse to fine: the ends, then the midpoints of the gaps, breadth
     * first, so that most batch sizes are searched after a neighbour on
     * each side (the optimum at M = 4 of Mixtral TP8 is M = 8's, which an
     * ascending order has not searched yet: bench/results/2026-11-23-replay-v2) */
    int lo[64], hi[64], head = 0, tail = 0, k = 0;
    order[k++] = 0;
    order[k++] = n - 1;
    lo[tail] = 0, hi[tail++] = n - 1;
    while (head < tail && k < n) {
        int a = lo[head], b = hi[head++];
        if (b - a < 2) continue;
        int m = (a + b) / 2;
        order[k++] = m;
        if (tail + 2 <= 64) {
            lo[tail] = a, hi[tail++] = m;
            lo[tail] = m, hi[tail++] = b;
        }
    }
    /* whatever a deep list left out (more than 64 gaps), ascending */
    for (int i = 0; i < n && k < n; i++) {
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = order[j] == i;
        if (!seen) order[k++] = i;
    }
}

/* log2(M) over 12: M from 1 to 4096 spans [0, 1], like the other inputs */
static double m_coord(int64_t M) { return log2((double)M) / 12.0; }

static void pool_add(mt_search_pool *p, const double *x, int d, int64_t M, double t)
{
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 256;
        double(*nx)[POOL_D] = realloc(p->x, (size_t)cap * sizeof *nx);
        double *nt = realloc(p->t, (size_t)cap * sizeof *nt);
        int64_t *nm = realloc(p->M, (size_t)cap * sizeof *nm);
        if (nx) p->x = nx;
        if (nt) p->t = nt;
        if (nm) p->M = nm;
        if (!nx || !nt || !nm) return; /* the pool only helps: losing a row is harmless */
        p->cap = cap;
    }
    memcpy(p->x[p->n], x, (size_t)d * sizeof *x);
    p->x[p->n][d] = m_coord(M);
    p->t[p->n] = t;
    p->M[p->n] = M;
    p->n++;
}

/* ---- the Bayesian proposal ---- */

/* The rows the model learns from: this M's observations, and with a pool
 * those of batch sizes within a factor of 3, up to a cap (the model is
 * O(n^3)). Each batch size's log times are centred on its own median, so
 * what transfers is which configs are relatively fast. */
#define MAX_ROWS 160

static double median_log(const double *t, const int64_t *Ms, int n, int64_t M)
{
    double v[512];
    int k = 0;
    for (int i = 0; i < n && k < 512; i++)
        if (Ms[i] == M && !isnan(t[i])) v[k++] = log(t[i]);
    if (!k) return NAN;
    for (int i = 1; i < k; i++) /* insertion sort: k is small */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double tmp = v[j];
            v[j] = v[j - 1];
            v[j - 1] = tmp;
        }
    return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

/* The winners of the nearest batch sizes already in the pool, one below
 * and one above, proposed right after the default: neighbouring batch
 * sizes often share their optimum, and a winner costs one evaluation to
 * check where the model may rank it low. */
static void suggest_neighbour_winners(mt_search *s)
{
    const mt_search_pool *p = s->pool;
    if (!p || !s->x) return;
    int64_t below = 0, above = 0;
    for (int i = 0; i < p->n; i++) {
        if (isnan(p->t[i])) continue;
        if (p->M[i] < s->M && p->M[i] > below) below = p->M[i];
        if (p->M[i] > s->M && (!above || p->M[i] < above)) above = p->M[i];
    }
    int64_t side[2] = {below, above};
    for (int k = 0; k < 2; k++) {
        if (!side[k]) continue;
        int best = -1;
        for (int i = 0; i < p->n; i++)
            if (p->M[i] == side[k] && !isnan(p->t[i]) && (best < 0 || p->t[i] < p->t[best])) best = i;
        for (int c = 0; best >= 0 && c < s->n; c++)
            if (!memcmp(&s->x[(size_t)c * s->d], p->x[best], (size_t)s->d * sizeof(double))) {
                mt_search_suggest(s, c);
                break;
            }
    }
}

/* 1 when a and b differ in one or two parameters */
static int near_apart(const mt_config *a, const mt_config *b, int np)
{
    int diff = 0;
    for (int i = 0; i < np; i++) diff += a->v[i] != b->v[i];
    return diff >= 1 && diff <= 2;
}

struct keyed { double key; int idx; };
static int by_desc(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    return x->key < y->key ? 1 : x->key > y->key ? -1 : x->idx - y->idx;
}
/* idx sorted by key, largest first (ties by index: deterministic) */
static int sort_by_desc(int *idx, int n, const double *key)
{
    if (n < 1) return 0;
    struct keyed *k = malloc((size_t)n * sizeof *k);
    if (!k) return -1;
    for (int i = 0; i < n; i++) k[i] = (struct keyed){key[idx[i]], idx[i]};
    qsort(k, (size_t)n, sizeof *k, by_desc);
    for (int i = 0; i < n; i++) idx[i] = k[i].idx;
    free(k);
    return 0;
}

/* The q unmeasured points with the largest expected improvement of
 * log(time), best first, into picks; their count (0 when nothing
 * succeeded yet or the model cannot be fitted). */
static int propose_bayes_top(mt_search *s, int local, int *picks, int q)
{
    int d = s->d, dd = s->pool ? d + 1 : d, npick = 0, rows = 0;
    double pick_ei[MT_SEARCH_MAX_PEEK];
    if (q < 1) return 0;
    if (q > MT_SEARCH_MAX_PEEK) q = MT_SEARCH_MAX_PEEK;
    double *X = malloc((size_t)MAX_ROWS * (size_t)POOL_D * sizeof *X), *y = malloc((size_t)MAX_ROWS * sizeof *y);
    double *rt = malloc((size_t)MAX_ROWS * sizeof *rt);
    int64_t *rm = malloc((size_t)MAX_ROWS * sizeof *rm);
    double *xc = malloc((size_t)POOL_D * sizeof *xc);
    if (!X || !y || !rt || !rm || !xc) goto out;
    /* this M's own observations first: they matter most */
    for (int i = 0; i < s->nobs && rows < MAX_ROWS; i++, rows++) {
        memcpy(&X[(size_t)rows * dd], &s->x[(size_t)s->obs[i] * d], (size_t)d * sizeof *X);
        if (s->pool) X[(size_t)rows * dd + d] = m_coord(s->M);
        rt[rows] = s->t[s->obs[i]];
        rm[rows] = s->M;
    }
    /* then neighbours, newest first */
    for (int i = s->pool ? s->pool->n - 1 : -1; i >= 0 && rows < MAX_ROWS; i--) {
        const mt_search_pool *p = s->pool;
        double ratio = (double)p->M[i] / (double)s->M;
        if (p->M[i] == s->M || ratio > 3.0 || ratio < 1.0 / 3.0) continue;
        memcpy(&X[(size_t)rows * dd], p->x[i], (size_t)dd * sizeof *X);
        rt[rows] = p->t[i];
        rm[rows] = p->M[i];
        rows++;
    }
    /* targets: log time centred per batch size; failures clearly worse
     * than the worst success of their batch size, so that the model stops
     * proposing their neighbours */
    double best = INFINITY;
    int own_ok = 0;
    for (int i = 0; i < rows; i++) {
        double med = median_log(rt, rm, rows, rm[i]);
        if (isnan(med)) {
            y[i] = NAN;
            continue;
        }
        double worst = -INFINITY;
        for (int j = 0; j < rows; j++)
            if (rm[j] == rm[i] && !isnan(rt[j])) worst = fmax(worst, log(rt[j]) - med);
        y[i] = isnan(rt[i]) ? worst + 1.0 : log(rt[i]) - med;
        if (rm[i] == s->M && !isnan(rt[i])) {
            own_ok++;
            best = fmin(best, y[i]);
        }
    }
    if (!own_ok) goto out;
    /* rows of a batch size with no success carry no information */
    int k = 0;
    for (int i = 0; i < rows; i++)
        if (!isnan(y[i])) {
            if (k != i) {
                memmove(&X[(size_t)k * dd], &X[(size_t)i * dd], (size_t)dd * sizeof *X);
                y[k] = y[i];
            }
            k++;
        }
    rows = k;
    /* refitting the hyperparameters costs O(n^3) per try: every step
     * early, then every third */
    /* a full search of the hyperparameters at first and every 20
     * observations; in between a warm refit (neighbouring values) every
     * third, since the fit moves little from one step to the next */
    int optimize = 0;
    if (s->full_at < 0 || s->nobs - s->full_at >= 20) optimize = 1;
    else if (rows < 30 || s->nobs - s->fitted_at >= 3) optimize = 2;
    if (mt_gp_fit(&s->gp, X, y, rows, dd, optimize) != 0) goto out;
    if (optimize) s->fitted_at = s->nobs;
    if (optimize == 1) s->full_at = s->nobs;
    /* the unmeasured points, predicted together */
    int nc = 0, *cand = s->cand;
    double *xs = s->xs, *mu = s->mu, *sdv = s->sdv;
    for (int c = 0; c < s->n; c++) {
        if (s->state[c]) continue;
        if (local >= 0 && !near_apart(&s->pts[c], &s->pts[local], s->sp->nparams)) continue;
        memcpy(&xs[(size_t)nc * dd], &s->x[(size_t)c * d], (size_t)d * sizeof *xs);
        if (s->pool) xs[(size_t)nc * dd + d] = m_coord(s->M);
        cand[nc++] = c;
    }
    /* EI grows with the standard deviation, which has a cheap upper bound
     * (mt_gp_mean_many): rank the candidates by EI with that bound, then compute the
     * exact deviation (the O(n^2) part) chunk by chunk, best bound first,
     * until no remaining bound can beat the best exact EI. Same pick as
     * evaluating every point, at a fraction of the cost. */
    mt_gp_mean_many(&s->gp, xs, nc, mu, sdv);
    double xi = 0.01 * s->gp.ysd;
    for (int c = 0; c < nc; c++) sdv[c] = mt_ei(mu[c], sdv[c], best, xi); /* the bound */
    int *rank = s->rank;
    for (int c = 0; c < nc; c++) rank[c] = c;
    if (sort_by_desc(rank, nc, sdv) != 0) goto out;
    /* (the q best so far in pick_ei, descending; a chunk is skipped once
     * its best bound cannot enter them) */
    double cmu[64], csd[64], cx[64 * POOL_D];
    for (int at = 0; at < nc; at += 64) {
        if (npick == q && sdv[rank[at]] <= pick_ei[q - 1]) break;
        int m = nc - at < 64 ? nc - at : 64;
        for (int k = 0; k < m; k++) memcpy(&cx[(size_t)k * dd], &xs[(size_t)rank[at + k] * dd], (size_t)dd * sizeof *cx);
        if (mt_gp_predict_many(&s->gp, cx, m, cmu, csd) != 0) {
            npick = 0;
            goto out;
        }
        for (int k = 0; k < m; k++) {
            double ei = mt_ei(cmu[k], csd[k], best, xi);
            if (npick == q && ei <= pick_ei[q - 1]) continue;
            int at_pos = npick < q ? npick++ : q - 1;
            while (at_pos > 0 && pick_ei[at_pos - 1] < ei) {
                pick_ei[at_pos] = pick_ei[at_pos - 1];
                picks[at_pos] = picks[at_pos - 1];
                at_pos--;
            }
            pick_ei[at_pos] = ei;
            picks[at_pos] = cand[rank[at + k]];
        }
    }
    if (npick) s->last_ei = pick_ei[0] > 0 ? pick_ei[0] : 0;
out:
    free(X);
    free(y);
    free(rt);
    free(rm);
    free(xc);
    return npick;
}

/* The unmeasured point with the largest expected improvement of log(time);
 * -1 when nothing succeeded yet or the model cannot be fitted. */
static int propose_bayes(mt_search *s, int local)
{
    int pick;
    return propose_bayes_top(s, local, &pick, 1) == 1 ? pick : -1;
}

/* With neighbours in the pool the model knows the landscape already: a
 * short initial design. */
static int initial_design(const mt_search *s)
{
    if (!s->pool) return s->n_init;
    int near = 0;
    for (int i = 0; i < s->pool->n; i++) {
        double ratio = (double)s->pool->M[i] / (double)s->M;
        near += s->pool->M[i] != s->M && ratio <= 3.0 && ratio >= 1.0 / 3.0 && !isnan(s->pool->t[i]);
    }
    return near >= 10 ? 2 : s->n_init;
}

/* The last quarter of a budget of 8 or more, with an incumbent inc: the
 * model proposes among the incumbent's neighbours first. */
static int polishing(const mt_search *s, int inc)
{
    return inc >= 0 && s->budget >= 8 && s->proposed >= s->budget - s->budget / 4;
}

void mt_search_suggest(mt_search *s, int idx)
{
    if (s->kind == MT_STRATEGY_GRID || idx < 0 || idx >= s->n) return;
    for (int i = 0; i < s->nsugg; i++)
        if (s->sugg[i] == idx) return;
    int *ns = realloc(s->sugg, (size_t)(s->nsugg + 1) * sizeof *ns);
    if (!ns) return; /* a suggestion only helps: dropping one is harmless */
    s->sugg = ns;
    s->sugg[s->nsugg++] = idx;
}

int mt_search_next(mt_search *s, int *idx)
{
    if (s->proposed >= s->budget) return 0;
    /* at the first proposal, not at attach: a sweep attaches every batch
     * size's search before any is measured */
    /* (not under MT_SEARCH_NEIGHBOUR_BUDGET: two of a handful of
     * evaluations cost the model more than the winners bring) */
    if (!s->asked && s->kind == MT_STRATEGY_BAYES && s->budget >= MT_SEARCH_NEIGHBOUR_BUDGET) suggest_neighbour_winners(s);
    s->asked = 1;
    int pick = -1;
    /* the default first, then the suggestions, then the strategy */
    if (s->def_idx >= 0 && !s->state[s->def_idx] && s->kind != MT_STRATEGY_GRID) pick = s->def_idx;
    for (int i = 0; pick < 0 && i < s->nsugg; i++)
        if (!s->state[s->sugg[i]]) pick = s->sugg[i];
    if (pick >= 0) {
        s->state[pick] = 1;
        s->proposed++;
        *idx = pick;
        return 1;
    }
    if (s->kind != MT_STRATEGY_BAYES || s->proposed < initial_design(s)) {
        /* the fixed order; a point already proposed (a resumed search) is skipped */
        for (int k = 0; k < s->n && pick < 0; k++)
            if (!s->state[s->order[k]]) pick = s->order[k];
    } else {
        /* the last quarter of the budget polishes: the incumbent's
         * unmeasured neighbours (one or two parameters changed), ranked
         * by the model. Replays showed the search finding the right tile
         * and missing the launch order or grid size that makes the last 2
         * to 10 % (bench/results/2026-11-23-replay-full), and pairs that
         * only pay together (BLOCK_SIZE_K with num_stages, BLOCK_SIZE_N
         * with num_warps: bench/results/2026-11-23-replay-v2) */
        int inc = mt_search_best(s, NULL);
        if (polishing(s, inc)) pick = propose_bayes(s, inc);
        if (pick < 0) pick = propose_bayes(s, -1);
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

int mt_search_budget(const mt_search *s) { return s->budget; }

static int peek_add(const mt_search *s, int *out, int n, int q, int idx)
{
    if (n >= q || idx < 0 || s->state[idx]) return n;
    for (int i = 0; i < n; i++)
        if (out[i] == idx) return n;
    out[n] = idx;
    return n + 1;
}

int mt_search_peek(mt_search *s, int *out, int q)
{
    if (q > MT_SEARCH_MAX_PEEK) q = MT_SEARCH_MAX_PEEK;
    int left = s->budget - s->proposed, n = 0;
    if (q > left) q = left;
    if (q <= 0) return 0;
    /* as mt_search_next proposes: the default, the suggestions, then the
     * fixed order or the model */
    if (s->kind != MT_STRATEGY_GRID) n = peek_add(s, out, n, q, s->def_idx);
    for (int i = 0; i < s->nsugg && n < q; i++) n = peek_add(s, out, n, q, s->sugg[i]);
    if (s->kind == MT_STRATEGY_BAYES && s->proposed + n >= initial_design(s)) {
        int top[MT_SEARCH_MAX_PEEK], inc = mt_search_best(s, NULL), k = 0;
        /* the model's ranking without a new measurement. The peek leaves
         * the model as it found it (hyperparameters, fit counters, the
         * last expected improvement): with or without peeks, a search
         * proposes the same points. */
        double ei = s->last_ei, noise = s->gp.noise, ls[MT_GP_MAXD];
        int fitted_at = s->fitted_at, full_at = s->full_at;
        memcpy(ls, s->gp.ls, sizeof ls);
        if (polishing(s, inc)) k = propose_bayes_top(s, inc, top, q);
        for (int i = 0; i < k; i++) n = peek_add(s, out, n, q, top[i]);
        if (n < q && (k = propose_bayes_top(s, -1, top, q)) > 0)
            for (int i = 0; i < k; i++) n = peek_add(s, out, n, q, top[i]);
        s->last_ei = ei, s->gp.noise = noise, s->fitted_at = fitted_at, s->full_at = full_at;
        memcpy(s->gp.ls, ls, sizeof ls);
    }
    for (int k = 0; k < s->n && n < q; k++) n = peek_add(s, out, n, q, s->order[k]);
    return n;
}

void mt_search_report(mt_search *s, int idx, double time_us)
{
    if (idx < 0 || idx >= s->n || s->state[idx] == 2) return;
    s->state[idx] = 2;
    s->t[idx] = time_us > 0 ? time_us : NAN;
    s->obs[s->nobs++] = idx;
    if (s->pool && s->x) pool_add(s->pool, &s->x[(size_t)idx * s->d], s->d, s->M, s->t[idx]);
}

double mt_search_expected_gain(const mt_search *s)
{
    /* EI is in log time: an improvement of d makes the time exp(-d) times */
    return s->kind == MT_STRATEGY_BAYES && s->last_ei >= 0 ? 1.0 - exp(-s->last_ei) : NAN;
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
