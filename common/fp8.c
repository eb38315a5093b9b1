#include "fp8.h"

#include <math.h>
#include <string.h>

float mt_e4m3_to_f32(uint8_t q)
{
    int sign = q >> 7, e = (q >> 3) & 0xf, m = q & 7;
    if (e == 15 && m == 7) return NAN;
    /* subnormals: m / 8 * 2^-6; normals: (1 + m / 8) * 2^(e - 7) */
    float v = e ? ldexpf(1.0f + (float)m / 8.0f, e - 7) : ldexpf((float)m / 8.0f, -6);
    return sign ? -v : v;
}

uint8_t mt_f32_to_e4m3(float x)
{
    if (isnan(x)) return 0x7f;
    uint8_t sign = signbit(x) ? 0x80 : 0;
    float a = fabsf(x);
    if (a >= MT_E4M3_MAX) return sign | 0x7e; /* saturate: 448 */
    /* the step of the grid at a: 2^(e - 3) for a in [2^e, 2^(e+1)), the
     * subnormals' 2^-9 below 2^-6 */
    int e;
    frexpf(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    int ex = e - 1 < -6 ? -6 : e - 1;
    float step = ldexpf(1.0f, ex - 3);
    float k = a / step; /* exact: a power-of-two division */
    float r = nearbyintf(k); /* the current mode: to nearest, ties to even */
    float v = r * step;
    if (v >= MT_E4M3_MAX) return sign | 0x7e;
    if (v == 0.0f) return sign;
    int ve;
    float vf = frexpf(v, &ve);
    if (ve - 1 < -6) return sign | (uint8_t)(v / ldexpf(1.0f, -9)); /* subnormal: m = v / 2^-9 */
    int m = (int)((vf * 2.0f - 1.0f) * 8.0f);
    return sign | (uint8_t)((ve - 1 + 7) << 3) | (uint8_t)m;
}

float mt_fp8_scale_of(float amax)
{
    return (amax > 1e-10f ? amax : 1e-10f) / MT_E4M3_MAX;
}

float mt_fp8_qdq(float x, float scale)
{
    return mt_e4m3_to_f32(mt_f32_to_e4m3(x / scale)) * scale;
}

void mt_fp8_quant_tensor(const float *x, size_t n, uint8_t *q, float *scale)
{
    float amax = 0;
    for (size_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    *scale = mt_fp8_scale_of(amax);
    for (size_t i = 0; i < n; i++) q[i] = mt_f32_to_e4m3(x[i] / *scale);
}

void mt_fp8_quant_groups(const float *x, size_t rows, size_t cols, size_t group, uint8_t *q, float *scales)
{
    if (group == 0 || group > cols) group = cols;
    size_t ng = (cols + group - 1) / group;
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < ng; g++) {
            size_t c0 = g * group, c1 = c0 + group < cols ? c0 + group : cols;
            float amax = 0;
            for (size_t c = c0; c < c1; c++) amax = fmaxf(amax, fabsf(x[r * cols + c]));
            float s = mt_fp8_scale_of(amax);
            scales[r * ng + g] = s;
            for (size_t c = c0; c < c1; c++) q[r * cols + c] = mt_f32_to_e4m3(x[r * cols + c] / s);
        }
}

void mt_fp8_quant_blocks(const float *x, size_t rows, size_t cols, size_t bn, size_t bk, uint8_t *q, float *scales)
{
    size_t nb = (rows + bn - 1) / bn, kb = (cols + bk - 1) / bk;
    for (size_t b = 0; b < nb; b++)
        for (size_t k = 0; k < kb; k++) {
            size_t r0 = b * bn, r1 = r0 + bn < rows ? r0 + bn : rows, c0 = k * bk, c1 = c0 + bk < cols ? c0 + bk : cols;
            float amax = 0;
            for (size_t r = r0; r < r1; r++)
                for (size_t c = c0; c < c1; c++) amax = fmaxf(amax, fabsf(x[r * cols + c]));
            float s = mt_fp8_scale_of(amax);
            scales[b * kb + k] = s;
            for (size_t r = r0; r < r1; r++)
                for (size_t c = c0; c < c1; c++) q[r * cols + c] = mt_f32_to_e4m3(x[r * cols + c] / s);
        }
}
