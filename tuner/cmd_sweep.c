/* moetune sweep: tune one problem on one device. Every variant is measured
 * in a worker process and committed as it is taken, so a killed sweep loses
 * nothing and a repeated sweep measures only what is missing. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "rt_internal.h" /* mt_kernel_hash */
#include "sweep_opts.h"
#include "sweep_plan.h"
#include "cmds.h"
#include "device.h"
#include "export.h"
#include "log.h"
#include "jobs.h"
#include "measure.h"
#include "measure_cuda.h"
#include "moe_launch.h"
#include "memory.h"
#include "report.h"
#include "precompile.h"
#include "space.h"
#include "strategy.h"
#include "util.h"
#include "workerpool.h"
#include "engine.h"

static const char usage[] =
    "usage: moetune sweep [--device auto|cpu|cuda:N|hip:N] [problem] [options]\n"
    "\n"
    "Tune the fused-MoE kernel for one problem on one device, store every\n"
    "measurement in the database, print the best config per batch size and\n"
    "export the config files.\n"
    "\n"
    "  --kernel fused_moe|attention  the kernel family (default fused_moe; attention:\n"
    "                          moetune sweep --kernel attention --help)\n"
    "  --engine vllm|sglang    tune that engine's own Triton fused-MoE kernel, imported from\n"
    "                          the Python on PATH (or $MOETUNE_PYTHON), instead of moetune's;\n"
    "                          files are written as the engine reads them (docs/engines.md)\n"
    "\n"
    "Problem (one of; with none, the default job: --model tiny on the CPU,\n"
    "--model mixtral-8x7b --tp 2 on a GPU):\n"
    "  --model NAME            a preset (moetune sweep --list-models)\n"
    "  --model-config PATH     a Hugging Face config.json\n"
    "  --experts E --intermediate I --hidden K --topk T   an explicit shape\n"
    "  --tp N                  tensor parallel: N = intermediate / tp\n"
    "  --ep N                  expert parallel: E = experts / ep\n"
    "  --dtype T               weights and activations: bf16 (default), fp16 (GPUs), fp32\n"
    "                          (CPU), fp8_w8a8 (e4m3 with float scales: the CPU, and CUDA\n"
    "                          GPUs from sm_89); with --engine also int8_w8a8, int8_w8a16,\n"
    "                          int4_w4a16 (vLLM's names)\n"
    "  --block-shape N,K       with fp8_w8a8: the weights' scale blocks, activations in\n"
    "                          1xK groups (DeepSeek-V3: 128,128); without it, per tensor\n"
    "  --group-size G          with --engine and int4_w4a16 or int8_w8a16: weights in groups\n"
    "                          of G along K (default: the model config's; else 128 for\n"
    "                          int4, one scale per output channel for int8)\n"
    "  --zero-points           with --engine and int4_w4a16: a zero point per group, as AWQ\n"
    "                          stores it (default: what the model config says)\n"
    "  --per-channel           with fp8_w8a8: weights scaled per output channel,\n"
    "                          activations per token (compressed-tensors' channel scheme)\n"
    "  --disable-shared-experts-fusion  with --engine sglang: tune E routed experts, as\n"
    "                          SGLang runs them with this flag; by default SGLang fuses the\n"
    "                          shared expert of DeepSeek-V3, Kimi-K2, GLM-4.5 and Llama 4 (E+1)\n"
    "  --down                  with --engine sglang: then tune the down GEMM on its own, with\n"
    "                          each batch size's gate-up config pinned, for SGLang's _down\n"
    "                          file (--time is shared: three fifths for the gate-up GEMM)\n"
    "  --batch-sizes LIST      e.g. 1,8,64 (default vLLM's 18; CPU default job: 1,8,32,128)\n"
    "\n"
    "Search:\n"
    "  --strategy grid|random|bayes\n"
    "                          bayes (default): a Gaussian-process model of log(time)\n"
    "                          proposes by expected improvement; grid: evenly spread over\n"
    "                          the valid points; random: a seeded shuffle\n"
    "  --budget N|P%           at most N variants timed per batch size, or P percent of\n"
    "                          each batch size's valid points (at least 5); default 10%\n"
    "                          for bayes and random, every point for grid\n"
    "  --time DURATION         stop proposing after this much wall time (e.g. 90s, 10m, 1h)\n"
    "  --abort-factor F        stop a variant early once its fastest of 3 repetitions is\n"
    "                          F times slower than the best of its batch size (default 1.3\n"
    "                          for random and bayes, 0 (off) for grid)\n"
    "  --finalists N           measure the best N of each batch size (and the default)\n"
    "                          again, side by side over the rounds, and pick the winner\n"
    "                          from that (default 3, at most 32; 0 or 1: off)\n"
    "  --finalist-rounds R     rounds of the finalists (default 3, at most 9)\n"
    "  --timeout SEC           a variant running longer is killed (default 60)\n"
    "  --retry-failed          measure again the variants stored as failed (a wrong\n"
    "                          result, a compile or launch error); failures that were\n"
    "                          not the variant's (a timeout, a kill from outside) are\n"
    "                          measured again on every run without it\n"
    "  --seed N                seed of the random inputs (default 1)\n"
    "  --max-tokens N          GPU: tokens per pipeline launch, larger M is chunked, so the\n"
    "                          workspace is bounded (default 16384)\n"
    "  --shard I/N             only the batch sizes of shard I of N (0 <= I < N): N nodes\n"
    "                          with I = 0 .. N-1 cover the sweep exactly once\n"
    "  --job ID                internal: the daemon's job this sweep runs (progress and\n"
    "                          cancelling go through the database)\n"
    "  --only NAME=V[,NAME=V]  search only the points with these parameter values, named as\n"
    "                          the config files name them (e.g. NUM_SM=0, or GEMV=1 for the\n"
    "                          CUDA small-batch path); the default config is measured only\n"
    "                          where it is one of them\n"
    "  --compile-jobs N        GPU: compile the space's kernels with N processes before\n"
    "                          measuring (default: the online CPUs; 0: compile each\n"
    "                          variant when it is measured); with --engine, the engine's\n"
    "                          Triton kernels the search is about to measure, N at a\n"
    "                          time, and on the CPU too when given\n"
    "\n"
    "Output:\n"
    "  --db PATH               database (default $XDG_DATA_HOME/moetune/moetune.db)\n"
    "  --out DIR               where config files go (default $XDG_DATA_HOME/moetune/configs)\n"
    "  --no-export             write no files\n"
    "  --json                  print the results as JSON\n"
    "  --quiet                 no progress line\n"
    "  --dry-run               print the problem, its batch sizes and the memory it needs,\n"
    "                          then exit without measuring\n"
    "  --list-models           list the presets and exit\n"
    "\n"
    "Before measuring, the sweep estimates the memory the problem needs (the\n"
    "experts' weights and the buffers of the largest batch size) and refuses a\n"
    "problem that does not fit the host (CPU) or the GPU, saying what --tp or\n"
    "--ep would fit.\n";

/* the command named in usage errors: sweep, or submit checking a job */
static const char *me = "sweep";
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    /* the loop stops after the variant in flight; a second signal exits */
    if (interrupted) _exit(MT_EXIT_INTERRUPTED);
    interrupted = 1;
}

/* fused MoE's own options; the ones every sweep takes are in
 * tuner/sweep_opts.c */
enum {
    O_MODEL = 256, O_MODEL_CONFIG, O_EXPERTS, O_INTER, O_HIDDEN, O_TOPK, O_TP, O_EP, O_DTYPE, O_BATCH, O_LIST,
    O_MAX_TOKENS, O_KERNEL, O_ONLY, O_DRY_RUN, O_ENGINE, O_BLOCK_SHAPE, O_NO_FUSION, O_PER_CHANNEL, O_GROUP_SIZE,
    O_DOWN, O_ZERO_POINTS
};

static const struct option moe_opts[] = {
    {"model", required_argument, 0, O_MODEL}, {"model-config", required_argument, 0, O_MODEL_CONFIG},
    {"experts", required_argument, 0, O_EXPERTS}, {"intermediate", required_argument, 0, O_INTER},
    {"hidden", required_argument, 0, O_HIDDEN}, {"topk", required_argument, 0, O_TOPK},
    {"tp", required_argument, 0, O_TP}, {"ep", required_argument, 0, O_EP},
    {"dtype", required_argument, 0, O_DTYPE}, {"batch-sizes", required_argument, 0, O_BATCH},
    {"list-models", no_argument, 0, O_LIST}, {"max-tokens", required_argument, 0, O_MAX_TOKENS},
    {"kernel", required_argument, 0, O_KERNEL}, {"only", required_argument, 0, O_ONLY},
    {"dry-run", no_argument, 0, O_DRY_RUN}, {"engine", required_argument, 0, O_ENGINE},
    {"block-shape", required_argument, 0, O_BLOCK_SHAPE},
    {"disable-shared-experts-fusion", no_argument, 0, O_NO_FUSION}, {"per-channel", no_argument, 0, O_PER_CHANNEL},
    {"group-size", required_argument, 0, O_GROUP_SIZE}, {"down", no_argument, 0, O_DOWN},
    {"zero-points", no_argument, 0, O_ZERO_POINTS}, {"help", no_argument, 0, 'h'}};
#define NMOE ((int)(sizeof moe_opts / sizeof moe_opts[0]))

typedef struct sweep_opts {
    mt_sweep_common c; /* what every sweep takes */
    const char *only;
    mt_problem_opts prob;
    int64_t max_tokens;
    int dry_run;
    int down; /* SGLang's down GEMM too */
} sweep_opts;

static int parse_opts(int argc, char **argv, sweep_opts *o)
{
    int c;
    int64_t v;
    struct option lo[NMOE + 32 + 1];
    memset(lo, 0, sizeof lo);
    memcpy(lo, moe_opts, sizeof moe_opts);
    memcpy(lo + NMOE, mt_sweep_common_options, (size_t)mt_sweep_ncommon * sizeof lo[0]);
    memset(o, 0, sizeof *o);
    opterr = 0; /* our own message names the option and the command */
    /* bayes is the default since it met issue 5's targets on both recorded
     * H100 grids (bench/results/2026-11-23-replay-order) */
    mt_sweep_common_init(&o->c, MT_STRATEGY_BAYES);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int rc = mt_sweep_common_opt(me, c, optarg, &o->c);
        if (rc >= 0) {
            if (rc != MT_EXIT_OK) return rc;
            continue;
        }
        rc = MT_EXIT_OK;
        switch (c) {
        case 'h': fputs(usage, stdout); return -1;
        case O_LIST:
            for (int i = 0; i < mt_n_presets; i++) printf("%-16s %s\n", mt_presets[i].name, mt_presets[i].about);
            return -1;
        case O_ONLY: o->only = optarg; break;
        case O_DRY_RUN: o->dry_run = 1; break;
        case O_MODEL: o->prob.model = optarg; break;
        case O_MODEL_CONFIG: o->prob.model_config = optarg; break;
        case O_EXPERTS: rc = mt_parse_int_opt(me, "--experts", optarg, 1, 1 << 16, &o->prob.experts); break;
        case O_INTER: rc = mt_parse_int_opt(me, "--intermediate", optarg, 1, 1 << 20, &o->prob.intermediate); break;
        case O_HIDDEN: rc = mt_parse_int_opt(me, "--hidden", optarg, 1, 1 << 20, &o->prob.hidden); break;
        case O_TOPK: rc = mt_parse_int_opt(me, "--topk", optarg, 1, 1 << 16, &o->prob.topk); break;
        case O_TP: rc = mt_parse_int_opt(me, "--tp", optarg, 1, 1024, &v); o->prob.tp = (int)v; break;
        case O_EP: rc = mt_parse_int_opt(me, "--ep", optarg, 1, 1024, &v); o->prob.ep = (int)v; break;
        case O_DTYPE: o->prob.dtype = optarg; break;
        case O_ENGINE:
            if (!mt_engine_known(optarg)) return mt_usage_error(me, "--engine '%s': expected vllm or sglang", optarg);
            o->prob.engine = optarg;
            break;
        case O_BLOCK_SHAPE: o->prob.block_shape = optarg; break;
        case O_NO_FUSION: o->prob.no_shared_fusion = 1; break;
        case O_PER_CHANNEL: o->prob.per_channel = 1; break;
        case O_ZERO_POINTS: o->prob.zero_points = 1; break;
        case O_DOWN: o->down = 1; break;
        case O_GROUP_SIZE: rc = mt_parse_int_opt(me, "--group-size", optarg, 2, 4096, &o->prob.group_size); break;
        case O_BATCH: o->prob.batch_sizes = optarg; break;
        case O_MAX_TOKENS: rc = mt_parse_int_opt(me, "--max-tokens", optarg, 1, 1 << 24, &o->max_tokens); break;
        case O_KERNEL:
            if (strcmp(optarg, "fused_moe") && strcmp(optarg, "moe"))
                return mt_usage_error(me, "--kernel '%s': expected fused_moe (the default) or attention", optarg);
            break;
        default: return mt_usage_error(me, "unknown option '%s'", argv[optind - 1]);
        }
        if (rc != MT_EXIT_OK) return rc;
    }
    if (optind < argc) return mt_usage_error(me, "unexpected argument '%s'", argv[optind]);
    if (o->down && (!o->prob.engine || strcmp(o->prob.engine, "sglang")))
        return mt_usage_error(me, "--down tunes SGLang's separate down-GEMM config: it needs --engine sglang (vLLM "
                                  "reads one config for both GEMMs)");
    mt_sweep_common_finish(&o->c);
    return MT_EXIT_OK;
}

/* Start the worker, learn the device from its hello, record the device, and
 * measure its ceilings once. */
int mt_sweep_start_worker(const char *exe, const char *device, mt_worker **w, mt_device_info *dev, mt_db *db)
{
    return mt_sweep_start_engine_worker(exe, NULL, device, w, dev, db, NULL, 0);
}

int mt_sweep_start_engine_worker(const char *exe, const char *engine, const char *device, mt_worker **w,
                                 mt_device_info *dev, mt_db *db, char *kernel_id, size_t kid_len)
{
    char err[512], why[512], *reply = NULL;
    if (engine) {
        const char *argv[8];
        char buf[8192];
        if (mt_engine_worker_argv(engine, device, argv, buf, sizeof buf, err, sizeof err) != MT_OK)
            return mt_fail("sweep", "--engine %s: %s", engine, err);
        if (mt_worker_start_argv(w, argv, err, sizeof err) != MT_OK) return mt_fail("sweep", "%s", err);
    } else if (mt_worker_start(w, exe, device, err, sizeof err) != MT_OK) {
        return mt_fail("sweep", "%s", err);
    }
    /* opening a GPU and compiling the helper kernels can take a while */
    if (mt_worker_call(*w, "{\"op\":\"hello\"}", 300, &reply, why, sizeof why) != MT_OK)
        return mt_fail("sweep", "the worker for %s did not start: %s", device, why);
    cJSON *r = cJSON_Parse(reply);
    free(reply);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"))) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
        int st = mt_fail("sweep", "%s: %s", device, cJSON_IsString(e) ? e->valuestring : "the worker refused");
        cJSON_Delete(r);
        return st;
    }
    mt_device_info_from_json(r, dev);
    if (kernel_id && kid_len) {
        /* an engine's kernel: its version and Triton's key the stored rows */
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(r, "kernel");
        snprintf(kernel_id, kid_len, "%s", cJSON_IsString(k) ? k->valuestring : "");
        if (!kernel_id[0] || strcmp(dev->backend, engine)) {
            cJSON_Delete(r);
            return mt_fail("sweep", "the %s engine worker's hello names no kernel: is it moetune's?", engine);
        }
    }
    cJSON_Delete(r);
    if (mt_db_device_upsert(db, dev) != MT_OK)
        return mt_fail("sweep", "cannot record the device: %s", mt_db_errmsg(db));
    /* ceilings are measured once per device and stored; a device with fp8
     * tensor cores also has its fp8 rate measured (a database of an older
     * moetune lacks it: measured once more) */
    int want_fp8 = mt_cuda_fp8_arch(dev->arch, NULL, 0); /* NVIDIA sm_89 on: never a CPU or an AMD GPU */
    if (dev->bandwidth_gbs > 0 && dev->peak_gflops > 0 && (dev->peak_fp8_gflops > 0 || !want_fp8)) return MT_EXIT_OK;
    if (mt_worker_call(*w, "{\"op\":\"ceilings\"}", 300, &reply, why, sizeof why) != MT_OK)
        return mt_fail("sweep", "measuring the device ceilings failed: %s", why);
    r = cJSON_Parse(reply);
    const cJSON *bw = cJSON_GetObjectItemCaseSensitive(r, "bandwidth_gbs");
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(r, "peak_gflops");
    const cJSON *pk8 = cJSON_GetObjectItemCaseSensitive(r, "peak_fp8_gflops");
    const cJSON *how = cJSON_GetObjectItemCaseSensitive(r, "how");
    if (cJSON_IsNumber(bw) && cJSON_IsNumber(pk) && bw->valuedouble > 0 && pk->valuedouble > 0) {
        dev->bandwidth_gbs = bw->valuedouble;
        dev->peak_gflops = pk->valuedouble;
        dev->peak_fp8_gflops = cJSON_IsNumber(pk8) && pk8->valuedouble > 0 ? pk8->valuedouble : 0;
        mt_db_device_set_ceilings(db, dev->id, dev->bandwidth_gbs, dev->peak_gflops, dev->peak_fp8_gflops);
        mt_info("%s ceilings: %.0f GB/s, %.0f GFLOP/s, fp8 %.0f GFLOP/s (%s)", dev->name, dev->bandwidth_gbs,
                dev->peak_gflops, dev->peak_fp8_gflops, cJSON_IsString(how) ? how->valuestring : "");
    }
    cJSON_Delete(r);
    free(reply);
    if (dev->bandwidth_gbs <= 0) return mt_fail("sweep", "the worker returned no device ceilings");
    return MT_EXIT_OK;
}

static void compile_progress(int done, int total, void *user)
{
    char b[64];
    snprintf(b, sizeof b, "compiling kernels: %d of %d", done, total);
    mt_progress_update(user, done, total, b);
}

/* Every binary the space may need, compiled with all cores before the first
 * measurement: the worker then loads them from the cache. A failure here
 * only costs time; the worker compiles (and reports) what is missing. */
static void precompile(const sweep_opts *o, const mt_device_info *dev, int mask)
{
    char cache[1100], err[512];
    /* an AMD GPU's code objects (gfx targets) go where `moetune compile
     * --arch gfxNNN` puts them and its worker looks */
    mt_kernel_cache_dir(strncmp(dev->arch, "gfx", 3) ? "cuda" : "hip", cache, sizeof cache);
    if (!cache[0]) return;
    int smem = dev->smem_per_block > 0 ? dev->smem_per_block : mt_arch_smem_limit(dev->arch);
    long jobs = o->c.compile_jobs > 0 ? o->c.compile_jobs : sysconf(_SC_NPROCESSORS_ONLN);
    mt_progress pr;
    mt_progress_init(&pr, o->c.quiet);
    mt_precompile_stats st;
    int rc = mt_precompile_cuda(dev->arch, smem, mask, (int)(jobs > 0 ? jobs : 1), 0, cache,
                                compile_progress, &pr, &st, err, sizeof err);
    mt_progress_end(&pr);
    if (rc != MT_OK) {
        mt_warn("compiling ahead failed (%s): variants are compiled as they are measured", err);
        return;
    }
    mt_info("kernels for %s: %d binaries, %d compiled, %d cached, %d failed, %.1f s with %ld processes", dev->arch,
            st.binaries, st.compiled, st.cached, st.failed, st.seconds, jobs);
    if (!o->c.quiet && st.compiled)
        fprintf(stderr, "moetune sweep: compiled %d kernels for %s in %.1f s with %ld processes\n", st.compiled,
                dev->arch, st.seconds, jobs);
}

/* Compiling an engine's Triton kernels ahead. Triton compiles a kernel on
 * its first call, one config at a time, about two seconds each on one
 * core; the search measures a small share of the space. So the sweep hands
 * the engine worker, before a config it has not compiled is measured, a
 * round (sweep_step.c: that config and the search's likely next proposals,
 * all measured next), which it runs once each in its pool of processes:
 * compiled in parallel, only what the search measures, and each config
 * once per Triton specialisation (a later batch size with the same
 * specialisation finds it in Triton's cache). */
struct engine_prefetch {
    mt_worker *w;
    const char *key_json;
    long jobs;
    uint64_t seed;
    int renormalize;
    int calls, configs, failed, broken;
    double seconds;
    const char *pin; /* SGLang's down GEMM: the gate-up config pinned (NULL: none) */
};

static int engine_prefetch(void *user, const int64_t point[2], const char *const *params, int n)
{
    struct engine_prefetch *e = user;
    if (e->broken) return MT_EINVAL; /* the worker said it cannot: measured one by one */
    size_t cap = strlen(e->key_json) + (size_t)n * 260 + 512 + (e->pin ? strlen(e->pin) : 0), len = 0;
    char *req = malloc(cap), why[512], *reply = NULL;
    if (!req) return MT_ENOMEM;
    len += (size_t)snprintf(req + len, cap - len,
                            "{\"op\":\"precompile\",\"family\":\"fused_moe\",\"key\":%s,\"points\":[%lld],\"configs\":[",
                            e->key_json, (long long)point[0]);
    for (int i = 0; i < n; i++) len += (size_t)snprintf(req + len, cap - len, "%s%s", i ? "," : "", params[i]);
    snprintf(req + len, cap - len, "],\"jobs\":%ld,\"seed\":%llu,\"renormalize\":%d%s%s}", e->jobs,
             (unsigned long long)(e->seed & 0xffffffffffffull), e->renormalize, e->pin ? ",\"pin\":" : "",
             e->pin ? e->pin : "");
    double t0 = mt_now();
    int rc = mt_worker_call(e->w, req, 600, &reply, why, sizeof why);
    free(req);
    cJSON *r = rc == MT_OK ? cJSON_Parse(reply) : NULL;
    free(reply);
    const cJSON *ran = cJSON_GetObjectItemCaseSensitive(r, "ran"), *failed = cJSON_GetObjectItemCaseSensitive(r, "failed"),
                *err = cJSON_GetObjectItemCaseSensitive(r, "error");
    int ok = cJSON_IsNumber(ran);
    if (!ok) {
        mt_warn("compiling the engine's kernels ahead failed (%s): they are compiled as they are measured",
                rc != MT_OK ? why : cJSON_IsString(err) ? err->valuestring : "a malformed reply");
        e->broken = 1;
        if (rc != MT_OK) {
            /* the worker is gone: the sweep's next request needs a new one */
            char e2[512];
            mt_worker_restart(e->w, e2, sizeof e2);
        }
    } else {
        e->calls++;
        e->configs += n;
        e->failed += cJSON_IsNumber(failed) ? failed->valueint : 0;
        e->seconds += mt_now() - t0;
    }
    cJSON_Delete(r);
    return ok ? MT_OK : MT_EINVAL;
}

/* SGLang's down GEMM (--down). SGLang reads a _down file beside the
 * gate-up GEMM's and runs the down GEMM with it, the gate-up file's
 * BLOCK_SIZE_M kept (one alignment of the tokens feeds both GEMMs). So per
 * batch size the gate-up GEMM's best config is pinned (sent with each
 * request as "pin"), and the down GEMM's other keys are searched, the
 * pinned config's own first (what SGLang runs without a _down file). The
 * rows carry a kernel id of their own, with a digest of the pinned config
 * (mt_down_gemm_hash), so export writes them only beside that config. */
struct down_pin {
    const char *params;
    char text[640];
};

static const char *pin_extra(void *user, const int64_t point[2])
{
    struct down_pin *d = user;
    (void)point;
    snprintf(d->text, sizeof d->text, "\"pin\":%s", d->params);
    return d->text;
}

/* The engine worker's hello (what its adapter found: the down-GEMM
 * config, the engine's config folders), asked once; NULL when it does not
 * answer. */
static cJSON *engine_hello(mt_worker *w)
{
    char *reply = NULL, e[400];
    if (mt_worker_call(w, "{\"op\":\"hello\"}", 300, &reply, e, sizeof e) != MT_OK) return NULL;
    cJSON *r = cJSON_Parse(reply);
    free(reply);
    return r;
}

static int down_supported(const cJSON *r, char *why, size_t wn)
{
    if (!r) return snprintf(why, wn, "the engine worker did not answer its hello"), 0;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "down_gemm");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "engine_version");
    int ok = cJSON_IsTrue(d);
    if (!ok)
        snprintf(why, wn, "SGLang %s has no separate down-GEMM config (try_get_optimal_moe_config without "
                 "return_down_config): --down needs a newer SGLang",
                 cJSON_IsString(v) ? v->valuestring : "(unknown version)");
    return ok;
}

/* The engine's config file in use for the problem, where the worker names
 * the folders the engine reads in its order (vLLM: VLLM_TUNED_CONFIG_FOLDER,
 * then its own configs/; SGLang: the configs/triton_X_Y_Z folders of
 * SGLANG_MOE_CONFIG_DIR or its own, the installed Triton's first), first
 * hit as the engine looks: into path, 1; 0 when none. */
static int engine_config_in_use(const cJSON *r, const mt_device_info *dev, const mt_problem *prob, char *path,
                                size_t n)
{
    char name[512];
    if (mt_engine_file_name(name, sizeof name, dev, prob) != MT_OK) return 0;
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(r, "config_dirs"), *d;
    int found = 0;
    cJSON_ArrayForEach(d, dirs) {
        if (found || !cJSON_IsString(d) || !d->valuestring[0]) continue;
        int k = snprintf(path, n, "%s/%s", d->valuestring, name);
        found = k > 0 && (size_t)k < n && access(path, R_OK) == 0;
    }
    return found;
}

static int tune_down(const cJSON *hello, const mt_sweep_ctx *base, struct engine_prefetch *epf, const mt_problem *prob,
                     const int64_t (*points)[2], int n, const mt_plan_opts *base_po, mt_policy *pol,
                     mt_plan_counts *pc, int *tuned, char *why, size_t wn)
{
    mt_best_list up;
    if (!down_supported(hello, why, wn)) return MT_EUNSUPPORTED;
    if (mt_best_collect(base->db, base->dev->id, prob->id, base->kernel_hash, &up) != MT_OK)
        return snprintf(why, wn, "cannot read the gate-up picks: %s", mt_db_errmsg(base->db)), MT_EDB;
    mt_space sp;
    mt_space_engine_moe_down(&sp);
    double t0 = mt_now();
    int rc = MT_OK;
    for (int i = 0; i < n && rc == MT_OK && !interrupted; i++) {
        const mt_best *u = NULL;
        for (int j = 0; j < up.n; j++)
            if (up.v[j].M == points[i][0]) u = &up.v[j];
        if (!u) continue; /* no verified gate-up config: said already */
        char hash[600];
        struct down_pin pin = {u->params, ""};
        if (mt_down_gemm_hash(base->kernel_hash, u->M, u->params, hash, sizeof hash) != MT_OK) {
            snprintf(why, wn, "the down GEMM's kernel id does not fit");
            rc = MT_EINVAL;
            break;
        }
        mt_sweep_ctx c = *base;
        c.kernel_hash = hash;
        c.request_extra = pin_extra;
        c.extra_user = &pin;
        /* the default: the pinned config's own keys */
        mt_config def;
        memset(&def, 0, sizeof def);
        cJSON *ua = cJSON_Parse(u->params);
        for (int k = 0; k < sp.nparams; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(ua, sp.params[k].name);
            def.v[k] = cJSON_IsNumber(v) ? v->valueint : 0;
        }
        cJSON_Delete(ua);
        mt_plan_opts po = *base_po;
        po.defaults = &def;
        if (base_po->time_s > 0) {
            po.time_s = base_po->time_s - (mt_now() - t0);
            if (po.time_s <= 0) {
                pc->out_of_time = 1;
                break;
            }
        }
        epf->pin = u->params;
        mt_plan *plan = NULL;
        mt_plan_counts k;
        memset(&k, 0, sizeof k);
        rc = mt_plan_new(&plan, &c, prob, &sp, &points[i], 1, &po, why, wn);
        if (rc == MT_OK) rc = mt_plan_run(plan, &c, pol, &interrupted, &k, why, wn);
        epf->pin = NULL;
        int64_t miss[1][2];
        if (rc == MT_OK && !interrupted && mt_plan_unverified(plan, &c, miss, 1, NULL) == 0) (*tuned)++;
        mt_plan_free(plan);
        pc->measured += k.measured;
        pc->skipped += k.skipped;
        pc->failed += k.failed;
        pc->aborted += k.aborted;
        pc->retried += k.retried;
        pc->out_of_time |= k.out_of_time;
        pc->cancelled |= k.cancelled;
        if (k.out_of_time || k.cancelled) break;
    }
    mt_best_list_free(&up);
    return rc;
}

/* A problem that does not fit: the need, what there is, what would fit. */
static int refuse_memory(const sweep_opts *o, const mt_problem_spec *ps, const mt_mem_need *need, double avail,
                         const char *where, int gpu, int64_t max_m, size_t esz, int64_t max_tok)
{
    char t[32], w[32], b[32], a[32], hint[64];
    mt_bytes_text(t, sizeof t, need->weights + need->buffers);
    mt_bytes_text(w, sizeof w, need->weights);
    mt_bytes_text(b, sizeof b, need->buffers);
    mt_bytes_text(a, sizeof a, avail);
    int tp = o->prob.tp > 0 ? o->prob.tp : 1, ep = o->prob.ep > 0 ? o->prob.ep : 1;
    mt_moe_mem_hint(hint, sizeof hint, ps->model.experts, ps->model.intermediate, ps->model.hidden, ps->model.topk,
                    max_m, esz, gpu, max_tok, tp, ep, avail);
    return mt_fail("sweep",
                   "E=%lld N=%lld K=%lld needs about %s of memory (the experts' weights %s, buffers at M=%lld %s), and "
                   "%s has %s to give: %s%s%s",
                   (long long)ps->E, (long long)ps->N, (long long)ps->model.hidden, t, w, (long long)max_m, b, where, a,
                   hint[0] ? "shard the experts as the engine will (" : "use a machine with more memory, or fewer and "
                                                                        "smaller batch sizes",
                   hint, hint[0] ? " fits), or use a machine with more memory" : "");
}

int mt_sweep_check_args(const char *cmd, int argc, char **argv, char *model_config, size_t n)
{
    sweep_opts o;
    mt_problem_spec ps;
    me = cmd;
    int status = parse_opts(argc, argv, &o);
    me = "sweep";
    if (status) return status < 0 ? MT_EXIT_USAGE : status;
    if (strcmp(o.c.device, "auto") || o.c.db || o.c.job)
        return mt_usage_error(cmd, "--device, --db and --job are the %s command's own (a job gets its device from the "
                              "daemon)", cmd);
    status = mt_problem_opts_resolve(cmd, &o.prob, "tiny", NULL, &ps);
    if (status) return status;
    free(ps.ms);
    /* the daemon may run in another folder: a relative model config path
     * is made absolute here */
    if (model_config && n) {
        model_config[0] = 0;
        if (o.prob.model_config && !realpath(o.prob.model_config, model_config))
            return mt_usage_error(cmd, "--model-config '%s': %s", o.prob.model_config, strerror(errno));
    }
    return MT_EXIT_OK;
}

int cmd_sweep(int argc, char **argv)
{
    /* --kernel picks the family: fused_moe (this file) or attention */
    for (int i = 1; i < argc; i++) {
        const char *k = !strcmp(argv[i], "--kernel") && i + 1 < argc ? argv[i + 1]
                        : !strncmp(argv[i], "--kernel=", 9)        ? argv[i] + 9
                                                                   : NULL;
        if (!k) continue;
        const mt_family_tuning *fam = mt_sweep_family_of(k);
        if (fam) return mt_sweep_family(fam, argc, argv);
        if (strcmp(k, "fused_moe") && strcmp(k, "moe")) {
            char names[256] = "";
            for (int f = 0; f < mt_nfamilies; f++)
                if (mt_family_tunings[f]->noptions)
                    snprintf(names + strlen(names), sizeof names - strlen(names), " or %s",
                             mt_family_tunings[f]->cli_name ? mt_family_tunings[f]->cli_name
                                                            : mt_family_tunings[f]->family->name);
            return mt_usage_error("sweep", "--kernel '%s': expected fused_moe (the default)%s", k, names);
        }
        /* the MoE sweep's parser does not know --kernel: drop it */
        int drop = !strcmp(argv[i], "--kernel") ? 2 : 1;
        for (int j = i; j + drop <= argc; j++) argv[j] = argv[j + drop];
        argc -= drop;
        i--;
    }
    sweep_opts o;
    mt_device_spec spec, dspec;
    mt_problem_spec ps;
    mt_db *db = NULL;
    mt_worker *w = NULL;
    char note[512], exe[4096], why[512], policy_text[256], out_dir[4096], job_db[4096] = "";
    int job_lock = -1, m_lock_fd = -1;
    mt_plan *plan = NULL;
    int64_t (*points)[2] = NULL;
    cJSON *hello = NULL; /* an engine worker's, asked once */
    int status = parse_opts(argc, argv, &o);
    if (status < 0) return mt_cli_finish("sweep", 0);
    if (status) return status;
    if (mt_device_spec_parse(o.c.device, &spec) != MT_OK)
        return mt_usage_error("sweep", "--device '%s': expected auto, cpu, cuda:N or hip:N", o.c.device);
    int rc = mt_device_resolve(&spec, &dspec, note, sizeof note);
    if (rc != MT_OK) return mt_fail("sweep", "--device %s: %s", o.c.device, note);
    if (note[0] && !o.c.quiet) fprintf(stderr, "moetune sweep: %s\n", note);

    int default_job = !o.prob.model && !o.prob.model_config && !o.prob.experts && !o.prob.intermediate &&
                      !o.prob.hidden && !o.prob.topk;
    int gpu = dspec.kind == MT_BACKEND_CUDA || dspec.kind == MT_BACKEND_HIP;
    /* the default job: minutes on two CPU cores; on a GPU, Mixtral TP2 at
     * six batch sizes with a budget */
    if (default_job && gpu) {
        o.prob.model = "mixtral-8x7b";
        o.prob.tp = o.prob.tp ? o.prob.tp : 2;
        if (!o.c.budget && !o.c.budget_pct) o.c.budget = 40;
    }
    /* without --budget a grid measures every point; a model-driven search
     * spends 10 % of each batch size's points (at least 5), where the
     * replays put it within 1 % of the grid's optimum */
    if (!o.c.budget && !o.c.budget_pct && o.c.strategy != MT_STRATEGY_GRID) o.c.budget_pct = 10;
    status = mt_problem_opts_resolve("sweep", &o.prob, "tiny",
                                     default_job && !o.prob.batch_sizes ? (gpu ? "1,8,64,256,1024,4096" : "1,8,32,128")
                                                                        : NULL,
                                     &ps);
    if (status) return status;
    const char *engine = o.prob.engine;
    if (!engine && !gpu && ps.dtype != MT_DTYPE_BF16 && ps.dtype != MT_DTYPE_FP32 && ps.dtype != MT_DTYPE_FP8_W8A8) {
        free(ps.ms);
        return mt_usage_error("sweep", "the CPU backend takes --dtype bf16, fp32 or fp8_w8a8");
    }
    if (!engine && dspec.kind == MT_BACKEND_HIP && ps.dtype == MT_DTYPE_FP8_W8A8) {
        free(ps.ms);
        return mt_usage_error("sweep", "moetune's HIP kernels do not take fp8_w8a8: --device cpu tunes the CPU kernel "
                                       "in fp8_w8a8, and --engine vllm the engine's fp8 kernel on this GPU");
    }
    if (!engine && gpu && ps.dtype == MT_DTYPE_FP32) {
        free(ps.ms);
        return mt_usage_error("sweep", "the CUDA kernels take --dtype bf16 or fp16");
    }
    if (o.c.shard_n > 1) {
        int k = 0;
        for (int i = 0; i < ps.n_ms; i++)
            if (mt_shard_keep(ps.E, ps.N, ps.model.hidden, ps.model.topk, i, o.c.shard_i, o.c.shard_n)) ps.ms[k++] = ps.ms[i];
        ps.n_ms = k;
        if (!k) {
            if (!o.c.quiet)
                fprintf(stderr, "moetune sweep: shard %d/%d holds none of this problem's batch sizes: nothing to do\n",
                        o.c.shard_i, o.c.shard_n);
            free(ps.ms);
            return mt_cli_finish("sweep", MT_EXIT_OK);
        }
    }
    /* the memory the problem needs, checked before anything is stored: on
     * the CPU against the host's available memory here, on a GPU against
     * the device's once the worker has named it */
    mt_mem_need need;
    int64_t max_m = ps.ms[ps.n_ms - 1], max_tok = o.max_tokens ? o.max_tokens : 16384;
    size_t esz = mt_dtype_size(ps.dtype);
    mt_moe_mem_need(ps.E, ps.N, ps.model.hidden, ps.model.topk, max_m, esz, gpu, max_tok, &need);
    if (o.dry_run || !gpu) {
        /* a tenth of what is available is left to the program, the worker's
         * own copies and whatever else runs */
        double avail = gpu ? -1 : mt_host_memory_available();
        if (avail > 0) avail *= 0.9;
        int fits = avail < 0 || need.weights + need.buffers <= avail;
        if (o.dry_run) {
            char w[32], b[32], a[32], bs[256] = "";
            mt_bytes_text(w, sizeof w, need.weights);
            mt_bytes_text(b, sizeof b, need.buffers);
            mt_bytes_text(a, sizeof a, avail);
            for (int i = 0; i < ps.n_ms; i++)
                snprintf(bs + strlen(bs), sizeof bs - strlen(bs), "%s%lld", i ? "," : "", (long long)ps.ms[i]);
            char blk[48] = "";
            if (ps.block_n > 0)
                snprintf(blk, sizeof blk, " block_shape=[%lld,%lld]", (long long)ps.block_n, (long long)ps.block_k);
            else if (ps.block_k > 0) /* the weight-only schemes' groups */
                snprintf(blk, sizeof blk, " in groups of %lld", (long long)ps.block_k);
            printf("%s on %s: E=%lld N=%lld K=%lld top-%lld %s%s, batch sizes %s\n"
                   "memory: about %s of weights and %s of buffers%s%s%s\n",
                   ps.model.name, gpu ? mt_backend_name(dspec.kind) : "cpu", (long long)ps.E, (long long)ps.N,
                   (long long)ps.model.hidden, (long long)ps.model.topk, ps.qdtype, blk, bs, w, b,
                   avail >= 0 ? "; the host has " : " (the GPU's memory is checked when the sweep starts)",
                   avail >= 0 ? a : "", avail < 0 ? "" : fits ? " available: fits" : " available: does not fit");
            free(ps.ms);
            return mt_cli_finish("sweep", MT_EXIT_OK);
        }
        if (!fits) {
            status = refuse_memory(&o, &ps, &need, avail, "the host", gpu, max_m, esz, max_tok);
            free(ps.ms);
            return status;
        }
    }
    char device_arg[32];
    snprintf(device_arg, sizeof device_arg, gpu ? "%s:%d" : "cpu", mt_backend_name(dspec.kind), dspec.index);
    mt_device_info dev;
    mt_space sp;
    mt_policy pol;
    /* an engine's kernel is timed and checked as moetune's GPU kernels are
     * (bf16 intermediates), on whatever device it runs */
    const char *pol_backend = o.prob.engine ? o.prob.engine : mt_backend_name(dspec.kind);
    mt_policy_default(o.prob.engine ? "cuda" : pol_backend, &pol);
    if (gpu && o.max_tokens) pol.max_tokens = (int)o.max_tokens;
    mt_policy_text(&pol, pol_backend, policy_text, sizeof policy_text);
    const char *khash = mt_kernel_hash(mt_backend_name(dspec.kind));
    char engine_kernel[256] = "";

    if ((status = mt_cli_open_db("sweep", o.c.db, &db)) != 0) {
        free(ps.ms);
        return status;
    }
    mt_problem prob;
    memset(&prob, 0, sizeof prob);
    snprintf(prob.kernel, sizeof prob.kernel, "fused_moe");
    snprintf(prob.dtype, sizeof prob.dtype, "%s", ps.qdtype);
    prob.block_n = ps.block_n;
    prob.block_k = ps.block_k;
    prob.E = ps.E;
    prob.N = ps.N;
    prob.K = ps.model.hidden;
    prob.topk = ps.model.topk;
    prob.renormalize = ps.model.renormalize;
    if (mt_db_problem_upsert(db, &prob) != MT_OK) {
        status = mt_fail("sweep", "cannot record the problem: %s", mt_db_errmsg(db));
        goto out;
    }
    /* sweeps left 'running' by a process that was killed are marked so */
    mt_db_sweeps_reap(db, mt_sweep_process_alive);
    if (mt_cli_db_path(o.c.db, job_db, sizeof job_db) == MT_OK) m_lock_fd = mt_m_lock_open(job_db);
    if (mt_self_exe(exe, sizeof exe) != MT_OK) {
        status = mt_fail("sweep", "cannot find the moetune executable (/proc/self/exe)");
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if ((status = mt_sweep_start_engine_worker(exe, engine, device_arg, &w, &dev, db, engine ? engine_kernel : NULL,
                                               sizeof engine_kernel)) != 0)
        goto out;
    if (engine) {
        khash = engine_kernel;
        if (!o.c.quiet) fprintf(stderr, "moetune sweep: measuring %s on %s\n", engine_kernel, dev.name);
    }
    /* a GPU's memory, as its driver gives it; a tenth is left to the
     * context, the compiled kernels and other processes */
    if (gpu && dev.memory_bytes > 0 && need.weights + need.buffers > 0.9 * (double)dev.memory_bytes) {
        char where[200];
        snprintf(where, sizeof where, "%s (%s)", device_arg, dev.name);
        status = refuse_memory(&o, &ps, &need, 0.9 * (double)dev.memory_bytes, where, gpu, max_m, esz, max_tok);
        goto out;
    }
    /* the space depends on the device: CPU threads, GPU SM count; --only is
     * checked against it before anything is compiled */
    if (engine) mt_space_engine_moe(&sp, engine, dspec.kind == MT_BACKEND_HIP, strncmp(ps.qdtype, "int8_w8a16", 10) &&
                                                                               (!strncmp(ps.qdtype, "fp8", 3) || !strncmp(ps.qdtype, "int8", 4)));
    else if (dspec.kind == MT_BACKEND_HIP) mt_space_hip_moe(&sp, dev.cores);
    else if (gpu) mt_space_cuda_moe(&sp, dev.cores);
    else mt_space_cpu_moe(&sp, dev.cores);
    if (o.only) {
        char why[512];
        if (mt_space_fix(&sp, o.only, why, sizeof why) != MT_OK) {
            status = mt_usage_error("sweep", "--only '%s': %s", o.only, why);
            goto out;
        }
    }
    /* the binaries of the problem's dtype (fp8: per tensor or channel, or
     * DeepSeek-V3's 128x128 blocks; other blocks are compiled as they are
     * measured) */
    int pmask = ps.dtype == MT_DTYPE_FP16 ? 2 : ps.dtype != MT_DTYPE_FP8_W8A8 ? 1 : !ps.block_n ? 4
                : ps.block_k == 128 ? 8 : 0;
    if (!engine && (dspec.kind == MT_BACKEND_CUDA || dspec.kind == MT_BACKEND_HIP) && o.c.compile_jobs != 0 && pmask)
        precompile(&o, &dev, pmask);

    /* the plan: every batch size's valid points, searched by the strategy
     * within the budget (tuner/sweep_plan.c, as for every family) */
    mt_family_key fkey;
    char kwhy[300];
    if (mt_family_key_parse(&mt_family_fused_moe, prob.key, &fkey, kwhy, sizeof kwhy) != MT_OK) {
        status = mt_fail("sweep", "the problem's key: %s", kwhy);
        goto out;
    }
    mt_sweep_ctx sctx = {db, w, &mt_tuning_fused_moe, &fkey, prob.key, ps.model.renormalize, &dev, prob.id, 0,
                         khash, policy_text, (double)o.c.timeout, o.c.retry_failed, NULL, NULL, 0, NULL, NULL};
    /* an engine's Triton kernels: compiled ahead in parallel by the engine
     * worker on a GPU (on the CPU only when --compile-jobs asks for it) */
    struct engine_prefetch epf = {w, prob.key, o.c.compile_jobs > 0 ? o.c.compile_jobs : sysconf(_SC_NPROCESSORS_ONLN),
                                  (uint64_t)o.c.seed, ps.model.renormalize, 0, 0, 0, 0, 0.0, NULL};
    if (engine && (o.c.compile_jobs > 0 || (o.c.compile_jobs < 0 && gpu))) {
        if (epf.jobs < 1) epf.jobs = 1;
        sctx.prefetch = engine_prefetch;
        sctx.prefetch_user = &epf;
        sctx.prefetch_n = epf.jobs > MT_SEARCH_MAX_PEEK ? MT_SEARCH_MAX_PEEK : (int)epf.jobs;
    }
    points = calloc((size_t)ps.n_ms, sizeof *points);
    if (!points) {
        status = mt_fail("sweep", "out of memory");
        goto out;
    }
    for (int i = 0; i < ps.n_ms; i++) points[i][0] = ps.ms[i];
    /* with --down, the gate-up GEMM has three fifths of --time, the down
     * GEMM what is left */
    mt_plan_opts po = {o.c.strategy, o.c.budget, o.c.budget_pct, o.c.seed, o.c.abort_factor,
                       o.down && o.c.time_s > 0 ? 0.6 * o.c.time_s : o.c.time_s, o.c.finalists, o.c.rounds,
                       o.c.quiet, o.c.job, o.only, m_lock_fd, NULL, NULL};
    /* an engine's sweep proposes first the config the engine runs today for
     * this problem (its shipped file, or the one in its tuned folder) */
    char in_use[1200];
    if (engine) hello = engine_hello(w);
    if (engine && engine_config_in_use(hello, &dev, &prob, in_use, sizeof in_use)) {
        po.seed_file = in_use;
        if (!o.c.quiet) fprintf(stderr, "moetune sweep: the %s config in use, measured first: %s\n", engine, in_use);
    }
    double sweep_t0 = mt_now();
    if (mt_plan_new(&plan, &sctx, &prob, &sp, (const int64_t(*)[2])points, ps.n_ms, &po, why, sizeof why) != MT_OK) {
        status = mt_fail("sweep", "%s", why);
        goto out;
    }
    int total = mt_plan_total(plan);

    char bs_text[512] = "";
    for (int i = 0; i < ps.n_ms; i++)
        snprintf(bs_text + strlen(bs_text), sizeof bs_text - strlen(bs_text), "%s%lld", i ? "," : "", (long long)ps.ms[i]);
    char cmdline[1024] = "moetune";
    for (int i = 0; i < argc; i++)
        snprintf(cmdline + strlen(cmdline), sizeof cmdline - strlen(cmdline), " %s", argv[i]);
    int64_t sweep_id = 0;
    if (mt_db_sweep_begin(db, dev.id, prob.id, mt_strategy_name(o.c.strategy), (int)o.c.budget, bs_text, cmdline,
                          &sweep_id) != MT_OK) {
        status = mt_fail("sweep", "cannot record the sweep: %s", mt_db_errmsg(db));
        goto out;
    }
    sctx.sweep_id = sweep_id;
    if (!o.c.quiet)
        fprintf(stderr, "moetune sweep: %s on %s: E=%lld N=%lld K=%lld top-%lld %s, %d batch sizes, %d variants\n",
                ps.model.name, dev.name, (long long)ps.E, (long long)ps.N, (long long)prob.K, (long long)prob.topk,
                prob.dtype, ps.n_ms, total);

    if (mt_plan_claim_job(db, job_db, o.c.job, &job_lock, why, sizeof why) != MT_OK) {
        status = mt_fail("sweep", "%s", why);
        goto out;
    }
    mt_plan_counts pc;
    memset(&pc, 0, sizeof pc);
    if (mt_plan_run(plan, &sctx, &pol, &interrupted, &pc, why, sizeof why) != MT_OK) status = mt_fail("sweep", "%s", why);
    int down_tuned = 0, down_measured = 0;
    if (o.down && !status && !interrupted && !pc.cancelled) {
        mt_plan_opts dpo = po;
        dpo.only = NULL;
        dpo.seed_file = NULL; /* the gate-up GEMM's file */
        dpo.time_s = o.c.time_s > 0 ? o.c.time_s - (mt_now() - sweep_t0) : 0;
        int before = pc.measured;
        if (o.c.time_s > 0 && dpo.time_s <= 0) pc.out_of_time = 1;
        else if (tune_down(hello, &sctx, &epf, &prob, (const int64_t(*)[2])points, ps.n_ms, &dpo, &pol, &pc, &down_tuned, why,
                           sizeof why) != MT_OK)
            status = mt_fail("sweep", "--down: %s", why);
        down_measured = pc.measured - before;
        if (!o.c.quiet && !status)
            fprintf(stderr, "moetune sweep: the down GEMM, each batch size's gate-up config pinned: %d variants "
                            "measured, %d of %d batch sizes with a verified config\n",
                    down_measured, down_tuned, ps.n_ms);
    }
    int measured = pc.measured, skipped = pc.skipped, failed = pc.failed, aborted = pc.aborted, retried = pc.retried;
    int out_of_time = pc.out_of_time, cancelled = pc.cancelled;
    /* where an engine sweep's time went: compiles ahead here, the rest in
     * the worker's own summary at its exit (first calls, checks, timing) */
    if (epf.calls) {
        mt_info("engine kernels compiled ahead: %d configs in %d rounds of up to %ld, %d failed, %.1f s", epf.configs,
                epf.calls, epf.jobs, epf.failed, epf.seconds);
        if (!o.c.quiet)
            fprintf(stderr, "moetune sweep: compiled ahead: %d configs in %d rounds of up to %ld in parallel (%d failed: "
                            "stored as the variants' failures), %.1f s\n",
                    epf.configs, epf.calls, epf.jobs, epf.failed, epf.seconds);
    }
    mt_db_sweep_end(db, sweep_id, status ? "failed" : interrupted ? "interrupted" : out_of_time ? "time limit" : "done");
    /* said even with --quiet: a sweep cut short must not pass for a whole one */
    if (out_of_time)
        fprintf(stderr, "moetune sweep: --time %.0f s reached; the batch sizes not reached keep their earlier results\n",
                o.c.time_s);
    if (status) goto out;

    /* the batch sizes that end with no verified config: said, and the
     * sweep fails (an interrupted one is said when it ends) */
    int64_t missing[64][2];
    int n_unreached = 0;
    int n_missing = interrupted ? 0 : mt_plan_unverified(plan, &sctx, missing, 64, &n_unreached);
    if (o.c.json) {
        printf("{\"sweep_id\":%lld,\"measured\":%d,\"skipped\":%d,\"failed\":%d,\"aborted\":%d,\"retried\":%d,"
               "\"interrupted\":%s,\"unverified_batch_sizes\":[",
               (long long)sweep_id, measured, skipped, failed, aborted, retried, interrupted ? "true" : "false");
        for (int k = 0; k < n_missing && k < 64; k++) printf("%s%lld", k ? "," : "", (long long)missing[k][0]);
        printf("],");
        /* an engine's compiles ahead: where part of the time went */
        if (engine)
            printf("\"compiled_ahead\":{\"configs\":%d,\"rounds\":%d,\"failed\":%d,\"seconds\":%.3f},", epf.configs,
                   epf.calls, epf.failed, epf.seconds);
        if (o.down) printf("\"down_gemm\":{\"measured\":%d,\"batch_sizes\":%d},", down_measured, down_tuned);
        printf("\"table\":");
        mt_report_pair(stdout, db, &dev, &prob, 1);
    } else {
        printf("measured %d variants (%d failed, %d aborted as clearly slower), %d already in the database", measured,
               failed, aborted, skipped);
        if (retried) printf(", %d failed before and measured again", retried);
        printf("\n");
        mt_report_pair(stdout, db, &dev, &prob, 0);
    }
    /* the advice fits the cause: batch sizes the sweep never reached
     * (--time ran out) are measured by running it again, failures need
     * their cause fixed first */
    if (n_missing && out_of_time && n_unreached == n_missing)
        status = mt_fail("sweep", "%d batch size(s) ended with no verified config: --time ran out before they were "
                                  "reached, so nothing is exported for them; run the same command again to go on from "
                                  "what the database holds, with more --time",
                         n_missing);
    else if (n_missing)
        status = mt_fail("sweep", "%d batch size(s) ended with no verified config (reasons above): nothing is exported "
                                  "for them; fix the cause and run the same command again (--retry-failed measures "
                                  "the failed variants again)",
                         n_missing);
    if (!o.c.no_export && !interrupted) {
        mt_sweep_out_dir(o.c.out, out_dir, sizeof out_dir);
        /* an engine's rows go to the engine's own files only; moetune's
         * kernels' to moetune's format, for libmoetune */
        mt_export_opts eo = {out_dir, engine != NULL, !engine, 0, dev.id, prob.id, 1};
        mt_export_stats es;
        if (mt_mkdir_p(out_dir) != 0 || mt_export(db, &eo, &es) != MT_OK || es.failed) {
            status = mt_fail("sweep", "exporting to '%s' failed", out_dir);
        } else if (o.c.json) {
            printf(",\"out\":");
            mt_json_str(stdout, out_dir);
        } else {
            printf("config files (%s): %s\n",
                   engine && !strcmp(engine, "sglang") ? "SGLang's names, in configs/triton_X_Y_Z/: "
                                                         "SGLANG_MOE_CONFIG_DIR is this folder"
                   : engine                           ? "vLLM's names, measured on vLLM's kernel"
                   : "moetune format, for libmoetune; vLLM's names hold only configs of vLLM's kernel "
                     "(--engine vllm)",
                   out_dir);
        }
    }
    if (o.c.json) printf("}\n");
    if (interrupted && !status) {
        if (cancelled)
            fprintf(stderr, "moetune sweep: job %lld was cancelled; %d measurements are stored\n", (long long)o.c.job,
                    measured);
        else
            fprintf(stderr, "moetune sweep: interrupted; %d measurements are stored, run the same command to go on\n",
                    measured);
        status = MT_EXIT_INTERRUPTED;
    }
out:
    cJSON_Delete(hello);
    mt_plan_free(plan);
    free(points);
    mt_worker_stop(w);
    mt_db_close(db);
    mt_job_lock_drop(job_db, o.c.job, job_lock);
    if (m_lock_fd >= 0) close(m_lock_fd);
    free(ps.ms);
    return mt_cli_finish("sweep", status);
}
