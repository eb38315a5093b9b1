/* The CUDA worker's measurement: compile a variant with NVRTC (cached),
 * prune what cannot launch, run it on the batch size's random inputs with the output
 * poisoned, check a window of tokens against the float64 oracle on the
 * device, then time CUDA-graph replays of the whole pipeline with L2
 * flushed before each. */
#include "measure_cuda.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "attn_launch.h"
#include "cuda_rt.h"
#include "fp8.h"
#include "moe_launch.h"
#include "moe_cpu.h"
#include "space.h"


struct mt_cuda_bench {
    mt_cuda *c;
    char cache_dir[1024];
    /* default-config modules, bf16 [0] and fp16 [1]: the fill and
     * reference kernels read and write the problem's own element type */
    mt_cuda_module *base[2];
    mt_cufn fill[2], ref_act[2], ref_out[2], find_nonfinite;
    mt_moe_shape wshape;
    mt_dptr w1, w2;
    mt_dptr s1, s2; /* fp8: the weights' scales */
    /* fp8: the quantiser and the oracle's kernels, built on first use */
    mt_cuda_module *base8;
    mt_cufn quant8, amax8, zero8, ref_act8, ref_out8;
    mt_dptr flush;
    size_t flush_bytes;
    int fault;
    /* the routing of the last inputs: every config of a batch size runs
     * on the same inputs (the caller's seed), and drawing M x E logits and
     * their top-k on the host is most of a large M's fixed cost */
    struct {
        uint64_t seed;
        int64_t M, E, topk;
        int renormalize, experts_hit, n; /* n: routings */
        int32_t *ids;
        float *tw;
        mt_rng after; /* the generator where routing left it */
    } route;
    /* attention decode: the inputs of the last (shape, batch, context,
     * seed), on the host for the reference and on the device, reused by
     * every config of that pair (drawing a long context's KV cache on the
     * host takes seconds) */
    struct {
        mt_attn_shape s;
        int64_t B, ctx, per, pages;
        uint64_t seed;
        void *q, *k, *v;
        int32_t *bt, *lens;
        mt_dptr dq, dk, dv, dbt, dlens;
    } attn;
};

static void attn_inputs_free(mt_cuda_bench *b)
{
    free(b->attn.q), free(b->attn.k), free(b->attn.v), free(b->attn.bt), free(b->attn.lens);
    mt_dptr d[] = {b->attn.dq, b->attn.dk, b->attn.dv, b->attn.dbt, b->attn.dlens};
    for (int i = 0; i < 5; i++) mt_cuda_free(b->c, d[i]);
    memset(&b->attn, 0, sizeof b->attn);
}

int mt_cuda_bench_new(mt_cuda_bench **out, int hip, int ordinal, const char *cache_dir, char *err, size_t n)
{
    mt_cuda_bench *b = calloc(1, sizeof *b);
    int rc;
    char *log = NULL;
    if (!b) return MT_ENOMEM;
    if ((rc = hip ? mt_hip_open(&b->c, ordinal, err, n) : mt_cuda_open(&b->c, ordinal, err, n)) != MT_OK) {
        free(b);
        return rc;
    }
    snprintf(b->cache_dir, sizeof b->cache_dir, "%s", cache_dir ? cache_dir : "");
    rc = MT_OK;
    for (int h = 0; h < 2 && rc == MT_OK; h++) {
        const char *opts[] = {h ? "-DMT_FP16=1" : "-DMT_FP16=0"};
        rc = mt_cuda_build(b->c, mt_cuda_moe_source(), opts, 1, cache_dir, &b->base[h], &log);
        if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base[h], "fill_random", &b->fill[h], NULL);
        if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base[h], "ref_act", &b->ref_act[h], NULL);
        if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base[h], "ref_out", &b->ref_out[h], NULL);
    }
    if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base[0], "find_nonfinite", &b->find_nonfinite, NULL);
    /* L2 is flushed by writing a buffer several times its size */
    b->flush_bytes = (size_t)(mt_cuda_get_props(b->c)->l2_bytes > 0 ? mt_cuda_get_props(b->c)->l2_bytes : 50 << 20) * 4;
    if (rc == MT_OK) rc = mt_cuda_alloc(b->c, b->flush_bytes, &b->flush);
    if (rc != MT_OK) {
        snprintf(err, n, "%s bench setup failed: %s%s%s", hip ? "HIP" : "CUDA", mt_cuda_errmsg(b->c), log ? "\n" : "",
                 log ? log : "");
        free(log);
        mt_cuda_bench_free(b);
        return rc;
    }
    *out = b;
    return MT_OK;
}

void mt_cuda_bench_free(mt_cuda_bench *b)
{
    if (!b) return;
    if (b->c) {
        attn_inputs_free(b);
        mt_cuda_free(b->c, b->w1);
        mt_cuda_free(b->c, b->w2);
        mt_cuda_free(b->c, b->flush);
        mt_cuda_module_free(b->c, b->base[0]);
        mt_cuda_module_free(b->c, b->base[1]);
        mt_cuda_module_free(b->c, b->base8);
        mt_cuda_free(b->c, b->s1);
        mt_cuda_free(b->c, b->s2);
        mt_cuda_close(b->c);
    }
    free(b->route.ids);
    free(b->route.tw);
    free(b);
}

void mt_cuda_bench_set_fault(mt_cuda_bench *b, int fault) { b->fault = fault; }

int mt_cuda_bench_info(mt_cuda_bench *b, mt_device_info *d)
{
    const mt_cuda_props *p = mt_cuda_get_props(b->c);
    memset(d, 0, sizeof *d);
    const int hip = mt_cuda_is_hip(b->c);
    snprintf(d->backend, sizeof d->backend, "%s", hip ? "hip" : "cuda");
    snprintf(d->raw_name, sizeof d->raw_name, "%s", p->name);
    if (hip) snprintf(d->name, sizeof d->name, "%s", p->vllm_name);
    else mt_device_vllm_name(d->name, sizeof d->name, p->name);
    snprintf(d->arch, sizeof d->arch, "%s", p->arch);
    d->cores = p->sms;
    d->memory_bytes = p->memory_bytes;
    d->l2_bytes = p->l2_bytes;
    d->smem_per_block = p->smem_optin;
    if (hip) {
        snprintf(d->driver, sizeof d->driver, "hip runtime %d", p->driver_version);
        snprintf(d->toolkit, sizeof d->toolkit, "hiprtc");
    } else {
        snprintf(d->driver, sizeof d->driver, "cuda driver %d.%d", p->driver_version / 1000,
                 (p->driver_version % 1000) / 10);
        snprintf(d->toolkit, sizeof d->toolkit, "nvrtc %d.%d", p->nvrtc_major, p->nvrtc_minor);
    }
    return MT_OK;
}


/* n random values of the element type (fp16 1: fp16, else bf16) */
static int fill(mt_cuda_bench *b, int fp16, mt_dptr dst, long n, unsigned long long seed, float scale)
{
    void *args[] = {&dst, &n, &seed, &scale};
    unsigned grid = (unsigned)((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096);
    return mt_cuda_launch(b->c, b->fill[fp16 ? 1 : 0], grid ? grid : 1, 256, 0, args);
}

/* fp8 weights: drawn in fp32 on the host one expert at a time, quantised
 * as a checkpoint stores them (mt_moe_quantize_weights) and copied up */
static int fp8_weights(mt_cuda_bench *b, const mt_moe_shape *s)
{
    mt_moe_shape one = *s;
    one.E = 1;
    size_t r1 = (size_t)(2 * s->N * s->K), r2 = (size_t)(s->K * s->N);
    size_t c1 = (size_t)mt_moe_weight_scales(&one, 1), c2 = (size_t)mt_moe_weight_scales(&one, 2);
    float *f1 = malloc(r1 * 4), *f2 = malloc(r2 * 4), *s1 = malloc(c1 * 4), *s2 = malloc(c2 * 4);
    uint8_t *q1 = malloc(r1), *q2 = malloc(r2);
    int rc = f1 && f2 && s1 && s2 && q1 && q2 ? MT_OK : MT_ENOMEM;
    if (rc == MT_OK) rc = mt_cuda_alloc(b->c, c1 * (size_t)s->E * 4, &b->s1);
    if (rc == MT_OK) rc = mt_cuda_alloc(b->c, c2 * (size_t)s->E * 4, &b->s2);
    mt_rng r = {0x77315eedull + (uint64_t)s->K * 31 + (uint64_t)s->N};
    for (int64_t e = 0; rc == MT_OK && e < s->E; e++) {
        mt_fill_random(f1, MT_DTYPE_FP32, r1, 1.0f / sqrtf((float)s->K), &r);
        mt_fill_random(f2, MT_DTYPE_FP32, r2, 1.0f / sqrtf((float)s->N), &r);
        rc = mt_moe_quantize_weights(&one, f1, f2, q1, q2, s1, s2);
        if (rc == MT_OK) rc = mt_cuda_h2d(b->c, b->w1 + (mt_dptr)((size_t)e * r1), q1, r1);
        if (rc == MT_OK) rc = mt_cuda_h2d(b->c, b->w2 + (mt_dptr)((size_t)e * r2), q2, r2);
        if (rc == MT_OK) rc = mt_cuda_h2d(b->c, b->s1 + (mt_dptr)((size_t)e * c1 * 4), s1, c1 * 4);
        if (rc == MT_OK) rc = mt_cuda_h2d(b->c, b->s2 + (mt_dptr)((size_t)e * c2 * 4), s2, c2 * 4);
    }
    free(f1), free(f2), free(s1), free(s2), free(q1), free(q2);
    return rc;
}

static int ensure_weights(mt_cuda_bench *b, const mt_moe_shape *s)
{
    if (b->w1 && memcmp(&b->wshape, s, sizeof *s) == 0) return MT_OK;
    mt_cuda_free(b->c, b->w1);
    mt_cuda_free(b->c, b->w2);
    mt_cuda_free(b->c, b->s1);
    mt_cuda_free(b->c, b->s2);
    b->w1 = b->w2 = b->s1 = b->s2 = 0;
    int fp8 = s->dtype == MT_DTYPE_FP8_W8A8;
    size_t esz = fp8 ? 1 : 2;
    long n1 = (long)(s->E * 2 * s->N * s->K), n2 = (long)(s->E * s->K * s->N);
    int rc = mt_cuda_alloc(b->c, (size_t)n1 * esz, &b->w1);
    if (rc == MT_OK) rc = mt_cuda_alloc(b->c, (size_t)n2 * esz, &b->w2);
    if (rc == MT_OK && fp8) rc = fp8_weights(b, s);
    if (rc == MT_OK && !fp8)
        rc = fill(b, s->dtype == MT_DTYPE_FP16, b->w1, n1, 0x77315eedull + (unsigned long long)s->K, 1.0f / sqrtf((float)s->K));
    if (rc == MT_OK && !fp8)
        rc = fill(b, s->dtype == MT_DTYPE_FP16, b->w2, n2, 0x77325eedull + (unsigned long long)s->N, 1.0f / sqrtf((float)s->N));
    if (rc == MT_OK) rc = mt_cuda_sync(b->c);
    if (rc != MT_OK) {
        mt_cuda_free(b->c, b->w1);
        mt_cuda_free(b->c, b->w2);
        mt_cuda_free(b->c, b->s1);
        mt_cuda_free(b->c, b->s2);
        b->w1 = b->w2 = b->s1 = b->s2 = 0;
        return rc;
    }
    b->wshape = *s;
    return MT_OK;
}

/* the fp8 quantiser and oracle kernels (moe.cu's fp8 section) */
static int ensure_fp8_base(mt_cuda_bench *b, char *why, size_t n)
{
    if (b->base8) return MT_OK;
    const char *opts[] = {"-DMT_FP16=0", "-DMT_FP8=1", "-DMT_WGMMA=0"};
    char *log = NULL;
    int rc = mt_cuda_build(b->c, mt_cuda_moe_source(), opts, 3, b->cache_dir[0] ? b->cache_dir : NULL, &b->base8, &log);
    if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base8, "fp8_quant_rows", &b->quant8, NULL);
    if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base8, "fp8_amax", &b->amax8, NULL);
    if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base8, "fp8_zero", &b->zero8, NULL);
    if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base8, "ref_act_fp8", &b->ref_act8, NULL);
    if (rc == MT_OK) rc = mt_cuda_function(b->c, b->base8, "ref_out_fp8", &b->ref_out8, NULL);
    if (rc != MT_OK) {
        snprintf(why, n, "the fp8 oracle's kernels: %s%s%.120s", mt_cuda_errmsg(b->c), log ? ": " : "", log ? log : "");
        mt_cuda_module_free(b->c, b->base8);
        b->base8 = NULL;
    }
    free(log);
    return rc;
}

/* The intermediate of the oracle's window (rows of cols doubles) as the
 * pipeline stores and quantises it: rounded to bf16, then to e4m3 with the
 * scheme's scales (common/fp8.c), and back, in place. */
static int fp8_host_qdq(double *a, long rows, int cols, const mt_moe_shape *s, float a2)
{
    size_t n = (size_t)rows * (size_t)cols, group = s->scheme == MT_QUANT_BLOCK ? (size_t)s->block_k : (size_t)cols;
    size_t ng = ((size_t)cols + group - 1) / group;
    float *f = malloc(n * 4), *sc = malloc(((size_t)rows * ng + 1) * 4);
    uint8_t *q = malloc(n);
    if (!f || !sc || !q) {
        free(f), free(sc), free(q);
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) f[i] = mt_bf16_to_f32(mt_f32_to_bf16((float)a[i]));
    if (s->scheme == MT_QUANT_TENSOR)
        for (size_t i = 0; i < n; i++) a[i] = (double)mt_e4m3_to_f32(mt_f32_to_e4m3(f[i] / a2)) * a2;
    else {
        mt_fp8_quant_groups(f, (size_t)rows, (size_t)cols, group, q, sc);
        for (size_t i = 0; i < n; i++)
            a[i] = (double)mt_e4m3_to_f32(q[i]) * sc[(i / (size_t)cols) * ng + (i % (size_t)cols) / group];
    }
    free(f), free(sc), free(q);
    return MT_OK;
}

/* One run of the pipeline: the variant and its arguments. */
struct pipe {
    const mt_cuda_moe *v;
    mt_cuda_moe_args a;
};

static int launch_pipe(mt_cuda *c, void *arg)
{
    struct pipe *p = arg;
    return mt_cuda_moe_enqueue(c, p->v, &p->a, NULL);
}

struct replay { mt_cugraph g; };
static int launch_graph(mt_cuda *c, void *arg) { return mt_cuda_graph_launch(c, ((struct replay *)arg)->g); }

static double h2d_f(uint16_t h, int dtype)
{
    if (dtype == MT_DTYPE_BF16) return mt_bf16_to_f32(h);
    /* fp16 */
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return s ? -v : v;
}

/* routing k of the batch size's routings into the buffers the pipeline
 * reads, on the stream, so it lands before the next run */
static int use_routing(mt_cuda *c, struct pipe *p, mt_dptr all_ids, mt_dptr all_w, size_t pairs, int k)
{
    int rc = mt_cuda_d2d_async(c, p->a.topk_ids, all_ids + (mt_dptr)k * pairs * 4, pairs * 4);
    if (rc == MT_OK) rc = mt_cuda_d2d_async(c, p->a.topk_w, all_w + (mt_dptr)k * pairs * 4, pairs * 4);
    return rc;
}

/* A GPU's timer: CUDA events around one replay of the captured graph,
 * each run's inputs (the routing of a fused-MoE run; NULL for a kernel
 * whose inputs do not change) copied in and the L2 flushed before it,
 * outside the window. */
struct gpu_run {
    mt_cuda *c;
    mt_cuda_bench *b;
    struct replay *g;
    struct pipe *p; /* fused MoE: its routings */
    mt_dptr all_ids, all_w;
    size_t pairs;
    int routings;
};
static int gpu_prepare(void *ctx, int rep, int cold)
{
    struct gpu_run *r = ctx;
    int rc = MT_OK;
    if (r->p) rc = use_routing(r->c, r->p, r->all_ids, r->all_w, r->pairs, rep % r->routings);
    if (rc == MT_OK && cold) rc = mt_cuda_memset_async(r->c, r->b->flush, (unsigned char)rep, r->b->flush_bytes);
    return rc;
}
static int gpu_run(void *ctx, double *seconds)
{
    struct gpu_run *r = ctx;
    if (!seconds) return mt_cuda_graph_launch(r->c, r->g->g);
    float ms = 0;
    int rc = mt_cuda_time(r->c, launch_graph, r->g, &ms);
    *seconds = ms * 1e-3;
    return rc;
}

int mt_cuda_bench_measure(mt_cuda_bench *b, const mt_moe_shape *s, int64_t M, const mt_config *cfg, uint64_t seed,
                          const mt_policy *pol, mt_measure_result *res, char *resources, size_t rlen)
{
    mt_cuda *c = b->c;
    int rc = MT_OK, built = 0;
    mt_cuda_moe var;
    struct pipe p;
    struct replay rp = {NULL};
    float *logits = NULL, *tw = NULL;
    double *times = NULL;
    int32_t *ids = NULL;
    uint16_t *out = NULL;
    double *ref = NULL;
    mt_dptr act64 = 0, ref64 = 0, all_ids = 0, all_w = 0, scan = 0, xq = 0, xs = 0, scal = 0;
    double *acth = NULL; /* fp8: the oracle's intermediate on the host */
    memset(res, 0, sizeof *res);
    memset(&p, 0, sizeof p);
    if (resources && rlen) resources[0] = 0;
    const int fp8 = s->dtype == MT_DTYPE_FP8_W8A8 ? (s->scheme == MT_QUANT_BLOCK ? 2 : 1) : 0;
    if (s->dtype != MT_DTYPE_BF16 && s->dtype != MT_DTYPE_FP16 && !fp8) {
        snprintf(res->reason, sizeof res->reason, "the CUDA kernels take bf16, fp16 and fp8_w8a8");
        return MT_OK;
    }
    if (s->K % (fp8 ? 16 : 8) || s->N % (fp8 ? 16 : 8)) {
        snprintf(res->reason, sizeof res->reason, "N and K must be multiples of %d (16-byte rows)", fp8 ? 16 : 8);
        return MT_OK;
    }
    /* compile the variant: its parameters are compile-time constants */
    char why[256];
    mt_cuda_moe_cfg lc;
    mt_cuda_moe_cfg_from_space(cfg->v, mt_cuda_is_hip(c), &lc);
    if (fp8 == 2 && ((!lc.gemv && (lc.block_k < 1 || s->block_k % lc.block_k)) || s->block_n % 2 || s->block_k % 16)) {
        snprintf(res->reason, sizeof res->reason, "BLOCK_SIZE_K must divide the scale block's depth, which is a multiple of 16");
        return MT_OK;
    }
    if (fp8 && (rc = ensure_fp8_base(b, why, sizeof why)) != MT_OK) {
        snprintf(res->reason, sizeof res->reason, "%s", why);
        return rc == MT_EPARSE ? MT_OK : rc;
    }
    if ((rc = ensure_weights(b, s)) != MT_OK) return rc;
    rc = mt_cuda_moe_build(c, &lc, s->dtype == MT_DTYPE_FP16, fp8, b->cache_dir[0] ? b->cache_dir : NULL, &var, why,
                           sizeof why);
    if (rc == MT_EPARSE || rc == MT_EUNSUPPORTED) {
        /* did not compile, or cannot launch here: pruned before timing */
        snprintf(res->reason, sizeof res->reason, "%s", why);
        return MT_OK;
    }
    if (rc != MT_OK) return rc;
    built = 1;
    if (resources)
        snprintf(resources, rlen,
                 "{\"gemm1\":{\"regs\":%d,\"spill_bytes\":%d,\"smem\":%u},\"gemm2\":{\"regs\":%d,\"spill_bytes\":%d,"
                 "\"smem\":%u},\"warps_m\":%d}",
                 var.r1.regs, var.r1.local_bytes, var.smem1, var.r2.regs, var.r2.local_bytes, var.smem2, var.warps_m);

    /* buffers: inputs and output for M tokens, workspace for one chunk */
    p.v = &var;
    p.a.E = (int)s->E;
    p.a.topk = (int)s->topk;
    p.a.N = (int)s->N;
    p.a.K = (int)s->K;
    p.a.M = (int)M;
    p.a.chunk = pol->max_tokens > 0 && pol->max_tokens < M ? pol->max_tokens : (int)M;
    p.a.w1 = b->w1;
    p.a.w2 = b->w2;
    if (fp8) {
        /* per tensor: static scales (scal[0] x's, scal[1] the
         * intermediate's), calibrated below */
        p.a.w1_scale = b->s1;
        p.a.w2_scale = b->s2;
        p.a.channel = s->scheme == MT_QUANT_CHANNEL;
        p.a.block_n = (int)s->block_n;
        p.a.block_k = (int)s->block_k;
    }
    size_t pairs = (size_t)(M * s->topk);
    int NR = pol->routings > 0 ? pol->routings : 1;
    size_t wsz = mt_cuda_moe_workspace(&var, p.a.chunk, p.a.E, p.a.N, p.a.K, p.a.topk);
    /* topk_ids and topk_w are what the pipeline reads; all_ids and all_w
     * hold the NR routings, copied in before each run */
    if ((rc = mt_cuda_alloc(c, (size_t)(M * s->K) * 2, &p.a.x)) || (rc = mt_cuda_alloc(c, pairs * 4, &p.a.topk_ids)) ||
        (rc = mt_cuda_alloc(c, pairs * 4, &p.a.topk_w)) || (rc = mt_cuda_alloc(c, wsz, &p.a.workspace)) ||
        (rc = mt_cuda_alloc(c, (size_t)(M * s->K) * 2, &p.a.out)) ||
        (rc = mt_cuda_alloc(c, (size_t)NR * pairs * 4, &all_ids)) || (rc = mt_cuda_alloc(c, (size_t)NR * pairs * 4, &all_w)))
        goto out;

    /* the inputs of this seed: the same for every config of a batch size */
    mt_rng rng = {seed};
    logits = malloc((size_t)(M * s->E) * sizeof *logits);
    ids = malloc((size_t)NR * pairs * sizeof *ids);
    tw = malloc((size_t)NR * pairs * sizeof *tw);
    out = malloc((size_t)((M < pol->check_rows ? M : pol->check_rows) * s->K) * 2); /* the oracle's window */
    times = malloc((size_t)pol->max_reps * sizeof *times);
    int64_t R = M < pol->check_rows ? M : pol->check_rows;
    ref = malloc((size_t)(R * s->K) * sizeof *ref);
    if (!logits || !ids || !tw || !out || !times || !ref) {
        rc = MT_ENOMEM;
        goto out;
    }
    if (b->route.ids && b->route.seed == seed && b->route.M == M && b->route.E == s->E &&
        b->route.topk == s->topk && b->route.renormalize == s->renormalize && b->route.n == NR) {
        memcpy(ids, b->route.ids, (size_t)NR * pairs * sizeof *ids);
        memcpy(tw, b->route.tw, (size_t)NR * pairs * sizeof *tw);
        res->experts_hit = b->route.experts_hit;
        rng = b->route.after;
    } else {
        char *hit = calloc((size_t)s->E, 1);
        if (!hit) { rc = MT_ENOMEM; goto out; }
        int64_t hits = 0;
        for (int k = 0; k < NR; k++) {
            for (int64_t i = 0; i < M * s->E; i++) logits[i] = 2.0f * mt_rng_uniform(&rng);
            mt_moe_route(logits, M, s->E, s->topk, s->renormalize, ids + k * pairs, tw + k * pairs);
            memset(hit, 0, (size_t)s->E);
            for (size_t i = 0; i < pairs; i++) hit[ids[k * pairs + i]] = 1;
            for (int64_t e = 0; e < s->E; e++) hits += hit[e];
        }
        free(hit);
        res->experts_hit = (hits + NR / 2) / NR; /* the mean over the routings */
        int32_t *ci = realloc(b->route.ids, (size_t)NR * pairs * sizeof *ci);
        if (ci) b->route.ids = ci;
        float *cw = ci ? realloc(b->route.tw, (size_t)NR * pairs * sizeof *cw) : NULL;
        if (cw) b->route.tw = cw;
        if (ci && cw) {
            memcpy(ci, ids, (size_t)NR * pairs * sizeof *ids);
            memcpy(cw, tw, (size_t)NR * pairs * sizeof *tw);
            b->route.seed = seed;
            b->route.M = M;
            b->route.E = s->E;
            b->route.topk = s->topk;
            b->route.renormalize = s->renormalize;
            b->route.n = NR;
            b->route.experts_hit = res->experts_hit;
            b->route.after = rng;
        } else {
            b->route.M = 0; /* out of memory for the cache: draw again next time */
        }
    }
    if ((rc = mt_cuda_h2d(c, all_ids, ids, (size_t)NR * pairs * 4)) ||
        (rc = mt_cuda_h2d(c, all_w, tw, (size_t)NR * pairs * 4)) ||
        (rc = fill(b, s->dtype == MT_DTYPE_FP16, p.a.x, (long)(M * s->K), mt_rng_next(&rng), 1.0f)))
        goto out;
    int64_t R8 = M < pol->check_rows ? M : pol->check_rows;
    if (fp8) {
        /* the oracle's own quantised x (fp8_quant_rows, which the CPU's
         * oracle checks in bench/cuda_fp8_check), and per tensor the static
         * scales calibrated as checkpoints do: x's maximum, and the
         * intermediate's over the first routing's first tokens */
        int K32 = (int)s->K, one = 1, grp = fp8 == 2 ? (int)s->block_k : (int)s->K;
        long nx = (long)(M * s->K);
        mt_dptr none = 0, amax = 0;
        if ((rc = mt_cuda_alloc(c, (size_t)nx, &xq)) || (rc = mt_cuda_alloc(c, (size_t)(M * ((s->K + 15) / 16) + 2) * 4, &xs)) ||
            (rc = mt_cuda_alloc(c, 16, &scal)) || (rc = mt_cuda_alloc(c, (size_t)(R8 * s->topk * s->N) * 8, &act64)))
            goto out;
        acth = malloc((size_t)(R8 * s->topk * s->N) * 8);
        if (!acth) { rc = MT_ENOMEM; goto out; }
        int tensor = s->scheme == MT_QUANT_TENSOR;
        if (tensor) {
            unsigned bits = 0;
            float sc[2];
            amax = scal + 8;
            void *a_zero[] = {&amax, &one}, *a_amax[] = {&p.a.x, &nx, &amax};
            if ((rc = mt_cuda_launch(c, b->zero8, 1, 32, 0, a_zero)) ||
                (rc = mt_cuda_launch(c, b->amax8, (unsigned)(nx / 2048 + 1 < 1024 ? nx / 2048 + 1 : 1024), 256, 0, a_amax)) ||
                (rc = mt_cuda_d2h(c, &bits, amax, 4)))
                goto out;
            memcpy(&sc[0], &bits, 4);
            sc[0] = mt_fp8_scale_of(sc[0]);
            sc[1] = 1.0f;
            if ((rc = mt_cuda_h2d(c, scal, sc, 8))) goto out;
        }
        mt_dptr fixed = tensor ? scal : none;
        void *a_q[] = {&p.a.x, &K32, &grp, &fixed, &none, &xq, &xs};
        if ((rc = mt_cuda_launch(c, b->quant8, (unsigned)M, 256, 0, a_q))) goto out;
        if (tensor) {
            int t0 = 0, Ri = (int)R8, sch = 0, bn = 1, bk = 1;
            long wa = (long)R8 * s->topk * s->N;
            void *aa[] = {&xq, &scal, &p.a.w1, &b->s1, &all_ids, &act64, &t0, &Ri, &p.a.topk, &p.a.N, &p.a.K, &sch, &bn, &bk};
            if ((rc = mt_cuda_launch(c, b->ref_act8, (unsigned)((wa * 32 + 255) / 256), 256, 0, aa)) ||
                (rc = mt_cuda_d2h(c, acth, act64, (size_t)wa * 8)))
                goto out;
            float am = 0;
            for (long i = 0; i < wa; i++) am = fmaxf(am, fabsf(mt_bf16_to_f32(mt_f32_to_bf16((float)acth[i]))));
            float a2 = mt_fp8_scale_of(am);
            if ((rc = mt_cuda_h2d(c, scal + 4, &a2, 4))) goto out;
            p.a.a1_scale = scal;
            p.a.a2_scale = scal + 4;
        }
    }
    if (b->fault == MT_FAULT_HANG) for (;;) {}
    if (b->fault == MT_FAULT_CRASH) { volatile int *z = NULL; *z = 1; }
    if (b->fault == MT_FAULT_KILLED) raise(SIGKILL);
    /* every routing is run and checked before any timing */
    int Ri = (int)R;
    long warps_a = (long)R * s->topk * s->N, warps_o = (long)R * s->K;
    if ((!act64 && (rc = mt_cuda_alloc(c, (size_t)warps_a * 8, &act64))) || (rc = mt_cuda_alloc(c, (size_t)warps_o * 8, &ref64)) ||
        (rc = mt_cuda_alloc(c, 8, &scan)))
        goto out;
    for (int k = 0; k < NR; k++) {
        if ((rc = use_routing(c, &p, all_ids, all_w, pairs, k)) != MT_OK) goto out;
        /* poison: 0xffff is NaN in bf16 and fp16 */
        if ((rc = mt_cuda_memset_async(c, p.a.out, 0xff, (size_t)(M * s->K) * 2)) ||
            (rc = mt_cuda_memset_async(c, p.a.workspace, 0xff, wsz)))
            goto out;
        mt_dptr real_ids = p.a.topk_ids;
        if (b->fault == MT_FAULT_GPU) p.a.topk_ids = 16; /* an address nothing maps */
        rc = launch_pipe(c, &p);
        if (rc == MT_OK) rc = mt_cuda_sync(c);
        p.a.topk_ids = real_ids;
        if (rc != MT_OK) {
            snprintf(res->reason, sizeof res->reason, "run failed: %s", mt_cuda_errmsg(c));
            rc = MT_ECRASH; /* the context may be poisoned: the worker must go */
            goto out;
        }
        if (b->fault == MT_FAULT_NAN &&
            (rc = mt_cuda_memset_async(c, p.a.out + (mt_dptr)(M * s->K / 2) * 2, 0xff, 2)) != MT_OK)
            goto out;
        /* NaN and Inf have every exponent bit set: scanned on the device,
         * so that only the oracle's window crosses the bus */
        unsigned long long first = ~0ull;
        unsigned short expo = s->dtype == MT_DTYPE_FP16 ? 0x7c00 : 0x7f80;
        long nel = (long)(M * s->K);
        void *an[] = {&p.a.out, &nel, &expo, &scan};
        unsigned blocks = (unsigned)((nel + 255) / 256 < 4096 ? (nel + 255) / 256 : 4096);
        if ((rc = mt_cuda_memset_async(c, scan, 0xff, 8)) ||
            (rc = mt_cuda_launch(c, b->find_nonfinite, blocks, 256, 0, an)) || (rc = mt_cuda_d2h(c, &first, scan, 8)))
            goto out;
        if (first != ~0ull) {
            res->rel_err = NAN;
            snprintf(res->reason, sizeof res->reason, "output holds NaN or Inf (token %lld, routing %d)",
                     (long long)(first / (unsigned long long)s->K), k);
            goto out;
        }
        /* the oracle, in float64 on the device, for a random window of tokens */
        int t0 = M > R ? (int)(mt_rng_next(&rng) % (uint64_t)(M - R + 1)) : 0;
        void *aa[] = {&p.a.x, &p.a.w1, &p.a.topk_ids, &act64, &t0, &Ri, &p.a.topk, &p.a.N, &p.a.K};
        void *ao[] = {&act64, &p.a.w2, &p.a.topk_ids, &p.a.topk_w, &ref64, &t0, &Ri, &p.a.topk, &p.a.N, &p.a.K};
        const int h = s->dtype == MT_DTYPE_FP16;
        if (fp8) {
            /* scheme 0 per tensor, 1 per channel and token, 2 blocks */
            int sch = s->scheme == MT_QUANT_TENSOR ? 0 : s->scheme == MT_QUANT_CHANNEL ? 1 : 2;
            int bn = fp8 == 2 ? (int)s->block_n : 1, bk = fp8 == 2 ? (int)s->block_k : (int)(s->K > s->N ? s->K : s->N);
            mt_dptr xsc = s->scheme == MT_QUANT_TENSOR ? scal : xs;
            float a2 = 0;
            void *a8[] = {&xq, &xsc, &p.a.w1, &b->s1, &p.a.topk_ids, &act64, &t0, &Ri, &p.a.topk, &p.a.N, &p.a.K, &sch, &bn, &bk};
            void *o8[] = {&act64, &p.a.w2, &b->s2, &p.a.topk_ids, &p.a.topk_w, &ref64, &t0, &Ri, &p.a.topk, &p.a.N, &p.a.K,
                          &sch, &bn, &bk};
            if ((rc = mt_cuda_launch(c, b->ref_act8, (unsigned)((warps_a * 32 + 255) / 256), 256, 0, a8)) ||
                (rc = mt_cuda_d2h(c, acth, act64, (size_t)warps_a * 8)) ||
                (s->scheme == MT_QUANT_TENSOR && (rc = mt_cuda_d2h(c, &a2, scal + 4, 4))) ||
                (rc = fp8_host_qdq(acth, (long)R * s->topk, (int)s->N, s, a2)) ||
                (rc = mt_cuda_h2d(c, act64, acth, (size_t)warps_a * 8)) ||
                (rc = mt_cuda_launch(c, b->ref_out8, (unsigned)((warps_o * 32 + 255) / 256), 256, 0, o8)))
                goto out;
        } else if ((rc = mt_cuda_launch(c, b->ref_act[h], (unsigned)((warps_a * 32 + 255) / 256), 256, 0, aa)) ||
                   (rc = mt_cuda_launch(c, b->ref_out[h], (unsigned)((warps_o * 32 + 255) / 256), 256, 0, ao)))
            goto out;
        if ((rc = mt_cuda_d2h(c, ref, ref64, (size_t)warps_o * 8)) ||
            (rc = mt_cuda_d2h(c, out, p.a.out + (mt_dptr)t0 * (mt_dptr)s->K * 2, (size_t)warps_o * 2)))
            goto out;
        double num = 0, den = 0;
        for (long i = 0; i < warps_o; i++) {
            double v = h2d_f(out[i], fp8 ? MT_DTYPE_BF16 : s->dtype) - ref[i];
            num += v * v;
            den += ref[i] * ref[i];
        }
        double e = den > 0 ? sqrt(num / den) : sqrt(num);
        if (!(e <= res->rel_err)) res->rel_err = e; /* the worst routing */
        res->tolerance = pol->tolerance;
        if (!(e <= pol->tolerance)) {
            snprintf(res->reason, sizeof res->reason, "relative error %.3g exceeds the tolerance %.3g (routing %d)", e,
                     pol->tolerance, k);
            goto out;
        }
    }
    /* time graph replays of the whole pipeline, the routings in turn (each
     * copied in before its run, outside the timed window), L2 flushed
     * before each */
    if ((rc = mt_cuda_capture_begin(c)) != MT_OK) goto out;
    rc = launch_pipe(c, &p);
    int rc2 = mt_cuda_capture_end(c, &rp.g);
    if (rc == MT_OK) rc = rc2;
    if (rc != MT_OK) goto out;
    struct gpu_run run = {c, b, &rp, &p, all_ids, all_w, pairs, NR};
    mt_timed_runs tr = {&run, NR, gpu_prepare, gpu_run};
    if ((rc = mt_time_runs(&tr, pol, times, res)) != MT_OK) goto out;
    rc = MT_OK;
out:
    if (rc != MT_OK && rc != MT_ECRASH && !res->reason[0])
        snprintf(res->reason, sizeof res->reason, "%s", mt_cuda_errmsg(c));
    mt_cuda_graph_free(c, rp.g);
    mt_cuda_free(c, act64);
    mt_cuda_free(c, ref64);
    mt_cuda_free(c, xq);
    mt_cuda_free(c, xs);
    mt_cuda_free(c, scal);
    free(acth);
    mt_dptr bufs[] = {p.a.x, p.a.topk_ids, p.a.topk_w, p.a.workspace, p.a.out, all_ids, all_w, scan};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) mt_cuda_free(c, bufs[i]);
    if (built) mt_cuda_moe_release(c, &var);
    free(logits);
    free(ids);
    free(tw);
    free(out);
    free(times);
    free(ref);
    /* a device error poisons the context: report it so the worker is replaced */
    return rc == MT_ECRASH ? MT_ECRASH : rc == MT_ENOMEM ? MT_ENOMEM : MT_OK;
}

struct copy_arg { mt_dptr a, d; size_t n; };
static int copy_once(mt_cuda *c, void *arg)
{
    struct copy_arg *p = arg;
    return mt_cuda_d2d_async(c, p->d, p->a, p->n);
}

int mt_cuda_bench_ceilings(mt_cuda_bench *b, double *bw_gbs, double *peak_gflops, double *peak_fp8_gflops, char *how,
                           size_t n)
{
    mt_cuda *c = b->c;
    size_t bytes = (size_t)1 << 30;
    mt_dptr a = 0, d = 0;
    int rc = mt_cuda_alloc(c, bytes, &a);
    if (rc == MT_OK) rc = mt_cuda_alloc(c, bytes, &d);
    if (rc == MT_OK) rc = fill(b, 0, a, (long)(bytes / 2), 42, 1.0f);
    float best = 1e30f;
    struct copy_arg arg = {a, d, bytes};
    for (int i = 0; rc == MT_OK && i < 6; i++) {
        float ms;
        rc = mt_cuda_time(c, copy_once, &arg, &ms);
        if (rc == MT_OK && i && ms < best) best = ms;
    }
    if (rc == MT_OK) *bw_gbs = 2.0 * (double)bytes / (best * 1e-3) / 1e9; /* read + write */
    /* the peak: cuBLAS's bf16 product of two random 8192^2 matrices */
    int nn = 8192;
    size_t mb = (size_t)nn * nn * 2;
    double tf = 0;
    if (rc == MT_OK && mb * 3 <= bytes * 2) {
        /* a holds A and B (2 x 128 MiB of its 1 GiB), d holds C */
        rc = fill(b, 0, a, (long)nn * nn * 2, 7, 1.0f);
        if (rc == MT_OK) {
            int r2 = mt_cuda_cublas_tflops(c, nn, a, a + mb, d, &tf);
            if (r2 == MT_OK) {
                *peak_gflops = tf * 1e3;
                snprintf(how, n, "copy of 1 GiB (read+write); cuBLAS bf16 %dx%dx%d", nn, nn, nn);
                /* fp8's ceiling where the device has fp8 tensor cores: the
                 * same random bytes read as e4m3 (a few are NaN, which
                 * costs the tensor cores nothing), a 32 MiB workspace
                 * behind them */
                double tf8 = 0;
                *peak_fp8_gflops = 0;
                if (mt_cuda_fp8_arch(mt_cuda_get_props(c)->arch, NULL, 0)) {
                    size_t m8 = (size_t)nn * nn;
                    if (mt_cuda_cublaslt_fp8_tflops(c, nn, a, a + m8, d, a + 2 * m8, (size_t)32 << 20, &tf8) == MT_OK) {
                        *peak_fp8_gflops = tf8 * 1e3;
                        snprintf(how + strlen(how), n - strlen(how), "; cuBLASLt fp8 e4m3 %dx%dx%d", nn, nn, nn);
                    } else {
                        snprintf(how + strlen(how), n - strlen(how), "; no fp8 ceiling: %s", mt_cuda_errmsg(c));
                    }
                }
            } else {
                rc = MT_EUNSUPPORTED;
                snprintf(how, n, "cuBLAS not available: %s", mt_cuda_errmsg(c));
            }
        }
    }
    mt_cuda_free(c, a);
    mt_cuda_free(c, d);
    return rc;
}


/* the attention inputs of (s, B, ctx, seed), drawn as the CPU bench draws
 * them, kept on the host and the device for the next config */
static int attn_inputs(mt_cuda_bench *b, const mt_attn_shape *s, int64_t B, int64_t ctx, uint64_t seed)
{
    if (b->attn.q && !memcmp(&b->attn.s, s, sizeof *s) && b->attn.B == B && b->attn.ctx == ctx && b->attn.seed == seed)
        return MT_OK;
    attn_inputs_free(b);
    int64_t per = (ctx + s->page_size - 1) / s->page_size, pages = B * per;
    size_t esz = mt_dtype_size(s->dtype), qn = (size_t)(B * s->num_heads * s->head_dim),
           kvn = (size_t)(pages * s->page_size * s->num_kv_heads * s->head_dim);
    b->attn.q = malloc(qn * esz), b->attn.k = malloc(kvn * esz), b->attn.v = malloc(kvn * esz);
    b->attn.bt = malloc((size_t)pages * sizeof *b->attn.bt), b->attn.lens = malloc((size_t)B * sizeof *b->attn.lens);
    if (!b->attn.q || !b->attn.k || !b->attn.v || !b->attn.bt || !b->attn.lens) {
        attn_inputs_free(b);
        return MT_ENOMEM;
    }
    mt_attn_draw_inputs(s, B, ctx, seed, b->attn.q, b->attn.k, b->attn.v, b->attn.bt, b->attn.lens);
    mt_cuda *c = b->c;
    int rc;
    if ((rc = mt_cuda_alloc(c, qn * esz, &b->attn.dq)) || (rc = mt_cuda_alloc(c, kvn * esz, &b->attn.dk)) ||
        (rc = mt_cuda_alloc(c, kvn * esz, &b->attn.dv)) || (rc = mt_cuda_alloc(c, (size_t)pages * 4, &b->attn.dbt)) ||
        (rc = mt_cuda_alloc(c, (size_t)B * 4, &b->attn.dlens)) || (rc = mt_cuda_h2d(c, b->attn.dq, b->attn.q, qn * esz)) ||
        (rc = mt_cuda_h2d(c, b->attn.dk, b->attn.k, kvn * esz)) || (rc = mt_cuda_h2d(c, b->attn.dv, b->attn.v, kvn * esz)) ||
        (rc = mt_cuda_h2d(c, b->attn.dbt, b->attn.bt, (size_t)pages * 4)) ||
        (rc = mt_cuda_h2d(c, b->attn.dlens, b->attn.lens, (size_t)B * 4))) {
        attn_inputs_free(b);
        return rc;
    }
    b->attn.s = *s;
    b->attn.B = B, b->attn.ctx = ctx, b->attn.per = per, b->attn.pages = pages, b->attn.seed = seed;
    return MT_OK;
}


int mt_cuda_bench_attn(mt_cuda_bench *b, const mt_attn_shape *s, int64_t B, int64_t ctx, int partition, int warps,
                       int mma, int stage, int qsplit, uint64_t seed, const mt_policy *pol, mt_measure_result *res)
{
    memset(res, 0, sizeof *res);
    res->rel_err = NAN;
    mt_cuda *c = b->c;
    if (s->num_heads % s->num_kv_heads || (s->dtype != MT_DTYPE_BF16 && s->dtype != MT_DTYPE_FP16)) {
        snprintf(res->reason, sizeof res->reason, "invalid problem: heads %% kv heads, or a dtype other than bf16/fp16");
        return MT_OK;
    }
    mt_cuda_attn_cfg cfg = {(int)s->head_dim, (int)s->page_size, (int)(s->num_heads / s->num_kv_heads),
                            s->dtype == MT_DTYPE_FP16, partition, warps, mma, stage, qsplit};
    mt_cuda_attn var;
    char why[256];
    int rc = mt_cuda_attn_build(c, &cfg, b->cache_dir[0] ? b->cache_dir : NULL, &var, why, sizeof why);
    if (rc == MT_EINVAL || rc == MT_EPARSE || rc == MT_EUNSUPPORTED) {
        snprintf(res->reason, sizeof res->reason, "%s", why); /* cannot be built or launched: pruned */
        return MT_OK;
    }
    if (rc != MT_OK) return rc;
    size_t esz = mt_dtype_size(s->dtype), qn = (size_t)(B * s->num_heads * s->head_dim);
    double *times = malloc((size_t)pol->max_reps * sizeof *times);
    void *out = malloc(qn * esz), *again = malloc(qn * esz);
    mt_cuda_attn_args a;
    memset(&a, 0, sizeof a);
    struct replay rg = {NULL};
    if (!times || !out || !again) {
        rc = MT_ENOMEM;
        goto out;
    }
    if ((rc = attn_inputs(b, s, B, ctx, seed)) != MT_OK) goto out;
    a.q = b->attn.dq, a.k_cache = b->attn.dk, a.v_cache = b->attn.dv, a.block_table = b->attn.dbt;
    a.context_lens = b->attn.dlens, a.B = (int)B, a.num_heads = (int)s->num_heads, a.num_kv_heads = (int)s->num_kv_heads;
    a.max_pages = (int)b->attn.per, a.max_context = (int)ctx;
    size_t wsz = mt_cuda_attn_workspace(&var, (int)B, (int)s->num_heads, (int)ctx);
    if ((rc = mt_cuda_alloc(c, qn * esz, &a.out)) || (rc = mt_cuda_alloc(c, wsz, &a.workspace))) goto out;
    if (b->fault == MT_FAULT_HANG) for (;;) {}
    if (b->fault == MT_FAULT_CRASH) { volatile int *z = NULL; *z = 1; }
    if (b->fault == MT_FAULT_KILLED) raise(SIGKILL);
    /* poisoned output (0xffff is NaN in bf16 and fp16), one run, checked */
    mt_dptr real_bt = a.block_table;
    if (b->fault == MT_FAULT_GPU) a.block_table = 16; /* an address nothing maps */
    if ((rc = mt_cuda_memset_async(c, a.out, 0xff, qn * esz)) == MT_OK) rc = mt_cuda_attn_enqueue(c, &var, &a, NULL);
    if (rc == MT_OK) rc = mt_cuda_sync(c);
    a.block_table = real_bt;
    if (rc != MT_OK) {
        snprintf(res->reason, sizeof res->reason, "run failed: %s", mt_cuda_errmsg(c));
        rc = MT_ECRASH; /* the context may be poisoned: the worker must go */
        goto out;
    }
    if ((rc = mt_cuda_d2h(c, out, a.out, qn * esz)) != MT_OK) goto out;
    if (b->fault == MT_FAULT_NAN) mt_store_elem(out, s->dtype, qn / 2, NAN);
    mt_attn_batch ab = {B, b->attn.per, b->attn.pages, b->attn.q, b->attn.k, b->attn.v, b->attn.bt, b->attn.lens, 0};
    if ((rc = mt_attn_judge(s, &ab, out, res)) != 1) {
        if (rc == 0) rc = MT_OK; /* judged: failed, reason given */
        goto out;
    }
    /* timed: graph replays of the kernels (as the MoE pipeline and SDPA are
     * timed: no launch gaps inside the window), L2 flushed before each run,
     * outside the timing */
    if ((rc = mt_cuda_capture_begin(c)) != MT_OK) goto out;
    rc = mt_cuda_attn_enqueue(c, &var, &a, NULL);
    int rc2 = mt_cuda_capture_end(c, &rg.g);
    if (rc == MT_OK) rc = rc2;
    if (rc != MT_OK) goto out;
    struct gpu_run run = {c, b, &rg, NULL, 0, 0, 0, 1};
    mt_timed_runs tr = {&run, 1, gpu_prepare, gpu_run};
    if ((rc = mt_time_runs(&tr, pol, times, res)) != MT_OK) goto out;
    /* the timed runs' output must be the checked run's, bit for bit (the
     * kernel's order of sums is fixed): a variant whose runs disagree is
     * racing somewhere */
    if ((rc = mt_cuda_sync(c)) != MT_OK || (rc = mt_cuda_d2h(c, again, a.out, qn * esz)) != MT_OK) goto out;
    if (memcmp(again, out, qn * esz)) {
        res->ok = 0;
        snprintf(res->reason, sizeof res->reason, "the output of the timed runs differs from the checked run's");
    }
    rc = MT_OK;
out:
    if (rc != MT_OK && rc != MT_ECRASH && !res->reason[0]) snprintf(res->reason, sizeof res->reason, "%s", mt_cuda_errmsg(c));
    mt_cuda_graph_free(c, rg.g);
    mt_cuda_free(c, a.out);
    mt_cuda_free(c, a.workspace);
    free(again);
    mt_cuda_attn_release(c, &var);
    free(times);
    free(out);
    return rc == MT_ECRASH ? MT_ECRASH : rc == MT_ENOMEM ? MT_ENOMEM : MT_OK;
}

void mt_policy_cuda_default(mt_policy *p)
{
    p->warmup = 3;
    p->min_reps = 10;
    p->max_reps = 100;
    p->min_time_s = 0.02;
    p->cold = 1;
    p->check_rows = 32;
    p->tolerance = 2e-2; /* bf16 intermediates and outputs */
    p->max_tokens = 16384;
    p->abort_us = 0;
    p->routings = 4;
}

void mt_policy_default(const char *backend, mt_policy *p)
{
    if (backend && strcmp(backend, "cpu") != 0) mt_policy_cuda_default(p);
    else mt_policy_cpu_default(p);
}
