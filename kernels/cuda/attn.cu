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

#include "tile.h" /* h2f, f2h, and portable.h's MT_WARP_SIZE */

__host__ __device__ constexpr int mt_pow2ceil(int x) { return x <= 1 ? 1 : 2 * mt_pow2ceil((x + 1) / 2); }
__host__ __device__ constexpr int mt_log2(int x) { return x <= 1 ? 0 : 1 + mt_log2(x / 2); }

#define WS MT_WARP_SIZE
#define THREADS (NUM_WARPS * WS)
/* A K or V row is read 8 elements (16 bytes) per lane: LPT lanes hold one
 * token's row and a warp takes TPW tokens per step, so a dot product needs
 * log2(LPT) shuffles shared by TPW tokens instead of log2(32) per token.
 * LPT is a power of two; where HEAD_DIM / 8 is not, the last lanes idle. */
#define VEC 8
#define LPT mt_pow2ceil(HEAD_DIM / VEC)
#define TPW (WS / LPT)
/* the value pass keeps HC heads' accumulators in registers (HC x VEC) */
#define HC (GROUP < 8 ? GROUP : 8)

static_assert(HEAD_DIM % VEC == 0 && LPT <= WS, "head_dim is a multiple of 8, at most 8 x the warp size");
static_assert(PARTITION % PAGE_SIZE == 0, "a partition is whole pages");

/* 8 consecutive elements, one 16-byte load (rows are 16-byte aligned:
 * HEAD_DIM is a multiple of 8 and the caches are allocation-aligned) */
MT_DEVICE void load8(const h16 *__restrict__ p, float *f)
{
    uint4 u = *(const uint4 *)p;
    u32 w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = h2f((h16)(w[i] & 0xffffu));
        f[2 * i + 1] = h2f((h16)(w[i] >> 16));
    }
}

/* Dynamic shared memory: q (float) [GROUP][HEAD_DIM], later the value
 * pass's sums, then the scores [GROUP][PARTITION], then max and sum
 * [GROUP] each */
MT_KERNEL void __launch_bounds__(THREADS) attn_partial(const h16 *__restrict__ q, const h16 *__restrict__ kc,
                                                        const h16 *__restrict__ vc, const int *__restrict__ block_table,
                                                        const int *__restrict__ context_lens, int max_pages, int Hkv,
                                                        float scale, float *__restrict__ part, int max_parts)
{
    extern __shared__ __align__(16) float sm[];
    float *qs = sm, *sc = sm + GROUP * HEAD_DIM, *mx = sc + GROUP * PARTITION, *sum = mx + GROUP;
    const int p = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x / WS, lane = threadIdx.x % WS;
    const int slot = lane / LPT, d0 = (lane % LPT) * VEC; /* this lane's token of the step, and its dims */
    const bool dl = d0 < HEAD_DIM;
    const int ctx = context_lens[b], t0 = p * PARTITION;
    if (t0 >= ctx) return; /* the reduction reads only partitions inside the context */
    const int t1 = t0 + PARTITION < ctx ? t0 + PARTITION : ctx;
    const int H = Hkv * GROUP;
    const int *bt = block_table + (long)b * max_pages;
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS)
        qs[i] = h2f(q[((long)b * H + g * GROUP + i / HEAD_DIM) * HEAD_DIM + i % HEAD_DIM]) * scale;
    __syncthreads();

    /* scores: warp w takes tokens t0 + (w + NUM_WARPS * j) * TPW + slot
     * (not unrolled: the loop holds shuffles, which hipcc will not unroll
     * at a run-time trip count) */
    for (int tb = t0 + warp * TPW; tb < t1; tb += NUM_WARPS * TPW) {
        const int t = tb + slot;
        const bool live = t < t1 && dl;
        float kv[VEC];
        if (live) {
            long page = bt[t / PAGE_SIZE];
            load8(kc + ((page * PAGE_SIZE + t % PAGE_SIZE) * Hkv + g) * (long)HEAD_DIM + d0, kv);
        } else {
#pragma unroll
            for (int i = 0; i < VEC; i++) kv[i] = 0;
        }
#pragma unroll
        for (int h = 0; h < GROUP; h++) {
            const float *qh = qs + h * HEAD_DIM + (dl ? d0 : 0);
            float d = 0;
#pragma unroll
            for (int i = 0; i < VEC; i++) d += qh[i] * kv[i]; /* kv is 0 where the lane has no dims */
            MT_UNROLL_SHFL
            for (int k = 0; k < mt_log2(LPT); k++) d += mt_shfl_xor(d, LPT >> (k + 1));
            if (live && lane % LPT == 0) sc[h * PARTITION + (t - t0)] = d;
        }
    }
    __syncthreads();

    /* per head: the maximum, then exp(score - max) in place and its sum;
     * q is done with, its space takes the value pass's sums */
    const int n = t1 - t0;
    for (int h = warp; h < GROUP; h += NUM_WARPS) {
        float m = -3.0e38f;
        for (int i = lane; i < n; i += WS) m = fmaxf(m, sc[h * PARTITION + i]);
        for (int o = WS / 2; o; o >>= 1) m = fmaxf(m, mt_shfl_xor(m, o));
        float s = 0;
        for (int i = lane; i < n; i += WS) {
            float e = expf(sc[h * PARTITION + i] - m);
            sc[h * PARTITION + i] = e;
            s += e;
        }
        for (int o = WS / 2; o; o >>= 1) s += mt_shfl_xor(s, o);
        if (lane == 0) {
            mx[h] = m;
            sum[h] = s;
        }
    }
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS) qs[i] = 0;
    __syncthreads();

    /* the values, in the scores' token order: each lane sums p * V over its
     * tokens for HC heads at a time, the step's TPW tokens are combined by
     * shuffles and the warps through shared atomics */
    for (int h0 = 0; h0 < GROUP; h0 += HC) {
        float acc[HC][VEC];
#pragma unroll
        for (int h = 0; h < HC; h++)
#pragma unroll
            for (int i = 0; i < VEC; i++) acc[h][i] = 0;
#pragma unroll 2
        for (int tb = t0 + warp * TPW; tb < t1; tb += NUM_WARPS * TPW) {
            const int t = tb + slot;
            if (t < t1 && dl) {
                long page = bt[t / PAGE_SIZE];
                float vv[VEC];
                load8(vc + ((page * PAGE_SIZE + t % PAGE_SIZE) * Hkv + g) * (long)HEAD_DIM + d0, vv);
#pragma unroll
                for (int h = 0; h < HC; h++) {
                    const float w = h0 + h < GROUP ? sc[(h0 + h) * PARTITION + (t - t0)] : 0.f;
#pragma unroll
                    for (int i = 0; i < VEC; i++) acc[h][i] += w * vv[i];
                }
            }
        }
#pragma unroll
        for (int h = 0; h < HC; h++)
#pragma unroll
            for (int i = 0; i < VEC; i++) {
                float a = acc[h][i];
                MT_UNROLL_SHFL
                for (int k = mt_log2(LPT); k < mt_log2(WS); k++) a += mt_shfl_xor(a, 1 << k);
                if (slot == 0 && dl && h0 + h < GROUP) atomicAdd(&qs[(h0 + h) * HEAD_DIM + d0 + i], a);
            }
    }
    __syncthreads();

    float *out = part + (((long)b * H + g * GROUP) * max_parts + p) * (HEAD_DIM + 2);
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS) {
        int h = i / HEAD_DIM, d = i % HEAD_DIM;
        float *o = out + (long)h * max_parts * (HEAD_DIM + 2);
        o[2 + d] = qs[i];
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
