/* moetune's fp8 CUDA pipeline on a GPU: every scheme (per tensor with
 * static and with dynamic activation scales, per channel, 128x128 blocks)
 * at several tiles, its output checked against the CPU's fp8 oracle
 * (kernels/cpu/moe_ref.c: the same quantisation, float64 elsewhere); then
 * each scheme timed against the bf16 pipeline of the same tile on a
 * realistic shape, both with random weights.
 *
 * usage: cuda_fp8_check [--time]     (prints markdown tables; exit 1 on a failed check)
 *   FP8_FROM=N: the checks from scheme N on (4: none); FP8_TIME_M=M: only the timing rows of batch size M */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cuda_rt.h"
#include "fp8.h"
#include "moe_cpu.h"
#include "moe_launch.h"
#include "moetune/moetune.h"

static mt_cuda *c;

static const char *scheme_name(int sch, int dyn)
{
    return sch == MT_QUANT_BLOCK ? "block 128x128" : sch == MT_QUANT_CHANNEL ? "channel" : dyn ? "tensor, dynamic" : "tensor, static";
}

struct prob {
    int E, N, K, topk, M, sch, dyn;
    mt_moe_shape s;
    uint16_t *x;
    uint8_t *q1, *q2;
    float *s1, *s2, a1, a2;
    int32_t *ids;
    float *tw;
    mt_dptr dx, dq1, dq2, ds1, ds2, da1, da2, dids, dtw, dout, dws;
    size_t ws_bytes;
};

static int upload(mt_dptr *d, const void *h, size_t n)
{
    int rc = mt_cuda_alloc(c, n ? n : 4, d);
    return rc == MT_OK && n ? mt_cuda_h2d(c, *d, h, n) : rc;
}

/* For timing: the same buffers filled on the device with constants (the
 * tensor cores' speed does not depend on the values), scales constant and
 * static, the routing real: realistic shapes set up in moments. */
static int prob_make_timing(struct prob *p, int E, int N, int K, int topk, int M, int sch)
{
    memset(p, 0, sizeof *p);
    p->E = E, p->N = N, p->K = K, p->topk = topk, p->M = M, p->sch = sch;
    mt_moe_shape s = {E, N, K, topk, MT_DTYPE_FP8_W8A8, 1, sch, sch == MT_QUANT_BLOCK ? 128 : 0, sch == MT_QUANT_BLOCK ? 128 : 0};
    p->s = s;
    size_t n1 = (size_t)E * 2 * N * K, n2 = (size_t)E * K * N, c1 = (size_t)mt_moe_weight_scales(&s, 1),
           c2 = (size_t)mt_moe_weight_scales(&s, 2), cmax = c1 > c2 ? c1 : c2;
    float *sc = malloc(cmax * 4), *lg = malloc((size_t)M * E * 4);
    p->ids = malloc((size_t)M * topk * 4), p->tw = malloc((size_t)M * topk * 4);
    if (!sc || !lg || !p->ids || !p->tw) return MT_ENOMEM;
    for (size_t i = 0; i < cmax; i++) sc[i] = 1.0f / 64;
    p->a1 = p->a2 = 1.0f / 32;
    mt_rng r = {0x7117 ^ (uint64_t)(E * 31 + N * 7 + K)};
    for (size_t i = 0; i < (size_t)M * E; i++) lg[i] = 2.f * mt_rng_uniform(&r);
    int rc = mt_moe_route(lg, M, E, topk, 1, p->ids, p->tw);
    /* x 0x3c3c (bf16 0.0115), weights 0x30 (e4m3 0.5) */
    if (rc == MT_OK) rc = mt_cuda_alloc(c, (size_t)M * K * 2, &p->dx);
    if (rc == MT_OK) rc = mt_cuda_memset_async(c, p->dx, 0x3c, (size_t)M * K * 2);
    if (rc == MT_OK) rc = mt_cuda_alloc(c, n1, &p->dq1);
    if (rc == MT_OK) rc = mt_cuda_memset_async(c, p->dq1, 0x30, n1);
    if (rc == MT_OK) rc = mt_cuda_alloc(c, n2, &p->dq2);
    if (rc == MT_OK) rc = mt_cuda_memset_async(c, p->dq2, 0x30, n2);
    if (rc == MT_OK) rc = upload(&p->ds1, sc, c1 * 4);
    if (rc == MT_OK) rc = upload(&p->ds2, sc, c2 * 4);
    if (rc == MT_OK) rc = upload(&p->da1, &p->a1, 4);
    if (rc == MT_OK) rc = upload(&p->da2, &p->a2, 4);
    if (rc == MT_OK) rc = upload(&p->dids, p->ids, (size_t)M * topk * 4);
    if (rc == MT_OK) rc = upload(&p->dtw, p->tw, (size_t)M * topk * 4);
    if (rc == MT_OK) rc = mt_cuda_alloc(c, (size_t)M * K * 2, &p->dout);
    if (rc == MT_OK) rc = mt_cuda_sync(c);
    free(sc), free(lg);
    return rc;
}

static int prob_make(struct prob *p, int E, int N, int K, int topk, int M, int sch, int dyn)
{
    memset(p, 0, sizeof *p);
    p->E = E, p->N = N, p->K = K, p->topk = topk, p->M = M, p->sch = sch, p->dyn = dyn;
    mt_moe_shape s = {E, N, K, topk, MT_DTYPE_FP8_W8A8, 1, sch, sch == MT_QUANT_BLOCK ? 128 : 0, sch == MT_QUANT_BLOCK ? 128 : 0};
    p->s = s;
    size_t n1 = (size_t)E * 2 * N * K, n2 = (size_t)E * K * N;
    float *f1 = malloc(n1 * 4), *f2 = malloc(n2 * 4), *lg = malloc((size_t)M * E * 4);
    p->x = malloc((size_t)M * K * 2);
    p->q1 = malloc(n1), p->q2 = malloc(n2);
    p->s1 = malloc((size_t)mt_moe_weight_scales(&s, 1) * 4), p->s2 = malloc((size_t)mt_moe_weight_scales(&s, 2) * 4);
    p->ids = malloc((size_t)M * topk * 4), p->tw = malloc((size_t)M * topk * 4);
    if (!f1 || !f2 || !lg || !p->x || !p->q1 || !p->q2 || !p->s1 || !p->s2 || !p->ids || !p->tw) return MT_ENOMEM;
    mt_rng r = {0x8f8f ^ (uint64_t)(E * 31 + N * 7 + K)};
    /* magnitudes vary by row (a power of two of 8), so misplaced scales show */
    for (size_t i = 0; i < n1; i++) f1[i] = mt_rng_uniform(&r) / sqrtf((float)K) * (float)(1 << ((i / (size_t)K) % 4));
    for (size_t i = 0; i < n2; i++) f2[i] = mt_rng_uniform(&r) / sqrtf((float)N) * (float)(1 << ((i / (size_t)N) % 4));
    float xm = 0;
    for (size_t i = 0; i < (size_t)M * K; i++) {
        p->x[i] = mt_f32_to_bf16(mt_rng_uniform(&r) * (float)(1 + (i / (size_t)K) % 3));
        xm = fmaxf(xm, fabsf(mt_bf16_to_f32(p->x[i])));
    }
    for (size_t i = 0; i < (size_t)M * E; i++) lg[i] = 2.f * mt_rng_uniform(&r);
    int rc = mt_moe_route(lg, M, E, topk, 1, p->ids, p->tw);
    if (rc == MT_OK) rc = mt_moe_quantize_weights(&p->s, f1, f2, p->q1, p->q2, p->s1, p->s2);
    free(f1), free(f2), free(lg);
    /* static scales, calibrated on these inputs as a checkpoint's are */
    if (rc == MT_OK && sch == MT_QUANT_TENSOR && !dyn) {
        float am = 0;
        p->a1 = mt_fp8_scale_of(xm);
        mt_moe_scales sc = {p->s1, p->s2, &p->a1, NULL};
        rc = mt_moe_reference_fp8(&p->s, M, p->x, p->q1, p->q2, &sc, p->ids, p->tw, NULL, &am);
        p->a2 = mt_fp8_scale_of(am);
    }
    if (rc == MT_OK) rc = upload(&p->dx, p->x, (size_t)M * K * 2);
    if (rc == MT_OK) rc = upload(&p->dq1, p->q1, n1);
    if (rc == MT_OK) rc = upload(&p->dq2, p->q2, n2);
    if (rc == MT_OK) rc = upload(&p->ds1, p->s1, (size_t)mt_moe_weight_scales(&s, 1) * 4);
    if (rc == MT_OK) rc = upload(&p->ds2, p->s2, (size_t)mt_moe_weight_scales(&s, 2) * 4);
    if (rc == MT_OK) rc = upload(&p->da1, &p->a1, 4);
    if (rc == MT_OK) rc = upload(&p->da2, &p->a2, 4);
    if (rc == MT_OK) rc = upload(&p->dids, p->ids, (size_t)M * topk * 4);
    if (rc == MT_OK) rc = upload(&p->dtw, p->tw, (size_t)M * topk * 4);
    if (rc == MT_OK) rc = mt_cuda_alloc(c, (size_t)M * K * 2, &p->dout);
    return rc;
}

static void prob_free(struct prob *p)
{
    mt_dptr d[] = {p->dx, p->dq1, p->dq2, p->ds1, p->ds2, p->da1, p->da2, p->dids, p->dtw, p->dout, p->dws};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (d[i]) mt_cuda_free(c, d[i]);
    free(p->x), free(p->q1), free(p->q2), free(p->s1), free(p->s2), free(p->ids), free(p->tw);
}

struct launch {
    const mt_cuda_moe *v;
    mt_cuda_moe_args a;
};
static int run(mt_cuda *cc, void *arg)
{
    struct launch *l = arg;
    return mt_cuda_moe_enqueue(cc, l->v, &l->a, NULL);
}

/* a variant for p (fp8 0: the bf16 pipeline, whose weights the caller put
 * in dq1, dq2) and its arguments; the workspace grown as needed */
static int prepare(struct prob *p, const mt_cuda_moe_cfg *cfg, int fp8, mt_cuda_moe *v, struct launch *l, char *why, size_t n)
{
    int rc = mt_cuda_moe_build(c, cfg, 0, fp8, "/tmp/mt_fp8_kcache", v, why, n);
    if (rc != MT_OK) return rc;
    size_t need = mt_cuda_moe_workspace(v, p->M, p->E, p->N, p->K, p->topk);
    if (need > p->ws_bytes) {
        if (p->dws) mt_cuda_free(c, p->dws);
        p->dws = 0;
        if ((rc = mt_cuda_alloc(c, need, &p->dws)) != MT_OK) return rc;
        p->ws_bytes = need;
    }
    memset(l, 0, sizeof *l);
    l->v = v;
    l->a = (mt_cuda_moe_args){p->dx, p->dq1, p->dq2, p->dids, p->dtw, p->dout, p->dws, p->M, p->E, p->N, p->K, p->topk,
                              p->M, p->ds1, p->ds2, 0, 0, p->sch == MT_QUANT_CHANNEL, p->s.block_n > 0 ? 128 : 0,
                              p->s.block_k > 0 ? 128 : 0};
    if (p->sch == MT_QUANT_TENSOR && !p->dyn) l->a.a1_scale = p->da1, l->a.a2_scale = p->da2;
    return MT_OK;
}

static int check(struct prob *p, const mt_cuda_moe_cfg *cfg, const double *ref, double *err)
{
    mt_cuda_moe v;
    struct launch l;
    char why[400];
    int rc = prepare(p, cfg, p->sch == MT_QUANT_BLOCK ? 2 : 1, &v, &l, why, sizeof why);
    if (rc != MT_OK) {
        printf("| %s | %d/%d/%d w%d s%d | build: %s |\n", scheme_name(p->sch, p->dyn), cfg->block_m, cfg->block_n,
               cfg->block_k, cfg->warps, cfg->stages, why);
        return rc;
    }
    size_t n = (size_t)p->M * p->K;
    uint16_t *o = malloc(n * 2);
    float *of = malloc(n * 4);
    if ((rc = mt_cuda_memset_async(c, p->dout, 0xff, n * 2)) == MT_OK && (rc = run(c, &l)) == MT_OK &&
        (rc = mt_cuda_sync(c)) == MT_OK && (rc = mt_cuda_d2h(c, o, p->dout, n * 2)) == MT_OK) {
        for (size_t i = 0; i < n; i++) of[i] = mt_bf16_to_f32(o[i]);
        *err = mt_rel_l2_error(of, ref, n);
    } else {
        snprintf(why, sizeof why, "%s", mt_cuda_errmsg(c));
    }
    if (rc != MT_OK) printf("| %s | run: %s |\n", scheme_name(p->sch, p->dyn), why);
    free(o), free(of);
    mt_cuda_moe_release(c, &v);
    return rc;
}

static double time_us(struct prob *p, const mt_cuda_moe_cfg *cfg, int fp8, char *why, size_t n)
{
    mt_cuda_moe v;
    struct launch l;
    if (prepare(p, cfg, fp8, &v, &l, why, n) != MT_OK) return NAN;
    float best = 1e30f, ms;
    for (int i = 0; i < 30; i++)
        if (mt_cuda_time(c, run, &l, &ms) == MT_OK && i >= 3 && ms < best) best = ms;
    mt_cuda_moe_release(c, &v);
    return best < 1e29f ? best * 1e3 : NAN;
}

int main(int argc, char **argv)
{
    char err[512];
    int timing = argc > 1 && !strcmp(argv[1], "--time"), failed = 0;
    mkdir("/tmp/mt_fp8_kcache", 0755); /* each variant compiled once */
    if (mt_cuda_open(&c, 0, err, sizeof err) != MT_OK) {
        printf("cuda_fp8_check: %s\n", err);
        return 77;
    }
    const mt_cuda_props *pr = mt_cuda_get_props(c);
    printf("device %s (%s)\n\n", pr->name, pr->arch);
    static const mt_cuda_moe_cfg cfgs[] = {
        {16, 32, 64, 1, 4, 2, 0, 0, 0},   {16, 64, 128, 1, 4, 3, 0, 0, 0},  {32, 64, 128, 8, 4, 4, 0, 0, 0},
        {64, 64, 128, 1, 4, 3, 0, 0, 0},  {64, 128, 64, 16, 8, 3, 0, 0, 0}, {128, 64, 128, 1, 8, 2, 132, 0, 0},
        /* on sm_90a these, and 64x64x128 and 128x64x128 above, take the
         * warpgroup MMA (16 to 64 columns a warpgroup); 128x128x128 does not
         * (its two sets of accumulators would not fit) */
        {64, 32, 128, 1, 8, 3, 0, 0, 0}, {64, 128, 128, 8, 8, 4, 0, 0, 0}, {128, 128, 128, 1, 8, 3, 264, 0, 0},
        /* the small-batch path, where the experts hold two pairs at most */
        {16, 64, 64, 1, 4, 2, 0, 0, 1},   {16, 256, 64, 1, 8, 2, 0, 0, 1},
    };
    static const struct { int E, N, K, topk, M; } shapes[] = {
        {8, 256, 512, 2, 37}, {16, 384, 640, 4, 96}, {32, 256, 1024, 8, 5}, {64, 256, 1024, 8, 1}};
    static const struct { int sch, dyn; } schemes[] = {
        {MT_QUANT_TENSOR, 0}, {MT_QUANT_TENSOR, 1}, {MT_QUANT_CHANNEL, 0}, {MT_QUANT_BLOCK, 0}};
    printf("| scheme | E N K top-k M | config (BM/BN/BK warps stages) | rel. error vs fp8 oracle | ok |\n| --- | --- | --- | --- | --- |\n");
    /* FP8_FROM=N: from scheme N on (4: none, only the timing) */
    size_t from = getenv("FP8_FROM") ? (size_t)atoi(getenv("FP8_FROM")) : 0;
    for (size_t si = from; si < sizeof schemes / sizeof schemes[0]; si++)
        for (size_t hi = 0; hi < sizeof shapes / sizeof shapes[0]; hi++) {
            struct prob p;
            if (prob_make(&p, shapes[hi].E, shapes[hi].N, shapes[hi].K, shapes[hi].topk, shapes[hi].M, schemes[si].sch,
                          schemes[si].dyn) != MT_OK) {
                printf("setup failed: %s\n", mt_cuda_errmsg(c));
                return 1;
            }
            /* the oracle once per problem */
            double *ref = malloc((size_t)p.M * p.K * 8);
            mt_moe_scales sc = {p.s1, p.s2, p.sch == MT_QUANT_TENSOR && !p.dyn ? &p.a1 : NULL,
                                p.sch == MT_QUANT_TENSOR && !p.dyn ? &p.a2 : NULL};
            if (!ref || mt_moe_reference_fp8(&p.s, p.M, p.x, p.q1, p.q2, &sc, p.ids, p.tw, ref, NULL) != MT_OK) return 1;
            for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
                double e = NAN;
                if (cfgs[ci].gemv && !mt_cuda_gemv_fits(p.M, p.E, p.topk)) continue;
                if (check(&p, &cfgs[ci], ref, &e) != MT_OK) {
                    failed++;
                    continue;
                }
                /* bf16 output and intermediate: about 4e-3; a misplaced scale or tile is far above */
                int ok = e <= 1e-2;
                failed += !ok;
                printf("| %s | %d %d %d %d %d | %d/%d/%d w%d s%d%s | %.2e | %s |\n", scheme_name(p.sch, p.dyn), p.E, p.N,
                       p.K, p.topk, p.M, cfgs[ci].block_m, cfgs[ci].block_n, cfgs[ci].block_k, cfgs[ci].warps,
                       cfgs[ci].stages, cfgs[ci].gemv ? " GEMV" : "", e, ok ? "ok" : "FAIL");
            }
            free(ref);
            prob_free(&p);
        }
    /* the runtime's entry point, as an engine calls it: the default config
     * (no file), the descriptor's device pointers, the caller's stream */
    printf("\n| mt_fused_moe_fp8_cuda | E N K top-k M | config ran | rel. error | ok |\n| --- | --- | --- | --- | --- |\n");
    mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
    o.backend = "cuda";
    o.config_dir = o.cache_dir = o.bundled_dir = o.tuned_dir = "/nonexistent";
    mt_runtime *rt = NULL;
    for (size_t si = 0; si < sizeof schemes / sizeof schemes[0] && mt_runtime_open(&rt, &o) == MT_OK; si++) {
        struct prob p;
        if (prob_make(&p, 16, 384, 640, 4, 96, schemes[si].sch, schemes[si].dyn) != MT_OK) break;
        size_t n = (size_t)p.M * p.K;
        int st = p.sch == MT_QUANT_TENSOR && !p.dyn;
        mt_quant q = {p.sch, p.s.block_n, p.s.block_k, (const float *)(uintptr_t)p.ds1, (const float *)(uintptr_t)p.ds2,
                      st ? (const float *)(uintptr_t)p.da1 : NULL, st ? (const float *)(uintptr_t)p.da2 : NULL};
        mt_moe_config used;
        memset(&used, 0, sizeof used);
        uint16_t *ob = malloc(n * 2);
        float *of = malloc(n * 4);
        double *ref = malloc(n * 8), e = NAN;
        mt_moe_scales sc = {p.s1, p.s2, st ? &p.a1 : NULL, st ? &p.a2 : NULL};
        int rc = mt_fused_moe_fp8_cuda(rt, &q, p.M, p.E, p.N, p.K, p.topk, p.dx, p.dq1, p.dq2, p.dids, p.dtw, p.dout,
                                       mt_cuda_stream(c), &used);
        if (rc == MT_OK && (rc = mt_cuda_sync(c)) == MT_OK && (rc = mt_cuda_d2h(c, ob, p.dout, n * 2)) == MT_OK &&
            (rc = mt_moe_reference_fp8(&p.s, p.M, p.x, p.q1, p.q2, &sc, p.ids, p.tw, ref, NULL)) == MT_OK) {
            for (size_t i = 0; i < n; i++) of[i] = mt_bf16_to_f32(ob[i]);
            e = mt_rel_l2_error(of, ref, n);
        }
        int ok = rc == MT_OK && e <= 1e-2;
        failed += !ok;
        printf("| %s | %d %d %d %d %d | %d/%d/%d w%d s%d | %.2e | %s |\n", scheme_name(p.sch, p.dyn), p.E, p.N, p.K,
               p.topk, p.M, used.block_size_m, used.block_size_n, used.block_size_k, used.num_warps, used.num_stages, e,
               ok ? "ok" : mt_status_str(rc));
        free(ob), free(of), free(ref);
        prob_free(&p);
        mt_runtime_close(rt);
        rt = NULL;
    }
    printf("\n%d failed\n", failed);
    if (timing) {
        /* Mixtral-8x7B TP2, Qwen3-30B-A3B and DeepSeek-V3 TP8 at M = 64 and 1024: each
         * fp8 scheme against bf16 with the same tile (the best of 27 timed
         * runs after 3, CUDA events around one pipeline) */
        static const struct { const char *name; int E, N, K, topk, M, sch; } rows[] = {
            {"Mixtral TP2", 8, 7168, 4096, 2, 64, MT_QUANT_TENSOR}, {"Mixtral TP2", 8, 7168, 4096, 2, 1024, MT_QUANT_TENSOR},
            {"Qwen3-30B-A3B", 128, 768, 2048, 8, 64, MT_QUANT_BLOCK}, {"Qwen3-30B-A3B", 128, 768, 2048, 8, 1024, MT_QUANT_BLOCK},
            {"DeepSeek-V3 TP8", 256, 256, 7168, 8, 64, MT_QUANT_BLOCK}, {"DeepSeek-V3 TP8", 256, 256, 7168, 8, 1024, MT_QUANT_BLOCK},
            {"Qwen3-30B-A3B", 128, 768, 2048, 8, 1, MT_QUANT_BLOCK},   {"DeepSeek-V3 TP8", 256, 256, 7168, 8, 1, MT_QUANT_BLOCK},
        };
        static const mt_cuda_moe_cfg tcfgs[] = {{16, 64, 128, 1, 4, 3, 0, 0, 0},  {64, 128, 64, 16, 8, 3, 0, 0, 0},
                                                {128, 128, 64, 1, 8, 3, 0, 0, 0},  {64, 128, 128, 1, 8, 4, 0, 0, 0},
                                                {128, 64, 128, 1, 8, 4, 0, 0, 0},  {64, 64, 128, 1, 4, 4, 0, 0, 0},
                                                {16, 64, 64, 1, 4, 2, 0, 0, 1}};
        printf("\n| shape | M | scheme | config | fp8 us | bf16 us | fp8 / bf16 |\n| --- | --- | --- | --- | --- | --- | --- |\n");
        /* FP8_TIME_M=M: only the rows of that batch size (1: the GEMV path) */
        int only_m = getenv("FP8_TIME_M") ? atoi(getenv("FP8_TIME_M")) : 0;
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            struct prob p;
            if (only_m && rows[ri].M != only_m) continue;
            if (prob_make_timing(&p, rows[ri].E, rows[ri].N, rows[ri].K, rows[ri].topk, rows[ri].M, rows[ri].sch) != MT_OK) {
                printf("setup failed: %s\n", mt_cuda_errmsg(c));
                return 1;
            }
            /* bf16 weights and x of the same shape for the baseline */
            mt_dptr q1 = p.dq1, q2 = p.dq2;
            mt_dptr b1 = 0, b2 = 0;
            size_t n1 = (size_t)p.E * 2 * p.N * p.K, n2 = (size_t)p.E * p.K * p.N;
            int ok = mt_cuda_alloc(c, n1 * 2, &b1) == MT_OK && mt_cuda_alloc(c, n2 * 2, &b2) == MT_OK &&
                     mt_cuda_memset_async(c, b1, 0x3c, n1 * 2) == MT_OK && mt_cuda_memset_async(c, b2, 0x3c, n2 * 2) == MT_OK;
            for (size_t ci = 0; ok && ci < sizeof tcfgs / sizeof tcfgs[0]; ci++) {
                char why[300] = "";
                if (tcfgs[ci].gemv != mt_cuda_gemv_fits(p.M, p.E, p.topk)) continue; /* GEMV where it fits, only there */
                p.dq1 = q1, p.dq2 = q2;
                double f = time_us(&p, &tcfgs[ci], p.sch == MT_QUANT_BLOCK ? 2 : 1, why, sizeof why);
                p.dq1 = b1, p.dq2 = b2;
                double b = time_us(&p, &tcfgs[ci], 0, why, sizeof why);
                printf("| %s | %d | %s | %d/%d/%d w%d s%d%s | %.1f | %.1f | %.2f |%s\n", rows[ri].name, p.M,
                       scheme_name(p.sch, 0), tcfgs[ci].block_m, tcfgs[ci].block_n, tcfgs[ci].block_k, tcfgs[ci].warps,
                       tcfgs[ci].stages, tcfgs[ci].gemv ? " GEMV" : "", f, b, f / b, why[0] ? why : "");
            }
            p.dq1 = q1, p.dq2 = q2;
            if (b1) mt_cuda_free(c, b1);
            if (b2) mt_cuda_free(c, b2);
            prob_free(&p);
        }
    }
    mt_cuda_close(c);
    return failed ? 1 : 0;
}
