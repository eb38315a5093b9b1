/* The attention decode family's CUDA (and HIP) kernel behind the backend
 * table: kernels/cuda/attn_launch.h's build, workspace, enqueue and release. */
#include "attn_launch.h"
#include "family_backend.h"

static int build(struct mt_cuda *c, const void *cfg, const char *cache_dir, void *variant, char *why, size_t n)
{
    return mt_cuda_attn_build(c, cfg, cache_dir, variant, why, n);
}

static void release(struct mt_cuda *c, void *variant) { mt_cuda_attn_release(c, variant); }

static size_t workspace(const void *variant, const void *args)
{
    const mt_cuda_attn_args *a = args;
    return mt_cuda_attn_workspace(variant, a->B, a->num_heads, a->max_context);
}

static int enqueue(struct mt_cuda *c, const void *variant, const void *args, void *stream)
{
    return mt_cuda_attn_enqueue(c, variant, args, stream);
}

const mt_family_backend mt_backend_attn_decode_cuda = {
    &mt_family_attn_decode, "cuda", sizeof(mt_cuda_attn_cfg), sizeof(mt_cuda_attn), build, release, workspace, enqueue,
};
