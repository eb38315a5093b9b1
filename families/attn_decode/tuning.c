/* The attention decode family's tuning: its spaces, their context, its
 * dtypes per backend, and one measurement through the CPU or GPU bench. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn.h"
#include "family_tuning.h"
#include "measure.h"
#include "measure_cuda.h"
#include "precompile.h"

static int space(mt_space *sp, const char *backend, int cores)
{
    if (!strcmp(backend, "cpu")) mt_space_cpu_attn(sp, cores);
    else if (!strcmp(backend, "cuda") || !strcmp(backend, "hip")) mt_space_cuda_attn(sp);
    else return MT_EUNSUPPORTED;
    return MT_OK;
}

/* the attention spaces' context: the key's heads, head dimension and page,
 * the batch in M and the context length in ctx (family_space.h) */
static void space_ctx(const mt_family_key *k, const int64_t *point, int cores, int smem, mt_space_ctx *x)
{
    memset(x, 0, sizeof *x);
    x->E = k->v[MT_ATTN_KEY_H];
    x->N = k->v[MT_ATTN_KEY_HKV];
    x->K = k->v[MT_ATTN_KEY_D];
    x->topk = k->v[MT_ATTN_KEY_PAGE];
    x->M = point[0];
    x->ctx = point[1];
    x->max_threads = cores;
    x->smem_limit = smem;
}

/* the CPU kernel takes fp32 too; the GPU kernel bf16 and fp16 */
static const char *dtypes(const char *backend)
{
    return !strcmp(backend, "cpu") ? "bf16,fp16,fp32" : !strcmp(backend, "cuda") || !strcmp(backend, "hip") ? "bf16,fp16" : "";
}

static int param(const mt_space *sp, const mt_config *c, const char *name, int def)
{
    int i = mt_space_param_index(sp, name);
    return i < 0 ? def : c->v[i];
}

static int measure(const mt_bench *b, const mt_family_key *k, int renormalize, const int64_t *point, const mt_space *sp,
                   const mt_config *cfg, uint64_t seed, const mt_policy *pol, mt_measure_result *res, char *resources,
                   size_t rlen)
{
    mt_attn_shape s = {k->v[MT_ATTN_KEY_H], k->v[MT_ATTN_KEY_HKV], k->v[MT_ATTN_KEY_D], k->v[MT_ATTN_KEY_PAGE], 0};
    (void)renormalize;
    if (resources && rlen) resources[0] = 0;
    if (mt_dtype_parse(k->dtype, &s.dtype) != MT_OK || !mt_family_takes_dtype(&mt_tuning_attn_decode, b->backend, k->dtype))
        return MT_EUNSUPPORTED;
    if (point[0] < 1 || point[1] < 1) return MT_EINVAL;
    if (b->cuda)
        return mt_cuda_bench_attn(b->cuda, &s, point[0], point[1], param(sp, cfg, "partition", 0),
                                  param(sp, cfg, "num_warps", 0), param(sp, cfg, "mma", 0), param(sp, cfg, "stage", 0),
                                  param(sp, cfg, "query_split", 1), seed, pol, res);
    if (!b->cpu) return MT_EINVAL;
    mt_attn_cpu_params p = {param(sp, cfg, "partition", -1), param(sp, cfg, "pages_per_iter", 0),
                            param(sp, cfg, "threads", 0)};
    return mt_cpu_bench_attn(b->cpu, &s, point[0], point[1], &p, seed, pol, res);
}

/* the KV cache of the batch read once at the copy bandwidth: K and V of
 * every token of every sequence (the query and output are small) */
static double floor_us(const mt_family_key *k, const int64_t *point, double bw, double peak, int64_t hit)
{
    int dtype;
    (void)peak, (void)hit;
    if (bw <= 0 || mt_dtype_parse(k->dtype, &dtype) != MT_OK) return NAN;
    double bytes = (double)point[0] * (double)point[1] * (double)k->v[MT_ATTN_KEY_HKV] * (double)k->v[MT_ATTN_KEY_D] * 2.0 *
                   (double)mt_dtype_size(dtype);
    return bytes / (bw * 1e9) * 1e6;
}

/* grouped-query, multi-head and multi-query attention; a context shorter
 * than a page, one that ends inside a page, and one of many partitions */
static const mt_family_check checks[] = {
    {"{\"H\":8,\"H_kv\":2,\"D\":64,\"page\":16}", {3, 7}},
    {"{\"H\":4,\"H_kv\":4,\"D\":64,\"page\":16}", {2, 300}},
    {"{\"H\":8,\"H_kv\":1,\"D\":128,\"page\":16}", {1, 2100}},
};

/* moetune sweep --kernel attention's options */
static const mt_family_option options[] = {
    {"heads", MT_ATTN_KEY_H, -1, NULL, "query heads (a multiple of --kv-heads)"},
    {"kv-heads", MT_ATTN_KEY_HKV, -1, NULL, "KV heads"},
    {"head-dim", MT_ATTN_KEY_D, -1, NULL, "head dimension"},
    {"page-size", MT_ATTN_KEY_PAGE, -1, "16", "tokens per KV-cache page"},
    {"batch-sizes", -1, 0, "1,8,32", "sequences in the batch"},
    {"contexts", -1, 1, "512,2048", "context lengths"},
};

/* every variant of the longest context's partitions, for each dtype's
 * binary (NVRTC, about a second each) */
static int precompile(const mt_family_precompile *pc, struct mt_precompile_stats *st, char *err, size_t n)
{
    const mt_family_key *k = pc->key;
    int64_t max_ctx = 0;
    for (int i = 0; i < pc->npoints; i++) max_ctx = pc->points[i][1] > max_ctx ? pc->points[i][1] : max_ctx;
    return mt_precompile_cuda_attn(pc->arch, pc->smem_limit, (int)k->v[MT_ATTN_KEY_D], (int)k->v[MT_ATTN_KEY_PAGE],
                                   (int)(k->v[MT_ATTN_KEY_H] / k->v[MT_ATTN_KEY_HKV]), (int)max_ctx,
                                   !strcmp(k->dtype, "fp16") ? 2 : 1, pc->jobs, pc->cache_dir, NULL, NULL, st, err, n);
}

const mt_family_tuning mt_tuning_attn_decode = {
    .family = &mt_family_attn_decode,
    .cli_name = "attention",
    .noptions = (int)(sizeof options / sizeof options[0]),
    .options = options,
    .policy_suffix = "-attn",
    .precompile = precompile,
    .space = space,
    .space_ctx = space_ctx,
    .dtypes = dtypes,
    .measure = measure,
    .floor_us = floor_us,
    .nchecks = (int)(sizeof checks / sizeof checks[0]),
    .checks = checks,
};
