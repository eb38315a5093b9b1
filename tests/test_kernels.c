/* The oracle against hand-computed values, routing and alignment
 * invariants, and every CPU variant of the space against the oracle. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "moe_cpu.h"
#include "space.h"

/* One token, one expert, N=1, K=2, fp32: small enough to do by hand. */
static void test_oracle_by_hand(void)
{
    mt_moe_shape s = {.E = 1, .N = 1, .K = 2, .topk = 1, .dtype = MT_DTYPE_FP32, .renormalize = 1};
    float x[2] = {1.0f, 2.0f};
    float w1[4] = {0.5f, 0.25f,   /* gate row: g = 0.5 + 0.5 = 1 */
                   1.0f, -1.0f};  /* up row:   u = 1 - 2 = -1 */
    float w2[2] = {2.0f, 3.0f};   /* out_k = a * w2[k] */
    int32_t ids[1] = {0};
    float tw[1] = {0.5f};
    double out[2];
    CHECK(mt_moe_reference(&s, 1, x, w1, w2, ids, tw, out) == MT_OK, "reference failed");
    double a = 1.0 / (1.0 + exp(-1.0)) * -1.0; /* silu(1) * -1 */
    CHECK(fabs(out[0] - 0.5 * a * 2.0) < 1e-12, "out[0] = %g, want %g", out[0], 0.5 * a * 2.0);
    CHECK(fabs(out[1] - 0.5 * a * 3.0) < 1e-12, "out[1] = %g, want %g", out[1], 0.5 * a * 3.0);

    /* two slots add: the same expert twice with weights 0.25 and 0.75 */
    mt_moe_shape s2 = s;
    s2.topk = 2;
    int32_t ids2[2] = {0, 0};
    float tw2[2] = {0.25f, 0.75f};
    CHECK(mt_moe_reference(&s2, 1, x, w1, w2, ids2, tw2, out) == MT_OK, "reference failed");
    CHECK(fabs(out[0] - a * 2.0) < 1e-12, "top-k sum: out[0] = %g, want %g", out[0], a * 2.0);
}

static void test_routing(void)
{
    float logits[2 * 4] = {0.0f, 3.0f, 1.0f, 2.0f, /* token 0: experts 1 then 3 */
                           5.0f, 5.0f, -1.0f, 0.0f}; /* token 1: a tie goes to the lower id */
    int32_t ids[4];
    float w[4];
    CHECK(mt_moe_route(logits, 2, 4, 2, 0, ids, w) == MT_OK, "route failed");
    CHECK(ids[0] == 1 && ids[1] == 3, "token 0 picked %d,%d", ids[0], ids[1]);
    CHECK(ids[2] == 0 && ids[3] == 1, "token 1 picked %d,%d", ids[2], ids[3]);
    double den = exp(0.0) + exp(3.0) + exp(1.0) + exp(2.0);
    CHECK(fabs(w[0] - exp(3.0) / den) < 1e-6, "softmax weight %g, want %g", w[0], exp(3.0) / den);
    CHECK(mt_moe_route(logits, 2, 4, 2, 1, ids, w) == MT_OK, "route failed");
    CHECK(fabs(w[0] + w[1] - 1.0) < 1e-6, "renormalised weights sum to %g", w[0] + w[1]);
    CHECK(fabs(w[0] / w[1] - exp(1.0)) < 1e-4, "renormalising keeps ratios: %g", w[0] / w[1]);
    CHECK(mt_moe_route(logits, 2, 4, 5, 0, ids, w) == MT_EINVAL, "top-k > E must be refused");
}

static void test_align(void)
{
    /* 5 tokens x top-2 over 4 experts */
    int32_t ids[10] = {0, 2, 2, 3, 0, 2, 1, 2, 2, 0};
    int bm = 4;
    int64_t cap = mt_moe_align_capacity(5, 2, 4, bm);
    int32_t *sorted = malloc((size_t)cap * sizeof *sorted), *eids = malloc((size_t)(cap / bm + 1) * sizeof *eids);
    int32_t tpe[4];
    int64_t n = 0;
    CHECK(mt_moe_align(ids, 5, 2, 4, bm, sorted, eids, tpe, &n) == MT_OK, "align failed");
    CHECK(tpe[0] == 3 && tpe[1] == 1 && tpe[2] == 5 && tpe[3] == 1, "tokens_per_expert %d %d %d %d", tpe[0], tpe[1],
          tpe[2], tpe[3]);
    /* padded: 4 + 4 + 8 + 4 */
    CHECK(n == 20, "padded length %lld, want 20", (long long)n);
    int seen[10] = {0};
    for (int64_t i = 0; i < n; i++) {
        int32_t e = eids[i / bm];
        if (sorted[i] == 10) continue; /* padding sentinel = M*topk */
        CHECK(sorted[i] >= 0 && sorted[i] < 10, "bad pair %d", sorted[i]);
        CHECK(ids[sorted[i]] == e, "pair %d of expert %d sits in a block of expert %d", sorted[i], ids[sorted[i]], e);
        seen[sorted[i]]++;
    }
    for (int i = 0; i < 10; i++) CHECK(seen[i] == 1, "pair %d placed %d times", i, seen[i]);
    /* order within an expert is the original order */
    CHECK(sorted[0] == 0 && sorted[1] == 4 && sorted[2] == 9 && sorted[3] == 10, "expert 0 block: %d %d %d %d",
          sorted[0], sorted[1], sorted[2], sorted[3]);
    free(sorted);
    free(eids);
}

/* Every valid point of the CPU space, on shapes whose sizes are not
 * multiples of any tile, must match the oracle. */
static void test_all_variants(int dtype, int64_t E, int64_t N, int64_t K, int64_t topk, int64_t M)
{
    mt_moe_shape s = {E, N, K, topk, dtype, 1, 0, 0, 0};
    size_t esz = mt_dtype_size(dtype);
    mt_rng r = {(uint64_t)(E * 7 + N * 13 + K * 17 + M)};
    void *x = malloc((size_t)(M * K) * esz), *w1 = malloc((size_t)(E * 2 * N * K) * esz),
         *w2 = malloc((size_t)(E * K * N) * esz);
    float *logits = malloc((size_t)(M * E) * sizeof(float)), *tw = malloc((size_t)(M * topk) * sizeof(float));
    int32_t *ids = malloc((size_t)(M * topk) * sizeof(int32_t));
    double *ref = malloc((size_t)(M * K) * sizeof(double));
    float *out = malloc((size_t)(M * K) * sizeof(float));
    mt_fill_random(x, dtype, (size_t)(M * K), 1.0f, &r);
    mt_fill_random(w1, dtype, (size_t)(E * 2 * N * K), 1.0f / sqrtf((float)K), &r);
    mt_fill_random(w2, dtype, (size_t)(E * K * N), 1.0f / sqrtf((float)N), &r);
    for (int64_t i = 0; i < M * E; i++) logits[i] = mt_rng_uniform(&r) * 2.0f;
    mt_moe_route(logits, M, E, topk, 1, ids, tw);
    CHECK(mt_moe_reference(&s, M, x, w1, w2, ids, tw, ref) == MT_OK, "reference failed");

    mt_space sp;
    mt_space_cpu_moe(&sp, 3);
    mt_space_ctx ctx = {E, N, K, topk, M, 3, 0, 0, 0, 0, 0, 0, 0};
    mt_config *pts;
    int n = mt_space_enumerate(&sp, &ctx, &pts);
    CHECK(n > 10, "only %d valid variants", n);
    mt_pool *pool;
    mt_pool_new(&pool, 3);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        mt_cpu_params p = {pts[i].v[0], pts[i].v[1], pts[i].v[2], pts[i].v[3]};
        void *ws = malloc(mt_moe_cpu_workspace(&s, &p, M));
        for (int64_t k = 0; k < M * K; k++) out[k] = NAN;
        int rc = mt_moe_cpu_forward(pool, &s, &p, M, x, w1, w2, ids, tw, ws, out);
        double err = mt_rel_l2_error(out, ref, (size_t)(M * K));
        if (rc != MT_OK || !(err < 1e-5)) {
            if (bad++ < 5)
                fprintf(stderr, "variant bm=%d bn=%d bk=%d t=%d: rc %d, rel err %g\n", p.block_m, p.block_n,
                        p.block_k, p.threads, rc, err);
        }
        free(ws);
    }
    CHECK(bad == 0, "%d of %d variants disagree with the oracle (%s E=%lld N=%lld K=%lld top-%lld M=%lld)", bad, n,
          mt_dtype_name(dtype), (long long)E, (long long)N, (long long)K, (long long)topk, (long long)M);
    mt_pool_free(pool);
    free(pts);
    free(x); free(w1); free(w2); free(logits); free(tw); free(ids); free(ref); free(out);
}

/* The check must catch a broken kernel: corrupt one output and the error
 * has to exceed any tolerance we use. */
static void test_error_detects(void)
{
    double ref[4] = {1, 2, 3, 4};
    float good[4] = {1, 2, 3, 4}, off[4] = {1, 2, 3.1f, 4}, nan_out[4] = {1, NAN, 3, 4};
    CHECK(mt_rel_l2_error(good, ref, 4) < 1e-7, "identical outputs");
    CHECK(mt_rel_l2_error(off, ref, 4) > 1e-2, "a 3%% error in one element must show");
    CHECK(isnan(mt_rel_l2_error(nan_out, ref, 4)), "NaN must propagate");
}

int main(void)
{
    test_oracle_by_hand();
    test_routing();
    test_align();
    test_error_detects();
    test_all_variants(MT_DTYPE_FP32, 5, 37, 70, 2, 9);
    test_all_variants(MT_DTYPE_BF16, 8, 48, 136, 3, 1);
    test_all_variants(MT_DTYPE_BF16, 6, 40, 100, 2, 33);
    return check_report("test_kernels");
}
