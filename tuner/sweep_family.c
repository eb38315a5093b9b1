/* moetune sweep --kernel NAME: tune a kernel family other than fused MoE
 * (attention decode, and the families to come) over its points, with the
 * options the family declares (family_tuning.h: its key fields and point
 * lists) and the ones every sweep takes. Every measurement in the worker
 * process, committed as taken, skipped when stored (tuner/sweep_plan.c,
 * tuner/sweep_step.c, as for fused MoE), and the winners exported as the
 * family's file. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cmds.h"
#include "device.h"
#include "export.h"
#include "family_tuning.h"
#include "log.h"
#include "measure.h"
#include "measure_cuda.h"
#include "moetune/moetune.h"
#include "precompile.h"
#include "report.h"
#include "strategy.h"
#include "sweep_opts.h"
#include "sweep_plan.h"
#include "util.h"

/* the options every family's sweep takes */
static const char common_help[] =
    "  --dtype T                   of the inputs (default %s; the backend's kernel\n"
    "                              takes %s)\n"
    "  --device auto|cpu|cuda:N|hip:N\n"
    "  --strategy grid|random|bayes, --budget N|P%%, --seed N, --timeout SEC,\n"
    "  --time DURATION, --abort-factor F, --finalists N, --finalist-rounds R,\n"
    "  --db PATH, --out DIR, --no-export, --quiet, --json, --shard I/N, --job ID,\n"
    "  --compile-jobs N, --retry-failed: as for the fused-MoE sweep (a shard is a\n"
    "  share of the points; finalists are per point; the default strategy is\n"
    "  grid; --json prints the counts and the best config of each point)\n"
    "Each point's search starts from what is known elsewhere: the winners of\n"
    "the same problem on other devices of the architecture, and of the nearest\n"
    "other problems of the family measured on this device.\n";

enum { O_KERNEL = 300, O_DTYPE, O_FAMILY = 400 };
static const struct option own_opts[] = {
    {"kernel", required_argument, 0, O_KERNEL}, {"dtype", required_argument, 0, O_DTYPE}, {"help", no_argument, 0, 'h'}};
#define NOWN ((int)(sizeof own_opts / sizeof own_opts[0]))

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    /* the first stops after the variant in flight; a second exits at once,
     * as the fused-MoE sweep does (what is committed stays) */
    if (stop) _exit(MT_EXIT_INTERRUPTED);
    stop = 1;
}

struct fam_opts {
    const mt_family_tuning *t;
    mt_family_key key;
    int given[MT_FAMILY_MAX_KEY];
    const char *lists[MT_FAMILY_MAX_POINT];
    int64_t *pv[MT_FAMILY_MAX_POINT];
    int np[MT_FAMILY_MAX_POINT];
    mt_sweep_common c; /* what every sweep takes */
    const char *dtype_s;
};

static void opts_free(struct fam_opts *o)
{
    for (int p = 0; p < MT_FAMILY_MAX_POINT; p++) free(o->pv[p]), o->pv[p] = NULL;
}

static void usage(const mt_family_tuning *t)
{
    const mt_family *f = t->family;
    printf("usage: moetune sweep --kernel %s", t->cli_name ? t->cli_name : f->name);
    for (int i = 0; i < t->noptions; i++)
        if (!t->options[i].def) printf(" --%s N", t->options[i].name);
    printf(" [options]\n\nTune the %s kernel family for one problem over its points\n(", f->name);
    for (int p = 0; p < f->npoint; p++) printf("%s%s", p ? " x " : "", f->point_about[p]);
    printf("), store every measurement and write its config file.\n%s.\n", f->about);
    for (int i = 0; i < t->noptions; i++) {
        const mt_family_option *o = &t->options[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", o->name, o->point >= 0 ? "LIST" : "N");
        printf("  %-27s %s", left, o->help);
        if (o->def) printf(" (default %s)", o->def);
        printf("\n");
    }
    char cpu[64] = "", gpu[64] = "";
    snprintf(cpu, sizeof cpu, "%s", t->dtypes("cpu"));
    snprintf(gpu, sizeof gpu, "%s", t->dtypes("cuda"));
    char takes[160];
    snprintf(takes, sizeof takes, "%s on the CPU, %s on GPUs", cpu[0] ? cpu : "none", gpu[0] ? gpu : "none");
    printf(common_help, f->dtype_default && f->dtype_default[0] ? f->dtype_default : "bf16", takes);
}

/* "H=8 is not a multiple of H_kv=3" as the command line says it: "--heads
 * 8 is not a multiple of --kv-heads 3" */
static void in_options(const mt_family_tuning *t, const char *why, char *out, size_t n)
{
    size_t o = 0;
    out[0] = 0;
    for (const char *p = why; *p && o + 1 < n;) {
        int done = 0;
        int boundary = p == why || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z'));
        for (int i = 0; boundary && !done && i < t->noptions; i++) {
            if (t->options[i].key < 0) continue;
            const char *fname = t->family->key[t->options[i].key].name;
            size_t fl = strlen(fname);
            if (strncmp(p, fname, fl) || p[fl] != '=') continue;
            int w = snprintf(out + o, n - o, "--%s ", t->options[i].name);
            if (w > 0) o += (size_t)w < n - o ? (size_t)w : n - o - 1;
            p += fl + 1;
            done = 1;
        }
        if (!done) out[o++] = *p++, out[o] = 0;
    }
}

/* the options, checked; the lists malloc'ed in o (opts_free); -1 after
 * --help */
static int parse(const char *me, const mt_family_tuning *t, int argc, char **argv, struct fam_opts *o)
{
    const mt_family *f = t->family;
    struct option lo[NOWN + 32 + 16 + 1];
    int nlo = 0;
    memset(lo, 0, sizeof lo);
    for (int i = 0; i < NOWN; i++) lo[nlo++] = own_opts[i];
    for (int i = 0; i < mt_sweep_ncommon && i < 32; i++) lo[nlo++] = mt_sweep_common_options[i];
    for (int i = 0; i < t->noptions && i < 16; i++)
        lo[nlo++] = (struct option){t->options[i].name, required_argument, 0, O_FAMILY + i};
    memset(o, 0, sizeof *o);
    o->t = t;
    mt_sweep_common_init(&o->c, MT_STRATEGY_GRID);
    o->dtype_s = f->dtype_default && f->dtype_default[0] ? f->dtype_default : "bf16";
    for (int i = 0; i < t->noptions; i++) {
        const mt_family_option *op = &t->options[i];
        if (op->point >= 0) o->lists[op->point] = op->def;
        else if (op->key >= 0 && op->def) o->key.v[op->key] = strtoll(op->def, NULL, 10), o->given[op->key] = 1;
    }
    int c, st;
    char err[512];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if ((st = mt_sweep_common_opt(me, c, optarg, &o->c)) >= 0) {
            if (st != MT_EXIT_OK) return st;
            continue;
        }
        st = MT_EXIT_OK;
        if (c >= O_FAMILY && c < O_FAMILY + t->noptions) {
            const mt_family_option *op = &t->options[c - O_FAMILY];
            char name[64];
            snprintf(name, sizeof name, "--%s", op->name);
            if (op->point >= 0) {
                o->lists[op->point] = optarg;
            } else {
                const mt_family_keyfield *kf = &f->key[op->key];
                st = mt_parse_int_opt(me, name, optarg, kf->min > 0 ? kf->min : 1, kf->max, &o->key.v[op->key]);
                o->given[op->key] = 1;
            }
            if (st) return st;
            continue;
        }
        switch (c) {
        case O_KERNEL: break;
        case O_DTYPE: o->dtype_s = optarg; break;
        case 'h': return usage(t), -1;
        default:
            return mt_usage_error(me, "'%s' is not an option of the %s sweep (moetune sweep --kernel %s --help)",
                                  argv[optind - 1], t->cli_name ? t->cli_name : f->name,
                                  t->cli_name ? t->cli_name : f->name);
        }
    }
    if (optind < argc) return mt_usage_error(me, "unexpected argument '%s'", argv[optind]);
    mt_sweep_common_finish(&o->c);
    /* the key: every required field given, then the family's own rule */
    char missing[256] = "";
    int nmiss = 0, last = 0;
    for (int i = 0; i < t->noptions; i++)
        if (t->options[i].key >= 0 && !o->given[t->options[i].key]) nmiss++, last = i;
    for (int i = 0, k = 0; i < t->noptions; i++)
        if (t->options[i].key >= 0 && !o->given[t->options[i].key])
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s--%s",
                     k++ == 0 ? "" : i == last ? " and " : ", ", t->options[i].name);
    if (nmiss) return mt_usage_error(me, "the %s sweep needs %s", t->cli_name ? t->cli_name : f->name, missing);
    /* a dtype some backend's kernel takes; whether the device's does is
     * checked once the device is known */
    int dt;
    if (mt_dtype_parse(o->dtype_s, &dt) != MT_OK ||
        !(mt_family_takes_dtype(t, "cpu", mt_dtype_name(dt)) || mt_family_takes_dtype(t, "cuda", mt_dtype_name(dt)) ||
          mt_family_takes_dtype(t, "hip", mt_dtype_name(dt))))
        return mt_usage_error(me, "--dtype '%s': expected one of %s (the CPU's), %s (GPUs')", o->dtype_s,
                              t->dtypes("cpu"), t->dtypes("cuda"));
    snprintf(o->key.dtype, sizeof o->key.dtype, "%s", mt_dtype_name(dt));
    char why[256];
    if (f->check_key && !f->check_key(&o->key, why, sizeof why)) {
        char said[320];
        in_options(t, why, said, sizeof said);
        return mt_usage_error(me, "%s", said);
    }
    for (int p = 0; p < f->npoint; p++) {
        const char *name = "the points";
        for (int i = 0; i < t->noptions; i++)
            if (t->options[i].point == p) name = t->options[i].name;
        if (!o->lists[p]) {
            opts_free(o);
            return mt_usage_error(me, "the %s sweep needs --%s", t->cli_name ? t->cli_name : f->name, name);
        }
        if (mt_batch_sizes_parse(o->lists[p], &o->pv[p], &o->np[p], err, sizeof err) != MT_OK) {
            opts_free(o);
            return mt_usage_error(me, "--%s: %s", name, err);
        }
    }
    return MT_EXIT_OK;
}

/* the family a --kernel name means (not fused MoE's), or NULL */
const mt_family_tuning *mt_sweep_family_of(const char *kernel)
{
    for (int i = 0; i < mt_nfamilies; i++) {
        const mt_family_tuning *t = mt_family_tunings[i];
        if (t->noptions && (!strcmp(kernel, t->family->name) || (t->cli_name && !strcmp(kernel, t->cli_name))))
            return t;
    }
    return NULL;
}

int mt_sweep_family_check(const char *cmd, const mt_family_tuning *t, int argc, char **argv)
{
    struct fam_opts o;
    int st = parse(cmd, t, argc, argv, &o);
    if (st) return st < 0 ? MT_EXIT_USAGE : st;
    opts_free(&o);
    if (o.c.device_given || o.c.db || o.c.job)
        return mt_usage_error(cmd, "--device, --db and --job are the %s command's own (a job gets its device from the "
                              "daemon)", cmd);
    return MT_EXIT_OK;
}

int mt_sweep_family(const mt_family_tuning *t, int argc, char **argv)
{
    const mt_family *f = t->family;
    struct fam_opts o;
    int pst = parse("sweep", t, argc, argv, &o);
    if (pst) return pst < 0 ? mt_cli_finish("sweep", 0) : pst;
    char err[512], note[512];
    mt_device_spec spec, dspec;
    if (mt_device_spec_parse(o.c.device, &spec) != MT_OK) {
        opts_free(&o);
        return mt_usage_error("sweep", "--device '%s': expected auto, cpu, cuda:N or hip:N", o.c.device);
    }
    if (mt_device_resolve(&spec, &dspec, note, sizeof note) != MT_OK) {
        opts_free(&o);
        return mt_fail("sweep", "--device %s: %s", o.c.device, note);
    }
    /* an AMD GPU runs the CUDA kernel's source through hipRTC */
    const char *backend = mt_backend_name(dspec.kind);
    int gpu = dspec.kind == MT_BACKEND_CUDA || dspec.kind == MT_BACKEND_HIP;
    if (!mt_family_takes_dtype(t, backend, o.key.dtype)) {
        opts_free(&o);
        return mt_usage_error("sweep", "--dtype %s: the %s kernel of %s takes %s", o.key.dtype, backend, f->name,
                              t->dtypes(backend)[0] ? t->dtypes(backend) : "none");
    }
    char wdev[32];
    if (gpu) snprintf(wdev, sizeof wdev, "%s:%d", backend, dspec.index);
    else snprintf(wdev, sizeof wdev, "cpu");

    mt_db *db = NULL;
    mt_worker *w = NULL;
    mt_plan *plan = NULL;
    int64_t (*points)[2] = NULL;
    char exe[4096], lock_db[4096] = "";
    int status = 0, lock_fd = -1, job_lock = -1;
    if ((status = mt_cli_open_db("sweep", o.c.db, &db)) != 0) goto done;
    if (mt_self_exe(exe, sizeof exe) != MT_OK) {
        status = mt_fail("sweep", "cannot find the moetune executable (/proc/self/exe)");
        goto done;
    }
    mt_device_info dev;
    if ((status = mt_sweep_start_worker(exe, wdev, &w, &dev, db)) != 0) goto done;
    /* the problem: the family's key, canonical */
    mt_problem prob;
    memset(&prob, 0, sizeof prob);
    snprintf(prob.kernel, sizeof prob.kernel, "%s", f->name);
    if (mt_family_key_format(f, &o.key, prob.key, sizeof prob.key) != MT_OK ||
        mt_problem_key_of(&prob, err, sizeof err) != MT_OK) {
        status = mt_fail("sweep", "the problem's key: %s", err);
        goto done;
    }
    if (mt_db_problem_upsert(db, &prob) != MT_OK) {
        status = mt_fail("sweep", "cannot record the problem: %s", mt_db_errmsg(db));
        goto done;
    }
    /* the points, the shard's share of them: round robin over the list */
    int np = 0, total_pts = 1;
    for (int p = 0; p < f->npoint; p++) total_pts *= o.np[p];
    points = calloc((size_t)total_pts + 1, sizeof *points);
    if (!points) {
        status = mt_fail("sweep", "out of memory");
        goto done;
    }
    char text[1024] = "";
    for (int k = 0; k < total_pts; k++) {
        int64_t pt[2] = {0, 0};
        int r = k;
        for (int p = f->npoint - 1; p >= 0; p--) pt[p] = o.pv[p][r % o.np[p]], r /= o.np[p];
        snprintf(text + strlen(text), sizeof text - strlen(text), k ? ",%lld" : "%lld", (long long)pt[0]);
        if (f->npoint > 1) snprintf(text + strlen(text), sizeof text - strlen(text), "x%lld", (long long)pt[1]);
        if (o.c.shard_n > 1 && !mt_shard_keep(o.key.v[0], o.key.v[1], o.key.v[2], o.key.v[3], k, o.c.shard_i, o.c.shard_n))
            continue;
        memcpy(points[np++], pt, sizeof pt);
    }
    if (!np) {
        if (!o.c.quiet)
            fprintf(stderr, "moetune sweep: shard %d/%d holds none of this problem's points: nothing to do\n", o.c.shard_i,
                    o.c.shard_n);
        goto done;
    }
    mt_space sp;
    mt_policy pol;
    /* the family's space and the backend's policy, as the worker takes them */
    if (t->space(&sp, backend, dev.cores) != MT_OK) {
        status = mt_fail("sweep", "the %s backend has no kernel of %s", backend, f->name);
        goto done;
    }
    mt_policy_default(backend, &pol);
    /* an NVIDIA GPU: every variant this sweep may time compiled ahead with
     * all cores, so that the worker loads them; a failure here only costs
     * time (the worker compiles what is missing) */
    if (dspec.kind == MT_BACKEND_CUDA && o.c.compile_jobs != 0 && t->precompile) {
        char cache[1100], cerr[512];
        mt_kernel_cache_dir("cuda", cache, sizeof cache);
        long jobs = o.c.compile_jobs > 0 ? (long)o.c.compile_jobs : sysconf(_SC_NPROCESSORS_ONLN);
        mt_family_precompile pc = {dev.arch, dev.smem_per_block > 0 ? dev.smem_per_block : mt_arch_smem_limit(dev.arch),
                                   (int)(jobs > 0 ? jobs : 1), &o.key, (const int64_t(*)[2])points, np, cache};
        mt_precompile_stats cst;
        if (cache[0] && t->precompile(&pc, &cst, cerr, sizeof cerr) == MT_OK)
            mt_info("%s kernels for %s: %d variants, %d compiled, %d cached, %d failed, %.1f s", f->name, dev.arch,
                    cst.binaries, cst.compiled, cst.cached, cst.failed, cst.seconds);
        else if (cache[0])
            mt_warn("compiling ahead failed (%s): variants are compiled as they are measured", cerr);
    }
    char policy[256], pname[48];
    snprintf(pname, sizeof pname, "%s%s", backend, t->policy_suffix ? t->policy_suffix : "");
    mt_policy_text(&pol, pname, policy, sizeof policy);
    /* the family's own kernel sources: editing another family's kernels
     * does not make these measurements stale */
    const char *khash = f->kernel_hash(gpu ? "cuda" : "cpu");
    char cmdline[1024] = "moetune";
    for (int i = 0; i < argc; i++) snprintf(cmdline + strlen(cmdline), sizeof cmdline - strlen(cmdline), " %s", argv[i]);
    mt_sweep_ctx sctx = {db, w, t, &o.key, prob.key, 0, &dev, prob.id, 0, khash, policy, (double)o.c.timeout,
                         o.c.retry_failed, NULL, NULL, 0, NULL, NULL};
    if (mt_cli_db_path(o.c.db, lock_db, sizeof lock_db) == MT_OK) lock_fd = mt_m_lock_open(lock_db);
    mt_plan_opts po = {o.c.strategy, o.c.budget, o.c.budget_pct, o.c.seed, o.c.abort_factor, o.c.time_s, o.c.finalists, o.c.rounds,
                       o.c.quiet, o.c.job, NULL, lock_fd, NULL, NULL};
    if (mt_plan_new(&plan, &sctx, &prob, &sp, (const int64_t(*)[2])points, np, &po, err, sizeof err) != MT_OK) {
        status = mt_fail("sweep", "%s", err);
        goto done;
    }
    int64_t sweep_id = 0;
    mt_db_sweeps_reap(db, mt_sweep_process_alive);
    if (mt_db_sweep_begin(db, dev.id, prob.id, mt_strategy_name(o.c.strategy), (int)o.c.budget, text, cmdline, &sweep_id) !=
        MT_OK) {
        status = mt_fail("sweep", "cannot record the sweep: %s", mt_db_errmsg(db));
        goto done;
    }
    sctx.sweep_id = sweep_id;
    if (mt_plan_claim_job(db, lock_db, o.c.job, &job_lock, err, sizeof err) != MT_OK) {
        status = mt_fail("sweep", "%s", err);
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char desc[256];
    f->describe(&o.key, desc, sizeof desc);
    if (!o.c.quiet)
        fprintf(stderr, "moetune sweep: %s on %s: %s, %d point%s, %d variants\n", f->name, dev.name, desc, np,
                np == 1 ? "" : "s", mt_plan_total(plan));
    mt_plan_counts pc;
    memset(&pc, 0, sizeof pc);
    if (mt_plan_run(plan, &sctx, &pol, &stop, &pc, err, sizeof err) != MT_OK) status = mt_fail("sweep", "%s", err);
    mt_db_sweep_end(db, sweep_id, status ? "failed" : stop ? "interrupted" : pc.out_of_time ? "time limit" : "done");
    /* said even with --quiet: a sweep cut short must not pass for a whole one */
    if (pc.out_of_time)
        fprintf(stderr, "moetune sweep: --time %.0f s reached; the points not reached keep their earlier results\n",
                o.c.time_s);
    if (status) goto done;
    /* a point left with no verified config fails the sweep, as a batch
     * size does in the fused-MoE sweep */
    int64_t missing[64][2];
    int unverified = stop || pc.out_of_time ? 0 : mt_plan_unverified(plan, &sctx, missing, 64, NULL);
    if (o.c.json) {
        printf("{\"sweep_id\":%lld,\"measured\":%d,\"skipped\":%d,\"failed\":%d,\"aborted\":%d,\"retried\":%d,"
               "\"interrupted\":%s,\"time_limit\":%s,\"unverified_points\":[",
               (long long)sweep_id, pc.measured, pc.skipped, pc.failed, pc.aborted, pc.retried, stop ? "true" : "false",
               pc.out_of_time ? "true" : "false");
        for (int k = 0; k < unverified && k < 64; k++) {
            if (f->npoint > 1) printf("%s[%lld,%lld]", k ? "," : "", (long long)missing[k][0], (long long)missing[k][1]);
            else printf("%s%lld", k ? "," : "", (long long)missing[k][0]);
        }
        printf("],\"table\":");
    } else {
        printf("measured %d variants (%d failed, %d aborted as clearly slower), %d already in the database", pc.measured,
               pc.failed, pc.aborted, pc.skipped);
        if (pc.retried) printf(", %d failed before and measured again", pc.retried);
        printf("\n");
    }
    if (mt_report_pair(stdout, db, &dev, &prob, o.c.json) != MT_OK) {
        status = mt_fail("sweep", "cannot read the results: %s", mt_db_errmsg(db));
        goto done;
    }
    if (!o.c.no_export && !stop) {
        /* the family's file, through the export every family takes */
        char dir[4096], file[512];
        int named = mt_family_plain_file(f, &o.key, dev.name, dev.backend, file, sizeof file) == MT_OK;
        mt_sweep_out_dir(o.c.out, dir, sizeof dir);
        mt_export_opts eo = {dir, 1, 1, 0, dev.id, prob.id, 1};
        mt_export_stats es;
        if (mt_mkdir_p(dir) != 0 || mt_export(db, &eo, &es) != MT_OK || es.failed) {
            status = mt_fail("sweep", "cannot write the config file into '%s' (said above)", dir);
        } else if (es.written && named) {
            if (o.c.json) {
                char path[4700];
                snprintf(path, sizeof path, "%s/%s", dir, file);
                printf(",\"out\":");
                mt_json_str(stdout, path);
            } else {
                printf("config file: %s/%s\n", dir, file);
            }
        }
    }
    if (o.c.json) printf("}\n");
    if (unverified && !status)
        status = mt_fail("sweep", "%d point(s) ended with no verified config (failures above): nothing is exported for "
                                  "them; fix the cause and run the same command again",
                         unverified);
    if (pc.cancelled && !status) {
        fprintf(stderr, "moetune sweep: job %lld was cancelled; %d measurements are stored\n", (long long)o.c.job,
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
    mt_job_lock_drop(lock_db, o.c.job, job_lock);
    if (lock_fd >= 0) close(lock_fd);
    mt_db_close(db);
    opts_free(&o);
    return mt_cli_finish("sweep", status);
}
