/*
 * The HIP backend's host side (issue 10). libamdhip64 is loaded at run time,
 * as libcuda is, so that one moetune binary runs on machines with AMD,
 * NVIDIA or no GPU at all.
 *
 * Status: hipRTC compiles moetune's kernels (the same sources as CUDA, with
 * kernels/gpu/tile_hip.h) for gfx908, gfx90a and gfx940 without a GPU, and
 * CI checks it; AMD GPUs are discovered from the amdgpu driver's KFD
 * topology in sysfs. No measurement runs on an AMD GPU yet: none has ever
 * been available to us.
 */
#ifndef MT_HIP_RT_H
#define MT_HIP_RT_H

#include <stddef.h>

#include "kcache.h" /* mt_cuda_source: a kernel source and its headers; the kernel cache */

/* moetune's kernels as hipRTC gets them: kernels/cuda/{moe,attn}.cu with
 * portable.h, tile.h and tile_hip.h in memory */
const mt_cuda_source *mt_hip_moe_source(void);
const mt_cuda_source *mt_hip_attn_source(void);

/* MT_OK when libamdhip64 (with hipRTC) loads; else MT_EUNSUPPORTED and err
 * says what is missing and what to install. */
int mt_hiprtc_available(char *err, size_t err_len);

/* Compile with hipRTC alone, no GPU needed, for `arch` (e.g. "gfx90a"):
 * *code is a malloc'ed code object. MT_EPARSE with the compiler's log in
 * *log (malloc'ed) when the source does not compile. */
int mt_hiprtc_compile(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts, char **code,
                      size_t *len, char **log, char *err, size_t err_len);

/* "hiprtc=MAJOR.MINOR", the compiler part of a kernel cache key: a new
 * hipRTC never loads an old one's code objects. */
int mt_hiprtc_tag(char *tag, size_t n, char *err, size_t err_len);
/* Compile into cache_dir (files *.hsaco) unless the code object is there:
 * *hit says which. A sweep on an AMD GPU (mt_cuda_build on mt_hip_open's
 * handle) reads the same files. */
int mt_hiprtc_cache_fill(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts,
                         const char *cache_dir, int *hit, char **log, char *err, size_t err_len);

/* An AMD GPU as the amdgpu driver's KFD topology describes it. */
typedef struct mt_hip_kfd_gpu {
    int node;                 /* KFD node number */
    unsigned device_id;       /* PCI device id */
    char arch[16];            /* gfx target, e.g. gfx942 */
    int compute_units;
    unsigned long long memory_bytes;
    char market[96];          /* the board's product name, when the driver gives it */
    char vllm_name[96];       /* the name vLLM gives it in file names */
} mt_hip_kfd_gpu;

/* The AMD GPUs under root (NULL: the environment's MOETUNE_SYSFS_ROOT, which
 * end-to-end tests point at a made-up tree, else "/"; unit tests pass theirs):
 * root/sys/class/kfd/kfd/topology/nodes/N/properties (CPU nodes, with no
 * SIMDs, skipped), their memory banks, and the product name of the DRM
 * render node. Returns how many it filled (at most max), or 0 with the
 * reason in why. */
int mt_hip_kfd_gpus(const char *root, mt_hip_kfd_gpu *out, int max, char *why, size_t why_len);
/* AMD GPU `index` (hip:index) of that list; MT_ENODEV with why ("no AMD GPU
 * hip:N: the amdgpu driver lists M", or why there is none) otherwise. */
int mt_hip_kfd_gpu_at(int index, mt_hip_kfd_gpu *out, char *why, size_t why_len);

#endif
