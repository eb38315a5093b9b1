/*
 * The parameter space of a family's kernel on one backend, declared once:
 * the values of each parameter and the constraints that prune variants that
 * cannot run or that would duplicate another. Each family declares its
 * spaces here and defines them in its folder (families/NAME/space.c), with
 * the kernels' own rules; search/ works on any of them.
 */
#ifndef MT_FAMILY_SPACE_H
#define MT_FAMILY_SPACE_H

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
    /* fused MoE: the weights' block shape (0: none) and the bytes of an
     * operand element (1 for fp8 and int8), for the engines' rules */
    int64_t block_n, block_k;
    int elem_bytes;
    /* fused MoE in an engine's Triton kernel: the bytes of an activation
     * element and the bits of a weight element as the kernel loads them
     * (0: unknown, no shared-memory rule) */
    int act_bytes, weight_bits;
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

/* An engine's own Triton kernel (engine "vllm" or "sglang"), with the rules
 * of the engine's tuner at the versions named in space.c: vLLM's CUDA grid
 * (1,920 points) or its ROCm space with its pruning, SGLang's CUDA or ROCm
 * grid; block-quantised problems keep the configs each engine's filter
 * keeps. quantised: the dtype quantises the activations (fp8, int8), which
 * drops ROCm's BLOCK_SIZE_K 16 and its fp16-only keys. The default is the
 * engine's own default config. */
void mt_space_engine_moe(mt_space *sp, const char *engine, int rocm, int quantised);
/* SGLang's down GEMM tuned on its own (its _down files): the CUDA grid less
 * BLOCK_SIZE_M, which is the gate-up config's of the same batch size (one
 * alignment of the tokens feeds both GEMMs), with SGLang's block filter. */
void mt_space_engine_moe_down(mt_space *sp);

/* Paged attention decode (kernels/cpu/attn.h, kernels/cuda/attn.cu), the
 * ctx fields as mt_space_ctx says. CPU: partition (tokens per split, 0: none),
 * pages_per_iter, threads. CUDA: partition and num_warps. Points that would
 * run exactly as another (a partition as long as the context, a step longer
 * than the partition, more threads than work items) are pruned. */
void mt_space_cpu_attn(mt_space *sp, int max_threads);
void mt_space_cuda_attn(mt_space *sp);

#endif
