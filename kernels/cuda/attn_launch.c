/* Building and enqueuing the CUDA paged attention decode (attn_launch.h). */
#include "attn_launch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moetune/moetune.h"

/* The blocks per KV head (the space's query_split): each takes group / S
 * of the KV head's query heads, so that a batch of few blocks fills more
 * SMs without a merge (H100: 8/1/256 B = 1 ctx = 2048 11.06 -> 9.88 us
 * per layer with S = 4, SDPA 10.68; bench/results/2026-11-24-h100-attn,
 * session 12). 1 where S does not divide the group. */
static int attn_qsplit(const mt_cuda_attn_cfg *c)
{
    return c->qsplit > 1 && c->group % c->qsplit == 0 ? c->qsplit : 1;
}

unsigned mt_cuda_attn_smem(const mt_cuda_attn_cfg *full)
{
    mt_cuda_attn_cfg b = *full, *c = &b; /* a block's share of the group */
    b.group = full->group / attn_qsplit(full);
    /* attn.cu's layout: q [group][head_dim], scores [group][partition] (none
     * with the ring), max and sum [group], then the
     * partition's page numbers; from the next 16 bytes, staged: K and V
     * [partition][head_dim], the ring: [warps][stage][K, V][RING_TOKENS][head_dim] */
    size_t sc = c->stage >= 2 ? 0 : (size_t)c->group * (size_t)c->partition;
    size_t words = (size_t)(c->group * c->head_dim + 2 * c->group) + sc +
                   (size_t)(c->partition / (c->page_size > 0 ? c->page_size : 1));
    if (!c->stage) return (unsigned)(4 * words);
    size_t rows = c->stage >= 2 ? (size_t)c->warps * (size_t)c->stage * MT_CUDA_ATTN_RING_TOKENS : (size_t)c->partition;
    return (unsigned)(4 * ((words + 3) / 4 * 4) + 2 * 2 * rows * (size_t)c->head_dim);
}

int mt_cuda_attn_default(mt_cuda_attn_cfg *c, long long streams, long long ctx)
{
    if (c->head_dim % 64 || c->group > 16 || c->page_size < 1) return 0;
    long long want = streams >= 128 ? ctx : ctx * streams / MT_CUDA_ATTN_DEFAULT_BLOCKS, part = 64;
    while (part < want && part < 8192) part *= 2;
    part = (part + c->page_size - 1) / c->page_size * c->page_size; /* whole pages */
    c->partition = (int)part;
    c->warps = streams >= 128 ? 2 : 4;
    c->mma = 1;
    c->stage = 2;
    c->qsplit = 1;
    return 1;
}

int mt_cuda_attn_options(const mt_cuda_attn_cfg *c, char d[MT_CUDA_ATTN_NOPTS][48], const char *opts[MT_CUDA_ATTN_NOPTS])
{
    const int q = attn_qsplit(c);
    snprintf(d[0], 48, "-DHEAD_DIM=%d", c->head_dim);
    snprintf(d[1], 48, "-DPAGE_SIZE=%d", c->page_size);
    snprintf(d[2], 48, "-DGROUP=%d", c->group / q);
    snprintf(d[3], 48, "-DPARTITION=%d", c->partition);
    snprintf(d[4], 48, "-DNUM_WARPS=%d", c->warps);
    snprintf(d[5], 48, "-DMT_FP16=%d", c->fp16 ? 1 : 0);
    snprintf(d[6], 48, "-DATTN_MMA=%d", c->mma ? 1 : 0);
    snprintf(d[7], 48, "-DATTN_STAGE=%d", c->stage);
    snprintf(d[8], 48, "-DATTN_QSPLIT=%d", q);
    for (int i = 0; i < MT_CUDA_ATTN_NOPTS; i++) opts[i] = d[i];
    return MT_OK;
}

int mt_cuda_attn_build(mt_cuda *c, const mt_cuda_attn_cfg *cfg, const char *cache_dir, mt_cuda_attn *v, char *why,
                       size_t n)
{
    memset(v, 0, sizeof *v);
    v->cfg = *cfg;
    if (cfg->head_dim < 32 || cfg->head_dim > 256 || cfg->head_dim % 32 || cfg->page_size < 1 || cfg->group < 1 ||
        cfg->group > 64 || cfg->partition < cfg->page_size || cfg->partition % cfg->page_size || cfg->warps < 1 ||
        cfg->warps > 32) {
        snprintf(why, n, "head_dim %d (32..256 by 32), page %d, group %d, partition %d (whole pages), warps %d (1..32)",
                 cfg->head_dim, cfg->page_size, cfg->group, cfg->partition, cfg->warps);
        return MT_EINVAL;
    }
    if (cfg->stage < 0 || cfg->stage > 8 || (cfg->stage >= 2 && !cfg->mma)) {
        snprintf(why, n, "stage %d: 0 (none), 1 (the partition) or a ring of 2..8 chunks, which takes the tensor-core path",
                 cfg->stage);
        return MT_EINVAL;
    }
    if (cfg->mma && (cfg->head_dim % 64 || cfg->group > 16)) {
        snprintf(why, n, "the tensor-core path takes head_dim a multiple of 64 (not %d) and a group of at most 16 (not %d)",
                 cfg->head_dim, cfg->group);
        return MT_EINVAL;
    }
    v->qsplit = attn_qsplit(cfg);
    char d[MT_CUDA_ATTN_NOPTS][48], *log = NULL;
    const char *opts[MT_CUDA_ATTN_NOPTS];
    mt_cuda_attn_options(cfg, d, opts);
    int rc = mt_cuda_build(c, mt_cuda_attn_source(), opts, MT_CUDA_ATTN_NOPTS, cache_dir, &v->mod, &log);
    if (rc != MT_OK) {
        snprintf(why, n, "compile failed: %s%s%.160s", mt_cuda_errmsg(c), log ? ": " : "", log ? log : "");
        free(log);
        return rc;
    }
    if ((rc = mt_cuda_function(c, v->mod, "attn_partial", &v->partial, NULL)) != MT_OK ||
        (rc = mt_cuda_function(c, v->mod, "attn_reduce", &v->reduce, NULL)) != MT_OK) {
        snprintf(why, n, "%s", mt_cuda_errmsg(c));
        mt_cuda_attn_release(c, v);
        return rc;
    }
    v->smem = mt_cuda_attn_smem(cfg);
    if ((int)v->smem > mt_cuda_get_props(c)->smem_optin) {
        snprintf(why, n, "cannot launch: %u bytes of shared memory (limit %d)", v->smem, mt_cuda_get_props(c)->smem_optin);
        mt_cuda_attn_release(c, v);
        return MT_EUNSUPPORTED;
    }
    if ((rc = mt_cuda_set_smem(c, v->partial, (int)v->smem)) != MT_OK) {
        snprintf(why, n, "%s", mt_cuda_errmsg(c));
        mt_cuda_attn_release(c, v);
        return rc;
    }
    return MT_OK;
}

void mt_cuda_attn_release(mt_cuda *c, mt_cuda_attn *v)
{
    if (v->mod) mt_cuda_module_free(c, v->mod);
    memset(v, 0, sizeof *v);
}

static int parts(const mt_cuda_attn *v, int max_context) { return (max_context + v->cfg.partition - 1) / v->cfg.partition; }

size_t mt_cuda_attn_workspace(const mt_cuda_attn *v, int B, int num_heads, int max_context)
{
    return sizeof(float) * (size_t)B * (size_t)num_heads * (size_t)parts(v, max_context) * (size_t)(v->cfg.head_dim + 2);
}

int mt_cuda_attn_enqueue(mt_cuda *c, const mt_cuda_attn *v, const mt_cuda_attn_args *a, void *stream)
{
    if (a->num_heads != a->num_kv_heads * v->cfg.group || a->B < 1 || a->max_context < 1) return MT_EINVAL;
    int P = parts(v, a->max_context), Hkv = a->num_kv_heads, max_pages = a->max_pages;
    /* the grid's y and z dimensions (partitions, sequences) stop at 65535 */
    if (P > 65535 || a->B > 65535) return MT_EINVAL;
    float scale = a->scale > 0 ? a->scale : 1.0f / sqrtf((float)v->cfg.head_dim);
    void *ap[] = {(void *)&a->q, (void *)&a->k_cache, (void *)&a->v_cache, (void *)&a->block_table,
                  (void *)&a->context_lens, &max_pages, &Hkv, &scale, (void *)&a->workspace, &P, (void *)&a->out};
    void *ar[] = {(void *)&a->workspace, &P, (void *)&a->out};
    /* grid (KV heads, partitions, sequences) and (heads, sequences): the
     * launcher takes a 1-D grid, so the 3-D one goes through launch3 */
    unsigned g1[3] = {(unsigned)(Hkv * (v->qsplit > 1 ? v->qsplit : 1)), (unsigned)P, (unsigned)a->B},
             g2[3] = {(unsigned)a->num_heads, (unsigned)a->B, 1};
    /* (thread block clusters of neighbouring KV heads, which run at once and
     * read the same tokens' rows together, were measured 3 to 25 % slower
     * on the H100: bench/results/2026-11-24-h100-attn, call 25) */
    int rc = mt_cuda_launch3_on(c, stream, v->partial, g1, (unsigned)(v->cfg.warps * 32), v->smem, ap);
    /* one partition per sequence: attn_partial wrote the output itself */
    /* the merge may be placed while attn_partial's last blocks run (it
     * waits for their results itself) */
    if (rc == MT_OK && P > 1)
        rc = mt_cuda_launch3_dependent_on(c, stream, v->reduce, g2, MT_CUDA_ATTN_REDUCE_THREADS, 0, ar);
    return rc;
}
