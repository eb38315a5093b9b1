#include "measure.h"

#include "attn.h"
#include "fp8.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void mt_policy_cpu_default(mt_policy *p)
{
    p->warmup = 2;
    p->min_reps = 7;
    p->max_reps = 50;
    p->min_time_s = 0.01;
    p->cold = 1;
    p->check_rows = 64;
    p->tolerance = 1e-3;
    p->max_tokens = 0;
    p->abort_us = 0;
    p->routings = 4;
}

void mt_policy_text(const mt_policy *p, const char *backend, char *out, size_t n)
{
    /* v2: every config of a batch size runs on the same inputs (v1 drew
     * them per config, and at small M the routing, not the config, decided
     * which was fastest); rows of v1 are not reused */
    int k = snprintf(out, n, "%s-v2;inputs=per-M;routings=%d;warmup=%d;reps=%d..%d;min_ms=%g;median;iqr;cold=%s;"
                     "check_rows=%d;tol=%g", backend, p->routings, p->warmup, p->min_reps, p->max_reps, p->min_time_s * 1e3, p->cold ? "flush" : "no",
                     p->check_rows, p->tolerance);
    if (p->max_tokens > 0 && k > 0 && (size_t)k < n) snprintf(out + k, n - (size_t)k, ";max_tokens=%d", p->max_tokens);
}

struct mt_cpu_bench {
    mt_pool *pool;
    int threads;
    int fault;
    /* weights for the current shape, regenerated when the shape changes */
    mt_moe_shape wshape;
    void *w1, *w2;
    float *s1, *s2; /* fp8: the weights' scales */
    /* a buffer larger than the last-level cache, read to evict it */
    float *flush;
    size_t flush_n;
    volatile float sink;
};

int mt_cpu_bench_new(mt_cpu_bench **out, int threads)
{
    mt_cpu_bench *b = calloc(1, sizeof *b);
    if (!b) return MT_ENOMEM;
    int rc = mt_pool_new(&b->pool, threads);
    if (rc != MT_OK) {
        free(b);
        return rc;
    }
    b->threads = threads;
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    size_t bytes = l3 > 0 ? (size_t)l3 * 2 : (size_t)64 << 20;
    if (bytes < ((size_t)16 << 20)) bytes = (size_t)16 << 20;
    if (bytes > ((size_t)256 << 20)) bytes = (size_t)256 << 20;
    b->flush_n = bytes / sizeof(float);
    b->flush = malloc(bytes);
    if (!b->flush) {
        mt_cpu_bench_free(b);
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < b->flush_n; i++) b->flush[i] = (float)(i & 7);
    *out = b;
    return MT_OK;
}

void mt_cpu_bench_free(mt_cpu_bench *b)
{
    if (!b) return;
    mt_pool_free(b->pool);
    free(b->w1);
    free(b->w2);
    free(b->s1);
    free(b->s2);
    free(b->flush);
    free(b);
}

void mt_cpu_bench_set_fault(mt_cpu_bench *b, int fault) { b->fault = fault; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void flush_caches(mt_cpu_bench *b)
{
    float s = 0;
    for (size_t i = 0; i < b->flush_n; i += 16) s += b->flush[i];
    b->sink = s;
}

static int ensure_weights(mt_cpu_bench *b, const mt_moe_shape *s)
{
    if (b->w1 && memcmp(&b->wshape, s, sizeof *s) == 0) return MT_OK;
    free(b->w1);
    free(b->w2);
    free(b->s1);
    free(b->s2);
    b->s1 = b->s2 = NULL;
    int fp8 = s->dtype == MT_DTYPE_FP8_W8A8;
    size_t esz = mt_dtype_size(s->dtype);
    size_t n1 = (size_t)(s->E * 2 * s->N * s->K), n2 = (size_t)(s->E * s->K * s->N);
    b->w1 = malloc(n1 * esz);
    b->w2 = malloc(n2 * esz);
    /* fp8: drawn in fp32 and quantised as a checkpoint stores them */
    float *f1 = fp8 ? malloc(n1 * sizeof *f1) : NULL, *f2 = fp8 ? malloc(n2 * sizeof *f2) : NULL;
    if (fp8) {
        b->s1 = malloc((size_t)mt_moe_weight_scales(s, 1) * sizeof *b->s1);
        b->s2 = malloc((size_t)mt_moe_weight_scales(s, 2) * sizeof *b->s2);
    }
    int rc = b->w1 && b->w2 && (!fp8 || (f1 && f2 && b->s1 && b->s2)) ? MT_OK : MT_ENOMEM;
    if (rc == MT_OK) {
        /* scaled like trained weights, so activations stay near unit size */
        mt_rng r = {0x6d6f6574756e65ull ^ (uint64_t)(s->E * 131 + s->N * 7 + s->K)};
        mt_fill_random(fp8 ? (void *)f1 : b->w1, fp8 ? MT_DTYPE_FP32 : s->dtype, n1, 1.0f / sqrtf((float)s->K), &r);
        mt_fill_random(fp8 ? (void *)f2 : b->w2, fp8 ? MT_DTYPE_FP32 : s->dtype, n2, 1.0f / sqrtf((float)s->N), &r);
        if (fp8) rc = mt_moe_quantize_weights(s, f1, f2, b->w1, b->w2, b->s1, b->s2);
    }
    free(f1);
    free(f2);
    if (rc != MT_OK) {
        free(b->w1), free(b->w2), free(b->s1), free(b->s2);
        b->w1 = b->w2 = NULL;
        b->s1 = b->s2 = NULL;
        return rc;
    }
    b->wshape = *s;
    return MT_OK;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void mt_summarize_times(double *times, int n, double to_us, mt_measure_result *res)
{
    qsort(times, (size_t)n, sizeof *times, cmp_d);
    res->median_us = (n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2])) * to_us;
    res->spread_us = (times[(3 * n) / 4 < n ? (3 * n) / 4 : n - 1] - times[n / 4]) * to_us;
    res->reps = n;
    res->ok = !res->aborted;
}

void mt_summarize_routings(double *times, int n, int routings, double to_us, mt_measure_result *res)
{
    if (routings <= 1 || n < routings) {
        mt_summarize_times(times, n, to_us, res);
        return;
    }
    /* each routing's median, from its own repetitions (a stride through times) */
    double sum = 0, one[256];
    for (int r = 0; r < routings; r++) {
        int k = 0;
        for (int i = r; i < n && k < 256; i += routings) one[k++] = times[i];
        qsort(one, (size_t)k, sizeof *one, cmp_d);
        sum += k % 2 ? one[k / 2] : 0.5 * (one[k / 2 - 1] + one[k / 2]);
    }
    mt_summarize_times(times, n, to_us, res); /* the spread, the count, ok */
    res->median_us = sum / routings * to_us;
}

/* Early abort: after 3 repetitions, a variant whose fastest is still over
 * the abort threshold (the incumbent times a factor) will not win: stop. */
int abort_early(const double *times, int n, double to_us, const mt_policy *pol, mt_measure_result *res)
{
    if (pol->abort_us <= 0 || n < 3) return 0;
    double fastest = times[0];
    for (int i = 1; i < n; i++) fastest = times[i] < fastest ? times[i] : fastest;
    if (fastest * to_us <= pol->abort_us) return 0;
    res->aborted = 1;
    snprintf(res->reason, sizeof res->reason, "aborted: the fastest of %d repetitions took %.1f us, over the %.1f us "
             "threshold (the incumbent times the abort factor)", n, fastest * to_us, pol->abort_us);
    return 1;
}


int mt_time_runs(const mt_timed_runs *t, const mt_policy *pol, double *times, mt_measure_result *res)
{
    int R = t->routings > 0 ? t->routings : 1, rc;
    for (int i = 0; i < pol->warmup; i++)
        if ((t->prepare && (rc = t->prepare(t->ctx, i, 0)) != MT_OK) || (rc = t->run(t->ctx, NULL)) != MT_OK) return rc;
    double timed = 0;
    int n = 0;
    /* the routings in turn, each at least twice */
    int min_reps = pol->min_reps < 2 * R ? 2 * R : pol->min_reps;
    while (n < pol->max_reps && (n < min_reps || timed < pol->min_time_s || n % R)) {
        double sec = 0;
        if ((t->prepare && (rc = t->prepare(t->ctx, n, pol->cold)) != MT_OK) || (rc = t->run(t->ctx, &sec)) != MT_OK)
            return rc;
        times[n++] = sec;
        timed += sec;
        if (abort_early(times, n, 1e6, pol, res)) break;
    }
    mt_summarize_routings(times, n, R, 1e6, res);
    return MT_OK;
}

/* the CPU's timer: the wall clock around one forward pass */
struct cpu_moe_run {
    mt_cpu_bench *b;
    const mt_moe_shape *s;
    const mt_cpu_params *p;
    int64_t M;
    const void *x;
    const mt_moe_scales *sc;
    const int32_t *ids;
    const float *tw;
    void *ws;
    float *out;
    size_t pairs, k;
    int R;
};
/* run rep's routing in place, the caches flushed when cold */
static int cpu_moe_prepare(void *ctx, int rep, int cold)
{
    struct cpu_moe_run *r = ctx;
    r->k = (size_t)(rep % r->R) * r->pairs;
    if (cold) flush_caches(r->b);
    return MT_OK;
}
static int cpu_moe_run(void *ctx, double *seconds)
{
    struct cpu_moe_run *r = ctx;
    double t = now_s();
    int rc = mt_moe_cpu_forward_q(r->b->pool, r->s, r->p, r->M, r->x, r->b->w1, r->b->w2, r->sc, r->ids + r->k,
                                  r->tw + r->k, r->ws, r->out);
    if (seconds) *seconds = now_s() - t;
    return rc;
}

int mt_cpu_bench_measure(mt_cpu_bench *b, const mt_moe_shape *s, int64_t M, const mt_cpu_params *p, uint64_t seed,
                         const mt_policy *pol, mt_measure_result *res)
{
    int rc, fp8 = s->dtype == MT_DTYPE_FP8_W8A8;
    /* fp8: the activations come in bf16 and are quantised inside */
    int xdtype = fp8 ? MT_DTYPE_BF16 : s->dtype;
    size_t esz = mt_dtype_size(xdtype);
    int R = pol->routings > 0 ? pol->routings : 1;
    float a1 = 0, a2 = 0;
    mt_moe_scales sc = {NULL, NULL, NULL, NULL};
    size_t pairs = (size_t)(M * s->topk);
    void *x = NULL, *ws = NULL;
    float *logits = NULL, *tw = NULL, *out = NULL;
    int32_t *ids = NULL;
    double *ref = NULL, *times = NULL;
    memset(res, 0, sizeof *res);
    if ((rc = mt_cpu_params_check(s, p, b->threads)) != MT_OK) {
        snprintf(res->reason, sizeof res->reason, "invalid parameters for this shape or machine");
        return MT_OK;
    }
    if ((rc = ensure_weights(b, s)) != MT_OK) return rc;
    size_t wsz = mt_moe_cpu_workspace(s, p, M);
    int64_t rows = M < pol->check_rows ? M : pol->check_rows;
    x = malloc((size_t)(M * s->K) * esz);
    logits = malloc((size_t)(M * s->E) * sizeof *logits);
    ids = malloc((size_t)R * pairs * sizeof *ids);
    tw = malloc((size_t)R * pairs * sizeof *tw);
    out = malloc((size_t)(M * s->K) * sizeof *out);
    ws = malloc(wsz);
    ref = malloc((size_t)(rows * s->K) * sizeof *ref);
    times = malloc((size_t)pol->max_reps * sizeof *times);
    if (!x || !logits || !ids || !tw || !out || !ws || !ref || !times) {
        rc = MT_ENOMEM;
        goto out;
    }
    /* the batch size's inputs (the seed is the same for every config):
     * activations, then R routings of them */
    mt_rng r = {seed};
    mt_fill_random(x, xdtype, (size_t)(M * s->K), 1.0f, &r);
    {
        char *hit = calloc((size_t)s->E, 1);
        if (!hit) { rc = MT_ENOMEM; goto out; }
        int64_t hits = 0;
        for (int k = 0; k < R; k++) {
            for (int64_t i = 0; i < M * s->E; i++) logits[i] = 2.0f * mt_rng_uniform(&r);
            if ((rc = mt_moe_route(logits, M, s->E, s->topk, s->renormalize, ids + k * pairs, tw + k * pairs)) != MT_OK) {
                free(hit);
                goto out;
            }
            memset(hit, 0, (size_t)s->E);
            for (size_t i = 0; i < pairs; i++) hit[ids[k * pairs + i]] = 1;
            for (int64_t e = 0; e < s->E; e++) hits += hit[e];
        }
        free(hit);
        res->experts_hit = (hits + R / 2) / R; /* the mean over the routings */
    }
    if (fp8) {
        sc.w1 = b->s1;
        sc.w2 = b->s2;
    }
    if (fp8 && s->scheme == MT_QUANT_TENSOR) {
        /* per tensor: static activation scales, as checkpoints with a static
         * activation scheme carry them: calibrated on x and on the
         * intermediate of the first routing's first tokens */
        float xm = 0, am = 0;
        for (int64_t i = 0; i < M * s->K; i++) xm = fmaxf(xm, fabsf(mt_bf16_to_f32(((const uint16_t *)x)[i])));
        a1 = mt_fp8_scale_of(xm);
        sc.a1 = &a1;
        if ((rc = mt_moe_reference_fp8(s, rows, x, b->w1, b->w2, &sc, ids, tw, NULL, &am)) != MT_OK) goto out;
        a2 = mt_fp8_scale_of(am);
        sc.a2 = &a2;
    }
    if (b->fault == MT_FAULT_CRASH) raise(SIGSEGV);
    if (b->fault == MT_FAULT_KILLED) raise(SIGKILL);
    if (b->fault == MT_FAULT_HANG) for (;;) pause();

    /* every routing is checked: the output poisoned first, so a tile the
     * kernel forgets stays NaN; every output must be finite; a random
     * window of tokens is compared with the oracle, which is exact enough
     * to judge the rest */
    for (int k = 0; k < R; k++) {
        for (int64_t i = 0; i < M * s->K; i++) out[i] = NAN;
        if ((rc = mt_moe_cpu_forward_q(b->pool, s, p, M, x, b->w1, b->w2, &sc, ids + k * pairs, tw + k * pairs, ws,
                                       out)) != MT_OK)
            goto out;
        if (b->fault == MT_FAULT_NAN) out[M * s->K / 2] = NAN;
        int64_t t0 = M > rows ? (int64_t)(mt_rng_next(&r) % (uint64_t)(M - rows + 1)) : 0;
        for (int64_t i = 0; i < M * s->K; i++)
            if (!isfinite(out[i])) {
                res->rel_err = NAN;
                snprintf(res->reason, sizeof res->reason, "output holds NaN or Inf (token %lld, routing %d)",
                         (long long)(i / s->K), k);
                goto out;
            }
        const void *xw = (const char *)x + (size_t)(t0 * s->K) * esz;
        rc = fp8 ? mt_moe_reference_fp8(s, rows, xw, b->w1, b->w2, &sc, ids + k * pairs + t0 * s->topk,
                                        tw + k * pairs + t0 * s->topk, ref, NULL)
                 : mt_moe_reference(s, rows, xw, b->w1, b->w2, ids + k * pairs + t0 * s->topk,
                                    tw + k * pairs + t0 * s->topk, ref);
        if (rc != MT_OK) goto out;
        double e = mt_rel_l2_error(out + t0 * s->K, ref, (size_t)(rows * s->K));
        if (!(e <= res->rel_err)) res->rel_err = e; /* the worst routing (NaN sticks) */
        res->tolerance = pol->tolerance;
        if (!(e <= pol->tolerance)) {
            snprintf(res->reason, sizeof res->reason, "relative error %.3g exceeds the tolerance %.3g (routing %d)", e,
                     pol->tolerance, k);
            goto out;
        }
    }

    struct cpu_moe_run run = {b, s, p, M, x, &sc, ids, tw, ws, out, pairs, 0, R};
    mt_timed_runs tr = {&run, R, cpu_moe_prepare, cpu_moe_run};
    rc = mt_time_runs(&tr, pol, times, res);
out:
    free(x);
    free(logits);
    free(ids);
    free(tw);
    free(out);
    free(ws);
    free(ref);
    free(times);
    return rc;
}

void mt_attn_draw_inputs(const mt_attn_shape *s, int64_t B, int64_t ctx, uint64_t seed, void *q, void *k, void *v,
                         int32_t *bt, int32_t *lens)
{
    int64_t pages = B * ((ctx + s->page_size - 1) / s->page_size);
    size_t qn = (size_t)(B * s->num_heads * s->head_dim), kvn = (size_t)(pages * s->page_size * s->num_kv_heads * s->head_dim);
    mt_rng r = {seed};
    for (int64_t i = 0; i < pages; i++) bt[i] = (int32_t)i;
    for (int64_t i = pages - 1; i > 0; i--) { /* pages scattered through the cache */
        int64_t j = (int64_t)(mt_rng_next(&r) % (uint64_t)(i + 1));
        int32_t t = bt[i];
        bt[i] = bt[j];
        bt[j] = t;
    }
    for (int64_t i = 0; i < B; i++) lens[i] = (int32_t)ctx;
    mt_fill_random(q, s->dtype, qn, 1.0f, &r);
    mt_fill_random(k, s->dtype, kvn, 1.0f, &r);
    mt_fill_random(v, s->dtype, kvn, 1.0f, &r);
}

int mt_attn_judge(const mt_attn_shape *s, const mt_attn_batch *ab, const void *out, mt_measure_result *res)
{
    size_t qn = (size_t)(ab->B * s->num_heads * s->head_dim);
    for (size_t i = 0; i < qn; i++)
        if (!isfinite(mt_load_elem(out, s->dtype, i))) {
            snprintf(res->reason, sizeof res->reason, "output holds NaN or Inf (sequence %lld)",
                     (long long)(i / (size_t)(s->num_heads * s->head_dim)));
            return 0;
        }
    /* the oracle for the first two sequences: enough to judge the rest */
    mt_attn_batch sub = *ab;
    sub.B = ab->B < 2 ? ab->B : 2;
    size_t rn = (size_t)(sub.B * s->num_heads * s->head_dim);
    double *ref = malloc(rn * sizeof *ref);
    if (!ref) return MT_ENOMEM;
    int rc = mt_attn_reference(s, &sub, ref);
    if (rc != MT_OK) {
        free(ref);
        return rc;
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < rn; i++) {
        double d = mt_load_elem(out, s->dtype, i) - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    free(ref);
    res->rel_err = den > 0 ? sqrt(num / den) : sqrt(num);
    double tol = s->dtype == MT_DTYPE_FP32 ? 1e-4 : 2e-2;
    res->tolerance = tol;
    if (!(res->rel_err <= tol)) {
        snprintf(res->reason, sizeof res->reason, "relative error %.3g exceeds the tolerance %.3g", res->rel_err, tol);
        return 0;
    }
    return 1;
}

struct cpu_attn_run {
    mt_cpu_bench *b;
    const mt_attn_shape *s;
    const mt_attn_batch *ab;
    const mt_attn_cpu_params *p;
    void *ws, *out;
};
static int cpu_attn_prepare(void *ctx, int rep, int cold)
{
    (void)rep;
    if (cold) flush_caches(((struct cpu_attn_run *)ctx)->b);
    return MT_OK;
}
static int cpu_attn_run(void *ctx, double *seconds)
{
    struct cpu_attn_run *r = ctx;
    double t = now_s();
    int rc = mt_attn_cpu_forward(r->b->pool, r->s, r->ab, r->p, r->ws, r->out);
    if (seconds) *seconds = now_s() - t;
    return rc;
}

int mt_cpu_bench_attn(mt_cpu_bench *b, const mt_attn_shape *s, int64_t B, int64_t ctx, const mt_attn_cpu_params *p,
                      uint64_t seed, const mt_policy *pol, mt_measure_result *res)
{
    memset(res, 0, sizeof *res);
    res->rel_err = NAN;
    int64_t per = (ctx + s->page_size - 1) / s->page_size, pages = B * per;
    size_t esz = mt_dtype_size(s->dtype), qn = (size_t)(B * s->num_heads * s->head_dim),
           kvn = (size_t)(pages * s->page_size * s->num_kv_heads * s->head_dim);
    void *q = malloc(qn * esz), *kc = malloc(kvn * esz), *vc = malloc(kvn * esz), *out = malloc(qn * esz), *ws = NULL;
    int32_t *bt = malloc((size_t)pages * sizeof *bt), *lens = malloc((size_t)B * sizeof *lens);
    double *times = malloc((size_t)pol->max_reps * sizeof *times);
    int rc = MT_OK;
    if (!q || !kc || !vc || !out || !bt || !lens || !times) {
        rc = MT_ENOMEM;
        goto out;
    }
    /* the (batch, context) inputs of this seed, the same for every config */
    mt_attn_draw_inputs(s, B, ctx, seed, q, kc, vc, bt, lens);
    mt_attn_batch ab = {B, per, pages, q, kc, vc, bt, lens, 0};
    char why[256];
    if (mt_attn_check(s, &ab, p, b->threads, why, sizeof why) != MT_OK) {
        snprintf(res->reason, sizeof res->reason, "invalid parameters: %.200s", why);
        goto out;
    }
    if (!(ws = malloc(mt_attn_cpu_workspace(s, &ab, p)))) {
        rc = MT_ENOMEM;
        goto out;
    }
    if (b->fault == MT_FAULT_CRASH) raise(SIGSEGV);
    if (b->fault == MT_FAULT_KILLED) raise(SIGKILL);
    if (b->fault == MT_FAULT_HANG) for (;;) pause();
    memset(out, 0xff, qn * esz); /* NaN in every dtype */
    if ((rc = mt_attn_cpu_forward(b->pool, s, &ab, p, ws, out)) != MT_OK) goto out;
    if (b->fault == MT_FAULT_NAN) mt_store_elem(out, s->dtype, qn / 2, NAN);
    if ((rc = mt_attn_judge(s, &ab, out, res)) != 1) {
        if (rc == 0) rc = MT_OK; /* judged: failed, reason given */
        goto out;
    }
    struct cpu_attn_run run = {b, s, &ab, p, ws, out};
    mt_timed_runs tr = {&run, 1, cpu_attn_prepare, cpu_attn_run};
    rc = mt_time_runs(&tr, pol, times, res);
out:
    free(q), free(kc), free(vc), free(out), free(ws), free(bt), free(lens), free(times);
    return rc;
}

struct copy_job { float *src, *dst; size_t n; int threads; };
static void copy_part(void *arg, int tid)
{
    struct copy_job *j = arg;
    size_t per = j->n / (size_t)j->threads, a = per * (size_t)tid, e = tid == j->threads - 1 ? j->n : a + per;
    memcpy(j->dst + a, j->src + a, (e - a) * sizeof(float));
}

int mt_cpu_ceilings(mt_cpu_bench *b, double *bw, double *peak)
{
    size_t n = (size_t)64 << 20 >> 2; /* 64 MiB each way: beyond any cache */
    struct copy_job cj = {malloc(n * sizeof(float)), malloc(n * sizeof(float)), n, b->threads};
    if (!cj.src || !cj.dst) {
        free(cj.src);
        free(cj.dst);
        return MT_ENOMEM;
    }
    memset(cj.src, 1, n * sizeof(float));
    memset(cj.dst, 0, n * sizeof(float));
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t = now_s();
        mt_pool_run(b->pool, b->threads, copy_part, &cj);
        t = now_s() - t;
        if (t < best) best = t;
    }
    *bw = 2.0 * (double)n * sizeof(float) / best / 1e9;
    free(cj.src);
    free(cj.dst);

    *peak = mt_cpu_peak_gflops(b->pool, b->threads);
    return MT_OK;
}

double mt_roofline_floor_quant_us(const char *dtype, int64_t E, int64_t N, int64_t K, int64_t topk, int64_t M,
                                  int64_t hit, double bw, double peak)
{
    double wsz, rate;
    if (!strncmp(dtype, "fp8_w8a8", 8) || !strcmp(dtype, "int8_w8a8")) wsz = 1.0, rate = 2.0;
    else if (!strcmp(dtype, "int8_w8a16")) wsz = 1.0, rate = 1.0;
    else if (!strncmp(dtype, "int4_w4a16", 10)) wsz = 0.5, rate = 1.0; /* (zero points: a byte per 2 x group) */
    else return NAN;
    if (hit <= 0) hit = E;
    double bytes = (double)hit * 3.0 * (double)N * (double)K * wsz + (double)M * (double)K * 4.0;
    double flops = 2.0 * (double)M * (double)topk * 3.0 * (double)N * (double)K;
    double tb = bw > 0 ? bytes / (bw * 1e9) : 0, tf = peak > 0 ? flops / (rate * peak * 1e9) : 0;
    return (tb > tf ? tb : tf) * 1e6;
}

double mt_roofline_floor_us(const mt_moe_shape *s, int64_t M, int64_t hit, double bw, double peak)
{
    double esz = (double)mt_dtype_size(s->dtype), asz = s->dtype == MT_DTYPE_FP8_W8A8 ? 2.0 : esz;
    /* each weight of the experts actually hit read once (fp8: a byte, the
     * scales negligible); activations in (dtype; fp8: bf16) and out (fp32) */
    double bytes = (double)hit * 3.0 * (double)s->N * (double)s->K * esz + (double)M * (double)s->K * (asz + 4.0);
    double flops = 2.0 * (double)M * (double)s->topk * 3.0 * (double)s->N * (double)s->K;
    double tb = bw > 0 ? bytes / (bw * 1e9) : 0, tf = peak > 0 ? flops / (peak * 1e9) : 0;
    return (tb > tf ? tb : tf) * 1e6;
}
