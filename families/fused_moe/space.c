/*
 * The fused-MoE family's parameter spaces: the CPU kernel's, vLLM's Triton
 * grid (benchmark_moe.py), and moetune's CUDA and HIP kernels' (vLLM's
 * parameters with their meaning, and moetune's own). The constraints are
 * the kernels' own rules (kernels/cpu/moe_cpu.h, kernels/cuda/moe_launch.h),
 * written once there and used here.
 */
#include <stdio.h>
#include <string.h>

#include "family_space.h"
#include "moe_cpu.h"
#include "moe_launch.h"
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
    /* block scales: a k tile inside one scale block (vLLM's default takes
     * 64 or 128, which divide DeepSeek-V3's 128) */
    int bk = x->block_k > 0 ? mt_cuda_fp8_block_k(out->v[V_BK], x->block_k) : 0;
    if (bk) out->v[V_BK] = bk;
    /* and for moetune's fp8 kernel (1-byte elements), whose block scales
     * keep a second set of accumulators: a narrower tile until both sets
     * fit (cuda_fp8_valid's bound) */
    for (int *bn = &out->v[V_BN]; x->elem_bytes == 1 && x->block_k > 0 && *bn > 32; *bn /= 2) {
        int bm = out->v[V_BM], w = out->v[V_WARPS], wm = mt_cuda_warps_m(bm, *bn, w);
        if (wm && 4 * (bm / wm / 16) * (*bn / (w / wm) / 8) * 4 <= 128) break;
    }
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
/* the GEMV path's rules: one tile shape per width and warp count, where
 * experts hold at most two pairs each */
static int gemv_valid(const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    if (c->v[V_BM] != 16 || c->v[V_BK] != 64 || c->v[V_GROUP] != 1 || c->v[V_STAGES] != 2 || c->v[V_NUM_SM] != 0)
        return snprintf(why, n, "GEMV takes BLOCK_SIZE_M 16, BLOCK_SIZE_K 64, GROUP_SIZE_M 1, num_stages 2, NUM_SM 0 "
                                "(its tiles are unused)"), 0;
    if (!mt_cuda_gemv_fits(x->M, x->E, x->topk))
        return snprintf(why, n, "GEMV: topk %lld (at most %d), %lld pairs over %lld experts (at most two each)",
                        (long long)x->topk, MT_CUDA_GEMV_MAX_TOPK, (long long)(x->M * x->topk), (long long)x->E), 0;
    return 1;
}

/* fp8 (a problem of 1-byte elements): the fp8 GEMMs' own limits
 * (kernels/cuda/moe.cu's fp8 section): the GEMV path's rules, no wgmma, their
 * shared memory, a k tile inside one scale block, and with block scales a
 * second set of accumulators */
static int cuda_fp8_valid(const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    int bm = c->v[V_BM], bn = c->v[V_BN], bk = c->v[V_BK], w = c->v[V_WARPS], st = c->v[V_STAGES];
    int limit = x->smem_limit > 0 ? x->smem_limit : 227 * 1024, wm = mt_cuda_warps_m(bm, bn, w);
    if (!wm) return snprintf(why, n, "no layout of %d warps tiles %dx%d", w, bm, bn), 0;
    int64_t pairs = x->M * x->topk, maxbm = 16;
    while (maxbm < pairs && maxbm < 256) maxbm <<= 1;
    if (x->M > 0 && bm > maxbm) return snprintf(why, n, "BLOCK_SIZE_M %d exceeds the pair count", bm), 0;
    if (x->N % 16 || x->K % 16) return snprintf(why, n, "fp8 needs N and K to be multiples of 16"), 0;
    if (c->v[V_GEMV]) return gemv_valid(c, x, why, n);
    if (bk % 32) return snprintf(why, n, "fp8 reduces 32 at a time: BLOCK_SIZE_K %d", bk), 0;
    if (x->block_k > 0 && x->block_k % bk)
        return snprintf(why, n, "BLOCK_SIZE_K %d does not divide the scale block's %lld", bk, (long long)x->block_k), 0;
    int smem = mt_cuda_fp8_smem_bytes(bm, bn, bk, st, 1);
    if (smem > limit) return snprintf(why, n, "fp8 pipeline needs %d bytes of shared memory", smem), 0;
    int acc = 2 * (bm / wm / 16) * (bn / (w / wm) / 8) * 4 * (x->block_k > 0 ? 2 : 1);
    if (acc > 128) return snprintf(why, n, "%d accumulator registers per thread", acc), 0;
    return 1;
}

static int cuda_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    if (x->elem_bytes == 1) return cuda_fp8_valid(c, x, why, n);
    if (!vllm_valid(sp, c, x, why, n)) return 0;
    return c->v[V_GEMV] ? gemv_valid(c, x, why, n) : 1;
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

/* ---- the engines' own Triton kernels ----
 * Followed from the engines' public tuners: vLLM's
 * benchmarks/kernels/benchmark_moe.py (get_configs_compute_bound,
 * get_rocm_tuning_space, prune_rocm_configs; v0.11) and SGLang's
 * benchmark/kernels/fused_moe_triton/tuning_fused_moe_triton.py (v0.5).
 * The parameters keep the engines' names and order, so a config is the
 * object the engine passes to its kernel. */
enum { EN_BM, EN_BN, EN_BK, EN_GROUP, EN_WARPS, EN_STAGES, EN_WAVES, EN_NONKDIM, EN_KPACK };

/* either divides the other */
static int divides_either(int64_t a, int64_t b)
{
    return a > 0 && b > 0 && (a % b == 0 || b % a == 0);
}

/* prune_rocm_configs for one GEMM of M x N x K (vLLM's rules: MFMA size,
 * tiles no larger than twice the problem, LDS at most 64 KiB, large GEMMs
 * with large tiles) */
static int rocm_gemm_ok(const mt_config *c, int nparams, int64_t M, int64_t N, int64_t K, int elem)
{
    int bm = c->v[EN_BM], bn = c->v[EN_BN], bk = c->v[EN_BK], group = c->v[EN_GROUP], warps = c->v[EN_WARPS];
    int fp16 = nparams > EN_NONKDIM;
    int mfma = M < 32 || N < 32 ? 16 : 32;
    int large = M >= 2048 && N >= 2048;
    if (fp16) {
        int nk = c->v[EN_NONKDIM];
        if (nk > mfma || nk > bm || nk > bn) return 0;
        if (nk >= M && nk != bm) return 0;
        if (nk >= N && nk != bn) return 0;
    }
    if ((int64_t)bm * bn < 64) return 0;
    if (M * 2 < bm && bm != 16) return 0;
    if (N * 2 < bn && bn != 16) return 0;
    if (K % bk) return 0; /* EVEN_K with SPLIT_K 1 */
    if (group * (int64_t)bm > M && group != 1) return 0;
    if ((int64_t)bk * bm * elem + (int64_t)bk * bn * elem > 65536) return 0;
    if (large && (bm < 64 || bn < 64 || bk < 64 || warps < 4)) return 0;
    return 1;
}

static int engine_valid_common(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n,
                               int sglang)
{
    int bn = c->v[EN_BN], bk = c->v[EN_BK];
    if (x->block_n > 0 && x->block_k > 0) {
        if (sglang && x->block_k % bk)
            return snprintf(why, n, "BLOCK_SIZE_K %d does not divide the block's %lld (SGLang's block filter)", bk,
                            (long long)x->block_k), 0;
        if (!sglang && (!divides_either(bk, x->block_k) || !divides_either(bn, x->block_n)))
            return snprintf(why, n, "BLOCK_SIZE_N/K %d/%d and the block [%lld, %lld] do not divide (vLLM's block filter)",
                            bn, bk, (long long)x->block_n, (long long)x->block_k), 0;
    }
    /* Triton's software pipeline keeps num_stages copies of both operand
     * tiles in shared memory (Triton 3's allocation: on an H100 with Triton
     * 3.6 each OutOfResources figure was exactly this); a config over the
     * device's limit fails to compile, so it is skipped rather than
     * compiled and measured (the device's limit comes from the worker's
     * hello; none, as on the CPU doubles, keeps the whole grid) */
    if (!strstr(sp->backend, "rocm") && x->smem_limit > 0 && x->act_bytes > 0 && x->weight_bits > 0) {
        int bm = c->v[EN_BM], st = c->v[EN_STAGES];
        int64_t need = (int64_t)st * bk * ((int64_t)bm * x->act_bytes + (int64_t)bn * x->weight_bits / 8);
        if (need > x->smem_limit)
            return snprintf(why, n, "Triton's %d-stage pipeline needs %lld bytes of shared memory, over the GPU's %d", st,
                            (long long)need, x->smem_limit), 0;
    }
    if (strcmp(sp->backend, "vllm-rocm") == 0 && x->M > 0) {
        /* valid when either GEMM keeps it (vLLM merges the two pruned lists) */
        int elem = x->elem_bytes > 0 ? x->elem_bytes : 2;
        if (!rocm_gemm_ok(c, sp->nparams, x->M * x->topk, 2 * x->N, x->K, elem) &&
            !rocm_gemm_ok(c, sp->nparams, x->M * x->topk, x->K, x->N, elem))
            return snprintf(why, n, "pruned by vLLM's ROCm rules for both GEMMs"), 0;
    }
    return 1;
}

static int vllm_engine_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    return engine_valid_common(sp, c, x, why, n, 0);
}

static int sglang_engine_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    return engine_valid_common(sp, c, x, why, n, 1);
}

/* the engines' default config (vLLM's get_default_config; SGLang's is the
 * same): block-quantised problems take the block as the tile, else vLLM's
 * heuristic */
static void engine_default(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    int rocm = strstr(sp->backend, "rocm") != NULL;
    memset(out, 0, sizeof *out);
    if (x->block_n > 0 && x->block_k > 0) {
        int v[6] = {64, (int)x->block_n, (int)x->block_k, 32, 4, rocm ? 2 : 3};
        memcpy(out->v, v, sizeof v);
    } else {
        mt_vllm_default_config(x->M, x->E, rocm, out->v);
    }
    if (sp->nparams > EN_WAVES) out->v[EN_WAVES] = 0;
    if (sp->nparams > EN_NONKDIM) out->v[EN_NONKDIM] = 16;
    if (sp->nparams > EN_KPACK) out->v[EN_KPACK] = 1;
}

void mt_space_engine_moe(mt_space *sp, const char *engine, int rocm, int quantised)
{
    int sglang = engine && strcmp(engine, "sglang") == 0;
    memset(sp, 0, sizeof *sp);
    sp->backend = sglang ? (rocm ? "sglang-rocm" : "sglang") : (rocm ? "vllm-rocm" : "vllm");
    sp->valid = sglang ? sglang_engine_valid : vllm_engine_valid;
    sp->default_config = engine_default;
    if (!rocm) {
        /* both tuners' CUDA grid: 1,920 points */
        sp->nparams = 6;
        sp->params[EN_BM] = (mt_param_def){"BLOCK_SIZE_M", 5, {16, 32, 64, 128, 256}};
        sp->params[EN_BN] = (mt_param_def){"BLOCK_SIZE_N", 4, {32, 64, 128, 256}};
        sp->params[EN_BK] = (mt_param_def){"BLOCK_SIZE_K", 3, {64, 128, 256}};
        sp->params[EN_GROUP] = (mt_param_def){"GROUP_SIZE_M", 4, {1, 16, 32, 64}};
        sp->params[EN_WARPS] = (mt_param_def){"num_warps", 2, {4, 8}};
        sp->params[EN_STAGES] = (mt_param_def){"num_stages", 4, {2, 3, 4, 5}};
        return;
    }
    if (sglang) {
        /* SGLang's ROCm grid: waves_per_eu fixed at 0 */
        sp->nparams = 7;
        sp->params[EN_BM] = (mt_param_def){"BLOCK_SIZE_M", 4, {32, 64, 128, 256}};
        sp->params[EN_BN] = (mt_param_def){"BLOCK_SIZE_N", 5, {16, 32, 64, 128, 256}};
        sp->params[EN_BK] = (mt_param_def){"BLOCK_SIZE_K", 4, {32, 64, 128, 256}};
        sp->params[EN_GROUP] = (mt_param_def){"GROUP_SIZE_M", 5, {1, 4, 8, 16, 32}};
        sp->params[EN_WARPS] = (mt_param_def){"num_warps", 4, {1, 2, 4, 8}};
        sp->params[EN_STAGES] = (mt_param_def){"num_stages", 1, {2}};
        sp->params[EN_WAVES] = (mt_param_def){"waves_per_eu", 1, {0}};
        return;
    }
    /* vLLM's ROCm space; fp16 (unquantised activations) adds BLOCK_SIZE_K
     * 16 and the MFMA and kpack keys */
    sp->nparams = quantised ? 7 : 9;
    sp->params[EN_BM] = (mt_param_def){"BLOCK_SIZE_M", 5, {16, 32, 64, 128, 256}};
    sp->params[EN_BN] = (mt_param_def){"BLOCK_SIZE_N", 5, {16, 32, 64, 128, 256}};
    sp->params[EN_BK] = quantised ? (mt_param_def){"BLOCK_SIZE_K", 4, {32, 64, 128, 256}}
                                  : (mt_param_def){"BLOCK_SIZE_K", 5, {16, 32, 64, 128, 256}};
    sp->params[EN_GROUP] = (mt_param_def){"GROUP_SIZE_M", 5, {1, 4, 8, 16, 32}};
    sp->params[EN_WARPS] = (mt_param_def){"num_warps", 4, {1, 2, 4, 8}};
    sp->params[EN_STAGES] = (mt_param_def){"num_stages", 1, {2}};
    sp->params[EN_WAVES] = (mt_param_def){"waves_per_eu", 4, {0, 1, 2, 4}};
    if (!quantised) {
        sp->params[EN_NONKDIM] = (mt_param_def){"matrix_instr_nonkdim", 2, {16, 32}};
        sp->params[EN_KPACK] = (mt_param_def){"kpack", 2, {1, 2}};
    }
}

/* the down GEMM's space: the gate-up grid's keys less BLOCK_SIZE_M, in the
 * same order */
enum { DN_BN, DN_BK, DN_GROUP, DN_WARPS, DN_STAGES };

static int down_valid(const mt_space *sp, const mt_config *c, const mt_space_ctx *x, char *why, size_t n)
{
    (void)sp;
    int bk = c->v[DN_BK];
    if (x->block_n > 0 && x->block_k > 0 && x->block_k % bk)
        return snprintf(why, n, "BLOCK_SIZE_K %d does not divide the block's %lld (SGLang's block filter)", bk,
                        (long long)x->block_k), 0;
    return 1;
}

static void down_default(const mt_space *sp, const mt_space_ctx *x, mt_config *out)
{
    mt_space up;
    mt_config u;
    (void)sp;
    mt_space_engine_moe(&up, "sglang", 0, 0);
    engine_default(&up, x, &u);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 5; i++) out->v[i] = u.v[EN_BN + i];
}

void mt_space_engine_moe_down(mt_space *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->backend = "sglang";
    sp->valid = down_valid;
    sp->default_config = down_default;
    sp->nparams = 5;
    sp->params[DN_BN] = (mt_param_def){"BLOCK_SIZE_N", 4, {32, 64, 128, 256}};
    sp->params[DN_BK] = (mt_param_def){"BLOCK_SIZE_K", 3, {64, 128, 256}};
    sp->params[DN_GROUP] = (mt_param_def){"GROUP_SIZE_M", 4, {1, 16, 32, 64}};
    sp->params[DN_WARPS] = (mt_param_def){"num_warps", 2, {4, 8}};
    sp->params[DN_STAGES] = (mt_param_def){"num_stages", 4, {2, 3, 4, 5}};
}
