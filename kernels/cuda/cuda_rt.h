/*
 * The CUDA backend's host side: the driver API and NVRTC, loaded at run
 * time (dlopen), so that one moetune binary runs on machines with and
 * without the NVIDIA driver and toolkit, and says "no CUDA device" cleanly.
 * Variants are compiled by NVRTC for the device's own architecture and
 * cached on disk, keyed by source, options, architecture and NVRTC version.
 */
#ifndef MT_CUDA_RT_H
#define MT_CUDA_RT_H

#include <stddef.h>
#include <stdint.h>

#include "kcache.h" /* mt_cuda_source, the kernel cache */

typedef struct mt_cuda mt_cuda;


/* moetune's fused-MoE kernels (kernels/cuda/moe.cu and kernels/gpu/). */
const mt_cuda_source *mt_cuda_moe_source(void);
/* The paged attention decode kernels (kernels/cuda/attn.cu). */
const mt_cuda_source *mt_cuda_attn_source(void);
typedef unsigned long long mt_dptr;
typedef struct mt_cuda_module mt_cuda_module;
typedef void *mt_cufn;
typedef void *mt_cugraph; /* an instantiated graph */

typedef struct mt_cuda_props {
    char name[128];   /* as the driver reports it */
    int cc_major, cc_minor;
    char arch[16];    /* sm_90a on Hopper: the arch-specific target */
    int sms;
    int64_t memory_bytes;
    int64_t l2_bytes;
    int smem_optin;   /* shared memory a block may opt in to */
    int driver_version;       /* e.g. 13000 */
    int nvrtc_major, nvrtc_minor;
    char vllm_name[96]; /* AMD GPUs: vLLM's name for file names (the KFD's PCI-id map); else empty */
} mt_cuda_props;

/* The compiler's resource report for one kernel. */
typedef struct mt_cuda_resources {
    int regs, local_bytes, static_smem, max_threads;
} mt_cuda_resources;

/* Open device `ordinal`: load the driver and NVRTC, retain the primary
 * context, create a stream. On failure err says what is missing ("no CUDA
 * device: ..."). */
int mt_cuda_open(mt_cuda **out, int ordinal, char *err, size_t err_len);
void mt_cuda_close(mt_cuda *c);
/* The same handle on an AMD GPU (issue 10): libamdhip64 loaded at run
 * time, HIP's driver-style entry points in the same table, so that every
 * mt_cuda_* call below (memory, modules, launches, streams, graphs, events:
 * the measurement path) runs there unchanged; mt_cuda_build compiles with
 * hipRTC for the device's gfx target. Never run on an AMD GPU: none has
 * been available. Fails with "no AMD GPU: ..." where there is none. */
int mt_hip_open(mt_cuda **out, int ordinal, char *err, size_t err_len);
/* Loads libamdhip64 and resolves every entry point mt_hip_open needs,
 * without touching a device: MT_OK, or what is missing in err. */
int mt_hip_driver_check(char *err, size_t err_len);
/* How many AMD GPUs the HIP runtime sees (0: none, err says why; a negative
 * status when libamdhip64 cannot be loaded). */
int mt_hip_device_count(char *err, size_t err_len);
int mt_cuda_is_hip(const mt_cuda *c);
const mt_cuda_props *mt_cuda_get_props(const mt_cuda *c);
/* The handle's own CUstream. */
void *mt_cuda_stream(const mt_cuda *c);
/* The text of the last driver or NVRTC error on this handle. */
const char *mt_cuda_errmsg(const mt_cuda *c);

int mt_cuda_alloc(mt_cuda *c, size_t bytes, mt_dptr *p);
void mt_cuda_free(mt_cuda *c, mt_dptr p);
int mt_cuda_h2d(mt_cuda *c, mt_dptr dst, const void *src, size_t bytes);
int mt_cuda_d2h(mt_cuda *c, void *dst, mt_dptr src, size_t bytes);
int mt_cuda_d2d_async(mt_cuda *c, mt_dptr dst, mt_dptr src, size_t bytes);
int mt_cuda_memset_async(mt_cuda *c, mt_dptr dst, unsigned char v, size_t bytes);
int mt_cuda_sync(mt_cuda *c);

/* Compile src with the options (or load it from cache_dir), load the
 * module. *log gets NVRTC's log on failure (malloc'ed, may be NULL). */
int mt_cuda_build(mt_cuda *c, const mt_cuda_source *src, const char *const *opts, int nopts, const char *cache_dir,
                  mt_cuda_module **out, char **log);
void mt_cuda_module_free(mt_cuda *c, mt_cuda_module *m);

/* Compile with NVRTC alone, no GPU needed, for `arch` (e.g. "sm_90a"):
 * *cubin is malloc'ed. MT_EUNSUPPORTED when NVRTC is not installed. */
int mt_nvrtc_compile(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts, char **cubin,
                     size_t *len, char **log, char *err, size_t err_len);
/* MT_OK when NVRTC loads; else MT_EUNSUPPORTED and err says what is missing. */
int mt_nvrtc_available(char *err, size_t err_len);
/* Compile with NVRTC alone into cache_dir under the key a device of `arch`
 * looks up in mt_cuda_build, so that the build there loads instead of
 * compiling: how a CPU node or a pool of processes warms the cache. *hit is
 * 1 when the binary was cached already. */
int mt_nvrtc_cache_fill(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts,
                        const char *cache_dir, int *hit, char **log, char *err, size_t err_len);
int mt_cuda_function(mt_cuda *c, mt_cuda_module *m, const char *name, mt_cufn *fn, mt_cuda_resources *res);
/* Allow fn up to `bytes` of dynamic shared memory. */
int mt_cuda_set_smem(mt_cuda *c, mt_cufn fn, int bytes);
int mt_cuda_launch(mt_cuda *c, mt_cufn fn, unsigned grid, unsigned block, unsigned smem, void **args);
/* The same on a caller's CUstream (NULL: the handle's own). */
int mt_cuda_launch_on(mt_cuda *c, void *stream, mt_cufn fn, unsigned grid, unsigned block, unsigned smem, void **args);
/* A 3-D grid. */
int mt_cuda_launch3_on(mt_cuda *c, void *stream, mt_cufn fn, const unsigned grid[3], unsigned block, unsigned smem,
                       void **args);
/* A 3-D launch that may begin before the stream's previous kernel has
 * ended (Hopper's programmatic dependent launch: its blocks are placed
 * while the previous kernel's last ones run, hiding a launch's latency);
 * the kernel must wait (mt_grid_wait, tile.h) before reading what that
 * kernel wrote. A plain launch where the device or driver lacks it, on
 * HIP, or with MOETUNE_DEBUG_CUDA=no-pdl (to compare the two). */
int mt_cuda_launch3_dependent_on(mt_cuda *c, void *stream, mt_cufn fn, const unsigned grid[3], unsigned block,
                                 unsigned smem, void **args);
/* 1 when mt_cuda_launch3_dependent_on overlaps launches on this handle. */
int mt_cuda_pdl_on(const mt_cuda *c);

/* Capture what is launched between begin and end into a graph. */
int mt_cuda_capture_begin(mt_cuda *c);
int mt_cuda_capture_end(mt_cuda *c, mt_cugraph *g);
int mt_cuda_graph_launch(mt_cuda *c, mt_cugraph g);
void mt_cuda_graph_free(mt_cuda *c, mt_cugraph g);

/* Record a start event, run fn(arg) (which launches), record a stop event,
 * wait, and return the elapsed milliseconds in *ms. */
int mt_cuda_time(mt_cuda *c, int (*fn)(mt_cuda *, void *), void *arg, float *ms);

/* Peak bf16 matrix rate through cuBLAS when libcublas loads: TFLOP/s of an
 * n x n x n product of the caller's bf16 buffers a, b (filled with random
 * data: zeros run faster than real data) into d; MT_EUNSUPPORTED without
 * cuBLAS. */
int mt_cuda_cublas_tflops(mt_cuda *c, int n, mt_dptr a, mt_dptr b, mt_dptr d, double *tflops);
/* Dense fp8 matrix rate through cuBLASLt when libcublasLt loads: TFLOP/s
 * of an n x n x n e4m3 product (a transposed, b as is, both n x n e4m3,
 * filled with random data; d n x n bf16; ws a workspace of ws_bytes), fast
 * accumulation on. MT_EUNSUPPORTED without cuBLASLt (mt_cuda_errmsg says
 * why); on a device without fp8 tensor cores cuBLASLt refuses. */
int mt_cuda_cublaslt_fp8_tflops(mt_cuda *c, int n, mt_dptr a, mt_dptr b, mt_dptr d, mt_dptr ws, size_t ws_bytes,
                                double *tflops);

#endif
