/*
 * The attention decode family's parameter spaces: the CPU kernel's and the
 * CUDA kernel's (kernels/cpu/attn.h, kernels/cuda/attn_launch.h), whose
 * shared-memory rule and default are the kernel's own.
 */
#include <stdio.h>
#include <string.h>

#include "attn_launch.h"
#include "family_space.h"

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
