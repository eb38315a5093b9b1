#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
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
    /* HIP compiles the same kernel sources (kernels/cuda, kernels/gpu) */
    if (strcmp(backend, "cuda") == 0 || strcmp(backend, "hip") == 0) return MT_CUDA_KERNEL_HASH;
    return NULL;
}

/* the decimal keys of a JSON object, in file order; 0 when one is not a
 * positive integer */
static int int_keys(const cJSON *o, int64_t *keys, int max)
{
    int n = 0;
    for (const cJSON *e = o->child; e; e = e->next) {
        const char *k = e->string;
        char *end;
        if (!k || !*k || *k == '-' || *k == '+' || n == max) return 0;
        long long v = strtoll(k, &end, 10);
        if (*end || v < 1 || !cJSON_IsObject(e)) return 0;
        keys[n++] = v;
    }
    return n;
}

int mt_attn_config_pick(const char *json, int64_t batch, int64_t ctx, char *params, size_t n, int64_t *bk, int64_t *ck,
                        char *why, size_t wl)
{
    char tmp[8];
    if (!why) why = tmp, wl = sizeof tmp;
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    int64_t keys[1024];
    int rc = MT_EPARSE;
    if (!cJSON_IsObject(root) || !root->child) {
        snprintf(why, wl, "not a JSON object of batch sizes");
        goto out;
    }
    int nb = int_keys(root, keys, 1024);
    if (!nb) {
        snprintf(why, wl, "a batch key is not a positive integer, or its value not an object");
        goto out;
    }
    const cJSON *byb = cJSON_GetArrayItem(root, mt_nearest_m(keys, nb, batch));
    if (bk) *bk = keys[mt_nearest_m(keys, nb, batch)];
    int nc = byb->child ? int_keys(byb, keys, 1024) : 0;
    if (!nc) {
        snprintf(why, wl, "batch %s: a context key is not a positive integer, or its value not an object", byb->string);
        goto out;
    }
    int ci = mt_nearest_m(keys, nc, ctx);
    if (ck) *ck = keys[ci];
    char *text = cJSON_PrintUnformatted(cJSON_GetArrayItem(byb, ci));
    if (!text) {
        rc = MT_ENOMEM;
        goto out;
    }
    if (strlen(text) >= n) {
        snprintf(why, wl, "the parameters do not fit in %zu bytes", n);
        rc = MT_EINVAL;
    } else {
        strcpy(params, text);
        rc = MT_OK;
    }
    cJSON_free(text);
out:
    cJSON_Delete(root);
    return rc;
}
