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
 * token's row and a warp takes TPW tokens per step. LPT is a power of two;
 * where HEAD_DIM / 8 is not, the last lanes idle. */
#define VEC 8
#define LPT mt_pow2ceil(HEAD_DIM / VEC)
#define TPW (WS / LPT)
/* rows loaded before any is used: UNR loads in flight per lane instead of
 * one dependent HBM round trip per step (the first H100 run was latency-
 * bound at small batches) */
#define UNR 4
/* the score pass reduces HS heads' dot products at once (a power of two,
 * at most LPT): the multi-value butterfly costs HS - 1 + log2(LPT / HS)
 * shuffles per token step instead of HS * log2(LPT). The value pass keeps
 * HC heads' sums in registers (HC x VEC). */
__host__ __device__ constexpr int mt_imin(int a, int b) { return a < b ? a : b; }
#define HS mt_imin(mt_imin(mt_pow2ceil(GROUP), 8), LPT)
#define HC mt_imin(GROUP, 8)
#define NPG (PARTITION / PAGE_SIZE)

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

/* The UNR rows (from base, a head's dims of this lane) of the tokens this
 * lane takes next, all loads issued before any is used; zeros past the
 * partition's end and where the lane has no dims. */
MT_DEVICE void load_rows(const h16 *__restrict__ base, const int *pg, int tb, int t0, int t1, int slot, bool dl,
                         long kvs, float (&r)[UNR][VEC])
{
#pragma unroll
    for (int u = 0; u < UNR; u++) {
        const int t = tb + u * NUM_WARPS * TPW + slot;
        if (t < t1 && dl) {
            load8(base + ((long)pg[(t - t0) / PAGE_SIZE] * PAGE_SIZE + t % PAGE_SIZE) * kvs, r[u]);
        } else {
#pragma unroll
            for (int i = 0; i < VEC; i++) r[u][i] = 0;
        }
    }
}

/* One step of the multi-value butterfly over lanes o apart: the lane whose
 * bit o is set keeps the upper HALF of its values and sends the lower, the
 * other the reverse, so each lane ends with HALF sums of two lanes. */
template <int HALF> MT_DEVICE void mt_bfly(float *d, int lane, int o)
{
    const bool up = (lane & o) != 0;
#pragma unroll
    for (int i = 0; i < HALF; i++) {
        float send = up ? d[i] : d[i + HALF], keep = up ? d[i + HALF] : d[i];
        d[i] = keep + mt_shfl_xor(send, o);
    }
}

/* Dynamic shared memory (mt_cuda_attn_smem): q (float) [GROUP][HEAD_DIM],
 * later the value pass's sums; the scores [GROUP][PARTITION]; max and sum
 * [GROUP] each; the partition's page numbers [NPG] (read once, so a row's
 * address needs no global load of the block table).
 * With one partition per sequence (max_parts == 1) the block writes the
 * normalised output itself and the host skips the merge kernel. */
MT_KERNEL void __launch_bounds__(THREADS) attn_partial(const h16 *__restrict__ q, const h16 *__restrict__ kc,
                                                        const h16 *__restrict__ vc, const int *__restrict__ block_table,
                                                        const int *__restrict__ context_lens, int max_pages, int Hkv,
                                                        float scale, float *__restrict__ part, int max_parts,
                                                        h16 *__restrict__ out1)
{
    extern __shared__ __align__(16) float sm[];
    float *qs = sm, *sc = sm + GROUP * HEAD_DIM, *mx = sc + GROUP * PARTITION, *sum = mx + GROUP;
    int *pg = (int *)(sum + GROUP);
    const int p = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x / WS, lane = threadIdx.x % WS;
    const int slot = lane / LPT, d0 = (lane % LPT) * VEC; /* this lane's token of the step, and its dims */
    const bool dl = d0 < HEAD_DIM;
    const int ctx = context_lens[b], t0 = p * PARTITION;
    if (t0 >= ctx) return; /* the reduction reads only partitions inside the context */
    const int t1 = t0 + PARTITION < ctx ? t0 + PARTITION : ctx;
    const int H = Hkv * GROUP;
    const int *bt = block_table + (long)b * max_pages + t0 / PAGE_SIZE;
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS)
        qs[i] = h2f(q[((long)b * H + g * GROUP + i / HEAD_DIM) * HEAD_DIM + i % HEAD_DIM]) * scale;
    for (int i = threadIdx.x; i < NPG && t0 + i * PAGE_SIZE < t1; i += THREADS) pg[i] = bt[i];
    __syncthreads();

    /* scores: warp w takes tokens t0 + (w + NUM_WARPS * j) * TPW + slot */
    const long kvs = (long)Hkv * HEAD_DIM; /* elements from one token's row to the next */
    const h16 *kg = kc + (long)g * HEAD_DIM + (dl ? d0 : 0), *vg = vc + (long)g * HEAD_DIM + (dl ? d0 : 0);
    for (int h0 = 0; h0 < GROUP; h0 += HS) {
        float qr[HS][VEC];
#pragma unroll
        for (int j = 0; j < HS * VEC; j++) {
            const int h = j / VEC, i = j % VEC;
            qr[h][i] = h0 + h < GROUP && dl ? qs[(h0 + h) * HEAD_DIM + d0 + i] : 0.f;
        }
        for (int tb = t0 + warp * TPW; tb < t1; tb += NUM_WARPS * TPW * UNR) {
            float kv[UNR][VEC];
            load_rows(kg, pg, tb, t0, t1, slot, dl, kvs, kv);
#pragma unroll
            for (int u = 0; u < UNR; u++) {
                const int t = tb + u * NUM_WARPS * TPW + slot;
                float d[HS];
#pragma unroll
                for (int h = 0; h < HS; h++) {
                    d[h] = 0;
#pragma unroll
                    for (int i = 0; i < VEC; i++) d[h] += qr[h][i] * kv[u][i];
                }
                /* halve the values per lane at each step (HS <= 8: three
                 * steps at most, written out so that every loop with a
                 * shuffle has a constant trip count, which hipcc needs) */
                mt_bfly<HS / 2>(d, lane, LPT / 2);
                mt_bfly<HS / 4>(d, lane, LPT / 4);
                mt_bfly<HS / 8>(d, lane, LPT / 8);
                MT_UNROLL_SHFL
                for (int k = mt_log2(HS); k < mt_log2(LPT); k++) d[0] += mt_shfl_xor(d[0], LPT >> (k + 1));
                /* lane (l % LPT) now holds head h0 + (l % LPT) / (LPT / HS) */
                const int hh = h0 + (lane % LPT) / (LPT / HS);
                if (t < t1 && lane % (LPT / HS) == 0 && hh < GROUP) sc[hh * PARTITION + (t - t0)] = d[0];
            }
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
        for (int tb = t0 + warp * TPW; tb < t1; tb += NUM_WARPS * TPW * UNR) {
            float vv[UNR][VEC];
            load_rows(vg, pg, tb, t0, t1, slot, dl, kvs, vv);
#pragma unroll
            for (int u = 0; u < UNR; u++) {
                const int t = tb + u * NUM_WARPS * TPW + slot;
                if (t >= t1) continue;
#pragma unroll
                for (int h = 0; h < HC; h++) {
                    const float w = h0 + h < GROUP ? sc[(h0 + h) * PARTITION + (t - t0)] : 0.f;
#pragma unroll
                    for (int i = 0; i < VEC; i++) acc[h][i] += w * vv[u][i];
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

    if (max_parts == 1) {
        for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS)
            out1[((long)b * H + g * GROUP) * HEAD_DIM + i] = f2h(qs[i] / sum[i / HEAD_DIM]);
        return;
    }
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
