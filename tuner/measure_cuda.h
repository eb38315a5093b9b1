/* The CUDA backend's bench: what a `moetune worker --device cuda:N` runs. */
#ifndef MT_MEASURE_CUDA_H
#define MT_MEASURE_CUDA_H

#include <stddef.h>

#include "db.h"
#include "measure.h"
#include "space.h"

typedef struct mt_cuda_bench mt_cuda_bench;

/* Open CUDA device `ordinal` (hip: AMD GPU `ordinal`, through mt_hip_open:
 * the same measurement path, never yet run on one) and compile the helper
 * kernels. Compiled variants are cached under cache_dir (NULL: no cache):
 * cubins for CUDA, code objects for HIP. */
int mt_cuda_bench_new(mt_cuda_bench **out, int hip, int ordinal, const char *cache_dir, char *err, size_t err_len);
void mt_cuda_bench_free(mt_cuda_bench *b);
int mt_cuda_bench_info(mt_cuda_bench *b, mt_device_info *d);
void mt_cuda_bench_set_fault(mt_cuda_bench *b, int fault);

/* Measure one config of vLLM's parameters (mt_space_vllm_moe order). The
 * compiler's resource report goes into `resources` as JSON. Returns MT_OK
 * whether or not the variant passed (res->ok); MT_ECRASH when the device
 * context is no longer usable and the worker must be replaced. */
int mt_cuda_bench_measure(mt_cuda_bench *b, const mt_moe_shape *s, int64_t M, const mt_config *cfg, uint64_t seed,
                          const mt_policy *pol, mt_measure_result *res, char *resources, size_t rlen);

/* Measure one config of the paged attention decode (kernels/cuda/attn.cu):
 * `B` sequences of `ctx` tokens on the seed's inputs (the same as the CPU
 * bench's), checked against the double reference on the first two
 * sequences, then timed as graph replays with L2 flushed before each run;
 * mma picks the tensor-core path, stage the copy to shared memory first,
 * qsplit the blocks per KV head. Returns as
 * mt_cuda_bench_measure. */
struct mt_attn_shape;
int mt_cuda_bench_attn(mt_cuda_bench *b, const struct mt_attn_shape *s, int64_t B, int64_t ctx, int partition, int warps,
                       int mma, int stage, int qsplit, uint64_t seed, const mt_policy *pol, mt_measure_result *res);

/* Copy bandwidth (1 GiB device to device, read + write) and the bf16 peak
 * through cuBLAS; `how` says how they were measured. */
/* peak_fp8_gflops: cuBLASLt's dense e4m3 rate on a device with fp8 tensor
 * cores, else 0 (how says why where it could not be measured) */
int mt_cuda_bench_ceilings(mt_cuda_bench *b, double *bw_gbs, double *peak_gflops, double *peak_fp8_gflops, char *how,
                           size_t n);

/* The default CUDA timing policy. */
void mt_policy_cuda_default(mt_policy *p);

#endif
