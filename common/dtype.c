#include "dtype.h"

#include <math.h>

size_t mt_dtype_size(int dtype)
{
    return dtype == MT_DTYPE_FP32 ? 4 : dtype == MT_DTYPE_FP8_W8A8 ? 1 : 2;
}

uint64_t mt_rng_next(mt_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float mt_rng_uniform(mt_rng *r)
{
    return (float)((double)(mt_rng_next(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

void mt_fill_random(void *dst, int dtype, size_t n, float scale, mt_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        float v = mt_rng_uniform(r) * scale;
        if (v == 0.0f) v = scale * 0.5f; /* "never zeros": a zero hides a missed load */
        if (dtype == MT_DTYPE_FP32)
            ((float *)dst)[i] = v;
        else
            ((uint16_t *)dst)[i] = mt_f32_to_bf16(v);
    }
}

double mt_rel_l2_error(const float *out, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) return NAN;
        double d = (double)out[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}
