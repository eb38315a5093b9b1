/*
 * Paged attention decode for CUDA, split-KV in the flash-decoding style:
 * one block per (partition of PARTITION tokens, KV head, sequence) computes
 * the scores of the GROUP query heads that share the KV head, their maximum
 * and sum of exponentials and the unnormalised output; a second kernel
 * merges a sequence's partitions by their log-sum-exp. Layouts as the CPU
 * kernel (kernels/cpu/attn.h): q [B, H, D], caches [pages, PAGE_SIZE, Hkv,
 * D], block_table [B, max_pages], context_lens [B], out [B, H, D].
 *
 * Compile-time: HEAD_DIM, PAGE_SIZE, GROUP (H / Hkv), PARTITION (a multiple
 * of PAGE_SIZE), NUM_WARPS, MT_FP16, ATTN_MMA (the tensor-core path),
 * ATTN_STAGE: how K and V reach the block: 0 straight into registers, 1 the
 * partition's K and V copied to shared memory first, N >= 2 (with ATTN_MMA)
 * one pass with an online softmax, each warp streaming its 16-token chunks
 * through a ring of N chunks in shared memory; ATTN_QSPLIT: blocks per KV
 * head, each taking GROUP of its query heads.
 * Compiled by NVRTC at run time, and by nvcc in CI with the defaults, like
 * moe.cu.
 */
#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
#ifndef PAGE_SIZE
#define PAGE_SIZE 16
#endif
#ifndef GROUP
#define GROUP 4
#endif
#ifndef PARTITION
#define PARTITION 512
#endif
#ifndef NUM_WARPS
#define NUM_WARPS 4
#endif
#ifndef ATTN_MMA
#define ATTN_MMA 0
#endif
#ifndef ATTN_STAGE
#define ATTN_STAGE 0
#endif
/* blocks per KV head, each taking GROUP of its query heads (the host
 * passes the KV head's group / ATTN_QSPLIT as GROUP) */
#ifndef ATTN_QSPLIT
#define ATTN_QSPLIT 1
#endif
#define ATTN_RING (ATTN_STAGE >= 2 ? ATTN_STAGE : 0)

#include "tile.h" /* h2f, f2h, and portable.h's MT_WARP_SIZE */

__host__ __device__ constexpr int mt_pow2ceil(int x) { return x <= 1 ? 1 : 2 * mt_pow2ceil((x + 1) / 2); }
__host__ __device__ constexpr int mt_log2(int x) { return x <= 1 ? 0 : 1 + mt_log2(x / 2); }

#define WS MT_WARP_SIZE
#define THREADS (NUM_WARPS * WS)
/* A K or V row is read 8 elements (16 bytes) per lane: LPT lanes hold one
 * token's row and a warp takes TPW tokens per step. LPT is a power of two;
 * where HEAD_DIM / 8 is not, the last lanes idle. */
#define VEC 8
#define LPT mt_pow2ceil(HEAD_DIM / VEC)
#define TPW (WS / LPT)
/* rows loaded before any is used: UNR loads in flight per lane instead of
 * one dependent HBM round trip per step (the first H100 run was latency-
 * bound at small batches) */
#define UNR 4
/* the score pass reduces HS heads' dot products at once (a power of two,
 * at most LPT): the multi-value butterfly costs HS - 1 + log2(LPT / HS)
 * shuffles per token step instead of HS * log2(LPT). The value pass keeps
 * HC heads' sums in registers (HC x VEC). */
__host__ __device__ constexpr int mt_imin(int a, int b) { return a < b ? a : b; }
#define HS mt_imin(mt_imin(mt_pow2ceil(GROUP), 8), LPT)
#define HC mt_imin(GROUP, 8)
#define NPG (PARTITION / PAGE_SIZE)

static_assert(HEAD_DIM % VEC == 0 && LPT <= WS, "head_dim is a multiple of 8, at most 8 x the warp size");
static_assert(PARTITION % PAGE_SIZE == 0, "a partition is whole pages");
static_assert(!ATTN_RING || ATTN_MMA, "the ring (ATTN_STAGE >= 2) is a variant of the tensor-core path");
/* the scores' space in shared memory: the partition's, or none with the
 * ring (whose scores stay in registers; the warps merge through their rings) */
#define SC_WORDS (ATTN_RING ? 0 : GROUP * PARTITION)

/* A K or V row is HEAD_DIM x 2 bytes, read whole by the block: the L2
 * fetches it from DRAM in one piece (up to 256 bytes; tile_cuda.h's
 * cp_async16_pf and ldg16_pf) instead of sector by sector as the loads
 * reach it */
#define ROW_PF (HEAD_DIM * 2 >= 256 ? 256 : HEAD_DIM * 2 >= 128 ? 128 : 0)

/* 16 bytes of a K or V row: from the cache (with the prefetch hint), or
 * from its staged copy in shared memory (ATTN_STAGE 1) */
MT_DEVICE uint4 row16(const h16 *p)
{
#if ATTN_STAGE == 1
    return *(const uint4 *)p;
#else
    return ldg16_pf<ROW_PF>(p);
#endif
}

/* 8 consecutive elements, one 16-byte load (rows are 16-byte aligned:
 * HEAD_DIM is a multiple of 8 and the caches are allocation-aligned) */
MT_DEVICE void load8(const h16 *__restrict__ p, float *f)
{
    uint4 u = row16(p);
    u32 w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = h2f((h16)(w[i] & 0xffffu));
        f[2 * i + 1] = h2f((h16)(w[i] >> 16));
    }
}

/* Elements from the cache's start to token t's row (of KV head 0): its page
 * from the partition's page numbers (pg, starting at token t0), then its
 * slot; kvs elements from one token's row to the next. */
MT_DEVICE long cache_row(const int *pg, int t, int t0, long kvs)
{
    return ((long)pg[(t - t0) / PAGE_SIZE] * PAGE_SIZE + t % PAGE_SIZE) * kvs;
}

#if ATTN_STAGE == 1
/* ATTN_STAGE=1: the block first copies its partition's K and V rows (of its
 * KV head) to shared memory with cp.async, every copy issued before any is
 * waited for, then computes from there. The first H100 runs were latency-
 * bound at small batches: the score and value passes each waited on one
 * HBM round trip per few tokens (bench/results/2026-11-23-h100-ncu: 3 % of
 * DRAM bandwidth at B = 1). Staged, a block waits for its K once (its V
 * lands during the scores) at the cost of 4 x PARTITION x HEAD_DIM bytes of
 * shared memory. The passes' row of token t is then its place in the copy. */
MT_DEVICE long row_of(const int *, int t, int t0, long) { return (long)(t - t0) * HEAD_DIM; }
#else
MT_DEVICE long row_of(const int *pg, int t, int t0, long kvs) { return cache_row(pg, t, t0, kvs); }
#endif

/* The UNR rows (from base, a head's dims of this lane) of the tokens this
 * lane takes next, all loads issued before any is used; zeros past the
 * partition's end and where the lane has no dims. */
MT_DEVICE void load_rows(const h16 *__restrict__ base, const int *pg, int tb, int t0, int t1, int slot, bool dl,
                         long kvs, float (&r)[UNR][VEC])
{
#pragma unroll
    for (int u = 0; u < UNR; u++) {
        const int t = tb + u * NUM_WARPS * TPW + slot;
        if (t < t1 && dl) {
            load8(base + row_of(pg, t, t0, kvs), r[u]);
        } else {
#pragma unroll
            for (int i = 0; i < VEC; i++) r[u][i] = 0;
        }
    }
}

/* One step of the multi-value butterfly over lanes o apart: the lane whose
 * bit o is set keeps the upper HALF of its values and sends the lower, the
 * other the reverse, so each lane ends with HALF sums of two lanes. */
template <int HALF> MT_DEVICE void mt_bfly(float *d, int lane, int o)
{
    const bool up = (lane & o) != 0;
#pragma unroll
    for (int i = 0; i < HALF; i++) {
        float send = up ? d[i] : d[i + HALF], keep = up ? d[i + HALF] : d[i];
        d[i] = keep + mt_shfl_xor(send, o);
    }
}

#if ATTN_MMA
/* The tensor-core path (ATTN_MMA=1; HEAD_DIM a multiple of 64, GROUP at
 * most 16): the group's heads are the 16 rows of m16n8k16 tiles, so q.k
 * and p.v cost one MMA per 16x8x16 instead of GROUP FMAs per element. No
 * shared-memory staging: the contraction order is free, so each lane loads
 * whole 16-byte pieces of K and V rows straight into fragment registers
 * (K: a token per lane group, its dims permuted consistently with q's
 * fragments; V: four tokens per lane and one dim per MMA, pairs packed
 * across tokens). Warps take 16 tokens at a time. */
static_assert(HEAD_DIM % 64 == 0 && GROUP <= 16, "the MMA path takes head_dim % 64 == 0 and groups of at most 16");

MT_DEVICE u32 word4(const uint4 &u, int i) { return i == 0 ? u.x : i == 1 ? u.y : i == 2 ? u.z : u.w; }
MT_DEVICE u32 pack2(float lo, float hi) { return (u32)f2h(lo) | ((u32)f2h(hi) << 16); }
MT_DEVICE uint4 load16(const h16 *p, bool pred)
{
    if (pred) return row16(p);
    return make_uint4(0u, 0u, 0u, 0u);
}

/* q's A fragments (heads gq and gq + 8 of the group, zero past it): k-step
 * i covers, for this lane, dims d, d+1 (a0/a1) and d+2, d+3 (a2/a3),
 * d = 8 (q4 + 4 (i / 2)) + 4 (i % 2): the dims the same lane holds of K in
 * b0 and b1 */
MT_DEVICE void q_frags(const h16 *__restrict__ qg, int gq, int q4, u32 (&qa)[HEAD_DIM / 16][4])
{
#pragma unroll
    for (int i = 0; i < HEAD_DIM / 16; i++) {
        const int d = 8 * (q4 + 4 * (i / 2)) + 4 * (i % 2);
        const u32 *r0 = (const u32 *)(qg + (long)gq * HEAD_DIM + d), *r1 = (const u32 *)(qg + (long)(gq + 8) * HEAD_DIM + d);
        qa[i][0] = gq < GROUP ? r0[0] : 0u;
        qa[i][1] = gq + 8 < GROUP ? r1[0] : 0u;
        qa[i][2] = gq < GROUP ? r0[1] : 0u;
        qa[i][3] = gq + 8 < GROUP ? r1[1] : 0u;
    }
}

/* sc[h][t - t0] = scale * q_h . k_t for the block's tokens */
MT_DEVICE void attn_scores_mma(const h16 *__restrict__ qg, const h16 *__restrict__ kg, const int *pg, int t0, int t1,
                               int Hkv, float scale, float *sc)
{
    const int lane = threadIdx.x % WS, warp = threadIdx.x / WS, gq = lane / 4, q4 = lane % 4;
    const long kvs = (long)Hkv * HEAD_DIM;
    u32 qa[HEAD_DIM / 16][4];
    q_frags(qg, gq, q4, qa);
    for (int tb = t0 + warp * 16; tb < t1; tb += NUM_WARPS * 16) {
        uint4 kr[2][HEAD_DIM / 32];
#pragma unroll
        for (int s = 0; s < 2; s++) {
            const int t = tb + 8 * s + gq; /* this lane's token: column gq of the tile */
            const long row = t < t1 ? row_of(pg, t, t0, kvs) : 0;
#pragma unroll
            for (int j = 0; j < HEAD_DIM / 32; j++) kr[s][j] = load16(kg + row + 8 * (q4 + 4 * j), t < t1);
        }
#pragma unroll
        for (int s = 0; s < 2; s++) {
            float c[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int i = 0; i < HEAD_DIM / 16; i++) {
                const u32 bf[2] = {word4(kr[s][i / 2], 2 * (i % 2)), word4(kr[s][i / 2], 2 * (i % 2) + 1)};
                mma16816(c, qa[i], bf);
            }
            /* c0, c1: head gq, tokens 2 q4 and 2 q4 + 1 of the eight; c2, c3: head gq + 8 */
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int t = tb + 8 * s + 2 * q4 + e;
                if (t < t1 && gq < GROUP) sc[gq * PARTITION + (t - t0)] = c[e] * scale;
                if (t < t1 && gq + 8 < GROUP) sc[(gq + 8) * PARTITION + (t - t0)] = c[2 + e] * scale;
            }
        }
    }
}

/* o[h][d] += a[h] * (this warp's p.v accumulators): column n of tile (j, i)
 * is dim 8 (n + 8 j) + i; c0, c1 are n = 2 q4, 2 q4 + 1 of head gq, c2, c3
 * of gq + 8 (a[0] and a[1] their scales) */
MT_DEVICE void acc_add(float *o, const float (&oc)[HEAD_DIM / 64][8][4], int gq, int q4, const float *a)
{
#pragma unroll
    for (int j = 0; j < HEAD_DIM / 64; j++)
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int h = gq + 8 * (e / 2), d = 8 * (2 * q4 + e % 2 + 8 * j) + i;
                if (h < GROUP) o[h * HEAD_DIM + d] += oc[j][i][e] * a[e / 2];
            }
}

/* o[h][d] += sum_t p[h][t] v_t[d] into shared o (zeroed), p = sc */
MT_DEVICE void attn_values_mma(const h16 *__restrict__ vg, const int *pg, int t0, int t1, int Hkv, const float *sc,
                               float *o)
{
    const int lane = threadIdx.x % WS, warp = threadIdx.x / WS, gq = lane / 4, q4 = lane % 4;
    const long kvs = (long)Hkv * HEAD_DIM;
    constexpr int VJ = HEAD_DIM / 64; /* 16-byte pieces of a row per lane */
    float oc[VJ][8][4];
#pragma unroll
    for (int j = 0; j < VJ; j++)
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) oc[j][i][e] = 0.f;
    for (int tb = t0 + warp * 16; tb < t1; tb += NUM_WARPS * 16) {
        /* tokens k = 2 q4, 2 q4 + 1, 2 q4 + 8, 2 q4 + 9 of the sixteen, and
         * of each the pieces gq + 8 j (dims 8 (gq + 8 j) .. + 7) */
        uint4 vr[4][VJ];
        float pw[2][4];
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int t = tb + 8 * (e / 2) + 2 * q4 + (e % 2);
            const long row = t < t1 ? row_of(pg, t, t0, kvs) : 0;
#pragma unroll
            for (int j = 0; j < VJ; j++) vr[e][j] = load16(vg + row + 8 * (gq + 8 * j), t < t1);
            pw[0][e] = t < t1 && gq < GROUP ? sc[gq * PARTITION + (t - t0)] : 0.f;
            pw[1][e] = t < t1 && gq + 8 < GROUP ? sc[(gq + 8) * PARTITION + (t - t0)] : 0.f;
        }
        const u32 pa[4] = {pack2(pw[0][0], pw[0][1]), pack2(pw[1][0], pw[1][1]), pack2(pw[0][2], pw[0][3]),
                           pack2(pw[1][2], pw[1][3])};
#pragma unroll
        for (int j = 0; j < VJ; j++)
#pragma unroll
            for (int i = 0; i < 8; i++) {
                /* element i of the piece for the four tokens, paired by token */
                const u32 a = word4(vr[0][j], i / 2), b = word4(vr[1][j], i / 2), c = word4(vr[2][j], i / 2),
                          d = word4(vr[3][j], i / 2);
                const u32 bf[2] = {i % 2 ? (a >> 16) | (b & 0xffff0000u) : (a & 0xffffu) | (b << 16),
                                   i % 2 ? (c >> 16) | (d & 0xffff0000u) : (c & 0xffffu) | (d << 16)};
                mma16816(oc[j][i], pa, bf);
            }
    }
    /* the warps add their sums in turn, as the FMA value pass does (no shared-memory float atomics) */
    const float one[2] = {1.f, 1.f};
    for (int w = 0; w < NUM_WARPS; w++) {
        if (warp == w) acc_add(o, oc, gq, q4, one);
        __syncthreads();
    }
}
#if ATTN_RING
/* ATTN_STAGE=N >= 2: one pass over the partition. The two-pass kernel reads
 * all of K, then (after a block barrier and the softmax) all of V, and each
 * warp waits for its own 16-token step's loads; at B = 32 it reached 86 % of
 * DRAM bandwidth, and loads held in registers a step ahead cost occupancy
 * (bench/results/2026-11-24-h100-attn, calls 8 and 9). Here each warp takes
 * 16-token chunks (w, w + NUM_WARPS, ...) and copies them, K and V, into its
 * own ring of ATTN_RING chunks in shared memory with cp.async, RING - 1
 * chunks ahead of the one it computes: the bytes in flight live in shared
 * memory, not in registers, and no block barrier stands between a chunk's
 * K and its V. The scores stay in the MMA's accumulators, which are the A
 * fragment of p.v as they are (FlashAttention-2's layout), with a running
 * maximum and sum per head (online softmax); the warps' results are merged
 * at the end. */
/* tokens per chunk: a multiple of 16 (one p.v k-step), the same as
 * MT_CUDA_ATTN_RING_TOKENS in attn_launch.h (the host sizes the ring).
 * 32 was measured against 16 (bench/results/2026-11-24-h100-attn, call 20):
 * no row faster beyond the noise, and 241 registers instead of 172 at
 * head_dim 128 (up to 1.7x slower with 4 warps) */
#ifndef RING_TOK
#define RING_TOK 16
#endif
static_assert(RING_TOK % 16 == 0, "a chunk is whole k-steps of 16 tokens");
#define RING_CHUNK (2 * RING_TOK * HEAD_DIM) /* h16 per chunk: K then V, [RING_TOK][HEAD_DIM] each */

/* A row's 16-byte piece c sits at c ^ swz(r): the K fragments read two rows
 * x four pieces per 8 lanes, the V fragments four rows (two apart) x two
 * pieces; this XOR puts each group on 8 distinct 16-byte columns, so the
 * 16-byte shared loads run without bank conflicts (rows are a multiple of
 * 128 bytes long). */
MT_DEVICE int swz(int r) { return ((r & 1) << 2) ^ (((r >> 1) & 3) << 1); }

/* issue chunk ci's copies (tokens t0 + RING_TOK ci ..) into ring slot dst; rows
 * past t1 are zero-filled (their scores are masked) */
MT_DEVICE void ring_issue(h16 *dst, const h16 *__restrict__ kb, const h16 *__restrict__ vb, const int *pg, int ci, int t0,
                          int t1, long kvs, int lane)
{
    constexpr int CPR = HEAD_DIM / 8; /* 16-byte pieces per row */
    const int tb = t0 + RING_TOK * ci;
    /* where pages are whole chunks (page 16 or 32), the chunk's rows follow
     * its first: one page lookup per chunk, not one per row (2-warp rings
     * 1 % faster on the DRAM-bound B = 32 and 8 rows, session 13) */
    constexpr bool ONE_PAGE = PAGE_SIZE % RING_TOK == 0;
    const long row0 = ONE_PAGE ? cache_row(pg, tb, t0, kvs) : 0;
#pragma unroll
    for (int i = lane; i < RING_TOK * CPR; i += WS) {
        const int r = i / CPR, c = i % CPR, t = tb + r;
        const bool in = t < t1;
        const long row = !in ? 0 : ONE_PAGE ? row0 + r * kvs : cache_row(pg, t, t0, kvs);
        const int at = r * HEAD_DIM + (c ^ swz(r)) * 8;
        cp_async16_pf<ROW_PF>(mt_sptr_of(dst + at), kb + row + c * 8, in);
        cp_async16_pf<ROW_PF>(mt_sptr_of(dst + RING_TOK * HEAD_DIM + at), vb + row + c * 8, in);
    }
}

/* the block's partition t0 .. t1 (t1 > t0) of KV head g: o [GROUP][HEAD_DIM]
 * gets the unnormalised sums, mx and sum each head's maximum score and sum
 * of exponentials (every element written).
 * Less work per chunk is not faster where the rows are DRAM-bound: a base-2
 * softmax (ex2.approx) with the rescale skipped where no maximum moved cut
 * the kernel's time with K and V in the L2 by 5 to 22 %, yet made the
 * 2-warp ring 4 to 6 % slower on the B = 32 and 8 rows from DRAM
 * (bench/results/2026-11-24-h100-attn, session 13); not kept. */
MT_DEVICE void attn_ring(const h16 *__restrict__ qg, const h16 *__restrict__ kb, const h16 *__restrict__ vb, const int *pg,
                         int t0, int t1, int Hkv, float scale, h16 *ring, float *o, float *mx, float *sum)
{
    const int lane = threadIdx.x % WS, warp = threadIdx.x / WS, gq = lane / 4, q4 = lane % 4;
    const long kvs = (long)Hkv * HEAD_DIM;
    constexpr int VJ = HEAD_DIM / 64;
    h16 *my = ring + (long)warp * ATTN_RING * RING_CHUNK;
    const int nch = (t1 - t0 + RING_TOK - 1) / RING_TOK, mine = nch > warp ? (nch - warp + NUM_WARPS - 1) / NUM_WARPS : 0;
    /* the first RING - 1 chunks in flight before q is read (one group per
     * chunk, empty past the warp's last, so that wait<RING - 1> always
     * means "this chunk's copies are done") */
#pragma unroll
    for (int i = 0; i < ATTN_RING - 1; i++) {
        if (i < mine) ring_issue(my + i * RING_CHUNK, kb, vb, pg, warp + i * NUM_WARPS, t0, t1, kvs, lane);
        cp_async_commit();
    }
    u32 qa[HEAD_DIM / 16][4];
    q_frags(qg, gq, q4, qa);
    /* rows gq (e = 0, 1) and gq + 8 (e = 2, 3) of the accumulators */
    float m[2] = {-3.0e38f, -3.0e38f}, l[2] = {0.f, 0.f}, oc[VJ][8][4];
#pragma unroll
    for (int j = 0; j < VJ; j++)
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) oc[j][i][e] = 0.f;
    for (int k = 0; k < mine; k++) {
        if (k + ATTN_RING - 1 < mine)
            ring_issue(my + ((k + ATTN_RING - 1) % ATTN_RING) * RING_CHUNK, kb, vb, pg,
                       warp + (k + ATTN_RING - 1) * NUM_WARPS, t0, t1, kvs, lane);
        cp_async_commit();
        cp_async_wait<ATTN_RING - 1>();
        mt_syncwarp(); /* every lane's copies of chunk k */
        const h16 *ks = my + (k % ATTN_RING) * RING_CHUNK, *vs = ks + RING_TOK * HEAD_DIM;
        const int tb = t0 + RING_TOK * (warp + k * NUM_WARPS);
        /* scores of tokens 8 s + gq (B columns); c[s]: heads gq / gq + 8 x tokens 8 s + 2 q4 (+1) */
        constexpr int NS = RING_TOK / 8;
        float c[NS][4];
#pragma unroll
        for (int s = 0; s < NS; s++) {
            const int r = 8 * s + gq;
            uint4 kr[HEAD_DIM / 32];
#pragma unroll
            for (int j = 0; j < HEAD_DIM / 32; j++) kr[j] = *(const uint4 *)(ks + r * HEAD_DIM + ((q4 + 4 * j) ^ swz(r)) * 8);
#pragma unroll
            for (int e = 0; e < 4; e++) c[s][e] = 0.f;
#pragma unroll
            for (int i = 0; i < HEAD_DIM / 16; i++) {
                const u32 bf[2] = {word4(kr[i / 2], 2 * (i % 2)), word4(kr[i / 2], 2 * (i % 2) + 1)};
                mma16816(c[s], qa[i], bf);
            }
        }
        /* online softmax: the chunk's maximum per head (4 values per lane,
         * then the row's 4 lanes), the old sums rescaled to the new one */
        float cm[2] = {-3.0e38f, -3.0e38f};
#pragma unroll
        for (int s = 0; s < NS; s++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int t = tb + 8 * s + 2 * q4 + (e % 2);
                c[s][e] = t < t1 ? c[s][e] * scale : -3.0e38f;
                cm[e / 2] = fmaxf(cm[e / 2], c[s][e]);
            }
        float al[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            cm[h] = fmaxf(cm[h], mt_shfl_xor(cm[h], 1));
            cm[h] = fmaxf(cm[h], mt_shfl_xor(cm[h], 2));
            const float mn = fmaxf(m[h], cm[h]);
            al[h] = expf(m[h] - mn);
            m[h] = mn;
            l[h] *= al[h];
        }
#pragma unroll
        for (int s = 0; s < NS; s++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                c[s][e] = expf(c[s][e] - m[e / 2]);
                l[e / 2] += c[s][e];
            }
#pragma unroll
        for (int j = 0; j < VJ; j++)
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) oc[j][i][e] *= al[e / 2];
#pragma unroll
        for (int kk = 0; kk < RING_TOK / 16; kk++) {
        /* p as the A fragment of k-step kk: rows gq / gq + 8, tokens 16 kk + 2 q4 (+1) and 16 kk + 8 + 2 q4 (+1) */
        const u32 pa[4] = {pack2(c[2 * kk][0], c[2 * kk][1]), pack2(c[2 * kk][2], c[2 * kk][3]),
                           pack2(c[2 * kk + 1][0], c[2 * kk + 1][1]), pack2(c[2 * kk + 1][2], c[2 * kk + 1][3])};
        /* V rows 16 kk + (2 q4, 2 q4 + 1, 8 + 2 q4, 9 + 2 q4), pieces gq + 8 j (as attn_values_mma) */
#pragma unroll
        for (int j = 0; j < VJ; j++) {
            uint4 vr[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int r = 16 * kk + 8 * (e / 2) + 2 * q4 + (e % 2);
                vr[e] = *(const uint4 *)(vs + r * HEAD_DIM + ((gq + 8 * j) ^ swz(r)) * 8);
            }
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const u32 a = word4(vr[0], i / 2), b = word4(vr[1], i / 2), cc = word4(vr[2], i / 2),
                          d = word4(vr[3], i / 2);
                const u32 bf[2] = {i % 2 ? (a >> 16) | (b & 0xffff0000u) : (a & 0xffffu) | (b << 16),
                                   i % 2 ? (cc >> 16) | (d & 0xffff0000u) : (cc & 0xffffu) | (d << 16)};
                mma16816(oc[j][i], pa, bf);
            }
        }
        }
        mt_syncwarp(); /* the slot is rewritten by the next chunk's copies */
    }
    cp_async_wait<0>();
    mt_syncwarp(); /* every lane's copies landed and the warp's reads of its ring are done */
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l[h] += mt_shfl_xor(l[h], 1);
        l[h] += mt_shfl_xor(l[h], 2);
    }
    /* the warps' results: each warp leaves its sums [16][OS], maxima and
     * sums of exponentials in its own ring (one chunk's bytes hold them),
     * then after one barrier every thread merges a few outputs over all
     * the warps. Before, the warps added theirs into o in turn, a barrier
     * apiece, each add 8- to 16-way bank-conflicted (rows 128 words apart):
     * 64/8/128 B=8 ctx=511's 8-warp variant went from 11.9 to 9.5 us per
     * layer (SDPA 10.6), the 4-warp head_dim 256 rows 3 to 5 % faster
     * (bench/results/2026-11-24-h100-attn, session 14). Scalar stores with
     * OS = HEAD_DIM + 1 (2-way conflicts): 16-byte ones, which need their
     * four values in consecutive registers, made head_dim 256 spill and
     * 6 % slower. */
    constexpr int OS = HEAD_DIM + 1, SLOT = ATTN_RING * RING_CHUNK / 2; /* floats */
    static_assert((16 * OS + 32) * 2 <= ATTN_RING * RING_CHUNK, "a warp's results fit in its ring");
    float *res = (float *)my;
#pragma unroll
    for (int j = 0; j < VJ; j++)
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int h = gq + 8 * (e / 2), d = 8 * (2 * q4 + e % 2 + 8 * j) + i;
                if (h < GROUP) res[h * OS + d] = oc[j][i][e];
            }
    if (q4 == 0) {
        res[16 * OS + gq] = m[0];
        res[16 * OS + gq + 8] = m[1];
        res[16 * OS + 16 + gq] = l[0];
        res[16 * OS + 24 + gq] = l[1];
    }
    __syncthreads();
    const float *all = (const float *)ring;
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += NUM_WARPS * WS) {
        const int h = i / HEAD_DIM, d = i % HEAD_DIM;
        float M = -3.0e38f;
#pragma unroll
        for (int w = 0; w < NUM_WARPS; w++) M = fmaxf(M, all[w * SLOT + 16 * OS + h]);
        float acc = 0.f, s = 0.f;
#pragma unroll
        for (int w = 0; w < NUM_WARPS; w++) {
            const float *r = all + w * SLOT, a = expf(r[16 * OS + h] - M);
            acc += a * r[h * OS + d];
            s += a * r[16 * OS + 16 + h];
        }
        o[i] = acc;
        if (d == 0) {
            sum[h] = s;
            mx[h] = M;
        }
    }
}
#endif
#endif

/* Dynamic shared memory (mt_cuda_attn_smem): q (float) [GROUP][HEAD_DIM],
 * later the value pass's sums; the scores [GROUP][PARTITION]; max and sum
 * [GROUP] each; the partition's page numbers [NPG] (read once, so a row's
 * address needs no global load of the block table); with ATTN_STAGE, from
 * the next 16 bytes, K and V [PARTITION][HEAD_DIM] (h16) each.
 * With one partition per sequence (max_parts == 1) the block writes the
 * normalised output itself and the host skips the merge kernel. */
MT_KERNEL void __launch_bounds__(THREADS) attn_partial(const h16 *__restrict__ q, const h16 *__restrict__ kc,
                                                        const h16 *__restrict__ vc, const int *__restrict__ block_table,
                                                        const int *__restrict__ context_lens, int max_pages, int Hkv,
                                                        float scale, float *__restrict__ part, int max_parts,
                                                        h16 *__restrict__ out1)
{
    extern __shared__ __align__(16) float sm[];
    float *qs = sm, *sc = sm + GROUP * HEAD_DIM, *mx = sc + SC_WORDS, *sum = mx + GROUP;
    int *pg = (int *)(sum + GROUP);
    /* KV heads vary fastest in the grid: blocks that run side by side read
     * the same tokens' rows of neighbouring heads, which lie next to each
     * other in the paged layout ([pages, PAGE_SIZE, Hkv, D]), instead of
     * one head's rows, Hkv * D elements apart */
    /* gq: the block's query heads gq * GROUP .. + GROUP; g: their KV head */
    const int gq = blockIdx.x, g = gq / ATTN_QSPLIT, p = blockIdx.y, b = blockIdx.z;
    const int warp = threadIdx.x / WS, lane = threadIdx.x % WS;
    /* the merge kernel's blocks may be placed now: they wait for this
     * grid's end themselves (mt_grid_wait), so their launch overlaps this
     * kernel's last blocks instead of following them */
    mt_grid_dependents();
    const int slot = lane / LPT, d0 = (lane % LPT) * VEC; /* this lane's token of the step, and its dims */
    const bool dl = d0 < HEAD_DIM;
    const int t0 = p * PARTITION, H = Hkv * GROUP * ATTN_QSPLIT;
    /* the page numbers, q and the length are loaded side by side (one
     * memory round trip, not two): the pages up to the table's width, not
     * the length, so that their loads need not wait for it */
    const int ctx = context_lens[b];
    const int *bt = block_table + (long)b * max_pages + t0 / PAGE_SIZE;
    for (int i = threadIdx.x; i < NPG && t0 / PAGE_SIZE + i < max_pages; i += THREADS) pg[i] = bt[i];
#if !ATTN_MMA /* the MMA path reads q into its fragments itself */
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS)
        qs[i] = h2f(q[((long)b * H + gq * GROUP + i / HEAD_DIM) * HEAD_DIM + i % HEAD_DIM]) * scale;
#endif
    if (t0 >= ctx) {
        /* past this sequence's end: a sum of 0 marks the partition empty for
         * the merge, which then needs no context length (one round trip
         * less) */
        if (max_parts > 1)
            for (int h = threadIdx.x; h < GROUP; h += THREADS) {
                float *o = part + (((long)b * H + gq * GROUP + h) * max_parts + p) * (HEAD_DIM + 2);
                o[0] = -3.0e38f;
                o[1] = 0.f;
            }
        return;
    }
    const int t1 = t0 + PARTITION < ctx ? t0 + PARTITION : ctx;
#if ATTN_RING
    __syncthreads(); /* the page numbers, for every warp's copies */
    {
        constexpr int RING_OFF = (GROUP * HEAD_DIM + SC_WORDS + 2 * GROUP + NPG + 3) / 4 * 4;
        attn_ring(q + ((long)b * H + gq * GROUP) * HEAD_DIM, kc + (long)g * HEAD_DIM, vc + (long)g * HEAD_DIM, pg, t0, t1,
                  Hkv, scale, (h16 *)(sm + RING_OFF), qs, mx, sum);
    }
    (void)dl, (void)slot, (void)lane, (void)warp;
#else
    __syncthreads();
#if ATTN_STAGE == 1
    constexpr int STAGE_OFF = (GROUP * HEAD_DIM + GROUP * PARTITION + 2 * GROUP + NPG + 3) / 4 * 4;
    h16 *ks = (h16 *)(sm + STAGE_OFF), *vs = ks + PARTITION * HEAD_DIM;
    {
        /* 16-byte pieces, consecutive threads along a row (coalesced);
         * K's copies form one group and V's the next, so the scores wait
         * for K only */
        constexpr int CPR = HEAD_DIM / VEC;
        const long kvs = (long)Hkv * HEAD_DIM;
        const h16 *kb = kc + (long)g * HEAD_DIM, *vb = vc + (long)g * HEAD_DIM;
        const int nc = (t1 - t0) * CPR;
        for (int i = threadIdx.x; i < nc; i += THREADS)
            cp_async16_pf<ROW_PF>(mt_sptr_of(ks + i * VEC), kb + cache_row(pg, t0 + i / CPR, t0, kvs) + (i % CPR) * VEC, true);
        cp_async_commit();
        for (int i = threadIdx.x; i < nc; i += THREADS)
            cp_async16_pf<ROW_PF>(mt_sptr_of(vs + i * VEC), vb + cache_row(pg, t0 + i / CPR, t0, kvs) + (i % CPR) * VEC, true);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
    }
    const h16 *kbase = ks, *vbase = vs;
#else
    const h16 *kbase = kc + (long)g * HEAD_DIM, *vbase = vc + (long)g * HEAD_DIM;
#endif

#if ATTN_MMA
    (void)dl, (void)slot;
    attn_scores_mma(q + ((long)b * H + gq * GROUP) * HEAD_DIM, kbase, pg, t0, t1, Hkv, scale, sc);
#else
    /* scores: warp w takes tokens t0 + (w + NUM_WARPS * j) * TPW + slot */
    const long kvs = (long)Hkv * HEAD_DIM; /* elements from one token's row to the next */
    const h16 *kg = kbase + (dl ? d0 : 0), *vg = vbase + (dl ? d0 : 0);
    for (int h0 = 0; h0 < GROUP; h0 += HS) {
        float qr[HS][VEC];
#pragma unroll
        for (int j = 0; j < HS * VEC; j++) {
            const int h = j / VEC, i = j % VEC;
            qr[h][i] = h0 + h < GROUP && dl ? qs[(h0 + h) * HEAD_DIM + d0 + i] : 0.f;
        }
        for (int tb = t0 + warp * TPW; tb < t1; tb += NUM_WARPS * TPW * UNR) {
            float kv[UNR][VEC];
            load_rows(kg, pg, tb, t0, t1, slot, dl, kvs, kv);
#pragma unroll
            for (int u = 0; u < UNR; u++) {
                const int t = tb + u * NUM_WARPS * TPW + slot;
                float d[HS];
#pragma unroll
                for (int h = 0; h < HS; h++) {
                    d[h] = 0;
#pragma unroll
                    for (int i = 0; i < VEC; i++) d[h] += qr[h][i] * kv[u][i];
                }
                /* halve the values per lane at each step (HS <= 8: three
                 * steps at most, written out so that every loop with a
                 * shuffle has a constant trip count, which hipcc needs) */
                mt_bfly<HS / 2>(d, lane, LPT / 2);
                mt_bfly<HS / 4>(d, lane, LPT / 4);
                mt_bfly<HS / 8>(d, lane, LPT / 8);
                MT_UNROLL_SHFL
                for (int k = mt_log2(HS); k < mt_log2(LPT); k++) d[0] += mt_shfl_xor(d[0], LPT >> (k + 1));
                /* lane (l % LPT) now holds head h0 + (l % LPT) / (LPT / HS) */
                const int hh = h0 + (lane % LPT) / (LPT / HS);
                if (t < t1 && lane % (LPT / HS) == 0 && hh < GROUP) sc[hh * PARTITION + (t - t0)] = d[0];
            }
        }
    }
#endif
    __syncthreads();

    /* per head: the maximum, then exp(score - max) in place and its sum;
     * q is done with, its space takes the value pass's sums */
    const int n = t1 - t0;
    for (int h = warp; h < GROUP; h += NUM_WARPS) {
        float m = -3.0e38f;
        for (int i = lane; i < n; i += WS) m = fmaxf(m, sc[h * PARTITION + i]);
        for (int o = WS / 2; o; o >>= 1) m = fmaxf(m, mt_shfl_xor(m, o));
        float s = 0;
        for (int i = lane; i < n; i += WS) {
            float e = expf(sc[h * PARTITION + i] - m);
            sc[h * PARTITION + i] = e;
            s += e;
        }
        for (int o = WS / 2; o; o >>= 1) s += mt_shfl_xor(s, o);
        if (lane == 0) {
            mx[h] = m;
            sum[h] = s;
        }
    }
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS) qs[i] = 0;
#if ATTN_STAGE == 1
    cp_async_wait<0>(); /* V (the barrier makes every thread's copies visible) */
#endif
    __syncthreads();

#if ATTN_MMA
    attn_values_mma(vbase, pg, t0, t1, Hkv, sc, qs);
#else
    /* the values, in the scores' token order: each lane sums p * V over its
     * tokens for HC heads at a time, the step's TPW tokens are combined by
     * shuffles and the warps through shared atomics */
    for (int h0 = 0; h0 < GROUP; h0 += HC) {
        float acc[HC][VEC];
#pragma unroll
        for (int h = 0; h < HC; h++)
#pragma unroll
            for (int i = 0; i < VEC; i++) acc[h][i] = 0;
        for (int tb = t0 + warp * TPW; tb < t1; tb += NUM_WARPS * TPW * UNR) {
            float vv[UNR][VEC];
            load_rows(vg, pg, tb, t0, t1, slot, dl, kvs, vv);
#pragma unroll
            for (int u = 0; u < UNR; u++) {
                const int t = tb + u * NUM_WARPS * TPW + slot;
                if (t >= t1) continue;
#pragma unroll
                for (int h = 0; h < HC; h++) {
                    const float w = h0 + h < GROUP ? sc[(h0 + h) * PARTITION + (t - t0)] : 0.f;
#pragma unroll
                    for (int i = 0; i < VEC; i++) acc[h][i] += w * vv[u][i];
                }
            }
        }
#pragma unroll
        for (int h = 0; h < HC; h++)
#pragma unroll
            for (int i = 0; i < VEC; i++) {
                MT_UNROLL_SHFL
                for (int k = mt_log2(LPT); k < mt_log2(WS); k++) acc[h][i] += mt_shfl_xor(acc[h][i], 1 << k);
            }
        /* the warps add their sums in turn, plain adds between barriers:
         * shared-memory atomics on floats were the first kernel's fixed
         * cost (compare-and-swap loops, NUM_WARPS of them racing on every
         * element), and the order is now fixed, so the result is the same
         * from run to run */
        for (int w = 0; w < NUM_WARPS; w++) {
            if (warp == w && slot == 0 && dl)
#pragma unroll
                for (int h = 0; h < HC; h++)
#pragma unroll
                    for (int i = 0; i < VEC; i++)
                        if (h0 + h < GROUP) qs[(h0 + h) * HEAD_DIM + d0 + i] += acc[h][i];
            __syncthreads();
        }
    }
#endif
#endif /* ATTN_RING */
    __syncthreads();

    if (max_parts == 1) {
        for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS)
            out1[((long)b * H + gq * GROUP) * HEAD_DIM + i] = f2h(qs[i] / sum[i / HEAD_DIM]);
        return;
    }
    float *out = part + (((long)b * H + gq * GROUP) * max_parts + p) * (HEAD_DIM + 2);
    for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += THREADS) {
        int h = i / HEAD_DIM, d = i % HEAD_DIM;
        float *o = out + (long)h * max_parts * (HEAD_DIM + 2);
        o[2 + d] = qs[i];
        if (d == 0) {
            o[0] = mx[h];
            o[1] = sum[h];
        }
    }
}

/* One block per (head, sequence) merges its partitions by their log-sum-
 * exp, in one pass (a running maximum rescales the sums so far). The block's
 * RED_WARPS warps take the partitions in turn (warp w: w, w + RED_WARPS, ...),
 * each lane HEAD_DIM / 32 of the dims, and then the warps' results are merged
 * the same way through shared memory. With a thread per dim walking every
 * partition, the merge was a chain of max_parts / 8 batches of loads: at
 * B = 1 and 64 partitions ncu gave it 10 us, more than the partial kernel.
 * part [B, H, max_parts, 2 + HEAD_DIM]; a partition whose sum is 0 is empty
 * (past its sequence's end): its other values do not count. */
#define RED_WARPS 8
MT_DEVICE void lse_add(float &m, float &s, float *acc, float mp, float sp, const float *ap)
{
    /* a computed partition's sum is at least 1 (or NaN, which must reach
     * the output); an empty one's is exactly 0 */
    const bool live = sp != 0.f;
    const float mn = live ? fmaxf(m, mp) : m, a = expf(m - mn), w = live ? expf(mp - mn) : 0.f;
    s = s * a + (live ? sp * w : 0.f);
#pragma unroll
    for (int j = 0; j < HEAD_DIM / 32; j++) acc[j] = acc[j] * a + (live ? ap[j] * w : 0.f);
    m = mn;
}

MT_KERNEL void __launch_bounds__(RED_WARPS * 32) attn_reduce(const float *__restrict__ part, int max_parts,
                                                           h16 *__restrict__ out)
{
    __shared__ float red[RED_WARPS][2 + HEAD_DIM];
    const int h = blockIdx.x, b = blockIdx.y, H = gridDim.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    mt_grid_wait(); /* the partial kernel's results (launched to overlap it) */
    const float *r = part + ((long)b * H + h) * max_parts * (HEAD_DIM + 2);
    float m = -3.0e38f, s = 0, acc[HEAD_DIM / 32], ap[HEAD_DIM / 32];
#pragma unroll
    for (int j = 0; j < HEAD_DIM / 32; j++) acc[j] = 0.f;
#pragma unroll 4
    for (int p = warp; p < max_parts; p += RED_WARPS) {
        const float *rp = r + (long)p * (HEAD_DIM + 2);
#pragma unroll
        for (int j = 0; j < HEAD_DIM / 32; j++) ap[j] = rp[2 + lane + 32 * j];
        lse_add(m, s, acc, rp[0], rp[1], ap);
    }
    if (lane == 0) {
        red[warp][0] = m;
        red[warp][1] = s;
    }
#pragma unroll
    for (int j = 0; j < HEAD_DIM / 32; j++) red[warp][2 + lane + 32 * j] = acc[j];
    __syncthreads();
    if (warp) return;
    /* warp 0 merges the warps' results in a fixed order (deterministic) */
    m = -3.0e38f, s = 0;
#pragma unroll
    for (int j = 0; j < HEAD_DIM / 32; j++) acc[j] = 0.f;
    for (int w = 0; w < RED_WARPS; w++) {
#pragma unroll
        for (int j = 0; j < HEAD_DIM / 32; j++) ap[j] = red[w][2 + lane + 32 * j];
        lse_add(m, s, acc, red[w][0], red[w][1], ap);
    }
#pragma unroll
    for (int j = 0; j < HEAD_DIM / 32; j++) out[((long)b * H + h) * HEAD_DIM + lane + 32 * j] = f2h(acc[j] / s);
}
