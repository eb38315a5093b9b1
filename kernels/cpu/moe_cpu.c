/*
 * The tuned CPU fused-MoE kernel. Tiles of (block_m pairs) x (block_n
 * columns) are dealt to threads from an atomic counter; the weight tile of
 * block_n rows x block_k depth is converted to fp32 once and reused by every
 * pair of the tile, which is why block_m and block_k change the speed: they
 * trade weight reuse against cache footprint.
 *
 * fp8 (MT_DTYPE_FP8_W8A8): the activations are quantised and dequantised in
 * place before each GEMM (x per the scheme; the intermediate rounded to bf16
 * first, as a GPU pipeline stores it), and each weight tile is decoded with
 * its scales as it is converted, so the GEMMs are the fp32 ones on the
 * dequantised values: the CPU has no fp8 arithmetic to gain from keeping
 * them apart.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "fp8.h"
#include "moe_cpu.h"

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

struct layout {
    size_t xf, sorted, eids, tpe, act, out2, rmax, scratch, per_thread, total;
    int64_t cap;
};

static void plan(const mt_moe_shape *s, const mt_cpu_params *p, int64_t M, struct layout *L)
{
    size_t o = 0;
    int64_t pairs = M * s->topk;
    L->cap = mt_moe_align_capacity(M, s->topk, s->E, p->block_m);
    L->xf = o;      o += ALIGN64((size_t)(M * s->K) * sizeof(float));
    L->sorted = o;  o += ALIGN64((size_t)L->cap * sizeof(int32_t));
    L->eids = o;    o += ALIGN64((size_t)(L->cap / p->block_m + 1) * sizeof(int32_t));
    L->tpe = o;     o += ALIGN64((size_t)s->E * sizeof(int32_t));
    L->act = o;     o += ALIGN64((size_t)(pairs * s->N) * sizeof(float));
    L->out2 = o;    o += ALIGN64((size_t)(pairs * s->K) * sizeof(float));
    /* fp8: each row's absolute maximum, for a dynamic per-tensor scale */
    L->rmax = o;    o += s->dtype == MT_DTYPE_FP8_W8A8 ? ALIGN64((size_t)(pairs > M ? pairs : M) * sizeof(float)) : 0;
    /* per thread: two weight tiles (gate, up) and two accumulator tiles */
    L->per_thread = ALIGN64((size_t)(2 * p->block_n * p->block_k + 2 * p->block_m * p->block_n) * sizeof(float));
    L->scratch = o; o += L->per_thread * (size_t)p->threads;
    L->total = o + 64;
}

size_t mt_moe_cpu_workspace(const mt_moe_shape *s, const mt_cpu_params *p, int64_t M)
{
    struct layout L;
    plan(s, p, M, &L);
    return L.total;
}

static int pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

/* the power of two at or above v, at most 2^62: the loop ends for any v */
static int64_t next_pow2(int64_t v)
{
    int64_t p = 1;
    while (p < v && p < (INT64_C(1) << 62)) p <<= 1;
    return p;
}

int64_t mt_cpu_max_block_m(int64_t M, int64_t topk)
{
    int64_t v = next_pow2(topk > 0 && M > INT64_MAX / topk ? INT64_MAX : M * topk);
    return v < 4 ? 4 : v;
}

int64_t mt_cpu_max_block_nk(int64_t N, int64_t K) { return next_pow2(N > K ? N : K); }

static int clamp_pow2(int want, int64_t max)
{
    while (want > max && want > 1) want >>= 1;
    return want;
}

void mt_cpu_params_default(int64_t N, int64_t K, int64_t topk, int64_t M, int threads, mt_cpu_params *out)
{
    out->block_m = clamp_pow2(16, mt_cpu_max_block_m(M, topk));
    out->block_n = clamp_pow2(32, mt_cpu_max_block_nk(N, K));
    out->block_k = clamp_pow2(256, mt_cpu_max_block_nk(N, K));
    out->threads = threads < 1 ? 1 : threads;
}

int mt_cpu_params_check(const mt_moe_shape *s, const mt_cpu_params *p, int max_threads)
{
    if (!s || !p) return MT_EINVAL;
    if (!pow2(p->block_m) || p->block_m > 256 || !pow2(p->block_n) || p->block_n > 1024 ||
        !pow2(p->block_k) || p->block_k < 8 || p->block_k > 4096)
        return MT_EINVAL;
    if (p->threads < 1 || p->threads > max_threads) return MT_EINVAL;
    if (s->dtype != MT_DTYPE_BF16 && s->dtype != MT_DTYPE_FP32 && s->dtype != MT_DTYPE_FP8_W8A8) return MT_EUNSUPPORTED;
    return mt_moe_quant_check(s, NULL, 0);
}

struct job {
    const mt_moe_shape *s;
    const mt_cpu_params *p;
    int64_t M, nblocks, ntiles1, ntiles2;
    const void *x, *w1, *w2;
    const mt_moe_scales *sc;
    const int32_t *ids;
    const float *tw;
    float *xf, *act, *out2, *out, *rmax;
    float lut[256]; /* e4m3 decoded */
    float scale;    /* the per-tensor activation scale of the pass */
    int32_t *sorted, *eids;
    char *scratch;
    size_t per_thread;
    atomic_long next;
};

/* 8 independent partial sums so the compiler can vectorise the loop
 * without -ffast-math. */
static inline float dot(const float *restrict a, const float *restrict b, int n)
{
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static void load_tile(float *dst, const void *src, int dtype, size_t row0, size_t ld, int rows, size_t col0, int cols, int dld)
{
    for (int r = 0; r < rows; r++) {
        size_t base = (row0 + (size_t)r) * ld + col0;
        float *d = dst + (size_t)r * dld;
        if (dtype == MT_DTYPE_FP32) {
            memcpy(d, (const float *)src + base, (size_t)cols * sizeof(float));
        } else {
            const uint16_t *h = (const uint16_t *)src + base;
            for (int c = 0; c < cols; c++) d[c] = mt_bf16_to_f32(h[c]);
        }
    }
}

/* fp8: rows x cols of expert e's R x C e4m3 matrix w from (r0, c0),
 * decoded with the scheme's scales sc (mt_quant's layouts) */
static void load_tile_fp8(const struct job *j, float *dst, const uint8_t *w, const float *sc, int64_t e, int64_t R,
                          int64_t C, int64_t r0, int rows, int64_t c0, int cols, int dld)
{
    const mt_moe_shape *s = j->s;
    int64_t bk = s->scheme == MT_QUANT_BLOCK ? s->block_k : C;
    int64_t nb = s->scheme == MT_QUANT_BLOCK ? (R + s->block_n - 1) / s->block_n : 0, kb = (C + bk - 1) / bk;
    for (int r = 0; r < rows; r++) {
        int64_t row = r0 + r;
        const uint8_t *h = w + (size_t)((e * R + row) * C + c0);
        float *d = dst + (size_t)r * dld;
        if (s->scheme != MT_QUANT_BLOCK) {
            float f = s->scheme == MT_QUANT_TENSOR ? sc[e] : sc[e * R + row];
            for (int c = 0; c < cols; c++) d[c] = j->lut[h[c]] * f;
            continue;
        }
        /* a scale per block_k columns: the tile's columns in runs of one */
        const float *srow = sc + (e * nb + row / s->block_n) * kb;
        for (int c = 0; c < cols;) {
            int64_t col = c0 + c, end = (col / bk + 1) * bk - c0;
            int stop = end < cols ? (int)end : cols;
            float f = srow[col / bk];
            for (; c < stop; c++) d[c] = j->lut[h[c]] * f;
        }
    }
}

/* fp8: a row of cols activations quantised and dequantised in place with
 * the scheme's granularity; per tensor with the pass's scale */
static void qdq_row(const struct job *j, float *a, int64_t cols)
{
    const mt_moe_shape *s = j->s;
    if (s->scheme == MT_QUANT_TENSOR) {
        for (int64_t c = 0; c < cols; c++) a[c] = j->lut[mt_f32_to_e4m3(a[c] / j->scale)] * j->scale;
        return;
    }
    int64_t g = s->scheme == MT_QUANT_BLOCK ? s->block_k : cols;
    for (int64_t c0 = 0; c0 < cols; c0 += g) {
        int64_t c1 = c0 + g < cols ? c0 + g : cols;
        float amax = 0;
        for (int64_t c = c0; c < c1; c++) amax = fmaxf(amax, fabsf(a[c]));
        float f = mt_fp8_scale_of(amax);
        for (int64_t c = c0; c < c1; c++) a[c] = j->lut[mt_f32_to_e4m3(a[c] / f)] * f;
    }
}

static float row_amax(const float *a, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i]));
    return m;
}

static void convert_x(void *arg, int tid)
{
    struct job *j = arg;
    int64_t rows = j->M, K = j->s->K;
    int nt = j->p->threads, fp8 = j->s->dtype == MT_DTYPE_FP8_W8A8;
    for (int64_t t = tid; t < rows; t += nt) {
        load_tile(j->xf + t * K, j->x, fp8 ? MT_DTYPE_BF16 : j->s->dtype, (size_t)t, (size_t)K, 1, 0, (int)K, (int)K);
        if (!fp8) continue;
        if (j->s->scheme != MT_QUANT_TENSOR) qdq_row(j, j->xf + t * K, K);
        else j->rmax[t] = row_amax(j->xf + t * K, K);
    }
}

/* fp8, per tensor: the rows quantised with the pass's scale (a = xf or act) */
struct qpass { struct job *j; float *a; int64_t rows, cols; };
static void qdq_rows(void *arg, int tid)
{
    struct qpass *q = arg;
    for (int64_t r = tid; r < q->rows; r += q->j->p->threads) qdq_row(q->j, q->a + r * q->cols, q->cols);
}
/* fp8: the intermediate rounded to bf16, and its rows' maxima (per tensor)
 * or its rows quantised (per token or group) */
static void act_round(void *arg, int tid)
{
    struct qpass *q = arg;
    for (int64_t r = tid; r < q->rows; r += q->j->p->threads) {
        float *a = q->a + r * q->cols;
        for (int64_t c = 0; c < q->cols; c++) a[c] = mt_bf16_to_f32(mt_f32_to_bf16(a[c]));
        if (q->j->s->scheme == MT_QUANT_TENSOR) q->j->rmax[r] = row_amax(a, q->cols);
        else qdq_row(q->j, a, q->cols);
    }
}

/* the per-tensor scale of a pass: the static one, or the rows' maximum */
static float tensor_scale(const float *rmax, int64_t rows, const float *fixed)
{
    if (fixed) return *fixed;
    float m = 0;
    for (int64_t r = 0; r < rows; r++) m = fmaxf(m, rmax[r]);
    return mt_fp8_scale_of(m);
}

static void gemm1(void *arg, int tid)
{
    struct job *j = arg;
    const mt_moe_shape *s = j->s;
    int BM = j->p->block_m, BN = j->p->block_n, BK = j->p->block_k;
    int64_t N = s->N, K = s->K, pairs = j->M * s->topk;
    float *wg = (float *)(j->scratch + (size_t)tid * j->per_thread);
    float *wu = wg + (size_t)BN * BK;
    float *ag = wu + (size_t)BN * BK;
    float *au = ag + (size_t)BM * BN;
    for (;;) {
        long item = atomic_fetch_add(&j->next, 1);
        if (item >= j->nblocks * j->ntiles1) break;
        int64_t b = item / j->ntiles1, j0 = (item % j->ntiles1) * BN;
        int nj = (int)(N - j0 < BN ? N - j0 : BN);
        int64_t e = j->eids[b];
        const int32_t *rows = j->sorted + b * BM;
        memset(ag, 0, (size_t)BM * BN * sizeof(float));
        memset(au, 0, (size_t)BM * BN * sizeof(float));
        for (int64_t k0 = 0; k0 < K; k0 += BK) {
            int kl = (int)(K - k0 < BK ? K - k0 : BK);
            if (s->dtype == MT_DTYPE_FP8_W8A8) {
                load_tile_fp8(j, wg, j->w1, j->sc->w1, e, 2 * N, K, j0, nj, k0, kl, BK);
                load_tile_fp8(j, wu, j->w1, j->sc->w1, e, 2 * N, K, N + j0, nj, k0, kl, BK);
            } else {
                load_tile(wg, j->w1, s->dtype, (size_t)(e * 2 * N + j0), (size_t)K, nj, (size_t)k0, kl, BK);
                load_tile(wu, j->w1, s->dtype, (size_t)(e * 2 * N + N + j0), (size_t)K, nj, (size_t)k0, kl, BK);
            }
            for (int i = 0; i < BM; i++) {
                if (rows[i] >= pairs) continue; /* padding */
                const float *xr = j->xf + (rows[i] / s->topk) * K + k0;
                for (int c = 0; c < nj; c++) {
                    ag[i * BN + c] += dot(xr, wg + (size_t)c * BK, kl);
                    au[i * BN + c] += dot(xr, wu + (size_t)c * BK, kl);
                }
            }
        }
        for (int i = 0; i < BM; i++) {
            if (rows[i] >= pairs) continue;
            float *dst = j->act + (size_t)rows[i] * N + j0;
            for (int c = 0; c < nj; c++) {
                float g = ag[i * BN + c];
                dst[c] = g / (1.0f + expf(-g)) * au[i * BN + c];
            }
        }
    }
}

static void gemm2(void *arg, int tid)
{
    struct job *j = arg;
    const mt_moe_shape *s = j->s;
    int BM = j->p->block_m, BN = j->p->block_n, BK = j->p->block_k;
    int64_t N = s->N, K = s->K, pairs = j->M * s->topk;
    float *wt = (float *)(j->scratch + (size_t)tid * j->per_thread);
    float *acc = wt + (size_t)2 * BN * BK;
    for (;;) {
        long item = atomic_fetch_add(&j->next, 1);
        if (item >= j->nblocks * j->ntiles2) break;
        int64_t b = item / j->ntiles2, c0 = (item % j->ntiles2) * BN;
        int nc = (int)(K - c0 < BN ? K - c0 : BN);
        int64_t e = j->eids[b];
        const int32_t *rows = j->sorted + b * BM;
        memset(acc, 0, (size_t)BM * BN * sizeof(float));
        for (int64_t n0 = 0; n0 < N; n0 += BK) {
            int nl = (int)(N - n0 < BK ? N - n0 : BK);
            if (s->dtype == MT_DTYPE_FP8_W8A8) load_tile_fp8(j, wt, j->w2, j->sc->w2, e, K, N, c0, nc, n0, nl, BK);
            else load_tile(wt, j->w2, s->dtype, (size_t)(e * K + c0), (size_t)N, nc, (size_t)n0, nl, BK);
            for (int i = 0; i < BM; i++) {
                if (rows[i] >= pairs) continue;
                const float *ar = j->act + (size_t)rows[i] * N + n0;
                for (int c = 0; c < nc; c++) acc[i * BN + c] += dot(ar, wt + (size_t)c * BK, nl);
            }
        }
        for (int i = 0; i < BM; i++) {
            if (rows[i] >= pairs) continue;
            float w = j->tw[rows[i]];
            float *dst = j->out2 + (size_t)rows[i] * K + c0;
            for (int c = 0; c < nc; c++) dst[c] = w * acc[i * BN + c];
        }
    }
}

static void combine(void *arg, int tid)
{
    struct job *j = arg;
    int64_t K = j->s->K, topk = j->s->topk;
    for (int64_t t = tid; t < j->M; t += j->p->threads) {
        float *o = j->out + t * K;
        const float *src = j->out2 + t * topk * K;
        memcpy(o, src, (size_t)K * sizeof(float));
        for (int64_t q = 1; q < topk; q++)
            for (int64_t k = 0; k < K; k++) o[k] += src[q * K + k];
    }
}

int mt_moe_cpu_forward(mt_pool *pool, const mt_moe_shape *s, const mt_cpu_params *p, int64_t M,
                       const void *x, const void *w1, const void *w2, const int32_t *ids,
                       const float *tw, void *workspace, float *out)
{
    return mt_moe_cpu_forward_q(pool, s, p, M, x, w1, w2, NULL, ids, tw, workspace, out);
}

int mt_moe_cpu_forward_q(mt_pool *pool, const mt_moe_shape *s, const mt_cpu_params *p, int64_t M, const void *x,
                         const void *w1, const void *w2, const mt_moe_scales *sc, const int32_t *ids, const float *tw,
                         void *workspace, float *out)
{
    struct layout L;
    struct job j;
    int64_t n_sorted = 0;
    int rc;
    if (!pool || !s || !p || !x || !w1 || !w2 || !ids || !tw || !workspace || !out || M < 0)
        return MT_EINVAL;
    int fp8 = s->dtype == MT_DTYPE_FP8_W8A8;
    if (fp8 && (!sc || !sc->w1 || !sc->w2 || (s->scheme != MT_QUANT_TENSOR && (sc->a1 || sc->a2)))) return MT_EINVAL;
    if ((rc = mt_cpu_params_check(s, p, mt_pool_size(pool))) != MT_OK) return rc;
    if (M == 0) return MT_OK;
    plan(s, p, M, &L);
    char *ws = (char *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    memset(&j, 0, sizeof j);
    j.s = s; j.p = p; j.M = M; j.x = x; j.w1 = w1; j.w2 = w2; j.sc = sc; j.ids = ids; j.tw = tw; j.out = out;
    j.rmax = (float *)(ws + L.rmax);
    if (fp8)
        for (int i = 0; i < 256; i++) j.lut[i] = mt_e4m3_to_f32((uint8_t)i);
    j.xf = (float *)(ws + L.xf);
    j.sorted = (int32_t *)(ws + L.sorted);
    j.eids = (int32_t *)(ws + L.eids);
    j.act = (float *)(ws + L.act);
    j.out2 = (float *)(ws + L.out2);
    j.scratch = ws + L.scratch;
    j.per_thread = L.per_thread;
    rc = mt_moe_align(ids, M, s->topk, s->E, p->block_m, j.sorted, j.eids, (int32_t *)(ws + L.tpe), &n_sorted);
    if (rc != MT_OK) return rc;
    j.nblocks = n_sorted / p->block_m;
    j.ntiles1 = (s->N + p->block_n - 1) / p->block_n;
    j.ntiles2 = (s->K + p->block_n - 1) / p->block_n;
    mt_pool_run(pool, p->threads, convert_x, &j);
    struct qpass qx = {&j, j.xf, M, s->K}, qa = {&j, j.act, M * s->topk, s->N};
    if (fp8 && s->scheme == MT_QUANT_TENSOR) {
        j.scale = tensor_scale(j.rmax, M, sc->a1);
        mt_pool_run(pool, p->threads, qdq_rows, &qx);
    }
    atomic_store(&j.next, 0);
    mt_pool_run(pool, p->threads, gemm1, &j);
    if (fp8) {
        mt_pool_run(pool, p->threads, act_round, &qa);
        if (s->scheme == MT_QUANT_TENSOR) {
            j.scale = tensor_scale(j.rmax, M * s->topk, sc->a2);
            mt_pool_run(pool, p->threads, qdq_rows, &qa);
        }
    }
    atomic_store(&j.next, 0);
    mt_pool_run(pool, p->threads, gemm2, &j);
    mt_pool_run(pool, p->threads, combine, &j);
    return MT_OK;
}

struct peak_job { long iters; float out[256]; };

static void peak_part(void *arg, int tid)
{
    struct peak_job *j = arg;
    /* 32 independent chains: enough to hide multiply-add latency on every
     * core we know, vectorised like the kernel's dot products */
    float acc[32];
    for (int l = 0; l < 32; l++) acc[l] = 0.001f * (float)(l + tid);
    const float a = 0.999f, c = 0.0001f;
    for (long i = 0; i < j->iters; i++)
        for (int l = 0; l < 32; l++) acc[l] = acc[l] * a + c;
    float s = 0;
    for (int l = 0; l < 32; l++) s += acc[l];
    j->out[tid & 255] = s;
}

double mt_cpu_peak_gflops(mt_pool *pool, int threads)
{
    struct peak_job j = {.iters = 2000000};
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        mt_pool_run(pool, threads, peak_part, &j);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double t = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
        if (t < best) best = t;
    }
    /* read the results so the loop is not optimised away */
    volatile float sink = j.out[0];
    (void)sink;
    return 2.0 * 32 * (double)j.iters * threads / best / 1e9;
}
