/* The oracle: as plain as it can be, accumulating in double, so that it is
 * obviously right and its own rounding is far below any kernel's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
