/* moetune sweep --kernel attention: tune the paged attention decode kernel
 * over batch sizes x context lengths, as the fused-MoE sweep does over
 * batch sizes: every measurement in its worker process, committed as taken,
 * skipped when stored, and the winners exported as an attention config file
 * (docs/attention-format.md). On the CPU or a GPU (kernels/cuda/attn.cu, also
 * compiled for AMD GPUs by hipRTC;
 * bench/cuda_attn_check checks and times it outside sweeps too). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn.h"
#include "attn_db.h"
#include "sweep_step.h"
#include "jobs.h"
#include "cmds.h"
#include "device.h"
#include "log.h"
#include "measure.h"
#include "moetune/moetune.h"
#include "problem.h"
#include "measure_cuda.h"
#include "precompile.h"
#include "space.h"
#include "strategy.h"
#include "util.h"
#include "vllm.h"
#include "workerpool.h"

static const char usage[] =
    "usage: moetune sweep --kernel attention --heads H --kv-heads HKV --head-dim D\n"
    "                     [--page-size P] [--dtype bf16|fp16|fp32] [--batch-sizes LIST]\n"
    "                     [--contexts LIST] [--device auto|cpu|cuda:N|hip:N] [options]\n"
    "\n"
    "Tune the paged attention decode kernel (split-KV, flash-decoding style) for\n"
    "one shape over batch sizes x context lengths, store every measurement and\n"
    "write the attention config file (docs/attention-format.md).\n"
    "  --heads H, --kv-heads HKV   query and KV heads (H a multiple of HKV)\n"
    "  --head-dim D                head dimension\n"
    "  --page-size P               tokens per KV-cache page (default 16)\n"
    "  --dtype T                   of q and the KV cache (default bf16)\n"
    "  --batch-sizes LIST          default 1,8,32\n"
    "  --contexts LIST             context lengths, default 512,2048\n"
    "  --strategy grid|random|bayes, --budget N|P%, --seed N, --timeout SEC,\n"
    "  --time DURATION, --abort-factor F, --db PATH, --out DIR, --no-export,\n"
    "  --quiet, --json, --shard I/N, --job ID, --compile-jobs N, --retry-failed:\n"
    "  as for the fused-MoE sweep (a shard is a share of the (batch, context)\n"
    "  pairs; --json prints the counts and the best config of each pair)\n"
    "On the CPU, a CUDA GPU or an AMD GPU (hip:N: the CUDA kernel's source through\n"
    "hipRTC, never yet run on AMD hardware); auto: the first CUDA GPU, else the\n"
    "first AMD GPU the HIP runtime can use, else the CPU. fp32 is the CPU\n"
    "kernel's only; the GPU kernel takes bf16 and fp16.\n";

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    /* the first stops after the variant in flight; a second exits at once,
     * as the fused-MoE sweep does (what is committed stays) */
    if (stop) _exit(MT_EXIT_INTERRUPTED);
    stop = 1;
}

struct best_list { mt_attn_entry *e; char (*params)[256]; double (*fig)[2]; int n, cap; FILE *table; };
static int take_best(const mt_attn_row *r, void *u)
{
    struct best_list *b = u;
    if (b->n == b->cap) return 1;
    snprintf(b->params[b->n], sizeof b->params[0], "%s", r->params);
    b->e[b->n] = (mt_attn_entry){r->batch, r->ctx, b->params[b->n]};
    b->fig[b->n][0] = r->median_us;
    b->fig[b->n][1] = r->floor_us;
    b->n++;
    if (b->table)
        fprintf(b->table, "%7lld %7lld  %-52s %10.1f %9.1f %6.2f\n", (long long)r->batch, (long long)r->ctx, r->params,
                r->median_us, r->floor_us, r->floor_us > 0 ? r->floor_us / r->median_us : NAN);
    return 0;
}

/* the progress line and the job's row after each measured variant */
struct attn_tick { mt_progress *prog; mt_db *db; int64_t job; int total; };
static void attn_job_tick(mt_db *db, int64_t job, int done, int total, const char *best);
static void attn_tick_fn(void *user, int done, const char *best)
{
    struct attn_tick *t = user;
    mt_progress_update(t->prog, done, t->total, best);
    if (t->job) attn_job_tick(t->db, t->job, done, t->total, best);
}

struct attn_opts {
    int64_t H, Hkv, D, page, seed, timeout, budget, job;
    double budget_pct;
    const char *dtype_s, *batches_s, *ctx_s, *db_path, *out, *device;
    int strategy, no_export, quiet, dtype, shard_i, shard_n, device_given, retry_failed, json;
    double time_s, abort_factor;
    int64_t compile_jobs; /* -1: the online CPUs */
    int64_t *bs, *cs;
    int nb, nc;
};

/* the options, checked; lists malloc'ed in o (free them) */
static int parse_attn(const char *me, int argc, char **argv, struct attn_opts *o)
{
    enum { O_KERNEL = 300, O_H, O_HKV, O_D, O_PAGE, O_DTYPE, O_BATCH, O_CTX, O_STRAT, O_BUDGET, O_SEED, O_TIMEOUT,
           O_DB, O_OUT, O_NOEXP, O_QUIET, O_DEVICE, O_JOB, O_SHARD, O_COMPILE_JOBS, O_RETRY, O_TIME, O_ABORT, O_JSON };
    static const struct option lo[] = {
        {"kernel", required_argument, 0, O_KERNEL}, {"heads", required_argument, 0, O_H},
        {"kv-heads", required_argument, 0, O_HKV}, {"head-dim", required_argument, 0, O_D},
        {"page-size", required_argument, 0, O_PAGE}, {"dtype", required_argument, 0, O_DTYPE},
        {"batch-sizes", required_argument, 0, O_BATCH}, {"contexts", required_argument, 0, O_CTX},
        {"strategy", required_argument, 0, O_STRAT}, {"budget", required_argument, 0, O_BUDGET},
        {"seed", required_argument, 0, O_SEED}, {"timeout", required_argument, 0, O_TIMEOUT},
        {"db", required_argument, 0, O_DB}, {"out", required_argument, 0, O_OUT},
        {"no-export", no_argument, 0, O_NOEXP}, {"quiet", no_argument, 0, O_QUIET},
        {"device", required_argument, 0, O_DEVICE}, {"job", required_argument, 0, O_JOB},
        {"shard", required_argument, 0, O_SHARD}, {"compile-jobs", required_argument, 0, O_COMPILE_JOBS},
        {"retry-failed", no_argument, 0, O_RETRY}, {"time", required_argument, 0, O_TIME},
        {"abort-factor", required_argument, 0, O_ABORT}, {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->page = 16, o->seed = 1, o->timeout = 60, o->compile_jobs = -1;
    o->dtype_s = "bf16", o->batches_s = "1,8,32", o->ctx_s = "512,2048", o->device = "auto";
    o->strategy = MT_STRATEGY_GRID;
    o->abort_factor = -1; /* unset: 1.3 for random and bayes, off for grid, as the fused-MoE sweep */
    int c, st;
    char err[512];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        st = MT_EXIT_OK;
        switch (c) {
        case O_KERNEL: break;
        case O_H: st = mt_parse_int_opt(me, "--heads", optarg, 1, 1024, &o->H); break;
        case O_HKV: st = mt_parse_int_opt(me, "--kv-heads", optarg, 1, 1024, &o->Hkv); break;
        case O_D: st = mt_parse_int_opt(me, "--head-dim", optarg, 1, 1024, &o->D); break;
        case O_PAGE: st = mt_parse_int_opt(me, "--page-size", optarg, 1, 1024, &o->page); break;
        case O_DTYPE: o->dtype_s = optarg; break;
        case O_BATCH: o->batches_s = optarg; break;
        case O_CTX: o->ctx_s = optarg; break;
        case O_STRAT:
            if ((o->strategy = mt_strategy_parse(optarg)) < 0)
                return mt_usage_error(me, "--strategy '%s': expected grid, random or bayes", optarg);
            break;
        case O_BUDGET: st = mt_parse_budget(me, optarg, &o->budget, &o->budget_pct); break;
        case O_SEED: st = mt_parse_int_opt(me, "--seed", optarg, 0, INT64_MAX, &o->seed); break;
        case O_TIMEOUT: st = mt_parse_int_opt(me, "--timeout", optarg, 1, 86400, &o->timeout); break;
        case O_DB: o->db_path = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_NOEXP: o->no_export = 1; break;
        case O_RETRY: o->retry_failed = 1; break;
        case O_TIME: st = mt_parse_duration(me, "--time", optarg, &o->time_s); break;
        case O_ABORT: st = mt_parse_abort_factor(me, optarg, &o->abort_factor); break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_DEVICE: o->device = optarg, o->device_given = 1; break;
        case O_JOB: st = mt_parse_int_opt(me, "--job", optarg, 1, INT64_MAX, &o->job); break;
        case O_COMPILE_JOBS: st = mt_parse_int_opt(me, "--compile-jobs", optarg, 0, 1024, &o->compile_jobs); break;
        case O_SHARD:
            if (mt_shard_parse(optarg, &o->shard_i, &o->shard_n) != MT_OK)
                return mt_usage_error(me, "--shard '%s': expected I/N with 0 <= I < N, e.g. 0/4", optarg);
            break;
        case 'h': return fputs(usage, stdout), -1;
        default:
            return mt_usage_error(me, "'%s' is not an option of the attention sweep (moetune sweep --kernel attention --help)",
                                  argv[optind - 1]);
        }
        if (st) return st;
    }
    if (optind < argc) return mt_usage_error(me, "unexpected argument '%s'", argv[optind]);
    if (o->abort_factor < 0) o->abort_factor = o->strategy == MT_STRATEGY_GRID ? 0 : 1.3;
    if (!o->H || !o->Hkv || !o->D) return mt_usage_error(me, "the attention sweep needs --heads, --kv-heads and --head-dim");
    if (o->H % o->Hkv)
        return mt_usage_error(me, "--heads %lld is not a multiple of --kv-heads %lld", (long long)o->H, (long long)o->Hkv);
    if (mt_dtype_parse(o->dtype_s, &o->dtype) != MT_OK)
        return mt_usage_error(me, "--dtype '%s': expected bf16, fp16 or fp32", o->dtype_s);
    if (mt_batch_sizes_parse(o->batches_s, &o->bs, &o->nb, err, sizeof err) != MT_OK)
        return mt_usage_error(me, "--batch-sizes: %s", err);
    if (mt_batch_sizes_parse(o->ctx_s, &o->cs, &o->nc, err, sizeof err) != MT_OK) {
        free(o->bs);
        o->bs = NULL;
        return mt_usage_error(me, "--contexts: %s", err);
    }
    return MT_EXIT_OK;
}

int mt_sweep_attention_check(const char *cmd, int argc, char **argv)
{
    struct attn_opts o;
    int st = parse_attn(cmd, argc, argv, &o);
    if (st) return st < 0 ? MT_EXIT_USAGE : st;
    free(o.bs);
    free(o.cs);
    if (o.device_given || o.db_path || o.job)
        return mt_usage_error(cmd, "--device, --db and --job are the %s command's own (a job gets its device from the "
                              "daemon)", cmd);
    return MT_EXIT_OK;
}

/* a (batch, ctx) pair's share of --shard: round robin over the pairs */
static int pair_kept(const struct attn_opts *o, int k)
{
    return o->shard_n <= 1 || mt_shard_keep(o->H, o->Hkv, o->D, o->page, k, o->shard_i, o->shard_n);
}

static void attn_job_tick(mt_db *db, int64_t job, int done, int total, const char *best)
{
    char st[32];
    mt_db_job_progress(db, job, done, total, best);
    if (mt_db_job_status(db, job, st, sizeof st) == MT_OK && !strcmp(st, "cancelled")) stop = 2;
}

int mt_sweep_attention(int argc, char **argv)
{
    struct attn_opts ao;
    int pst = parse_attn("sweep", argc, argv, &ao);
    if (pst) return pst < 0 ? mt_cli_finish("sweep", 0) : pst;
    int64_t H = ao.H, Hkv = ao.Hkv, D = ao.D, page = ao.page, seed = ao.seed, timeout = ao.timeout, budget = ao.budget;
    double budget_pct = ao.budget_pct;
    const char *db_path = ao.db_path, *out = ao.out, *device = ao.device;
    int strategy = ao.strategy, no_export = ao.no_export, quiet = ao.quiet, dtype = ao.dtype;
    int64_t *bs = ao.bs, *cs = ao.cs;
    int nb = ao.nb, nc = ao.nc;
    char err[512];
    mt_device_spec spec, dspec;
    char note[512];
    if (mt_device_spec_parse(device, &spec) != MT_OK) {
        free(bs), free(cs);
        return mt_usage_error("sweep", "--device '%s': expected auto, cpu, cuda:N or hip:N", device);
    }
    if (mt_device_resolve(&spec, &dspec, note, sizeof note) != MT_OK) {
        free(bs), free(cs);
        return mt_fail("sweep", "--device %s: %s", device, note);
    }
    /* an AMD GPU runs the CUDA kernel's source through hipRTC (issue 10) */
    int gpu = dspec.kind == MT_BACKEND_CUDA || dspec.kind == MT_BACKEND_HIP;
    if (gpu && dtype != MT_DTYPE_BF16 && dtype != MT_DTYPE_FP16) {
        free(bs), free(cs);
        return mt_usage_error("sweep", "--dtype %s: the GPU attention kernel takes bf16 or fp16 (fp32 runs on the CPU)",
                              mt_dtype_name(dtype));
    }
    char wdev[32];
    if (gpu) snprintf(wdev, sizeof wdev, "%s:%d", mt_backend_name(dspec.kind), dspec.index);
    else snprintf(wdev, sizeof wdev, "cpu");

    mt_db *db = NULL;
    mt_worker *w = NULL;
    char exe[4096];
    int status = 0;
    if ((status = mt_cli_open_db("sweep", db_path, &db)) != 0) goto done;
    if (mt_self_exe(exe, sizeof exe) != MT_OK) {
        status = mt_fail("sweep", "cannot find the moetune executable (/proc/self/exe)");
        goto done;
    }
    mt_device_info dev;
    if ((status = mt_sweep_start_worker(exe, wdev, &w, &dev, db)) != 0) goto done;
    /* the problem: the attention family's key */
    mt_problem prob;
    memset(&prob, 0, sizeof prob);
    snprintf(prob.kernel, sizeof prob.kernel, "attn_decode");
    snprintf(prob.key, sizeof prob.key, "{\"H\":%lld,\"H_kv\":%lld,\"D\":%lld,\"page\":%lld,\"dtype\":\"%s\"}",
             (long long)H, (long long)Hkv, (long long)D, (long long)page, mt_dtype_name(dtype));
    if (mt_db_problem_upsert(db, &prob) != MT_OK) {
        status = mt_fail("sweep", "cannot record the problem: %s", mt_db_errmsg(db));
        goto done;
    }
    mt_space sp;
    mt_policy pol;
    /* the family's space and the backend's policy, as the worker takes them */
    mt_tuning_attn_decode.space(&sp, mt_backend_name(dspec.kind), dev.cores);
    mt_policy_default(mt_backend_name(dspec.kind), &pol);
    /* an NVIDIA GPU: every variant this sweep may time compiled ahead with
     * all cores (NVRTC, about a second each), so that the worker loads them;
     * a failure here only costs time (the worker compiles what is missing) */
    if (dspec.kind == MT_BACKEND_CUDA && ao.compile_jobs != 0) {
        char cache[1100], cerr[512];
        mt_kernel_cache_dir("cuda", cache, sizeof cache);
        int64_t max_ctx = 0;
        for (int j = 0; j < nc; j++) max_ctx = cs[j] > max_ctx ? cs[j] : max_ctx;
        long jobs = ao.compile_jobs > 0 ? (long)ao.compile_jobs : sysconf(_SC_NPROCESSORS_ONLN);
        mt_precompile_stats cst;
        if (cache[0] &&
            mt_precompile_cuda_attn(dev.arch, dev.smem_per_block > 0 ? dev.smem_per_block : mt_arch_smem_limit(dev.arch),
                                    (int)D, (int)page, (int)(H / Hkv), (int)max_ctx, dtype == MT_DTYPE_FP16 ? 2 : 1,
                                    (int)(jobs > 0 ? jobs : 1), cache, NULL, NULL, &cst, cerr, sizeof cerr) == MT_OK)
            mt_info("attention kernels for %s: %d variants, %d compiled, %d cached, %d failed, %.1f s", dev.arch,
                    cst.binaries, cst.compiled, cst.cached, cst.failed, cst.seconds);
        else if (cache[0])
            mt_warn("compiling ahead failed (%s): variants are compiled as they are measured", cerr);
    }
    char policy[256], text[1024] = "";
    char pname[32];
    snprintf(pname, sizeof pname, "%s-attn", mt_backend_name(dspec.kind));
    mt_policy_text(&pol, pname, policy, sizeof policy);
    /* the attention kernel's own sources: editing the MoE kernels does not
     * make these measurements stale */
    const char *khash = mt_attn_kernel_hash(gpu ? "cuda" : "cpu");
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nc; j++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%lldx%lld", i || j ? "," : "", (long long)bs[i],
                     (long long)cs[j]);
    char cmdline[1024] = "moetune";
    for (int i = 0; i < argc; i++) snprintf(cmdline + strlen(cmdline), sizeof cmdline - strlen(cmdline), " %s", argv[i]);
    int64_t sweep_id = 0;
    mt_db_sweeps_reap(db, mt_sweep_process_alive);
    if (mt_db_sweep_begin(db, dev.id, prob.id, mt_strategy_name(strategy), (int)budget, text, cmdline, &sweep_id) !=
        MT_OK) {
        status = mt_fail("sweep", "cannot record the sweep: %s", mt_db_errmsg(db));
        goto done;
    }
    /* every variant through the step every family takes */
    mt_family_key fkey;
    if (mt_family_key_parse(&mt_family_attn_decode, prob.key, &fkey, err, sizeof err) != MT_OK) {
        status = mt_fail("sweep", "the problem's key: %s", err);
        goto done;
    }
    mt_sweep_ctx sctx = {db, w, &mt_tuning_attn_decode, &fkey, prob.key, 0, &dev, prob.id, sweep_id, khash, policy,
                         (double)timeout, ao.retry_failed};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    mt_progress prog;
    mt_progress_init(&prog, quiet);
    int measured = 0, skipped = 0, failed = 0, done_n = 0, total = 0, npairs = 0, retried = 0;
    /* the whole plan's size first: the progress counts towards a total
     * that does not move, and the header says it */
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nc; j++) {
            if (!pair_kept(&ao, i * nc + j)) continue;
            mt_space_ctx x = {H, Hkv, D, page, bs[i], dev.cores, gpu ? dev.smem_per_block : 0, cs[j]};
            mt_config *pts = NULL;
            int n = mt_space_enumerate(&sp, &x, &pts);
            free(pts);
            if (n <= 0) continue;
            int b = budget_pct > 0 ? (int)ceil(n * budget_pct / 100) : (int)budget;
            if (budget_pct > 0 && b < 5) b = 5;
            total += b > 0 && b < n ? b : n;
            npairs++;
        }
    if (!quiet)
        fprintf(stderr, "moetune sweep: attention decode on %s: H=%lld H_kv=%lld D=%lld page=%lld %s, %d (batch, context) "
                        "pairs, %d variants\n",
                dev.name, (long long)H, (long long)Hkv, (long long)D, (long long)page, mt_dtype_name(dtype), npairs, total);
    if (ao.job) attn_job_tick(db, ao.job, 0, total, NULL);
    double t_start = mt_now();
    int out_of_time = 0, aborted = 0;
    for (int i = 0; i < nb && !stop && !status && !out_of_time; i++)
        for (int j = 0; j < nc && !stop && !status && !out_of_time; j++) {
            if (!pair_kept(&ao, i * nc + j)) continue;
            mt_space_ctx x = {H, Hkv, D, page, bs[i], dev.cores, gpu ? dev.smem_per_block : 0, cs[j]};
            mt_config *pts = NULL, def;
            int n = mt_space_enumerate(&sp, &x, &pts);
            if (n <= 0) continue;
            sp.default_config(&sp, &x, &def);
            int b = budget_pct > 0 ? (int)ceil(n * budget_pct / 100) : (int)budget;
            if (budget_pct > 0 && b < 5) b = 5;
            mt_search *search = NULL;
            /* the model's input is the work: sequences x context */
            if (mt_search_new(&search, strategy, &sp, pts, n, &def, bs[i] * cs[j], b,
                              (uint64_t)seed * 0x2545f4914f6cdd1dull + (uint64_t)(bs[i] * 131071 + cs[j])) != MT_OK) {
                free(pts);
                status = mt_fail("sweep", "out of memory");
                break;
            }
            char label[64];
            snprintf(label, sizeof label, "batch %lld ctx %lld", (long long)bs[i], (long long)cs[j]);
            struct attn_tick tc = {&prog, db, ao.job, total};
            mt_point_search pt = {.search = search, .sp = &sp, .pts = pts, .def = &def, .point = {bs[i], cs[j]},
                                  .label = label,
                                  .seed = (uint64_t)seed * 0x9e3779b97f4a7c15ull ^ (uint64_t)bs[i] * 1000003ull ^
                                          (uint64_t)cs[j] * 7919ull,
                                  .abort_factor = ao.abort_factor, .deadline = ao.time_s > 0 ? t_start + ao.time_s : 0,
                                  .warn_failures = !quiet && !prog.tty, .progress = attn_tick_fn, .user = &tc,
                                  .done = done_n, .best = INFINITY};
            if (mt_sweep_search_point(&sctx, &pt, &pol, &stop, err, sizeof err) != MT_OK) status = mt_fail("sweep", "%s", err);
            done_n = pt.done;
            measured += pt.measured, skipped += pt.skipped, failed += pt.failed, aborted += pt.aborted;
            retried += pt.retried;
            out_of_time |= pt.out_of_time;
            mt_search_free(search);
            free(pts);
        }
    mt_progress_end(&prog);
    mt_db_sweep_end(db, sweep_id, status ? "failed" : stop ? "interrupted" : out_of_time ? "time limit" : "done");
    /* said even with --quiet: a sweep cut short must not pass for a whole one */
    if (out_of_time)
        fprintf(stderr, "moetune sweep: --time %.0f s reached; the (batch, context) pairs not reached keep their earlier "
                        "results\n",
                ao.time_s);
    if (status) goto done;
    if (!ao.json) {
        printf("measured %d variants (%d failed, %d aborted as clearly slower), %d already in the database", measured,
               failed, aborted, skipped);
        if (retried) printf(", %d failed before and measured again", retried);
        printf("\n");
        printf("%s (%s), attn_decode H=%lld H_kv=%lld D=%lld page=%lld %s\n", dev.name, dev.backend, (long long)H,
               (long long)Hkv, (long long)D, (long long)page, mt_dtype_name(dtype));
        printf("%7s %7s  %-52s %10s %9s %6s\n", "batch", "ctx", "best config", "median us", "floor us", "floor/t");
    }
    struct best_list bl = {calloc(4096, sizeof(mt_attn_entry)), calloc(4096, 256), calloc(4096, 2 * sizeof(double)), 0,
                           4096, ao.json ? NULL : stdout};
    char written[4700] = "";
    if (!bl.e || !bl.params || !bl.fig || mt_db_attn_best(db, dev.id, prob.id, khash, take_best, &bl) != MT_OK) {
        status = mt_fail("sweep", "cannot read the results: %s", mt_db_errmsg(db));
    } else if (!no_export && !stop && bl.n) {
        char dir[4096], name[512], path[4700];
        if (out) snprintf(dir, sizeof dir, "%s", out);
        else if (mt_data_dir(dir, sizeof dir - 16) == MT_OK) strcat(dir, "/configs");
        else snprintf(dir, sizeof dir, "moetune-configs");
        mt_attn_name nm = {H, Hkv, D, page, "", ""};
        snprintf(nm.device, sizeof nm.device, "%s", dev.name);
        snprintf(nm.dtype, sizeof nm.dtype, "%s", mt_dtype_name(dtype));
        mt_attn_name_format(name, sizeof name, &nm);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (mt_mkdir_p(dir) != 0 || mt_attn_file_write(path, bl.e, bl.n, err, sizeof err) != MT_OK)
            status = mt_fail("sweep", "cannot write %s: %s", path, err);
        else if (!ao.json)
            printf("attention config file: %s\n", path);
        else
            snprintf(written, sizeof written, "%s", path);
    }
    /* a (batch, context) pair left with no verified config fails the sweep,
     * as a batch size does in the fused-MoE sweep */
    int unverified = 0;
    char missing[1024] = "";
    for (int i = 0; !stop && !out_of_time && bl.e && i < nb; i++)
        for (int j = 0; j < nc; j++) {
            if (!pair_kept(&ao, i * nc + j)) continue;
            int found = 0;
            for (int k = 0; k < bl.n && !found; k++) found = bl.e[k].batch == bs[i] && bl.e[k].ctx == cs[j];
            if (found) continue;
            mt_err("batch %lld, context %lld: no variant passed its check", (long long)bs[i], (long long)cs[j]);
            if (strlen(missing) < sizeof missing - 48)
                snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s[%lld,%lld]", unverified ? "," : "",
                         (long long)bs[i], (long long)cs[j]);
            unverified++;
        }
    if (ao.json && bl.e) {
        printf("{\"sweep_id\":%lld,\"measured\":%d,\"skipped\":%d,\"failed\":%d,\"aborted\":%d,\"retried\":%d,"
               "\"interrupted\":%s,\"time_limit\":%s,\"unverified_pairs\":[%s],\"table\":{\"device\":",
               (long long)sweep_id, measured, skipped, failed, aborted, retried, stop ? "true" : "false",
               out_of_time ? "true" : "false", missing);
        mt_json_str(stdout, dev.name);
        printf(",\"backend\":");
        mt_json_str(stdout, dev.backend);
        printf(",\"kernel\":\"attn_decode\",\"key\":%s,\"results\":[", prob.key);
        for (int k = 0; k < bl.n; k++) {
            printf("%s{\"batch\":%lld,\"ctx\":%lld,\"params\":%s,\"median_us\":%.17g", k ? "," : "",
                   (long long)bl.e[k].batch, (long long)bl.e[k].ctx, bl.e[k].params, bl.fig[k][0]);
            if (isnan(bl.fig[k][1])) printf(",\"floor_us\":null}");
            else printf(",\"floor_us\":%.17g}", bl.fig[k][1]);
        }
        printf("]}");
        if (written[0]) {
            printf(",\"out\":");
            mt_json_str(stdout, written);
        }
        printf("}\n");
    }
    if (unverified && !status)
        status = mt_fail("sweep", "%d (batch, context) pair(s) ended with no verified config (failures above): nothing "
                                  "is exported for them; fix the cause and run the same command again",
                         unverified);
    free(bl.e);
    free(bl.params);
    free(bl.fig);
    if (stop == 2 && !status) {
        fprintf(stderr, "moetune sweep: job %lld was cancelled; %d measurements are stored\n", (long long)ao.job, measured);
        status = MT_EXIT_INTERRUPTED;
    } else if (stop && !status) {
        fprintf(stderr, "moetune sweep: interrupted; %d measurements are stored, run the same command to go on\n", measured);
        status = MT_EXIT_INTERRUPTED;
    }
done:
    mt_worker_stop(w);
    mt_db_close(db);
    free(bs);
    free(cs);
    return mt_cli_finish("sweep", status);
}
