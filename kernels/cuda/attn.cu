/*
 * Paged attention decode for CUDA, split-KV in the flash-decoding style:
 * one block per (partition of PARTITION tokens, KV head, sequence) computes
 * the scores of the GROUP query heads that share the KV head, their maximum
 * and sum of exponentials and the unnormalised output; a second kernel
 * merges a sequence's partitions by their log-sum-exp. Layouts as the CPU
 * kernel (kernels/cpu/attn.h): q [B, H, D], caches [pages, PAGE_SIZE, Hkv,
 * D], block_table [B, max_pages], context_lens [B], out [B, H, D].
 *
 * Compile-time: HEAD_DIM, PAGE_SIZE, GROUP (H / Hkv), PARTITION (a multiple
 * of PAGE_SIZE), NUM_WARPS, MT_FP16. Compiled by NVRTC at run time, and by
 * nvcc in CI with the defaults, like moe.cu.
 */
#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
#ifndef PAGE_SIZE
#define PAGE_SIZE 16
#endif
#ifndef GROUP
#define GROUP 4
#endif
#ifndef PARTITION
#define PARTITION 512
#endif
#ifndef NUM_WARPS
#define NUM_WARPS 4
#endif

#define THREADS (NUM_WARPS * 32)
#define DPL (HEAD_DIM / 32) /* elements of a K row per lane */

static_assert(HEAD_DIM % 32 == 0, "head_dim is a multiple of 32");
static_assert(PARTITION % PAGE_SIZE == 0, "a partition is whole pages");

#include "tile_cuda.h" /* h2f, f2h */

/* Dynamic shared memory: q (float) [GROUP][HEAD_DIM], then the scores
 * [GROUP][PARTITION], then max and sum [GROUP] each */
MT_KERNEL void __launch_bounds__(THREADS) attn_partial(const h16 *__restrict__ q, const h16 *__restrict__ kc,
                                                        const h16 *__restrict__ vc, const int *__restrict__ block_table,
                                                        const int *__restrict__ context_lens, int max_pages, int Hkv,
                                                        float scale, float *__restrict__ part, int max_parts)
{
    extern __shared__ float sm[];
    float *qs = sm, *sc = sm + GROUP * HEAD_DIM, *mx = sc + GROUP * PARTITION, *sum = mx + GROUP;
    const int p = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int ctx = context_lens[b], t0 = p * PARTITION;
    if (t0 >= ctx) return; /* the reduction reads only partitions inside the context */
    const int t1 = t0 + PARTITION < ctx ? t0 + PARTITION : ctx;
    const int H = Hkv * GROUP;
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS)
        qs[i] = h2f(q[((long)b * H + g * GROUP + i / HEAD_DIM) * HEAD_DIM + i % HEAD_DIM]) * scale;
    __syncthreads();

    /* scores: a warp per token, its K row spread over the lanes */
    for (int t = t0 + warp; t < t1; t += NUM_WARPS) {
        long page = block_table[(long)b * max_pages + t / PAGE_SIZE];
        const h16 *k = kc + ((page * PAGE_SIZE + t % PAGE_SIZE) * Hkv + g) * (long)HEAD_DIM;
        float kv[DPL];
#pragma unroll
        for (int i = 0; i < DPL; i++) kv[i] = h2f(k[lane + 32 * i]);
#pragma unroll
        for (int h = 0; h < GROUP; h++) {
            float d = 0;
#pragma unroll
            for (int i = 0; i < DPL; i++) d += qs[h * HEAD_DIM + lane + 32 * i] * kv[i];
            for (int o = 16; o; o >>= 1) d += mt_shfl_xor(d, o);
            if (lane == 0) sc[h * PARTITION + (t - t0)] = d;
        }
    }
    __syncthreads();

    /* per head: the maximum, then exp(score - max) in place and its sum */
    const int n = t1 - t0;
    for (int h = warp; h < GROUP; h += NUM_WARPS) {
        float m = -3.0e38f;
        for (int i = lane; i < n; i += 32) m = fmaxf(m, sc[h * PARTITION + i]);
        for (int o = 16; o; o >>= 1) m = fmaxf(m, mt_shfl_xor(m, o));
        float s = 0;
        for (int i = lane; i < n; i += 32) {
            float e = expf(sc[h * PARTITION + i] - m);
            sc[h * PARTITION + i] = e;
            s += e;
        }
        for (int o = 16; o; o >>= 1) s += mt_shfl_xor(s, o);
        if (lane == 0) {
            mx[h] = m;
            sum[h] = s;
        }
    }
    __syncthreads();

    /* the values: a thread per (head, dim), consecutive dims on consecutive
     * threads so that each token's V row is read coalesced */
    float *out = part + (((long)b * H + g * GROUP) * max_parts + p) * (HEAD_DIM + 2);
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS) {
        int h = i / HEAD_DIM, d = i % HEAD_DIM;
        float acc = 0;
        for (int t = t0; t < t1; t++) {
            long page = block_table[(long)b * max_pages + t / PAGE_SIZE];
            acc += sc[h * PARTITION + (t - t0)] * h2f(vc[((page * PAGE_SIZE + t % PAGE_SIZE) * Hkv + g) * (long)HEAD_DIM + d]);
        }
        float *o = out + (long)h * max_parts * (HEAD_DIM + 2);
        o[2 + d] = acc;
        if (d == 0) {
            o[0] = mx[h];
            o[1] = sum[h];
        }
    }
}

/* One block per (head, sequence), a thread per dim: the partitions merged
 * by their log-sum-exp. part [B, H, max_parts, 2 + HEAD_DIM]. */
MT_KERNEL void __launch_bounds__(HEAD_DIM) attn_reduce(const float *__restrict__ part,
                                                       const int *__restrict__ context_lens, int max_parts,
                                                       h16 *__restrict__ out)
{
    const int h = blockIdx.x, b = blockIdx.y, H = gridDim.x, d = threadIdx.x;
    const int np = (context_lens[b] + PARTITION - 1) / PARTITION;
    const float *r = part + ((long)b * H + h) * max_parts * (HEAD_DIM + 2);
    float m = -3.0e38f;
    for (int p = 0; p < np; p++) m = fmaxf(m, r[p * (HEAD_DIM + 2)]);
    float s = 0, acc = 0;
    for (int p = 0; p < np; p++) {
        float w = expf(r[p * (HEAD_DIM + 2)] - m);
        s += r[p * (HEAD_DIM + 2) + 1] * w;
        acc += r[p * (HEAD_DIM + 2) + 2 + d] * w;
    }
    out[((long)b * H + h) * HEAD_DIM + d] = f2h(acc / s);
}
