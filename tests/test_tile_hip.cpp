/* kernels/gpu/tile_hip.h on the host (issue 10): no AMD GPU exists for us,
 * so its primitives run here with a warp of 32 threads, each shuffle a
 * barrier-separated exchange, and are checked against what the PTX
 * instructions they stand for compute: mma.sync.m16n8k16 against a plain
 * matrix product through the ISA's fragment layouts, ldmatrix.x4/.x2
 * against the rows the lanes name, cp.async's zero fill, and the bf16/fp16
 * conversions against the C code's. The fragment layouts below are written
 * from the PTX ISA, not taken from tile_hip.h. C++ because the header is
 * (templates), as the kernels are. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the HIP names the header uses, for a host "warp" of threads ---- */
#define __HIPCC_RTC__ 1 /* portable.h: no hip_runtime.h */
#define __HIP__ 1
#define __device__
#define __forceinline__ inline
#define __global__
struct uint4 { unsigned x, y, z, w; };
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }

static pthread_barrier_t bar;
static unsigned long long slot[32];
static thread_local int tl_lane;
static inline unsigned __lane_id() { return (unsigned)tl_lane; }
/* every lane publishes its value, then reads its source's, within groups
 * of `width` lanes, as HIP's __shfl does */
template <class T> static T __shfl(T v, int src, int width)
{
    unsigned long long bits = 0;
    memcpy(&bits, &v, sizeof v);
    slot[tl_lane] = bits;
    pthread_barrier_wait(&bar);
    unsigned long long got = slot[(tl_lane & ~(width - 1)) + (src & (width - 1))];
    pthread_barrier_wait(&bar);
    T out;
    memcpy(&out, &got, sizeof out);
    return out;
}
template <class T> static T __shfl_xor(T v, int m, int width) { return __shfl(v, tl_lane ^ m, width); }
template <class T> static T __shfl_down(T v, int d, int width) { return __shfl(v, tl_lane + d, width); }

#include "tile_hip.h"

#include "check.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float uniform()
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / (float)0x800000 - 1.0f; /* [-1, 1) */
}
static unsigned short bf16(float f) { return (unsigned short)(__float_as_uint(f) >> 16); } /* exact for these inputs */
static float from_bf16(unsigned short h) { return __uint_as_float((unsigned)h << 16); }

/* one warp: 32 threads, each running fn(lane) */
struct warp_job { void (*fn)(int lane, void *arg); void *arg; int lane; };
static void *lane_main(void *p)
{
    warp_job *j = (warp_job *)p;
    tl_lane = j->lane;
    j->fn(j->lane, j->arg);
    return NULL;
}
static void run_warp(void (*fn)(int, void *), void *arg)
{
    pthread_t t[32];
    warp_job j[32];
    pthread_barrier_init(&bar, NULL, 32);
    for (int l = 0; l < 32; l++) {
        j[l] = {fn, arg, l};
        pthread_create(&t[l], NULL, lane_main, &j[l]);
    }
    for (int l = 0; l < 32; l++) pthread_join(t[l], NULL);
    pthread_barrier_destroy(&bar);
}

/* ---- mma.sync.aligned.m16n8k16.row.col (PTX ISA, "Matrix fragments for
 * mma.m16n8k16"): groupID = lane / 4, tid = lane % 4; A a0..a7 at rows
 * groupID (a0,a1,a4,a5) and groupID+8 (a2,a3,a6,a7), columns tid*2+{0,1}
 * (a0..a3) and +8 (a4..a7), two per register; B b0..b3 at rows tid*2+{0,1}
 * (b0,b1) and +8 (b2,b3), column groupID; C c0..c3 at rows groupID (c0,c1)
 * and groupID+8 (c2,c3), columns tid*2+{0,1}. ---- */
struct mma_case { float A[16][16], B[16][8], C[16][8]; };
static unsigned pack(float lo, float hi) { return (unsigned)bf16(lo) | (unsigned)bf16(hi) << 16; }
static void mma_lane(int l, void *p)
{
    mma_case *m = (mma_case *)p;
    int g = l / 4, t = l % 4;
    u32 a[4] = {pack(m->A[g][2 * t], m->A[g][2 * t + 1]), pack(m->A[g + 8][2 * t], m->A[g + 8][2 * t + 1]),
                pack(m->A[g][2 * t + 8], m->A[g][2 * t + 9]), pack(m->A[g + 8][2 * t + 8], m->A[g + 8][2 * t + 9])};
    u32 b[2] = {pack(m->B[2 * t][g], m->B[2 * t + 1][g]), pack(m->B[2 * t + 8][g], m->B[2 * t + 9][g])};
    float c[4] = {m->C[g][2 * t], m->C[g][2 * t + 1], m->C[g + 8][2 * t], m->C[g + 8][2 * t + 1]};
    mma16816(c, a, b);
    pthread_barrier_wait(&bar); /* every lane has read C before any writes it */
    m->C[g][2 * t] = c[0], m->C[g][2 * t + 1] = c[1], m->C[g + 8][2 * t] = c[2], m->C[g + 8][2 * t + 1] = c[3];
}

static void test_mma()
{
    for (int rep = 0; rep < 4; rep++) {
        static mma_case m;
        double ref[16][8];
        for (int i = 0; i < 16; i++)
            for (int k = 0; k < 16; k++) m.A[i][k] = from_bf16(bf16(uniform()));
        for (int k = 0; k < 16; k++)
            for (int j = 0; j < 8; j++) m.B[k][j] = from_bf16(bf16(uniform()));
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++) {
                m.C[i][j] = rep ? uniform() : 0; /* accumulates onto C */
                ref[i][j] = m.C[i][j];
                for (int k = 0; k < 16; k++) ref[i][j] += (double)m.A[i][k] * m.B[k][j];
            }
        run_warp(mma_lane, &m);
        double worst = 0;
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++) {
                double e = m.C[i][j] - ref[i][j];
                if (e < 0) e = -e;
                if (e > worst) worst = e;
            }
        CHECK(worst < 1e-5, "mma16816, case %d: largest error %g", rep, worst);
    }
}

/* ---- ldmatrix.sync.aligned.m8n8.x4/.x2.shared.b16: lane l gives the row
 * address of row l % 8 of matrix l / 8; register j of lane l holds row l / 4,
 * columns 2 (l % 4) and +1 of matrix j ---- */
struct ld_case { unsigned short rows[32][8 + 4]; u32 got[32][4]; int n; }; /* rows padded, as in the kernels */
static void ld_lane(int l, void *p)
{
    ld_case *c = (ld_case *)p;
    u32 r[4] = {0, 0, 0, 0};
    const void *row = c->rows[(l / 8) * 8 + l % 8];
    if (c->n == 4) ldmatrix_x4(r, row);
    else ldmatrix_x2(r, row);
    memcpy(c->got[l], r, sizeof r);
}

static void test_ldmatrix()
{
    for (int n = 2; n <= 4; n += 2) {
        static ld_case c;
        c.n = n;
        for (int i = 0; i < 32; i++)
            for (int k = 0; k < 12; k++) c.rows[i][k] = (unsigned short)(i * 100 + k);
        run_warp(ld_lane, &c);
        int bad = 0;
        for (int l = 0; l < 32; l++)
            for (int j = 0; j < n; j++) {
                unsigned short lo = c.rows[j * 8 + l / 4][2 * (l % 4)], hi = c.rows[j * 8 + l / 4][2 * (l % 4) + 1];
                if (c.got[l][j] != ((u32)lo | (u32)hi << 16)) bad++;
            }
        CHECK(bad == 0, "ldmatrix .x%d: %d registers differ from the ISA's layout", n, bad);
    }
}

static void copy_lane(int l, void *p)
{
    unsigned char(*buf)[2][16] = (unsigned char(*)[2][16])p;
    cp_async16(mt_sptr_of(buf[l][1]), buf[l][0], l % 2 == 0); /* odd lanes: predicate off */
    cp_async_commit();
    cp_async_wait<0>();
}

int main()
{
    test_mma();
    test_ldmatrix();
    /* cp.async: a copy where the predicate holds, zeros where it does not */
    static unsigned char buf[32][2][16];
    for (int l = 0; l < 32; l++)
        for (int k = 0; k < 16; k++) buf[l][0][k] = (unsigned char)(l + k + 1), buf[l][1][k] = 0xee;
    run_warp(copy_lane, buf);
    int bad = 0;
    for (int l = 0; l < 32; l++)
        for (int k = 0; k < 16; k++) bad += buf[l][1][k] != (l % 2 ? 0 : (unsigned char)(l + k + 1));
    CHECK(bad == 0, "cp_async16: %d bytes wrong", bad);
    /* bf16 rounding: to nearest, ties to even, NaN kept */
    struct { float f; unsigned short h; } r[] = {{1.0f, 0x3f80}, {__uint_as_float(0x3f808000u), 0x3f80},
                                                  {__uint_as_float(0x3f818000u), 0x3f82},
                                                  {__uint_as_float(0x3f808001u), 0x3f81}, {-2.5f, 0xc020}};
    for (auto &x : r) CHECK(f2h(x.f) == x.h, "f2h(%a) = %04x, want %04x", (double)x.f, f2h(x.f), x.h);
    unsigned short nan = f2h(__uint_as_float(0x7fc00001u));
    CHECK((nan & 0x7f80) == 0x7f80 && (nan & 0x7f), "f2h(NaN) = %04x is not a NaN", nan);
    CHECK(h2f(0x3f80) == 1.0f && h2f(0xc020) == -2.5f, "h2f");
    return check_report("test_tile_hip");
}
