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
#include "export.h"
#include "report.h"
#include "sweep_plan.h"
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
    "  --time DURATION, --abort-factor F, --finalists N, --finalist-rounds R,\n"
    "  --db PATH, --out DIR, --no-export, --quiet, --json, --shard I/N, --job ID,\n"
    "  --compile-jobs N, --retry-failed: as for the fused-MoE sweep (a shard is a\n"
    "  share of the (batch, context) pairs; finalists are per pair; --json prints\n"
    "  the counts and the best config of each pair)\n"
    "Each pair's search starts from what is known elsewhere: the winners of\n"
    "the same shape on other devices of the architecture, and of the nearest\n"
    "other shapes measured on this device.\n"
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

struct attn_opts {
    int64_t H, Hkv, D, page, seed, timeout, budget, job;
    double budget_pct;
    const char *dtype_s, *batches_s, *ctx_s, *db_path, *out, *device;
    int strategy, no_export, quiet, dtype, shard_i, shard_n, device_given, retry_failed, json, finalists, rounds;
    double time_s, abort_factor;
    int64_t compile_jobs; /* -1: the online CPUs */
    int64_t *bs, *cs;
    int nb, nc;
};

/* the options, checked; lists malloc'ed in o (free them) */
static int parse_attn(const char *me, int argc, char **argv, struct attn_opts *o)
{
    enum { O_KERNEL = 300, O_H, O_HKV, O_D, O_PAGE, O_DTYPE, O_BATCH, O_CTX, O_STRAT, O_BUDGET, O_SEED, O_TIMEOUT,
           O_DB, O_OUT, O_NOEXP, O_QUIET, O_DEVICE, O_JOB, O_SHARD, O_COMPILE_JOBS, O_RETRY, O_TIME, O_ABORT, O_JSON,
           O_FINALISTS, O_ROUNDS };
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
        {"finalists", required_argument, 0, O_FINALISTS}, {"finalist-rounds", required_argument, 0, O_ROUNDS},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->page = 16, o->seed = 1, o->timeout = 60, o->compile_jobs = -1, o->finalists = 3, o->rounds = 3;
    o->dtype_s = "bf16", o->batches_s = "1,8,32", o->ctx_s = "512,2048", o->device = "auto";
    o->strategy = MT_STRATEGY_GRID;
    o->abort_factor = -1; /* unset: 1.3 for random and bayes, off for grid, as the fused-MoE sweep */
    int c, st;
    int64_t v;
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
        case O_FINALISTS:
            st = mt_parse_int_opt(me, "--finalists", optarg, 0, MT_PLAN_MAX_FINALISTS, &v);
            o->finalists = (int)v;
            break;
        case O_ROUNDS:
            st = mt_parse_int_opt(me, "--finalist-rounds", optarg, 1, MT_PLAN_MAX_ROUNDS, &v);
            o->rounds = (int)v;
            break;
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
    mt_plan *plan = NULL;
    int64_t (*points)[2] = NULL;
    char exe[4096], lock_db[4096] = "";
    int status = 0, lock_fd = -1, job_lock = -1;
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
    /* every variant through the step every family takes, every point
     * through the plan every family takes */
    mt_family_key fkey;
    if (mt_family_key_parse(&mt_family_attn_decode, prob.key, &fkey, err, sizeof err) != MT_OK) {
        status = mt_fail("sweep", "the problem's key: %s", err);
        goto done;
    }
    mt_sweep_ctx sctx = {db, w, &mt_tuning_attn_decode, &fkey, prob.key, 0, &dev, prob.id, 0, khash, policy,
                         (double)timeout, ao.retry_failed};
    int npairs = 0;
    points = calloc((size_t)(nb * nc) + 1, sizeof *points);
    if (!points) {
        status = mt_fail("sweep", "out of memory");
        goto done;
    }
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nc; j++)
            if (pair_kept(&ao, i * nc + j)) points[npairs][0] = bs[i], points[npairs++][1] = cs[j];
    if (mt_cli_db_path(db_path, lock_db, sizeof lock_db) == MT_OK) lock_fd = mt_m_lock_open(lock_db);
    mt_plan_opts po = {strategy, budget, budget_pct, seed, ao.abort_factor, ao.time_s, ao.finalists, ao.rounds, quiet,
                       ao.job, NULL, lock_fd};
    if (mt_plan_new(&plan, &sctx, &prob, &sp, (const int64_t(*)[2])points, npairs, &po, err, sizeof err) != MT_OK) {
        status = mt_fail("sweep", "%s", err);
        goto done;
    }
    int64_t sweep_id = 0;
    mt_db_sweeps_reap(db, mt_sweep_process_alive);
    if (mt_db_sweep_begin(db, dev.id, prob.id, mt_strategy_name(strategy), (int)budget, text, cmdline, &sweep_id) !=
        MT_OK) {
        status = mt_fail("sweep", "cannot record the sweep: %s", mt_db_errmsg(db));
        goto done;
    }
    sctx.sweep_id = sweep_id;
    if (mt_plan_claim_job(db, lock_db, ao.job, &job_lock, err, sizeof err) != MT_OK) {
        status = mt_fail("sweep", "%s", err);
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!quiet)
        fprintf(stderr, "moetune sweep: attention decode on %s: H=%lld H_kv=%lld D=%lld page=%lld %s, %d (batch, context) "
                        "pairs, %d variants\n",
                dev.name, (long long)H, (long long)Hkv, (long long)D, (long long)page, mt_dtype_name(dtype), npairs,
                mt_plan_total(plan));
    mt_plan_counts pc;
    memset(&pc, 0, sizeof pc);
    if (mt_plan_run(plan, &sctx, &pol, &stop, &pc, err, sizeof err) != MT_OK) status = mt_fail("sweep", "%s", err);
    mt_db_sweep_end(db, sweep_id, status ? "failed" : stop ? "interrupted" : pc.out_of_time ? "time limit" : "done");
    /* said even with --quiet: a sweep cut short must not pass for a whole one */
    if (pc.out_of_time)
        fprintf(stderr, "moetune sweep: --time %.0f s reached; the (batch, context) pairs not reached keep their earlier "
                        "results\n",
                ao.time_s);
    if (status) goto done;
    /* a (batch, context) pair left with no verified config fails the sweep,
     * as a batch size does in the fused-MoE sweep */
    int64_t missing[64][2];
    int unverified = stop || pc.out_of_time ? 0 : mt_plan_unverified(plan, &sctx, missing, 64);
    if (ao.json) {
        printf("{\"sweep_id\":%lld,\"measured\":%d,\"skipped\":%d,\"failed\":%d,\"aborted\":%d,\"retried\":%d,"
               "\"interrupted\":%s,\"time_limit\":%s,\"unverified_pairs\":[",
               (long long)sweep_id, pc.measured, pc.skipped, pc.failed, pc.aborted, pc.retried, stop ? "true" : "false",
               pc.out_of_time ? "true" : "false");
        for (int k = 0; k < unverified && k < 64; k++)
            printf("%s[%lld,%lld]", k ? "," : "", (long long)missing[k][0], (long long)missing[k][1]);
        printf("],\"table\":");
    } else {
        printf("measured %d variants (%d failed, %d aborted as clearly slower), %d already in the database", pc.measured,
               pc.failed, pc.aborted, pc.skipped);
        if (pc.retried) printf(", %d failed before and measured again", pc.retried);
        printf("\n");
    }
    if (mt_report_pair(stdout, db, &dev, &prob, ao.json) != MT_OK) {
        status = mt_fail("sweep", "cannot read the results: %s", mt_db_errmsg(db));
        goto done;
    }
    if (!no_export && !stop) {
        /* the attention config file, through the export every family takes */
        char dir[4096];
        mt_family_file file;
        if (out) snprintf(dir, sizeof dir, "%s", out);
        else if (mt_data_dir(dir, sizeof dir - 16) == MT_OK) strcat(dir, "/configs");
        else snprintf(dir, sizeof dir, "moetune-configs");
        mt_path_trim(dir);
        mt_export_opts eo = {dir, 1, 1, 0, dev.id, prob.id, 1};
        mt_export_stats es;
        if (mt_mkdir_p(dir) != 0 || mt_export(db, &eo, &es) != MT_OK || es.failed) {
            status = mt_fail("sweep", "cannot write the attention config file into '%s' (said above)", dir);
        } else if (es.written && mt_family_attn_decode.file_names(&fkey, dev.name, dev.backend, &file, 1) == 1) {
            if (ao.json) {
                char path[4700];
                snprintf(path, sizeof path, "%s/%s", dir, file.name);
                printf(",\"out\":");
                mt_json_str(stdout, path);
            } else {
                printf("attention config file: %s/%s\n", dir, file.name);
            }
        }
    }
    if (ao.json) printf("}\n");
    if (unverified && !status)
        status = mt_fail("sweep", "%d (batch, context) pair(s) ended with no verified config (failures above): nothing "
                                  "is exported for them; fix the cause and run the same command again",
                         unverified);
    if (pc.cancelled && !status) {
        fprintf(stderr, "moetune sweep: job %lld was cancelled; %d measurements are stored\n", (long long)ao.job,
                pc.measured);
        status = MT_EXIT_INTERRUPTED;
    } else if (stop && !status) {
        fprintf(stderr, "moetune sweep: interrupted; %d measurements are stored, run the same command to go on\n",
                pc.measured);
        status = MT_EXIT_INTERRUPTED;
    }
done:
    mt_plan_free(plan);
    free(points);
    mt_worker_stop(w);
    mt_job_lock_drop(lock_db, ao.job, job_lock);
    if (lock_fd >= 0) close(lock_fd);
    mt_db_close(db);
    free(bs);
    free(cs);
    return mt_cli_finish("sweep", status);
}
