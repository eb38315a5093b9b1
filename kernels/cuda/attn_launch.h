/* One compiled variant of the CUDA paged attention decode and how to
 * enqueue it (kernels/cuda/attn.cu): shared by the bench and the runtime. */
#ifndef MT_ATTN_LAUNCH_H
#define MT_ATTN_LAUNCH_H

#include <stddef.h>

#include "cuda_rt.h"

/* The shape part is compiled in: head_dim (32..256, a multiple of 32),
 * page_size, group = num_heads / num_kv_heads. The tunables: partition
 * (tokens per block, a multiple of page_size), warps, mma: the tensor-core
 * path (head_dim a multiple of 64, group at most 16), and stage: 0 K and V
 * read into registers, 1 the partition's K and V copied to shared memory
 * before the passes, N >= 2 (with mma) one pass through a ring of N 16-token
 * chunks per warp in shared memory. */
typedef struct mt_cuda_attn_cfg {
    int head_dim, page_size, group, fp16;
    int partition, warps, mma, stage;
    int qsplit; /* blocks per KV head, each a share of its query heads (0 or 1: one) */
} mt_cuda_attn_cfg;

typedef struct mt_cuda_attn {
    mt_cuda_module *mod;
    mt_cufn partial, reduce;
    mt_cuda_attn_cfg cfg;
    unsigned smem;
    int qsplit; /* cfg.qsplit where it divides the group, else 1 */
} mt_cuda_attn;

#define MT_CUDA_ATTN_NOPTS 9
/* tokens per chunk of the ring variant (stage >= 2): attn.cu's RING_TOK */
#define MT_CUDA_ATTN_RING_TOKENS 16
/* the merge kernel's block: attn.cu's RED_WARPS warps */
#define MT_CUDA_ATTN_REDUCE_THREADS 256
/* The variant to run without a tuned config, for `streams` = batch x KV
 * heads over contexts up to ctx: the one-pass ring (mma, stage 2) with one
 * partition per sequence (the context rounded up to a power of two, at
 * most 8192) and 2 warps at 128 streams or more, else partitions of 64 to
 * 8192 tokens (whole pages) for about MT_CUDA_ATTN_DEFAULT_BLOCKS blocks
 * and 4 warps. c's head_dim, page_size and group are the caller's; 0 (c
 * untouched) where the ring cannot run (head_dim not a multiple of 64, or
 * a group over 16): the caller's FMA default then. On the H100's 50-row
 * tables this takes 1.10x the best variant's time in the geometric mean,
 * 1.56x at worst; two passes of FMA over 512 tokens took 4.0x and 22x
 * (bench/results/2026-11-24-h100-attn, session 14). */
int mt_cuda_attn_default(mt_cuda_attn_cfg *c, long long streams, long long ctx);
/* about 2 blocks per SM of an H100 (132 SMs) */
#define MT_CUDA_ATTN_DEFAULT_BLOCKS 264
int mt_cuda_attn_options(const mt_cuda_attn_cfg *c, char d[MT_CUDA_ATTN_NOPTS][48], const char *opts[MT_CUDA_ATTN_NOPTS]);
/* Dynamic shared memory of the partial kernel. */
unsigned mt_cuda_attn_smem(const mt_cuda_attn_cfg *c);
/* MT_EINVAL: a cfg the kernel cannot take; MT_EPARSE: it did not compile;
 * MT_EUNSUPPORTED: it cannot launch here (shared memory); why says which. */
int mt_cuda_attn_build(mt_cuda *c, const mt_cuda_attn_cfg *cfg, const char *cache_dir, mt_cuda_attn *v, char *why,
                       size_t n);
void mt_cuda_attn_release(mt_cuda *c, mt_cuda_attn *v);

typedef struct mt_cuda_attn_args {
    mt_dptr q, k_cache, v_cache, block_table, context_lens, out, workspace;
    int B, num_heads, num_kv_heads, max_pages, max_context;
    float scale; /* 0: 1/sqrt(head_dim) */
} mt_cuda_attn_args;

size_t mt_cuda_attn_workspace(const mt_cuda_attn *v, int B, int num_heads, int max_context);
int mt_cuda_attn_enqueue(mt_cuda *c, const mt_cuda_attn *v, const mt_cuda_attn_args *a, void *stream);

#endif
