/*
 * The parameter space of a kernel, declared once: the values of each
 * parameter and the constraints that prune variants that cannot run or that
 * would duplicate another. Search strategies only ever see valid points.
 */
#ifndef MT_SPACE_H
#define MT_SPACE_H

#include <stddef.h>
#include <stdint.h>

#define MT_SPACE_MAX_PARAMS 10 /* the HIP space has 10: ROCm's nine keys and NUM_SM */
#define MT_SPACE_MAX_VALUES 16

typedef struct mt_param_def {
    const char *name;  /* spelled as exported (vLLM's keys where vLLM has them) */
    int nvalues;
    int values[MT_SPACE_MAX_VALUES];
} mt_param_def;

/* What the constraints may depend on. */
typedef struct mt_space_ctx {
    int64_t E, N, K, topk, M;
    int max_threads; /* CPU: hardware threads */
    int smem_limit;  /* GPU: shared memory a block may opt in to (0: 227 KiB, Hopper's) */
    /* attention decode: E = num_heads, N = num_kv_heads, K = head_dim,
     * topk = page_size, M = batch size, and ctx the context length */
    int64_t ctx;
} mt_space_ctx;

typedef struct mt_config {
    int v[MT_SPACE_MAX_PARAMS];
} mt_config;

typedef struct mt_space {
    const char *backend; /* "cpu", "cuda", "hip" */
    int nparams;
    mt_param_def params[MT_SPACE_MAX_PARAMS];
    /* 1 when c can run for ctx; else 0 and a reason in why */
    int (*valid)(const struct mt_space *sp, const mt_config *c, const mt_space_ctx *ctx, char *why, size_t why_len);
    /* the backend's default config for ctx (valid by construction) */
    void (*default_config)(const struct mt_space *sp, const mt_space_ctx *ctx, mt_config *out);
} mt_space;

/* The CPU fused-MoE kernel's space for a machine with max_threads threads. */
void mt_space_cpu_moe(mt_space *sp, int max_threads);
/* vLLM's CUDA grid (benchmark_moe.py), with vLLM's default heuristic as the
 * default config. */
void mt_space_vllm_moe(mt_space *sp, int rocm);
/* Our CUDA kernels' space: vLLM's six parameters with their meaning,
 * NUM_SM, the CTA count of the persistent grid (0: one CTA per tile; the
 * device's SM count; twice that), and GEMV (1: the small-batch path, valid
 * with one tile per width and warp count where experts hold at most two
 * pairs). The default is vLLM's with NUM_SM 0 and GEMV 0. */
void mt_space_cuda_moe(mt_space *sp, int sms);
/* The same kernels on an AMD GPU (HIP), with `cus` compute units: the CUDA
 * space's seven keys over the values of vLLM's ROCm files, then ROCm's
 * waves_per_eu, matrix_instr_nonkdim and kpack, so that the kernel keys
 * come out in the order of vLLM's AMD files. waves_per_eu is searched (an
 * occupancy hint to the compiler, portable.h); matrix_instr_nonkdim and
 * kpack take one value, Triton's default, because our kernels have no MFMA
 * instructions yet (tile_hip.h) for them to choose between. */
void mt_space_hip_moe(mt_space *sp, int cus);

/* Paged attention decode (kernels/cpu/attn.h, kernels/cuda/attn.cu), the
 * ctx fields as mt_space_ctx says. CPU: partition (tokens per split, 0: none),
 * pages_per_iter, threads. CUDA: partition and num_warps. Points that would
 * run exactly as another (a partition as long as the context, a step longer
 * than the partition, more threads than work items) are pruned. */
void mt_space_cpu_attn(mt_space *sp, int max_threads);
void mt_space_cuda_attn(mt_space *sp);

#include "moe_launch.h" /* mt_cuda_warps_m, mt_cuda_smem_bytes: the kernel's own rules */

/* Index of a named parameter, or -1. */
int mt_space_param_index(const mt_space *sp, const char *name);

/* Points worth measuring early, whatever the strategy: one representative
 * of each distinct kernel path the space holds besides the tiled one (the
 * CUDA space's GEMV path, a few of its hundreds of points at small batch
 * sizes, which a 10 % search may never draw), where valid for ctx. Writes
 * up to max configs to out, returns how many. */
int mt_space_seeds(const mt_space *sp, const mt_space_ctx *ctx, mt_config *out, int max);

/* Narrow the space to the points with the given values: spec is
 * "NAME=V[,NAME=V...]", names as the space spells them, each value one of
 * the parameter's. MT_EINVAL with why saying what is wrong (the names or
 * the values there are) otherwise, the space unchanged. */
int mt_space_fix(mt_space *sp, const char *spec, char *why, size_t why_len);

/* All valid points, in lexicographic order of the declared values. *out is
 * malloc'ed; returns the count or a negative status. */
int mt_space_enumerate(const mt_space *sp, const mt_space_ctx *ctx, mt_config **out);

/* The canonical JSON text of a config: {"name": value, ...} in declared
 * order with no spaces. Returns MT_OK or MT_EINVAL when out is too small. */
int mt_config_to_json(const mt_space *sp, const mt_config *c, char *out, size_t out_len);
/* Parse canonical or any JSON object holding every parameter. */
int mt_config_from_json(const mt_space *sp, const char *json, mt_config *out);

/* Grid strategy: choose up to budget points out of n (budget <= 0: all),
 * evenly strided so that a capped grid still spans the space. The default
 * config goes first. Writes indices into order[]; returns their count. */
int mt_grid_order(const mt_config *pts, int n, const mt_config *def, int nparams, int budget, int *order);

#endif
