/*
 * The tile primitives of the CUDA path: asynchronous copies to shared
 * memory, ldmatrix, and the m16n8k16 tensor-core MMA with fp32 accumulation.
 * A HIP path provides the same functions over MFMA (issue 10); kernels call
 * only these, so the instruction difference stays here.
 *
 * MT_FP16 selects fp16 (1) or bf16 (0) operands.
 */
#ifndef MT_GPU_TILE_CUDA_H
#define MT_GPU_TILE_CUDA_H

#include "portable.h"

#ifndef MT_FP16
#define MT_FP16 0
#endif

MT_DEVICE float h2f(h16 h)
{
#if MT_FP16
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#else
    return __uint_as_float(((u32)h) << 16);
#endif
}

MT_DEVICE h16 f2h(float f)
{
    h16 h;
#if MT_FP16
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
#else
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
#endif
    return h;
}

/* Programmatic dependent launch (sm_90 and later; no-ops before): a
 * kernel launched with mt_cuda_launch3_dependent_on may start while the
 * previous one still runs, and waits here before reading its results
 * (returns at once when it was launched the plain way). The previous
 * kernel lets it start once every one of its blocks has called
 * mt_grid_dependents or ended. */
MT_DEVICE void mt_grid_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
MT_DEVICE void mt_grid_dependents()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* bytes (a multiple of 16) from a 16-byte aligned address into the L2,
 * nothing waited for: one bulk prefetch on sm_90 and later, a line at a
 * time before */
MT_DEVICE void mt_prefetch_l2(const void *p, unsigned bytes)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#else
    for (unsigned o = 0; o < bytes; o += 128) asm volatile("prefetch.global.L2 [%0];" ::"l"((const char *)p + o));
#endif
}

/* 16 bytes global -> shared (a place of mt_sptr_of, worked out once by the
 * caller), bypassing L1; pred false zero-fills */
MT_DEVICE void cp_async16(mt_sptr saddr, const void *gmem, bool pred)
{
    int n = pred ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(gmem), "r"(n));
}
/* The same with the L2 told to fetch PF (128 or 256) bytes around the
 * address from DRAM at once, for streams of rows of PF bytes or more that
 * are read whole (the KV cache's rows): on the H100 the ring read 2 to 3 %
 * faster at B = 32 (bench/results/2026-11-24-h100-attn, session 10). Any
 * other PF: no hint. Through L1 (.ca, where cp_async16 bypasses it): 0.3
 * to 1.5 % faster again on the ring's rows (session 11, call 36), though
 * nothing in L1 is read twice; one bulk copy per row instead (a quarter of
 * the L2 requests) was 2 to 25 % slower (calls 34, 35). */
template <int PF> MT_DEVICE void cp_async16_pf(mt_sptr saddr, const void *gmem, bool pred)
{
    int n = pred ? 16 : 0;
    if (PF == 256)
        asm volatile("cp.async.ca.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(gmem), "r"(n));
    else if (PF == 128)
        asm volatile("cp.async.ca.shared.global.L2::128B [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(gmem), "r"(n));
    else
        cp_async16(saddr, gmem, pred);
}
/* 16 bytes of read-only global memory into registers, with cp_async16_pf's
 * hint */
template <int PF> MT_DEVICE uint4 ldg16_pf(const void *gmem)
{
    uint4 u;
    if (PF == 256)
        asm("ld.global.nc.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "l"(gmem));
    else if (PF == 128)
        asm("ld.global.nc.L2::128B.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "l"(gmem));
    else
        u = *(const uint4 *)gmem;
    return u;
}
MT_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> MT_DEVICE void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* A fragment of a 16x16 tile (rows of k-contiguous data) */
MT_DEVICE void ldmatrix_x4(u32 *r, const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(mt_cvta_shared(p)));
}
/* B fragment of an 8(n)x16(k) tile stored n-major */
MT_DEVICE void ldmatrix_x2(u32 *r, const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(mt_cvta_shared(p)));
}

/* c[16x8] += a[16x16] * b[16x8], fp32 accumulators */
MT_DEVICE void mma16816(float *c, const u32 *a, const u32 *b)
{
#if MT_FP16
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

/* ---- fp8 e4m3 (sm_89 and later) ---- */

/* c[16x8] += a[16x32] * b[32x8], e4m3 operands (4 to a register, k
 * contiguous), fp32 accumulators. The fragments are laid out as m16n8k16's
 * of 16-bit pairs, so ldmatrix loads them from rows of bytes as it loads
 * bf16. */
MT_DEVICE void mma16832_e4m3(float *c, const u32 *a, const u32 *b)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)c, (void)a, (void)b;
    __trap(); /* the host never builds fp8 below sm_89 */
#endif
}

/* Two floats to e4m3, rounded to nearest (ties to even) and saturated at
 * +-448 (NaN stays NaN): lo in the low byte. As common/fp8.c rounds. */
MT_DEVICE unsigned short f2e4m3x2(float lo, float hi)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    unsigned short r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
    return r;
#else
    (void)lo, (void)hi;
    __trap();
    return 0;
#endif
}

/* ---- Hopper (sm_90a): warpgroup MMA over shared-memory operands ----
 * Present only when compiling for sm_90a, where NVRTC and nvcc define
 * __CUDA_ARCH_FEAT_SM90_ALL; kernels test MT_HAVE_WGMMA. */
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MT_HAVE_WGMMA 1
#if MT_FP16
#define MT_WGMMA_AB ".f16.f16"
#else
#define MT_WGMMA_AB ".bf16.bf16"
#endif
#include "wgmma_cuda.h"

/* The descriptor of a K-major operand tile in the 128-byte swizzle: rows of
 * 64 elements (128 bytes), 8-row groups 1,024 bytes apart (the stride
 * dimension), the 16-byte chunk c of row r stored at chunk c ^ (r % 8). The
 * leading-dimension offset is unused in this layout (one swizzle atom spans
 * the instruction's 16 k). p must lie in a 1,024-byte aligned atom; moving
 * along k inside the atom is adding k * 2 bytes to p. saddr is p's
 * shared-window address. */
MT_DEVICE unsigned long long wgmma_desc(u32 saddr)
{
    return (((unsigned long long)saddr & 0x3ffff) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}
MT_DEVICE void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
MT_DEVICE void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> MT_DEVICE void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
/* cp.async writes shared memory through the generic proxy, wgmma reads it
 * through the async proxy: this orders the first before the second */
MT_DEVICE void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/* Pins accumulators in place around the asynchronous MMAs, so the compiler
 * neither reads them before the wait nor moves their initialisation past
 * the first MMA. */
MT_DEVICE void wgmma_pin(float &x) { asm volatile("" : "+f"(x)::"memory"); }
#else
#define MT_HAVE_WGMMA 0
#endif

#endif
