/* What a worker does for one variant: fresh inputs, a checked run against
 * the oracle, then timing. Also the device ceilings for the roofline. */
#ifndef MT_MEASURE_H
#define MT_MEASURE_H

#include <stdint.h>

#include "moe_cpu.h"

typedef struct mt_policy {
    int warmup;        /* untimed runs first */
    int min_reps;      /* at least this many timed runs ... */
    int max_reps;      /* ... and at most this many */
    double min_time_s; /* keep timing until this much has been timed */
    int cold;          /* flush caches before each timed run */
    int check_rows;    /* tokens compared with the oracle (a random window) */
    double tolerance;  /* relative L2 error allowed */
    int max_tokens;    /* GPU: tokens per launch of the pipeline; more are chunked (bounds the workspace) */
    double abort_us;   /* per variant, 0: off; stop once the fastest of 3 repetitions is slower than this */
    int routings;      /* routings of the batch size's tokens, timed in turn: the figure is the mean of
                        * their medians, as a config must serve whatever the router decides */
} mt_policy;

/* The default CPU policy, and its text as stored with each measurement: a
 * measurement taken under another policy is a different measurement. */
void mt_policy_cpu_default(mt_policy *p);
/* The default policy of a backend ("cpu", "cuda", "hip"): the CPU's, or
 * the GPUs' (measure_cuda.h). */
void mt_policy_default(const char *backend, mt_policy *p);
void mt_policy_text(const mt_policy *p, const char *backend, char *out, size_t n);

typedef struct mt_measure_result {
    int ok;              /* 1: checked and timed; 0: failed or aborted, reason says why */
    int aborted;         /* 1: stopped early, clearly slower than abort_us; median_us is partial */
    char reason[256];
    double median_us, spread_us, rel_err;
    double tolerance; /* the relative error the check allowed (0: not checked) */
    int reps;
    int64_t experts_hit;
} mt_measure_result;

typedef struct mt_cpu_bench mt_cpu_bench;
int mt_cpu_bench_new(mt_cpu_bench **out, int threads);
void mt_cpu_bench_free(mt_cpu_bench *b);

/* Measure one variant. Returns MT_OK whether or not the variant passed
 * (result->ok tells); an error only when measuring was impossible. */
/* Paged attention decode on the CPU: `batch` sequences of `ctx` tokens,
 * pages scattered through the cache; the output poisoned, the first two
 * sequences checked against the double reference, then timed with the
 * caches flushed. res->experts_hit is unused. */
struct mt_attn_shape;
struct mt_attn_cpu_params;
/* The inputs of an attention measurement for seed: B sequences of ctx
 * tokens (B x ceil(ctx / page) pages, shuffled through the cache), q, K and V
 * uniform in [-1, 1). The CPU and CUDA benches both draw them here, so a
 * config's figures on either backend come from the same inputs. */
void mt_attn_draw_inputs(const struct mt_attn_shape *s, int64_t B, int64_t ctx, uint64_t seed, void *q, void *k, void *v,
                         int32_t *bt, int32_t *lens);
/* Judge an attention decode's output `out` for batch ab: 1 when every
 * element is finite and the first two sequences are within the dtype's
 * tolerance of the double reference (res->rel_err set); 0 with
 * res->reason when not; a negative status on error. */
struct mt_attn_batch;
int mt_attn_judge(const struct mt_attn_shape *s, const struct mt_attn_batch *ab, const void *out, mt_measure_result *res);
int mt_cpu_bench_attn(mt_cpu_bench *b, const struct mt_attn_shape *s, int64_t batch, int64_t ctx,
                      const struct mt_attn_cpu_params *p, uint64_t seed, const mt_policy *pol, mt_measure_result *res);

int mt_cpu_bench_measure(mt_cpu_bench *b, const mt_moe_shape *s, int64_t M, const mt_cpu_params *p,
                         uint64_t seed, const mt_policy *pol, mt_measure_result *res);

/* Test hook: when MOETUNE_TEST_FAULT is "crash:SUB", "hang:SUB",
 * "nan:SUB" or "killed:SUB" (SIGKILL, as another process's OOM kill would
 * send) and SUB occurs in params_json, the worker misbehaves so: the tests
 * prove that the tuner survives such variants. */
void mt_cpu_bench_set_fault(mt_cpu_bench *b, int fault);
enum { MT_FAULT_NONE = 0, MT_FAULT_CRASH, MT_FAULT_HANG, MT_FAULT_NAN, MT_FAULT_GPU, MT_FAULT_KILLED, MT_FAULT_FATAL };
/* MT_FAULT_FATAL ("fatal:SUB", any backend): the worker answers as it does
 * after a device fault (failed, "fatal") and exits, so the tests can check
 * that the next variant is not blamed. */
/* MT_FAULT_GPU ("gpufault:SUB", CUDA only): the pipeline reads an illegal
 * address, which poisons the device context like a real kernel bug. */

/* Copy bandwidth (bytes read + written) and peak fp32 FLOP rate, measured
 * on all threads. */
int mt_cpu_ceilings(mt_cpu_bench *b, double *bandwidth_gbs, double *peak_gflops);

/* The early-abort rule shared by the backends: times[0..n-1] in seconds
 * times to_us microseconds. 1 (and res->aborted, res->reason set) when the
 * variant should stop. */
int abort_early(const double *times, int n, double to_us, const mt_policy *pol, mt_measure_result *res);

/* Median, interquartile spread and count of n times (times[i] * to_us is
 * microseconds) into res; ok unless aborted. Sorts times. */
void mt_summarize_times(double *times, int n, double to_us, mt_measure_result *res);

/* times[i] was taken on routing i % routings: the mean over the routings
 * of each one's median is the figure, the IQR of all is the spread */
void mt_summarize_routings(double *times, int n, int routings, double to_us, mt_measure_result *res);

/* The timing protocol every measurement shares, on any backend and for
 * any family: `warmup` untimed runs, then timed runs until the policy's
 * count and time are reached (each routing as often as the others, in
 * turn, each at least twice), stopped early past the abort threshold; the
 * figure into res (mt_summarize_routings). What differs is the timer:
 * the CPU's wall clock around a run, a GPU's events around a graph replay. */
typedef struct mt_timed_runs {
    void *ctx;
    int routings; /* 1: the inputs do not change between runs */
    /* before run `rep`, outside the timed window: its routing in place
     * (rep % routings), and the caches flushed when `cold`; may be NULL */
    int (*prepare)(void *ctx, int rep, int cold);
    /* one run: its seconds into *seconds, or untimed (a warmup) when NULL */
    int (*run)(void *ctx, double *seconds);
} mt_timed_runs;
/* MT_OK, or what prepare or run returned; times holds pol->max_reps. */
int mt_time_runs(const mt_timed_runs *t, const mt_policy *pol, double *times, mt_measure_result *res);

/* The roofline floor in microseconds. */
double mt_roofline_floor_us(const mt_moe_shape *s, int64_t M, int64_t experts_hit, double bandwidth_gbs,
                            double peak_gflops);
/* The same for the engines' quantised dtypes (fp8_w8a8[_per_channel],
 * int8_w8a8, int8_w8a16, int4_w4a16): weights of 1 or 1/2 byte, bf16
 * activations in and out; w8a8 products at twice the measured bf16 peak
 * (the tensor cores' fp8 and int8 rate), weight-only dtypes at the bf16
 * peak. NaN for another dtype. */
double mt_roofline_floor_quant_us(const char *dtype, int64_t E, int64_t N, int64_t K, int64_t topk, int64_t M,
                                  int64_t experts_hit, double bandwidth_gbs, double peak_gflops);

#endif
