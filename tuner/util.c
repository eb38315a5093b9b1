#include "util.h"
#include "buf.h"

#include <errno.h>
#include <sys/file.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "moetune/moetune.h"

int mt_cli_verbose;

int mt_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "moetune %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'moetune %s --help'\n", cmd);
    return MT_EXIT_USAGE;
}

int mt_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "moetune %s: error: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return MT_EXIT_FAIL;
}

void mt_cli_log(int level, const char *msg, void *user)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    (void)user;
    fprintf(stderr, "moetune: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

int mt_mkdir_p(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
        *p = '/';
        if (bad) return -1;
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int mt_data_dir(char *out, size_t n)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(out, n, "%s/moetune", xdg);
    else if (home && *home) snprintf(out, n, "%s/.local/share/moetune", home);
    else return MT_ENOTFOUND;
    /* "$XDG_DATA_HOME/" or "/" as HOME: one slash between the parts */
    for (char *p = strstr(out, "//"); p; p = strstr(p, "//")) memmove(p, p + 1, strlen(p));
    return mt_mkdir_p(out) == 0 ? MT_OK : MT_EIO;
}

int mt_cli_db_path(const char *path, char *out, size_t n)
{
    if (path) return snprintf(out, n, "%s", path) < (int)n ? MT_OK : MT_EINVAL;
    if (mt_data_dir(out, n - 16) != MT_OK) return MT_EIO;
    strcat(out, "/moetune.db");
    return MT_OK;
}

int mt_daemon_holder(const char *db_path)
{
    char lock[4200];
    snprintf(lock, sizeof lock, "%s.daemon", db_path);
    int fd = open(lock, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int pid = 0;
    /* the daemon holds an exclusive lock for its whole life: if a shared
     * one can be had, nobody serves this database */
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        char buf[32] = "";
        ssize_t k = read(fd, buf, sizeof buf - 1);
        pid = k > 0 ? atoi(buf) : -1;
        if (pid == 0) pid = -1;
    }
    close(fd);
    return pid;
}

static void job_lock_path(char *out, size_t n, const char *db_path, int64_t job)
{
    snprintf(out, n, "%s.job-%lld.lock", db_path, (long long)job);
}

int mt_job_lock_take(const char *db_path, int64_t job)
{
    char p[4200];
    job_lock_path(p, sizeof p, db_path, job);
    /* O_CLOEXEC: the workers the sweep starts must not keep it past its end */
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -2;
    }
    return fd;
}

int mt_job_lock_held(const char *db_path, int64_t job)
{
    char p[4200];
    job_lock_path(p, sizeof p, db_path, job);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

void mt_job_lock_drop(const char *db_path, int64_t job, int fd)
{
    char p[4200];
    if (fd < 0) return;
    job_lock_path(p, sizeof p, db_path, job);
    unlink(p);
    close(fd);
}

int mt_sweep_process(int64_t pid, int64_t job)
{
    char p[64], buf[8192], want[32];
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM)) return 0;
    snprintf(p, sizeof p, "/proc/%lld/cmdline", (long long)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return job <= 0; /* no /proc: trust a live pid, never for signalling a job's */
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0) return 0;
    buf[k] = 0;
    snprintf(want, sizeof want, "%lld", (long long)job);
    int sweep = 0, after_job = 0, is_job = job <= 0;
    for (char *a = buf; a < buf + k; a += strlen(a) + 1) {
        sweep |= !strcmp(a, "sweep");
        is_job |= after_job && !strcmp(a, want);
        after_job = !strcmp(a, "--job");
    }
    return sweep && is_job;
}

int mt_sweep_process_alive(int64_t pid) { return mt_sweep_process(pid, 0); }

int mt_m_lock_open(const char *db_path)
{
    char p[4200];
    snprintf(p, sizeof p, "%s.sweeps.lock", db_path);
    return open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
}

static off_t m_lock_byte(int64_t dev, int64_t prob, const int64_t point[2])
{
    uint64_t h = 1469598103934665603ull;
    /* a point of one field hashes as a batch size alone did */
    int64_t v[4] = {dev, prob, point[0], point[1]};
    for (int i = 0; i < (point[1] ? 4 : 3); i++) h = (h ^ (uint64_t)v[i]) * 1099511628211ull;
    return (off_t)(h % (1u << 30));
}

int mt_m_lock(int fd, int64_t dev, int64_t prob, const int64_t point[2], const char *what)
{
    if (fd < 0) return 0;
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = m_lock_byte(dev, prob, point), .l_len = 1};
    if (fcntl(fd, F_SETLK, &l) == 0) return 0;
    if (errno != EACCES && errno != EAGAIN) return 0; /* no locking here (a file system without it): go on */
    struct flock g = l;
    int other = fcntl(fd, F_GETLK, &g) == 0 && g.l_type != F_UNLCK ? (int)g.l_pid : 0;
    fprintf(stderr, "moetune sweep: another sweep (pid %d) is measuring %s on this database: waiting for it, so that "
                    "no variant is measured twice\n", other, what);
    /* the sweep's SIGINT and SIGTERM handlers end the wait (EINTR) */
    if (fcntl(fd, F_SETLKW, &l) != 0) return errno == EINTR ? -1 : 0;
    return 0;
}

void mt_m_unlock(int fd, int64_t dev, int64_t prob, const int64_t point[2])
{
    if (fd < 0) return;
    struct flock l = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = m_lock_byte(dev, prob, point), .l_len = 1};
    fcntl(fd, F_SETLK, &l);
}

void mt_sweep_out_dir(const char *out, char *dir, size_t n)
{
    if (out) snprintf(dir, n, "%s", out);
    else if (n > 16 && mt_data_dir(dir, n - 16) == MT_OK) strcat(dir, "/configs");
    else snprintf(dir, n, "moetune-configs");
    mt_path_trim(dir);
}

int mt_cli_open_db(const char *cmd, const char *path, mt_db **db)
{
    char def[4096], err[1024];
    if (!path) {
        if (mt_data_dir(def, sizeof def - 16) != MT_OK)
            return mt_fail(cmd, "cannot create the data folder (set XDG_DATA_HOME or HOME, or pass --db PATH)");
        strcat(def, "/moetune.db");
        path = def;
    }
    if (mt_db_open(db, path, err, sizeof err) != MT_OK) return mt_fail(cmd, "%s", err);
    return MT_EXIT_OK;
}

int mt_cli_finish(const char *cmd, int status)
{
    /* a full disk shows up here, at the latest: it must not report success */
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
        fprintf(stderr, "moetune %s: error: cannot write the output: %s\n", cmd, strerror(errno));
        return status ? status : MT_EXIT_FAIL;
    }
    return status;
}

int mt_parse_int_opt(const char *cmd, const char *opt, const char *val, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (!*val || *end || errno || v < min || v > max)
        return mt_usage_error(cmd, "%s '%s': expected an integer from %lld to %lld", opt, val, (long long)min,
                              (long long)max);
    *out = v;
    return MT_EXIT_OK;
}

/* where a quantised scheme came from, for messages: "model config 'PATH'"
 * or "preset 'NAME'" (a preset named for its fp8 checkpoint) */
static const char *quant_source(const mt_problem_opts *o, const mt_problem_spec *out, char *buf, size_t n)
{
    if (o->model_config) snprintf(buf, n, "model config '%s'", o->model_config);
    else snprintf(buf, n, "preset '%s'", out->model.name);
    return buf;
}

/* --block-shape N,K into *bn, *bk; an exit status */
static int block_shape_parse(const char *cmd, const char *text, int64_t *bn, int64_t *bk)
{
    char *end;
    *bn = strtoll(text, &end, 10);
    if (*end != ',' || *bn < 1 || (*bk = strtoll(end + 1, &end, 10)) < 1 || *end || *bn > 4096 || *bk > 4096)
        return mt_usage_error(cmd, "--block-shape '%s': expected N,K, e.g. 128,128", text);
    return MT_EXIT_OK;
}

/* Weight-only int4 and int8 (GPTQ, AWQ) run on the engines' Marlin MoE
 * kernel by default wherever it takes the layer's shape, and Marlin reads
 * no config file: the Triton kernel this tunes runs them only with
 * --quantization moe_wna16, or where Marlin does not take the layer. */
static void note_marlin(const char *cmd, const char *engine, const char *dtype)
{
    fprintf(stderr,
            "moetune %s: note: %s runs GPTQ and AWQ experts on its Marlin MoE kernel where the layer's shape allows, "
            "and Marlin reads no config file; the %s file is read by its Triton kernel, which runs them with "
            "--quantization moe_wna16 or where Marlin does not take the layer\n",
            cmd, engine, dtype);
}

/* A model config's group as the engines' moe_wna16 loads the layer: halved
 * until it divides the shard's N and K (each scale then repeated over the
 * halves); below 32 they refuse the layer. 0 where they would. */
static int64_t wna16_group(int64_t group, int64_t K, int64_t N)
{
    int64_t g = group;
    while (K % g || N % g)
        if ((g /= 2) < 32) return 0;
    return g;
}

/* The config's group where the engine would load it, said where it shrinks;
 * an exit status */
static int config_group(const char *cmd, const mt_problem_opts *o, const char *d, int64_t K, int64_t N, int64_t *group)
{
    int64_t g = wna16_group(*group, K, N);
    if (!g)
        return mt_usage_error(cmd, "the model's %s groups of %lld do not divide both K (%lld) and N (%lld) with this "
                                   "--tp/--ep, nor does any half of them down to 32: %s's moe_wna16 refuses such a "
                                   "layer; give --group-size to tune another group anyway",
                              d, (long long)*group, (long long)K, (long long)N, o->engine);
    if (g != *group)
        fprintf(stderr, "moetune %s: note: the model's groups of %lld do not divide N (%lld) or K (%lld): %s's "
                        "moe_wna16 loads them as groups of %lld, and so they are tuned\n",
                cmd, (long long)*group, (long long)N, (long long)K, o->engine, (long long)g);
    *group = g;
    return MT_EXIT_OK;
}

/* The dtype of an engine's kernel: --dtype in the engine's names, or the
 * quantised model config's scheme, said; with its block shape. */
static int engine_dtype(const char *cmd, const mt_problem_opts *o, const mt_model_quant *q, mt_problem_spec *out)
{
    static const char *const names[] = {"bf16", "fp16", "fp32", "fp8_w8a8", "int8_w8a8", "int8_w8a16", "int4_w4a16"};
    const char *d = o->dtype;
    int64_t bn = 0, bk = 0;
    int per_channel = o->per_channel;
    int64_t group = o->group_size;
    int zero_points = o->zero_points, group_of_config = 0;
    if (!d && q->dtype[0]) {
        d = q->dtype;
        bn = q->block_n;
        bk = q->block_k;
        per_channel = q->per_channel;
        zero_points = zero_points || q->zero_point;
        if (!group) group = q->group_size, group_of_config = group > 0;
        char src[4200];
        fprintf(stderr, "moetune %s: %s is quantised: %s; tuning %s's kernel in %s%s as %s runs it\n", cmd,
                quant_source(o, out, src, sizeof src), q->about, o->engine, d,
                bn > 0           ? " with its weight blocks"
                : per_channel    ? " with per-channel weights"
                : zero_points    ? " with zero points"
                                 : "",
                o->engine);
    }
    if (!d) d = "bf16";
    int known = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) known |= !strcmp(d, names[i]);
    if (!known)
        return mt_usage_error(cmd, "--dtype '%s': the engine worker measures bf16, fp16, fp32, fp8_w8a8 (per tensor, "
                                   "per channel, or with --block-shape), int8_w8a8, int8_w8a16 and int4_w4a16; %s is "
                                   "not measured yet",
                              d, d);
    if (o->group_size && strcmp(d, "int4_w4a16") && strcmp(d, "int8_w8a16"))
        return mt_usage_error(cmd, "--group-size is taken with --dtype int4_w4a16 and int8_w8a16 only (got %s)", d);
    if (zero_points && strcmp(d, "int4_w4a16"))
        return mt_usage_error(cmd, "--zero-points is taken with --dtype int4_w4a16 only (got %s)", d);
    int int4 = !strcmp(d, "int4_w4a16");
    if (int4 || (!strcmp(d, "int8_w8a16") && group > 0)) {
        /* the weight-only groups, vLLM's block_shape [0, group]: one scale
         * per group of K, on the engines' gptq_awq kernel (int8 without a
         * group: one scale per channel, below) */
        if (group < 0)
            return mt_usage_error(cmd, "int4_w4a16 with one scale per channel (group size %lld) is not measured yet; "
                                       "--group-size takes a group",
                                  (long long)group);
        if (!group) group = 128;
        if (group_of_config && config_group(cmd, o, d, out->model.hidden, out->N, &group)) return MT_EXIT_USAGE;
        /* (int4 packs two values a byte along K) */
        if (group < 2 || group > 4096 || (int4 && group % 2))
            return mt_usage_error(cmd, "--group-size %lld: expected %s group of 2 to 4096", (long long)group,
                                  int4 ? "an even" : "a");
        if (out->model.hidden % group || out->N % group)
            return mt_usage_error(cmd, "%s in groups of %lld needs K (%lld) and N (%lld) to be multiples of it", d,
                                  (long long)group, (long long)out->model.hidden, (long long)out->N);
        /* int4 with zero points is its own problem: the engines' names do
         * not tell it from the symmetric scheme, but their kernel loads
         * w1_zp and w2_zp on that path, so it is measured on its own */
        snprintf(out->qdtype, sizeof out->qdtype, "%.16s%s", d, zero_points ? "_zp" : "");
        out->block_n = 0;
        out->block_k = group;
        note_marlin(cmd, o->engine, d);
        return MT_EXIT_OK;
    }
    if (o->block_shape && block_shape_parse(cmd, o->block_shape, &bn, &bk)) return MT_EXIT_USAGE;
    if (bn > 0 && strcmp(d, "fp8_w8a8"))
        return mt_usage_error(cmd, "--block-shape is taken with --dtype fp8_w8a8 only (got %s)", d);
    if (per_channel && (strcmp(d, "fp8_w8a8") || bn > 0))
        return mt_usage_error(cmd, "--per-channel is taken with --dtype fp8_w8a8 and no --block-shape (got %s%s)", d,
                              bn > 0 ? " in blocks" : "");
    /* per-channel fp8 is its own problem: the engines' names say fp8_w8a8
     * (vLLM) or add per_channel_quant=True (SGLang) */
    snprintf(out->qdtype, sizeof out->qdtype, "%.16s%s", d, per_channel ? "_per_channel" : "");
    out->block_n = bn;
    out->block_k = bk;
    if (!strcmp(d, "fp16")) out->dtype = MT_DTYPE_FP16;
    else if (!strcmp(d, "fp32")) out->dtype = MT_DTYPE_FP32;
    if (!strcmp(d, "int8_w8a16")) note_marlin(cmd, o->engine, d);
    return MT_EXIT_OK;
}

/* The dtype of moetune's own kernels: bf16, fp16, fp32, or fp8_w8a8 per
 * tensor, per channel or in blocks; a quantised model config's fp8 scheme
 * is taken and said; any other quantised checkpoint is refused without
 * --dtype, since its experts run in a kernel moetune's files are not for. */
static int own_dtype(const char *cmd, const mt_problem_opts *o, const mt_model_quant *q, mt_problem_spec *out)
{
    const char *d = o->dtype;
    int64_t bn = 0, bk = 0;
    int per_channel = o->per_channel;
    if (o->group_size) return mt_usage_error(cmd, "--group-size is taken with --engine and int4_w4a16");
    if (o->zero_points) return mt_usage_error(cmd, "--zero-points is taken with --engine and int4_w4a16");
    if (!d && !strcmp(q->dtype, "fp8_w8a8")) {
        d = q->dtype;
        bn = q->block_n;
        bk = q->block_k;
        per_channel = q->per_channel;
        char src[4200];
        fprintf(stderr, "moetune %s: %s is quantised: %s; tuning moetune's fp8_w8a8 kernel %s\n", cmd,
                quant_source(o, out, src, sizeof src), q->about, bn > 0 ? "with its weight blocks" : per_channel ? "with per-channel weights and per-token activations" : "with per-tensor scales");
    }
    if (d && mt_dtype_parse(d, &out->dtype) != MT_OK)
        return mt_usage_error(cmd, "unknown --dtype '%s': moetune's kernels take bf16, fp16, fp32 and fp8_w8a8 (the "
                                   "engines' kernels, with --engine, also int8 and int4)",
                              d);
    int fp8 = out->dtype == MT_DTYPE_FP8_W8A8;
    if (o->block_shape && block_shape_parse(cmd, o->block_shape, &bn, &bk)) return MT_EXIT_USAGE;
    if (bn > 0 && !fp8)
        return mt_usage_error(cmd, "--block-shape is taken with --dtype fp8_w8a8 only (got %s)", mt_dtype_name(out->dtype));
    if (o->per_channel && (!fp8 || bn > 0))
        return mt_usage_error(cmd, "--per-channel is taken with --dtype fp8_w8a8 and no --block-shape");
    /* a quantised checkpoint is never tuned as another dtype without a
     * word: its experts run in another kernel, and a file measured on
     * another would be named for a kernel the engine does not run for it */
    if (q->dtype[0] && !(fp8 && !strcmp(q->dtype, "fp8_w8a8"))) {
        char what[96], src[4200];
        quant_source(o, out, src, sizeof src);
        snprintf(what, sizeof what, "%s", q->dtype);
        if (q->block_n > 0)
            snprintf(what + strlen(what), sizeof what - strlen(what), ", block_shape=[%lld,%lld]", (long long)q->block_n,
                     (long long)q->block_k);
        if (!o->dtype)
            return mt_usage_error(cmd, "%s is quantised: %s (%s). moetune's kernels take bf16, fp16, fp32 "
                                       "and fp8_w8a8, and the engine runs this model's experts in its %s kernel, which "
                                       "does not read configs measured on them: pass --engine vllm or --engine "
                                       "sglang to tune that engine's kernel in %s, or --dtype bf16 to tune the "
                                       "unquantised kernel for this shape anyway",
                                  src, what, q->about, q->dtype, q->dtype);
        fprintf(stderr, "moetune %s: %s is quantised: %s (%s); tuning --dtype %s as asked (the engine's "
                        "%s kernel does not read these configs)\n",
                cmd, src, what, q->about, mt_dtype_name(out->dtype), q->dtype);
    }
    snprintf(out->qdtype, sizeof out->qdtype, "%s%s", mt_dtype_name(out->dtype), fp8 && per_channel ? "_per_channel" : "");
    out->block_n = bn;
    out->block_k = bk;
    return MT_EXIT_OK;
}

int mt_problem_opts_resolve(const char *cmd, const mt_problem_opts *o, const char *default_model,
                            const char *default_batch_sizes, mt_problem_spec *out)
{
    char err[1024];
    int explicit_shape = o->experts || o->intermediate || o->hidden || o->topk;
    int sources = (o->model != NULL) + (o->model_config != NULL) + (explicit_shape != 0);
    memset(out, 0, sizeof *out);
    if (sources > 1)
        return mt_usage_error(cmd, "give one of --model, --model-config, or --experts/--intermediate/--hidden/--topk");
    if (o->model || sources == 0) {
        const char *name = o->model ? o->model : default_model;
        const mt_preset *p = mt_preset_find(name);
        if (!p) {
            char list[1024] = "";
            for (int i = 0; i < mt_n_presets; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", mt_presets[i].name);
            return mt_usage_error(cmd, "unknown model '%s'; presets: %s (or --model-config PATH)", name, list);
        }
        snprintf(out->model.name, sizeof out->model.name, "%s", p->name);
        /* said, never silent: a preset is a shape, and the model's own
         * checkpoint may run its experts in a quantised kernel; a preset
         * named for its fp8 checkpoint is that checkpoint's scheme */
        if (p->fp8_block > 0) {
            mt_model_quant *pq = &out->model.quant;
            snprintf(pq->dtype, sizeof pq->dtype, "fp8_w8a8");
            pq->block_n = pq->block_k = p->fp8_block;
            snprintf(pq->about, sizeof pq->about, "fp8 e4m3 weights in %lldx%lld blocks, activations per token in 1x%lld groups",
                     (long long)p->fp8_block, (long long)p->fp8_block, (long long)p->fp8_block);
        } else {
            /* the preset of the same model in its published scheme, if any */
            char fp8name[64];
            snprintf(fp8name, sizeof fp8name, "%s-fp8", p->name);
            const mt_preset *q = p->published ? mt_preset_find(fp8name) : NULL;
            char alt[96] = "";
            if (q) snprintf(alt, sizeof alt, "--model %s, or ", q->name);
            if (p->published && !o->dtype && o->engine)
                fprintf(stderr, "moetune %s: note: %s's published checkpoint is %s; this tunes %s's kernel in bf16 for its "
                                "shape (%s--dtype and --block-shape, tune the published scheme)\n",
                        cmd, p->name, p->published, o->engine, alt);
            else if (p->published && !o->dtype)
                fprintf(stderr, "moetune %s: note: %s's published checkpoint is %s; this tunes moetune's %s kernel for its "
                                "shape (%s--dtype, with --block-shape or --per-channel for fp8_w8a8, tunes another)\n",
                        cmd, p->name, p->published, "bf16", alt);
        }
        out->model.experts = p->experts;
        out->model.hidden = p->hidden;
        out->model.intermediate = p->intermediate;
        out->model.topk = p->topk;
        out->model.renormalize = p->renormalize;
        out->model.sglang_fuses_shared = mt_preset_sglang_fuses_shared(p);
    } else if (o->model_config) {
        int rc = mt_model_config_read(o->model_config, &out->model, err, sizeof err);
        if (rc != MT_OK) {
            fprintf(stderr, "moetune %s: %s\n", cmd, err);
            return rc == MT_EPARSE || rc == MT_ENOTFOUND || rc == MT_EINVAL ? MT_EXIT_USAGE : MT_EXIT_FAIL;
        }
    } else {
        if (!o->experts || !o->intermediate || !o->hidden || !o->topk)
            return mt_usage_error(cmd, "an explicit shape needs all of --experts, --intermediate, --hidden and --topk");
        snprintf(out->model.name, sizeof out->model.name, "explicit");
        out->model.experts = o->experts;
        out->model.intermediate = o->intermediate;
        out->model.hidden = o->hidden;
        out->model.topk = o->topk;
        out->model.renormalize = 1;
    }
    if (mt_shape_shard(&out->model, o->tp ? o->tp : 1, o->ep ? o->ep : 1, &out->E, &out->N, err, sizeof err) != MT_OK)
        return mt_usage_error(cmd, "inconsistent shape: %s", err);
    if (o->no_shared_fusion && !(o->engine && !strcmp(o->engine, "sglang")))
        return mt_usage_error(cmd, "--disable-shared-experts-fusion is taken with --engine sglang");
    /* SGLang runs the shared expert as one more routed expert, so its
     * kernel and its file see E + 1 (SGLang's own tuner does the same) */
    if (o->engine && !strcmp(o->engine, "sglang") && out->model.sglang_fuses_shared && !o->no_shared_fusion) {
        out->E += 1;
        fprintf(stderr, "moetune %s: SGLang fuses %s's shared expert into its fused-MoE call: tuning E=%lld "
                        "(--disable-shared-experts-fusion, as passed to SGLang, for E=%lld)\n",
                cmd, out->model.name, (long long)out->E, (long long)out->E - 1);
    }
    out->dtype = MT_DTYPE_BF16;
    const mt_model_quant *q = &out->model.quant;
    if (o->engine) {
        int rc = engine_dtype(cmd, o, q, out);
        if (rc) return rc;
    } else {
        int rc = own_dtype(cmd, o, q, out);
        if (rc) {
            free(out->ms);
            out->ms = NULL;
            return rc;
        }
    }
    const char *bs = o->batch_sizes ? o->batch_sizes : default_batch_sizes;
    if (bs) {
        if (mt_batch_sizes_parse(bs, &out->ms, &out->n_ms, err, sizeof err) != MT_OK)
            return mt_usage_error(cmd, "%s", err);
    } else {
        out->ms = malloc(sizeof mt_default_batch_sizes);
        if (!out->ms) return mt_fail(cmd, "out of memory");
        memcpy(out->ms, mt_default_batch_sizes, sizeof mt_default_batch_sizes);
        out->n_ms = 18;
    }
    return MT_EXIT_OK;
}

double mt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void mt_progress_init_named(mt_progress *p, int quiet, const char *who)
{
    p->tty = !quiet && isatty(2);
    p->log = !quiet && !p->tty;
    p->start = mt_now();
    p->last = p->start;
    const char *iv = getenv("MOETUNE_PROGRESS_SECONDS");
    p->interval = iv && atof(iv) > 0 ? atof(iv) : 30;
    p->next_tenth = 1;
    p->who = who;
}

void mt_progress_init(mt_progress *p, int quiet) { mt_progress_init_named(p, quiet, "sweep"); }

void mt_progress_update(mt_progress *p, int done, int total, const char *best)
{
    double t = mt_now();
    double el = t - p->start;
    double left = done > 0 ? el / done * (total - done) : 0;
    if (p->tty) {
        if (t - p->last < 0.2 && done < total) return;
        p->last = t;
        fprintf(stderr, "\r\033[K[%d/%d] %s  elapsed %.0fs, about %.0fs left", done, total, best ? best : "", el, left);
        fflush(stderr);
        return;
    }
    if (!p->log) return;
    /* a log: a whole line now and then, never a redraw */
    int tenth = total > 0 && done * 10 >= p->next_tenth * total;
    if (!tenth && t - p->last < p->interval) return;
    while (total > 0 && done * 10 >= p->next_tenth * total) p->next_tenth++;
    p->last = t;
    fprintf(stderr, "moetune %s: %d of %d (%.0f %%)%s%s, %.0f s elapsed, about %.0f s left\n", p->who, done, total,
            total > 0 ? 100.0 * done / total : 0.0, best && *best ? ", " : "", best ? best : "", el, left);
    fflush(stderr);
}

void mt_progress_end(mt_progress *p)
{
    if (p->tty) fprintf(stderr, "\r\033[K");
}

void mt_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *q = (const unsigned char *)(s ? s : ""); *q; q++) {
        if (*q == '"' || *q == '\\') fprintf(f, "\\%c", *q);
        else if (*q < 0x20) fprintf(f, "\\u%04x", *q);
        else fputc(*q, f);
    }
    fputc('"', f);
}

int mt_shard_parse(const char *s, int *i, int *n)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != '/') return MT_EINVAL;
    const char *t = end + 1;
    long b = strtol(t, &end, 10);
    if (end == t || *end || b < 1 || b > 65536 || a < 0 || a >= b) return MT_EINVAL;
    *i = (int)a;
    *n = (int)b;
    return MT_OK;
}

int mt_shard_keep(int64_t E, int64_t N, int64_t K, int64_t topk, int k, int i, int n)
{
    /* FNV-1a over the shape: the same on every node */
    uint64_t h = 1469598103934665603ull;
    int64_t v[4] = {E, N, K, topk};
    for (int j = 0; j < 4; j++)
        for (int b = 0; b < 8; b++) h = (h ^ (uint64_t)((v[j] >> (8 * b)) & 0xff)) * 1099511628211ull;
    return (int)(((uint64_t)k + h % (uint64_t)n) % (uint64_t)n) == i;
}

int mt_parse_budget(const char *cmd, const char *arg, int64_t *n, double *pct)
{
    size_t len = strlen(arg);
    *n = 0;
    *pct = 0;
    if (len > 1 && arg[len - 1] == '%') {
        char *end;
        *pct = strtod(arg, &end);
        if (end != arg + len - 1 || !(*pct > 0 && *pct <= 100))
            return mt_usage_error(cmd, "--budget '%s': a percentage must be in (0, 100], e.g. 5%%", arg);
        return MT_EXIT_OK;
    }
    return mt_parse_int_opt(cmd, "--budget", arg, 1, 1 << 30, n);
}

int mt_parse_duration(const char *cmd, const char *opt, const char *arg, double *seconds)
{
    char *end;
    double v = strtod(arg, &end);
    double mul = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600 : -1;
    if (end == arg || mul < 0 || !(v > 0) || v * mul > 1e9)
        return mt_usage_error(cmd, "%s '%s': expected a duration such as 90s, 10m or 1h", opt, arg);
    *seconds = v * mul;
    return MT_EXIT_OK;
}

int mt_parse_abort_factor(const char *cmd, const char *arg, double *factor)
{
    char *end;
    double f = strtod(arg, &end);
    if (end == arg || *end || !(f == 0 || (f >= 1.05 && f < 1e9)))
        return mt_usage_error(cmd, "--abort-factor '%s': expected 0 (off) or a factor of at least 1.05", arg);
    *factor = f;
    return MT_EXIT_OK;
}
