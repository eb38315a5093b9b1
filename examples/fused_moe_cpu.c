/*
 * An engine's view of libmoetune: open a runtime, let it look the tuned
 * config up, run the bundled fused-MoE kernel on the CPU, and check the
 * result against a plain loop.
 *
 * Build against an installed moetune:
 *   cc -O2 fused_moe_cpu.c $(pkg-config --cflags --libs moetune) -lm -o fused_moe_cpu
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moetune/moetune.h>

#define M 24
#define E 8
#define N 64
#define K 128
#define TOPK 2

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

static void log_cb(int level, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "libmoetune[%d]: %s\n", level, msg);
}

int main(void)
{
    static float x[M * K], w1[E * 2 * N * K], w2[E * K * N], logits[M * E], out[M * K];
    unsigned seed = 1;
    for (int i = 0; i < M * K; i++) x[i] = frand(&seed);
    for (int i = 0; i < E * 2 * N * K; i++) w1[i] = frand(&seed) * 0.1f;
    for (int i = 0; i < E * K * N; i++) w2[i] = frand(&seed) * 0.1f;
    for (int i = 0; i < M * E; i++) logits[i] = frand(&seed);

    mt_runtime_options opts = MT_RUNTIME_OPTIONS_INIT;
    opts.log = log_cb;
    mt_runtime *rt;
    int rc = mt_runtime_open(&rt, &opts);
    if (rc != MT_OK) {
        fprintf(stderr, "mt_runtime_open: %s\n", mt_status_str(rc));
        return 1;
    }
    mt_moe_config used;
    rc = mt_fused_moe_cpu(rt, MT_DTYPE_FP32, M, E, N, K, TOPK, 1, x, w1, w2, logits, out, &used);
    if (rc != MT_OK) {
        fprintf(stderr, "mt_fused_moe_cpu: %s\n", mt_status_str(rc));
        mt_runtime_close(rt);
        return 1;
    }
    printf("device %s: block_m=%d block_n=%d block_k=%d threads=%d from %s (key M=%lld)\n",
           mt_runtime_device_name(rt), used.block_m, used.block_n, used.block_k, used.threads,
           mt_config_source_str(used.source), (long long)used.m_key);
    mt_runtime_close(rt);

    /* the same computation, plainly: softmax top-k, renormalised */
    double num = 0, den = 0;
    for (int t = 0; t < M; t++) {
        int ids[TOPK];
        double w[TOPK], wsum = 0;
        for (int s = 0; s < TOPK; s++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int q = 0; q < s; q++) taken |= ids[q] == e;
                if (!taken && (best < 0 || logits[t * E + e] > logits[t * E + best])) best = e;
            }
            ids[s] = best;
            w[s] = exp(logits[t * E + best]);
            wsum += w[s];
        }
        for (int k = 0; k < K; k++) {
            double ref = 0;
            for (int s = 0; s < TOPK; s++) {
                const float *g = w1 + (size_t)ids[s] * 2 * N * K, *d = w2 + (size_t)ids[s] * K * N;
                double acc = 0;
                for (int j = 0; j < N; j++) {
                    double gv = 0, uv = 0;
                    for (int kk = 0; kk < K; kk++) {
                        gv += (double)x[t * K + kk] * g[j * K + kk];
                        uv += (double)x[t * K + kk] * g[(N + j) * K + kk];
                    }
                    acc += gv / (1 + exp(-gv)) * uv * d[k * N + j];
                }
                ref += w[s] / wsum * acc;
            }
            num += (out[t * K + k] - ref) * (out[t * K + k] - ref);
            den += ref * ref;
        }
    }
    double err = sqrt(num / den);
    printf("relative error against a plain loop: %.2e\n", err);
    if (!(err < 1e-4)) {
        fprintf(stderr, "the result does not match\n");
        return 1;
    }
    printf("matches\n");
    return 0;
}
