/* What the GPU vendors' host code shares (kernels/gpu/kcache.c): a kernel
 * source with its headers, and the on-disk cache of compiled kernels. The
 * CUDA (kernels/cuda) and HIP (kernels/hip) parts each include this, never
 * each other's headers the other way. */
#ifndef MT_KCACHE_H
#define MT_KCACHE_H

#include <stddef.h>

/* A kernel source and the headers it includes, given to NVRTC or hipRTC in memory. */
typedef struct mt_cuda_source {
    const char *name;
    const char *text;
    int nheaders;
    const char *const *headers;
    const char *const *header_names;
} mt_cuda_source;

/* The on-disk kernel cache, shared by NVRTC's cubins and hipRTC's code
 * objects (one key and file scheme, cuda_rt.c). */
/* A compiler with no GPU: NVRTC's mt_nvrtc_compile or hipRTC's
 * mt_hiprtc_compile. */
typedef int (*mt_compile_fn)(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts,
                             char **bin, size_t *len, char **log, char *err, size_t err_len);
/* Compile into cache_dir unless the key's entry is there (*hit says which);
 * MT_EIO when the entry cannot be written. */
int mt_kcache_fill(const char *kind, const mt_cuda_source *src, const char *arch, const char *compiler,
                   mt_compile_fn compile, const char *const *opts, int nopts, const char *cache_dir, int *hit, char **log,
                   char *err, size_t n);
/* The cached binary of a build, else compiled and cached (what a device's
 * build and mt_kcache_fill share): *bin is the caller's to free; path
 * (MT_KCACHE_PATH bytes) receives the cache file's name. */
#define MT_KCACHE_PATH 4200
int mt_kcache_get(const char *kind, const mt_cuda_source *src, const char *arch, const char *compiler,
                  mt_compile_fn compile, const char *const *opts, int nopts, const char *cache_dir, char **bin,
                  size_t *len, int *hit, char *path, char **log, char *err, size_t n);

#endif
