/* Issue 9: how fast can the H100 read a decode step's KV cache at all, in
 * the paged layout our kernel reads and in the dense layout torch's SDPA
 * reads? No attention here: each kernel only reads K and V (and, for the
 * shared-memory ring, copies them through shared memory and reads them
 * back, as attn.cu's ring does), so its time is the read ceiling of its
 * layout and load mechanism. The attention rows that trail SDPA by 1 to 4 %
 * are the ones where both read about 1 GB; this tells whether the paged
 * layout itself costs those percent or the kernel's mechanics do.
 *
 * Layouts (bf16 rows of D = 128, 256 bytes; one block per (KV head,
 * sequence), KV heads fastest, as attn.cu's grid):
 *   dense: K and V [B, Hkv, ctx, D], a block's rows one contiguous run (SDPA's)
 *   paged: [pages, 16, Hkv, D] with a shuffled block table, a block's rows
 *          256 bytes each, Hkv * 256 bytes apart within a page (moetune's)
 *   pmajor: the paged cache read a page at a time, every head's rows of it
 *          (a contiguous 16 x Hkv x 256 bytes), each block a slice of its
 *          sequence's pages: what a block over all of a sequence's KV
 *          heads would read
 * Mechanisms:
 *   ld:   16-byte loads into registers, U per thread in flight
 *   ring: per-warp rings of RING 16-token chunks (K and V) in shared
 *         memory filled by cp.async, RING - 1 chunks ahead (attn.cu's ring)
 * each with and without the L2 256-byte fetch hint (.L2::256B).
 *
 * usage: read_probe B HKV CTX [REPS]   (D = 128, page 16)
 * Prints one line per kernel: best and median time of REPS, each after a
 * read-only L2 flush, and the bytes read over the best time.
 * Built by CMake where nvcc is found (build/read_probe; a benchmark, never a
 * test), run by bench/read_probe.sh. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CPR 16 /* 16-byte pieces per 256-byte row */
#define PS 16  /* tokens per page */

#define CK(x)                                                                                          \
    do {                                                                                               \
        cudaError_t e_ = (x);                                                                          \
        if (e_ != cudaSuccess) {                                                                       \
            fprintf(stderr, "read_probe: %s at line %d: %s\n", #x, __LINE__, cudaGetErrorString(e_)); \
            exit(1);                                                                                   \
        }                                                                                              \
    } while (0)

template <int PF> __device__ __forceinline__ uint4 ldg(const uint4 *p)
{
    uint4 u;
    if (PF)
        asm volatile("ld.global.nc.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
                     : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                     : "l"(p));
    else
        asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "l"(p));
    return u;
}
template <int PF> __device__ __forceinline__ void cpa(unsigned s, const uint4 *g)
{
    if (PF)
        asm volatile("cp.async.ca.shared.global.L2::256B [%0], [%1], 16;" ::"r"(s), "l"(g));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" ::"r"(s), "l"(g));
}

/* the 16-byte row index of token t of KV head g of sequence b; pg: the
 * sequence's page numbers in shared memory (attn.cu's blocks read them
 * once, so that no address waits on a global load) */
template <int PAGED>
__device__ __forceinline__ long row_at(const int *pg, int Hkv, int ctx, int g, int b, int t)
{
    if (PAGED == 1) return ((long)pg[t / PS] * PS + t % PS) * Hkv + g;
    /* page-major: the block reads slice g of its sequence's pages, every
     * head's rows of each (a page's 16 x Hkv rows are one contiguous run),
     * as a block that took all of a sequence's KV heads would */
    if (PAGED == 2) {
        const int j = g * ctx + t, per = PS * Hkv;
        return (long)pg[j / per] * per + j % per;
    }
    return ((long)b * Hkv + g) * ctx + t;
}

/* the block's page numbers into shared memory (pg: ctx / PS ints) */
__device__ __forceinline__ void load_pages(int *pg, const int *bt, int maxp, int b)
{
    for (int i = threadIdx.x; i < maxp; i += blockDim.x) pg[i] = bt[(long)b * maxp + i];
    __syncthreads();
}

__device__ __forceinline__ void mix(uint4 &a, const uint4 &v) { a.x ^= v.x, a.y ^= v.y, a.z ^= v.z, a.w ^= v.w; }
/* keeps the loads alive: a sink written only if the xor of every byte read
 * hits a value it practically never does */
__device__ __forceinline__ void sink_if(const uint4 &a, unsigned *sink)
{
    if ((a.x ^ a.y ^ a.z ^ a.w) == 0x9e3779b9u) sink[0] = a.x;
}

template <int THREADS, int U, int PF, int PAGED>
__global__ void __launch_bounds__(THREADS) read_ld(const uint4 *K, const uint4 *V, const int *bt, int maxp, int Hkv,
                                                    int ctx, unsigned *sink)
{
    extern __shared__ int pg[];
    const int g = blockIdx.x, b = blockIdx.y, n = ctx * CPR;
    if (PAGED) load_pages(pg, bt, maxp, b);
    uint4 acc = make_uint4(0, 0, 0, 0);
    for (int i0 = threadIdx.x; i0 < n; i0 += THREADS * U) {
        uint4 r[U][2];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int i = i0 + u * THREADS;
            if (i < n) {
                const long row = row_at<PAGED>(pg, Hkv, ctx, g, b, i / CPR) * CPR + i % CPR;
                r[u][0] = ldg<PF>(K + row);
                r[u][1] = ldg<PF>(V + row);
            } else {
                r[u][0] = r[u][1] = make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) mix(acc, r[u][0]), mix(acc, r[u][1]);
    }
    sink_if(acc, sink);
}

#define CHUNK (2 * 16 * CPR) /* uint4 per chunk: 16 tokens' K then V rows */

template <int WARPS, int RING, int PF, int PAGED>
__global__ void __launch_bounds__(WARPS * 32) read_ring(const uint4 *K, const uint4 *V, const int *bt, int maxp,
                                                         int Hkv, int ctx, unsigned *sink)
{
    extern __shared__ uint4 sm[];
    const int g = blockIdx.x, b = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    uint4 *my = sm + warp * RING * CHUNK;
    int *pg = (int *)(sm + WARPS * RING * CHUNK);
    if (PAGED) load_pages(pg, bt, maxp, b);
    const int nch = ctx / 16, mine = nch > warp ? (nch - warp + WARPS - 1) / WARPS : 0;
    auto issue = [&](int k) {
        const int ci = warp + k * WARPS;
        uint4 *dst = my + (k % RING) * CHUNK;
#pragma unroll
        for (int i = lane; i < 16 * CPR; i += 32) {
            const long row = row_at<PAGED>(pg, Hkv, ctx, g, b, ci * 16 + i / CPR) * CPR + i % CPR;
            cpa<PF>((unsigned)__cvta_generic_to_shared(dst + i), K + row);
            cpa<PF>((unsigned)__cvta_generic_to_shared(dst + 16 * CPR + i), V + row);
        }
    };
#pragma unroll
    for (int k = 0; k < RING - 1; k++) {
        if (k < mine) issue(k);
        asm volatile("cp.async.commit_group;");
    }
    uint4 acc = make_uint4(0, 0, 0, 0);
    for (int k = 0; k < mine; k++) {
        if (k + RING - 1 < mine) issue(k + RING - 1);
        asm volatile("cp.async.commit_group;");
        asm volatile("cp.async.wait_group %0;" ::"n"(RING - 1));
        __syncwarp();
        const uint4 *s = my + (k % RING) * CHUNK;
#pragma unroll
        for (int i = lane; i < CHUNK; i += 32) mix(acc, s[i]); /* every byte read back, as the MMAs do */
        __syncwarp();
    }
    sink_if(acc, sink);
}

typedef void (*kfn)(const uint4 *, const uint4 *, const int *, int, int, int, unsigned *);
struct kdef {
    const char *name;
    kfn f;
    int threads, smem;
};

/* dynamic shared memory: the ring's, then the page numbers (the host adds
 * ctx / PS ints) */
#define LD(T, U, PF, P) {"ld " #T "x" #U " pf" #PF, read_ld<T, U, PF, P>, T, 0}
#define RG(W, R, PF, P) {"ring " #W "w x" #R " pf" #PF, read_ring<W, R, PF, P>, W * 32, W * R * CHUNK * 16}
#define ALL(P)                                                                                                   \
    {LD(64, 8, 0, P),   LD(128, 4, 0, P),  LD(128, 8, 0, P),  LD(128, 8, 256, P), LD(256, 4, 0, P),  LD(256, 4, 256, P), \
     LD(256, 8, 0, P),  RG(2, 2, 0, P),    RG(2, 2, 256, P),  RG(2, 3, 0, P),    RG(2, 3, 256, P),   RG(2, 4, 256, P),   \
     RG(4, 2, 0, P),    RG(4, 2, 256, P),  RG(4, 3, 256, P),  RG(4, 4, 256, P),  RG(8, 2, 256, P),   RG(8, 3, 256, P)}

__global__ void flush_read(const uint4 *p, size_t n, unsigned *sink)
{
    uint4 acc = make_uint4(0, 0, 0, 0);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        mix(acc, p[i]);
    sink_if(acc, sink);
}

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s B HKV CTX [REPS]  (CTX a multiple of 16)\n", argv[0]);
        return 2;
    }
    const int B = atoi(argv[1]), Hkv = atoi(argv[2]), ctx = atoi(argv[3]), reps = argc > 4 ? atoi(argv[4]) : 10;
    if (B < 1 || Hkv < 1 || ctx < 16 || ctx % 16 || reps < 1 || reps > 100) {
        fprintf(stderr, "read_probe: B %d, HKV %d, CTX %d (a multiple of 16), REPS %d (1..100): out of range\n", B, Hkv,
                ctx, reps);
        return 2;
    }
    int dev_count = 0;
    if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) {
        fprintf(stderr, "read_probe: no CUDA device\n");
        return 1;
    }
    const int maxp = ctx / PS;
    const long pages = (long)B * maxp;
    const size_t rows = (size_t)pages * PS * Hkv, bytes = rows * 256; /* one of K, V */
    uint4 *K, *V, *fl;
    int *bt;
    unsigned *sink;
    const size_t fl_n = ((size_t)256 << 20) / 16;
    CK(cudaMalloc(&K, bytes));
    CK(cudaMalloc(&V, bytes));
    CK(cudaMalloc(&fl, fl_n * 16));
    CK(cudaMalloc(&bt, pages * sizeof(int)));
    CK(cudaMalloc(&sink, 16));
    CK(cudaMemset(K, 0x3c, bytes));
    CK(cudaMemset(V, 0x3d, bytes));
    CK(cudaMemset(fl, 1, fl_n * 16));
    /* the block table: the pages shuffled, as bench/cuda_attn_check.c's */
    int *h = (int *)malloc(pages * sizeof(int));
    uint64_t s = 0x243f6a8885a308d3ull;
    for (long i = 0; i < pages; i++) h[i] = (int)i;
    for (long i = pages - 1; i > 0; i--) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        long j = (long)(s % (uint64_t)(i + 1));
        int t = h[i];
        h[i] = h[j], h[j] = t;
    }
    CK(cudaMemcpy(bt, h, pages * sizeof(int), cudaMemcpyHostToDevice));
    free(h);
    cudaDeviceProp pr;
    CK(cudaGetDeviceProperties(&pr, 0));
    printf("device %s, %d SMs; B=%d Hkv=%d ctx=%d D=128 page 16: %.1f MB of K and V\n", pr.name,
           pr.multiProcessorCount, B, Hkv, ctx, 2.0 * bytes / 1e6);
    kdef dense[] = ALL(0), paged[] = ALL(1), pmajor[] = ALL(2);
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    static const char *const lname[] = {"dense", "paged", "pmajor"};
    for (int layout = 0; layout < 3; layout++) {
        kdef *ks = layout == 2 ? pmajor : layout ? paged : dense;
        for (int ki = 0; ki < (int)(sizeof dense / sizeof dense[0]); ki++) {
            kdef k = ks[ki];
            k.smem += maxp * (int)sizeof(int);
            if (k.smem > 48 * 1024) CK(cudaFuncSetAttribute((const void *)k.f, cudaFuncAttributeMaxDynamicSharedMemorySize, k.smem));
            float t[100];
            for (int r = 0; r < reps + 1; r++) {
                flush_read<<<4 * pr.multiProcessorCount, 512>>>(fl, fl_n, sink);
                CK(cudaEventRecord(e0));
                k.f<<<dim3(Hkv, B), k.threads, k.smem>>>(K, V, bt, maxp, Hkv, ctx, sink);
                CK(cudaEventRecord(e1));
                CK(cudaEventSynchronize(e1));
                CK(cudaGetLastError());
                if (r) CK(cudaEventElapsedTime(&t[r - 1], e0, e1)); /* the first is a warm-up */
            }
            qsort(t, reps, sizeof t[0], cmpf);
            printf("%-6s %-20s best %8.2f us  median %8.2f us  %6.0f GB/s\n", lname[layout], k.name,
                   t[0] * 1e3, t[reps / 2] * 1e3, 2.0 * bytes / (t[0] * 1e-3) / 1e9);
        }
    }
    return 0;
}
