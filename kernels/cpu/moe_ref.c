/* The oracle: as plain as it can be, accumulating in double, so that it is
 * obviously right and its own rounding is far below any kernel's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp8.h"
#include "moe_cpu.h"

static double load(const void *p, int dtype, size_t i)
{
    return dtype == MT_DTYPE_FP32 ? (double)((const float *)p)[i]
                                  : (double)mt_bf16_to_f32(((const uint16_t *)p)[i]);
}

int mt_moe_reference(const mt_moe_shape *s, int64_t M, const void *x, const void *w1, const void *w2,
                     const int32_t *ids, const float *tw, double *out)
{
    int64_t N = s->N, K = s->K;
    double *act;
    if (!s || !x || !w1 || !w2 || !ids || !tw || !out || M < 0) return MT_EINVAL;
    act = malloc((size_t)N * sizeof *act);
    if (!act) return MT_ENOMEM;
    memset(out, 0, (size_t)(M * K) * sizeof *out);
    for (int64_t t = 0; t < M; t++) {
        for (int64_t q = 0; q < s->topk; q++) {
            int64_t e = ids[t * s->topk + q];
            double w = tw[t * s->topk + q];
            if (e < 0 || e >= s->E) {
                free(act);
                return MT_EINVAL;
            }
            for (int64_t j = 0; j < N; j++) {
                double g = 0, u = 0;
                size_t gr = (size_t)((e * 2 * N + j) * K), ur = (size_t)((e * 2 * N + N + j) * K);
                for (int64_t k = 0; k < K; k++) {
                    double xv = load(x, s->dtype, (size_t)(t * K + k));
                    g += xv * load(w1, s->dtype, gr + (size_t)k);
                    u += xv * load(w1, s->dtype, ur + (size_t)k);
                }
                act[j] = g / (1.0 + exp(-g)) * u; /* SiLU(gate) * up */
            }
            for (int64_t k = 0; k < K; k++) {
                double acc = 0;
                size_t r = (size_t)((e * K + k) * N);
                for (int64_t j = 0; j < N; j++) acc += act[j] * load(w2, s->dtype, r + (size_t)j);
                out[t * K + k] += w * acc;
            }
        }
    }
    free(act);
    return MT_OK;
}

/* ---- fp8 ---- */

int mt_moe_quant_check(const mt_moe_shape *s, char *why, size_t n)
{
    const char *bad = NULL;
    if (!s) bad = "no shape";
    else if (s->dtype != MT_DTYPE_FP8_W8A8) return MT_OK;
    /* said in mt_quant's terms: the runtime passes these on */
    else if (s->scheme != MT_QUANT_TENSOR && s->scheme != MT_QUANT_CHANNEL && s->scheme != MT_QUANT_BLOCK)
        bad = "scheme is not MT_QUANT_TENSOR, MT_QUANT_CHANNEL or MT_QUANT_BLOCK";
    else if (s->scheme == MT_QUANT_BLOCK && (s->block_n < 1 || s->block_k < 1 || s->block_n > 4096 || s->block_k > 4096))
        bad = "MT_QUANT_BLOCK needs block_n and block_k of 1 to 4096 (DeepSeek-V3: 128, 128)";
    else if (s->scheme != MT_QUANT_BLOCK && (s->block_n || s->block_k))
        bad = "block_n and block_k are for MT_QUANT_BLOCK only";
    if (!bad) return MT_OK;
    if (why && n) snprintf(why, n, "%s", bad);
    return MT_EINVAL;
}

int mt_moe_shape_set_dtype(mt_moe_shape *s, const char *dtype, int64_t block_n, int64_t block_k)
{
    static const struct { const char *name; int dtype, scheme; } tab[] = {
        {"bf16", MT_DTYPE_BF16, 0}, {"fp16", MT_DTYPE_FP16, 0}, {"fp32", MT_DTYPE_FP32, 0},
        {"fp8_w8a8", MT_DTYPE_FP8_W8A8, MT_QUANT_TENSOR}, {"fp8_w8a8_per_channel", MT_DTYPE_FP8_W8A8, MT_QUANT_CHANNEL},
    };
    for (size_t i = 0; s && dtype && i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(dtype, tab[i].name)) continue;
        int blocks = block_n > 0 || block_k > 0;
        if (blocks && tab[i].scheme != MT_QUANT_TENSOR) return MT_EINVAL;
        s->dtype = tab[i].dtype;
        s->scheme = blocks ? MT_QUANT_BLOCK : tab[i].scheme;
        s->block_n = blocks ? block_n : 0;
        s->block_k = blocks ? block_k : 0;
        return MT_OK;
    }
    return MT_EPARSE;
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t mt_moe_weight_scales(const mt_moe_shape *s, int which)
{
    if (mt_moe_quant_check(s, NULL, 0) != MT_OK || s->dtype != MT_DTYPE_FP8_W8A8) return 0;
    int64_t rows = which == 1 ? 2 * s->N : s->K, cols = which == 1 ? s->K : s->N;
    switch (s->scheme) {
    case MT_QUANT_TENSOR: return s->E;
    case MT_QUANT_CHANNEL: return s->E * rows;
    default: return s->E * cdiv(rows, s->block_n) * cdiv(cols, s->block_k);
    }
}

/* one expert's matrix (rows x cols) as the scheme stores it */
static void quant_matrix(const mt_moe_shape *s, const float *w, size_t rows, size_t cols, uint8_t *q, float *sc)
{
    if (s->scheme == MT_QUANT_TENSOR) mt_fp8_quant_tensor(w, rows * cols, q, sc);
    else if (s->scheme == MT_QUANT_CHANNEL) mt_fp8_quant_groups(w, rows, cols, cols, q, sc);
    else mt_fp8_quant_blocks(w, rows, cols, (size_t)s->block_n, (size_t)s->block_k, q, sc);
}

int mt_moe_quantize_weights(const mt_moe_shape *s, const float *w1f, const float *w2f, uint8_t *q1, uint8_t *q2,
                            float *s1, float *s2)
{
    if (!s || s->dtype != MT_DTYPE_FP8_W8A8 || mt_moe_quant_check(s, NULL, 0) != MT_OK || !w1f || !w2f || !q1 || !q2 ||
        !s1 || !s2)
        return MT_EINVAL;
    size_t r1 = (size_t)(2 * s->N), r2 = (size_t)s->K, c1 = (size_t)s->K, c2 = (size_t)s->N;
    int64_t n1 = mt_moe_weight_scales(s, 1) / s->E, n2 = mt_moe_weight_scales(s, 2) / s->E;
    for (int64_t e = 0; e < s->E; e++) {
        quant_matrix(s, w1f + (size_t)e * r1 * c1, r1, c1, q1 + (size_t)e * r1 * c1, s1 + e * n1);
        quant_matrix(s, w2f + (size_t)e * r2 * c2, r2, c2, q2 + (size_t)e * r2 * c2, s2 + e * n2);
    }
    return MT_OK;
}

/* The activations a (rows x cols) quantised and dequantised into d, as the
 * scheme quantises them: written with common/fp8.c's quantisers, apart from
 * the kernel's own in-place code, so that the two check each other. */
static int act_qdq(const mt_moe_shape *s, const float *a, size_t rows, size_t cols, const float *static_scale,
                   double *d)
{
    size_t n = rows * cols, group = s->scheme == MT_QUANT_BLOCK ? (size_t)s->block_k : cols;
    size_t ng = (cols + group - 1) / group;
    uint8_t *q = malloc(n ? n : 1);
    float *sc = malloc((rows * ng + 1) * sizeof *sc);
    if (!q || !sc) {
        free(q), free(sc);
        return MT_ENOMEM;
    }
    if (s->scheme == MT_QUANT_TENSOR) {
        if (static_scale) {
            sc[0] = *static_scale;
            for (size_t i = 0; i < n; i++) q[i] = mt_f32_to_e4m3(a[i] / sc[0]);
        } else {
            mt_fp8_quant_tensor(a, n, q, sc);
        }
        for (size_t i = 0; i < n; i++) d[i] = (double)mt_e4m3_to_f32(q[i]) * sc[0];
    } else {
        mt_fp8_quant_groups(a, rows, cols, group, q, sc);
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                d[r * cols + c] = (double)mt_e4m3_to_f32(q[r * cols + c]) * sc[r * ng + c / group];
    }
    free(q);
    free(sc);
    return MT_OK;
}

/* weight (row, col) of expert e's rows x cols matrix, dequantised */
static double wdq(const mt_moe_shape *s, const uint8_t *w, const float *sc, int64_t e, int64_t rows, int64_t cols,
                  int64_t r, int64_t c)
{
    double v = mt_e4m3_to_f32(w[(size_t)((e * rows + r) * cols + c)]);
    if (s->scheme == MT_QUANT_TENSOR) return v * sc[e];
    if (s->scheme == MT_QUANT_CHANNEL) return v * sc[e * rows + r];
    int64_t nb = cdiv(rows, s->block_n), kb = cdiv(cols, s->block_k);
    return v * sc[(e * nb + r / s->block_n) * kb + c / s->block_k];
}

int mt_moe_reference_fp8(const mt_moe_shape *s, int64_t M, const uint16_t *x, const uint8_t *w1, const uint8_t *w2,
                         const mt_moe_scales *sc, const int32_t *ids, const float *tw, double *out, float *act_amax)
{
    if (!s || s->dtype != MT_DTYPE_FP8_W8A8 || mt_moe_quant_check(s, NULL, 0) != MT_OK || !x || !w1 || !w2 || !sc ||
        !sc->w1 || !sc->w2 || !ids || !tw || M < 0 || (s->scheme != MT_QUANT_TENSOR && (sc->a1 || sc->a2)))
        return MT_EINVAL;
    int64_t N = s->N, K = s->K, P = M * s->topk;
    for (int64_t i = 0; i < P; i++)
        if (ids[i] < 0 || ids[i] >= s->E) return MT_EINVAL;
    float *xf = malloc((size_t)(M * K + 1) * sizeof *xf), *af = malloc((size_t)(P * N + 1) * sizeof *af);
    double *xd = malloc((size_t)(M * K + 1) * sizeof *xd), *ad = malloc((size_t)(P * N + 1) * sizeof *ad);
    int rc = xf && af && xd && ad ? MT_OK : MT_ENOMEM;
    if (rc == MT_OK) {
        for (int64_t i = 0; i < M * K; i++) xf[i] = mt_bf16_to_f32(x[i]);
        rc = act_qdq(s, xf, (size_t)M, (size_t)K, sc->a1, xd);
    }
    /* the intermediate of every (token, slot) pair, rounded to bf16 as a
     * GPU pipeline stores it */
    float amax = 0;
    for (int64_t p = 0; rc == MT_OK && p < P; p++) {
        int64_t t = p / s->topk, e = ids[p];
        for (int64_t j = 0; j < N; j++) {
            double g = 0, u = 0;
            for (int64_t k = 0; k < K; k++) {
                g += xd[t * K + k] * wdq(s, w1, sc->w1, e, 2 * N, K, j, k);
                u += xd[t * K + k] * wdq(s, w1, sc->w1, e, 2 * N, K, N + j, k);
            }
            float v = mt_bf16_to_f32(mt_f32_to_bf16((float)(g / (1.0 + exp(-g)) * u)));
            af[p * N + j] = v;
            amax = fabsf(v) > amax ? fabsf(v) : amax;
        }
    }
    if (act_amax) *act_amax = amax;
    if (rc == MT_OK && out) rc = act_qdq(s, af, (size_t)P, (size_t)N, sc->a2, ad);
    if (rc == MT_OK && out) {
        memset(out, 0, (size_t)(M * K) * sizeof *out);
        for (int64_t p = 0; p < P; p++) {
            int64_t t = p / s->topk, e = ids[p];
            for (int64_t k = 0; k < K; k++) {
                double acc = 0;
                for (int64_t j = 0; j < N; j++) acc += ad[p * N + j] * wdq(s, w2, sc->w2, e, K, N, k, j);
                out[t * K + k] += (double)tw[p] * acc;
            }
        }
    }
    free(xf), free(af), free(xd), free(ad);
    return rc;
}
