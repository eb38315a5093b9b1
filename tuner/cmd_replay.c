/* moetune replay: run a search strategy against a recorded grid (the CSV of
 * `moetune export --format grid`) with no hardware: every proposal is
 * answered from the recording, exactly as the sweep drives a strategy. */
#include <getopt.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cmds.h"
#include "family.h"
#include "moetune/moetune.h"
#include "space.h"
#include "strategy.h"
#include "util.h"

static const char usage[] =
    "usage: moetune replay GRID.csv [--strategy grid|random|bayes] [--seeds N] [--budget B] [--json]\n"
    "\n"
    "Replay a strategy on a recorded grid (moetune export --format grid), with no\n"
    "hardware: fused MoE's (per batch size M) or attention's (per batch and\n"
    "context). For each point: the grid optimum, the evaluations needed to\n"
    "come within 2 % and 1 % of it (median over seeds; null when the budget ran out\n"
    "first), and the score (best found - random) / (optimum - random) at the budget,\n"
    "where 'random' is random search's best at the same budget, averaged over seeds.\n"
    "  --strategy S   default bayes\n"
    "  --seeds N      default 20\n"
    "  --budget B     evaluations per M (default: --fraction of that M's points, at least 5)\n"
    "  --fraction F   the budget as a fraction of each M's points (default 0.05)\n"
    "  --jobs N       replay the seeds in N processes (default 1)\n"
    "  --per-m        bayes: model each batch size alone (default: one model learns\n"
    "                 from neighbouring batch sizes too, as the sweep does)\n"
    "  --partial      replay a grid that export marked partial (one a search or a\n"
    "                 budget measured): refused without it, since a strategy scores\n"
    "                 against the points that grid holds, not against the space\n";

#define MAXP MT_SPACE_MAX_PARAMS

typedef struct grid_m {
    int64_t M, p2; /* the point: M, or batch and context */
    int64_t work;  /* what the model takes: the point's fields' product */
    int n, cap, def;
    mt_config *pts;
    double *t;
} grid_m;

static int always_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    (void)sp, (void)c, (void)x, (void)why, (void)n;
    return 1;
}

static void no_default(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    (void)sp, (void)x;
    memset(out, 0, sizeof *out);
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int g_np;
static int cmp_cfg(const void *a, const void *b)
{
    const mt_config *x = a, *y = b;
    for (int p = 0; p < g_np; p++)
        if (x->v[p] != y->v[p]) return x->v[p] < y->v[p] ? -1 : 1;
    return 0;
}

/* Sort a batch size's points lexicographically, times and default along. */
static void sort_points(grid_m *m, int np)
{
    struct pt { mt_config c; double t; int def; } *tmp = malloc((size_t)m->n * sizeof *tmp);
    if (!tmp) return;
    for (int i = 0; i < m->n; i++) {
        tmp[i].c = m->pts[i];
        tmp[i].t = m->t[i];
        tmp[i].def = i == m->def;
    }
    g_np = np;
    /* mt_config leads the struct, so the comparison reads it */
    if (m->n > 1) qsort(tmp, (size_t)m->n, sizeof *tmp, cmp_cfg);
    m->def = -1;
    for (int i = 0; i < m->n; i++) {
        m->pts[i] = tmp[i].c;
        m->t[i] = tmp[i].t;
        if (tmp[i].def) m->def = i;
    }
    free(tmp);
}

/* Parse the CSV into per-M point lists and a space whose values are those
 * seen in the file. */
static int load_grid(const char *path, mt_space *sp, char names[][32], grid_m **out, int *nm, int *partial, int *npoint,
                     char *err, size_t n)
{
    char *text;
    size_t len;
    if (mt_read_file(path, &text, &len, err, n) != MT_OK) return -1;
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    int np = 0;
    /* comment lines first; "# partial" marks a grid that lacks points */
    *partial = 0;
    while (line && line[0] == '#') {
        if (!strncmp(line, "# partial", 9)) *partial = 1;
        line = strtok_r(NULL, "\n", &save);
    }
    /* header: the point's fields (a family's: M; batch, ctx), the
     * parameters, median_us, status, is_default */
    char *cols[MAXP + 6];
    int nc = 0;
    for (char *c = line; c && nc < MAXP + 6;) {
        cols[nc++] = c;
        c = strchr(c, ',');
        if (c) *c++ = 0;
    }
    int npc = 0;
    for (int k = 0; k < mt_nfamilies && !npc; k++) {
        const mt_family *f = mt_families[k];
        int match = nc > f->npoint;
        for (int q = 0; match && q < f->npoint; q++) match = !strcmp(cols[q], f->point[q]);
        if (match) npc = f->npoint;
    }
    if (!npc) {
        snprintf(err, n, "'%s' is not a grid CSV: its first line must start with a family's point columns (M, or "
                         "batch,ctx)", path);
        free(text);
        return -1;
    }
    *npoint = npc;
    np = nc - 3 - npc;
    if (np < 1 || strcmp(cols[nc - 3], "median_us") || strcmp(cols[nc - 2], "status") ||
        strcmp(cols[nc - 1], "is_default")) {
        snprintf(err, n, "'%s': the header must be the point, parameters, median_us, status, is_default", path);
        free(text);
        return -1;
    }
    memset(sp, 0, sizeof *sp);
    sp->backend = "replay";
    sp->nparams = np;
    for (int p = 0; p < np; p++) {
        snprintf(names[p], 32, "%s", cols[npc + p]);
        sp->params[p].name = names[p];
    }
    sp->valid = always_valid;
    sp->default_config = no_default;
    grid_m *g = NULL;
    int ng = 0, lineno = 1;
    while ((line = strtok_r(NULL, "\n", &save))) {
        lineno++;
        char *f[MAXP + 6];
        int k = 0;
        for (char *c = line; c && k < MAXP + 6;) {
            f[k++] = c;
            c = strchr(c, ',');
            if (c) *c++ = 0;
        }
        if (k != nc) {
            snprintf(err, n, "'%s' line %d: %d fields, the header has %d", path, lineno, k, nc);
            goto bad;
        }
        int64_t M = strtoll(f[0], NULL, 10), p2 = npc > 1 ? strtoll(f[1], NULL, 10) : 0;
        int gi = -1;
        for (int i = 0; i < ng; i++)
            if (g[i].M == M && g[i].p2 == p2) gi = i;
        if (gi < 0) {
            grid_m *ngp = realloc(g, (size_t)(ng + 1) * sizeof *g);
            if (!ngp) goto oom;
            g = ngp;
            memset(&g[ng], 0, sizeof g[ng]);
            g[ng].M = M;
            g[ng].p2 = p2;
            g[ng].work = M * (p2 > 0 ? p2 : 1);
            g[ng].def = -1;
            gi = ng++;
        }
        grid_m *m = &g[gi];
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 64;
            mt_config *pp = realloc(m->pts, (size_t)m->cap * sizeof *pp);
            double *tt = realloc(m->t, (size_t)m->cap * sizeof *tt);
            if (pp) m->pts = pp;
            if (tt) m->t = tt;
            if (!pp || !tt) goto oom;
        }
        memset(&m->pts[m->n], 0, sizeof m->pts[m->n]);
        for (int p = 0; p < np; p++) m->pts[m->n].v[p] = atoi(f[npc + p]);
        /* an aborted row's partial figure stands: the sweep stored it as
         * over the abort threshold, so it never wins */
        m->t[m->n] = (!strcmp(f[nc - 2], "ok") || !strcmp(f[nc - 2], "aborted")) && *f[nc - 3]
                         ? strtod(f[nc - 3], NULL) : NAN;
        if (atoi(f[nc - 1])) m->def = m->n;
        m->n++;
    }
    /* the points in the space's enumeration order, whatever the file's:
     * an export sorted by time would hand the grid strategy the answer */
    for (int i = 0; i < ng; i++) sort_points(&g[i], np);
    /* each parameter's values: those in the file, sorted (an ordinal scale) */
    for (int p = 0; p < np; p++) {
        int vals[4096], nv = 0;
        for (int i = 0; i < ng; i++)
            for (int j = 0; j < g[i].n; j++) {
                int v = g[i].pts[j].v[p], seen = 0;
                for (int q = 0; q < nv; q++) seen |= vals[q] == v;
                if (!seen && nv < 4096) vals[nv++] = v;
            }
        if (nv > MT_SPACE_MAX_VALUES) {
            snprintf(err, n, "'%s': parameter '%s' takes %d values, more than %d", path, names[p], nv,
                     MT_SPACE_MAX_VALUES);
            goto bad;
        }
        if (nv > 1) qsort(vals, (size_t)nv, sizeof *vals, cmp_int);
        sp->params[p].nvalues = nv;
        memcpy(sp->params[p].values, vals, (size_t)nv * sizeof *vals);
    }
    free(text);
    *out = g;
    *nm = ng;
    return 0;
oom:
    snprintf(err, n, "out of memory");
bad:
    for (int i = 0; i < ng; i++) {
        free(g[i].pts);
        free(g[i].t);
    }
    free(g);
    free(text);
    return -1;
}

/* One run: the best found after each evaluation. */
static int run_one(int kind, const mt_space *sp, const grid_m *m, int budget, uint64_t seed, mt_search_pool *pool,
                   double *best_after)
{
    mt_search *s;
    if (mt_search_new(&s, kind, sp, m->pts, m->n, m->def >= 0 ? &m->pts[m->def] : NULL, m->work, budget, seed) != MT_OK)
        return -1;
    if (pool) mt_search_attach(s, pool);
    int idx, k = 0;
    double best = INFINITY;
    while (k < budget && mt_search_next(s, &idx)) {
        mt_search_report(s, idx, m->t[idx]);
        if (!isnan(m->t[idx]) && m->t[idx] < best) best = m->t[idx];
        best_after[k++] = best;
    }
    mt_search_free(s);
    return k;
}

struct seed_result { int seed, m; double e2, e1, found; };

/* One seed at the batch size searched pi-th (order: mt_search_order, as the
 * sweep goes). A joint search learns from the batch sizes searched before
 * it in the same seed: their runs are replayed into its pool first (cached
 * between calls for the same seed, in increasing pi). */
static int replay_seed(int kind, const mt_space *sp, const grid_m *g, int ng, const int *order, int pi, const int *B,
                       const double *opt, int sd, int joint, double *curve, struct seed_result *r)
{
    static mt_search_pool *pool;
    static int pool_seed = -1, pool_next = 0;
    if (pi < 0) { /* the end: release the cached pool */
        mt_search_pool_free(pool);
        pool = NULL;
        pool_seed = -1;
        return 0;
    }
    (void)ng;
    const int i = order[pi];
    if (joint && (pool_seed != sd || pool_next > pi)) {
        mt_search_pool_free(pool);
        pool = NULL;
        if (mt_search_pool_new(&pool) != MT_OK) return -1;
        pool_seed = sd;
        pool_next = 0;
    }
    /* the batch sizes searched before, into the pool */
    while (joint && pool_next < pi) {
        const int j = order[pool_next];
        if (run_one(kind, sp, &g[j], B[j], 1000 + (uint64_t)sd, pool, curve) < 0) return -1;
        pool_next++;
    }
    int k = run_one(kind, sp, &g[i], B[i], 1000 + (uint64_t)sd, joint ? pool : NULL, curve);
    if (k < 0) return -1;
    if (joint) pool_next = pi + 1;
    r->e2 = r->e1 = INFINITY;
    for (int q = k - 1; q >= 0; q--) {
        if (curve[q] <= opt[i] * 1.02) r->e2 = q + 1;
        if (curve[q] <= opt[i] * 1.01) r->e1 = q + 1;
    }
    r->found = k > 0 ? curve[k - 1] : INFINITY;
    return 0;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {{"strategy", required_argument, 0, 's'}, {"seeds", required_argument, 0, 'n'},
                                         {"budget", required_argument, 0, 'b'}, {"json", no_argument, 0, 'j'},
                                         {"fraction", required_argument, 0, 'f'}, {"per-m", no_argument, 0, 'p'},
                                         {"jobs", required_argument, 0, 'J'}, {"partial", no_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int kind = MT_STRATEGY_BAYES, json = 0, joint = 1, c, st, allow_partial = 0, partial = 0;
    int64_t seeds = 20, budget = 0, jobs = 1;
    double fraction = 0.05;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        st = 0;
        if (c == 's') {
            if ((kind = mt_strategy_parse(optarg)) < 0)
                return mt_usage_error("replay", "--strategy '%s': expected grid, random or bayes", optarg);
        } else if (c == 'n') st = mt_parse_int_opt("replay", "--seeds", optarg, 1, 10000, &seeds);
        else if (c == 'b') st = mt_parse_int_opt("replay", "--budget", optarg, 1, 1 << 20, &budget);
        else if (c == 'j') json = 1;
        else if (c == 'J') st = mt_parse_int_opt("replay", "--jobs", optarg, 1, 256, &jobs);
        else if (c == 'p') joint = 0;
        else if (c == 'P') allow_partial = 1;
        else if (c == 'f') {
            char *end;
            fraction = strtod(optarg, &end);
            if (*end || !(fraction > 0 && fraction <= 1))
                return mt_usage_error("replay", "--fraction '%s': expected a number in (0, 1]", optarg);
        }
        else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("replay", 0);
        else return mt_usage_error("replay", "unknown option '%s'", argv[optind - 1]);
        if (st) return st;
    }
    if (optind != argc - 1) return mt_usage_error("replay", "give one grid CSV file");
    mt_space sp;
    char names[MAXP][32], err[512];
    grid_m *g;
    int ng, npoint = 1;
    if (load_grid(argv[optind], &sp, names, &g, &ng, &partial, &npoint, err, sizeof err) != 0)
        return mt_usage_error("replay", "%s", err);
    if (partial && !allow_partial) {
        for (int i = 0; i < ng; i++) {
            free(g[i].pts);
            free(g[i].t);
        }
        free(g);
        return mt_usage_error("replay",
                              "'%s' is a partial grid (its first line says so): it holds only the points a search or a "
                              "budget measured, so every strategy would score near 1.000 on it. Record a full grid "
                              "(moetune sweep --strategy grid, no --budget), or pass --partial to replay it anyway",
                              argv[optind]);
    }
    if (json)
        printf("{\"strategy\":\"%s\",\"joint\":%s,\"seeds\":%lld,\"batch_sizes\":[", mt_strategy_name(kind),
               joint && kind == MT_STRATEGY_BAYES ? "true" : "false", (long long)seeds);
    else
        printf("%-*s %7s %7s %12s %14s %14s %8s\n", npoint > 1 ? 12 : 8, npoint > 1 ? "batch x ctx" : "M", "points",
               "budget", "optimum us", "evals to 2%", "evals to 1%", "score");
    /* the batch sizes in increasing order, as the sweep takes them: a joint
     * search learns from the smaller ones already done */
    for (int i = 1; i < ng; i++)
        for (int j = i; j > 0 && (g[j].M < g[j - 1].M || (g[j].M == g[j - 1].M && g[j].p2 < g[j - 1].p2)); j--) {
            grid_m tmp = g[j];
            g[j] = g[j - 1];
            g[j - 1] = tmp;
        }
    int *B = calloc((size_t)ng, sizeof *B);
    double *opt = calloc((size_t)ng, sizeof *opt), *rnd = calloc((size_t)ng, sizeof *rnd);
    double *e2 = calloc((size_t)ng * (size_t)seeds, sizeof *e2), *e1 = calloc((size_t)ng * (size_t)seeds, sizeof *e1);
    double *found = calloc((size_t)ng * (size_t)seeds, sizeof *found);
    int maxn = 0;
    for (int i = 0; i < ng; i++) maxn = g[i].n > maxn ? g[i].n : maxn;
    double *curve = malloc((size_t)(maxn + 1) * sizeof *curve);
    int *order = malloc((size_t)ng * sizeof *order);
    if (!B || !opt || !rnd || !e2 || !e1 || !found || !curve || !order) return mt_fail("replay", "out of memory");
    int min_b = ng ? B[0] : 0;
    for (int i = 1; i < ng; i++) min_b = B[i] < min_b ? B[i] : min_b;
    mt_search_order(joint ? kind : MT_STRATEGY_GRID, ng, min_b, order); /* as the sweep goes */
    for (int i = 0; i < ng; i++) {
        const grid_m *m = &g[i];
        opt[i] = INFINITY;
        for (int j = 0; j < m->n; j++)
            if (!isnan(m->t[j]) && m->t[j] < opt[i]) opt[i] = m->t[j];
        B[i] = budget > 0 ? (int)budget : (int)ceil(m->n * fraction);
        if (B[i] < 5) B[i] = 5;
        if (B[i] > m->n) B[i] = m->n;
        for (int sd = 0; sd < seeds; sd++) {
            int k = run_one(MT_STRATEGY_RANDOM, &sp, m, B[i], 1000 + (uint64_t)sd, NULL, curve);
            rnd[i] += k > 0 ? curve[k - 1] : opt[i];
        }
        rnd[i] /= (double)seeds;
    }
    /* seeds are independent: with --jobs they run in forked processes,
     * each sending (seed, M index, evals to 2 %, to 1 %, found) back */
    if (jobs > seeds) jobs = seeds;
    int fds[2] = {-1, -1};
    pid_t *kids = calloc((size_t)jobs, sizeof *kids);
    if (!kids || (jobs > 1 && pipe(fds) != 0)) return mt_fail("replay", "cannot start the replay processes");
    int started = 0;
    for (int j = 0; j < jobs && jobs > 1; j++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            for (int sd = j; sd < seeds; sd += (int)jobs)
                for (int pi = 0; pi < ng; pi++) {
                    struct seed_result r = {sd, order[pi], 0, 0, 0};
                    if (replay_seed(kind, &sp, g, ng, order, pi, B, opt, sd, joint, curve, &r) != 0) _exit(1);
                    if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
                }
            _exit(0);
        }
        if (pid < 0) break;
        kids[started++] = pid;
    }
    char *have = calloc((size_t)ng * (size_t)seeds, 1);
    if (!have) return mt_fail("replay", "out of memory");
    if (started) {
        close(fds[1]);
        struct seed_result r;
        while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r)
            if (r.seed >= 0 && r.seed < seeds && r.m >= 0 && r.m < ng) {
                size_t at = (size_t)r.m * (size_t)seeds + (size_t)r.seed;
                e2[at] = r.e2, e1[at] = r.e1, found[at] = r.found, have[at] = 1;
            }
        close(fds[0]);
        for (int j = 0; j < started; j++) waitpid(kids[j], NULL, 0);
    } else if (fds[0] >= 0) {
        close(fds[0]), close(fds[1]);
    }
    free(kids);
    /* what no process delivered (one process, or one that died) runs here */
    for (int sd = 0; sd < seeds; sd++) {
        int missing = 0;
        for (int i = 0; i < ng; i++) missing |= !have[(size_t)i * seeds + sd];
        if (!missing) continue;
        for (int pi = 0; pi < ng; pi++) {
            const int i = order[pi];
            struct seed_result r = {sd, i, 0, 0, 0};
            /* a joint search replays the whole seed: its pool holds the M searched before */
            if (replay_seed(kind, &sp, g, ng, order, pi, B, opt, sd, joint, curve, &r) != 0)
                return mt_fail("replay", "out of memory");
            size_t at = (size_t)i * seeds + sd;
            e2[at] = r.e2, e1[at] = r.e1, found[at] = r.found;
        }
    }
    free(have);
    replay_seed(kind, &sp, g, ng, order, -1, B, opt, 0, joint, curve, NULL);
    for (int i = 0; i < ng; i++) {
        const grid_m *m = &g[i];
        double m2 = median(&e2[(size_t)i * seeds], (int)seeds), m1 = median(&e1[(size_t)i * seeds], (int)seeds);
        double f = median(&found[(size_t)i * seeds], (int)seeds);
        /* the score: 1 at the optimum, 0 at random search's level */
        double score = rnd[i] - opt[i] > 1e-12 ? (rnd[i] - f) / (rnd[i] - opt[i]) : (f <= opt[i] ? 1.0 : 0.0);
        if (json) {
            if (npoint > 1) printf("%s{\"batch\":%lld,\"ctx\":%lld,", i ? "," : "", (long long)m->M, (long long)m->p2);
            else printf("%s{\"M\":%lld,", i ? "," : "", (long long)m->M);
            printf("\"points\":%d,\"budget\":%d,\"optimum_us\":%.4f,\"random_us\":%.4f,\"found_us\":%.4f,", m->n, B[i],
                   opt[i], rnd[i], f);
            printf("\"evals_to_2pct\":");
            if (isinf(m2)) printf("null");
            else printf("%g", m2);
            printf(",\"evals_to_1pct\":");
            if (isinf(m1)) printf("null");
            else printf("%g", m1);
            printf(",\"score\":%.4f}", score);
        } else {
            char a[32], b2[32];
            if (isinf(m2)) snprintf(a, sizeof a, "> %d", B[i]);
            else snprintf(a, sizeof a, "%g", m2);
            if (isinf(m1)) snprintf(b2, sizeof b2, "> %d", B[i]);
            else snprintf(b2, sizeof b2, "%g", m1);
            char pt[48];
            if (npoint > 1) snprintf(pt, sizeof pt, "%lldx%lld", (long long)m->M, (long long)m->p2);
            else snprintf(pt, sizeof pt, "%lld", (long long)m->M);
            printf("%-*s %7d %7d %12.2f %14s %14s %8.3f\n", npoint > 1 ? 12 : 8, pt, m->n, B[i], opt[i], a, b2, score);
        }
    }
    free(B);
    free(opt);
    free(rnd);
    free(e2);
    free(e1);
    free(found);
    free(curve);
    free(order);
    if (json) printf("]}\n");
    for (int i = 0; i < ng; i++) {
        free(g[i].pts);
        free(g[i].t);
    }
    free(g);
    return mt_cli_finish("replay", 0);
}
