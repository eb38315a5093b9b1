#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moe_cpu.h"

int mt_moe_route(const float *logits, int64_t M, int64_t E, int64_t topk, int renormalize,
                 int32_t *ids, float *w)
{
    if (!logits || !ids || !w || M < 0 || E <= 0 || topk <= 0 || topk > E) return MT_EINVAL;
    for (int64_t t = 0; t < M; t++) {
        const float *row = logits + t * E;
        float mx = row[0];
        for (int64_t e = 1; e < E; e++) mx = row[e] > mx ? row[e] : mx;
        double sum = 0;
        for (int64_t e = 0; e < E; e++) sum += exp((double)row[e] - mx);
        /* selection by repeated max: E is at most a few hundred */
        double picked = 0;
        for (int64_t s = 0; s < topk; s++) {
            int64_t best = -1;
            for (int64_t e = 0; e < E; e++) {
                int taken = 0;
                for (int64_t q = 0; q < s; q++) taken |= ids[t * topk + q] == e;
                if (!taken && (best < 0 || row[e] > row[best])) best = e;
            }
            ids[t * topk + s] = (int32_t)best;
            double p = exp((double)row[best] - mx) / sum;
            w[t * topk + s] = (float)p;
            picked += p;
        }
        if (renormalize)
            for (int64_t s = 0; s < topk; s++) w[t * topk + s] = (float)(w[t * topk + s] / picked);
    }
    return MT_OK;
}

int mt_moe_align(const int32_t *ids, int64_t M, int64_t topk, int64_t E, int block_m,
                 int32_t *sorted, int32_t *expert_ids, int32_t *tpe, int64_t *n_sorted)
{
    int64_t pairs = M * topk, pos = 0;
    int64_t *cursor;
    if (!ids || !sorted || !expert_ids || !tpe || !n_sorted || block_m <= 0 || E <= 0) return MT_EINVAL;
    memset(tpe, 0, (size_t)E * sizeof *tpe);
    for (int64_t i = 0; i < pairs; i++) {
        if (ids[i] < 0 || ids[i] >= E) return MT_EINVAL;
        tpe[ids[i]]++;
    }
    cursor = malloc((size_t)E * sizeof *cursor);
    if (!cursor) return MT_ENOMEM;
    /* a counting sort: each expert's run starts at a multiple of block_m,
     * and pairs keep their original order within it */
    for (int64_t e = 0; e < E; e++) {
        int64_t padded = (tpe[e] + block_m - 1) / block_m * block_m;
        cursor[e] = pos;
        for (int64_t q = pos + tpe[e]; q < pos + padded; q++) sorted[q] = (int32_t)pairs;
        for (int64_t b = pos / block_m; b < (pos + padded) / block_m; b++) expert_ids[b] = (int32_t)e;
        pos += padded;
    }
    for (int64_t i = 0; i < pairs; i++) sorted[cursor[ids[i]]++] = (int32_t)i;
    free(cursor);
    *n_sorted = pos;
    return MT_OK;
}
