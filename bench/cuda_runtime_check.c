/* The runtime on a GPU, as an engine uses it: mt_fused_moe_cuda with device
 * pointers, the config looked up from the bundled files (or the default),
 * checked against the float64 device oracle and timed; then
 * mt_attention_decode_cuda on odd, unequal contexts over shuffled pages,
 * with configs looked up from files written here (each path of the kernel:
 * two-pass, tensor cores, the ring, a split group) and without one (the
 * default), checked against the float64 reference (kernels/cpu/attn.c).
 *
 * usage: cuda_runtime_check CONFIG_DIR   (the repository's configs/) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "attn.h"
#include "cuda_rt.h"
#include "measure.h" /* mt_attn_draw_inputs */
#include "moe_cpu.h"
#include "moe_launch.h" /* mt_cuda_gemv_fits: where the runtime takes the GEMV path */
#include "moetune/moetune.h"

static mt_cuda *c;
static mt_cufn fill_fn, ref_act, ref_out;

static int fill(mt_dptr dst, long n, unsigned long long seed, float scale)
{
    void *args[] = {&dst, &n, &seed, &scale};
    unsigned grid = (unsigned)((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096);
    return mt_cuda_launch(c, fill_fn, grid, 256, 0, args);
}

struct call {
    mt_runtime *rt;
    int64_t M, E, N, K, topk;
    mt_dptr x, w1, w2, ids, tw, out;
    mt_moe_config used;
};

static int run(mt_cuda *cc, void *arg)
{
    struct call *k = arg;
    return mt_fused_moe_cuda(k->rt, MT_DTYPE_BF16, k->M, k->E, k->N, k->K, k->topk, k->x, k->w1, k->w2, k->ids, k->tw,
                             k->out, mt_cuda_stream(cc), &k->used);
}

static void log_cb(int level, const char *msg, void *u)
{
    (void)u;
    fprintf(stderr, "libmoetune[%d]: %s\n", level, msg);
}

/* mt_attention_decode_cuda against the float64 reference: one row per case,
 * the number that failed returned */
static int attn_cases(const char *device)
{
    /* a config dir with one file per shape: its single entry is what the
     * runtime looks up for every batch and context (nearest keys) */
    struct { int H, Hkv, D, ps, B, ctx; const char *params; } cases[] = {
        {32, 8, 128, 16, 3, 1000, "{\"partition\": 256, \"num_warps\": 4, \"mma\": 0, \"stage\": 0, \"query_split\": 1}"},
        {32, 8, 128, 16, 5, 777, "{\"partition\": 128, \"num_warps\": 2, \"mma\": 1, \"stage\": 0, \"query_split\": 1}"},
        {64, 8, 128, 16, 4, 2049, "{\"partition\": 512, \"num_warps\": 2, \"mma\": 1, \"stage\": 2, \"query_split\": 2}"},
        {8, 1, 256, 16, 2, 1500, "{\"partition\": 64, \"num_warps\": 4, \"mma\": 1, \"stage\": 2, \"query_split\": 4}"},
        {16, 16, 64, 32, 3, 3001, "{\"partition\": 8192, \"num_warps\": 2, \"mma\": 1, \"stage\": 3, \"query_split\": 1}"},
        {32, 8, 128, 16, 2, 300, NULL}, /* no file: the CUDA default */
        {32, 8, 128, 16, 16, 900, NULL}, /* no file, 128 streams: one partition, 2 warps */
        {8, 1, 256, 16, 4, 2000, NULL},   /* no file, head_dim 256 */
    };
    char dir[] = "/tmp/mt_rt_attn.XXXXXX";
    if (!mkdtemp(dir)) return 1;
    int failures = 0;
    printf("\n| H/Hkv/D/page | B | lengths | source | partition/warps/mma/stage/split | max err / max ref | ok |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int H = cases[i].H, Hkv = cases[i].Hkv, D = cases[i].D, ps = cases[i].ps, B = cases[i].B;
        char name[512], path[1200], sub[64];
        snprintf(sub, sizeof sub, "%.40s/%zu", dir, i);
        mkdir(sub, 0755);
        mt_attn_name an = {H, Hkv, D, ps, "", "bf16"};
        snprintf(an.device, sizeof an.device, "%s", device);
        if (cases[i].params && mt_attn_name_format(name, sizeof name, &an) == MT_OK) {
            snprintf(path, sizeof path, "%s/%s", sub, name);
            FILE *f = fopen(path, "w");
            if (f) fprintf(f, "{\"1\": {\"512\": %s}}\n", cases[i].params), fclose(f);
        }
        mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
        o.backend = "cuda";
        o.config_dir = sub;
        o.cache_dir = "/nonexistent";
        o.bundled_dir = "/nonexistent";
        o.log = log_cb;
        mt_runtime *rt;
        if (mt_runtime_open(&rt, &o) != MT_OK) return failures + 1;
        /* the tuner's inputs (tuner/measure.c: pages shuffled through the
         * cache, q, K and V uniform), then unequal lengths ctx, ctx - 37, ...
         * (odd ones, partial last pages), each sequence on the first pages
         * of its row of the block table */
        mt_attn_shape sh = {H, Hkv, D, ps, MT_DTYPE_BF16};
        const int64_t maxp = (cases[i].ctx + ps - 1) / ps, pages = B * maxp;
        size_t qn = (size_t)B * H * D, kvn = (size_t)pages * ps * Hkv * D;
        int32_t *lens = malloc((size_t)B * sizeof *lens), *bt = malloc((size_t)pages * sizeof *bt);
        uint16_t *q = malloc(qn * 2), *k = malloc(kvn * 2), *v = malloc(kvn * 2), *out = malloc(qn * 2);
        double *ref = malloc(qn * sizeof *ref);
        mt_attn_draw_inputs(&sh, B, cases[i].ctx, (uint64_t)(i + 7), q, k, v, bt, lens);
        for (int b = 0; b < B; b++) lens[b] = cases[i].ctx - 37 * b > 1 ? cases[i].ctx - 37 * b : 1;
        mt_attn_batch hb = {B, maxp, pages, q, k, v, bt, lens, 0};
        mt_attn_reference(&sh, &hb, ref);
        mt_dptr dq = 0, dk = 0, dv = 0, dbt = 0, dl = 0, dout = 0;
        mt_attn_config c1;
        memset(&c1, 0, sizeof c1);
        int rc = mt_cuda_alloc(c, qn * 2, &dq) || mt_cuda_alloc(c, kvn * 2, &dk) || mt_cuda_alloc(c, kvn * 2, &dv) ||
                 mt_cuda_alloc(c, (size_t)(B * maxp) * 4, &dbt) || mt_cuda_alloc(c, (size_t)B * 4, &dl) ||
                 mt_cuda_alloc(c, qn * 2, &dout) || mt_cuda_h2d(c, dq, q, qn * 2) || mt_cuda_h2d(c, dk, k, kvn * 2) ||
                 mt_cuda_h2d(c, dv, v, kvn * 2) || mt_cuda_h2d(c, dbt, bt, (size_t)(B * maxp) * 4) ||
                 mt_cuda_h2d(c, dl, lens, (size_t)B * 4) || mt_cuda_memset_async(c, dout, 0xff, qn * 2);
        if (!rc)
            rc = mt_attention_decode_cuda(rt, MT_DTYPE_BF16, B, H, Hkv, D, ps, dq, dk, dv, dbt, maxp, dl, cases[i].ctx, 0.f,
                                          dout, mt_cuda_stream(c), &c1);
        if (!rc) rc = mt_cuda_sync(c);
        if (!rc) rc = mt_cuda_d2h(c, out, dout, qn * 2);
        double worst = 0, scale = 0;
        for (size_t j = 0; !rc && j < qn; j++) {
            double e = fabs((double)mt_load_elem(out, MT_DTYPE_BF16, j) - ref[j]);
            if (!(e <= worst)) worst = e;
            if (fabs(ref[j]) > scale) scale = fabs(ref[j]);
        }
        /* as cuda_attn_check: bf16 output against the double reference */
        int ok = !rc && worst <= 1e-2 * scale;
        /* the file's config must be the one that ran (nothing fell back) */
        if (cases[i].params && c1.source != MT_SOURCE_CONFIG_DIR) ok = 0;
        if (!ok) failures++;
        printf("| %d/%d/%d/%d | %d | %d..%d | %s | %d/%d/%d/%d/%d | %.2e |%s%s\n", H, Hkv, D, ps, B, lens[B - 1],
               lens[0], mt_config_source_str(c1.source), c1.partition, c1.num_warps, c1.mma, c1.stage, c1.query_split,
               scale > 0 ? worst / scale : worst, ok ? " ok |" : " FAILED |", rc ? mt_cuda_errmsg(c) : "");
        mt_dptr bufs[] = {dq, dk, dv, dbt, dl, dout};
        for (size_t b = 0; b < 6; b++) mt_cuda_free(c, bufs[b]);
        free(lens), free(bt), free(q), free(k), free(v), free(out), free(ref);
        mt_runtime_close(rt);
        if (cases[i].params) unlink(path);
        rmdir(sub);
    }
    rmdir(dir);
    printf("%d of %zu attention cases failed\n", failures, sizeof cases / sizeof cases[0]);
    return failures;
}

int main(int argc, char **argv)
{
    char err[512], *log = NULL;
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG_DIR\n", argv[0]);
        return 2;
    }
    if (mt_cuda_open(&c, 0, err, sizeof err) != MT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    mt_cuda_module *base;
    const char *opts[] = {"-DMT_FP16=0"};
    if (mt_cuda_build(c, mt_cuda_moe_source(), opts, 1, NULL, &base, &log) != MT_OK ||
        mt_cuda_function(c, base, "fill_random", &fill_fn, NULL) || mt_cuda_function(c, base, "ref_act", &ref_act, NULL) ||
        mt_cuda_function(c, base, "ref_out", &ref_out, NULL)) {
        fprintf(stderr, "helper kernels: %s\n", mt_cuda_errmsg(c));
        return 1;
    }
    mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
    o.backend = "cuda";
    o.config_dir = "/nonexistent";
    o.cache_dir = "/nonexistent";
    o.bundled_dir = argv[1];
    o.log = log_cb;
    mt_runtime *rt;
    if (mt_runtime_open(&rt, &o) != MT_OK) return 1;
    printf("device %s\n", mt_runtime_device_name(rt));
    struct { const char *name; int64_t E, N, K, topk, M; } cases[] = {
        {"Mixtral TP2", 8, 7168, 4096, 2, 1},     {"Mixtral TP2", 8, 7168, 4096, 2, 64},
        {"Mixtral TP2", 8, 7168, 4096, 2, 1000},  {"Mixtral TP2", 8, 7168, 4096, 2, 4096},
        {"Mixtral TP2", 8, 7168, 4096, 2, 20000}, {"Qwen3-30B-A3B", 128, 768, 2048, 8, 37},
        {"no file", 16, 512, 1024, 2, 100},
        /* the small-batch path where a moetune file holds GEMV=1 (its keys 1
         * and 8), and at M = 33, whose nearest key is 8 but whose 264 pairs
         * exceed the path's two per expert: the same tile, tiled */
        {"Qwen3-30B-A3B", 128, 768, 2048, 8, 1},   {"Qwen3-30B-A3B", 128, 768, 2048, 8, 8},
        {"Qwen3-30B-A3B", 128, 768, 2048, 8, 30},  {"Qwen3-30B-A3B", 128, 768, 2048, 8, 33},
        {"Mixtral TP1", 8, 14336, 4096, 2, 1},     {"DeepSeek-V3 TP8", 256, 256, 7168, 8, 8},
        /* more than 4,096 pairs: the alignment over many blocks */
        {"Qwen3-30B-A3B", 128, 768, 2048, 8, 4096}, {"DeepSeek-V3 TP8", 256, 256, 7168, 8, 2048},
    };
    int failures = 0;
    printf("| shape | M | source | key | config | GEMV | rel err | µs per call |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct call k = {rt, cases[i].M, cases[i].E, cases[i].N, cases[i].K, cases[i].topk, 0, 0, 0, 0, 0, 0, {0}};
        int64_t M = k.M, pairs = M * k.topk;
        mt_cuda_alloc(c, (size_t)(M * k.K) * 2, &k.x);
        mt_cuda_alloc(c, (size_t)(k.E * 2 * k.N * k.K) * 2, &k.w1);
        mt_cuda_alloc(c, (size_t)(k.E * k.K * k.N) * 2, &k.w2);
        mt_cuda_alloc(c, (size_t)pairs * 4, &k.ids);
        mt_cuda_alloc(c, (size_t)pairs * 4, &k.tw);
        mt_cuda_alloc(c, (size_t)(M * k.K) * 2, &k.out);
        fill(k.x, (long)(M * k.K), 11 + i, 1.0f);
        fill(k.w1, (long)(k.E * 2 * k.N * k.K), 12 + i, 1.0f / sqrtf((float)k.K));
        fill(k.w2, (long)(k.E * k.K * k.N), 13 + i, 1.0f / sqrtf((float)k.N));
        float *logits = malloc((size_t)(M * k.E) * 4), *tw = malloc((size_t)pairs * 4);
        int32_t *ids = malloc((size_t)pairs * 4);
        mt_rng r = {77 + i};
        for (int64_t j = 0; j < M * k.E; j++) logits[j] = 2.0f * mt_rng_uniform(&r);
        mt_moe_route(logits, M, k.E, k.topk, 1, ids, tw);
        mt_cuda_h2d(c, k.ids, ids, (size_t)pairs * 4);
        mt_cuda_h2d(c, k.tw, tw, (size_t)pairs * 4);
        mt_cuda_memset_async(c, k.out, 0xff, (size_t)(M * k.K) * 2); /* poisoned: NaN */
        int rc = run(c, &k);
        if (rc == MT_OK) rc = mt_cuda_sync(c);
        /* the oracle for 32 tokens in the middle */
        int R = M < 32 ? (int)M : 32, t0 = (int)(M - R) / 2, topk = (int)k.topk, N = (int)k.N, K = (int)k.K;
        mt_dptr act64, ref64;
        mt_cuda_alloc(c, (size_t)R * topk * N * 8, &act64);
        mt_cuda_alloc(c, (size_t)R * K * 8, &ref64);
        void *aa[] = {&k.x, &k.w1, &k.ids, &act64, &t0, &R, &topk, &N, &K};
        void *ao[] = {&act64, &k.w2, &k.ids, &k.tw, &ref64, &t0, &R, &topk, &N, &K};
        long wa = (long)R * topk * N, wo = (long)R * K;
        mt_cuda_launch(c, ref_act, (unsigned)((wa * 32 + 255) / 256), 256, 0, aa);
        mt_cuda_launch(c, ref_out, (unsigned)((wo * 32 + 255) / 256), 256, 0, ao);
        double *ref = malloc((size_t)wo * 8);
        uint16_t *out = malloc((size_t)(M * K) * 2);
        mt_cuda_d2h(c, ref, ref64, (size_t)wo * 8);
        mt_cuda_d2h(c, out, k.out, (size_t)(M * K) * 2);
        int finite = 1;
        for (int64_t j = 0; j < M * K; j++) finite &= isfinite(mt_bf16_to_f32(out[j]));
        double num = 0, den = 0;
        for (long j = 0; j < wo; j++) {
            double d = mt_bf16_to_f32(out[(long)t0 * K + j]) - ref[j];
            num += d * d;
            den += ref[j] * ref[j];
        }
        double rel = finite ? sqrt(num / den) : NAN;
        float ms = 0, best = 1e30f;
        for (int rep = 0; rc == MT_OK && rep < 10; rep++)
            if (mt_cuda_time(c, run, &k, &ms) == MT_OK && ms < best) best = ms;
        int ok = rc == MT_OK && rel < 2e-2;
        failures += !ok;
        /* the path that ran: the file's GEMV where the runtime takes it */
        int gemv = k.used.gemv > 0 && mt_cuda_gemv_fits(M, k.E, k.topk);
        printf("| %s | %lld | %s | %lld | %d/%d/%d/%d/%d/%d/%d | %d | %.2e | %.1f |%s\n", cases[i].name, (long long)M,
               mt_config_source_str(k.used.source), (long long)k.used.m_key, k.used.block_size_m, k.used.block_size_n,
               k.used.block_size_k, k.used.group_size_m, k.used.num_warps, k.used.num_stages, k.used.num_sm, gemv, rel,
               best * 1e3, ok ? "" : " FAILED");
        mt_dptr bufs[] = {k.x, k.w1, k.w2, k.ids, k.tw, k.out, act64, ref64};
        for (size_t b = 0; b < 8; b++) mt_cuda_free(c, bufs[b]);
        free(logits); free(tw); free(ids); free(ref); free(out);
    }
    printf("%d of %zu cases failed\n", failures, sizeof cases / sizeof cases[0]);
    char device[128];
    snprintf(device, sizeof device, "%s", mt_runtime_device_name(rt));
    mt_runtime_close(rt);
    failures += attn_cases(device);
    mt_cuda_module_free(c, base);
    mt_cuda_close(c);
    return failures ? 1 : 0;
}
