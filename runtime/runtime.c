/*
 * The runtime: find the config file for a problem on this device, parse it
 * once, and answer lookups from memory. Sources, first hit wins:
 * the config dir, the configs this machine's sweeps wrote, the pulled bucket
 * cache, the bundled configs; then the user's aliases, then another device
 * of the same architecture, then the default heuristic. Every fallback is
 * logged once; nothing aborts.
 *
 * Threads: lookups may run on any number of threads at once. Files are read
 * and parsed with no lock held (a slow or hostile file stalls only the
 * thread that asked for it); the tables they become are immutable once
 * published under `mu`, and live until mt_runtime_close.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn.h"
#include "attn_decode.h"
#include "cuda_rt.h"
#include "family.h"
#include "family_backend.h"
#include "attn_launch.h"
#include "moe_cpu.h"
#include "moe_launch.h"
#include "moetune/moetune.h"
#include "rt_internal.h"

#ifndef MT_BUNDLED_DIR
#define MT_BUNDLED_DIR "/usr/local/share/moetune/configs"
#endif
/* the source tree's configs/, for a library used from its build tree */
#ifndef MT_SOURCE_CONFIGS_DIR
#define MT_SOURCE_CONFIGS_DIR ""
#endif

/* Files larger than this are not configs: refuse them before reading. */
#define MAX_FILE_BYTES (16u << 20)

/* nor do more configs than this fit in one */
#define MAX_ENTRIES 65536

/* One family's configs for one key, as the first source that had them
 * gave them; immutable once published. */
typedef struct table {
    struct table *next;
    /* the key */
    const mt_family *fam;
    mt_family_key k;
    char key[512]; /* canonical JSON */
    /* the result */
    int source;
    char *file;
    int foreign, stale;
    int n;           /* entries, in file order */
    int64_t *points; /* n x MT_FAMILY_MAX_POINT: each entry's point keys */
    int *group;      /* n: which first-level key of the file holds it */
    int *values;     /* n x the family's parameters, -1 where absent */
} table;

#define NBUCKETS 64

/* the folders searched, in order, and the source each one reports */
#define NDIRS 4
static const int dir_source[NDIRS] = {MT_SOURCE_CONFIG_DIR, MT_SOURCE_TUNED, MT_SOURCE_CACHE, MT_SOURCE_BUNDLED};

struct mt_runtime {
    char *dirs[NDIRS];  /* config dir, tuned, cache, bundled; NULL when absent */
    char device[128];
    char backend[16];
    char **aliases;
    int allow_stale;
    mt_log_fn log;
    void *log_user;
    int log_level;
    pthread_mutex_t mu; /* the tables */
    table *buckets[NBUCKETS];
    pthread_mutex_t log_mu; /* said */
    char **said;        /* messages already logged: each (file, reason) once */
    int nsaid;
    mt_pool *pool;      /* the CPU kernels' threads, made on first use */
    /* CUDA: the device, compiled variants, and one workspace */
    mt_cuda *cuda;
    int device_index;
    char kcache[1024];
    /* every family's built variants: its backend table, the config it was
     * built from, the variant (both malloc'ed, of the table's sizes) */
    struct variant { const mt_family_backend *fb; void *cfg, *v; } *variants;
    int nvariants;
    mt_dptr ws;
    size_t ws_bytes;
    pthread_mutex_t run_mu; /* one forward at a time on the pool */
    int threads;
};

const char *mt_config_source_str(int s)
{
    switch ((enum mt_config_source)s) {
    case MT_SOURCE_CONFIG_DIR: return "config dir";
    case MT_SOURCE_CACHE: return "cache";
    case MT_SOURCE_BUNDLED: return "bundled";
    case MT_SOURCE_ALIAS: return "alias";
    case MT_SOURCE_SAME_ARCH: return "same architecture";
    case MT_SOURCE_DEFAULT: return "default";
    case MT_SOURCE_TUNED: return "tuned";
    }
    return "unknown";
}

/* Log through the context's callback; warnings and errors once per text. */
static void rt_log(mt_runtime *rt, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rt_log(mt_runtime *rt, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!rt->log || level > rt->log_level) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (level <= MT_LOG_WARN) {
        /* lookups log from many threads: the list of what was said is shared */
        pthread_mutex_lock(&rt->log_mu);
        for (int i = 0; i < rt->nsaid; i++)
            if (strcmp(rt->said[i], msg) == 0) {
                pthread_mutex_unlock(&rt->log_mu);
                return;
            }
        char **s = realloc(rt->said, (size_t)(rt->nsaid + 1) * sizeof *s);
        if (s) {
            rt->said = s;
            if ((s[rt->nsaid] = strdup(msg))) rt->nsaid++;
        }
        pthread_mutex_unlock(&rt->log_mu);
    }
    rt->log(level, msg, rt->log_user);
}

/* a folder's path without trailing '/': files are named dir/name, never dir//name */
static char *dup_or_null(const char *s)
{
    if (!s || !*s) return NULL;
    char *d = strdup(s);
    for (size_t l = d ? strlen(d) : 0; l > 1 && d[l - 1] == '/'; l--) d[l - 1] = 0;
    return d;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return path && *path && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A folder under $XDG_<kind>_HOME, else under ~/<fallback>; "" when neither is set. */
static void xdg_path(char *out, size_t n, const char *var, const char *fallback, const char *tail)
{
    const char *xdg = getenv(var), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(out, n, "%s/%s", xdg, tail);
    else if (home && *home) snprintf(out, n, "%s/%s/%s", home, fallback, tail);
    else out[0] = 0;
    for (char *p = strstr(out, "//"); p; p = strstr(p, "//")) memmove(p, p + 1, strlen(p));
}

int mt_runtime_open(mt_runtime **out, const mt_runtime_options *o)
{
    mt_runtime_options def = MT_RUNTIME_OPTIONS_INIT;
    mt_runtime *rt;
    char buf[4096];
    if (!out) return MT_EINVAL;
    *out = NULL;
    if (o) {
        /* the fields the caller was compiled with; later ones keep their
         * defaults. Smaller than the first struct with a size (this one):
         * not a struct made by MT_RUNTIME_OPTIONS_INIT */
        if (o->size < offsetof(mt_runtime_options, tuned_dir) + sizeof o->tuned_dir) return MT_EINVAL;
        memcpy(&def, o, o->size < sizeof def ? o->size : sizeof def);
        def.size = sizeof def;
    }
    o = &def;
    rt = calloc(1, sizeof *rt);
    if (!rt) return MT_ENOMEM;
    pthread_mutex_init(&rt->mu, NULL);
    pthread_mutex_init(&rt->log_mu, NULL);
    pthread_mutex_init(&rt->run_mu, NULL);
    rt->log = o->log;
    rt->log_user = o->log_user;
    rt->log_level = o->log_level;
    rt->allow_stale = o->allow_stale;
    rt->dirs[0] = dup_or_null(o->config_dir ? o->config_dir : getenv("MOETUNE_CONFIG_DIR"));
    /* where `moetune sweep` writes by default: what this machine measured */
    if (!o->tuned_dir) xdg_path(buf, sizeof buf, "XDG_DATA_HOME", ".local/share", "moetune/configs");
    rt->dirs[1] = dup_or_null(o->tuned_dir ? o->tuned_dir : buf);
    if (!o->cache_dir) xdg_path(buf, sizeof buf, "XDG_CACHE_HOME", ".cache", "moetune/bucket");
    rt->dirs[2] = dup_or_null(o->cache_dir ? o->cache_dir : buf);
    /* the install prefix's configs; from a build tree that was never
     * installed, the source tree's */
    if (o->bundled_dir) rt->dirs[3] = dup_or_null(o->bundled_dir);
    else if (!is_dir(MT_BUNDLED_DIR) && is_dir(MT_SOURCE_CONFIGS_DIR)) rt->dirs[3] = dup_or_null(MT_SOURCE_CONFIGS_DIR);
    else rt->dirs[3] = dup_or_null(MT_BUNDLED_DIR);
    snprintf(rt->backend, sizeof rt->backend, "%s", o->backend ? o->backend : "cpu");
    rt->device_index = o->device_index;
    if (o->kernel_cache_dir) {
        snprintf(rt->kcache, sizeof rt->kcache, "%s", o->kernel_cache_dir);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg) snprintf(rt->kcache, sizeof rt->kcache, "%s/moetune/cuda", xdg);
        else if (home && *home) snprintf(rt->kcache, sizeof rt->kcache, "%s/.cache/moetune/cuda", home);
    }
    if (o->device_name) {
        snprintf(rt->device, sizeof rt->device, "%s", o->device_name);
    } else if (strcmp(rt->backend, "cuda") == 0) {
        char err[512];
        int rc = mt_cuda_open(&rt->cuda, rt->device_index, err, sizeof err);
        if (rc != MT_OK) {
            rt_log(rt, MT_LOG_ERROR, "%s", err);
            mt_runtime_close(rt);
            return rc;
        }
        mt_device_vllm_name(rt->device, sizeof rt->device, mt_cuda_get_props(rt->cuda)->name);
    } else {
        /* the CPU of this machine, spelled as `moetune devices` spells it */
        mt_device_cpu_name(rt->device, sizeof rt->device, NULL, 0);
    }
    int na = 0;
    while (o->aliases && o->aliases[na]) na++;
    rt->aliases = calloc((size_t)na + 1, sizeof *rt->aliases);
    if (!rt->aliases) {
        mt_runtime_close(rt);
        return MT_ENOMEM;
    }
    for (int i = 0; i < na; i++) rt->aliases[i] = strdup(o->aliases[i]);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    rt->threads = n > 0 ? (int)n : 1;
    /* a folder that is there but cannot be searched would hide its configs
     * without a word: say so once, and search the others */
    for (int d = 0; d < NDIRS; d++) {
        struct stat sb;
        if (!rt->dirs[d] || stat(rt->dirs[d], &sb) != 0) continue;
        if (!S_ISDIR(sb.st_mode) || access(rt->dirs[d], R_OK | X_OK) != 0) {
            rt_log(rt, MT_LOG_WARN, "the %s folder '%s' %s: its configs are not used", mt_config_source_str(dir_source[d]),
                   rt->dirs[d], S_ISDIR(sb.st_mode) ? "cannot be read" : "is not a folder");
            free(rt->dirs[d]);
            rt->dirs[d] = NULL;
        }
    }
    rt_log(rt, MT_LOG_INFO, "runtime for %s (%s): config dir %s, tuned %s, cache %s, bundled %s", rt->device,
           rt->backend, rt->dirs[0] ? rt->dirs[0] : "(none)", rt->dirs[1] ? rt->dirs[1] : "(none)",
           rt->dirs[2] ? rt->dirs[2] : "(none)", rt->dirs[3] ? rt->dirs[3] : "(none)");
    *out = rt;
    return MT_OK;
}

static void table_free(table *t)
{
    if (!t) return;
    free(t->file);
    free(t->points);
    free(t->values);
    free(t->group);
    free(t);
}

void mt_runtime_close(mt_runtime *rt)
{
    if (!rt) return;
    for (int b = 0; b < NBUCKETS; b++)
        for (table *t = rt->buckets[b], *nx; t; t = nx) {
            nx = t->next;
            table_free(t);
        }
    for (int i = 0; i < NDIRS; i++) free(rt->dirs[i]);
    for (int i = 0; rt->aliases && rt->aliases[i]; i++) free(rt->aliases[i]);
    free(rt->aliases);
    for (int i = 0; i < rt->nsaid; i++) free(rt->said[i]);
    free(rt->said);
    mt_pool_free(rt->pool);
    if (rt->cuda) {
        for (int i = 0; i < rt->nvariants; i++) rt->variants[i].fb->release(rt->cuda, rt->variants[i].v);
        mt_cuda_free(rt->cuda, rt->ws);
        mt_cuda_close(rt->cuda);
    }
    for (int i = 0; i < rt->nvariants; i++) free(rt->variants[i].cfg), free(rt->variants[i].v);
    free(rt->variants);
    pthread_mutex_destroy(&rt->mu);
    pthread_mutex_destroy(&rt->log_mu);
    pthread_mutex_destroy(&rt->run_mu);
    free(rt);
}

const char *mt_runtime_device_name(const mt_runtime *rt) { return rt ? rt->device : NULL; }

/* ---- parsing one file into a table ---- */

/* A config file's text, NUL-terminated, into *out (free it). Only a regular
 * file of at most `max` bytes: a FIFO, a device or /dev/zero behind a link
 * is refused without blocking (O_NONBLOCK, then fstat on what was opened,
 * so a file swapped after a check is still checked). 0, or -1 with a
 * reason in why. */
static int read_config(const char *path, size_t max, char **out, size_t *out_len, char *why, size_t n)
{
    struct stat sb;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return snprintf(why, n, "%s", strerror(errno)), -1;
    if (fstat(fd, &sb) != 0) {
        snprintf(why, n, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(why, n, "%s", S_ISDIR(sb.st_mode) ? "is a directory" : "is not a regular file");
        close(fd);
        return -1;
    }
    if ((unsigned long long)sb.st_size > max) {
        snprintf(why, n, "is %lld bytes, more than a config file can be (%zu)", (long long)sb.st_size, max);
        close(fd);
        return -1;
    }
    char *text = malloc((size_t)sb.st_size + 2);
    size_t len = 0;
    if (!text) {
        close(fd);
        return snprintf(why, n, "out of memory"), -1;
    }
    /* read one byte past the size: a file that grew since fstat is cut
     * there, never read without end */
    while (len < (size_t)sb.st_size + 1) {
        ssize_t k = read(fd, text + len, (size_t)sb.st_size + 1 - len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            snprintf(why, n, "%s", strerror(errno));
            free(text);
            close(fd);
            return -1;
        }
        if (k == 0) break;
        len += (size_t)k;
    }
    close(fd);
    if (len > (size_t)sb.st_size) {
        free(text);
        return snprintf(why, n, "changed while it was read"), -1;
    }
    text[len] = 0;
    *out = text;
    if (out_len) *out_len = len;
    return 0;
}


/* A decimal key of a config file: a positive integer, as written by
 * Python's str(int) (no sign, no leading zero). */
static int point_key(const char *k, int64_t *out)
{
    size_t len = strlen(k);
    if (len == 0 || len > 12 || k[0] == '0') return 0;
    for (const char *p = k; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    *out = strtoll(k, NULL, 10);
    return 1;
}

/* One leaf's parameters into vals (the family's order, -1 where absent);
 * 0, or -1 with a reason. */
static int leaf_params(const mt_family *f, const cJSON *params, int *vals, char *why, size_t n)
{
    for (int i = 0; i < f->nparams; i++) vals[i] = -1;
    for (const cJSON *v = params->child; v; v = v->next) {
        if (cJSON_IsBool(v)) continue; /* flags other engines add (USE_TMA): not ours to use */
        int i = mt_family_param_index(f, v->string);
        if (!cJSON_IsNumber(v) || (i >= 0 && v->valuedouble != floor(v->valuedouble))) {
            snprintf(why, n, "'%.40s' is not an integer", v->string);
            return -1;
        }
        if (i < 0) continue; /* an integer parameter we do not use */
        if (v->valuedouble < f->params[i].min || v->valuedouble > 1 << 20) {
            snprintf(why, n, "'%.40s' is out of range", v->string);
            return -1;
        }
        vals[i] = (int)v->valuedouble;
    }
    return 0;
}

/* The leaves of obj at `level` (the point fields from there on) into t, or
 * only counted when t->values is NULL. pt holds the keys above. 0, or -1
 * with a reason naming the point. */
static int walk(const mt_family *f, const cJSON *obj, int level, int moetune_format, int64_t *pt, table *t, int *group,
                char *why, size_t n)
{
    int any = 0;
    if (level >= f->npoint || level >= MT_FAMILY_MAX_POINT) return snprintf(why, n, "nested too deep"), -1;
    for (const cJSON *e = obj->child; e; e = e->next) {
        /* vLLM's tuner writes its Triton version beside the batch sizes */
        if (level == 0 && !moetune_format && strcmp(e->string, "triton_version") == 0 && cJSON_IsString(e)) continue;
        if (!point_key(e->string, &pt[level])) {
            snprintf(why, n, "key '%.40s' is not a %s", e->string, f->point_about[level]);
            return -1;
        }
        any = 1;
        if (level == 0) (*group)++;
        if (level + 1 < f->npoint && level + 1 < MT_FAMILY_MAX_POINT) {
            if (!cJSON_IsObject(e) || !e->child) {
                snprintf(why, n, "%s=%.20s: no %s keys", f->point[level], e->string, f->point_about[level + 1]);
                return -1;
            }
            if (walk(f, e, level + 1, moetune_format, pt, t, group, why, n) != 0) return -1;
            continue;
        }
        const cJSON *params = moetune_format ? cJSON_GetObjectItemCaseSensitive(e, "params") : e;
        if (!cJSON_IsObject(params)) {
            snprintf(why, n, "%s=%.20s: no parameter object", f->point[level], e->string);
            return -1;
        }
        if (t->n >= MAX_ENTRIES) {
            snprintf(why, n, "holds more than %d configs", MAX_ENTRIES);
            return -1;
        }
        if (t->values) {
            char r[300];
            if (leaf_params(f, params, t->values + (size_t)t->n * (size_t)f->nparams, r, sizeof r) != 0) {
                snprintf(why, n, "%s=%.20s: %s", f->point[level], e->string, r);
                return -1;
            }
            memcpy(t->points + (size_t)t->n * MT_FAMILY_MAX_POINT, pt, MT_FAMILY_MAX_POINT * sizeof *pt);
            t->group[t->n] = *group;
        }
        t->n++;
    }
    if (!any && level == 0) return snprintf(why, n, "holds no configs"), -1;
    return 0;
}

/* Read path into t's result. 0, or -1 with a reason in why. */
static int parse_file(mt_runtime *rt, const char *path, int moetune_format, table *t, char *why, size_t n)
{
    const mt_family *f = t->fam;
    char *text;
    size_t len;
    if (read_config(path, MAX_FILE_BYTES, &text, &len, why, n) != 0) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    free(text);
    (void)end;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return snprintf(why, n, "is not a JSON object (malformed or truncated)"), -1;
    }
    const cJSON *entries = root;
    t->stale = 0;
    t->foreign = !moetune_format;
    if (moetune_format) {
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(root, "provenance");
        const cJSON *kh = cJSON_GetObjectItemCaseSensitive(pv, "kernel_hash");
        entries = cJSON_GetObjectItemCaseSensitive(root, "configs");
        if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "moetune-config/1") || !cJSON_IsObject(entries)) {
            cJSON_Delete(root);
            return snprintf(why, n, "is not a moetune-config/1 file"), -1;
        }
        const char *ours = f->kernel_hash ? f->kernel_hash(rt->backend) : NULL;
        t->stale = !cJSON_IsString(kh) || !ours || strcmp(kh->valuestring, ours) != 0;
    }
    /* count, then fill: a file is read once, walked twice */
    int64_t pt[MT_FAMILY_MAX_POINT] = {0};
    int group = 0, rc;
    t->n = 0;
    rc = walk(f, entries, 0, moetune_format, pt, t, &group, why, n);
    if (rc == 0) {
        size_t cnt = (size_t)t->n;
        t->points = calloc(cnt * MT_FAMILY_MAX_POINT, sizeof *t->points);
        t->values = malloc(cnt * (size_t)f->nparams * sizeof *t->values);
        t->group = malloc(cnt * sizeof *t->group);
        if (!t->points || !t->values || !t->group) rc = -1, snprintf(why, n, "out of memory");
        group = 0;
        t->n = 0;
        if (rc == 0) rc = walk(f, entries, 0, moetune_format, pt, t, &group, why, n);
    }
    cJSON_Delete(root);
    return rc;
}

/* The entry for point: the nearest key of the first point field among the
 * file's first-level keys, then the nearest of the next within it, each as
 * mt_nearest_m picks (ties to the earlier key in the file). */
static int pick(const table *t, const int64_t *point)
{
    int best = -1;
    int64_t best_d = 0;
    for (int i = 0; i < t->n; i++) {
        if (i > 0 && t->group[i] == t->group[i - 1]) continue; /* one candidate per first-level key */
        int64_t k = t->points[(size_t)i * MT_FAMILY_MAX_POINT];
        int64_t d = k > point[0] ? k - point[0] : point[0] - k;
        if (best < 0 || d < best_d) best = i, best_d = d;
    }
    for (int level = 1; level < t->fam->npoint && best >= 0; level++) {
        int g = t->group[best], in = -1;
        best_d = 0;
        for (int i = best; i < t->n && t->group[i] == g; i++) {
            int64_t k = t->points[(size_t)i * MT_FAMILY_MAX_POINT + level];
            int64_t d = k > point[level] ? k - point[level] : point[level] - k;
            if (in < 0 || d < best_d) in = i, best_d = d;
        }
        best = in;
    }
    return best;
}

/* ---- finding the file ---- */

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void table_clear(table *t)
{
    free(t->points);
    free(t->values);
    free(t->group);
    t->points = NULL;
    t->values = NULL;
    t->group = NULL;
    t->n = 0;
}

/* Try one candidate path; on success t holds the result. */
static int try_file(mt_runtime *rt, const char *path, int moetune_format, table *t)
{
    char why[512];
    if (!exists(path)) return 0;
    if (parse_file(rt, path, moetune_format, t, why, sizeof why) != 0) {
        table_clear(t);
        rt_log(rt, MT_LOG_WARN, "skipping '%s': %s", path, why);
        return 0;
    }
    if (t->stale && !rt->allow_stale) {
        rt_log(rt, MT_LOG_WARN, "skipping '%s': measured with another kernel source than this build's (stale); "
                                "re-tune, or allow stale configs", path);
        table_clear(t);
        return 0;
    }
    t->file = strdup(path);
    return t->file != NULL;
}

/* A device's files in one folder, best first (moetune's format, richer,
 * before vLLM's); the pulled cache also keeps a folder per device name. */
static int try_dir(mt_runtime *rt, const char *dir, const char *device, table *t)
{
    mt_family_file files[4];
    int nf = t->fam->file_names(&t->k, device, rt->backend, files, 4);
    char path[4096];
    const char *subs[2] = {"", device};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < nf; i++) {
            snprintf(path, sizeof path, "%s%s%s/%s", dir, s ? "/" : "", subs[s], files[i].name);
            if (try_file(rt, path, files[i].moetune_format, t)) return 1;
        }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Another device of our architecture that has a plain file for the key:
 * in the first folder that has one, the first by name that can be used. */
static int try_same_arch(mt_runtime *rt, table *t)
{
    const char *ours = mt_device_arch_of(rt->device);
    if (!ours) return 0;
    for (int d = 0; d < NDIRS; d++) {
        if (!rt->dirs[d]) continue;
        DIR *dir = opendir(rt->dirs[d]);
        if (!dir) continue;
        char **names = NULL;
        int nn = 0;
        struct dirent *de;
        while ((de = readdir(dir))) {
            char dev[128];
            if (!t->fam->file_match(de->d_name, &t->k, dev, sizeof dev) || !strcmp(dev, rt->device)) continue;
            const char *arch = mt_device_arch_of(dev);
            if (!arch || strcmp(arch, ours) != 0) continue;
            char **nx = realloc(names, (size_t)(nn + 1) * sizeof *names);
            if (!nx) break;
            names = nx;
            if ((names[nn] = strdup(de->d_name))) nn++;
        }
        closedir(dir);
        /* the directory's order is arbitrary: take them by name */
        if (nn > 1) qsort(names, (size_t)nn, sizeof *names, cmp_str);
        int found = 0;
        for (int i = 0; i < nn && !found; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", rt->dirs[d], names[i]);
            found = try_file(rt, path, 0, t);
        }
        for (int i = 0; i < nn; i++) free(names[i]);
        free(names);
        if (found) return 1;
    }
    return 0;
}

static unsigned key_hash(const mt_family *f, const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = f->name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (const char *p = key; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (unsigned)(h % NBUCKETS);
}

/* The published table for the key, or NULL (under mu). */
static table *find_table(mt_runtime *rt, const mt_family *f, const char *key, unsigned h)
{
    for (table *t = rt->buckets[h]; t; t = t->next)
        if (t->fam == f && strcmp(t->key, key) == 0) return t;
    return NULL;
}

/* The table for (f, k): from memory, else read from the sources with no
 * lock held and then published, unless another thread published it first. */
static int load(mt_runtime *rt, const mt_family *f, const mt_family_key *k, table **out)
{
    char key[512], what[256];
    if (mt_family_key_format(f, k, key, sizeof key) != MT_OK) return MT_EINVAL;
    unsigned h = key_hash(f, key);
    pthread_mutex_lock(&rt->mu);
    table *have = find_table(rt, f, key, h);
    pthread_mutex_unlock(&rt->mu);
    if (have) {
        *out = have;
        return MT_OK;
    }
    table *t = calloc(1, sizeof *t);
    if (!t) return MT_ENOMEM;
    t->fam = f;
    t->k = *k;
    snprintf(t->key, sizeof t->key, "%s", key);
    f->describe(k, what, sizeof what);
    int found = 0;
    for (int d = 0; d < NDIRS && !found; d++)
        if (rt->dirs[d] && try_dir(rt, rt->dirs[d], rt->device, t)) {
            t->source = dir_source[d];
            found = 1;
        }
    for (int a = 0; !found && rt->aliases[a]; a++)
        for (int d = 0; d < NDIRS && !found; d++)
            if (rt->dirs[d] && try_dir(rt, rt->dirs[d], rt->aliases[a], t)) {
                t->source = MT_SOURCE_ALIAS;
                found = 1;
                rt_log(rt, MT_LOG_WARN, "no config for %s (%s): using '%s' of the alias %s, as asked", rt->device, what,
                       t->file, rt->aliases[a]);
            }
    if (!found && try_same_arch(rt, t)) {
        t->source = MT_SOURCE_SAME_ARCH;
        found = 1;
        rt_log(rt, MT_LOG_WARN, "no config for %s (%s): using '%s' of another device of architecture %s", rt->device,
               what, t->file, mt_device_arch_of(rt->device));
    }
    if (!found) {
        t->source = MT_SOURCE_DEFAULT;
        rt_log(rt, MT_LOG_WARN, "no config for %s (%s): using the default heuristic, which can be several times "
                                "slower; run '%s' for this device",
               rt->device, what, f->sweep_command);
    } else {
        rt_log(rt, MT_LOG_INFO, "%s: %d configs from '%s' (%s%s)", what, t->n, t->file, mt_config_source_str(t->source),
               t->foreign ? ", foreign" : "");
    }
    pthread_mutex_lock(&rt->mu);
    if ((have = find_table(rt, f, key, h))) {
        /* another thread read the same key meanwhile: keep the first */
        table_free(t);
        t = have;
    } else {
        t->next = rt->buckets[h];
        rt->buckets[h] = t;
    }
    pthread_mutex_unlock(&rt->mu);
    *out = t;
    return MT_OK;
}

/* The sizes a lookup takes: far beyond any model, and small enough that
 * no arithmetic on them (M x topk, the default's powers of two) overflows. */
#define MAX_DIM (INT64_C(1) << 31)
#define MAX_BATCH (INT64_C(1) << 40)

/* A key built by a typed wrapper: each field in its range. */
static int key_ok(const mt_family *f, const mt_family_key *k)
{
    char why[8];
    for (int i = 0; i < f->nkey; i++)
        if (k->v[i] < f->key[i].min || k->v[i] > f->key[i].max) return 0;
    return !f->check_key || f->check_key(k, why, sizeof why);
}

/* The lookup every family shares. */
static int lookup(mt_runtime *rt, const mt_family *f, const mt_family_key *k, const int64_t *point, mt_config_values *out)
{
    table *t;
    for (int i = 0; i < f->npoint; i++)
        if (point[i] < 1 || point[i] > MAX_BATCH) return MT_EINVAL;
    int rc = load(rt, f, k, &t);
    if (rc != MT_OK) return rc;
    memset(out, 0, sizeof *out);
    out->family = f->name;
    out->nparams = f->nparams;
    for (int i = 0; i < f->nparams; i++) out->names[i] = f->params[i].name;
    out->source = t->source;
    if (t->source == MT_SOURCE_DEFAULT) {
        f->default_config(k, point, rt->backend, rt->threads, out->values);
        for (int i = 0; i < f->npoint; i++) out->point_key[i] = point[i];
        return MT_OK;
    }
    int e = pick(t, point);
    memcpy(out->values, t->values + (size_t)e * (size_t)f->nparams, (size_t)f->nparams * sizeof *out->values);
    for (int i = 0; i < f->npoint; i++) out->point_key[i] = t->points[(size_t)e * MT_FAMILY_MAX_POINT + i];
    out->file = t->file;
    out->foreign = t->foreign;
    out->stale = t->stale;
    return MT_OK;
}

int mt_runtime_lookup(mt_runtime *rt, const char *family, const char *key_json, const int64_t *point,
                      mt_config_values *out)
{
    char why[300];
    if (!rt || !key_json || !point || !out) return MT_EINVAL;
    const mt_family *f = mt_family_find(family);
    if (!f) {
        rt_log(rt, MT_LOG_ERROR, "mt_runtime_lookup: no kernel family '%.40s'", family ? family : "(null)");
        return MT_EINVAL;
    }
    mt_family_key k;
    int rc = mt_family_key_parse(f, key_json, &k, why, sizeof why);
    if (rc != MT_OK) {
        rt_log(rt, MT_LOG_ERROR, "mt_runtime_lookup: %s", why);
        return MT_EINVAL;
    }
    return lookup(rt, f, &k, point, out);
}

int mt_config_value(const mt_config_values *c, const char *name)
{
    for (int i = 0; c && name && i < c->nparams && i < MT_CONFIG_MAX_PARAMS; i++)
        if (c->names[i] && strcmp(c->names[i], name) == 0) return c->values[i];
    return -1;
}

/* ---- the fused-MoE family's typed lookup ---- */

static int moe_key(const mt_moe_key *m, mt_family_key *k)
{
    if (!m || (m->dtype && strlen(m->dtype) >= sizeof k->dtype)) return 0;
    memset(k, 0, sizeof *k);
    k->v[MT_MOE_KEY_E] = m->E;
    k->v[MT_MOE_KEY_N] = m->N;
    k->v[MT_MOE_KEY_K] = m->K;
    k->v[MT_MOE_KEY_TOPK] = m->topk;
    k->v[MT_MOE_KEY_BLOCK_N] = m->block_n;
    k->v[MT_MOE_KEY_BLOCK_K] = m->block_k;
    snprintf(k->dtype, sizeof k->dtype, "%s", m->dtype ? m->dtype : "");
    return key_ok(&mt_family_fused_moe, k);
}

int mt_runtime_load_moe(mt_runtime *rt, const mt_moe_key *m)
{
    table *t;
    mt_family_key k;
    if (!rt || !moe_key(m, &k)) return MT_EINVAL;
    return load(rt, &mt_family_fused_moe, &k, &t);
}

int mt_runtime_lookup_moe(mt_runtime *rt, const mt_moe_key *m, int64_t M, mt_moe_config *out)
{
    /* the fields of mt_moe_config in the family's parameter order */
    static const size_t field[] = {
        offsetof(mt_moe_config, block_size_m), offsetof(mt_moe_config, block_size_n),
        offsetof(mt_moe_config, block_size_k), offsetof(mt_moe_config, group_size_m),
        offsetof(mt_moe_config, num_warps),    offsetof(mt_moe_config, num_stages),
        offsetof(mt_moe_config, waves_per_eu), offsetof(mt_moe_config, matrix_instr_nonkdim),
        offsetof(mt_moe_config, kpack),        offsetof(mt_moe_config, split_k),
        offsetof(mt_moe_config, num_ctas),     offsetof(mt_moe_config, num_sm),
        offsetof(mt_moe_config, gemv),         offsetof(mt_moe_config, block_m),
        offsetof(mt_moe_config, block_n),      offsetof(mt_moe_config, block_k),
        offsetof(mt_moe_config, threads),
    };
    _Static_assert(sizeof field / sizeof field[0] <= MT_CONFIG_MAX_PARAMS, "mt_moe_config has the family's parameters");
    mt_family_key k;
    mt_config_values v;
    if (!rt || !out || !moe_key(m, &k)) return MT_EINVAL;
    int rc = lookup(rt, &mt_family_fused_moe, &k, &M, &v);
    if (rc != MT_OK) return rc;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof field / sizeof field[0]; i++) *(int *)((char *)out + field[i]) = v.values[i];
    out->m_key = v.point_key[0];
    out->source = v.source;
    out->file = v.file;
    out->foreign = v.foreign;
    out->stale = v.stale;
    return MT_OK;
}

/* ---- the attention decode family's typed lookup ---- */

static int attn_key(const mt_attn_key *a, mt_family_key *k)
{
    if (!a || (a->dtype && strlen(a->dtype) >= sizeof k->dtype)) return 0;
    memset(k, 0, sizeof *k);
    k->v[MT_ATTN_KEY_H] = a->num_heads;
    k->v[MT_ATTN_KEY_HKV] = a->num_kv_heads;
    k->v[MT_ATTN_KEY_D] = a->head_dim;
    k->v[MT_ATTN_KEY_PAGE] = a->page_size;
    snprintf(k->dtype, sizeof k->dtype, "%s", a->dtype ? a->dtype : "bf16");
    return key_ok(&mt_family_attn_decode, k);
}

/* the family's values into the typed config (the fields it names) */
static void attn_apply(const int *v, mt_attn_config *c)
{
    c->partition = v[MT_ATTN_P_PARTITION];
    c->num_warps = v[MT_ATTN_P_WARPS];
    c->mma = v[MT_ATTN_P_MMA];
    c->stage = v[MT_ATTN_P_STAGE];
    c->query_split = v[MT_ATTN_P_QSPLIT];
}

int mt_runtime_lookup_attention(mt_runtime *rt, const mt_attn_key *a, int64_t batch, int64_t ctx, mt_attn_config *out)
{
    mt_family_key k;
    mt_config_values v;
    int64_t point[2] = {batch, ctx};
    if (!rt || !out || !attn_key(a, &k)) return MT_EINVAL;
    int rc = lookup(rt, &mt_family_attn_decode, &k, point, &v);
    if (rc != MT_OK) return rc;
    memset(out, 0, sizeof *out);
    attn_apply(v.values, out);
    out->pages_per_iter = v.values[MT_ATTN_P_PAGES];
    out->threads = v.values[MT_ATTN_P_THREADS];
    out->source = v.source;
    out->file = v.file;
    /* the file's keys; 0 for the default, as documented */
    out->batch_key = v.source == MT_SOURCE_DEFAULT ? 0 : v.point_key[0];
    out->ctx_key = v.source == MT_SOURCE_DEFAULT ? 0 : v.point_key[1];
    return MT_OK;
}

int mt_attention_decode_cpu(mt_runtime *rt, int dtype, int64_t B, int64_t H, int64_t Hkv, int64_t D, int64_t ps,
                            const void *q, const void *kc, const void *vc, const int32_t *bt, int64_t max_pages,
                            int64_t num_pages, const int32_t *lens, void *out, mt_attn_config *used)
{
    if (!rt || !q || !kc || !vc || !bt || !lens || !out || B < 1) return MT_EINVAL;
    if (dtype != MT_DTYPE_BF16 && dtype != MT_DTYPE_FP16 && dtype != MT_DTYPE_FP32) return MT_EUNSUPPORTED;
    int64_t maxc = 0;
    for (int64_t i = 0; i < B; i++) maxc = lens[i] > maxc ? lens[i] : maxc;
    mt_attn_key key = {H, Hkv, D, ps, dtype == MT_DTYPE_FP16 ? "fp16" : dtype == MT_DTYPE_FP32 ? "fp32" : "bf16"};
    mt_attn_config cfg;
    int rc = mt_runtime_lookup_attention(rt, &key, B, maxc > 0 ? maxc : 1, &cfg);
    if (rc != MT_OK) return rc;
    mt_attn_shape s = {H, Hkv, D, ps, dtype};
    mt_attn_batch b = {B, max_pages, num_pages, q, kc, vc, bt, lens, 0};
    mt_attn_cpu_params p = {cfg.partition, cfg.pages_per_iter, cfg.threads > rt->threads ? rt->threads : cfg.threads};
    char why[256];
    if ((rc = mt_attn_check(&s, &b, NULL, rt->threads, why, sizeof why)) != MT_OK) {
        rt_log(rt, MT_LOG_ERROR, "attention decode: %s", why);
        return rc;
    }
    if (p.partition < 0 || p.pages_per_iter < 1 || p.threads < 1 || mt_attn_check(&s, &b, &p, rt->threads, NULL, 0) != MT_OK) {
        /* a config for another backend or machine: the CPU default instead */
        rt_log(rt, MT_LOG_WARN, "config from '%s' does not fit the CPU attention kernel here: using its default",
               cfg.file ? cfg.file : "(default)");
        int64_t part = (512 / ps) * ps;
        p.partition = maxc > part && part > 0 ? (int)part : 0;
        p.pages_per_iter = 1;
        p.threads = rt->threads;
        cfg.source = MT_SOURCE_DEFAULT;
        cfg.file = NULL;
    }
    pthread_mutex_lock(&rt->run_mu);
    if (!rt->pool) rc = mt_pool_new(&rt->pool, rt->threads);
    void *ws = rc == MT_OK ? malloc(mt_attn_cpu_workspace(&s, &b, &p)) : NULL;
    if (rc == MT_OK && !ws) rc = MT_ENOMEM;
    if (rc == MT_OK) rc = mt_attn_cpu_forward(rt->pool, &s, &b, &p, ws, out);
    pthread_mutex_unlock(&rt->run_mu);
    free(ws);
    if (used) {
        *used = cfg;
        used->partition = p.partition;
        used->pages_per_iter = p.pages_per_iter;
        used->threads = p.threads;
    }
    return rc;
}

/* ---- the CPU kernel with the looked-up config ---- */

/* the CPU kernel for shape s with the config looked up for key: routed,
 * run under run_mu; sc holds an fp8 problem's scales */
static int moe_cpu_run(mt_runtime *rt, const mt_moe_shape *s, const mt_moe_key *key, int64_t M, const void *x,
                       const void *w1, const void *w2, const mt_moe_scales *sc, const float *logits, float *out,
                       mt_moe_config *used)
{
    mt_moe_config cfg;
    int64_t N = s->N, K = s->K, topk = s->topk;
    int rc = mt_runtime_lookup_moe(rt, key, M, &cfg);
    if (rc != MT_OK) return rc;
    mt_cpu_params p = {cfg.block_m, cfg.block_n, cfg.block_k, cfg.threads};
    if (p.block_m < 1 || p.block_n < 1 || p.block_k < 1 || p.threads < 1 ||
        mt_cpu_params_check(s, &p, rt->threads) != MT_OK) {
        /* a config for another backend or machine: the CPU default instead */
        rt_log(rt, MT_LOG_WARN, "config from '%s' does not fit the CPU kernel here: using its default",
               cfg.file ? cfg.file : "(default)");
        mt_cpu_params_default(N, K, topk, M, rt->threads, &p);
        cfg.block_m = p.block_m;
        cfg.block_n = p.block_n;
        cfg.block_k = p.block_k;
        cfg.threads = p.threads;
    }
    pthread_mutex_lock(&rt->mu);
    if (!rt->pool) rc = mt_pool_new(&rt->pool, rt->threads);
    pthread_mutex_unlock(&rt->mu);
    if (rc != MT_OK) return rc;
    int32_t *ids = malloc((size_t)(M * topk) * sizeof *ids);
    float *tw = malloc((size_t)(M * topk) * sizeof *tw);
    void *ws = malloc(mt_moe_cpu_workspace(s, &p, M));
    if (!ids || !tw || !ws) rc = MT_ENOMEM;
    if (rc == MT_OK) rc = mt_moe_route(logits, M, s->E, topk, s->renormalize, ids, tw);
    if (rc == MT_OK) {
        pthread_mutex_lock(&rt->run_mu);
        rc = mt_moe_cpu_forward_q(rt->pool, s, &p, M, x, w1, w2, sc, ids, tw, ws, out);
        pthread_mutex_unlock(&rt->run_mu);
    }
    free(ids);
    free(tw);
    free(ws);
    if (rc == MT_OK && used) *used = cfg;
    return rc;
}

int mt_fused_moe_cpu(mt_runtime *rt, int dtype, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                     int renormalize, const void *x, const void *w1, const void *w2, const float *logits, float *out,
                     mt_moe_config *used)
{
    mt_moe_key key = {E, N, K, topk, NULL, 0, 0};
    if (!rt || !x || !w1 || !w2 || !logits || !out || M < 1 || topk < 1 || topk > E || E > MAX_DIM ||
        M > MAX_BATCH / topk)
        return MT_EINVAL;
    if (dtype != MT_DTYPE_BF16 && dtype != MT_DTYPE_FP32) return MT_EUNSUPPORTED;
    key.dtype = dtype == MT_DTYPE_FP32 ? "fp32" : NULL;
    mt_moe_shape s = {E, N, K, topk, dtype, renormalize, 0, 0, 0};
    return moe_cpu_run(rt, &s, &key, M, x, w1, w2, NULL, logits, out, used);
}

/* an fp8 descriptor's fault, said in its own terms (the scheme's rules are
 * the kernel's, mt_moe_quant_check); NULL when well formed */
static const char *quant_fault(const mt_quant *q, char *why, size_t n)
{
    if (!q) return "no descriptor (q is NULL)";
    mt_moe_shape s = {1, 1, 1, 1, MT_DTYPE_FP8_W8A8, 1, q->scheme, q->block_n, q->block_k};
    if (mt_moe_quant_check(&s, why, n) != MT_OK) return why;
    if (!q->w1_scale || !q->w2_scale) return "w1_scale and w2_scale are required";
    if (q->scheme != MT_QUANT_TENSOR && (q->a1_scale || q->a2_scale))
        return "a1_scale and a2_scale are static per-tensor scales: NULL with per-channel and block scales, whose "
               "activation scales are dynamic";
    return NULL;
}

int mt_fused_moe_fp8_cpu(mt_runtime *rt, const mt_quant *q, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                         int renormalize, const uint16_t *x, const uint8_t *w1, const uint8_t *w2, const float *logits,
                         float *out, mt_moe_config *used)
{
    if (!rt || !x || !w1 || !w2 || !logits || !out || M < 1 || topk < 1 || topk > E || E > MAX_DIM ||
        M > MAX_BATCH / topk)
        return MT_EINVAL;
    char fwhy[160];
    const char *fault = quant_fault(q, fwhy, sizeof fwhy);
    if (fault) {
        rt_log(rt, MT_LOG_ERROR, "mt_fused_moe_fp8_cpu: the quantisation descriptor: %s", fault);
        return MT_EINVAL;
    }
    int block = q->scheme == MT_QUANT_BLOCK;
    mt_moe_key key = {E, N, K, topk, mt_quant_dtype_name(q->scheme), block ? q->block_n : 0, block ? q->block_k : 0};
    mt_moe_shape s = {E, N, K, topk, MT_DTYPE_FP8_W8A8, renormalize, q->scheme, key.block_n, key.block_k};
    mt_moe_scales sc = {q->w1_scale, q->w2_scale, q->a1_scale, q->a2_scale};
    return moe_cpu_run(rt, &s, &key, M, x, w1, w2, &sc, logits, out, used);
}

/* ---- the CUDA kernels with the looked-up config ---- */

/* The compiled variant of a family's kernel for cfg (the table's config
 * struct), built on first use (under run_mu). */
static int gpu_variant(mt_runtime *rt, const mt_family_backend *fb, const void *cfg, void **out, char *why, size_t n)
{
    for (int i = 0; i < rt->nvariants; i++)
        if (rt->variants[i].fb == fb && !memcmp(rt->variants[i].cfg, cfg, fb->cfg_size)) {
            *out = rt->variants[i].v;
            return MT_OK;
        }
    struct variant *nv = realloc(rt->variants, (size_t)(rt->nvariants + 1) * sizeof *nv);
    if (!nv) return MT_ENOMEM;
    rt->variants = nv;
    struct variant x = {fb, malloc(fb->cfg_size), calloc(1, fb->variant_size)};
    if (!x.cfg || !x.v) {
        free(x.cfg), free(x.v);
        return MT_ENOMEM;
    }
    memcpy(x.cfg, cfg, fb->cfg_size);
    if (rt->kcache[0]) mkdir(rt->kcache, 0755);
    int rc = fb->build(rt->cuda, cfg, rt->kcache[0] ? rt->kcache : NULL, x.v, why, n);
    if (rc != MT_OK) {
        free(x.cfg), free(x.v);
        return rc;
    }
    nv[rt->nvariants++] = x;
    *out = x.v;
    return MT_OK;
}

/* A launch of a built variant: the shared workspace grown to what args
 * needs (its workspace field then set), and the family's enqueue; why
 * holds the driver's message on failure (under run_mu). */
static int cuda_workspace(mt_runtime *rt, size_t need);
static int gpu_launch(mt_runtime *rt, const mt_family_backend *fb, const void *v, void *args, mt_dptr *ws_field,
                      void *stream, char *why, size_t n)
{
    int rc = cuda_workspace(rt, fb->workspace(v, args));
    if (rc == MT_OK) {
        *ws_field = rt->ws;
        rc = fb->enqueue(rt->cuda, v, args, stream);
    }
    if (rc != MT_OK) snprintf(why, n, "%s", mt_cuda_errmsg(rt->cuda));
    return rc;
}

/* the workspace shared by the CUDA entry points, grown to `need` (under run_mu) */
static int cuda_workspace(mt_runtime *rt, size_t need)
{
    if (need <= rt->ws_bytes) return MT_OK;
    mt_cuda_free(rt->cuda, rt->ws);
    rt->ws = 0;
    rt->ws_bytes = 0;
    int rc = mt_cuda_alloc(rt->cuda, need, &rt->ws);
    if (rc == MT_OK) rt->ws_bytes = need;
    return rc;
}

/* the CUDA entry points' end: run_mu released, a failure said with its reason */
static int cuda_done(mt_runtime *rt, int rc, const char *what, const char *why)
{
    pthread_mutex_unlock(&rt->run_mu);
    if (rc != MT_OK) rt_log(rt, MT_LOG_ERROR, "%s on CUDA: %s", what, why);
    return rc;
}

/* The CUDA fused MoE: bf16/fp16 (q NULL) or fp8 with the descriptor q,
 * whose scale pointers are device memory. */
static int moe_cuda(mt_runtime *rt, const char *who, int dtype, const mt_quant *q, int64_t M, int64_t E, int64_t N,
                    int64_t K, int64_t topk, uint64_t x, uint64_t w1, uint64_t w2, uint64_t topk_ids,
                    uint64_t topk_weights, uint64_t out, void *stream, mt_moe_config *used)
{
    enum { CHUNK = 16384 }; /* tokens per pipeline run: bounds the workspace */
    mt_moe_config cfg;
    int block = q && q->scheme == MT_QUANT_BLOCK, fp8 = q ? (block ? 2 : 1) : 0;
    mt_moe_key key = {E, N, K, topk, q ? mt_quant_dtype_name(q->scheme) : NULL, block ? q->block_n : 0, block ? q->block_k : 0};
    char why[512];
    /* fp8 copies 16 e4m3 values at a time */
    if (!rt || !x || !w1 || !w2 || !topk_ids || !topk_weights || !out || M < 1 || topk < 1 || topk > E ||
        N % (fp8 ? 16 : 8) || K % (fp8 ? 16 : 8) || E > 1024 || M > (1 << 30) / topk)
        return MT_EINVAL;
    if (strcmp(rt->backend, "cuda") != 0) {
        rt_log(rt, MT_LOG_ERROR, "%s needs a runtime opened with backend \"cuda\"", who);
        return MT_EINVAL;
    }
    int rc = mt_runtime_lookup_moe(rt, &key, M, &cfg);
    if (rc != MT_OK) return rc;
    pthread_mutex_lock(&rt->run_mu);
    if (!rt->cuda && (rc = mt_cuda_open(&rt->cuda, rt->device_index, why, sizeof why)) != MT_OK) {
        pthread_mutex_unlock(&rt->run_mu);
        rt_log(rt, MT_LOG_ERROR, "%s", why);
        return rc;
    }
    /* the launcher's order; no waves_per_eu hint (an AMD-only key). The
     * GEMV path where the tuner may choose it (search/space.c: at most two
     * pairs per expert): a batch between two keys that has more takes the
     * same tile on the tiled path. */
    int gemv = cfg.gemv > 0 && mt_cuda_gemv_fits(M, E, topk);
    const mt_family_backend *fb = &mt_backend_fused_moe_cuda;
    mt_cuda_moe_variant_cfg vc;
    memset(&vc, 0, sizeof vc); /* compared bytewise */
    if (block && cfg.block_size_k > 0) cfg.block_size_k = mt_cuda_fp8_block_k(cfg.block_size_k, q->block_k);
    vc.cfg = (mt_cuda_moe_cfg){cfg.block_size_m, cfg.block_size_n, cfg.block_size_k, cfg.group_size_m,
                               cfg.num_warps,      cfg.num_stages,   cfg.num_sm > 0 ? cfg.num_sm : 0, 0, gemv};
    vc.fp16 = dtype == MT_DTYPE_FP16;
    vc.fp8 = fp8;
    const mt_cuda_moe_cfg lc = vc.cfg;
    void *v = NULL;
    int ok = lc.block_m > 0 && lc.block_n > 0 && lc.block_k > 0 && lc.group_m > 0 && lc.warps > 0 && lc.stages >= 2;
    if (ok) rc = gpu_variant(rt, fb, &vc, &v, why, sizeof why);
    if (!ok || rc == MT_EUNSUPPORTED || rc == MT_EPARSE) {
        /* a config our kernels cannot run (a Triton file's tile that does
         * not fit, ROCm's num_stages 0): vLLM's default instead, said once */
        int d[6];
        mt_vllm_default_config(M, E, 0, d);
        if (block) d[2] = mt_cuda_fp8_block_k(d[2], q->block_k);
        rt_log(rt, MT_LOG_WARN, "config from '%s' (M key %lld) does not fit moetune's CUDA kernels (%s): using vLLM's "
                                "default for it",
               cfg.file ? cfg.file : "(default)", (long long)cfg.m_key, ok ? why : "incomplete parameters");
        vc.cfg = (mt_cuda_moe_cfg){d[0], d[1], d[2], d[3], d[4], d[5], 0, 0, 0};
        cfg.block_size_m = d[0]; cfg.block_size_n = d[1]; cfg.block_size_k = d[2];
        cfg.group_size_m = d[3]; cfg.num_warps = d[4]; cfg.num_stages = d[5]; cfg.num_sm = 0; cfg.gemv = 0;
        rc = d[2] > 0 ? gpu_variant(rt, fb, &vc, &v, why, sizeof why) : MT_EINVAL;
        if (d[2] <= 0) snprintf(why, sizeof why, "no BLOCK_SIZE_K of 32 or more divides the scale block %lld",
                                (long long)(q ? q->block_k : 0));
    }
    if (rc == MT_OK) {
        int chunk = M < CHUNK ? (int)M : CHUNK;
        mt_cuda_moe_args a = {x, w1, w2, topk_ids, topk_weights, out, 0, (int)M, (int)E, (int)N, (int)K, (int)topk, chunk,
                              0, 0, 0, 0, 0, 0, 0};
        if (q) {
            a.w1_scale = (mt_dptr)(uintptr_t)q->w1_scale;
            a.w2_scale = (mt_dptr)(uintptr_t)q->w2_scale;
            a.a1_scale = (mt_dptr)(uintptr_t)q->a1_scale;
            a.a2_scale = (mt_dptr)(uintptr_t)q->a2_scale;
            a.channel = q->scheme == MT_QUANT_CHANNEL;
            a.block_n = block ? (int)q->block_n : 0;
            a.block_k = block ? (int)q->block_k : 0;
        }
        rc = gpu_launch(rt, fb, v, &a, &a.workspace, stream, why, sizeof why);
    }
    rc = cuda_done(rt, rc, "fused MoE", why);
    if (rc == MT_OK && used) *used = cfg;
    return rc;
}

int mt_fused_moe_cuda(mt_runtime *rt, int dtype, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                      uint64_t x, uint64_t w1, uint64_t w2, uint64_t topk_ids, uint64_t topk_weights, uint64_t out,
                      void *stream, mt_moe_config *used)
{
    if (rt && dtype != MT_DTYPE_BF16 && dtype != MT_DTYPE_FP16) return MT_EUNSUPPORTED;
    return moe_cuda(rt, "mt_fused_moe_cuda", dtype, NULL, M, E, N, K, topk, x, w1, w2, topk_ids, topk_weights, out,
                    stream, used);
}

int mt_fused_moe_fp8_cuda(mt_runtime *rt, const mt_quant *q, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                          uint64_t x, uint64_t w1, uint64_t w2, uint64_t topk_ids, uint64_t topk_weights, uint64_t out,
                          void *stream, mt_moe_config *used)
{
    char fwhy[160];
    const char *fault = quant_fault(q, fwhy, sizeof fwhy);
    if (!rt) return MT_EINVAL;
    if (fault) {
        rt_log(rt, MT_LOG_ERROR, "mt_fused_moe_fp8_cuda: the quantisation descriptor: %s", fault);
        return MT_EINVAL;
    }
    if (q->scheme == MT_QUANT_BLOCK && (q->block_n % 2 || q->block_k % 32)) {
        rt_log(rt, MT_LOG_ERROR, "mt_fused_moe_fp8_cuda: a %lldx%lld block: the CUDA kernel takes an even block_n and a "
                                 "block_k that is a multiple of 32 (DeepSeek-V3: 128x128)",
               (long long)q->block_n, (long long)q->block_k);
        return MT_EUNSUPPORTED;
    }
    return moe_cuda(rt, "mt_fused_moe_fp8_cuda", MT_DTYPE_BF16, q, M, E, N, K, topk, x, w1, w2, topk_ids, topk_weights,
                    out, stream, used);
}

/* what the CUDA kernel builds for a looked-up config: a file's mma, stage
 * and query_split may be absent (another engine's writer): the FMA path,
 * no staging, one block per KV head */
static mt_cuda_attn_cfg cuda_attn_cfg_of(const mt_attn_config *cfg, int64_t D, int64_t ps, int64_t group, int fp16)
{
    mt_cuda_attn_cfg c = {(int)D, (int)ps, (int)group, fp16, cfg->partition, cfg->num_warps,
                          cfg->mma > 0 ? cfg->mma : 0, cfg->stage > 0 ? cfg->stage : 0,
                          cfg->query_split > 0 ? cfg->query_split : 1};
    return c;
}

int mt_attention_decode_cuda(mt_runtime *rt, int dtype, int64_t B, int64_t H, int64_t Hkv, int64_t D, int64_t ps,
                             uint64_t q, uint64_t kc, uint64_t vc, uint64_t bt, int64_t max_pages, uint64_t lens,
                             int64_t max_context, float scale, uint64_t out, void *stream, mt_attn_config *used)
{
    char why[512];
    if (!rt) return MT_EINVAL;
    /* the grid's y and z dimensions (partitions, sequences) stop at 65535 */
    if (!q || !kc || !vc || !bt || !lens || !out || B < 1 || B > 65535 || Hkv < 1 || H < Hkv || H % Hkv || D < 1 ||
        ps < 1 || max_pages < 1 || max_pages > 1 << 30 || max_context < 1 || max_context > max_pages * ps ||
        !(scale >= 0.f)) {
        rt_log(rt, MT_LOG_ERROR,
               "attention decode on CUDA: B %lld (1..65535), heads %lld over %lld KV heads (a multiple), head_dim %lld, "
               "page %lld, max_context %lld (1..max_pages %lld x page; max_pages up to 2^30), "
               "scale %g (0: 1/sqrt(head_dim)), and every pointer set",
               (long long)B, (long long)H, (long long)Hkv, (long long)D, (long long)ps, (long long)max_context,
               (long long)max_pages, (double)scale);
        return MT_EINVAL;
    }
    if (dtype != MT_DTYPE_BF16 && dtype != MT_DTYPE_FP16) {
        rt_log(rt, MT_LOG_ERROR, "attention decode on CUDA: dtype %d: the CUDA kernel takes bf16 (%d) or fp16 (%d)", dtype,
               MT_DTYPE_BF16, MT_DTYPE_FP16);
        return MT_EUNSUPPORTED;
    }
    if (strcmp(rt->backend, "cuda") != 0) {
        rt_log(rt, MT_LOG_ERROR, "mt_attention_decode_cuda needs a runtime opened with backend \"cuda\"");
        return MT_EINVAL;
    }
    mt_attn_key key = {H, Hkv, D, ps, dtype == MT_DTYPE_FP16 ? "fp16" : "bf16"};
    mt_attn_config cfg;
    int rc = mt_runtime_lookup_attention(rt, &key, B, max_context, &cfg);
    if (rc != MT_OK) return rc;
    pthread_mutex_lock(&rt->run_mu);
    if (!rt->cuda && (rc = mt_cuda_open(&rt->cuda, rt->device_index, why, sizeof why)) != MT_OK) {
        pthread_mutex_unlock(&rt->run_mu);
        rt_log(rt, MT_LOG_ERROR, "%s", why);
        return rc;
    }
    const mt_family_backend *fb = &mt_backend_attn_decode_cuda;
    mt_cuda_attn_cfg c = cuda_attn_cfg_of(&cfg, D, ps, H / Hkv, dtype == MT_DTYPE_FP16);
    cfg.mma = c.mma, cfg.stage = c.stage, cfg.query_split = c.qsplit;
    void *v = NULL;
    int ok = c.partition > 0 && c.warps > 0;
    if (ok) rc = gpu_variant(rt, fb, &c, &v, why, sizeof why);
    /* a config the CUDA kernel cannot take (a CPU file's, or one for a GPU
     * with more shared memory): the kernel's default, said; where the
     * default's ring does not build either (too little shared memory, or no
     * bf16 MMA), the FMA variant. A fallback that is the variant which just
     * failed (a file's config equal to the default, or a default that is
     * already the FMA one) is not built again. */
    for (int step = cfg.source == MT_SOURCE_DEFAULT;
         step < 2 && (!ok || rc == MT_EINVAL || rc == MT_EUNSUPPORTED || rc == MT_EPARSE); step++) {
        mt_attn_config d = cfg;
        int dv[MT_ATTN_NPARAMS];
        mt_family_key fk;
        if (step)
            mt_attn_decode_fma_default(ps, dv);
        else if (attn_key(&key, &fk))
            mt_attn_decode_cuda_default(&fk, B, max_context, dv);
        else
            continue;
        attn_apply(dv, &d);
        d.source = MT_SOURCE_DEFAULT;
        mt_cuda_attn_cfg dc = cuda_attn_cfg_of(&d, D, ps, H / Hkv, dtype == MT_DTYPE_FP16);
        if (ok && !memcmp(&dc, &c, sizeof dc)) continue;
        rt_log(rt, MT_LOG_WARN, "config from '%s' does not fit moetune's CUDA attention kernel (%s): using its %sdefault",
               cfg.file ? cfg.file : "(default)", ok ? why : "incomplete parameters", step ? "FMA " : "");
        cfg = d;
        cfg.file = NULL;
        c = dc;
        ok = 1;
        rc = gpu_variant(rt, fb, &c, &v, why, sizeof why);
    }
    if (rc == MT_OK) {
        mt_cuda_attn_args a = {q, kc, vc, bt, lens, out, 0, (int)B, (int)H, (int)Hkv, (int)max_pages, (int)max_context,
                               scale};
        rc = gpu_launch(rt, fb, v, &a, &a.workspace, stream, why, sizeof why);
    }
    rc = cuda_done(rt, rc, "attention decode", why);
    if (rc == MT_OK && used) *used = cfg;
    return rc;
}
