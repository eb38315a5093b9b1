/*
 * The tile primitives of tile_cuda.h for HIP (AMD GPUs), with the same
 * fragment layouts, so that the kernels of kernels/cuda compile unchanged with hipcc
 * and hipRTC. Kernels work in logical warps of 32 lanes (portable.h): on a
 * wave64 GPU two of them share a wavefront, and the shuffles below stay
 * inside a warp's 32 lanes.
 *
 * Status: compiled for gfx90a and newer in CI; never run on AMD hardware.
 * This first version favours an exact match of the CUDA semantics over
 * speed: cp.async becomes a plain 16-byte copy, ldmatrix a shuffle of row
 * addresses and 32-bit shared loads, and the m16n8k16 MMA a shuffle-and-FMA
 * loop over the same register fragments. MFMA (v_mfma_f32_16x16x16bf16_1k
 * and friends) replaces mma16816 here, and only here, once it can be
 * checked on a device.
 *
 * Kept free of system headers: hipRTC gets it in memory.
 */
#ifndef MT_GPU_TILE_HIP_H
#define MT_GPU_TILE_HIP_H

#include "portable.h"

#ifndef MT_FP16
#define MT_FP16 0
#endif

/* no warpgroup MMA here (a CUDA sm_90a instruction) */
#define MT_HAVE_WGMMA 0

MT_DEVICE float h2f(h16 h)
{
#if MT_FP16
    union { h16 u; _Float16 f; } v;
    v.u = h;
    return (float)v.f;
#else
    return __uint_as_float(((u32)h) << 16);
#endif
}

MT_DEVICE h16 f2h(float f)
{
#if MT_FP16
    union { h16 u; _Float16 f; } v;
    v.f = (_Float16)f;
    return v.u;
#else
    /* round to nearest even, as cvt.rn.bf16.f32; NaN stays a quiet NaN */
    u32 u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (h16)0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (h16)(u >> 16);
#endif
}

/* no programmatic dependent launch on HIP: kernels run in stream order */
MT_DEVICE void mt_grid_wait() {}
MT_DEVICE void mt_grid_dependents() {}
/* no L2 prefetch instruction is used on HIP: the loads fetch what they need */
MT_DEVICE void mt_prefetch_l2(const void *, unsigned) {}

/* 16 bytes global -> shared; pred false writes zeros (cp.async's zero
 * fill). Synchronous: commit and wait have nothing to order, and the
 * kernels' __syncthreads after a wait gives the visibility CUDA needs too. */
MT_DEVICE void cp_async16(mt_sptr smem, const void *gmem, bool pred)
{
    uint4 v = {0u, 0u, 0u, 0u};
    if (pred) v = *(const uint4 *)gmem;
    *(uint4 *)smem = v;
}
/* the L2 prefetch hints of the CUDA path: plain copies and loads here */
template <int PF> MT_DEVICE void cp_async16_pf(mt_sptr smem, const void *gmem, bool pred) { cp_async16(smem, gmem, pred); }
template <int PF> MT_DEVICE uint4 ldg16_pf(const void *gmem) { return *(const uint4 *)gmem; }
MT_DEVICE void cp_async_commit() {}
template <int N> MT_DEVICE void cp_async_wait() {}

MT_DEVICE u32 mt_lane32() { return __lane_id() & 31u; }

/* ldmatrix.xN (b16, not transposed): lane l gives the address of row l % 8
 * of matrix l / 8; r[j] of lane l is the word holding columns 2(l%4) and
 * 2(l%4)+1 of row l/4 of matrix j */
template <int N> MT_DEVICE void mt_ldmatrix(u32 *r, const void *p)
{
    const u32 l = mt_lane32();
    unsigned long long a = (unsigned long long)p;
#pragma unroll
    for (int j = 0; j < N; j++) {
        unsigned long long row = __shfl(a, (int)(j * 8 + l / 4), 32);
        r[j] = *(const u32 *)(row + 4 * (l % 4));
    }
}
MT_DEVICE void ldmatrix_x4(u32 *r, const void *p) { mt_ldmatrix<4>(r, p); }
/* x2: matrices 0 and 1, addresses from lanes 0..15 */
MT_DEVICE void ldmatrix_x2(u32 *r, const void *p) { mt_ldmatrix<2>(r, p); }

MT_DEVICE float mt_lo(u32 w) { return h2f((h16)(w & 0xffffu)); }
MT_DEVICE float mt_hi(u32 w) { return h2f((h16)(w >> 16)); }

/* c[16x8] += a[16x16] * b[16x8] with mma.sync.m16n8k16's fragments: lane l,
 * g = l/4, t = l%4 holds a = A[g][2t..], A[g+8][2t..], A[g][2t+8..],
 * A[g+8][2t+8..]; b = B[2t..][g], B[2t+8..][g]; c = C[g][2t], C[g][2t+1],
 * C[g+8][2t], C[g+8][2t+1]. Each lane gathers its rows of A and columns of
 * B from the four lanes that hold them. */
MT_DEVICE void mma16816(float *c, const u32 *a, const u32 *b)
{
    const int l = (int)mt_lane32(), g = l / 4, t = l % 4;
#pragma unroll
    for (int s = 0; s < 4; s++) {
        const int la = 4 * g + s, lb0 = 4 * (2 * t) + s, lb1 = 4 * (2 * t + 1) + s;
        u32 a0 = __shfl(a[0], la, 32), a1 = __shfl(a[1], la, 32), a2 = __shfl(a[2], la, 32),
            a3 = __shfl(a[3], la, 32);
        u32 b00 = __shfl(b[0], lb0, 32), b01 = __shfl(b[1], lb0, 32), b10 = __shfl(b[0], lb1, 32),
            b11 = __shfl(b[1], lb1, 32);
        /* k = 2s, 2s+1 (a0/a1 with b?0) and 2s+8, 2s+9 (a2/a3 with b?1) */
        c[0] += mt_lo(a0) * mt_lo(b00) + mt_hi(a0) * mt_hi(b00) + mt_lo(a2) * mt_lo(b01) + mt_hi(a2) * mt_hi(b01);
        c[1] += mt_lo(a0) * mt_lo(b10) + mt_hi(a0) * mt_hi(b10) + mt_lo(a2) * mt_lo(b11) + mt_hi(a2) * mt_hi(b11);
        c[2] += mt_lo(a1) * mt_lo(b00) + mt_hi(a1) * mt_hi(b00) + mt_lo(a3) * mt_lo(b01) + mt_hi(a3) * mt_hi(b01);
        c[3] += mt_lo(a1) * mt_lo(b10) + mt_hi(a1) * mt_hi(b10) + mt_lo(a3) * mt_lo(b11) + mt_hi(a3) * mt_hi(b11);
    }
}

#endif
