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
 * With MT_DTYPE_FP8_W8A8, x is bf16 and w1, w2 are e4m3 bytes with float
 * scales in the scheme's layouts (moetune.h, mt_quant); the activations and
 * the intermediate are quantised inside, as the scheme says.
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
    int dtype;       /* MT_DTYPE_BF16, MT_DTYPE_FP32 or MT_DTYPE_FP8_W8A8 on the CPU */
    int renormalize; /* renormalise the top-k weights to sum to 1 */
    /* MT_DTYPE_FP8_W8A8: the scheme (enum mt_quant_scheme) and, for
     * MT_QUANT_BLOCK, the weight block (activation groups are 1 x block_k) */
    int scheme;
    int64_t block_n, block_k;
} mt_moe_shape;

/* The scales of an fp8 problem, host memory, layouts as mt_quant's. a1 and
 * a2 are static per-tensor scales (MT_QUANT_TENSOR) or NULL for dynamic. */
typedef struct mt_moe_scales {
    const float *w1, *w2, *a1, *a2;
} mt_moe_scales;

/* ---- fp8 ---- */

/* MT_OK for a well-formed fp8 shape (scheme known, a block of 1..4096 for
 * MT_QUANT_BLOCK and none otherwise), or any other dtype; MT_EINVAL with
 * why (may be NULL) otherwise. */
int mt_moe_quant_check(const mt_moe_shape *s, char *why, size_t why_len);
/* The shape's dtype and scheme from a problem's dtype as the database and
 * files spell it: bf16, fp16, fp32; fp8_w8a8 (per tensor, or in
 * block_n x block_k blocks when they are given); fp8_w8a8_per_channel.
 * MT_EPARSE for another name, MT_EINVAL for a block with another dtype. */
int mt_moe_shape_set_dtype(mt_moe_shape *s, const char *dtype, int64_t block_n, int64_t block_k);
/* The floats of w1's (which 1) or w2's (which 2) scales for the shape. */
int64_t mt_moe_weight_scales(const mt_moe_shape *s, int which);
/* Quantise float weights w1f [E, 2N, K] and w2f [E, K, N] into e4m3 q1, q2
 * and their scales s1, s2 (mt_moe_weight_scales floats each), as an fp8
 * checkpoint stores them. */
int mt_moe_quantize_weights(const mt_moe_shape *s, const float *w1f, const float *w2f, uint8_t *q1, uint8_t *q2,
                            float *s1, float *s2);

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
/* The fp8 oracle: the activations quantised exactly as the kernels do
 * (common/fp8.c's rounding, the scheme's scales over these M tokens), the
 * intermediate rounded to bf16 and quantised the same way, and everything
 * else in double on the dequantised values. act_amax (may be NULL) gets the
 * largest |intermediate| before quantisation, from which a static a2 scale
 * is calibrated; out may be NULL to get only that. */
int mt_moe_reference_fp8(const mt_moe_shape *s, int64_t M, const uint16_t *x, const uint8_t *w1, const uint8_t *w2,
                         const mt_moe_scales *sc, const int32_t *topk_ids, const float *topk_w, double *out,
                         float *act_amax);

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
/* The same for any dtype: sc holds an fp8 problem's scales (NULL for the
 * others). The activations' quantisation runs inside, on the pool. */
int mt_moe_cpu_forward_q(mt_pool *pool, const mt_moe_shape *s, const mt_cpu_params *p, int64_t M, const void *x,
                         const void *w1, const void *w2, const mt_moe_scales *sc, const int32_t *topk_ids,
                         const float *topk_w, void *workspace, float *out);

/* The fp32 multiply-add rate of `threads` threads, compiled with the same
 * flags as the kernel so that the roofline's ceiling is one the kernel
 * could reach. GFLOP/s. */
double mt_cpu_peak_gflops(mt_pool *pool, int threads);

#endif
