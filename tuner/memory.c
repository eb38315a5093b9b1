#include "memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mt_moe_mem_need(int64_t E, int64_t N, int64_t K, int64_t topk, int64_t max_m, size_t esz, int gpu,
                     int64_t max_tokens, mt_mem_need *out)
{
    double e = (double)esz;
    out->weights = (double)E * 3.0 * (double)N * (double)K * e;
    if (gpu) {
        /* x and out at the largest M; per pipeline run (at most max_tokens
         * tokens) the gate-and-up output, the activation and GEMM 2's
         * output per pair; the L2 flush buffer (4 x 50 MB at most) */
        double chunk = (double)(max_m < max_tokens || max_tokens <= 0 ? max_m : max_tokens);
        out->buffers = 2.0 * (double)max_m * (double)K * e + chunk * (double)topk * (3.0 * (double)N + (double)K) * e +
                       (double)max_m * (double)topk * 16.0 + 200e6;
    } else {
        /* the CPU kernel's workspace (x in float, the activation and GEMM
         * 2's output per pair in float), x and out, the cache flush */
        double pairs = (double)max_m * (double)topk;
        out->buffers = (double)max_m * (double)K * (4.0 + e + 4.0) + pairs * ((double)N + (double)K) * 4.0 +
                       pairs * 16.0 + 256e6;
    }
}

double mt_host_memory_available(void)
{
    const char *o = getenv("MOETUNE_HOST_MEMORY");
    if (o && *o) return strtod(o, NULL);
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024.0;
}

void mt_moe_mem_hint(char *out, size_t n, int64_t experts, int64_t inter, int64_t K, int64_t topk, int64_t max_m,
                     size_t esz, int gpu, int64_t max_tokens, int tp, int ep, double avail)
{
    int best_tp = 0, best_ep = 0;
    mt_mem_need need;
    /* tensor parallel splits each expert's intermediate size */
    for (int t = tp * 2; ep == 1 && t <= 1024 && !best_tp; t *= 2) {
        if (inter % t) break;
        mt_moe_mem_need(experts, inter / t, K, topk, max_m, esz, gpu, max_tokens, &need);
        if (need.weights + need.buffers <= avail) best_tp = t;
    }
    /* expert parallel splits the experts */
    for (int p = ep * 2; tp == 1 && p <= experts && !best_ep; p *= 2) {
        if (experts % p) break;
        mt_moe_mem_need(experts / p, inter, K, topk < experts / p ? topk : experts / p, max_m, esz, gpu, max_tokens,
                        &need);
        if (need.weights + need.buffers <= avail) best_ep = p;
    }
    out[0] = 0;
    if (best_tp && best_ep) snprintf(out, n, "--tp %d or --ep %d", best_tp, best_ep);
    else if (best_tp) snprintf(out, n, "--tp %d", best_tp);
    else if (best_ep) snprintf(out, n, "--ep %d", best_ep);
}

void mt_bytes_text(char *out, size_t n, double b)
{
    if (b >= 1e9) snprintf(out, n, "%.1f GB", b / 1e9);
    else snprintf(out, n, "%.0f MB", b / 1e6);
}
