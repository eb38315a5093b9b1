#include "precompile.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attn_launch.h"
#include "cuda_rt.h"
#include "hip_rt.h"
#include "moe_launch.h"
#include "moetune/moetune.h"
#include "space.h"
#include "util.h"

int mt_arch_smem_limit(const char *arch)
{
    int cc = 0;
    /* AMD: 64 KiB of LDS per workgroup on CDNA 1 to 3, 160 KiB on CDNA 4 */
    if (arch && !strncmp(arch, "gfx9", 4)) return !strcmp(arch, "gfx950") ? 160 * 1024 : 64 * 1024;
    if (!arch || sscanf(arch, "sm_%d", &cc) != 1) return 0;
    switch (cc) {
    case 80: case 87: return 163 * 1024;
    case 86: case 89: case 120: case 121: return 99 * 1024;
    case 90: case 100: case 103: return 227 * 1024;
    default: return 0;
    }
}

void mt_kernel_cache_dir(const char *backend, char *out, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char base[1024];
    if (xdg && *xdg) snprintf(base, sizeof base, "%s/moetune", xdg);
    else if (home && *home) snprintf(base, sizeof base, "%s/.cache/moetune", home);
    else {
        out[0] = 0;
        return;
    }
    snprintf(out, n, "%s/%s", base, backend);
    if (mt_mkdir_p(out) != 0) out[0] = 0; /* no cache: only slower */
}

/* one binary: a fused-MoE tile (cfg, fp16 or fp8) or an attention variant
 * (attn) */
typedef struct unit {
    mt_cuda_moe_cfg cfg;
    int fp16, fp8, is_attn;
    mt_cuda_attn_cfg attn;
} unit;

/* The points of sp under ctx, and room for two units (bf16, fp16) per
 * point, zeroed (a unit is a MoE one unless is_attn is set) */
static int enumerate(mt_space *sp, const mt_space_ctx *ctx, mt_config **pts, unit **u)
{
    int np = mt_space_enumerate(sp, ctx, pts);
    if (np < 0) return np;
    *u = calloc((size_t)(np ? np : 1) * 2, sizeof **u);
    if (!*u) {
        free(*pts);
        return MT_ENOMEM;
    }
    return np;
}

/* The distinct binaries: configs that differ only in launch arguments
 * (GROUP_SIZE_M, NUM_SM) share one. M is taken large, so every tile height
 * the space allows at some batch size is included. mask: bit 0 bf16, 1
 * fp16, 2 fp8 with per-tensor or per-channel scales, 3 fp8 in 128x128
 * blocks (CUDA only), each enumerated under its own rules. */
static int collect(int hip, int smem_limit, int mask, unit **out)
{
    mt_space sp;
    /* on AMD, waves_per_eu changes the binary too */
    if (hip) mt_space_hip_moe(&sp, 1);
    else mt_space_cuda_moe(&sp, 1);
    unit *u = NULL;
    int n = 0;
    for (int f = 0; f < 4; f++) {
        if (!(mask & (1 << f)) || (f >= 2 && hip)) continue;
        mt_space_ctx ctx = {1, 1 << 16, 1 << 16, 1, 1 << 20, 1, smem_limit, 0, f == 3 ? 128 : 0, f == 3 ? 128 : 0,
                            f >= 2 ? 1 : 0, 0, 0};
        mt_config *pts;
        int np = mt_space_enumerate(&sp, &ctx, &pts), first = n;
        if (np < 0) {
            free(u);
            return np;
        }
        unit *g = realloc(u, (size_t)(n + np + 1) * sizeof *u);
        if (!g) {
            free(pts);
            free(u);
            return MT_ENOMEM;
        }
        u = g;
        for (int i = 0; i < np; i++) {
            int dup = 0;
            mt_cuda_moe_cfg lc;
            mt_cuda_moe_cfg_from_space(pts[i].v, hip, &lc);
            for (int j = first; j < n && !dup; j++) dup = mt_cuda_moe_same_binary(&u[j].cfg, &lc);
            if (dup) continue;
            memset(&u[n], 0, sizeof u[n]);
            u[n].cfg = lc;
            u[n].fp16 = f == 1;
            u[n++].fp8 = f >= 2 ? f - 1 : 0;
        }
        free(pts);
    }
    *out = u;
    return n;
}

static int is_hip(const char *arch) { return arch && !strncmp(arch, "gfx", 3); }

/* The attention space's variants for one shape, at the longest context a
 * sweep will time: a shorter context only prunes (partitions past it, rings
 * deeper than its chunks), so these cover every context up to it. */
static int collect_attn(int smem_limit, int head_dim, int page_size, int group, int max_ctx, int fp16_mask, unit **out)
{
    mt_space sp;
    mt_space_cuda_attn(&sp);
    mt_space_ctx ctx = {group, 1, head_dim, page_size, 1, 1, smem_limit, max_ctx, 0, 0, 0, 0, 0};
    mt_config *pts;
    unit *u;
    int np = enumerate(&sp, &ctx, &pts, &u), n = 0;
    if (np < 0) return np;
    for (int f = 0; f < 2; f++) {
        if (!(fp16_mask & (1 << f))) continue;
        for (int i = 0; i < np; i++, n++) {
            u[n].is_attn = 1;
            u[n].fp16 = f;
            u[n].attn = (mt_cuda_attn_cfg){head_dim, page_size, group, f, pts[i].v[0], pts[i].v[1], pts[i].v[2], pts[i].v[3],
                                            pts[i].v[4]};
        }
    }
    free(pts);
    *out = u;
    return n;
}

/* a unit for an error message */
static void describe(const unit *u, char *out, size_t n)
{
    if (u->is_attn)
        snprintf(out, n, "attention D=%d page %d group %d partition %d warps %d mma %d stage %d query_split %d%s",
                 u->attn.head_dim, u->attn.page_size, u->attn.group, u->attn.partition, u->attn.warps, u->attn.mma,
                 u->attn.stage, u->attn.qsplit, u->fp16 ? " fp16" : "");
    else
        snprintf(out, n, "%d/%d/%d/%d/%d%s", u->cfg.block_m, u->cfg.block_n, u->cfg.block_k, u->cfg.warps, u->cfg.stages,
                 u->fp16 ? " fp16" : u->fp8 == 1 ? " fp8" : u->fp8 == 2 ? " fp8 blocks" : "");
}

/* Compile one binary into the cache; on failure why holds the compiler's
 * first log line (what it refused) or the error. */
static int compile_unit(const unit *u, const char *arch, const char *dir, int *hit, char *why, size_t n)
{
    char d[MT_CUDA_MOE_NOPTS][48], err[256], *log = NULL;
    const char *opts[MT_CUDA_MOE_NOPTS];
    *hit = 0;
    int rc;
    if (u->is_attn) {
        /* NVIDIA targets only (mt_precompile_cuda_attn refuses AMD ones) */
        char ad[MT_CUDA_ATTN_NOPTS][48];
        const char *aopts[MT_CUDA_ATTN_NOPTS];
        mt_cuda_attn_options(&u->attn, ad, aopts);
        rc = mt_nvrtc_cache_fill(mt_cuda_attn_source(), arch, aopts, MT_CUDA_ATTN_NOPTS, dir, hit, &log, err, sizeof err);
    } else if ((rc = mt_cuda_moe_options(&u->cfg, u->fp16, u->fp8, arch, d, opts)) == MT_OK && is_hip(arch))
        rc = mt_hiprtc_cache_fill(mt_hip_moe_source(), arch, opts, MT_CUDA_MOE_NOPTS, dir, hit, &log, err, sizeof err);
    else if (rc == MT_OK)
        rc = mt_nvrtc_cache_fill(mt_cuda_moe_source(), arch, opts, MT_CUDA_MOE_NOPTS, dir, hit, &log, err, sizeof err);
    else
        snprintf(err, sizeof err, "no warp layout");
    if (rc != MT_OK) {
        const char *w = log && *log ? log : err;
        int wl = (int)strcspn(w, "\n");
        snprintf(why, n, "%.*s", wl > 300 ? 300 : wl, w);
    }
    free(log);
    return rc;
}

/* A child: compile units k, k+jobs, ... and report each on the pipe as one
 * line "index code message" ('c' compiled, 'h' cached, 'f' failed), short
 * enough to be written atomically. */
static void child(const unit *u, int n, int k, int jobs, const char *arch, const char *dir, int fd)
{
    for (int i = k; i < n; i += jobs) {
        char why[320], line[512];
        int hit, len;
        if (compile_unit(&u[i], arch, dir, &hit, why, sizeof why) == MT_OK)
            len = snprintf(line, sizeof line, "%d %c\n", i, hit ? 'h' : 'c');
        else
            len = snprintf(line, sizeof line, "%d f %s\n", i, why);
        if (len > 0 && write(fd, line, (size_t)(len < (int)sizeof line ? len : (int)sizeof line - 1)) < 0) _exit(3);
    }
    _exit(0);
}

/* One unit compiled in a child process: 1 when it compiled (counted in st),
 * 0 with why when it failed or the compiler crashed. */
static int isolated_unit(const unit *u, const char *arch, const char *dir, mt_precompile_stats *st, const char *tag,
                         char *why, size_t n)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(why, n, "pipe: %s", strerror(errno));
        return 0;
    }
    pid_t p = fork();
    if (p == 0) {
        close(fds[0]);
        char w[320], line[400];
        int hit, len;
        if (compile_unit(u, arch, dir, &hit, w, sizeof w) == MT_OK) len = snprintf(line, sizeof line, "%c\n", hit ? 'h' : 'c');
        else len = snprintf(line, sizeof line, "f%s\n", w);
        if (len > 0 && write(fds[1], line, (size_t)(len < (int)sizeof line ? len : (int)sizeof line - 1)) < 0) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    if (p < 0) {
        close(fds[0]);
        snprintf(why, n, "fork: %s", strerror(errno));
        return 0;
    }
    char line[400] = "";
    ssize_t k, got = 0;
    while ((k = read(fds[0], line + got, sizeof line - 1 - (size_t)got)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0) got += k;
    close(fds[0]);
    line[got > 0 ? got : 0] = 0;
    int wst = 0;
    while (waitpid(p, &wst, 0) < 0 && errno == EINTR) {}
    char what[160];
    describe(u, what, sizeof what);
    if (WIFSIGNALED(wst)) {
        snprintf(why, n, "%s: the compiler (%s) crashed (signal %d, %s) compiling for %s; this toolchain cannot "
                         "build this target: use another ROCm or CUDA version, or another --arch",
                 what, tag, WTERMSIG(wst), strsignal(WTERMSIG(wst)), arch);
        return 0;
    }
    if (line[0] == 'c' || line[0] == 'h') {
        line[0] == 'h' ? st->cached++ : st->compiled++;
        return 1;
    }
    if (line[0] != 'f') {
        /* no word at all: the process ended inside the compiler (under a
         * sanitizer a crash is an exit status, not a signal) */
        snprintf(why, n, "%s: the compiler (%s) crashed (exit status %d, no result) compiling for %s; this toolchain "
                         "cannot build this target: use another ROCm or CUDA version, or another --arch",
                 what, tag, WIFEXITED(wst) ? WEXITSTATUS(wst) : -1, arch);
        return 0;
    }
    line[strcspn(line, "\n")] = 0;
    snprintf(why, n, "%.150s: %.200s", what, line + 1);
    return 0;
}

/* the compiler there and the cache folder, before anything is collected */
static int prepare(const char *arch, const char *cache_dir, char *err, size_t n)
{
    int rc = is_hip(arch) ? mt_hiprtc_available(err, n) : mt_nvrtc_available(err, n);
    if (rc != MT_OK) return rc;
    if (!cache_dir || !*cache_dir) {
        snprintf(err, n, "no kernel cache folder to compile into");
        return MT_EINVAL;
    }
    if (mt_mkdir_p(cache_dir) != 0) {
        snprintf(err, n, "cannot create the kernel cache %s: %s", cache_dir, strerror(errno));
        return MT_EIO;
    }
    return MT_OK;
}

static int run_units(unit *u, int total, int jobs, const char *arch, const char *cache_dir,
                     void (*progress)(int, int, void *), void *user, mt_precompile_stats *st, double t0, char *err,
                     size_t n);

int mt_precompile_cuda(const char *arch, int smem_limit, int fp16_mask, int jobs, int limit, const char *cache_dir,
                       void (*progress)(int, int, void *), void *user, mt_precompile_stats *st, char *err, size_t n)
{
    memset(st, 0, sizeof *st);
    double t0 = mt_now();
    if (!is_hip(arch) && !mt_cuda_fp8_arch(arch, NULL, 0)) fp16_mask &= 3; /* no fp8 tensor cores there */
    int rc = prepare(arch, cache_dir, err, n);
    if (rc != MT_OK) return rc;
    unit *u = NULL;
    int total = collect(is_hip(arch), smem_limit, fp16_mask, &u);
    if (total < 0) {
        snprintf(err, n, "out of memory");
        return total;
    }
    if (limit > 0 && limit < total) total = limit;
    return run_units(u, total, jobs, arch, cache_dir, progress, user, st, t0, err, n);
}

int mt_precompile_cuda_attn(const char *arch, int smem_limit, int head_dim, int page_size, int group, int max_ctx,
                            int fp16_mask, int jobs, const char *cache_dir, void (*progress)(int, int, void *),
                            void *user, mt_precompile_stats *st, char *err, size_t n)
{
    memset(st, 0, sizeof *st);
    double t0 = mt_now();
    if (is_hip(arch)) {
        snprintf(err, n, "%s: the attention kernels compile ahead for NVIDIA targets only; an AMD sweep compiles them as "
                         "it measures", arch);
        return MT_EUNSUPPORTED;
    }
    if (head_dim < 32 || head_dim > 256 || head_dim % 32 || page_size < 1 || group < 1 || group > 64 || max_ctx < 1) {
        snprintf(err, n, "head_dim %d (32..256 by 32), page size %d, group %d (1..64), context %d: not an attention shape "
                         "the kernel takes", head_dim, page_size, group, max_ctx);
        return MT_EINVAL;
    }
    int rc = prepare(arch, cache_dir, err, n);
    if (rc != MT_OK) return rc;
    unit *u = NULL;
    int total = collect_attn(smem_limit, head_dim, page_size, group, max_ctx, fp16_mask, &u);
    if (total < 0) {
        snprintf(err, n, "out of memory");
        return total;
    }
    return run_units(u, total, jobs, arch, cache_dir, progress, user, st, t0, err, n);
}

/* every unit compiled by `jobs` forked processes, then by this one where
 * a child did not report; u is freed */
static int run_units(unit *u, int total, int jobs, const char *arch, const char *cache_dir,
                     void (*progress)(int, int, void *), void *user, mt_precompile_stats *st, double t0, char *err,
                     size_t n)
{
    st->binaries = total;
    if (jobs < 1) jobs = 1;
    if (jobs > total) jobs = total > 0 ? total : 1;
    int fds[2];
    if (pipe(fds) != 0) {
        free(u);
        snprintf(err, n, "pipe: %s", strerror(errno));
        return MT_EIO;
    }
    pid_t *kids = calloc((size_t)jobs, sizeof *kids);
    char *seen = calloc((size_t)(total ? total : 1), 1);
    if (!kids || !seen) {
        free(u), free(kids), free(seen);
        close(fds[0]), close(fds[1]);
        return MT_ENOMEM;
    }
    int started = 0;
    for (int k = 0; k < jobs && total > 0; k++) {
        pid_t p = fork();
        if (p == 0) {
            close(fds[0]);
            child(u, total, k, jobs, arch, cache_dir, fds[1]);
        }
        if (p < 0) break; /* fewer processes: the parent's loop below covers the rest */
        kids[started++] = p;
    }
    close(fds[1]);
    /* read reports until every child has closed its end */
    FILE *in = fdopen(fds[0], "r");
    char line[600];
    int done = 0;
    while (in && fgets(line, sizeof line, in)) {
        int idx;
        char code;
        int off = 0;
        if (sscanf(line, "%d %c %n", &idx, &code, &off) < 2 || idx < 0 || idx >= total || seen[idx]) continue;
        seen[idx] = 1;
        done++;
        if (code == 'c') st->compiled++;
        else if (code == 'h') st->cached++;
        else {
            st->failed++;
            if (!st->first_error[0]) {
                char what[160];
                line[strcspn(line, "\n")] = 0;
                describe(&u[idx], what, sizeof what);
                snprintf(st->first_error, sizeof st->first_error, "%s: %.80s", what, line + off);
            }
        }
        if (progress) progress(done, total, user);
    }
    if (in) fclose(in);
    else close(fds[0]);
    for (int k = 0; k < started; k++) waitpid(kids[k], NULL, 0);
    /* a child that died (or was never started) left its units: each is
     * compiled again in a process of its own, so that a compiler that
     * crashes on it (Debian's hipRTC on gfx940 and gfx942 aborts inside
     * comgr) fails that unit with its signal and the toolchain's name, and
     * never takes this process down */
    char tag[64] = "";
    if (is_hip(arch)) {
        char e2[128];
        if (mt_hiprtc_tag(tag, sizeof tag, e2, sizeof e2) != MT_OK) snprintf(tag, sizeof tag, "hipRTC");
    } else {
        snprintf(tag, sizeof tag, "NVRTC");
    }
    for (int i = 0; i < total; i++) {
        if (seen[i]) continue;
        char why[400] = "";
        int ok = isolated_unit(&u[i], arch, cache_dir, st, tag, why, sizeof why);
        if (!ok) {
            st->failed++;
            if (!st->first_error[0]) snprintf(st->first_error, sizeof st->first_error, "%.200s", why);
        }
        if (progress) progress(++done, total, user);
    }
    free(u);
    free(kids);
    free(seen);
    st->seconds = mt_now() - t0;
    return MT_OK;
}
