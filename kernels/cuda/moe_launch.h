/* One compiled variant of the CUDA fused-MoE pipeline and how to enqueue
 * it: shared by the tuner's bench and the runtime, so what was tuned is
 * exactly what runs. */
#ifndef MT_MOE_LAUNCH_H
#define MT_MOE_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_rt.h"

/* Our CUDA kernel's warp layout for a tile: the number of warp rows
 * (WARPS_M) that splits BM x BN into whole 16x8 MMA tiles with the most
 * square warp tiles; 0 when no layout fits. */
int mt_cuda_warps_m(int bm, int bn, int warps);
/* Dynamic shared memory of our CUDA GEMMs for a config: the first GEMM
 * stages the gate and up halves, so its B tile is twice as tall. */
int mt_cuda_smem_bytes(int bm, int bn, int bk, int stages, int gemm1);

/* Hopper's warpgroup MMA: 1 when kernels compiled for arch use it (sm_90a,
 * unless MOETUNE_DEBUG_CUDA=no-wgmma asks for the mma.sync path, to compare the
 * two on one device); 1 when a tile takes it (the kernel's USE_WGMMA); and
 * that path's shared memory (unpadded swizzled stages plus 1,024 bytes to
 * align them, never more than mt_cuda_smem_bytes, which the space checks). */
int mt_cuda_wgmma_on(const char *arch);
int mt_cuda_wgmma_tile(int bm, int bn, int bk, int warps);
int mt_cuda_wgmma_smem_bytes(int bm, int bn, int bk, int stages, int gemm1);
/* fp8 tiles that take the warpgroup MMA on sm_90a, and their shared memory
 * (never more than mt_cuda_fp8_smem_bytes's, which the space checks) */
int mt_cuda_fp8_wgmma_tile(int bm, int bn, int bk, int warps);
int mt_cuda_fp8_wgmma_smem_bytes(int bm, int bn, int bk, int stages, int gemm1);
/* fp8 block scales: a k tile lies inside one scale block, so BLOCK_SIZE_K
 * divides its depth: the largest of bk, bk/2, ... (32 at least) that does;
 * 0 when none does. */
int mt_cuda_fp8_block_k(int bk, int64_t scale_k);
/* The fp8 GEMMs' shared memory: stages of A and B rows of bk + 16 bytes. */
int mt_cuda_fp8_smem_bytes(int bm, int bn, int bk, int stages, int gemm1);

/* A variant of the pipeline, named as the spaces name its keys. The tile
 * (block_m, block_n, block_k, warps, stages) and ROCm's waves_per_eu make
 * the binary; group_m, num_sm and gemv are launch arguments of it. */
typedef struct mt_cuda_moe_cfg {
    int block_m, block_n, block_k; /* BLOCK_SIZE_M, _N, _K */
    int group_m;                   /* GROUP_SIZE_M */
    int warps, stages;             /* num_warps, num_stages */
    int num_sm;                    /* NUM_SM: CTAs of the persistent grid (0: one per tile) */
    int waves_per_eu;              /* ROCm's occupancy hint (0: none; always 0 on CUDA) */
    int gemv;                      /* GEMV: 1 for the small-batch path (moe_gemv1 and moe_gemv2) instead
                                    * of align, the tiled GEMMs and combine */
} mt_cuda_moe_cfg;
/* The launcher's cfg from a config of the CUDA space (hip 0: its keys are
 * vLLM's six, NUM_SM and GEMV) or of the HIP space (hip 1: vLLM's six,
 * NUM_SM, waves_per_eu and ROCm's two fixed keys). */
void mt_cuda_moe_cfg_from_space(const int *v, int hip, mt_cuda_moe_cfg *cfg);
/* The GEMV path's limit on topk (moe.cu's GV_MAX_TOPK: a token's experts
 * and weights are kept in shared memory). */
#define MT_CUDA_GEMV_MAX_TOPK 64
/* 1 where the GEMV path may run M tokens: topk within its limit and at most
 * two token-expert pairs per expert (it reads each pair's expert on its
 * own). The tuner's space offers it there and the runtime takes it there. */
int mt_cuda_gemv_fits(int64_t M, int64_t E, int64_t topk);
/* The most pairs the one-block alignment takes; more take the three
 * launches of moe.cu's moe_align_count/scan/scatter. 4,096 unless
 * MOETUNE_DEBUG_CUDA=align-one=N says otherwise (for A/B runs); read when a
 * variant is built. */
int mt_cuda_align_one(void);
typedef struct mt_cuda_moe {
    mt_cuda_module *mod;
    mt_cufn align, gemm1, gemm2, combine, gemv1, gemv2;
    /* fp8: the activations' quantisation (a CTA a row; a warp a group of
     * a row), a tensor's maximum, its reset */
    mt_cufn quant, quant_g, amax, zero;
    mt_cufn align_count, align_scan, align_scatter; /* the alignment over many blocks */
    mt_cuda_moe_cfg cfg;
    int warps_m, fp16;
    int fp8; /* 0: bf16/fp16; 1: fp8 w8a8 with per-tensor or per-channel scales; 2: with block scales */
    int wgmma; /* the GEMMs run on Hopper's warpgroup MMA */
    int splitk; /* split-K allowed (mt_cuda_splitk_on when built) */
    int sms;   /* the device's SMs: split-K aims at filling them */
    int smem_sm; /* shared memory per SM, bytes */
    unsigned smem1, smem2;
    mt_cuda_resources r1, r2, rg2; /* the GEMMs', and moe_gemv2's */
    int64_t l2_bytes; /* the device's L2 */
    int align_one;     /* mt_cuda_align_one when built */
    int gemv_prefetch; /* 0: MOETUNE_DEBUG_CUDA=no-gemv-prefetch when built */
} mt_cuda_moe;

/* NVRTC options of a config's binary for arch: the tile shape, the dtype
 * (fp16, or fp8 as mt_cuda_moe.fp8 says), whether wgmma is on and
 * waves_per_eu (GROUP_SIZE_M and NUM_SM are launch arguments, so configs
 * that differ only in them share one binary). MT_EUNSUPPORTED when no warp
 * layout fits. */
#define MT_CUDA_MOE_NOPTS 10
int mt_cuda_moe_options(const mt_cuda_moe_cfg *cfg, int fp16, int fp8, const char *arch, char d[MT_CUDA_MOE_NOPTS][48],
                        const char *opts[MT_CUDA_MOE_NOPTS]);
/* Where moetune's fp8 kernels run: 1 for an architecture with fp8 tensor
 * cores (sm_89 and later), else 0 with why saying so. */
int mt_cuda_fp8_arch(const char *arch, char *why, size_t why_len);
/* 1 when two configs compile to the same binary. */
int mt_cuda_moe_same_binary(const mt_cuda_moe_cfg *a, const mt_cuda_moe_cfg *b);

/* What a variant is built from: the config and the dtype (the family's
 * backend table, families/family_backend.h, takes this; zero it before
 * setting it, as variants are compared bytewise). */
typedef struct mt_cuda_moe_variant_cfg {
    mt_cuda_moe_cfg cfg;
    int fp16;
    int fp8; /* as mt_cuda_moe.fp8 */
} mt_cuda_moe_variant_cfg;

/* Compile (or load from cache_dir) and prepare a variant. MT_EPARSE: it did
 * not compile (why holds the log's start); MT_EUNSUPPORTED: it cannot
 * launch on this device (why says why); other codes: driver errors. */
int mt_cuda_moe_build(mt_cuda *c, const mt_cuda_moe_cfg *cfg, int fp16, int fp8, const char *cache_dir, mt_cuda_moe *v,
                      char *why, size_t why_len);
void mt_cuda_moe_release(mt_cuda *c, mt_cuda_moe *v);

typedef struct mt_cuda_moe_args {
    mt_dptr x, w1, w2, topk_ids, topk_w, out; /* [M,K], [E,2N,K], [E,K,N], [M,topk] int32, [M,topk] f32, [M,K] */
    mt_dptr workspace;                         /* mt_cuda_moe_workspace bytes */
    int M, E, N, K, topk;
    int chunk; /* tokens per pipeline run; the workspace is sized by it */
    /* fp8: w1, w2 are e4m3 and x, out bf16; the scales as mt_quant lays
     * them out (a1, a2: static per-tensor scales, or 0 for dynamic); the
     * scheme's channel flag (fp8 1) or its block (fp8 2) */
    mt_dptr w1_scale, w2_scale, a1_scale, a2_scale;
    int channel, block_n, block_k;
} mt_cuda_moe_args;

/* Output columns of GEMM `gemm`'s tile (1 or 2): BLOCK_SIZE_N, or twice
 * that for GEMM 2 on the wgmma path (kernels/cuda/moe.cu's TILE_N). */
int mt_cuda_moe_tile_n(const mt_cuda_moe *v, int gemm);
/* CTAs of GEMM `gemm` that fit on one SM at once (shared memory,
 * registers, threads). */
int mt_cuda_moe_blocks_per_sm(const mt_cuda_moe *v, int gemm);
/* Split-K of GEMM `gemm` (n_out columns over k_red) for `pairs` routed
 * pairs among E experts: 1 (none) unless its tiles that can have work fill
 * at most half of the CTA slots the SMs hold at once; then as many CTAs per
 * tile as fit in one wave (never a second, partial wave), each with at
 * least 4 k tiles; 1 when the variant was built with split-K off. */
int mt_cuda_moe_splits(const mt_cuda_moe *v, int gemm, int pairs, int E, int n_out, int k_red);
/* 0 with MOETUNE_DEBUG_CUDA=no-splitk: read once per variant, when it is built,
 * not at every launch */
int mt_cuda_splitk_on(void);

/* Device bytes of workspace for `chunk` tokens: known before launch. */
size_t mt_cuda_moe_workspace(const mt_cuda_moe *v, int chunk, int E, int N, int K, int topk);

/* Enqueue the pipeline (align, GEMM 1, GEMM 2, combine per chunk) on
 * stream (NULL: the handle's own). Nothing is synchronised. */
int mt_cuda_moe_enqueue(mt_cuda *c, const mt_cuda_moe *v, const mt_cuda_moe_args *a, void *stream);

#endif
