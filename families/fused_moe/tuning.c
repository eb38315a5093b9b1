/* The fused-MoE family's tuning: its spaces, their context, its dtypes per
 * backend, and one measurement through the CPU or GPU bench. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "family_tuning.h"
#include "measure.h"
#include "measure_cuda.h"

static int space(mt_space *sp, const char *backend, int cores)
{
    if (!strcmp(backend, "cpu")) mt_space_cpu_moe(sp, cores);
    else if (!strcmp(backend, "cuda")) mt_space_cuda_moe(sp, cores);
    else if (!strcmp(backend, "hip")) mt_space_hip_moe(sp, cores);
    else if (!strcmp(backend, "vllm") || !strcmp(backend, "sglang")) mt_space_engine_moe(sp, backend, 0, 0);
    else return MT_EUNSUPPORTED;
    return MT_OK;
}

static void space_ctx(const mt_family_key *k, const int64_t *point, int cores, int smem, mt_space_ctx *x)
{
    memset(x, 0, sizeof *x);
    x->E = k->v[MT_MOE_KEY_E];
    x->N = k->v[MT_MOE_KEY_N];
    x->K = k->v[MT_MOE_KEY_K];
    x->topk = k->v[MT_MOE_KEY_TOPK];
    x->M = point[0];
    x->max_threads = cores;
    x->smem_limit = smem;
    x->block_n = k->v[MT_MOE_KEY_BLOCK_N];
    x->block_k = k->v[MT_MOE_KEY_BLOCK_K];
    x->elem_bytes = !strncmp(k->dtype, "fp8", 3) || !strncmp(k->dtype, "int8", 4) ? 1 : !strcmp(k->dtype, "fp32") ? 4 : 2;
    /* the engines' kernels: w8a8 quantises the activations too; the
     * weight-only schemes keep them in 16 bits and pack int4 two a byte */
    int w8a8 = !strncmp(k->dtype, "fp8_w8a8", 8) || !strcmp(k->dtype, "int8_w8a8");
    x->act_bytes = w8a8 ? 1 : !strcmp(k->dtype, "fp32") ? 4 : 2;
    x->weight_bits = !strncmp(k->dtype, "int4_w4a16", 10) ? 4 : w8a8 || !strcmp(k->dtype, "int8_w8a16") ? 8
                     : !strcmp(k->dtype, "fp32")    ? 32
                                                    : 16;
}

/* the CPU kernel computes in bf16 or fp32, and fp8 weights and activations
 * with their scales (per tensor or in blocks as fp8_w8a8, per channel as
 * fp8_w8a8_per_channel); the CUDA kernels take bf16, fp16 (tensor cores)
 * and fp8 (e4m3 tensor cores, sm_89 and later); HIP's bf16 and fp16 */
static const char *dtypes(const char *backend)
{
    return !strcmp(backend, "cpu")    ? "bf16,fp32,fp8_w8a8,fp8_w8a8_per_channel"
           : !strcmp(backend, "cuda") ? "bf16,fp16,fp8_w8a8,fp8_w8a8_per_channel"
           : !strcmp(backend, "hip")  ? "bf16,fp16"
                                      : "";
}

static int measure(const mt_bench *b, const mt_family_key *k, int renormalize, const int64_t *point, const mt_space *sp,
                   const mt_config *cfg, uint64_t seed, const mt_policy *pol, mt_measure_result *res, char *resources,
                   size_t rlen)
{
    mt_moe_shape s = {k->v[MT_MOE_KEY_E], k->v[MT_MOE_KEY_N], k->v[MT_MOE_KEY_K], k->v[MT_MOE_KEY_TOPK], 0, renormalize,
                      0, 0, 0};
    (void)sp;
    if (resources && rlen) resources[0] = 0;
    if (mt_moe_shape_set_dtype(&s, k->dtype, k->v[MT_MOE_KEY_BLOCK_N], k->v[MT_MOE_KEY_BLOCK_K]) != MT_OK ||
        !mt_family_takes_dtype(&mt_tuning_fused_moe, b->backend, k->dtype))
        return MT_EUNSUPPORTED;
    if (s.E < 1 || s.N < 1 || s.K < 1 || s.topk < 1 || s.topk > s.E || point[0] < 1) return MT_EINVAL;
    if (b->cuda) return mt_cuda_bench_measure(b->cuda, &s, point[0], cfg, seed, pol, res, resources, rlen);
    if (!b->cpu) return MT_EINVAL;
    mt_cpu_params p = {cfg->v[0], cfg->v[1], cfg->v[2], cfg->v[3]};
    return mt_cpu_bench_measure(b->cpu, &s, point[0], &p, seed, pol, res);
}

/* every hit expert's weights read once, activations in and out; or the
 * FLOPs at the peak, whichever takes longer */
static double floor_us(const mt_family_key *k, const int64_t *point, double bw, double peak, int64_t hit)
{
    mt_moe_shape s = {k->v[MT_MOE_KEY_E], k->v[MT_MOE_KEY_N], k->v[MT_MOE_KEY_K], k->v[MT_MOE_KEY_TOPK], 0, 1, 0, 0, 0};
    /* the engines' quantised kernels; moetune's fp8 (the CPU's, which
     * computes at its fp32 rate) below */
    if (mt_moe_shape_set_dtype(&s, k->dtype, k->v[MT_MOE_KEY_BLOCK_N], k->v[MT_MOE_KEY_BLOCK_K]) != MT_OK)
        return mt_roofline_floor_quant_us(k->dtype, s.E, s.N, s.K, s.topk, point[0], hit, bw, peak);
    return mt_roofline_floor_us(&s, point[0], hit > 0 ? hit : s.E, bw, peak);
}

/* one token (the GEMV path's case), a batch whose pairs leave experts
 * empty, and one that fills them, on shapes whose N and K are not powers
 * of two */
static const mt_family_check checks[] = {
    {"{\"E\":8,\"N\":96,\"K\":160,\"topk\":2}", {1}},
    {"{\"E\":8,\"N\":96,\"K\":160,\"topk\":2}", {5}},
    {"{\"E\":16,\"N\":64,\"K\":128,\"topk\":4}", {48}},
};

/* its sweep's command line is its own (tuner/cmd_sweep.c: model presets,
 * Hugging Face configs, parallelism, the memory check) */
const mt_family_tuning mt_tuning_fused_moe = {
    .family = &mt_family_fused_moe,
    .policy_suffix = "",
    .space = space,
    .space_ctx = space_ctx,
    .dtypes = dtypes,
    .measure = measure,
    .floor_us = floor_us,
    .nchecks = (int)(sizeof checks / sizeof checks[0]),
    .checks = checks,
};
