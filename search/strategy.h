/*
 * Search strategies over the valid points of one batch size: propose the
 * next point to measure, learn from what was measured. The sweep and the
 * replay harness drive them the same way, so a strategy replayed on a
 * recorded grid behaves as it would on the device.
 */
#ifndef MT_STRATEGY_H
#define MT_STRATEGY_H

#include <stdint.h>

#include "space.h"

enum mt_strategy_kind { MT_STRATEGY_GRID = 0, MT_STRATEGY_RANDOM = 1, MT_STRATEGY_BAYES = 2 };

/* "grid", "random", "bayes" -> kind; -1 when unknown */
int mt_strategy_parse(const char *name);
const char *mt_strategy_name(int kind);

typedef struct mt_search mt_search;

/* A search over pts[0..n-1] (the valid points, in enumeration order) for
 * batch size M. The default config (when among pts) is always proposed
 * first. budget <= 0: every point. The points and space must outlive it. */
int mt_search_new(mt_search **out, int kind, const mt_space *sp, const mt_config *pts, int n, const mt_config *def,
                  int64_t M, int budget, uint64_t seed);
void mt_search_free(mt_search *s);

/* Propose pts[idx] early: right after the default, before the initial
 * design (random and bayes; the grid keeps its order). Warm starts use it
 * for what is known elsewhere: vLLM's tuned configs for the device,
 * winners of the same problem on devices of the same architecture. */
void mt_search_suggest(mt_search *s, int idx);

/* The index of the next point to measure; 0 when the search is done. */
int mt_search_next(mt_search *s, int *idx);

/* Up to q (at most MT_SEARCH_MAX_PEEK) unproposed points that the search
 * is likely to propose next, most likely first, into out; their count.
 * Proposes nothing: a sweep compiles them ahead, in parallel, while the
 * proposals come one at a time. For bayes, the model's best expected
 * improvements as it stands (a measurement reported later reorders them). */
#define MT_SEARCH_MAX_PEEK 64
/* The points the search proposes at most (its budget, capped at the points). */
int mt_search_budget(const mt_search *s);
int mt_search_peek(mt_search *s, int *out, int q);

/* What measuring pts[idx] gave: its median time, or NAN when it failed. */
void mt_search_report(mt_search *s, int idx, double time_us);

/* What the searches of a sweep's batch sizes have learned, shared: a
 * Bayesian search attached to a pool also models the measurements of
 * neighbouring batch sizes, with log2(M) as an input, so that what was
 * measured at M=64 informs M=48 and M=96. */
typedef struct mt_search_pool mt_search_pool;
int mt_search_pool_new(mt_search_pool **out);
void mt_search_pool_free(mt_search_pool *p);
/* From now on s reports into pool and reads its neighbours from it. The
 * pool must outlive s. Searches attached to one pool share one space. */
void mt_search_attach(mt_search *s, mt_search_pool *pool);

/* The order in which a list of n batch sizes (ascending) is searched.
 * Bayes with at least MT_SEARCH_NEIGHBOUR_BUDGET evaluations per batch size
 * (min_budget) goes coarse to fine (the ends, then midpoints), so that a
 * batch size sees the winners of a neighbour on each side, which its search
 * proposes right after the default. Smaller budgets, grid and random go
 * ascending: on the CPU grid's 5 to 16 evaluations per batch size the two
 * suggestions cost more than they bring (bench/results/2026-11-23-replay-order).
 * order gets n indices. */
#define MT_SEARCH_NEIGHBOUR_BUDGET 20
void mt_search_order(int kind, int n, int min_budget, int *order);

/* The best reported so far (index, time); -1 when none succeeded. */
int mt_search_best(const mt_search *s, double *time_us);
/* The model's expected remaining gain: the expected improvement of its
 * latest proposal, as a fraction of the incumbent's time (0.01: the model
 * expects the next variant to beat the best by 1 % on average). NAN before
 * the model proposes, and for grid and random. */
double mt_search_expected_gain(const mt_search *s);

#endif
