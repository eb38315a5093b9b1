/* Helpers every kernel family and backend shares: bf16 conversion, element
 * sizes, deterministic random inputs, and the error measure checks use. */
#ifndef MT_DTYPE_H
#define MT_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "moetune/moetune.h"

static inline float mt_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v = {.u = (uint32_t)h << 16};
    return v.f;
}
static inline uint16_t mt_f32_to_bf16(float f)
{
    union { uint32_t u; float f; } v = {.f = f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* quiet NaN */
    uint32_t round = 0x7fffu + ((v.u >> 16) & 1u); /* to nearest, ties to even */
    return (uint16_t)((v.u + round) >> 16);
}
size_t mt_dtype_size(int dtype);

/* Deterministic random numbers (splitmix64), so a seed reproduces inputs. */
typedef struct mt_rng { uint64_t s; } mt_rng;
uint64_t mt_rng_next(mt_rng *r);
float mt_rng_uniform(mt_rng *r); /* [-1, 1) */
/* Fill n elements of dtype with uniform values in [-scale, scale), never
 * all zero. */
void mt_fill_random(void *dst, int dtype, size_t n, float scale, mt_rng *r);

/* Relative L2 error of out against ref over n elements: NaN when out holds a
 * NaN or infinity. */
double mt_rel_l2_error(const float *out, const double *ref, size_t n);

#endif
