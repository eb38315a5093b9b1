/* The fused-MoE family's CUDA (and HIP) kernels behind the backend table:
 * kernels/cuda/moe_launch.h's build, workspace, enqueue and release. */
#include "family_backend.h"
#include "moe_launch.h"

static int build(struct mt_cuda *c, const void *cfg, const char *cache_dir, void *variant, char *why, size_t n)
{
    const mt_cuda_moe_variant_cfg *v = cfg;
    return mt_cuda_moe_build(c, &v->cfg, v->fp16, v->fp8, cache_dir, variant, why, n);
}

static void release(struct mt_cuda *c, void *variant) { mt_cuda_moe_release(c, variant); }

static size_t workspace(const void *variant, const void *args)
{
    const mt_cuda_moe_args *a = args;
    return mt_cuda_moe_workspace(variant, a->chunk, a->E, a->N, a->K, a->topk);
}

static int enqueue(struct mt_cuda *c, const void *variant, const void *args, void *stream)
{
    return mt_cuda_moe_enqueue(c, variant, args, stream);
}

const mt_family_backend mt_backend_fused_moe_cuda = {
    &mt_family_fused_moe, "cuda", sizeof(mt_cuda_moe_variant_cfg), sizeof(mt_cuda_moe), build, release, workspace, enqueue,
};
