/*
 * The one place where CUDA names meet HIP's. Kernel sources include this
 * first and use the MT_ names below; the HIP build (issue 10) compiles the
 * same sources with hipcc/hipRTC, where __HIPCC__ is defined.
 *
 * Kept free of system headers: NVRTC and hipRTC get it in memory.
 */
#ifndef MT_GPU_PORTABLE_H
#define MT_GPU_PORTABLE_H

#if defined(__HIPCC__)
#define MT_HIP 1
#define MT_WARP_SIZE 64
/* HIP's shuffles take no mask: a wavefront always runs converged here */
#define mt_shfl_down(v, o) __shfl_down((v), (o))
#define mt_shfl_xor(v, m) __shfl_xor((v), (m))
#define mt_cvta_shared(p) ((unsigned)(size_t)(p))
#else
#define MT_HIP 0
#define MT_WARP_SIZE 32
#define mt_shfl_down(v, o) __shfl_down_sync(0xffffffffu, (v), (o))
#define mt_shfl_xor(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
#define mt_cvta_shared(p) ((unsigned)__cvta_generic_to_shared(p))
#endif

#define MT_DEVICE __device__ __forceinline__
#define MT_KERNEL extern "C" __global__

typedef unsigned short h16; /* a bf16 or fp16 bit pattern */
typedef unsigned int u32;

#endif
