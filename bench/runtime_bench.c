/* How fast the runtime answers: loading all configs of a model (cold, one
 * runtime per round), and a lookup after load. TARGETS.md: a lookup in at
 * most 1 us, loading all configs of one model in at most 1 ms.
 *
 * usage: runtime_bench CONFIG_DIR DEVICE_NAME E N [E N ...]
 * Each (E, N) is one config file of the model (one per MoE layer shape). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moetune/moetune.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 5 || (argc - 3) % 2) {
        fprintf(stderr, "usage: %s CONFIG_DIR DEVICE_NAME E N [E N ...]\n", argv[0]);
        return 2;
    }
    int nk = (argc - 3) / 2;
    mt_moe_key keys[16];
    for (int i = 0; i < nk && i < 16; i++) {
        memset(&keys[i], 0, sizeof keys[i]);
        keys[i].E = atoll(argv[3 + 2 * i]);
        keys[i].N = atoll(argv[4 + 2 * i]);
    }
    mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
    o.config_dir = argv[1];
    o.cache_dir = o.bundled_dir = "/nonexistent";
    o.device_name = argv[2];
    o.backend = "cuda";
    enum { ROUNDS = 200, LOOKUPS = 1000000 };
    double load[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        mt_runtime *rt;
        double t = now();
        mt_runtime_open(&rt, &o);
        for (int i = 0; i < nk; i++)
            if (mt_runtime_load_moe(rt, &keys[i]) != MT_OK) return 1;
        load[r] = now() - t;
        mt_runtime_close(rt);
    }
    qsort(load, ROUNDS, sizeof *load, cmp);
    mt_runtime *rt;
    mt_runtime_open(&rt, &o);
    mt_moe_config c;
    long sink = 0;
    for (int i = 0; i < nk; i++) mt_runtime_lookup_moe(rt, &keys[i], 1, &c);
    if (c.source == MT_SOURCE_DEFAULT) {
        fprintf(stderr, "no config file found for the first key in %s: the figures would time the default\n", argv[1]);
        return 1;
    }
    double t = now();
    for (long i = 0; i < LOOKUPS; i++) {
        /* M sweeps 1..8192 so the nearest-key scan does real work */
        mt_runtime_lookup_moe(rt, &keys[i % nk], 1 + (i * 7919) % 8192, &c);
        sink += c.block_size_m;
    }
    double per = (now() - t) / LOOKUPS;
    mt_runtime_close(rt);
    printf("| files | load median ms | load p90 ms | lookup ns | targets |\n| --- | --- | --- | --- | --- |\n");
    printf("| %d | %.4f | %.4f | %.1f | load <= 1 ms, lookup <= 1000 ns |\n", nk, load[ROUNDS / 2] * 1e3,
           load[ROUNDS * 9 / 10] * 1e3, per * 1e9);
    return sink == 42 ? 3 : 0; /* keeps the loop from being optimised away */
}
