/*
 * The CPU backend of the fused-MoE kernel, and the reference oracle that
 * every backend (the GPU ones included) is checked against.
 *
 * Layouts, as vLLM's fused_moe uses them:
 *   x        [M, K]         activations
 *   w1       [E, 2N, K]     gate rows 0..N-1, then up rows N..2N-1
 *   w2       [E, K, N]
 *   topk_ids [M, topk]      int32 expert per (token, slot)
 *   topk_w   [M, topk]      float routing weight per (token, slot)
 *   out      [M, K]         float
 * x, w1 and w2 are bf16 (uint16 bit patterns) or fp32, as shape.dtype says.
 */
#ifndef MT_MOE_CPU_H
#define MT_MOE_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h" /* bf16, the RNG, the error measure */
#include "moetune/moetune.h"
#include "pool.h"

typedef struct mt_moe_shape {
    int64_t E, N, K, topk;
    int dtype;       /* MT_DTYPE_BF16 or MT_DTYPE_FP32 on the CPU */
    int renormalize; /* renormalise the top-k weights to sum to 1 */
} mt_moe_shape;

/* The CPU kernel's tunables. They change speed, never results beyond
 * float rounding order. */
typedef struct mt_cpu_params {
    int block_m; /* (token, expert) pairs per tile; the alignment block */
    int block_n; /* output columns per tile */
    int block_k; /* reduction depth per step: the weight tile held in cache */
    int threads; /* worker threads used */
} mt_cpu_params;

/* ---- routing and alignment ---- */

/* Softmax over each row of logits [M, E], the topk largest (ties to the
 * lower expert id), optionally renormalised. */
int mt_moe_route(const float *logits, int64_t M, int64_t E, int64_t topk, int renormalize,
                 int32_t *topk_ids, float *topk_w);

/* Capacity that mt_moe_align needs for sorted_ids. */
static inline int64_t mt_moe_align_capacity(int64_t M, int64_t topk, int64_t E, int block_m)
{
    return M * topk + E * (block_m - 1);
}
/* Sort the M*topk (token, slot) pairs by expert, each expert's run padded
 * to a multiple of block_m with the sentinel M*topk. Writes sorted_ids
 * (capacity above), expert_ids per block (capacity/block_m), and
 * tokens_per_expert[E] (pairs routed to each expert, before padding).
 * *n_sorted gets the padded length. Pairs keep their original order within
 * an expert, so the result is deterministic. */
int mt_moe_align(const int32_t *topk_ids, int64_t M, int64_t topk, int64_t E, int block_m,
                 int32_t *sorted_ids, int32_t *expert_ids, int32_t *tokens_per_expert,
                 int64_t *n_sorted);

/* ---- the oracle ---- */

/* Plain fused MoE accumulating in double. out is [M, K] doubles. */
int mt_moe_reference(const mt_moe_shape *s, int64_t M, const void *x, const void *w1, const void *w2,
                     const int32_t *topk_ids, const float *topk_w, double *out);

/* ---- the tuned CPU kernel ---- */

/* Workspace bytes mt_moe_cpu_forward needs for M tokens: known before the
 * call, so memory use is bounded and predictable. */
size_t mt_moe_cpu_workspace(const mt_moe_shape *s, const mt_cpu_params *p, int64_t M);

/* The largest useful tile sizes: a block_m past the padded pair count, or a
 * block_n/block_k past the widest dimension, only adds padding. */
int64_t mt_cpu_max_block_m(int64_t M, int64_t topk);
int64_t mt_cpu_max_block_nk(int64_t N, int64_t K);
/* The CPU backend's default config for M tokens: what runs when nothing
 * was tuned. */
void mt_cpu_params_default(int64_t N, int64_t K, int64_t topk, int64_t M, int threads, mt_cpu_params *out);

/* Check params against the shape and this pool; MT_OK or MT_EINVAL. */
int mt_cpu_params_check(const mt_moe_shape *s, const mt_cpu_params *p, int max_threads);

/* The whole pipeline: align, grouped GEMM with w1 and SiLU-and-mul, grouped
 * GEMM with w2 and routing weights, sum over top-k. */
int mt_moe_cpu_forward(mt_pool *pool, const mt_moe_shape *s, const mt_cpu_params *p, int64_t M,
                       const void *x, const void *w1, const void *w2, const int32_t *topk_ids,
                       const float *topk_w, void *workspace, float *out);

/* The fp32 multiply-add rate of `threads` threads, compiled with the same
 * flags as the kernel so that the roofline's ceiling is one the kernel
 * could reach. GFLOP/s. */
double mt_cpu_peak_gflops(mt_pool *pool, int threads);

#endif
