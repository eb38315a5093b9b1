/* Search strategies on synthetic spaces with a known optimum: the default
 * first, determinism for a seed, the budget, and the Bayesian search beating
 * random search where failures wall off part of the space. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "moetune/moetune.h"
#include "space.h"
#include "strategy.h"

static int valid_all(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    (void)sp, (void)c, (void)x, (void)why, (void)n;
    return 1;
}
static void def0(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    (void)sp, (void)x;
    memset(out, 0, sizeof *out);
    out->v[0] = 1;
    out->v[1] = 1;
}

/* 16 x 16 points; time is smooth with its minimum at (11, 5); points with
 * a >= 14 fail. */
static double truth(const mt_config *c)
{
    if (c->v[0] >= 14) return NAN;
    double a = c->v[0] - 11, b = c->v[1] - 5;
    return 100.0 * exp(0.02 * (a * a + 2 * b * b)) + 3.0 * sin(c->v[0] * 1.7);
}

/* another landscape: its minimum at (3, 12) */
static double truth_far(const mt_config *c)
{
    double a = c->v[0] - 3, b = c->v[1] - 12;
    return 100.0 + a * a + b * b;
}

/* peek > 0: before each proposal after the first, peek that many points
 * (as a sweep does to compile them ahead): the proposal must be the
 * peek's first, the peeked points unproposed and distinct. */
static double run_peek(int kind, const mt_space *sp, const mt_config *pts, int n, int budget, uint64_t seed, int *seq,
                       int peek)
{
    mt_search *s;
    mt_config def;
    def0(sp, NULL, &def);
    CHECK(mt_search_new(&s, kind, sp, pts, n, &def, 64, budget, seed) == MT_OK, "new");
    int idx, k = 0, pk[MT_SEARCH_MAX_PEEK], np = 0;
    char *proposed = calloc((size_t)n, 1);
    while (mt_search_next(s, &idx)) {
        if (np > 0)
            CHECK(idx == pk[0], "%s: proposal %d is %d, its peek said %d first", mt_strategy_name(kind), k, idx, pk[0]);
        proposed[idx] = 1;
        if (seq) seq[k] = idx;
        k++;
        mt_search_report(s, idx, truth(&pts[idx]));
        if (peek > 0) {
            np = mt_search_peek(s, pk, peek);
            int want = budget - k < peek ? budget - k : peek;
            CHECK(np == want, "%s: a peek of %d with %d left gave %d", mt_strategy_name(kind), peek, budget - k, np);
            for (int i = 0; i < np; i++) {
                CHECK(pk[i] >= 0 && pk[i] < n && !proposed[pk[i]], "%s peeked a proposed point", mt_strategy_name(kind));
                for (int j = 0; j < i; j++) CHECK(pk[i] != pk[j], "%s peeked a point twice", mt_strategy_name(kind));
            }
        }
    }
    free(proposed);
    CHECK(k == budget, "%s proposed %d of a budget of %d", mt_strategy_name(kind), k, budget);
    /* the expected remaining gain: the model's, a fraction in [0, 1) */
    double gain = mt_search_expected_gain(s);
    if (kind == MT_STRATEGY_BAYES) CHECK(gain >= 0 && gain < 1, "bayes expected gain %g", gain);
    else CHECK(isnan(gain), "%s has no model, yet a gain %g", mt_strategy_name(kind), gain);
    double best;
    CHECK(mt_search_best(s, &best) >= 0, "a best");
    mt_search_free(s);
    return best;
}

static double run(int kind, const mt_space *sp, const mt_config *pts, int n, int budget, uint64_t seed, int *seq)
{
    return run_peek(kind, sp, pts, n, budget, seed, seq, 0);
}

int main(void)
{
    mt_space sp;
    memset(&sp, 0, sizeof sp);
    sp.backend = "test";
    sp.nparams = 2;
    sp.params[0] = (mt_param_def){"a", 16, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
    sp.params[1] = (mt_param_def){"b", 16, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
    sp.valid = valid_all;
    sp.default_config = def0;
    mt_space_ctx ctx = {0};
    mt_config *pts;
    int n = mt_space_enumerate(&sp, &ctx, &pts);
    CHECK(n == 256, "256 points");
    double opt = INFINITY;
    for (int i = 0; i < n; i++)
        if (!isnan(truth(&pts[i])) && truth(&pts[i]) < opt) opt = truth(&pts[i]);

    CHECK(mt_strategy_parse("bayes") == MT_STRATEGY_BAYES && mt_strategy_parse("anneal") < 0, "names");
    for (int kind = 0; kind < 3; kind++) {
        int a[40], b[40];
        run(kind, &sp, pts, n, 40, 7, a);
        run(kind, &sp, pts, n, 40, 7, b);
        CHECK(memcmp(a, b, sizeof a) == 0, "%s is deterministic for a seed", mt_strategy_name(kind));
        CHECK(pts[a[0]].v[0] == 1 && pts[a[0]].v[1] == 1, "%s proposes the default first", mt_strategy_name(kind));
        for (int i = 0; i < 40; i++)
            for (int j = i + 1; j < 40; j++) CHECK(a[i] != a[j], "%s proposed a point twice", mt_strategy_name(kind));
    }
    /* peeking changes nothing: the same proposals with peeks of 1 and 16 */
    for (int kind = 0; kind < 3; kind++)
        for (int q = 1; q <= 16; q += 15) {
            int a[40], b[40];
            run(kind, &sp, pts, n, 40, 7, a);
            run_peek(kind, &sp, pts, n, 40, 7, b, q);
            CHECK(memcmp(a, b, sizeof a) == 0, "%s proposes other points when peeked %d at a time", mt_strategy_name(kind), q);
        }
    int c[40];
    run(MT_STRATEGY_RANDOM, &sp, pts, n, 40, 8, c);
    int a7[40];
    run(MT_STRATEGY_RANDOM, &sp, pts, n, 40, 7, a7);
    CHECK(memcmp(a7, c, sizeof c) != 0, "another seed, another order");

    /* 20 seeds, a budget of 30 (12 % of the points) */
    double sum_bayes = 0, sum_random = 0;
    int bayes_within_2pct = 0;
    for (uint64_t sd = 0; sd < 20; sd++) {
        double fb = run(MT_STRATEGY_BAYES, &sp, pts, n, 30, sd, NULL);
        double fr = run(MT_STRATEGY_RANDOM, &sp, pts, n, 30, sd, NULL);
        sum_bayes += fb;
        sum_random += fr;
        bayes_within_2pct += fb <= opt * 1.02;
    }
    printf("bayes mean %.3f, random mean %.3f, optimum %.3f, bayes within 2%%: %d of 20\n", sum_bayes / 20, sum_random / 20, opt, bayes_within_2pct);
    CHECK(sum_bayes < sum_random, "bayes (mean %.2f) beats random (mean %.2f); optimum %.2f", sum_bayes / 20,
          sum_random / 20, opt);
    CHECK(bayes_within_2pct >= 15, "bayes within 2 %% of the optimum in %d of 20 seeds", bayes_within_2pct);
    /* the pool: having searched M=64, a search at M=96 on the same
     * landscape gets there sooner than one that starts from nothing */
    int sooner = 0, later = 0;
    for (uint64_t sd = 0; sd < 10; sd++) {
        int evals[2];
        for (int joint = 0; joint < 2; joint++) {
            mt_search_pool *pool = NULL;
            CHECK(mt_search_pool_new(&pool) == MT_OK, "pool");
            mt_config def;
            def0(&sp, NULL, &def);
            mt_search *first, *second;
            mt_search_new(&first, MT_STRATEGY_BAYES, &sp, pts, n, &def, 64, 30, sd);
            if (joint) mt_search_attach(first, pool);
            int idx;
            while (mt_search_next(first, &idx)) mt_search_report(first, idx, truth(&pts[idx]));
            mt_search_new(&second, MT_STRATEGY_BAYES, &sp, pts, n, &def, 96, 30, sd + 100);
            if (joint) mt_search_attach(second, pool);
            evals[joint] = 31;
            for (int k = 1; mt_search_next(second, &idx); k++) {
                mt_search_report(second, idx, truth(&pts[idx]));
                if (!isnan(truth(&pts[idx])) && truth(&pts[idx]) <= opt * 1.02 && evals[joint] > 30) evals[joint] = k;
            }
            mt_search_free(first);
            mt_search_free(second);
            mt_search_pool_free(pool);
        }
        sooner += evals[1] < evals[0];
        later += evals[1] > evals[0];
    }
    printf("with the pool: sooner in %d of 10 seeds, later in %d\n", sooner, later);
    CHECK(sooner > later, "the pool helps: sooner in %d seeds, later in %d", sooner, later);
    /* the order of the batch sizes: bayes coarse to fine, the others
     * ascending; always a permutation */
    int ord[40];
    mt_search_order(MT_STRATEGY_BAYES, 5, 20, ord);
    CHECK(ord[0] == 0 && ord[1] == 4 && ord[2] == 2 && ord[3] == 1 && ord[4] == 3, "bayes order of 5: %d %d %d %d %d",
          ord[0], ord[1], ord[2], ord[3], ord[4]);
    mt_search_order(MT_STRATEGY_GRID, 5, 20, ord);
    CHECK(ord[0] == 0 && ord[2] == 2 && ord[4] == 4, "grid goes ascending");
    mt_search_order(MT_STRATEGY_BAYES, 5, 19, ord);
    CHECK(ord[1] == 1 && ord[4] == 4, "bayes with small budgets goes ascending");
    for (int nn = 1; nn <= 40; nn++) {
        mt_search_order(MT_STRATEGY_BAYES, nn, 100, ord);
        int seen[40] = {0}, perm = 1;
        for (int i = 0; i < nn; i++) perm &= ord[i] >= 0 && ord[i] < nn && !seen[ord[i]]++;
        CHECK(perm, "the order of %d batch sizes is a permutation", nn);
    }
    /* the winners of the searched neighbours, below then above, come right
     * after the default */
    {
        mt_search_pool *pool = NULL;
        CHECK(mt_search_pool_new(&pool) == MT_OK, "pool");
        mt_config def;
        def0(&sp, NULL, &def);
        int64_t side_m[2] = {4, 16};
        int won[2] = {-1, -1};
        for (int k = 0; k < 2; k++) {
            mt_search *nb;
            mt_search_new(&nb, MT_STRATEGY_BAYES, &sp, pts, n, &def, side_m[k], 20, 7 + (uint64_t)k);
            mt_search_attach(nb, pool);
            int idx;
            /* a landscape per side, so that the two winners differ */
            while (mt_search_next(nb, &idx))
                mt_search_report(nb, idx, k ? truth(&pts[idx]) : truth_far(&pts[idx]));
            won[k] = mt_search_best(nb, NULL);
            mt_search_free(nb);
        }
        mt_search *mid;
        mt_search_new(&mid, MT_STRATEGY_BAYES, &sp, pts, n, &def, 8, 20, 3);
        mt_search_attach(mid, pool);
        int first3[3] = {-1, -1, -1};
        for (int k = 0; k < 3 && mt_search_next(mid, &first3[k]); k++) mt_search_report(mid, first3[k], truth(&pts[first3[k]]));
        CHECK(won[0] != won[1] && first3[1] == won[0] && first3[2] == won[1],
              "after the default: M=4's winner %d then M=16's %d; proposed %d, %d", won[0], won[1], first3[1], first3[2]);
        mt_search_free(mid);
        mt_search_pool_free(pool);
    }
    free(pts);
    return check_report("test_strategy");
}
