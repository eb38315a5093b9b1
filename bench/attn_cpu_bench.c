/* The CPU paged attention decode timed on one shape (bf16, pages of 16,
 * every sequence at the full context, pages in order): best of 15 runs.
 * Build it against two libmoetune.a to compare kernel versions in one run
 * (the build makes build/attn_cpu_bench for the current one):
 *   cc -O2 -Ikernels/cpu -Iinclude bench/attn_cpu_bench.c OLD/libmoetune.a -lcjson -lm -lpthread -ldl
 * usage: attn_cpu_bench H HKV D B CTX PARTITION PAGES_PER_ITER THREADS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "attn.h"
#include "moe_cpu.h"
#include "moetune/moetune.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s H HKV D B CTX PARTITION PAGES_PER_ITER THREADS\n", argv[0]);
        return 2;
    }
    int v[8];
    for (int i = 0; i < 8; i++)
        if ((v[i] = atoi(argv[i + 1])) < (i == 5 ? 0 : 1)) {
            fprintf(stderr, "argument %d ('%s') must be a positive integer\n", i + 1, argv[i + 1]);
            return 2;
        }
    int H = v[0], Hkv = v[1], D = v[2], B = v[3], ctx = v[4];
    mt_attn_shape s = {H, Hkv, D, 16, MT_DTYPE_BF16};
    int64_t per = (ctx + 15) / 16, pages = (int64_t)B * per;
    size_t qn = (size_t)B * (size_t)H * (size_t)D, kvn = (size_t)pages * 16 * (size_t)Hkv * (size_t)D;
    void *q = malloc(qn * 2), *k = malloc(kvn * 2), *vc = malloc(kvn * 2), *out = malloc(qn * 2);
    int32_t *bt = malloc((size_t)pages * sizeof *bt), *lens = malloc((size_t)B * sizeof *lens);
    if (!q || !k || !vc || !out || !bt || !lens) return fprintf(stderr, "out of memory\n"), 1;
    mt_rng r = {1};
    for (int64_t i = 0; i < pages; i++) bt[i] = (int32_t)i;
    for (int i = 0; i < B; i++) lens[i] = ctx;
    mt_fill_random(q, s.dtype, qn, 1, &r);
    mt_fill_random(k, s.dtype, kvn, 1, &r);
    mt_fill_random(vc, s.dtype, kvn, 1, &r);
    mt_attn_batch ab = {B, per, pages, q, k, vc, bt, lens, 0};
    mt_attn_cpu_params p = {v[5], v[6], v[7]};
    char why[256];
    if (mt_attn_check(&s, &ab, &p, v[7], why, sizeof why) != MT_OK) return fprintf(stderr, "%s\n", why), 2;
    void *ws = malloc(mt_attn_cpu_workspace(&s, &ab, &p));
    mt_pool *pool = NULL;
    if (!ws || mt_pool_new(&pool, v[7]) != MT_OK) return fprintf(stderr, "out of memory\n"), 1;
    double best = 1e30;
    for (int i = 0; i < 15; i++) {
        double t = now();
        mt_attn_cpu_forward(pool, &s, &ab, &p, ws, out);
        t = now() - t;
        if (t < best) best = t;
    }
    printf("%.1f us\n", best * 1e6);
    mt_pool_free(pool);
    free(q), free(k), free(vc), free(out), free(bt), free(lens), free(ws);
    return 0;
}
