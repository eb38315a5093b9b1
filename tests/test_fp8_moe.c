/* fp8 w8a8 fused MoE on the CPU: every scheme (per tensor, dynamic and
 * static; per token and channel; 128 x 128 blocks and an odd block that
 * does not divide the shape) against the fp8 oracle and against the
 * unquantised float64 computation, with the bounds stated below; wrong
 * scales must fail; the names and layouts of the schemes.
 *
 * Inputs vary in magnitude by powers of two along every scale's
 * granularity (expert, row, 32-column run, token), so a scale taken from
 * the wrong expert, row or block changes the result by far more than the
 * bounds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fp8.h"
#include "moe_cpu.h"
#include "pool.h"

/* Kernel against the fp8 oracle: both quantise the same bf16 inputs with
 * the same rule, so they differ by float against double accumulation
 * (1e-7 relative is what these problems show) and by any intermediate
 * value whose fp32 and double results round to neighbouring e4m3 codes:
 * that needs a value within about 1e-7 of a rounding midpoint, a chance of
 * about one in a million per value. 2e-3 is far above the first and far
 * below what one wrong scale does (over 4e-2 in the check of the check). */
#define TOL_KERNEL 2e-3
/* Oracle against the unquantised float64 result: x, w1, the intermediate
 * and w2 are each rounded to e4m3, whose unit roundoff is u = 2^-4 for
 * normal values (3 fraction bits). A rounding error is at most u and on
 * random inputs spread evenly over +-u, an RMS of u / sqrt(3) = 0.036; the
 * four roundings add in quadrature to 0.072, which is what these inputs
 * give (0.06 to 0.09, the per-tensor scales' wider range at the top). The
 * bound is twice the estimate: 0.15. The oracle must also differ by at
 * least 1e-3: a pass that skipped quantisation would be closer. */
#define TOL_QUANT 0.15
#define MIN_QUANT 1e-3

static uint64_t h3(int64_t a, int64_t b, int64_t c)
{
    uint64_t z = (uint64_t)a * 0x9e3779b97f4a7c15ull ^ (uint64_t)b * 0xbf58476d1ce4e5b9ull ^ (uint64_t)c * 0x94d049bb133111ebull;
    z ^= z >> 31;
    z *= 0xd6e8feb86659fd93ull;
    return z ^ (z >> 29);
}
/* A power of two by expert (neighbours always differ), by row, and by
 * 128 x 128 cell, so that every scheme's scales differ from their
 * neighbours' (odd blocks straddle cells) */
static float mag(int64_t e, int64_t r, int64_t c)
{
    int ex = (int)((e + 8) % 5) - 2 + (int)(h3(e, r, -7) % 3) - 1 + (int)(h3(e, r / 128, c / 128) % 5) - 2;
    return ldexpf(1.0f, ex);
}

struct problem {
    mt_moe_shape s;
    int64_t M;
    float *w1f, *w2f, *xf;
    uint16_t *x;
    uint8_t *q1, *q2;
    float *s1, *s2;
    int32_t *ids;
    float *tw;
};

static void problem_free(struct problem *p)
{
    free(p->w1f), free(p->w2f), free(p->xf), free(p->x), free(p->q1), free(p->q2), free(p->s1), free(p->s2);
    free(p->ids), free(p->tw);
}

static int problem_make(struct problem *p, int scheme, int64_t bn, int64_t bk, int64_t E, int64_t N, int64_t K,
                        int64_t topk, int64_t M, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    mt_moe_shape s = {E, N, K, topk, MT_DTYPE_FP8_W8A8, 1, scheme, bn, bk};
    p->s = s;
    p->M = M;
    size_t n1 = (size_t)(E * 2 * N * K), n2 = (size_t)(E * K * N);
    p->w1f = malloc(n1 * sizeof(float));
    p->w2f = malloc(n2 * sizeof(float));
    p->q1 = malloc(n1);
    p->q2 = malloc(n2);
    p->s1 = malloc((size_t)mt_moe_weight_scales(&s, 1) * sizeof(float));
    p->s2 = malloc((size_t)mt_moe_weight_scales(&s, 2) * sizeof(float));
    p->xf = malloc((size_t)(M * K) * sizeof(float));
    p->x = malloc((size_t)(M * K) * sizeof(uint16_t));
    p->ids = malloc((size_t)(M * topk) * sizeof(int32_t));
    p->tw = malloc((size_t)(M * topk) * sizeof(float));
    float *logits = malloc((size_t)(M * E) * sizeof(float));
    if (!p->w1f || !p->w2f || !p->q1 || !p->q2 || !p->s1 || !p->s2 || !p->xf || !p->x || !p->ids || !p->tw || !logits) {
        free(logits);
        return 0;
    }
    mt_rng r = {seed};
    for (int64_t e = 0; e < E; e++)
        for (int64_t i = 0; i < 2 * N; i++)
            for (int64_t k = 0; k < K; k++)
                p->w1f[(e * 2 * N + i) * K + k] = mt_rng_uniform(&r) * mag(e, i, k) / sqrtf((float)K);
    for (int64_t e = 0; e < E; e++)
        for (int64_t i = 0; i < K; i++)
            for (int64_t k = 0; k < N; k++)
                p->w2f[(e * K + i) * N + k] = mt_rng_uniform(&r) * mag(e + 100, i, k) / sqrtf((float)N);
    for (int64_t t = 0; t < M; t++)
        for (int64_t k = 0; k < K; k++) {
            p->x[t * K + k] = mt_f32_to_bf16(mt_rng_uniform(&r) * mag(-1, t, k));
            p->xf[t * K + k] = mt_bf16_to_f32(p->x[t * K + k]);
        }
    for (int64_t i = 0; i < M * E; i++) logits[i] = 2.0f * mt_rng_uniform(&r);
    int ok = mt_moe_route(logits, M, E, topk, 1, p->ids, p->tw) == MT_OK &&
             mt_moe_quantize_weights(&p->s, p->w1f, p->w2f, p->q1, p->q2, p->s1, p->s2) == MT_OK;
    free(logits);
    return ok;
}

static double run_kernel(mt_pool *pool, const struct problem *p, const mt_cpu_params *cp, const mt_moe_scales *sc,
                         const double *ref, int *rc_out)
{
    size_t n = (size_t)(p->M * p->s.K);
    float *out = malloc(n * sizeof *out);
    void *ws = malloc(mt_moe_cpu_workspace(&p->s, cp, p->M));
    int rc = out && ws ? MT_OK : MT_ENOMEM;
    for (size_t i = 0; out && i < n; i++) out[i] = NAN; /* a forgotten tile stays NaN */
    if (rc == MT_OK) rc = mt_moe_cpu_forward_q(pool, &p->s, cp, p->M, p->x, p->q1, p->q2, sc, p->ids, p->tw, ws, out);
    double e = rc == MT_OK ? mt_rel_l2_error(out, ref, n) : NAN;
    free(out);
    free(ws);
    *rc_out = rc;
    return e;
}

static const char *what(const mt_moe_shape *s, const float *a1)
{
    if (s->scheme == MT_QUANT_TENSOR) return a1 ? "per tensor, static" : "per tensor, dynamic";
    return s->scheme == MT_QUANT_CHANNEL ? "per channel" : "blocks";
}

/* one scheme: the kernel at several configs against the oracle, the
 * oracle against float64, and wrong scales refused by the comparison */
static void scheme(mt_pool *pool, int sch, int64_t bn, int64_t bk, int64_t N, int64_t K, int64_t M, int statik)
{
    struct problem p;
    int64_t E = 6, topk = 2;
    if (!problem_make(&p, sch, bn, bk, E, N, K, topk, M, 0x5eed + (uint64_t)sch * 7 + (uint64_t)bn)) {
        CHECK(0, "allocation");
        problem_free(&p);
        return;
    }
    size_t n = (size_t)(M * K);
    double *ref = malloc(n * sizeof *ref), *ref0 = malloc(n * sizeof *ref0);
    float a1 = 0, a2 = 0, amax = 0;
    mt_moe_scales sc = {p.s1, p.s2, NULL, NULL};
    if (statik) {
        /* static scales as a checkpoint calibrates them: x's maximum, and
         * the intermediate's, here from the oracle itself */
        float xm = 0;
        for (size_t i = 0; i < n; i++) xm = fmaxf(xm, fabsf(p.xf[i]));
        a1 = mt_fp8_scale_of(xm);
        sc.a1 = &a1;
        CHECK(mt_moe_reference_fp8(&p.s, M, p.x, p.q1, p.q2, &sc, p.ids, p.tw, NULL, &amax) == MT_OK && amax > 0,
              "the intermediate's maximum for calibration");
        a2 = mt_fp8_scale_of(amax);
        sc.a2 = &a2;
    }
    mt_moe_shape s32 = {E, N, K, topk, MT_DTYPE_FP32, 1, 0, 0, 0};
    CHECK(ref && ref0 && mt_moe_reference_fp8(&p.s, M, p.x, p.q1, p.q2, &sc, p.ids, p.tw, ref, NULL) == MT_OK,
          "fp8 oracle (%s)", what(&p.s, sc.a1));
    CHECK(mt_moe_reference(&s32, M, p.xf, p.w1f, p.w2f, p.ids, p.tw, ref0) == MT_OK, "float64 oracle");
    /* the oracle against float64: as float, through the error measure */
    float *rf = malloc(n * sizeof *rf);
    for (size_t i = 0; rf && i < n; i++) rf[i] = (float)ref[i];
    double eq = rf ? mt_rel_l2_error(rf, ref0, n) : NAN;
    free(rf);
    CHECK(eq >= MIN_QUANT && eq <= TOL_QUANT, "%s block %lldx%lld: the fp8 oracle is %.4f from float64 (%g..%g)",
          what(&p.s, sc.a1), (long long)bn, (long long)bk, eq, MIN_QUANT, TOL_QUANT);
    printf("  %-20s block %3lldx%-3lld N=%-3lld K=%-3lld M=%-2lld: oracle vs float64 %.4f\n", what(&p.s, sc.a1),
           (long long)bn, (long long)bk, (long long)N, (long long)K, (long long)M, eq);

    static const mt_cpu_params cps[] = {{4, 16, 32, 1}, {16, 32, 64, 2}, {8, 64, 256, 2}, {32, 8, 16, 1}};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        int rc;
        double e = run_kernel(pool, &p, &cps[i], &sc, ref, &rc);
        CHECK(rc == MT_OK && e <= TOL_KERNEL, "%s, block %lldx%lld, N=%lld K=%lld M=%lld, config %d/%d/%d/%d: error %.3g",
              what(&p.s, sc.a1), (long long)bn, (long long)bk, (long long)N, (long long)K, (long long)M, cps[i].block_m,
              cps[i].block_n, cps[i].block_k, cps[i].threads, e);
    }

    if (statik) {
        /* a static scale too small for the batch: the largest values
         * saturate at 448, in the kernel as in the oracle */
        a2 = mt_fp8_scale_of(amax / 2);
        mt_cpu_params cp = {8, 32, 64, 2};
        int rc;
        double e = mt_moe_reference_fp8(&p.s, M, p.x, p.q1, p.q2, &sc, p.ids, p.tw, ref, NULL) == MT_OK
                       ? run_kernel(pool, &p, &cp, &sc, ref, &rc)
                       : NAN;
        CHECK(e <= TOL_KERNEL, "a saturating static scale: error %.3g", e);
    }

    /* the check of the check: a scale of the wrong expert (w1) or the
     * wrong row or block (w2) must be far outside the kernel's bound */
    int64_t c1 = mt_moe_weight_scales(&p.s, 1), c2 = mt_moe_weight_scales(&p.s, 2);
    float *bad1 = malloc((size_t)c1 * sizeof *bad1), *bad2 = malloc((size_t)c2 * sizeof *bad2);
    if (bad1 && bad2) {
        for (int64_t i = 0; i < c1; i++) bad1[i] = p.s1[(i + c1 / E) % c1]; /* the next expert's */
        for (int64_t i = 0; i < c2; i++) bad2[i] = p.s2[c2 - 1 - i];
        mt_cpu_params cp = {8, 32, 64, 2};
        mt_moe_scales w1bad = sc, w2bad = sc;
        w1bad.w1 = bad1;
        w2bad.w2 = bad2;
        int rc;
        double e1 = run_kernel(pool, &p, &cp, &w1bad, ref, &rc), e2 = run_kernel(pool, &p, &cp, &w2bad, ref, &rc);
        CHECK(e1 > 20 * TOL_KERNEL && e2 > 20 * TOL_KERNEL, "%s: misplaced scales are caught (%.3g, %.3g)",
              what(&p.s, sc.a1), e1, e2);
    }
    free(bad1), free(bad2);
    free(ref), free(ref0);
    problem_free(&p);
}

static void names(void)
{
    mt_moe_shape s;
    memset(&s, 0, sizeof s);
    CHECK(mt_moe_shape_set_dtype(&s, "fp8_w8a8", 0, 0) == MT_OK && s.dtype == MT_DTYPE_FP8_W8A8 &&
              s.scheme == MT_QUANT_TENSOR,
          "fp8_w8a8 without a block is per tensor");
    CHECK(mt_moe_shape_set_dtype(&s, "fp8_w8a8", 128, 128) == MT_OK && s.scheme == MT_QUANT_BLOCK && s.block_n == 128 &&
              s.block_k == 128,
          "fp8_w8a8 with a block");
    CHECK(mt_moe_shape_set_dtype(&s, "fp8_w8a8_per_channel", 0, 0) == MT_OK && s.scheme == MT_QUANT_CHANNEL,
          "per channel");
    CHECK(mt_moe_shape_set_dtype(&s, "fp8_w8a8_per_channel", 128, 128) == MT_EINVAL, "per channel in blocks is refused");
    CHECK(mt_moe_shape_set_dtype(&s, "bf16", 128, 128) == MT_EINVAL, "bf16 in blocks is refused");
    CHECK(mt_moe_shape_set_dtype(&s, "int8_w8a8", 0, 0) == MT_EPARSE, "int8_w8a8 is no moetune kernel's");
    CHECK(mt_moe_shape_set_dtype(&s, "bf16", 0, 0) == MT_OK && s.dtype == MT_DTYPE_BF16 && s.scheme == 0, "bf16");
    int d = -1;
    CHECK(mt_dtype_parse("fp8_w8a8", &d) == MT_OK && d == MT_DTYPE_FP8_W8A8 && !strcmp(mt_dtype_name(d), "fp8_w8a8"),
          "the public dtype's name");
    CHECK(!strcmp(mt_quant_dtype_name(MT_QUANT_BLOCK), "fp8_w8a8") &&
              !strcmp(mt_quant_dtype_name(MT_QUANT_CHANNEL), "fp8_w8a8_per_channel") &&
              !strcmp(mt_quant_scheme_name(MT_QUANT_TENSOR), "tensor") && !mt_quant_dtype_name(0) &&
              !mt_quant_scheme_name(9),
          "scheme names");

    /* the layouts' sizes, as moetune.h states them: DeepSeek-V3 TP8's */
    mt_quant q = {MT_QUANT_BLOCK, 128, 128, NULL, NULL, NULL, NULL};
    CHECK(mt_quant_weight_scales(&q, 1, 256, 256, 7168) == 256 * 4 * 56 &&
              mt_quant_weight_scales(&q, 2, 256, 256, 7168) == 256 * 56 * 2,
          "block scales of w1 [E, 2N/128, K/128] and w2 [E, K/128, N/128]");
    q.block_n = 96, q.block_k = 160; /* not dividing: the last block is partial */
    CHECK(mt_quant_weight_scales(&q, 1, 2, 100, 300) == 2 * 3 * 2, "partial blocks count");
    q.scheme = MT_QUANT_CHANNEL, q.block_n = q.block_k = 0;
    CHECK(mt_quant_weight_scales(&q, 1, 8, 7168, 4096) == 8 * 2 * 7168 && mt_quant_weight_scales(&q, 2, 8, 7168, 4096) ==
                                                                             8 * 4096,
          "channel scales of w1 [E, 2N] and w2 [E, K]");
    q.scheme = MT_QUANT_TENSOR;
    CHECK(mt_quant_weight_scales(&q, 2, 8, 7168, 4096) == 8, "one scale per expert");
    q.scheme = 0;
    CHECK(mt_quant_weight_scales(&q, 1, 8, 64, 64) == 0 && mt_quant_weight_scales(NULL, 1, 8, 64, 64) == 0,
          "no count for a malformed scheme");

    /* malformed shapes */
    mt_moe_shape bad = {4, 64, 64, 2, MT_DTYPE_FP8_W8A8, 1, 0, 0, 0};
    char why[128] = "";
    CHECK(mt_moe_quant_check(&bad, why, sizeof why) == MT_EINVAL && strstr(why, "scheme"), "no scheme: %s", why);
    bad.scheme = MT_QUANT_BLOCK;
    CHECK(mt_moe_quant_check(&bad, why, sizeof why) == MT_EINVAL && strstr(why, "block"), "a block scheme without a block");
    bad.scheme = MT_QUANT_CHANNEL, bad.block_n = bad.block_k = 128;
    CHECK(mt_moe_quant_check(&bad, why, sizeof why) == MT_EINVAL, "a channel scheme with a block");
    mt_cpu_params cp = {8, 32, 64, 1};
    CHECK(mt_cpu_params_check(&bad, &cp, 1) == MT_EINVAL, "the kernel refuses a malformed scheme");
}

/* a token of zeros and a token of one huge value: the scale's floor and
 * the saturation, dynamic per token */
static void edges(mt_pool *pool)
{
    struct problem p;
    if (!problem_make(&p, MT_QUANT_CHANNEL, 0, 0, 4, 64, 96, 2, 3, 99)) {
        CHECK(0, "allocation");
        problem_free(&p);
        return;
    }
    for (int64_t k = 0; k < 96; k++) p.x[k] = 0; /* token 0: zeros */
    p.x[96 + 5] = mt_f32_to_bf16(3e4f);          /* token 1: one outlier */
    double ref[3 * 96];
    mt_moe_scales sc = {p.s1, p.s2, NULL, NULL};
    CHECK(mt_moe_reference_fp8(&p.s, 3, p.x, p.q1, p.q2, &sc, p.ids, p.tw, ref, NULL) == MT_OK, "edge oracle");
    int zero = 1;
    for (int k = 0; k < 96; k++) zero &= ref[k] == 0;
    CHECK(zero, "a token of zeros gives zeros");
    mt_cpu_params cp = {4, 16, 32, 1};
    int rc;
    double e = run_kernel(pool, &p, &cp, &sc, ref, &rc);
    CHECK(rc == MT_OK && e <= TOL_KERNEL, "zeros and an outlier: error %.3g", e);
    mt_moe_scales none = {NULL, p.s2, NULL, NULL};
    CHECK(run_kernel(pool, &p, &cp, &none, ref, &rc) != 0 && rc == MT_EINVAL, "no w1 scales: MT_EINVAL");
    float one = 1;
    mt_moe_scales stat = {p.s1, p.s2, &one, NULL};
    CHECK((run_kernel(pool, &p, &cp, &stat, ref, &rc), rc == MT_EINVAL) &&
              mt_moe_reference_fp8(&p.s, 3, p.x, p.q1, p.q2, &stat, p.ids, p.tw, ref, NULL) == MT_EINVAL,
          "a static scale with per-token activations: MT_EINVAL");
    problem_free(&p);
}

int main(void)
{
    mt_pool *pool;
    if (mt_pool_new(&pool, 2) != MT_OK) return 1;
    names();
    /* N and K not multiples of the kernel's tiles or the blocks */
    scheme(pool, MT_QUANT_TENSOR, 0, 0, 96, 160, 13, 0);
    scheme(pool, MT_QUANT_TENSOR, 0, 0, 96, 160, 13, 1);
    scheme(pool, MT_QUANT_CHANNEL, 0, 0, 96, 160, 13, 0);
    scheme(pool, MT_QUANT_BLOCK, 128, 128, 128, 384, 9, 0);
    scheme(pool, MT_QUANT_BLOCK, 32, 48, 80, 136, 11, 0);
    scheme(pool, MT_QUANT_TENSOR, 0, 0, 64, 128, 1, 0); /* one token */
    edges(pool);
    mt_pool_free(pool);
    return check_report("test_fp8_moe");
}
