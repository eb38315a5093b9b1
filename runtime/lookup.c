#include <string.h>

#include "moetune/moetune.h"
#include "rt_internal.h"

int mt_nearest_m(const int64_t *keys, int n, int64_t m)
{
    int best = -1;
    int64_t best_d = 0;
    for (int i = 0; i < n; i++) {
        int64_t d = keys[i] > m ? keys[i] - m : m - keys[i];
        /* strict '<' keeps the earliest key on a tie, as Python's min() does */
        if (best < 0 || d < best_d) {
            best = i;
            best_d = d;
        }
    }
    return best;
}

void mt_vllm_default_config(int64_t M, int64_t E, int rocm, int out[6])
{
    out[0] = M <= 32 ? 16 : M <= 96 ? 32 : M <= 512 ? 64 : 128;
    out[1] = M <= 64 ? 64 : 128;
    out[2] = M <= 64 ? 128 : 64;
    out[3] = E > 0 && M / E > 128 ? 16 : 1;
    out[4] = M <= 128 ? 4 : 8;
    out[5] = rocm ? 2 : M <= 32 ? 4 : 3;
}

const char *mt_kernel_hash(const char *backend)
{
    if (!backend) return NULL;
    if (strcmp(backend, "cpu") == 0) return MT_CPU_KERNEL_HASH;
    if (strcmp(backend, "cuda") == 0) return MT_CUDA_KERNEL_HASH;
    return NULL;
}
