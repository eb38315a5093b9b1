#include "space.h"

#include "attn_launch.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe_cpu.h"
#include "moe_launch.h"
#include "moetune/moetune.h"
#include "rt_internal.h"

/* ---- CPU ---- */
enum { CPU_BM, CPU_BN, CPU_BK, CPU_THREADS };

/* Bounds shared with the kernel's default config (kernels/cpu), so the
 * default is always a valid point. */
static int64_t cpu_max_bm(const mt_space_ctx *x) { return mt_cpu_max_block_m(x->M, x->topk); }
static int64_t cpu_max_bn(const mt_space_ctx *x) { return mt_cpu_max_block_nk(x->N, x->K); }
static int64_t cpu_max_bk(const mt_space_ctx *x) { return mt_cpu_max_block_nk(x->N, x->K); }
/* per-thread scratch: two weight tiles and two accumulator tiles, in floats;
 * past a typical 2 MiB L2 slice the tiles thrash */
#define CPU_SCRATCH_MAX (2u << 20)

static int cpu_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    (void)sp;
    int bm = c->v[CPU_BM], bn = c->v[CPU_BN], bk = c->v[CPU_BK];
    size_t scratch = (size_t)(2 * bn * bk + 2 * bm * bn) * 4;
    if (bm > cpu_max_bm(x)) return snprintf(why, n, "block_m %d exceeds the padded pair count", bm), 0;
    if (bn > cpu_max_bn(x)) return snprintf(why, n, "block_n %d exceeds the widest output", bn), 0;
    if (bk > cpu_max_bk(x)) return snprintf(why, n, "block_k %d exceeds the deepest reduction", bk), 0;
    if (scratch > CPU_SCRATCH_MAX) return snprintf(why, n, "tiles need %zu bytes per thread", scratch), 0;
    if (c->v[CPU_THREADS] > x->max_threads) return snprintf(why, n, "more threads than the machine has"), 0;
    return 1;
}

static void cpu_default(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    mt_cpu_params p;
    (void)sp;
    memset(out, 0, sizeof *out);
    mt_cpu_params_default(x->N, x->K, x->topk, x->M, x->max_threads, &p);
    out->v[CPU_BM] = p.block_m;
    out->v[CPU_BN] = p.block_n;
    out->v[CPU_BK] = p.block_k;
    out->v[CPU_THREADS] = p.threads;
}

void mt_space_cpu_moe(mt_space *sp, int max_threads)
{
    memset(sp, 0, sizeof *sp);
    sp->backend = "cpu";
    sp->nparams = 4;
    sp->params[CPU_BM] = (mt_param_def){"block_m", 5, {4, 8, 16, 32, 64}};
    sp->params[CPU_BN] = (mt_param_def){"block_n", 4, {8, 16, 32, 64}};
    sp->params[CPU_BK] = (mt_param_def){"block_k", 4, {64, 128, 256, 512}};
    /* threads: powers of two below the machine's count, and the count */
    mt_param_def *t = &sp->params[CPU_THREADS];
    t->name = "threads";
    for (int v = 1; v < max_threads && t->nvalues < MT_SPACE_MAX_VALUES - 1; v <<= 1) t->values[t->nvalues++] = v;
    t->values[t->nvalues++] = max_threads < 1 ? 1 : max_threads;
    sp->valid = cpu_valid;
    sp->default_config = cpu_default;
}

/* ---- paged attention decode ---- */
enum { A_PART, A_PPI, A_THREADS };
enum { AC_PART, AC_WARPS, AC_MMA, AC_STAGE, AC_QSPLIT };

/* the attention spaces' context: topk holds the page size, E / N the group */
static int64_t attn_page(const mt_space_ctx *x) { return x->topk > 0 ? x->topk : 1; }
static int64_t attn_group(const mt_space_ctx *x) { return x->N > 0 && x->E % x->N == 0 ? x->E / x->N : 1; }

static int attn_cpu_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    (void)sp;
    int64_t part = c->v[A_PART], ppi = c->v[A_PPI], th = c->v[A_THREADS], ps = attn_page(x);
    int64_t ctx = x->ctx > 0 ? x->ctx : 1;
    if (part % ps) return snprintf(why, n, "partition %lld is not whole pages of %lld", (long long)part, (long long)ps), 0;
    if (part && part >= ctx) return snprintf(why, n, "partition %lld covers the context: as partition 0", (long long)part), 0;
    int64_t span = part ? part : ctx, step = ppi * ps;
    /* a step past the span is the step that just covers it */
    if (ppi > 1 && (ppi / 2) * ps >= span) return snprintf(why, n, "a step of %lld pages exceeds the span", (long long)ppi), 0;
    if (th > x->max_threads) return snprintf(why, n, "%lld threads on %d", (long long)th, x->max_threads), 0;
    int64_t items = (x->M > 0 ? x->M : 1) * (x->N > 0 ? x->N : 1) * ((ctx + span - 1) / span);
    if (th > 1 && th / 2 >= items) return snprintf(why, n, "%lld threads for %lld work items", (long long)th, (long long)items), 0;
    (void)step;
    return 1;
}

static void attn_cpu_default(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    memset(out, 0, sizeof *out);
    int64_t ps = attn_page(x);
    int64_t part = (512 / ps) * ps;
    out->v[A_PART] = part > 0 && part < x->ctx ? (int)part : 0;
    out->v[A_PPI] = 1;
    /* the largest declared thread count the work can use */
    const mt_param_def *t = &sp->params[A_THREADS];
    for (int i = t->nvalues - 1; i >= 0; i--) {
        out->v[A_THREADS] = t->values[i];
        char why[128];
        if (attn_cpu_valid(sp, out, x, why, sizeof why)) return;
    }
}

void mt_space_cpu_attn(mt_space *sp, int max_threads)
{
    memset(sp, 0, sizeof *sp);
    sp->backend = "cpu";
    sp->nparams = 3;
    sp->params[A_PART] = (mt_param_def){"partition", 8, {0, 64, 128, 256, 512, 1024, 2048, 4096}};
    sp->params[A_PPI] = (mt_param_def){"pages_per_iter", 5, {1, 2, 4, 8, 16}};
    mt_param_def *t = &sp->params[A_THREADS];
    t->name = "threads";
    for (int v = 1; v < max_threads && t->nvalues < MT_SPACE_MAX_VALUES - 1; v <<= 1) t->values[t->nvalues++] = v;
    t->values[t->nvalues++] = max_threads < 1 ? 1 : max_threads;
    sp->valid = attn_cpu_valid;
    sp->default_config = attn_cpu_default;
}

static int attn_cuda_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    (void)sp;
    int64_t part = c->v[AC_PART], w = c->v[AC_WARPS], ps = attn_page(x), ctx = x->ctx > 0 ? x->ctx : 1;
    int64_t group = attn_group(x), d = x->K;
    int limit = x->smem_limit > 0 ? x->smem_limit : 227 * 1024;
    if (part < ps || part % ps) return snprintf(why, n, "partition %lld is not whole pages of %lld", (long long)part, (long long)ps), 0;
    /* every partition at least the context runs as the smallest such (the
     * declared values double, so the next smaller one is part / 2) */
    if (part > 64 && part / 2 >= ctx && part / 2 >= ps && (part / 2) % ps == 0)
        return snprintf(why, n, "partition %lld: %lld already covers the context", (long long)part, (long long)(part / 2)), 0;
    /* the tensor-core path's limits (kernels/cuda/attn.cu) */
    if (c->v[AC_MMA] && (d % 64 || group > 16))
        return snprintf(why, n, "mma needs head_dim %% 64 == 0 and a group of at most 16"), 0;
    if (c->v[AC_STAGE] >= 2 && !c->v[AC_MMA]) return snprintf(why, n, "a ring (stage >= 2) needs mma"), 0;
    if (c->v[AC_QSPLIT] > 1 && (group % c->v[AC_QSPLIT] || c->v[AC_STAGE] < 2))
        return snprintf(why, n, "query_split %lld: the ring's variants, where it divides the group of %lld",
                        (long long)c->v[AC_QSPLIT], (long long)group), 0;
    /* a ring deeper than the warp's chunks of the partition holds slots
     * that are never filled: the same kernel as the shallower ring */
    if (c->v[AC_STAGE] > 2 && (c->v[AC_STAGE] - 1) * w * MT_CUDA_ATTN_RING_TOKENS >= (part < ctx ? part : ctx))
        return snprintf(why, n, "a ring of %lld chunks for %lld tokens over %lld warps", (long long)c->v[AC_STAGE],
                        (long long)(part < ctx ? part : ctx), (long long)w), 0;
    mt_cuda_attn_cfg cfg = {(int)d, (int)ps, (int)group, 0, (int)part, (int)w, (int)c->v[AC_MMA], (int)c->v[AC_STAGE],
                            (int)c->v[AC_QSPLIT]};
    unsigned smem = mt_cuda_attn_smem(&cfg);
    if ((int)smem > limit) return snprintf(why, n, "%u bytes of shared memory", smem), 0;
    return 1;
}

static void attn_cuda_default(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    memset(out, 0, sizeof *out);
    /* the runtime's default without a file (mt_cuda_attn_default), where it
     * is a point of this space; else two passes of FMA */
    mt_cuda_attn_cfg r = {(int)x->K, (int)attn_page(x), (int)attn_group(x), 0, 0, 0, 0, 0, 1};
    char why[128];
    if (mt_cuda_attn_default(&r, (long long)(x->M * x->N), (long long)x->ctx)) {
        out->v[AC_PART] = r.partition, out->v[AC_WARPS] = r.warps, out->v[AC_MMA] = r.mma, out->v[AC_STAGE] = r.stage;
        out->v[AC_QSPLIT] = r.qsplit;
        if (attn_cuda_valid(sp, out, x, why, sizeof why)) return;
        memset(out, 0, sizeof *out);
    }
    int64_t ps = attn_page(x), part = 512;
    while (part % ps) part += 64;
    /* the default's partition may not exceed what covers the context */
    while (part > 64 && part / 2 >= x->ctx && part / 2 >= ps && (part / 2) % ps == 0) part /= 2;
    out->v[AC_PART] = (int)part;
    out->v[AC_WARPS] = 4;
    out->v[AC_MMA] = 0;
    out->v[AC_STAGE] = 0;
    out->v[AC_QSPLIT] = 1;
}

void mt_space_cuda_attn(mt_space *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->backend = "cuda";
    sp->nparams = 5;
    /* 8192: one partition per sequence (no merge) at the long contexts,
     * where the ring at B = 32 ran 1 % faster than with 4096 (H100, session 10) */
    sp->params[AC_PART] = (mt_param_def){"partition", 8, {64, 128, 256, 512, 1024, 2048, 4096, 8192}};
    sp->params[AC_WARPS] = (mt_param_def){"num_warps", 4, {2, 4, 8, 16}};
    /* 1: the group's heads as the rows of tensor-core tiles (wide groups) */
    sp->params[AC_MMA] = (mt_param_def){"mma", 2, {0, 1}};
    /* 1: the partition's K and V copied to shared memory before use (all
     * its loads in flight at once: small batches); 2..4: one pass, each
     * warp streaming 16-token chunks through a ring of that many in shared
     * memory (the H100's pick at B = 1 and at short contexts, where the
     * two-pass kernel's barrier between K and V costs most) */
    sp->params[AC_STAGE] = (mt_param_def){"stage", 5, {0, 1, 2, 3, 4}};
    /* blocks per KV head, each a share of its query heads: more blocks
     * without a merge where a batch has few (the ring's variants only: the
     * H100's picks there) */
    sp->params[AC_QSPLIT] = (mt_param_def){"query_split", 3, {1, 2, 4}};
    sp->valid = attn_cuda_valid;
    sp->default_config = attn_cuda_default;
}

/* ---- vLLM's Triton parameters ---- */
enum { V_BM, V_BN, V_BK, V_GROUP, V_WARPS, V_STAGES, V_WAVES, V_NONKDIM, V_KPACK };

/* The constraints of our CUDA kernels (kernels/cuda/moe.cu) on vLLM's
 * parameters: a warp layout must exist, the pipeline must fit in shared
 * memory, and the first GEMM's two accumulator sets must fit in registers. */
static int vllm_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    (void)sp;
    int bm = c->v[V_BM], bn = c->v[V_BN], bk = c->v[V_BK], w = c->v[V_WARPS], st = c->v[V_STAGES];
    int limit = x->smem_limit > 0 ? x->smem_limit : 227 * 1024;
    int wm = mt_cuda_warps_m(bm, bn, w);
    if (!wm) return snprintf(why, n, "no layout of %d warps tiles %dx%d", w, bm, bn), 0;
    int smem = mt_cuda_smem_bytes(bm, bn, bk, st, 1);
    if (smem > limit) return snprintf(why, n, "pipeline needs %d bytes of shared memory", smem), 0;
    /* accumulators per thread of the first GEMM: gate and up */
    int acc = 2 * (bm / wm / 16) * (bn / (w / wm) / 8) * 4;
    if (acc > 128) return snprintf(why, n, "%d accumulator registers per thread", acc), 0;
    /* a row block taller than the padded pair count only adds padding */
    int64_t pairs = x->M * x->topk, maxbm = 16;
    while (maxbm < pairs && maxbm < 256) maxbm <<= 1;
    if (x->M > 0 && bm > maxbm) return snprintf(why, n, "BLOCK_SIZE_M %d exceeds the pair count", bm), 0;
    return 1;
}

/* vLLM's default heuristic, shared with the runtime's fallback; on ROCm the
 * three AMD keys take Triton's own defaults (no waves_per_eu hint, 16x16
 * MFMA, kpack 1) */
static void vllm_default(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    memset(out, 0, sizeof *out);
    int rocm = sp->backend && strcmp(sp->backend, "hip") == 0;
    mt_vllm_default_config(x->M, x->E, rocm, out->v);
    if (rocm) {
        out->v[V_WAVES] = 0;
        out->v[V_NONKDIM] = 16;
        out->v[V_KPACK] = 1;
    }
}

void mt_space_vllm_moe(mt_space *sp, int rocm)
{
    memset(sp, 0, sizeof *sp);
    sp->backend = rocm ? "hip" : "cuda";
    sp->valid = vllm_valid;
    sp->default_config = vllm_default;
    if (!rocm) {
        /* benchmark_moe.py's CUDA grid: 1,920 points */
        sp->nparams = 6;
        sp->params[V_BM] = (mt_param_def){"BLOCK_SIZE_M", 5, {16, 32, 64, 128, 256}};
        sp->params[V_BN] = (mt_param_def){"BLOCK_SIZE_N", 4, {32, 64, 128, 256}};
        sp->params[V_BK] = (mt_param_def){"BLOCK_SIZE_K", 3, {64, 128, 256}};
        sp->params[V_GROUP] = (mt_param_def){"GROUP_SIZE_M", 4, {1, 16, 32, 64}};
        sp->params[V_WARPS] = (mt_param_def){"num_warps", 2, {4, 8}};
        sp->params[V_STAGES] = (mt_param_def){"num_stages", 4, {2, 3, 4, 5}};
        return;
    }
    /* ROCm: the keys and order of vLLM's AMD files, the values they hold
     * (../shared/data), num_stages 2 as vLLM's ROCm tuner uses (the 0 and 1
     * of older files import and export unchanged, our kernels pipeline at
     * least two stages) */
    sp->nparams = 9;
    sp->params[V_BM] = (mt_param_def){"BLOCK_SIZE_M", 5, {16, 32, 64, 128, 256}};
    sp->params[V_BN] = (mt_param_def){"BLOCK_SIZE_N", 5, {16, 32, 64, 128, 256}};
    sp->params[V_BK] = (mt_param_def){"BLOCK_SIZE_K", 4, {32, 64, 128, 256}};
    sp->params[V_GROUP] = (mt_param_def){"GROUP_SIZE_M", 6, {1, 2, 4, 8, 16, 32}};
    sp->params[V_WARPS] = (mt_param_def){"num_warps", 4, {1, 2, 4, 8}};
    sp->params[V_STAGES] = (mt_param_def){"num_stages", 1, {2}};
    sp->params[V_WAVES] = (mt_param_def){"waves_per_eu", 4, {0, 1, 2, 4}};
    sp->params[V_NONKDIM] = (mt_param_def){"matrix_instr_nonkdim", 2, {16, 32}};
    sp->params[V_KPACK] = (mt_param_def){"kpack", 2, {1, 2}};
}

/* Our CUDA kernels' GEMV key (kernels/cuda/moe.cu's small-batch path: no
 * tiles, so one tile shape per width and warp count stands for it: the
 * binary it shares). It reads each pair's expert weights on its own, so
 * it is offered only where experts hold about two rows or fewer. */
#define V_NUM_SM 6
#define V_GEMV 7
static int cuda_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    if (!vllm_valid(sp, c, x, why, n)) return 0;
    if (!c->v[V_GEMV]) return 1;
    if (c->v[V_BM] != 16 || c->v[V_BK] != 64 || c->v[V_GROUP] != 1 || c->v[V_STAGES] != 2 || c->v[V_NUM_SM] != 0)
        return snprintf(why, n, "GEMV takes BLOCK_SIZE_M 16, BLOCK_SIZE_K 64, GROUP_SIZE_M 1, num_stages 2, NUM_SM 0 "
                                "(its tiles are unused)"), 0;
    if (!mt_cuda_gemv_fits(x->M, x->E, x->topk))
        return snprintf(why, n, "GEMV: topk %lld (at most %d), %lld pairs over %lld experts (at most two each)",
                        (long long)x->topk, MT_CUDA_GEMV_MAX_TOPK, (long long)(x->M * x->topk), (long long)x->E), 0;
    return 1;
}

void mt_space_cuda_moe(mt_space *sp, int sms)
{
    mt_space_vllm_moe(sp, 0);
    sp->valid = cuda_valid;
    sp->nparams = 8;
    if (sms < 1) sms = 1;
    sp->params[V_NUM_SM] = (mt_param_def){"NUM_SM", 3, {0, sms, 2 * sms}};
    sp->params[V_GEMV] = (mt_param_def){"GEMV", 2, {0, 1}};
}

/* vLLM's ROCm default (lookup.c), NUM_SM 0, no waves_per_eu hint, and the
 * two fixed AMD keys. Our GEMM 1 keeps gate and up tiles in LDS, so vLLM's
 * tile can overflow an AMD GPU's 64 KB (16x64x128 in two stages needs
 * 78 KB): BLOCK_SIZE_K, then BLOCK_SIZE_N, are halved until it fits. */
static void hip_default(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    (void)sp;
    memset(out, 0, sizeof *out);
    mt_vllm_default_config(x->M, x->E, 1, out->v);
    int limit = x->smem_limit > 0 ? x->smem_limit : 64 * 1024;
    while (out->v[V_BK] > 32 && mt_cuda_smem_bytes(out->v[V_BM], out->v[V_BN], out->v[V_BK], out->v[V_STAGES], 1) > limit)
        out->v[V_BK] /= 2;
    while (out->v[V_BN] > 16 && mt_cuda_smem_bytes(out->v[V_BM], out->v[V_BN], out->v[V_BK], out->v[V_STAGES], 1) > limit)
        out->v[V_BN] /= 2;
    out->v[6] = 0;
    out->v[7] = 0;
    out->v[8] = 16;
    out->v[9] = 1;
}

void mt_space_hip_moe(mt_space *sp, int cus)
{
    mt_space_vllm_moe(sp, 1);
    sp->default_config = hip_default;
    sp->nparams = 10;
    if (cus < 1) cus = 1;
    sp->params[6] = (mt_param_def){"NUM_SM", 3, {0, cus, 2 * cus}};
    sp->params[7] = (mt_param_def){"waves_per_eu", 4, {0, 1, 2, 4}};
    sp->params[8] = (mt_param_def){"matrix_instr_nonkdim", 1, {16}};
    sp->params[9] = (mt_param_def){"kpack", 1, {1}};
}

int mt_space_param_index(const mt_space *sp, const char *name)
{
    for (int i = 0; i < sp->nparams; i++)
        if (strcmp(sp->params[i].name, name) == 0) return i;
    return -1;
}

int mt_space_seeds(const mt_space *sp, const mt_space_ctx *ctx, mt_config *out, int max)
{
    int g = mt_space_param_index(sp, "GEMV");
    if (g < 0 || max < 1 || strcmp(sp->backend, "cuda") != 0) return 0;
    /* the GEMV point that won at M = 1 on three of the four TARGETS shapes
     * (bench/results/2026-11-24-h100-moe-gemv): 64 columns a CTA, 4 warps */
    mt_config c = {{16, 64, 64, 1, 4, 2, 0, 1}};
    char why[128];
    /* --only may have narrowed GEMV (or another key) away from it */
    for (int p = 0; p < sp->nparams; p++) {
        int ok = 0;
        for (int k = 0; k < sp->params[p].nvalues; k++) ok |= sp->params[p].values[k] == c.v[p];
        if (!ok) return 0;
    }
    if (!sp->valid(sp, &c, ctx, why, sizeof why)) return 0;
    out[0] = c;
    return 1;
}

int mt_space_fix(mt_space *sp, const char *spec, char *why, size_t n)
{
    mt_space fixed = *sp;
    const char *p = spec;
    while (p && *p) {
        const char *end = strchr(p, ','), *eq = strchr(p, '=');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[64];
        if (!eq || eq > p + len || eq == p || (size_t)(eq - p) >= sizeof name) {
            snprintf(why, n, "'%.*s' is not NAME=VALUE", (int)len, p);
            return MT_EINVAL;
        }
        memcpy(name, p, (size_t)(eq - p));
        name[eq - p] = 0;
        int i = mt_space_param_index(&fixed, name);
        if (i < 0) {
            int o = snprintf(why, n, "no parameter '%s'; this space has", name);
            for (int j = 0; j < fixed.nparams && o > 0 && (size_t)o < n; j++)
                o += snprintf(why + o, n - (size_t)o, " %s", fixed.params[j].name);
            return MT_EINVAL;
        }
        char *stop;
        long v = strtol(eq + 1, &stop, 10);
        int found = -1;
        for (int k = 0; stop == p + len && stop > eq + 1 && k < fixed.params[i].nvalues; k++)
            if (fixed.params[i].values[k] == v) found = k;
        if (found < 0) {
            int o = snprintf(why, n, "%s=%.*s: the values are", name, (int)(p + len - eq - 1), eq + 1);
            for (int k = 0; k < fixed.params[i].nvalues && o > 0 && (size_t)o < n; k++)
                o += snprintf(why + o, n - (size_t)o, " %d", fixed.params[i].values[k]);
            return MT_EINVAL;
        }
        fixed.params[i].nvalues = 1;
        fixed.params[i].values[0] = (int)v;
        p = end ? end + 1 : NULL;
    }
    *sp = fixed;
    return MT_OK;
}

int mt_space_enumerate(const mt_space *sp, const mt_space_ctx *ctx, mt_config **out)
{
    size_t total = 1, n = 0;
    mt_config *pts;
    char why[128];
    for (int i = 0; i < sp->nparams; i++) total *= (size_t)sp->params[i].nvalues;
    pts = malloc((total ? total : 1) * sizeof *pts);
    if (!pts) return MT_ENOMEM;
    for (size_t idx = 0; idx < total; idx++) {
        mt_config c;
        size_t r = idx;
        memset(&c, 0, sizeof c);
        /* the last parameter varies fastest */
        for (int i = sp->nparams - 1; i >= 0; i--) {
            c.v[i] = sp->params[i].values[r % (size_t)sp->params[i].nvalues];
            r /= (size_t)sp->params[i].nvalues;
        }
        if (sp->valid(sp, &c, ctx, why, sizeof why)) pts[n++] = c;
    }
    *out = pts;
    return (int)n;
}

int mt_config_to_json(const mt_space *sp, const mt_config *c, char *out, size_t len)
{
    size_t o = 0;
    int k = snprintf(out, len, "{");
    if (k < 0 || (size_t)k >= len) return MT_EINVAL;
    o = (size_t)k;
    for (int i = 0; i < sp->nparams; i++) {
        k = snprintf(out + o, len - o, "%s\"%s\":%d", i ? "," : "", sp->params[i].name, c->v[i]);
        if (k < 0 || (size_t)k >= len - o) return MT_EINVAL;
        o += (size_t)k;
    }
    k = snprintf(out + o, len - o, "}");
    if (k < 0 || (size_t)k >= len - o) return MT_EINVAL;
    return MT_OK;
}

int mt_config_from_json(const mt_space *sp, const char *json, mt_config *out)
{
    cJSON *root = cJSON_Parse(json);
    int rc = MT_OK;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return MT_EPARSE;
    }
    memset(out, 0, sizeof *out);
    for (int i = 0; i < sp->nparams && rc == MT_OK; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(root, sp->params[i].name);
        if (!cJSON_IsNumber(v)) rc = MT_EPARSE;
        else out->v[i] = v->valueint;
    }
    cJSON_Delete(root);
    return rc;
}

static int same(const mt_config *a, const mt_config *b, int np)
{
    for (int i = 0; i < np; i++)
        if (a->v[i] != b->v[i]) return 0;
    return 1;
}

int mt_grid_order(const mt_config *pts, int n, const mt_config *def, int np, int budget, int *order)
{
    int cnt = 0, def_idx = -1;
    for (int i = 0; i < n; i++)
        if (def && same(&pts[i], def, np)) def_idx = i;
    if (def_idx >= 0) order[cnt++] = def_idx;
    int want = budget > 0 && budget < n ? budget : n;
    int rest = want - cnt;
    int others = n - (def_idx >= 0);
    for (int q = 0; q < rest; q++) {
        /* the q-th of `rest` evenly spaced picks among the non-default points */
        int k = (int)((long long)q * others / rest);
        int i = k + (def_idx >= 0 && k >= def_idx);
        order[cnt++] = i;
    }
    return cnt;
}
