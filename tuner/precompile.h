/* Warming the CUDA kernel cache in parallel: NVRTC needs no GPU and one
 * compile takes about a second, so compiling every binary a sweep may need
 * with all cores, before the first measurement, turns the largest cost of a
 * GPU sweep into seconds. Compiles run in forked processes: each owns its
 * NVRTC state, and a compiler crash costs one binary, not the sweep. */
#ifndef MT_PRECOMPILE_H
#define MT_PRECOMPILE_H

#include <stddef.h>

typedef struct mt_precompile_stats {
    int binaries;  /* distinct binaries the space needs */
    int compiled;  /* compiled now */
    int cached;    /* found in the cache */
    int failed;    /* did not compile (the sweep records them as failed) */
    double seconds;
    char first_error[256];
} mt_precompile_stats;

/* The shared memory a block may opt in to on an architecture, for spaces
 * enumerated without the device (sm_80 163 KiB, sm_86/89/120 99 KiB, sm_90
 * and sm_100 227 KiB); 0 for an architecture we do not know. */
int mt_arch_smem_limit(const char *arch);

/* Compile, into cache_dir, every binary of the CUDA fused-MoE space valid
 * under smem_limit for arch (e.g. "sm_90a"), for bf16 (fp16_mask bit 0),
 * fp16 (bit 1), fp8 with per-tensor or per-channel scales (bit 2) and fp8
 * in 128x128 blocks (bit 3; fp8 only from sm_89), with `jobs` processes; `limit` > 0 compiles only the
 * first `limit` binaries. progress (may be NULL) is called as binaries
 * finish. MT_EUNSUPPORTED when NVRTC is not installed (err says so). */
int mt_precompile_cuda(const char *arch, int smem_limit, int fp16_mask, int jobs, int limit, const char *cache_dir,
                       void (*progress)(int done, int total, void *user), void *user, mt_precompile_stats *st,
                       char *err, size_t err_len);

/* The same for the CUDA attention decode space of one shape (head_dim,
 * page_size, group = heads / KV heads), every variant a sweep timing
 * contexts up to max_ctx may build; NVIDIA targets only (MT_EUNSUPPORTED
 * for an AMD one, MT_EINVAL for a shape the kernel does not take). */
int mt_precompile_cuda_attn(const char *arch, int smem_limit, int head_dim, int page_size, int group, int max_ctx,
                            int fp16_mask, int jobs, const char *cache_dir, void (*progress)(int done, int total, void *user),
                            void *user, mt_precompile_stats *st, char *err, size_t err_len);

/* The kernel cache of a backend ("cuda", "hip"): $XDG_CACHE_HOME/moetune/
 * BACKEND (or ~/.cache/moetune/BACKEND), created if missing; "" when there
 * is none (compiles are then only slower). */
void mt_kernel_cache_dir(const char *backend, char *out, size_t n);

#endif
