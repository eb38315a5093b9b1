/*
 * The one place where CUDA names meet HIP's. Kernel sources include this
 * first and use the MT_ names below; the HIP build (issue 10) compiles the
 * same sources with hipcc/hipRTC, where __HIPCC__ is defined.
 *
 * Kept free of system headers (but hipcc's own runtime header): NVRTC and
 * hipRTC get it in memory.
 */
#ifndef MT_GPU_PORTABLE_H
#define MT_GPU_PORTABLE_H

/* Kernels are written for warps of 32 lanes (the MMA fragments, the
 * reductions). On AMD's wave64 GPUs a wavefront holds two such warps: the
 * shuffles take a width of 32 so that each stays inside its own. */
#define MT_WARP_SIZE 32
#if defined(__HIPCC__) || defined(__HIP__)
#define MT_HIP 1
/* hipcc needs the runtime header for the CUDA-style names (hipRTC, which
 * defines __HIPCC_RTC__, has them built in) */
#if !defined(__HIPCC_RTC__)
#include <hip/hip_runtime.h>
#endif
/* HIP's shuffles take no mask: a wavefront runs converged here */
#define mt_shfl_down(v, o) __shfl_down((v), (o), 32)
#define mt_shfl_xor(v, m) __shfl_xor((v), (m), 32)
#define mt_shfl_up(v, o) __shfl_up((v), (o), 32)
/* hipcc (clang 15) refuses "#pragma unroll" on a loop of shuffles and
 * warns; it unrolls those short constant loops by itself */
#define MT_UNROLL_SHFL
/* a place in shared memory that kernels offset in bytes: a pointer here */
typedef char *mt_sptr;
#define mt_sptr_of(p) ((char *)(p))
/* a wavefront runs converged: what is left is to keep the compiler from
 * moving shared-memory accesses across the point */
#define mt_syncwarp() __builtin_amdgcn_wave_barrier()
#else
#define MT_HIP 0
#define mt_shfl_down(v, o) __shfl_down_sync(0xffffffffu, (v), (o))
#define mt_shfl_xor(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
#define mt_shfl_up(v, o) __shfl_up_sync(0xffffffffu, (v), (o))
#define MT_UNROLL_SHFL _Pragma("unroll")
#define mt_cvta_shared(p) ((unsigned)__cvta_generic_to_shared(p))
/* a place in shared memory that kernels offset in bytes: its 32-bit
 * shared-window address here, which PTX's shared-memory instructions take
 * directly (no conversion per access) */
typedef unsigned mt_sptr;
#define mt_sptr_of(p) mt_cvta_shared(p)
#define mt_syncwarp() __syncwarp()
#endif

#define MT_DEVICE __device__ __forceinline__
/* a by-value kernel parameter read in place (CUDA's grid constant; HIP
 * reads parameters in place anyway) */
#if MT_HIP
#define MT_GRID_CONSTANT
#else
#define MT_GRID_CONSTANT __grid_constant__
#endif
#define MT_KERNEL extern "C" __global__
/* ROCm's waves_per_eu, a tunable of vLLM's AMD files (MT_WAVES_PER_EU,
 * set per variant): the compiler keeps each wavefront's registers low
 * enough for that many wavefronts per execution unit, as Triton does with
 * the same key; 0 or unset: no hint. Nothing on NVIDIA GPUs. */
#if MT_HIP && defined(MT_WAVES_PER_EU) && MT_WAVES_PER_EU > 0
#define MT_WAVES_HINT __attribute__((amdgpu_waves_per_eu(MT_WAVES_PER_EU)))
#else
#define MT_WAVES_HINT
#endif

typedef unsigned short h16; /* a bf16 or fp16 bit pattern */
typedef unsigned int u32;

#endif
