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

/* 16 bytes global -> shared, bypassing L1; pred false zero-fills */
MT_DEVICE void cp_async16(void *smem, const void *gmem, bool pred)
{
    int n = pred ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(mt_cvta_shared(smem)), "l"(gmem), "r"(n));
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

#endif
