/*
 * moetune's fused-MoE kernels for CUDA: one source compiled at run time by
 * NVRTC for the device's own architecture, one module per tile shape. The
 * tile's parameters (block sizes, warps, stages) are compile-time constants
 * (macros below), so every tile shape is a fully specialised binary. The
 * launch order (GROUP_SIZE_M) and the grid (NUM_SM) are kernel arguments:
 * they cost one integer division per tile, and keeping them out of the
 * binary cuts the compiles of the CUDA space twelvefold (193 tile shapes
 * instead of 2,316 configs on an H100). The same file is
 * compiled by nvcc in CI with the defaults, to prove it builds.
 *
 * No toolkit headers: NVRTC gets our own (kernels/gpu/portable.h for the
 * CUDA/HIP names, kernels/gpu/tile_cuda.h for the tensor-core primitives,
 * with wgmma_cuda.h for Hopper's warpgroup MMA) in memory, and bf16/fp16
 * are raw 16-bit patterns. On sm_90a the host sets MT_WGMMA=1 and tiles of
 * 64-row blocks take the warpgroup MMA (moe_gemm_tile_wg); the others, and
 * every tile elsewhere, mma.sync (moe_gemm_tile).
 *
 * Pipeline (all launched on one stream, captured in one graph):
 *   moe_align     (token, slot) pairs sorted by expert, padded per expert
 *                 to BLOCK_SIZE_M; expert id per block; tokens per expert
 *   moe_gemm1     act[pair, j] = silu(x[t] . w1[e, j]) * (x[t] . w1[e, N+j])
 *   moe_gemm2     out2[pair, k] = w[pair] * (act[pair] . w2[e, k])
 *   moe_combine   out[t, k] = sum over slots of out2[t*topk+s, k]
 * A GEMM whose tiles would leave SMs idle splits its k range over several
 * CTAs per tile (split-K, chosen by the host).
 * The small-batch path (the config's GEMV key) replaces all four with
 *   moe_gemv1     act as moe_gemm1, one pair per grid row, straight from topk_ids
 *   moe_gemv2     out[t, k] as moe_gemm2 and moe_combine together
 */

#ifndef BLOCK_SIZE_M
#define BLOCK_SIZE_M 64
#endif
#ifndef BLOCK_SIZE_N
#define BLOCK_SIZE_N 64
#endif
#ifndef BLOCK_SIZE_K
#define BLOCK_SIZE_K 64
#endif
#ifndef NUM_WARPS
#define NUM_WARPS 4
#endif
#ifndef NUM_STAGES
#define NUM_STAGES 3
#endif
#ifndef WARPS_M
#define WARPS_M 2
#endif
/* fp8 w8a8 (the fp8 section below): 0 none, 1 per-tensor or per-channel
 * scales, 2 block scales */
#ifndef MT_FP8
#define MT_FP8 0
#endif
/* 1: tiles that fit take Hopper's warpgroup MMA (the host sets it on sm_90a) */
#ifndef MT_WGMMA
#define MT_WGMMA 0
#endif

#define WARPS_N (NUM_WARPS / WARPS_M)
#define THREADS (NUM_WARPS * 32)
#define WARP_TILE_M (BLOCK_SIZE_M / WARPS_M)
#define WARP_TILE_N (BLOCK_SIZE_N / WARPS_N)
#define MT_TILES (WARP_TILE_M / 16)
#define NT_TILES (WARP_TILE_N / 8)
#define SROW (BLOCK_SIZE_K + 8) /* padded shared-memory row: no bank conflicts for ldmatrix */

static_assert(NUM_WARPS % WARPS_M == 0, "warps must split into WARPS_M rows");
static_assert(BLOCK_SIZE_M % (16 * WARPS_M) == 0, "each warp needs whole 16-row MMA tiles");
static_assert(BLOCK_SIZE_N % (8 * WARPS_N) == 0, "each warp needs whole 8-column MMA tiles");
static_assert(BLOCK_SIZE_K % 16 == 0, "the reduction step is 16");
static_assert(NUM_STAGES >= 2, "a pipeline needs two stages");

#include "tile.h"

#if MT_WGMMA && !MT_HAVE_WGMMA
#error "MT_WGMMA=1 needs the sm_90a target"
#endif

/* The warpgroup layout of the wgmma path (mirrored by the host's
 * mt_cuda_wgmma_tile, which sizes shared memory from it): warpgroups split
 * the rows in 64-row blocks when there are enough, else the columns; each
 * warpgroup's tile is WG_MB blocks of 64 x WG_TN. */
#define WG_COUNT (NUM_WARPS / 4)
#define WG_M (WG_COUNT > 0 && BLOCK_SIZE_M % (64 * (WG_COUNT > 0 ? WG_COUNT : 1)) == 0 ? WG_COUNT : 1)
#define WG_N (WG_COUNT > 0 ? WG_COUNT / WG_M : 1)
#define WG_TM (BLOCK_SIZE_M / WG_M)
#define WG_MB (WG_TM / 64)
#define WG_TN (BLOCK_SIZE_N / WG_N)
/* A k tile is whole 128-byte swizzle rows: 64 bf16 or 128 e4m3 values.
 * fp8 holds two sets of accumulators (moe_fp8_tile_wg): at most 64 + 64
 * registers a thread. */
#define WG_KROW (MT_FP8 ? 128 : 64)
#define USE_WGMMA                                                                                                     \
    (MT_WGMMA && NUM_WARPS % 4 == 0 && BLOCK_SIZE_M % 64 == 0 && BLOCK_SIZE_K % WG_KROW == 0 && WG_TN >= 16 &&        \
     WG_TN <= 128 && (WG_TN & (WG_TN - 1)) == 0 && BLOCK_SIZE_N % WG_N == 0 &&                       \
     (!MT_FP8 || WG_MB * WG_TN <= 64))
/* Output columns of a GEMM's tile. On the wgmma path GEMM 2's tile is as
 * wide as GEMM 1's gate-and-up tile (2 x BLOCK_SIZE_N): the same shared
 * memory and accumulator registers, and half the operand bytes per FLOP of
 * a BLOCK_SIZE_N-wide tile (mirrored by the host's tile_n). */
#define TILE_N(MODE) ((USE_WGMMA && (MODE) == 2) ? 2 * BLOCK_SIZE_N : BLOCK_SIZE_N)

/* ---- alignment ---- */

#define ALIGN_MAX_E 1024

/* The sum of run over the block's threads up to this one (inclusive): a
 * warp scan, then one over the warps' totals. Every thread of the block
 * calls it (it has barriers). */
MT_DEVICE int align_scan(int run)
{
    __shared__ int wsum[32];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    int incl = run;
    MT_UNROLL_SHFL
    for (int o = 1; o < 32; o <<= 1) {
        int y = mt_shfl_up(incl, o);
        if (lane >= o) incl += y;
    }
    if (lane == 31) wsum[wid] = incl;
    __syncthreads();
    if (wid == 0) {
        int w = lane < (int)(blockDim.x >> 5) ? wsum[lane] : 0;
        MT_UNROLL_SHFL
        for (int o = 1; o < 32; o <<= 1) {
            int y = mt_shfl_up(w, o);
            if (lane >= o) w += y;
        }
        wsum[lane] = w;
    }
    __syncthreads();
    return incl + (wid ? wsum[wid - 1] : 0);
}

/* One block. sorted_ids holds pair indices (token * topk + slot), each
 * expert's run padded to a multiple of BLOCK_SIZE_M with the sentinel
 * num_pairs. Within an expert the order is whatever the atomics give: every
 * row of the GEMMs is computed independently, so the result does not
 * depend on it. */
MT_KERNEL void __launch_bounds__(1024) moe_align(const int *__restrict__ topk_ids, int num_pairs, int E,
                                                            int *__restrict__ sorted_ids, int *__restrict__ expert_ids,
                                                            int *__restrict__ num_post, int *__restrict__ tokens_per_expert,
                                                            int cap, int *__restrict__ counters, int ncounters)
{
    /* the GEMMs' split-K counters start at 0 (each GEMM leaves them so) */
    for (int i = threadIdx.x; i < ncounters; i += blockDim.x) counters[i] = 0;
    __shared__ int cnt[ALIGN_MAX_E];
    __shared__ int start[ALIGN_MAX_E + 1];
    for (int e = threadIdx.x; e < E; e += blockDim.x) cnt[e] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < num_pairs; i += blockDim.x) atomicAdd(&cnt[topk_ids[i]], 1);
    __syncthreads();
    /* each expert's run starts at the sum of the padded runs before it: a
     * block-wide scan (one expert per thread, 1,024 threads), not a loop of
     * E steps in one thread (several microseconds at E = 256) */
    const int run = (int)threadIdx.x < E ? (cnt[threadIdx.x] + BLOCK_SIZE_M - 1) / BLOCK_SIZE_M * BLOCK_SIZE_M : 0;
    const int incl = align_scan(run);
    if ((int)threadIdx.x < E) start[threadIdx.x] = incl - run;
    if ((int)threadIdx.x == E - 1) {
        start[E] = incl;
        *num_post = incl;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < start[E]; i += blockDim.x) sorted_ids[i] = num_pairs;
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        tokens_per_expert[e] = cnt[e];
        for (int b = start[e] / BLOCK_SIZE_M; b < start[e + 1] / BLOCK_SIZE_M; b++) expert_ids[b] = e;
    }
    __syncthreads();
    /* cnt becomes each expert's write cursor */
    for (int e = threadIdx.x; e < E; e += blockDim.x) cnt[e] = start[e];
    __syncthreads();
    for (int i = threadIdx.x; i < num_pairs; i += blockDim.x) sorted_ids[atomicAdd(&cnt[topk_ids[i]], 1)] = i;
    (void)cap;
}

/* The same alignment over many blocks, for batches of more than a few
 * thousand pairs, in three launches: counts per block of ALIGN_CHUNK pairs
 * (moe_align_count), one block that turns them into each block's first
 * place in each expert's run and lays the runs out (moe_align_scan), and
 * the placing of the pairs (moe_align_scatter). One block doing it all
 * took 48 us of an 888 us pipeline at Qwen3-30B-A3B M = 4096 (32,768
 * pairs); one pass of loads and atomics with the pairs held in registers,
 * or a count per warp (no queueing on shared counters), left it at 41 to
 * 43 us: one SM's throughput of scattered stores and atomics is the limit,
 * so the pairs are spread over blocks (21 us in all, the pipeline 34 us
 * faster; H100, bench/results/2026-11-24-h100-align). hist is
 * [blocks][E]; every entry is written before it is read, so the workspace
 * needs no clearing. */
#define ALIGN_CHUNK 1024
#define ALIGN_PT (ALIGN_CHUNK / 256)
MT_KERNEL void __launch_bounds__(256) moe_align_count(const int *__restrict__ topk_ids, int num_pairs, int E,
                                                      int *__restrict__ hist)
{
    __shared__ int cnt[ALIGN_MAX_E];
    for (int e = threadIdx.x; e < E; e += blockDim.x) cnt[e] = 0;
    int id[ALIGN_PT];
#pragma unroll
    for (int u = 0; u < ALIGN_PT; u++) {
        const int i = (int)blockIdx.x * ALIGN_CHUNK + u * 256 + (int)threadIdx.x;
        id[u] = i < num_pairs ? topk_ids[i] : -1;
    }
    __syncthreads();
#pragma unroll
    for (int u = 0; u < ALIGN_PT; u++)
        if (id[u] >= 0) atomicAdd(&cnt[id[u]], 1);
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) hist[(long)blockIdx.x * E + e] = cnt[e];
}

/* expert e's counts of blocks b0 .. b0 + 7 (0 past nblk), all eight loads
 * in flight together */
MT_DEVICE void align_counts8(const int *hist, int b0, int nblk, int E, int e, int (&c)[8])
{
#pragma unroll
    for (int u = 0; u < 8; u++) c[u] = b0 + u < nblk ? hist[(long)(b0 + u) * E + e] : 0;
}

MT_KERNEL void __launch_bounds__(1024) moe_align_scan(int num_pairs, int E, int nblk, int *__restrict__ hist,
                                                      int *__restrict__ sorted_ids, int *__restrict__ expert_ids,
                                                      int *__restrict__ num_post, int *__restrict__ tokens_per_expert,
                                                      int *__restrict__ counters, int ncounters)
{
    for (int i = threadIdx.x; i < ncounters; i += blockDim.x) counters[i] = 0;
    const int e = threadIdx.x;
    /* the blocks' counts of expert e */
    int total = 0;
    if (e < E)
        for (int b0 = 0; b0 < nblk; b0 += 8) {
            int c[8];
            align_counts8(hist, b0, nblk, E, e, c);
#pragma unroll
            for (int u = 0; u < 8; u++) total += c[u];
        }
    const int run = (total + BLOCK_SIZE_M - 1) / BLOCK_SIZE_M * BLOCK_SIZE_M;
    const int incl = align_scan(run);
    if (e == E - 1) *num_post = incl;
    if (e >= E) return;
    const int start = incl - run;
    tokens_per_expert[e] = total;
    for (int b = start / BLOCK_SIZE_M; b < incl / BLOCK_SIZE_M; b++) expert_ids[b] = e;
    for (int i = start + total; i < incl; i++) sorted_ids[i] = num_pairs; /* the run's padding */
    /* each block's first place in the run */
    int at = start;
    for (int b0 = 0; b0 < nblk; b0 += 8) {
        int c[8];
        align_counts8(hist, b0, nblk, E, e, c);
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (b0 + u < nblk) {
                hist[(long)(b0 + u) * E + e] = at;
                at += c[u];
            }
    }
}

MT_KERNEL void __launch_bounds__(256) moe_align_scatter(const int *__restrict__ topk_ids, int num_pairs, int E,
                                                        const int *__restrict__ hist, int *__restrict__ sorted_ids)
{
    __shared__ int cur[ALIGN_MAX_E];
    for (int e = threadIdx.x; e < E; e += blockDim.x) cur[e] = hist[(long)blockIdx.x * E + e];
    int id[ALIGN_PT];
#pragma unroll
    for (int u = 0; u < ALIGN_PT; u++) {
        const int i = (int)blockIdx.x * ALIGN_CHUNK + u * 256 + (int)threadIdx.x;
        id[u] = i < num_pairs ? topk_ids[i] : -1;
    }
    __syncthreads();
#pragma unroll
    for (int u = 0; u < ALIGN_PT; u++)
        if (id[u] >= 0) sorted_ids[atomicAdd(&cur[id[u]], 1)] = (int)blockIdx.x * ALIGN_CHUNK + u * 256 + (int)threadIdx.x;
}

/* ---- the grouped GEMMs ---- */

/* grouped launch order (as Triton's GROUP_SIZE_M): GROUP_SIZE_M row blocks
 * share each column block while it is in L2 */
MT_DEVICE void tile_coords(int pid, int num_pid_n, int num_pid_m, int group_m, int *pid_m, int *pid_n)
{
    const int in_group = group_m * num_pid_n;
    const int first_m = (pid / in_group) * group_m;
    const int gsize = min(num_pid_m - first_m, group_m);
    *pid_m = first_m + (pid % in_group) % gsize;
    *pid_n = (pid % in_group) / gsize;
}

/* One grouped GEMM: operands, shape, and the split-K state. MODE 1: A = x
 * (row of pair p is token p / a_div), W = w1, C = act; MODE 2: A = act, W =
 * w2, C = out2. The kernels take it as one parameter that stays in the
 * parameter bank (a grid constant: read where used, never copied into
 * registers); the host fills mt_cuda_gemm_args (kernels/cuda/moe_launch.c),
 * which has the same layout. */
struct gemm_args {
    const h16 *A, *W;
    h16 *C;
    const int *sorted_ids, *expert_ids, *num_post;
    const float *topk_w;
    int num_pairs, a_div, n_out, k_red, num_pid_m, group_m;
    float *partials; /* split-K: each split's fp32 sums, [tile][split][value][thread] */
    int *counters;   /* split-K: a tile's finished splits; the last one resets it to 0 */
    int splits;      /* CTAs per output tile, each over its own range of k tiles */
};
static_assert(sizeof(gemm_args) == 104, "the host's mt_cuda_gemm_args has this layout");

/* Where work item pid falls: its output tile, its split and k-tile range,
 * the tile's first output column, its expert's weights and its rows of
 * sorted pairs. false for a row block past the padded pair count (nothing
 * to do). */
struct tile_pos {
    int pid_m, pid_n, tile, split, kt0, kt1, n0;
    const h16 *We;
    const int *rows;
};
template <int MODE> MT_DEVICE bool tile_begin(int pid, const gemm_args &g, tile_pos *t)
{
    const int num_pid_n = (g.n_out + TILE_N(MODE) - 1) / TILE_N(MODE);
    const int ktiles = (g.k_red + BLOCK_SIZE_K - 1) / BLOCK_SIZE_K;
    t->split = pid % g.splits;
    tile_coords(pid / g.splits, num_pid_n, g.num_pid_m, g.group_m < 1 ? 1 : g.group_m, &t->pid_m, &t->pid_n);
    if (t->pid_m * BLOCK_SIZE_M >= *g.num_post) return false;
    t->tile = t->pid_m * num_pid_n + t->pid_n;
    t->kt0 = (int)((long)t->split * ktiles / g.splits);
    t->kt1 = (int)((long)(t->split + 1) * ktiles / g.splits);
    t->n0 = t->pid_n * TILE_N(MODE);
    t->We = g.W + (long)g.expert_ids[t->pid_m] * (MODE == 1 ? 2 * g.n_out : g.n_out) * g.k_red;
    t->rows = g.sorted_ids + t->pid_m * BLOCK_SIZE_M;
    return true;
}

/* Split-K: each of a tile's CTAs stores the sums of its k range (n values
 * per thread) in its own slot; the last to finish adds the slots in split
 * order, so the result does not depend on which finishes last, and runs
 * the epilogue (true). The others are done (false). The slots of the row
 * blocks that have work fit the host's workspace: non-empty row blocks come
 * first and number at most the pairs. */
template <int NV>
MT_DEVICE bool splitk_reduce(float *acc, const gemm_args &g, const tile_pos &t)
{
    if (g.splits == 1) return true;
    __shared__ int last;
    float *slots = g.partials + (long)t.tile * g.splits * NV * THREADS;
#pragma unroll
    for (int q = 0; q < NV; q++) slots[((long)t.split * NV + q) * THREADS + threadIdx.x] = acc[q];
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&g.counters[t.tile], 1) == g.splits - 1;
    __syncthreads();
    if (!last) return false;
    __threadfence();
    const volatile float *v = slots; /* written by other CTAs: not from L1 */
#pragma unroll
    for (int q = 0; q < NV; q++) acc[q] = 0.f;
    for (int sp = 0; sp < g.splits; sp++)
#pragma unroll
        for (int q = 0; q < NV; q++) acc[q] += v[((long)sp * NV + q) * THREADS + threadIdx.x];
    if (threadIdx.x == 0) g.counters[t.tile] = 0;
    return true;
}

/* Two adjacent outputs of row p: MODE 1 silu(gate) * up, MODE 2 the
 * product times the pair's routing weight. */
template <int MODE>
MT_DEVICE void store2(h16 *__restrict__ C, int p, int col, int n_out, float w, float g0, float g1, float u0, float u1)
{
    float v0, v1;
    if (MODE == 1) {
        v0 = g0 / (1.f + __expf(-g0)) * u0;
        v1 = g1 / (1.f + __expf(-g1)) * u1;
    } else {
        v0 = g0 * w;
        v1 = g1 * w;
    }
    *(u32 *)(C + (long)p * n_out + col) = (u32)f2h(v0) | ((u32)f2h(v1) << 16);
}

/* The operand copies of one tile, global to shared memory. Each thread
 * copies the same 16-byte chunk kc of a fixed set of rows at every k step,
 * so the gathered rows' offsets (32-bit, in elements) and their validity
 * are worked out once per tile: at every k step a copy is an add and the
 * cp.async. SWZ 0 stores rows of SROW elements (the ldmatrix path); SWZ 1
 * wgmma's 128-byte swizzle, where chunk kc of row r goes to the 64-wide
 * slab kc / 8 at chunk (kc % 8) ^ (r % 8) of the row's 128 bytes. */
template <int MODE, int SWZ, typename T = h16> struct tile_gather {
    /* EPC elements of T to a 16-byte chunk, KCH chunks to a row of the k tile */
    static constexpr int EPC = 16 / (int)sizeof(T), KCH = BLOCK_SIZE_K / EPC;
    static constexpr int NB = MODE == 1 ? 2 * BLOCK_SIZE_N : TILE_N(MODE), RSTEP = THREADS / KCH;
    static_assert(SWZ || sizeof(T) == 2, "the padded layout is the 16-bit one");
    static constexpr int IA = (BLOCK_SIZE_M + RSTEP - 1) / RSTEP, IB = (NB + RSTEP - 1) / RSTEP;
    static_assert(THREADS % KCH == 0, "threads split into whole rows of chunks");
    static_assert(IA <= 32 && IB <= 32, "a 32-bit row mask per thread");
    /* A rows are gathered: up to 8 per thread, their offsets are kept in
     * registers; more would spill next to the accumulators (BLOCK_SIZE_K
     * 256 with 4 warps), so those are looked up again at every step. B
     * rows are computed (a few shifts and one multiply-add). */
    static constexpr bool KEEP = IA <= 8;
    u32 aoff[KEEP ? IA : 1], amask, bmask;
    int kc, r0, n0, n_out;
    const int *rows;
    int num_pairs, a_div, k_red;

    MT_DEVICE u32 a_offset(int i, bool *ok) const
    {
        int r = r0 + i * RSTEP, p = r < BLOCK_SIZE_M ? rows[r] : num_pairs;
        *ok = p < num_pairs;
        return *ok ? (u32)(p / a_div) * (u32)k_red + kc * EPC : 0;
    }

    /* The weight row of B tile row q. MODE 1 stages gate and up rows: the
     * gate rows first, then the up rows (ldmatrix path), or, for wgmma,
     * each warpgroup's gate columns followed by its up columns, so that
     * one MMA of twice the width computes both. */
    MT_DEVICE u32 b_offset(int q, bool *ok) const
    {
        int col, up = 0;
        if (MODE == 1 && SWZ) {
            constexpr int SPAN = 2 * (BLOCK_SIZE_N / WG_N);
            col = n0 + (q / SPAN) * (SPAN / 2) + q % (SPAN / 2);
            up = q % SPAN >= SPAN / 2;
        } else {
            col = n0 + q % TILE_N(MODE);
            up = MODE == 1 && q >= BLOCK_SIZE_N;
        }
        *ok = q < NB && col < n_out;
        return *ok ? (u32)(up * n_out + col) * (u32)k_red + kc * EPC : 0;
    }

    MT_DEVICE void init(const int *rows_, int num_pairs_, int a_div_, int k_red_, int n0_, int n_out_)
    {
        rows = rows_;
        num_pairs = num_pairs_;
        a_div = a_div_;
        k_red = k_red_;
        n0 = n0_;
        n_out = n_out_;
        kc = threadIdx.x % KCH;
        r0 = threadIdx.x / KCH;
        amask = bmask = 0;
#pragma unroll
        for (int i = 0; i < (KEEP ? IA : 0); i++) {
            bool ok;
            aoff[KEEP ? i : 0] = a_offset(i, &ok);
            amask |= (u32)ok << i;
        }
#pragma unroll
        for (int i = 0; i < IB; i++) {
            bool ok;
            b_offset(r0 + i * RSTEP, &ok);
            bmask |= (u32)ok << i;
        }
    }

    MT_DEVICE mt_sptr dst(mt_sptr tile, int rows_in_tile, int r) const
    {
        if (SWZ) return tile + (kc >> 3) * rows_in_tile * 128 + r * 128 + (((kc & 7) ^ (r & 7)) << 4);
        return tile + (r * SROW + kc * 8) * 2;
    }

    /* k tile kt into the A and B tiles at shared addresses sa and sb; from
     * kend (the split's end) or k_red on the chunks are zero-filled */
    MT_DEVICE void copy(mt_sptr sa, mt_sptr sb, const T *A, const T *We, int kt, int kend) const
    {
        const int k0 = kt * BLOCK_SIZE_K;
        const bool kin = kt < kend && k0 + kc * EPC < k_red;
        const int kk = kin ? k0 : 0;
#pragma unroll
        for (int i = 0; i < IA; i++) {
            const int r = r0 + i * RSTEP;
            if (IA * RSTEP > BLOCK_SIZE_M && r >= BLOCK_SIZE_M) break;
            bool ok = amask >> i & 1;
            const u32 off = KEEP ? aoff[KEEP ? i : 0] : a_offset(i, &ok);
            cp_async16(dst(sa, BLOCK_SIZE_M, r), A + off + kk, ok && kin);
        }
#pragma unroll
        for (int i = 0; i < IB; i++) {
            const int r = r0 + i * RSTEP;
            if (IB * RSTEP > NB && r >= NB) break;
            bool ok;
            const u32 off = b_offset(r, &ok);
            cp_async16(dst(sb, NB, r), We + off + kk, (bmask >> i & 1) && kin);
        }
    }
};

/* MODE 1: A = x (row of pair p is token p / topk), B = w1[e] gate and up
 * halves, epilogue silu(gate) * up -> act.
 * MODE 2: A = act (row p), B = w2[e], epilogue times the routing weight ->
 * out2. */
template <int MODE> MT_DEVICE void moe_gemm_tile(int pid, const gemm_args &ga)
{
    constexpr int NB = (MODE == 1 ? 2 : 1) * BLOCK_SIZE_N; /* B rows per tile */
    extern __shared__ __align__(16) h16 smem[];
    h16 *sa = smem;                                      /* [STAGES][BM][SROW] */
    h16 *sb = smem + NUM_STAGES * BLOCK_SIZE_M * SROW;   /* [STAGES][NB][SROW] */

    tile_pos t;
    if (!tile_begin<MODE>(pid, ga, &t)) return;
    const int n_out = ga.n_out, num_pairs = ga.num_pairs, n0 = t.n0;
    const h16 *We = t.We;
    const int *rows = t.rows;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int ktiles = t.kt1 - t.kt0;

    tile_gather<MODE, 0> g;
    g.init(rows, num_pairs, ga.a_div, ga.k_red, n0, n_out);
    const mt_sptr sa_s = mt_sptr_of(sa), sb_s = mt_sptr_of(sb);
    auto load = [&](int stage, int kt) {
        g.copy(sa_s + stage * BLOCK_SIZE_M * SROW * 2, sb_s + stage * NB * SROW * 2, ga.A, We, t.kt0 + kt, t.kt1);
    };

    /* gate (and, MODE 1, up) sums in one array, for the split-K slots */
    float accs[MODE == 1 ? 2 : 1][MT_TILES][NT_TILES][4];
    auto &acc = accs[0];
    auto &acc2 = accs[MODE == 1 ? 1 : 0]; /* the up half */
#pragma unroll
    for (int i = 0; i < MT_TILES; i++)
#pragma unroll
        for (int j = 0; j < NT_TILES; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                acc[i][j][q] = 0.f;
                if (MODE == 1) acc2[MODE == 1 ? i : 0][MODE == 1 ? j : 0][q] = 0.f;
            }

#pragma unroll
    for (int s = 0; s < NUM_STAGES - 1; s++) {
        load(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<NUM_STAGES - 2>();
        __syncthreads();
        /* refill the stage consumed in the previous iteration; a group is
         * committed even when empty, to keep the wait count exact */
        load((kt + NUM_STAGES - 1) % NUM_STAGES, kt + NUM_STAGES - 1);
        cp_async_commit();
        const h16 *ta = sa + (kt % NUM_STAGES) * BLOCK_SIZE_M * SROW;
        const h16 *tb = sb + (kt % NUM_STAGES) * NB * SROW;
#pragma unroll
        for (int kk = 0; kk < BLOCK_SIZE_K; kk += 16) {
            u32 af[MT_TILES][4];
#pragma unroll
            for (int i = 0; i < MT_TILES; i++) {
                int r = wm * WARP_TILE_M + i * 16 + (lane & 15);
                ldmatrix_x4(af[i], ta + r * SROW + kk + (lane >> 4) * 8);
            }
#pragma unroll
            for (int j = 0; j < NT_TILES; j++) {
                u32 bf[2];
                int r = wn * WARP_TILE_N + j * 8 + (lane & 7);
                ldmatrix_x2(bf, tb + r * SROW + kk + ((lane >> 3) & 1) * 8);
#pragma unroll
                for (int i = 0; i < MT_TILES; i++) mma16816(acc[i][j], af[i], bf);
                if (MODE == 1) {
                    u32 bu[2];
                    ldmatrix_x2(bu, tb + (BLOCK_SIZE_N + r) * SROW + kk + ((lane >> 3) & 1) * 8);
#pragma unroll
                    for (int i = 0; i < MT_TILES; i++) mma16816(acc2[MODE == 1 ? i : 0][MODE == 1 ? j : 0], af[i], bu);
                }
            }
        }
    }
    cp_async_wait<0>();
    if (!splitk_reduce<sizeof accs / sizeof(float)>(&accs[0][0][0][0], ga, t)) return;

    /* epilogue: each thread holds rows lane/4 and lane/4+8 of each 16x8
     * tile, two adjacent columns each */
#pragma unroll
    for (int i = 0; i < MT_TILES; i++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int r = wm * WARP_TILE_M + i * 16 + (lane >> 2) + half * 8;
            int p = rows[r];
            if (p >= num_pairs) continue;
            float w = MODE == 2 ? ga.topk_w[p] : 1.f;
#pragma unroll
            for (int j = 0; j < NT_TILES; j++) {
                int col = n0 + wn * WARP_TILE_N + j * 8 + (lane & 3) * 2;
                if (col >= n_out) continue;
                const float *u = acc2[MODE == 1 ? i : 0][MODE == 1 ? j : 0];
                store2<MODE>(ga.C, p, col, n_out, w, acc[i][j][half * 2], acc[i][j][half * 2 + 1], u[half * 2],
                             u[half * 2 + 1]);
            }
        }
    }
}

#if USE_WGMMA
/* One k tile's MMAs of a warpgroup, committed as one group: its WG_MB
 * 64-row blocks of A (a_off bytes into the stage at `stage`) times its WN
 * rows of B (b_off bytes in), 32 bytes of k an instruction (16 bf16 or 32
 * e4m3 values), 128-byte slabs SLAB_A and SLAB_B bytes long. Descriptors
 * move in 16-byte units (the address field's low bits). keep 0: the first
 * MMA discards d's old values. */
template <int WN, bool E4M3, int SLAB_A, int SLAB_B>
MT_DEVICE void wg_mmas(float (&d)[WG_MB][WN / 2], u32 stage, int a_off, int b_off, int keep)
{
    const unsigned long long dt = wgmma_desc(stage), dta = dt + (a_off >> 4), dtb = dt + (b_off >> 4);
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < BLOCK_SIZE_K * (E4M3 ? 1 : 2) / 128; s++)
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            const unsigned long long db = dtb + ((s * SLAB_B + kk * 32) >> 4);
#pragma unroll
            for (int i = 0; i < WG_MB; i++) {
                const unsigned long long da = dta + ((s * SLAB_A + i * 64 * 128 + kk * 32) >> 4);
                if (E4M3) wgmma_64xNx32_e4m3<WN>(d[i], da, db, keep || s + kk > 0);
                else wgmma_64xNx16<WN>(d[i], da, db);
            }
        }
    wgmma_commit();
}

/* The same tile on Hopper's warpgroup MMA. Operands are staged by cp.async
 * straight into wgmma's 128-byte-swizzled K-major layout (rows of 64
 * elements; the A rows are gathered by pair, which TMA cannot do), and each
 * warpgroup multiplies its 64-row blocks by its column slice from shared
 * memory without going through registers. One group of MMAs stays in
 * flight while the next stage is waited for; a stage is refilled only after
 * every warpgroup's MMAs that read it have completed. */
template <int MODE> MT_DEVICE void moe_gemm_tile_wg(int pid, const gemm_args &ga)
{
    constexpr int NB = 2 * BLOCK_SIZE_N; /* B rows: gate and up (MODE 1), or GEMM 2's wide tile */
    constexpr int SLAB_A = BLOCK_SIZE_M * 128, SLAB_B = NB * 128; /* bytes of one 64-wide k slab */
    constexpr int A_BYTES = SLAB_A * (BLOCK_SIZE_K / 64), STAGE = A_BYTES + SLAB_B * (BLOCK_SIZE_K / 64);
    /* one MMA of width 2 * WG_TN: MODE 1 the warpgroup's gate columns then
     * its up columns (tile_gather stages B that way), MODE 2 its columns of
     * the wide tile; OUT the output columns per warpgroup */
    constexpr int WN = 2 * WG_TN, NACC = WN / 2, OUT = MODE == 1 ? WG_TN : WN;
    extern __shared__ __align__(16) h16 smem[];
    /* the swizzle is a function of the address: atoms start at 1,024 bytes
     * (the host adds that much slack) */
    const u32 base = (mt_cvta_shared(smem) + 1023u) & ~1023u;

    tile_pos t;
    if (!tile_begin<MODE>(pid, ga, &t)) return;
    const int n_out = ga.n_out, num_pairs = ga.num_pairs, n0 = t.n0;
    const h16 *We = t.We;
    const int *rows = t.rows;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wgm = (warp >> 2) / WG_N, wgn = (warp >> 2) % WG_N;
    const int ktiles = t.kt1 - t.kt0;

    tile_gather<MODE, 1> g;
    g.init(rows, num_pairs, ga.a_div, ga.k_red, n0, n_out);
    auto load = [&](int stage, int kt) {
        g.copy(base + stage * STAGE, base + stage * STAGE + A_BYTES, ga.A, We, t.kt0 + kt, t.kt1);
    };

    float acc[WG_MB][NACC];
#pragma unroll
    for (int i = 0; i < WG_MB; i++)
#pragma unroll
        for (int q = 0; q < NACC; q++) {
            acc[i][q] = 0.f;
            wgmma_pin(acc[i][q]);
        }

#pragma unroll
    for (int s = 0; s < NUM_STAGES - 1; s++) {
        load(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<NUM_STAGES - 2>();
        fence_proxy_async();
        __syncthreads();
        wg_mmas<WN, false, SLAB_A, SLAB_B>(acc, base + (kt % NUM_STAGES) * STAGE, wgm * WG_TM * 128,
                                           A_BYTES + wgn * WN * 128, 1);
        wgmma_wait<1>(); /* this warpgroup's MMAs of kt - 1 are done */
        __syncthreads(); /* and every warpgroup's: their stage may be refilled */
        load((kt + NUM_STAGES - 1) % NUM_STAGES, kt + NUM_STAGES - 1);
        cp_async_commit();
    }
    wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < WG_MB; i++)
#pragma unroll
        for (int q = 0; q < NACC; q++) wgmma_pin(acc[i][q]);
    cp_async_wait<0>();
    if (!splitk_reduce<WG_MB * NACC>(&acc[0][0], ga, t)) return;

    /* d[4j + i]: row 16 * warp + lane / 4 + 8 * (i / 2), column 8j + 2 *
     * (lane % 4) + i % 2 of each 64-row block */
#pragma unroll
    for (int i = 0; i < WG_MB; i++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int r = wgm * WG_TM + i * 64 + (warp & 3) * 16 + (lane >> 2) + half * 8;
            int p = rows[r];
            if (p >= num_pairs) continue;
            float w = MODE == 2 ? ga.topk_w[p] : 1.f;
#pragma unroll
            for (int j = 0; j < OUT / 8; j++) {
                int col = n0 + wgn * OUT + j * 8 + (lane & 3) * 2;
                if (col >= n_out) continue;
                /* MODE 1: the up value of a gate column is WG_TN columns on */
                const float *g = acc[i] + j * 4 + half * 2, *u = g + (MODE == 1 ? WG_TN / 2 : 0);
                store2<MODE>(ga.C, p, col, n_out, w, g[0], g[1], u[0], u[1]);
            }
        }
    }
}
#endif

/* The grid walks the tiles in launch order. With one CTA per tile (NUM_SM
 * 0) each CTA takes one; with a persistent grid (NUM_SM CTAs) fewer,
 * longer-lived CTAs keep the pipeline warm across tiles and skip the
 * launch cost of empty ones. The host picks the grid size. */
template <int MODE> MT_DEVICE void moe_gemm(const gemm_args &g)
{
    const int tiles = g.num_pid_m * ((g.n_out + TILE_N(MODE) - 1) / TILE_N(MODE)) * g.splits;
    for (int pid = blockIdx.x; pid < tiles; pid += gridDim.x) {
#if USE_WGMMA
        moe_gemm_tile_wg<MODE>(pid, g);
#else
        moe_gemm_tile<MODE>(pid, g);
#endif
        if (pid + (int)gridDim.x < tiles) __syncthreads(); /* the next tile's prefetch overwrites shared memory */
    }
}

/* an fp8 module has its own GEMMs (below): these would only cost compile time */
#if !MT_FP8
MT_KERNEL void __launch_bounds__(THREADS) MT_WAVES_HINT moe_gemm1(const MT_GRID_CONSTANT gemm_args g) { moe_gemm<1>(g); }
MT_KERNEL void __launch_bounds__(THREADS) MT_WAVES_HINT moe_gemm2(const MT_GRID_CONSTANT gemm_args g) { moe_gemm<2>(g); }
#endif

/* ---- the small-batch path: no alignment, no tiles ----
 * When the experts hold a row or two each (decode), the grouped GEMMs'
 * tiles are mostly padding and one CTA per tile streams its weights at
 * about half of HBM's bandwidth (bench/results/2026-11-23-h100-ncu: Qwen3
 * M = 1 GEMM 1 at 48 % of DRAM peak, 96 CTAs). Here a warp computes whole
 * dot products of one pair's input row with two adjacent weight columns,
 * 16 bytes per lane, GV_U chunks of every row in flight at once; a CTA
 * covers GV_CC = BLOCK_SIZE_N / 16 columns (BLOCK_SIZE_N is this path's
 * width knob), its warps split the reduction when they outnumber the
 * column pairs. moe_gemv2 also adds a token's topk slots, so the pipeline
 * is two kernels: no align, no combine (their fixed cost is a quarter of
 * the M = 1 rows' time). */
#define GV_U 4
#define GV_CC (BLOCK_SIZE_N / 16)
#define GV_CP (GV_CC / 2 > 0 ? GV_CC / 2 : 1)               /* column pairs per CTA */
#define GV_PW (GV_CP < NUM_WARPS ? GV_CP : NUM_WARPS)       /* column pairs at once */
#define GV_SL (NUM_WARPS / GV_PW)                           /* warps per column pair */
#define GV_MAX_TOPK 64

MT_DEVICE void gv_fma8(float &acc, uint4 a, uint4 b)
{
    const u32 x[4] = {a.x, a.y, a.z, a.w}, y[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        acc = fmaf(h2f((h16)(x[i] & 0xffffu)), h2f((h16)(y[i] & 0xffffu)), acc);
        acc = fmaf(h2f((h16)(x[i] >> 16)), h2f((h16)(y[i] >> 16)), acc);
    }
}

/* sums of the warps of a column pair (each holding R partial sums in lane
 * 0 after its butterfly), in a fixed order: deterministic */
template <int R> MT_DEVICE bool gv_reduce(float (&a)[R], float (*red)[R], int warp, int lane)
{
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) a[r] += mt_shfl_xor(a[r], o);
    if (GV_SL == 1) return lane == 0;
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < R; r++) red[warp][r] = a[r];
    __syncthreads();
    bool mine = lane == 0 && warp < GV_PW;
#pragma unroll
    for (int r = 0; r < R; r++) {
        a[r] = 0.f;
        for (int sl = 0; mine && sl < GV_SL; sl++) a[r] += red[warp + sl * GV_PW][r];
    }
    __syncthreads(); /* red is rewritten by the next columns */
    return mine;
}

/* act[p, n] = silu(x[p / topk] . w1[e, n]) * (x[p / topk] . w1[e, N + n]);
 * grid (column groups of GV_CC, pairs) */
MT_KERNEL void __launch_bounds__(THREADS, 1) moe_gemv1(const h16 *__restrict__ x, const h16 *__restrict__ w1,
                                                    const int *__restrict__ ids, h16 *__restrict__ act, int topk,
                                                    int N, int K, int rows_fast)
{
    __shared__ float red[NUM_WARPS][4];
    /* moe_gemv2 may be placed as this grid's last blocks run: it fetches its
     * weights meanwhile and waits for act */
    mt_grid_dependents();
    /* rows_fast: the grid's x runs over the pairs, so the pairs of one
     * column group run side by side and those that share an expert read
     * its rows from the L2 once fetched */
    const int p = rows_fast ? blockIdx.x : blockIdx.y, cg = rows_fast ? blockIdx.y : blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int pair = warp % GV_PW, sl = warp / GV_PW;
    const h16 *xr = x + (long)(p / topk) * K, *we = w1 + (long)ids[p] * 2 * N * K;
    /* every warp takes the same number of turns (the reduction's barriers);
     * columns past N only take part in them */
    for (int c0 = cg * GV_CC + 2 * pair; c0 < (cg + 1) * GV_CC; c0 += 2 * GV_PW) {
        const bool live = c0 < N;
        const h16 *rows[4] = {we + (long)c0 * K, we + (long)(c0 + 1) * K, we + (long)(N + c0) * K,
                              we + (long)(N + c0 + 1) * K};
        float a[4] = {0.f, 0.f, 0.f, 0.f};
        constexpr int STEP = GV_SL * 256; /* elements between a lane's chunks */
        int k = live ? (sl * 32 + lane) * 8 : K;
        /* whole steps: every load issued before any is used (no predicate,
         * which would let the compiler wait on each in turn) */
        for (; k + (GV_U - 1) * STEP < K; k += GV_U * STEP) {
            uint4 xv[GV_U], wv[4][GV_U];
#pragma unroll
            for (int u = 0; u < GV_U; u++) {
                xv[u] = *(const uint4 *)(xr + k + u * STEP);
#pragma unroll
                for (int r = 0; r < 4; r++) wv[r][u] = *(const uint4 *)(rows[r] + k + u * STEP);
            }
#pragma unroll
            for (int u = 0; u < GV_U; u++)
#pragma unroll
                for (int r = 0; r < 4; r++) gv_fma8(a[r], xv[u], wv[r][u]);
        }
        for (; k < K; k += STEP) {
            const uint4 xv = *(const uint4 *)(xr + k);
#pragma unroll
            for (int r = 0; r < 4; r++) gv_fma8(a[r], xv, *(const uint4 *)(rows[r] + k));
        }
        if (gv_reduce<4>(a, red, warp, lane) && live) store2<1>(act, p, c0, N, 1.f, a[0], a[1], a[2], a[3]);
    }
}

/* out[t, k] = sum over slots s of w[t, s] * (act[t * topk + s] . w2[e_s, k]);
 * grid (column groups of GV_CC, tokens). The token's experts and weights
 * are read first into shared memory, so no weight load waits on them.
 * Launched to overlap moe_gemv1 (programmatic dependent launch, where
 * there is one): the first blocks (pf_blocks) ask the L2 for their weight
 * rows, which do not depend on moe_gemv1, and only then wait for act, so
 * that the end of moe_gemv1 and the start of this kernel overlap in DRAM. */
MT_KERNEL void __launch_bounds__(THREADS, 1) moe_gemv2(const h16 *__restrict__ act, const h16 *__restrict__ w2,
                                                    const int *__restrict__ ids, const float *__restrict__ tw,
                                                    h16 *__restrict__ out, int topk, int N, int K, int rows_fast,
                                                    int pf_blocks)
{
    __shared__ float red[NUM_WARPS][2];
    __shared__ long se[GV_MAX_TOPK];
    __shared__ float sw[GV_MAX_TOPK];
    const int t = rows_fast ? blockIdx.x : blockIdx.y, cg = rows_fast ? blockIdx.y : blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int pair = warp % GV_PW, sl = warp / GV_PW;
    for (int s = threadIdx.x; s < topk; s += THREADS) {
        se[s] = (long)ids[(long)t * topk + s] * K * N;
        sw[s] = tw[(long)t * topk + s];
    }
    __syncthreads();
    /* the block's rows of w2, topk x GV_CC of N elements, where the host
     * counts the block among those that can overlap moe_gemv1 (the first
     * placed: x runs fastest) */
    if ((int)(blockIdx.y * gridDim.x + blockIdx.x) < pf_blocks)
        for (int i = threadIdx.x; i < topk * GV_CC; i += THREADS) {
            const int c = cg * GV_CC + i % GV_CC;
            if (c < K) mt_prefetch_l2(w2 + se[i / GV_CC] + (long)c * N, (unsigned)N * 2u);
        }
    mt_grid_wait();
    const int nch = N / 8, items = topk * nch;
    const h16 *ar = act + (long)t * topk * N;
    for (int c0 = cg * GV_CC + 2 * pair; c0 < (cg + 1) * GV_CC; c0 += 2 * GV_PW) {
        const bool live = c0 < K;
        float a[2] = {0.f, 0.f};
        constexpr int STEP = GV_SL * 32;
        /* item j: chunk j % nch of slot j / nch; whole steps first, as in
         * moe_gemv1 */
        int j = live ? sl * 32 + lane : items;
        for (; j + (GV_U - 1) * STEP < items; j += GV_U * STEP) {
            uint4 av[GV_U], w0[GV_U], w1v[GV_U];
            float ws[GV_U];
#pragma unroll
            for (int u = 0; u < GV_U; u++) {
                const int jj = j + u * STEP, s = jj / nch, c = jj - s * nch;
                const h16 *wr = w2 + se[s] + (long)c0 * N + c * 8;
                ws[u] = sw[s];
                av[u] = *(const uint4 *)(ar + (long)s * N + c * 8);
                w0[u] = *(const uint4 *)wr;
                w1v[u] = *(const uint4 *)(wr + N);
            }
#pragma unroll
            for (int u = 0; u < GV_U; u++) {
                float d0 = 0.f, d1 = 0.f;
                gv_fma8(d0, av[u], w0[u]);
                gv_fma8(d1, av[u], w1v[u]);
                a[0] = fmaf(ws[u], d0, a[0]);
                a[1] = fmaf(ws[u], d1, a[1]);
            }
        }
        for (; j < items; j += STEP) {
            const int s = j / nch, c = j - s * nch;
            const h16 *wr = w2 + se[s] + (long)c0 * N + c * 8;
            const uint4 av = *(const uint4 *)(ar + (long)s * N + c * 8);
            float d0 = 0.f, d1 = 0.f;
            gv_fma8(d0, av, *(const uint4 *)wr);
            gv_fma8(d1, av, *(const uint4 *)(wr + N));
            a[0] = fmaf(sw[s], d0, a[0]);
            a[1] = fmaf(sw[s], d1, a[1]);
        }
        if (gv_reduce<2>(a, red, warp, lane) && live)
            *(u32 *)(out + (long)t * K + c0) = (u32)f2h(a[0]) | ((u32)f2h(a[1]) << 16);
    }
}

/* out[t, k] = sum over slots, 8 elements (16 bytes) per thread */
MT_KERNEL void moe_combine(const h16 *__restrict__ out2, h16 *__restrict__ out, int M, int topk, int K)
{
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    long per_row = K / 8;
    if (i >= (long)M * per_row) return;
    long t = i / per_row, k = (i % per_row) * 8;
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int q = 0; q < topk; q++) {
        uint4 v = *(const uint4 *)(out2 + ((t * topk + q) * K + k));
        const h16 *h = (const h16 *)&v;
#pragma unroll
        for (int l = 0; l < 8; l++) s[l] += h2f(h[l]);
    }
    uint4 o;
    h16 *oh = (h16 *)&o;
#pragma unroll
    for (int l = 0; l < 8; l++) oh[l] = f2h(s[l]);
    *(uint4 *)(out + t * K + k) = o;
}

#if MT_FP8
/* ---- fp8 w8a8 (MT_FP8 1: per-tensor or per-channel scales, applied in
 * the epilogue; 2: block scales, applied as each k tile ends) ----
 * The same alignment, launch order and combine as bf16; the activations
 * are quantised by fp8_quant_rows (x before GEMM 1, the bf16 intermediate
 * before GEMM 2) as common/fp8.c quantises them, and the GEMMs multiply
 * e4m3 tiles with mma.sync m16n8k32 (sm_89 and later). Scale layouts as
 * include/moetune/moetune.h's mt_quant states them. */
#define F8_SROW (BLOCK_SIZE_K + 16) /* bytes per staged row: 16 of padding, no ldmatrix bank conflicts */
#define F8_KCH (BLOCK_SIZE_K / 16)  /* 16-byte chunks per staged row */
static_assert(BLOCK_SIZE_K % 32 == 0, "fp8 MMAs reduce 32 at a time");
static_assert(THREADS % F8_KCH == 0, "threads split into whole rows of chunks");

/* the scale of an absolute maximum, as common/fp8.c's mt_fp8_scale_of */
MT_DEVICE float f8_scale_of(float amax) { return fmaxf(amax, 1e-10f) / 448.f; }

/* n words zeroed, on the stream (the tensors' maxima before fp8_amax) */
MT_KERNEL void fp8_zero(unsigned *p, int n)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x) p[i] = 0u;
}

/* |x| over n bf16 values into *amax (float bits: non-negative floats order
 * as their bits), for a dynamic per-tensor scale; *amax zeroed before */
MT_KERNEL void fp8_amax(const h16 *__restrict__ in, long n, unsigned *__restrict__ amax)
{
    float m = 0.f;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        m = fmaxf(m, fabsf(h2f(in[i])));
    MT_UNROLL_SHFL
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, mt_shfl_xor(m, o));
    if ((threadIdx.x & 31) == 0) atomicMax(amax, __float_as_uint(m));
}

/* Row blockIdx.x of `in` (cols bf16 values, cols a multiple of 16)
 * quantised into q. Its scale: *fixed (static per tensor), else the
 * tensor's maximum *amax (dynamic per tensor; row 0 writes it to
 * scales[0] for the GEMM), else one per `group` columns, written to
 * scales[row][ceil(cols / group)]. 256 threads. */
MT_KERNEL void __launch_bounds__(256) fp8_quant_rows(const h16 *__restrict__ in, int cols, int group,
                                                     const float *__restrict__ fixed, const unsigned *__restrict__ amax,
                                                     unsigned char *__restrict__ q, float *__restrict__ scales)
{
    __shared__ float red[8];
    const long row = blockIdx.x;
    const h16 *x = in + row * cols;
    unsigned char *qr = q + row * cols;
    const bool one = fixed || amax;
    const float s1 = fixed ? *fixed : amax ? f8_scale_of(__uint_as_float(*amax)) : 0.f;
    const int g = one ? cols : group, ng = (cols + g - 1) / g;
    if (!fixed && amax && row == 0 && threadIdx.x == 0) scales[0] = s1;
    for (int gi = 0; gi < ng; gi++) {
        const int c0 = gi * g, c1 = min(cols, c0 + g);
        float s = s1;
        if (!one) {
            float m = 0.f;
            for (int c = c0 + (int)threadIdx.x; c < c1; c += 256) m = fmaxf(m, fabsf(h2f(x[c])));
            MT_UNROLL_SHFL
            for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, mt_shfl_xor(m, o));
            if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
            __syncthreads();
            m = red[0];
#pragma unroll
            for (int w = 1; w < 8; w++) m = fmaxf(m, red[w]);
            __syncthreads(); /* red is rewritten by the next group */
            s = f8_scale_of(m);
            if (threadIdx.x == 0) scales[row * ng + gi] = s;
        }
        /* two values at a time: the columns of a group are even in number
         * (cols and the group are multiples of 16) */
        for (int c = c0 + 2 * (int)threadIdx.x; c < c1; c += 512) {
            const unsigned short v = f2e4m3x2(__fdiv_rn(h2f(x[c]), s), __fdiv_rn(h2f(x[c + 1]), s));
            *(unsigned short *)(qr + c) = v;
        }
    }
}

/* The grouped scales of fp8_quant_rows (one per row and `group` columns,
 * group a multiple of 16 below cols) with a warp per group, rows x cols
 * values: the same scales and values. fp8_quant_rows gives a row one CTA
 * and walks its groups one after another, each a load, a reduction and two
 * barriers: a 7168-wide row in DeepSeek-V3's 1x128 groups is 56 such steps
 * on one SM, which at decode outlasts the GEMMs. Here the groups of every
 * row run side by side, 8 to a CTA of 256 threads, without barriers. */
MT_KERNEL void __launch_bounds__(256) fp8_quant_groups(const h16 *__restrict__ in, int rows, int cols, int group,
                                                       unsigned char *__restrict__ q, float *__restrict__ scales)
{
    const int ng = (cols + group - 1) / group, lane = threadIdx.x & 31;
    const long w = (long)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (w >= (long)rows * ng) return; /* (a whole warp: the shuffles below see all 32 lanes) */
    const long row = w / ng;
    const int gi = (int)(w - row * ng), c0 = gi * group, c1 = min(cols, c0 + group);
    const h16 *x = in + row * cols;
    unsigned char *qr = q + row * cols;
    /* two values a lane at a time: a group's columns are even in number */
    float m = 0.f;
    for (int c = c0 + 2 * lane; c < c1; c += 64) {
        const u32 v = *(const u32 *)(x + c);
        m = fmaxf(m, fmaxf(fabsf(h2f((h16)(v & 0xffffu))), fabsf(h2f((h16)(v >> 16)))));
    }
    MT_UNROLL_SHFL
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, mt_shfl_xor(m, o));
    const float s = f8_scale_of(m);
    if (lane == 0) scales[row * ng + gi] = s;
    for (int c = c0 + 2 * lane; c < c1; c += 64) {
        const u32 v = *(const u32 *)(x + c);
        *(unsigned short *)(qr + c) = f2e4m3x2(__fdiv_rn(h2f((h16)(v & 0xffffu)), s), __fdiv_rn(h2f((h16)(v >> 16)), s));
    }
}

/* One fp8 grouped GEMM: as gemm_args, with e4m3 operands and their scales.
 * MODE 1: A = quantised x (row of pair p is token p / a_div), W = w1,
 * C = act (bf16); MODE 2: A = quantised act (row p), W = w2, C = out2. */
struct f8_args {
    const unsigned char *A, *W;
    h16 *C;
    const int *sorted_ids, *expert_ids, *num_post;
    const float *topk_w;
    const float *a_scale, *w_scale;
    int num_pairs, a_div, n_out, k_red, num_pid_m, group_m;
    int channel;          /* MT_FP8 1: 0 per tensor, 1 per channel (weights) and token (activations) */
    int block_n, block_k; /* MT_FP8 2: the weights' block; activation groups are 1 x block_k */
};
static_assert(sizeof(f8_args) == 112, "the host's f8_args (kernels/cuda/moe_launch.c) has this layout");

/* the e4m3 tile of k tile kt into shared memory: A rows gathered by pair,
 * B rows the expert's (MODE 1 gate rows then up rows); 16 bytes a copy,
 * past k_red zero-filled */
template <int MODE>
MT_DEVICE void f8_copy(unsigned char *sa, unsigned char *sb, const f8_args &g, const unsigned char *We, const int *rows,
                       int n0, int kt)
{
    constexpr int NB = (MODE == 1 ? 2 : 1) * BLOCK_SIZE_N, RSTEP = THREADS / F8_KCH;
    const int kc = threadIdx.x % F8_KCH, r0 = threadIdx.x / F8_KCH, k = kt * BLOCK_SIZE_K + kc * 16;
    const bool kin = k < g.k_red;
    for (int r = r0; r < BLOCK_SIZE_M; r += RSTEP) {
        const int p = rows[r];
        const bool ok = kin && p < g.num_pairs;
        cp_async16(mt_sptr_of(sa + r * F8_SROW + kc * 16), g.A + (ok ? (long)(p / g.a_div) * g.k_red + k : 0), ok);
    }
    for (int r = r0; r < NB; r += RSTEP) {
        const int col = n0 + r % BLOCK_SIZE_N, up = MODE == 1 && r >= BLOCK_SIZE_N;
        const bool ok = kin && col < g.n_out;
        cp_async16(mt_sptr_of(sb + r * F8_SROW + kc * 16), We + (ok ? (long)(up * g.n_out + col) * g.k_red + k : 0), ok);
    }
}

template <int NH> MT_DEVICE void f8_clear(float (&a)[NH][MT_TILES][NT_TILES][4])
{
#pragma unroll
    for (int h = 0; h < NH; h++)
#pragma unroll
        for (int i = 0; i < MT_TILES; i++)
#pragma unroll
            for (int j = 0; j < NT_TILES; j++)
#pragma unroll
                for (int q = 0; q < 4; q++) a[h][i][j][q] = 0.f;
}

template <int MODE> MT_DEVICE void moe_fp8_tile(int pid, const f8_args &ga)
{
    constexpr int NB = (MODE == 1 ? 2 : 1) * BLOCK_SIZE_N, NH = MODE == 1 ? 2 : 1;
    extern __shared__ __align__(16) unsigned char smem8[];
    unsigned char *sa = smem8, *sb = smem8 + NUM_STAGES * BLOCK_SIZE_M * F8_SROW;
    const int num_pid_n = (ga.n_out + BLOCK_SIZE_N - 1) / BLOCK_SIZE_N;
    int pid_m, pid_n;
    tile_coords(pid, num_pid_n, ga.num_pid_m, ga.group_m < 1 ? 1 : ga.group_m, &pid_m, &pid_n);
    if (pid_m * BLOCK_SIZE_M >= *ga.num_post) return;
    const int n0 = pid_n * BLOCK_SIZE_N, e = ga.expert_ids[pid_m], *rows = ga.sorted_ids + pid_m * BLOCK_SIZE_M;
    const int wrows = NH * ga.n_out; /* rows of an expert's weight matrix */
    const unsigned char *We = ga.W + (long)e * wrows * ga.k_red;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int ktiles = (ga.k_red + BLOCK_SIZE_K - 1) / BLOCK_SIZE_K;

    /* acc: the sums (MODE 1: gate, then up); MT_FP8 2 adds each k tile's
     * sums (part) with its scales, once per tile as the block scales
     * require */
    float acc[NH][MT_TILES][NT_TILES][4];
#if MT_FP8 == 2
    float part[NH][MT_TILES][NT_TILES][4];
#else
    auto &part = acc;
#endif
    f8_clear<NH>(acc);

#pragma unroll
    for (int s = 0; s < NUM_STAGES - 1; s++) {
        if (s < ktiles) f8_copy<MODE>(sa + s * BLOCK_SIZE_M * F8_SROW, sb + s * NB * F8_SROW, ga, We, rows, n0, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<NUM_STAGES - 2>();
        __syncthreads();
        {
            const int nk = kt + NUM_STAGES - 1, st = nk % NUM_STAGES;
            if (nk < ktiles) f8_copy<MODE>(sa + st * BLOCK_SIZE_M * F8_SROW, sb + st * NB * F8_SROW, ga, We, rows, n0, nk);
            cp_async_commit();
        }
        const unsigned char *ta = sa + (kt % NUM_STAGES) * BLOCK_SIZE_M * F8_SROW;
        const unsigned char *tb = sb + (kt % NUM_STAGES) * NB * F8_SROW;
#if MT_FP8 == 2
        f8_clear<NH>(part);
#endif
#pragma unroll
        for (int kk = 0; kk < BLOCK_SIZE_K; kk += 32) {
            u32 af[MT_TILES][4];
#pragma unroll
            for (int i = 0; i < MT_TILES; i++) {
                const int r = wm * WARP_TILE_M + i * 16 + (lane & 15);
                ldmatrix_x4(af[i], ta + r * F8_SROW + kk + (lane >> 4) * 16);
            }
#pragma unroll
            for (int h = 0; h < NH; h++)
#pragma unroll
                for (int j = 0; j < NT_TILES; j++) {
                    u32 bf[2];
                    const int r = h * BLOCK_SIZE_N + wn * WARP_TILE_N + j * 8 + (lane & 7);
                    ldmatrix_x2(bf, tb + r * F8_SROW + kk + ((lane >> 3) & 1) * 16);
#pragma unroll
                    for (int i = 0; i < MT_TILES; i++) mma16832_e4m3(part[h][i][j], af[i], bf);
                }
        }
#if MT_FP8 == 2
        /* this k tile lies in one scale block along k (the host has
         * block_k a multiple of BLOCK_SIZE_K): part times its row's
         * activation scale and its column's weight scale */
        const int kb = kt * BLOCK_SIZE_K / ga.block_k, ngk = (ga.k_red + ga.block_k - 1) / ga.block_k;
        const int nbw = (wrows + ga.block_n - 1) / ga.block_n;
#pragma unroll
        for (int i = 0; i < MT_TILES; i++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int p = rows[wm * WARP_TILE_M + i * 16 + (lane >> 2) + half * 8];
                const float sa_ = p < ga.num_pairs ? ga.a_scale[(long)(p / ga.a_div) * ngk + kb] : 0.f;
#pragma unroll
                for (int h = 0; h < NH; h++)
#pragma unroll
                    for (int j = 0; j < NT_TILES; j++) {
                        const int col = min(n0 + wn * WARP_TILE_N + j * 8 + (lane & 3) * 2, ga.n_out - 1);
                        const float s = sa_ * ga.w_scale[((long)e * nbw + (h * ga.n_out + col) / ga.block_n) * ngk + kb];
                        acc[h][i][j][half * 2] += part[h][i][j][half * 2] * s;
                        acc[h][i][j][half * 2 + 1] += part[h][i][j][half * 2 + 1] * s;
                    }
            }
#endif
    }
    cp_async_wait<0>();

    /* epilogue: rows lane/4 and lane/4+8 of each 16x8 tile, two adjacent
     * columns each (one scale block: block_n is even) */
#pragma unroll
    for (int i = 0; i < MT_TILES; i++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int p = rows[wm * WARP_TILE_M + i * 16 + (lane >> 2) + half * 8];
            if (p >= ga.num_pairs) continue;
            const float w = MODE == 2 ? ga.topk_w[p] : 1.f;
#if MT_FP8 == 1
            const float sa_ = ga.channel ? ga.a_scale[p / ga.a_div] : ga.a_scale[0];
#endif
#pragma unroll
            for (int j = 0; j < NT_TILES; j++) {
                const int col = n0 + wn * WARP_TILE_N + j * 8 + (lane & 3) * 2;
                if (col >= ga.n_out) continue;
                float v[NH][2];
#pragma unroll
                for (int h = 0; h < NH; h++) {
#if MT_FP8 == 1
                    const long wr = (long)e * wrows + h * ga.n_out + col;
                    const float s0 = sa_ * (ga.channel ? ga.w_scale[wr] : ga.w_scale[e]);
                    const float s1 = sa_ * (ga.channel ? ga.w_scale[wr + 1] : ga.w_scale[e]);
#else
                    const float s0 = 1.f, s1 = 1.f;
#endif
                    v[h][0] = acc[h][i][j][half * 2] * s0;
                    v[h][1] = acc[h][i][j][half * 2 + 1] * s1;
                }
                store2<MODE>(ga.C, p, col, ga.n_out, w, v[0][0], v[0][1], v[NH - 1][0], v[NH - 1][1]);
            }
        }
}

#if USE_WGMMA
/* The fp8 tile on Hopper's warpgroup MMA (e4m3, 32 deep an instruction).
 * Staged as the bf16 tile is (tile_gather in bytes: a 128-byte swizzle row
 * holds 128 e4m3 values, so the descriptors step through a row as bf16's
 * do), with GEMM 2's tile as wide as GEMM 1's.
 * Hopper's fp8 MMAs keep only about 13 bits of mantissa in the sums they
 * add to (SageAttention 2's and DeepSeek-V3's reports): summed over the
 * whole reduction they were 2.5 to 6 times further from the oracle than
 * mma.sync (H100, per-tensor scales, K = 512 to 1,024, 0.57 to 1.47 % of
 * relative error). So each k tile's MMAs write `part`, the first one
 * discarding its old value, and once they are done part is added to the
 * fp32 sums acc: MT_FP8 1 as it is (its scales are applied in the
 * epilogue), MT_FP8 2 times its row's activation scale and its column's
 * weight scale (BLOCK_SIZE_K is the 128-deep scale block), the promotion
 * once per scale block that block scales require. The scales are loaded
 * while the MMAs run, and the next stage's copies are under way by then. */
template <int MODE> MT_DEVICE void moe_fp8_tile_wg(int pid, const f8_args &ga)
{
    constexpr int NB = 2 * BLOCK_SIZE_N, SLABS = BLOCK_SIZE_K / 128; /* B rows; 128-byte slabs per k tile */
    constexpr int SLAB_A = BLOCK_SIZE_M * 128, SLAB_B = NB * 128;
    constexpr int A_BYTES = SLAB_A * SLABS, STAGE = A_BYTES + SLAB_B * SLABS;
    constexpr int WN = 2 * WG_TN, NACC = WN / 2, OUT = MODE == 1 ? WG_TN : WN;
    extern __shared__ __align__(16) unsigned char smem8[];
    const u32 base = (mt_cvta_shared(smem8) + 1023u) & ~1023u; /* swizzle atoms start at 1,024 bytes */

    const int num_pid_n = (ga.n_out + TILE_N(MODE) - 1) / TILE_N(MODE);
    int pid_m, pid_n;
    tile_coords(pid, num_pid_n, ga.num_pid_m, ga.group_m < 1 ? 1 : ga.group_m, &pid_m, &pid_n);
    if (pid_m * BLOCK_SIZE_M >= *ga.num_post) return;
    const int n0 = pid_n * TILE_N(MODE), e = ga.expert_ids[pid_m], *rows = ga.sorted_ids + pid_m * BLOCK_SIZE_M;
    const int wrows = (MODE == 1 ? 2 : 1) * ga.n_out; /* rows of an expert's weight matrix */
    const unsigned char *We = ga.W + (long)e * wrows * ga.k_red;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wgm = (warp >> 2) / WG_N, wgn = (warp >> 2) % WG_N;
    const int ktiles = (ga.k_red + BLOCK_SIZE_K - 1) / BLOCK_SIZE_K;

    tile_gather<MODE, 1, unsigned char> g;
    g.init(rows, ga.num_pairs, ga.a_div, ga.k_red, n0, ga.n_out);
    auto load = [&](int stage, int kt) {
        g.copy(base + stage * STAGE, base + stage * STAGE + A_BYTES, ga.A, We, kt, ktiles);
    };
    /* this thread's pairs: rows 16 * warp + lane / 4 (+ 8) of each 64-row block */
    int prow[WG_MB][2];
#pragma unroll
    for (int i = 0; i < WG_MB; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) prow[i][h] = rows[wgm * WG_TM + i * 64 + (warp & 3) * 16 + (lane >> 2) + h * 8];

    float acc[WG_MB][NACC], part[WG_MB][NACC];
#if MT_FP8 == 2
    const int ngk = (ga.k_red + ga.block_k - 1) / ga.block_k, nbw = (wrows + ga.block_n - 1) / ga.block_n;
    /* where this thread's rows' activation scales and its columns' weight
     * scales start (k block 0); a padding row's is -1 */
    int aidx[WG_MB][2], widx[NACC / 4];
#pragma unroll
    for (int i = 0; i < WG_MB; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) aidx[i][h] = prow[i][h] < ga.num_pairs ? prow[i][h] / ga.a_div * ngk : -1;
#pragma unroll
    for (int j = 0; j < NACC / 4; j++) {
        /* column group j: MODE 1 the warpgroup's gate columns, then its up
         * columns (the weight's rows n_out on); MODE 2 its columns */
        const int jj = MODE == 1 && j >= WG_TN / 8 ? j - WG_TN / 8 : j, up = MODE == 1 && j >= WG_TN / 8;
        const int col = min(n0 + wgn * (MODE == 1 ? WG_TN : WN) + jj * 8 + (lane & 3) * 2, ga.n_out - 1);
        widx[j] = (e * nbw + (up * ga.n_out + col) / ga.block_n) * ngk;
    }
#endif
#pragma unroll
    for (int i = 0; i < WG_MB; i++)
#pragma unroll
        for (int q = 0; q < NACC; q++) {
            acc[i][q] = 0.f;
            part[i][q] = 0.f;
            wgmma_pin(part[i][q]);
        }

#pragma unroll
    for (int s = 0; s < NUM_STAGES - 1; s++) {
        load(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<NUM_STAGES - 2>();
        fence_proxy_async();
        __syncthreads();
        /* the tile's first MMA discards part's old sums */
        wg_mmas<WN, true, SLAB_A, SLAB_B>(part, base + (kt % NUM_STAGES) * STAGE, wgm * WG_TM * 128,
                                          A_BYTES + wgn * WN * 128, 0);
        /* every warpgroup waited for its MMAs of kt - 1 before the barrier
         * above: their stage is free */
        load((kt + NUM_STAGES - 1) % NUM_STAGES, kt + NUM_STAGES - 1);
        cp_async_commit();
#if MT_FP8 == 2
        const int kb = kt * BLOCK_SIZE_K / ga.block_k;
        float as_[WG_MB][2], ws_[NACC / 4];
#pragma unroll
        for (int i = 0; i < WG_MB; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) as_[i][h] = aidx[i][h] >= 0 ? ga.a_scale[aidx[i][h] + kb] : 0.f;
#pragma unroll
        for (int j = 0; j < NACC / 4; j++) ws_[j] = ga.w_scale[widx[j] + kb];
#endif
        wgmma_wait<0>();
#pragma unroll
        for (int i = 0; i < WG_MB; i++)
#pragma unroll
            for (int q = 0; q < NACC; q++) {
                wgmma_pin(part[i][q]);
#if MT_FP8 == 2
                acc[i][q] += part[i][q] * (as_[i][(q >> 1) & 1] * ws_[q >> 2]);
#else
                acc[i][q] += part[i][q];
#endif
            }
    }
    wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < WG_MB; i++)
#pragma unroll
        for (int q = 0; q < NACC; q++) wgmma_pin(part[i][q]);
    cp_async_wait<0>();

    /* d[4j + i]: row 16 * warp + lane / 4 + 8 * (i / 2), column 8j + 2 *
     * (lane % 4) + i % 2 of each 64-row block */
#pragma unroll
    for (int i = 0; i < WG_MB; i++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int p = prow[i][half];
            if (p >= ga.num_pairs) continue;
            const float w = MODE == 2 ? ga.topk_w[p] : 1.f;
#if MT_FP8 == 1
            const float sa_ = ga.channel ? ga.a_scale[p / ga.a_div] : ga.a_scale[0];
#endif
#pragma unroll
            for (int j = 0; j < OUT / 8; j++) {
                const int col = n0 + wgn * OUT + j * 8 + (lane & 3) * 2;
                if (col >= ga.n_out) continue;
                /* MODE 1: the up value of a gate column is WG_TN columns on */
                const float *gv = acc[i] + j * 4 + half * 2, *uv = gv + (MODE == 1 ? WG_TN / 2 : 0);
#if MT_FP8 == 1
                const long wr = (long)e * wrows + col, wu = wr + (MODE == 1 ? ga.n_out : 0);
                const float sg0 = sa_ * (ga.channel ? ga.w_scale[wr] : ga.w_scale[e]);
                const float sg1 = sa_ * (ga.channel ? ga.w_scale[wr + 1] : ga.w_scale[e]);
                const float su0 = sa_ * (ga.channel ? ga.w_scale[wu] : ga.w_scale[e]);
                const float su1 = sa_ * (ga.channel ? ga.w_scale[wu + 1] : ga.w_scale[e]);
#else
                const float sg0 = 1.f, sg1 = 1.f, su0 = 1.f, su1 = 1.f;
#endif
                store2<MODE>(ga.C, p, col, ga.n_out, w, gv[0] * sg0, gv[1] * sg1, uv[0] * su0, uv[1] * su1);
            }
        }
}
#endif

template <int MODE> MT_DEVICE void moe_fp8_gemm(const f8_args &g)
{
    const int tiles = g.num_pid_m * ((g.n_out + TILE_N(MODE) - 1) / TILE_N(MODE));
    for (int pid = blockIdx.x; pid < tiles; pid += gridDim.x) {
#if USE_WGMMA
        moe_fp8_tile_wg<MODE>(pid, g);
#else
        moe_fp8_tile<MODE>(pid, g);
#endif
        if (pid + (int)gridDim.x < tiles) __syncthreads(); /* the next tile's prefetch overwrites shared memory */
    }
}
MT_KERNEL void __launch_bounds__(THREADS) moe_fp8_gemm1(const MT_GRID_CONSTANT f8_args g) { moe_fp8_gemm<1>(g); }
MT_KERNEL void __launch_bounds__(THREADS) moe_fp8_gemm2(const MT_GRID_CONSTANT f8_args g) { moe_fp8_gemm<2>(g); }

/* ---- fp8's small-batch path: moe_gemv1 and moe_gemv2 (above) on e4m3
 * operands, 16 to a 16-byte load, each chunk's sum times its activation
 * and weight scales (a chunk lies inside one scale block: block_k is a
 * multiple of 16). scheme 0 per tensor, 1 per channel and token, 2
 * blocks; the scale layouts as f8_args'. ---- */

/* four e4m3 (a 32-bit word) to floats, through f16x2 (sm_89 and later);
 * x and w are decoded alike, so the pairing of their elements is kept */
MT_DEVICE void e4m3x4_to_f32(u32 v, float *f)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    u32 lo, hi;
    asm("{.reg .b16 a, b;\n mov.b32 {a, b}, %2;\n cvt.rn.f16x2.e4m3x2 %0, a;\n cvt.rn.f16x2.e4m3x2 %1, b;}"
        : "=r"(lo), "=r"(hi)
        : "r"(v));
    const unsigned short h[4] = {(unsigned short)(lo & 0xffffu), (unsigned short)(lo >> 16),
                                 (unsigned short)(hi & 0xffffu), (unsigned short)(hi >> 16)};
#pragma unroll
    for (int i = 0; i < 4; i++) asm("cvt.f32.f16 %0, %1;" : "=f"(f[i]) : "h"(h[i]));
#else
    (void)v;
    f[0] = f[1] = f[2] = f[3] = 0.f;
    __trap();
#endif
}

/* 16 e4m3 values to floats, in the order e4m3x4_to_f32 gives them */
MT_DEVICE void e4m3x16_to_f32(uint4 a, float *f)
{
    e4m3x4_to_f32(a.x, f);
    e4m3x4_to_f32(a.y, f + 4);
    e4m3x4_to_f32(a.z, f + 8);
    e4m3x4_to_f32(a.w, f + 12);
}

/* the dot product of 16 decoded values with 16 e4m3 ones: the activations
 * are decoded once for all the weight rows they meet */
MT_DEVICE float f8_dot16(const float *fa, uint4 b)
{
    float fb[16], s = 0.f;
    e4m3x16_to_f32(b, fb);
#pragma unroll
    for (int j = 0; j < 16; j++) s = fmaf(fa[j], fb[j], s);
    return s;
}

/* the scale of weight row r of expert e at element k: R rows of C */
MT_DEVICE float f8_wscale(const float *ws, int scheme, long e, int r, int k, int R, int C, int bn, int bk)
{
    if (scheme == 0) return ws[e];
    if (scheme == 1) return ws[e * R + r];
    return ws[(e * ((R + bn - 1) / bn) + r / bn) * ((C + bk - 1) / bk) + k / bk];
}
/* the scale of activation row r (cols wide) at element k */
MT_DEVICE float f8_ascale(const float *as, int scheme, long r, int k, int cols, int bk)
{
    if (scheme == 0) return as[0];
    if (scheme == 1) return as[r];
    return as[r * ((cols + bk - 1) / bk) + k / bk];
}

/* The GEMV paths take a scale as base[kb]: the row's base index, computed
 * once per row, and the k block of the chunk (0 where the scale is the
 * same along k). So the inner loops divide once per chunk at most, where
 * f8_wscale and f8_ascale would divide four times per row. */
MT_DEVICE long f8_wbase(int scheme, long e, int r, int R, int C, int bn, int bk)
{
    if (scheme == 0) return e;
    if (scheme == 1) return e * R + r;
    return (e * ((R + bn - 1) / bn) + r / bn) * ((C + bk - 1) / bk);
}
MT_DEVICE long f8_abase(int scheme, long r, int cols, int bk)
{
    if (scheme == 0) return 0;
    if (scheme == 1) return r;
    return r * ((cols + bk - 1) / bk);
}
MT_DEVICE int f8_kblock(int scheme, int k, int bk) { return scheme == 2 ? k / bk : 0; }

/* act[p, n] as moe_gemv1, from quantised x (xq, xs) and w1 */
MT_KERNEL void __launch_bounds__(THREADS, 1) moe_gemv1_fp8(const unsigned char *__restrict__ xq, const float *__restrict__ xs,
                                                        const unsigned char *__restrict__ w1, const float *__restrict__ w1s,
                                                        const int *__restrict__ ids, h16 *__restrict__ act, int topk, int N,
                                                        int K, int rows_fast, int scheme, int bn, int bk)
{
    __shared__ float red[NUM_WARPS][4];
    const int p = rows_fast ? blockIdx.x : blockIdx.y, cg = rows_fast ? blockIdx.y : blockIdx.x, lane = threadIdx.x & 31,
              warp = threadIdx.x >> 5;
    const int pair = warp % GV_PW, sl = warp / GV_PW, t = p / topk;
    const long e = ids[p];
    const unsigned char *xr = xq + (long)t * K, *we = w1 + e * 2 * N * (long)K;
    const long xb = f8_abase(scheme, t, K, bk);
    for (int c0 = cg * GV_CC + 2 * pair; c0 < (cg + 1) * GV_CC; c0 += 2 * GV_PW) {
        const bool live = c0 < N;
        const int rws[4] = {c0, c0 + 1, N + c0, N + c0 + 1};
        long wb[4];
#pragma unroll
        for (int r = 0; r < 4; r++) wb[r] = f8_wbase(scheme, e, rws[r], 2 * N, K, bn, bk);
        float a[4] = {0.f, 0.f, 0.f, 0.f};
        constexpr int STEP = GV_SL * 32 * 16; /* bytes between a lane's chunks */
        /* as moe_gemv1: whole steps of GV_U chunks of every row, every load
         * issued before any is used, then the rest a chunk at a time */
        int k = live ? (sl * 32 + lane) * 16 : K;
        for (; k + (GV_U - 1) * STEP < K; k += GV_U * STEP) {
            uint4 xv[GV_U], wv[4][GV_U];
#pragma unroll
            for (int u = 0; u < GV_U; u++) {
                xv[u] = *(const uint4 *)(xr + k + u * STEP);
#pragma unroll
                for (int r = 0; r < 4; r++) wv[r][u] = *(const uint4 *)(we + (long)rws[r] * K + k + u * STEP);
            }
#pragma unroll
            for (int u = 0; u < GV_U; u++) {
                float xf[16];
                e4m3x16_to_f32(xv[u], xf);
                const int kb = f8_kblock(scheme, k + u * STEP, bk);
                const float sx = xs[xb + kb];
#pragma unroll
                for (int r = 0; r < 4; r++) a[r] = fmaf(f8_dot16(xf, wv[r][u]), sx * w1s[wb[r] + kb], a[r]);
            }
        }
        for (; k < K; k += STEP) {
            float xf[16];
            uint4 wv[4];
#pragma unroll
            for (int r = 0; r < 4; r++) wv[r] = *(const uint4 *)(we + (long)rws[r] * K + k);
            e4m3x16_to_f32(*(const uint4 *)(xr + k), xf);
            const int kb = f8_kblock(scheme, k, bk);
            const float sx = xs[xb + kb];
#pragma unroll
            for (int r = 0; r < 4; r++) a[r] = fmaf(f8_dot16(xf, wv[r]), sx * w1s[wb[r] + kb], a[r]);
        }
        if (gv_reduce<4>(a, red, warp, lane) && live) store2<1>(act, p, c0, N, 1.f, a[0], a[1], a[2], a[3]);
    }
}

/* out[t, k] as moe_gemv2 (the combine fused), from the quantised
 * intermediate (aq, as) and w2 */
MT_KERNEL void __launch_bounds__(THREADS, 1) moe_gemv2_fp8(const unsigned char *__restrict__ aq, const float *__restrict__ as,
                                                        const unsigned char *__restrict__ w2, const float *__restrict__ w2s,
                                                        const int *__restrict__ ids, const float *__restrict__ tw,
                                                        h16 *__restrict__ out, int topk, int N, int K, int rows_fast,
                                                        int scheme, int bn, int bk)
{
    __shared__ float red[NUM_WARPS][2];
    __shared__ long se[GV_MAX_TOPK], sab[GV_MAX_TOPK], swb[GV_MAX_TOPK];
    __shared__ float sw_[GV_MAX_TOPK];
    const int t = rows_fast ? blockIdx.x : blockIdx.y, cg = rows_fast ? blockIdx.y : blockIdx.x, lane = threadIdx.x & 31,
              warp = threadIdx.x >> 5;
    const int pair = warp % GV_PW, sl = warp / GV_PW;
    /* per slot: its expert, routing weight and scale bases (a scale base is
     * the expert's, f8_wbase of row 0, plus the row's, f8_wbase of expert 0) */
    for (int s = threadIdx.x; s < topk; s += THREADS) {
        se[s] = ids[(long)t * topk + s];
        sw_[s] = tw[(long)t * topk + s];
        sab[s] = f8_abase(scheme, (long)t * topk + s, N, bk);
        swb[s] = f8_wbase(scheme, se[s], 0, K, N, bn, bk);
    }
    __syncthreads();
    const int nch = N / 16, items = topk * nch;
    for (int c0 = cg * GV_CC + 2 * pair; c0 < (cg + 1) * GV_CC; c0 += 2 * GV_PW) {
        const bool live = c0 < K;
        const long ro0 = f8_wbase(scheme, 0, c0, K, N, bn, bk), ro1 = f8_wbase(scheme, 0, c0 + 1, K, N, bn, bk);
        float a[2] = {0.f, 0.f};
        constexpr int STEP = GV_SL * 32;
        /* item j: chunk j % nch of slot j / nch; whole steps of GV_U items,
         * every load issued before any is used, then the rest */
        int j = live ? sl * 32 + lane : items;
        for (; j + (GV_U - 1) * STEP < items; j += GV_U * STEP) {
            uint4 av[GV_U], w0[GV_U], w1[GV_U];
#pragma unroll
            for (int u = 0; u < GV_U; u++) {
                const int jj = j + u * STEP, s = jj / nch, k = (jj - s * nch) * 16;
                const unsigned char *wr = w2 + (se[s] * K + c0) * (long)N + k;
                w0[u] = *(const uint4 *)wr;
                w1[u] = *(const uint4 *)(wr + N);
                av[u] = *(const uint4 *)(aq + ((long)t * topk + s) * N + k);
            }
#pragma unroll
            for (int u = 0; u < GV_U; u++) {
                const int jj = j + u * STEP, s = jj / nch, kb = f8_kblock(scheme, (jj - s * nch) * 16, bk);
                float af[16];
                e4m3x16_to_f32(av[u], af);
                const float sx = as[sab[s] + kb] * sw_[s];
                a[0] = fmaf(f8_dot16(af, w0[u]), sx * w2s[swb[s] + ro0 + kb], a[0]);
                a[1] = fmaf(f8_dot16(af, w1[u]), sx * w2s[swb[s] + ro1 + kb], a[1]);
            }
        }
        for (; j < items; j += STEP) {
            const int s = j / nch, k = (j - s * nch) * 16, kb = f8_kblock(scheme, k, bk);
            const long e = se[s], row = (long)t * topk + s;
            const unsigned char *wr = w2 + (e * K + c0) * (long)N + k;
            const uint4 w0 = *(const uint4 *)wr, w1 = *(const uint4 *)(wr + N);
            float af[16];
            e4m3x16_to_f32(*(const uint4 *)(aq + row * N + k), af);
            const float sx = as[sab[s] + kb] * sw_[s];
            a[0] = fmaf(f8_dot16(af, w0), sx * w2s[swb[s] + ro0 + kb], a[0]);
            a[1] = fmaf(f8_dot16(af, w1), sx * w2s[swb[s] + ro1 + kb], a[1]);
        }
        if (gv_reduce<2>(a, red, warp, lane) && live)
            *(u32 *)(out + (long)t * K + c0) = (u32)f2h(a[0]) | ((u32)f2h(a[1]) << 16);
    }
}

/* ---- the fp8 oracle on the device, for the bench: plain loops in double
 * over dequantised values, one warp per output (as ref_act and ref_out),
 * the scales found as the GEMV path finds them (bench/cuda_fp8_check checks
 * both against the CPU's oracle, which indexes its own).
 * The activations come quantised by fp8_quant_rows (x) and by the host
 * (the intermediate, with common/fp8.c's rules). ---- */

MT_DEVICE double e4m3_to_double(unsigned char q)
{
    const int e = (q >> 3) & 15, m = q & 7;
    const double v = e ? ldexp(1.0 + m / 8.0, e - 7) : ldexp(m / 8.0, -6);
    return (q & 0x80) ? -v : v;
}

/* act[(r, slot), j] = silu(g) * u for rows t0 .. t0 + R - 1 in double;
 * scheme 0 per tensor, 1 per channel/token, 2 blocks */
MT_KERNEL void ref_act_fp8(const unsigned char *xq, const float *xs, const unsigned char *w1, const float *w1s,
                           const int *ids, double *act, int t0, int R, int topk, int N, int K, int scheme, int bn, int bk)
{
    long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (wid >= (long)R * topk * N) return;
    int j = (int)(wid % N), sl = (int)((wid / N) % topk), t = t0 + (int)(wid / ((long)N * topk));
    long e = ids[(long)t * topk + sl];
    const unsigned char *xr = xq + (long)t * K, *g = w1 + (e * 2 * N + j) * (long)K, *u = w1 + (e * 2 * N + N + j) * (long)K;
    double sg = 0, su = 0;
    for (int k = lane; k < K; k += 32) {
        double xv = e4m3_to_double(xr[k]) * f8_ascale(xs, scheme, t, k, K, bk);
        sg += xv * e4m3_to_double(g[k]) * f8_wscale(w1s, scheme, e, j, k, 2 * N, K, bn, bk);
        su += xv * e4m3_to_double(u[k]) * f8_wscale(w1s, scheme, e, N + j, k, 2 * N, K, bn, bk);
    }
    for (int o = 16; o; o >>= 1) {
        sg += mt_shfl_down(sg, o);
        su += mt_shfl_down(su, o);
    }
    if (lane == 0) act[wid] = sg / (1.0 + exp(-sg)) * su;
}

/* out[r, k] = sum over slots of w * (act . w2[e, k]); act holds the
 * intermediate already quantised and dequantised (by the host) */
MT_KERNEL void ref_out_fp8(const double *act, const unsigned char *w2, const float *w2s, const int *ids, const float *tw,
                           double *out, int t0, int R, int topk, int N, int K, int scheme, int bn, int bk)
{
    long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (wid >= (long)R * K) return;
    int k = (int)(wid % K), r = (int)(wid / K);
    double total = 0;
    for (int sl = 0; sl < topk; sl++) {
        long e = ids[(long)(t0 + r) * topk + sl];
        const double *a = act + ((long)r * topk + sl) * N;
        const unsigned char *w = w2 + (e * K + k) * (long)N;
        double acc = 0;
        for (int j = lane; j < N; j += 32) acc += a[j] * e4m3_to_double(w[j]) * f8_wscale(w2s, scheme, e, k, j, K, N, bn, bk);
        for (int o = 16; o; o >>= 1) acc += mt_shfl_down(acc, o);
        total += acc * (double)tw[(long)(t0 + r) * topk + sl];
    }
    if (lane == 0) out[wid] = total;
}
#endif

/* ---- helpers for the bench: inputs and the reference ---- */

MT_DEVICE unsigned long long mix64(unsigned long long z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-scale, scale), never zero: a zero hides a missed load */
MT_KERNEL void fill_random(h16 *dst, long n, unsigned long long seed, float scale)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        unsigned long long z = mix64(seed + 0x9e3779b97f4a7c15ull * (unsigned long long)(i + 1));
        float v = ((float)(z >> 40) * (1.0f / 16777216.0f) * 2.f - 1.f) * scale;
        if (v == 0.f) v = 0.5f * scale;
        dst[i] = f2h(v);
    }
}

/* The first element whose exponent bits are all set (NaN or Inf: 0x7f80
 * in bf16, 0x7c00 in fp16) into *first, which the host set to ~0: the
 * output is checked where it is, and only the oracle's window is copied
 * back. Each thread stops at its first hit, the smallest of its indices,
 * so the minimum over threads is the first of all. */
MT_KERNEL void find_nonfinite(const unsigned short *v, long n, unsigned short mask, unsigned long long *first)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        if ((v[i] & mask) == mask) {
            atomicMin(first, (unsigned long long)i);
            return;
        }
}

/* The oracle on the device, for rows t0..t0+R-1, in double: one warp per
 * (row, slot, j) for the first GEMM, one warp per (row, k) for the second.
 * Plain and slow, but exact enough to judge any variant. */
MT_KERNEL void ref_act(const h16 *x, const h16 *w1, const int *ids, double *act, int t0, int R, int topk,
                                   int N, int K)
{
    long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (wid >= (long)R * topk * N) return;
    int j = (int)(wid % N);
    int s = (int)((wid / N) % topk);
    int t = t0 + (int)(wid / ((long)N * topk));
    long e = ids[(long)t * topk + s];
    const h16 *xr = x + (long)t * K, *g = w1 + (e * 2 * N + j) * (long)K, *u = w1 + (e * 2 * N + N + j) * (long)K;
    double sg = 0, su = 0;
    for (int k = lane; k < K; k += 32) {
        double xv = h2f(xr[k]);
        sg += xv * h2f(g[k]);
        su += xv * h2f(u[k]);
    }
    for (int o = 16; o; o >>= 1) {
        sg += mt_shfl_down(sg, o);
        su += mt_shfl_down(su, o);
    }
    if (lane == 0) act[wid] = sg / (1.0 + exp(-sg)) * su;
}

MT_KERNEL void ref_out(const double *act, const h16 *w2, const int *ids, const float *tw, double *out,
                                   int t0, int R, int topk, int N, int K)
{
    long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (wid >= (long)R * K) return;
    int k = (int)(wid % K);
    int r = (int)(wid / K);
    double total = 0;
    for (int s = 0; s < topk; s++) {
        long e = ids[(long)(t0 + r) * topk + s];
        const double *a = act + ((long)r * topk + s) * N;
        const h16 *w = w2 + (e * K + k) * (long)N;
        double acc = 0;
        for (int j = lane; j < N; j += 32) acc += a[j] * h2f(w[j]);
        for (int o = 16; o; o >>= 1) acc += mt_shfl_down(acc, o);
        total += acc * (double)tw[(long)(t0 + r) * topk + s];
    }
    if (lane == 0) out[wid] = total;
}
