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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cuda_rt.h"
#include "attn.h"
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
#define MAX_KEYS 4096

typedef struct table {
    struct table *next;
    /* the key */
    int64_t E, N, K, topk, block_n, block_k;
    char dtype[32];
    /* the result */
    int source;
    char *file;
    int foreign, stale;
    int n;
    int64_t *m;
    mt_moe_config *cfg;
} table;

#define NBUCKETS 64

/* the folders searched, in order, and the source each one reports */
#define NDIRS 4
static const int dir_source[NDIRS] = {MT_SOURCE_CONFIG_DIR, MT_SOURCE_TUNED, MT_SOURCE_CACHE, MT_SOURCE_BUNDLED};

/* an attention file read once, by name: text NULL when no source has it */
struct attn_file {
    struct attn_file *next;
    char name[512];
    char *text, *path;
    int source;
};

struct mt_runtime {
    char *dirs[NDIRS];  /* config dir, tuned, cache, bundled; NULL when absent */
    char device[128];
    char backend[16];
    char **aliases;
    int allow_stale;
    mt_log_fn log;
    void *log_user;
    int log_level;
    pthread_mutex_t mu; /* the tables and attention files */
    table *buckets[NBUCKETS];
    pthread_mutex_t log_mu; /* said */
    char **said;        /* messages already logged: each (file, reason) once */
    int nsaid;
    mt_pool *pool;      /* the CPU kernels' threads, made on first use */
    /* CUDA: the device, compiled variants, and one workspace */
    mt_cuda *cuda;
    int device_index;
    char kcache[1024];
    struct variant { int cfg[MT_CUDA_MOE_NCFG]; int fp16; mt_cuda_moe v; } *variants;
    int nvariants;
    struct attn_variant { mt_cuda_attn_cfg cfg; mt_cuda_attn v; } *avariants; /* the attention's, likewise */
    int navariants;
    mt_dptr ws;
    size_t ws_bytes;
    pthread_mutex_t run_mu; /* one forward at a time on the pool */
    int threads;
    struct attn_file *attn; /* attention files read so far */
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
    if (!o) o = &def;
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
    free(t->m);
    free(t->cfg);
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
    for (struct attn_file *a = rt->attn, *nx; a; a = nx) {
        nx = a->next;
        free(a->text);
        free(a->path);
        free(a);
    }
    if (rt->cuda) {
        for (int i = 0; i < rt->nvariants; i++) mt_cuda_moe_release(rt->cuda, &rt->variants[i].v);
        for (int i = 0; i < rt->navariants; i++) mt_cuda_attn_release(rt->cuda, &rt->avariants[i].v);
        mt_cuda_free(rt->cuda, rt->ws);
        mt_cuda_close(rt->cuda);
    }
    free(rt->variants);
    free(rt->avariants);
    pthread_mutex_destroy(&rt->mu);
    pthread_mutex_destroy(&rt->log_mu);
    pthread_mutex_destroy(&rt->run_mu);
    free(rt);
}

const char *mt_runtime_device_name(const mt_runtime *rt) { return rt ? rt->device : NULL; }

/* ---- parsing one file into a table ---- */

static void config_init(mt_moe_config *c)
{
    memset(c, 0, sizeof *c);
    c->block_size_m = c->block_size_n = c->block_size_k = c->group_size_m = c->num_warps = c->num_stages = -1;
    c->waves_per_eu = c->matrix_instr_nonkdim = c->kpack = c->split_k = c->num_ctas = -1;
    c->num_sm = c->gemv = c->block_m = c->block_n = c->block_k = c->threads = -1;
}

/* One parameter into c; a reason when its value is impossible. */
static int set_param(mt_moe_config *c, const cJSON *v, char *why, size_t n)
{
    static const struct { const char *key; size_t off; int min; } keys[] = {
        {"BLOCK_SIZE_M", offsetof(mt_moe_config, block_size_m), 1},
        {"BLOCK_SIZE_N", offsetof(mt_moe_config, block_size_n), 1},
        {"BLOCK_SIZE_K", offsetof(mt_moe_config, block_size_k), 1},
        {"GROUP_SIZE_M", offsetof(mt_moe_config, group_size_m), 1},
        {"num_warps", offsetof(mt_moe_config, num_warps), 1},
        /* vLLM's ROCm files do hold num_stages 0 and waves_per_eu 0 */
        {"num_stages", offsetof(mt_moe_config, num_stages), 0},
        {"waves_per_eu", offsetof(mt_moe_config, waves_per_eu), 0},
        {"matrix_instr_nonkdim", offsetof(mt_moe_config, matrix_instr_nonkdim), 0},
        {"kpack", offsetof(mt_moe_config, kpack), 0},
        {"SPLIT_K", offsetof(mt_moe_config, split_k), 1},
        {"num_ctas", offsetof(mt_moe_config, num_ctas), 1},
        {"NUM_SM", offsetof(mt_moe_config, num_sm), 0},
        {"GEMV", offsetof(mt_moe_config, gemv), 0},
        {"block_m", offsetof(mt_moe_config, block_m), 1},
        {"block_n", offsetof(mt_moe_config, block_n), 1},
        {"block_k", offsetof(mt_moe_config, block_k), 1},
        {"threads", offsetof(mt_moe_config, threads), 1},
    };
    if (cJSON_IsBool(v)) return 0; /* flags other engines add (USE_TMA): not ours to use */
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strcmp(v->string, keys[i].key) != 0) continue;
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < keys[i].min ||
            v->valuedouble > 1 << 20) {
            snprintf(why, n, "'%s' is %s", v->string, cJSON_IsNumber(v) ? "out of range" : "not an integer");
            return -1;
        }
        *(int *)((char *)c + keys[i].off) = (int)v->valuedouble;
        return 0;
    }
    if (!cJSON_IsNumber(v)) {
        snprintf(why, n, "'%s' is not an integer", v->string);
        return -1;
    }
    return 0; /* an integer parameter we do not use */
}

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

/* Read path into t's result. 0, or -1 with a reason in why. */
static int parse_file(mt_runtime *rt, const char *path, int moetune_format, table *t, char *why, size_t n)
{
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
        const char *ours = mt_kernel_hash(rt->backend);
        t->stale = !cJSON_IsString(kh) || !ours || strcmp(kh->valuestring, ours) != 0;
    }
    int count = 0;
    for (const cJSON *e = entries->child; e; e = e->next) {
        if (!moetune_format && strcmp(e->string, "triton_version") == 0 && cJSON_IsString(e)) continue;
        const char *k = e->string;
        int digits = *k != 0 && strlen(k) <= 12 && !(k[0] == '0' && k[1]);
        for (const char *p = k; *p; p++) digits &= *p >= '0' && *p <= '9';
        if (!digits) {
            snprintf(why, n, "key '%.40s' is not a batch size", k);
            cJSON_Delete(root); /* after the message: k lives in root */
            return -1;
        }
        count++;
    }
    if (count == 0 || count > MAX_KEYS) {
        cJSON_Delete(root);
        return snprintf(why, n, "holds %d batch sizes", count), -1;
    }
    t->m = malloc((size_t)count * sizeof *t->m);
    t->cfg = malloc((size_t)count * sizeof *t->cfg);
    if (!t->m || !t->cfg) {
        cJSON_Delete(root);
        return snprintf(why, n, "out of memory"), -1;
    }
    int i = 0;
    for (const cJSON *e = entries->child; e; e = e->next) {
        if (!moetune_format && strcmp(e->string, "triton_version") == 0 && cJSON_IsString(e)) continue;
        const cJSON *params = moetune_format ? cJSON_GetObjectItemCaseSensitive(e, "params") : e;
        if (!cJSON_IsObject(params)) {
            snprintf(why, n, "M=%.20s: no parameter object", e->string);
            cJSON_Delete(root);
            return -1;
        }
        config_init(&t->cfg[i]);
        for (const cJSON *v = params->child; v; v = v->next)
            if (set_param(&t->cfg[i], v, why, n) != 0) {
                char tmp[400];
                snprintf(tmp, sizeof tmp, "M=%.20s: %.370s", e->string, why);
                snprintf(why, n, "%.399s", tmp);
                cJSON_Delete(root);
                return -1;
            }
        t->m[i++] = strtoll(e->string, NULL, 10);
    }
    t->n = i;
    cJSON_Delete(root);
    return 0;
}

/* ---- finding the file ---- */

static void moetune_name(char *out, size_t n, const mt_moe_key *k, const char *device, const char *backend)
{
    const char *dt = k->dtype && *k->dtype ? k->dtype : "bf16";
    snprintf(out, n, "E=%lld,N=%lld,K=%lld,topk=%lld,device_name=%s,backend=%s,dtype=%s.moetune.json",
             (long long)k->E, (long long)k->N, (long long)k->K, (long long)k->topk, device, backend, dt);
}

static int vllm_name(char *out, size_t n, const mt_moe_key *k, const char *device)
{
    mt_vllm_name nm;
    memset(&nm, 0, sizeof nm);
    nm.E = k->E;
    nm.N = k->N;
    snprintf(nm.device, sizeof nm.device, "%s", device);
    snprintf(nm.dtype, sizeof nm.dtype, "%s", k->dtype ? k->dtype : "");
    nm.block_n = k->block_n;
    nm.block_k = k->block_k;
    return mt_vllm_name_format(out, n, &nm);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Try one candidate path; on success t holds the result. */
static int try_file(mt_runtime *rt, const char *path, int moetune_format, table *t)
{
    char why[512];
    if (!exists(path)) return 0;
    if (parse_file(rt, path, moetune_format, t, why, sizeof why) != 0) {
        free(t->m);
        free(t->cfg);
        t->m = NULL;
        t->cfg = NULL;
        rt_log(rt, MT_LOG_WARN, "skipping '%s': %s", path, why);
        return 0;
    }
    if (t->stale && !rt->allow_stale) {
        rt_log(rt, MT_LOG_WARN, "skipping '%s': measured with another kernel source than this build's (stale); "
                                "re-tune, or allow stale configs", path);
        free(t->m);
        free(t->cfg);
        t->m = NULL;
        t->cfg = NULL;
        return 0;
    }
    t->file = strdup(path);
    return t->file != NULL;
}

/* A device's files in one folder: moetune's format (richer), then vLLM's;
 * the pulled cache also keeps a folder per device name. */
static int try_dir(mt_runtime *rt, const char *dir, const mt_moe_key *k, const char *device, table *t)
{
    char name[512], path[4096];
    const char *subs[2] = {"", device};
    for (int s = 0; s < 2; s++) {
        char base[2048];
        snprintf(base, sizeof base, "%s%s%s", dir, s ? "/" : "", subs[s]);
        if (k->K > 0 && k->topk > 0) {
            moetune_name(name, sizeof name, k, device, rt->backend);
            snprintf(path, sizeof path, "%s/%s", base, name);
            if (try_file(rt, path, 1, t)) return 1;
        }
        if (vllm_name(name, sizeof name, k, device) == MT_OK) {
            snprintf(path, sizeof path, "%s/%s", base, name);
            if (try_file(rt, path, 0, t)) return 1;
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Another device of our architecture that has a vLLM file for the key. */
static int try_same_arch(mt_runtime *rt, const mt_moe_key *k, table *t)
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
            mt_vllm_name nm;
            char why[128];
            if (mt_vllm_name_parse(de->d_name, &nm, why, sizeof why) != MT_OK) continue;
            if (nm.E != k->E || nm.N != k->N || strcmp(nm.dtype, k->dtype ? k->dtype : "") ||
                nm.block_n != k->block_n || nm.block_k != k->block_k || !strcmp(nm.device, rt->device))
                continue;
            const char *arch = mt_device_arch_of(nm.device);
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

static unsigned key_hash(const mt_moe_key *k)
{
    uint64_t h = 1469598103934665603ull;
    int64_t v[6] = {k->E, k->N, k->K, k->topk, k->block_n, k->block_k};
    for (int i = 0; i < 6; i++) h = (h ^ (uint64_t)v[i]) * 1099511628211ull;
    for (const char *p = k->dtype ? k->dtype : ""; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (unsigned)(h % NBUCKETS);
}

static int same_key(const table *t, const mt_moe_key *k)
{
    return t->E == k->E && t->N == k->N && t->K == k->K && t->topk == k->topk && t->block_n == k->block_n &&
           t->block_k == k->block_k && strcmp(t->dtype, k->dtype ? k->dtype : "") == 0;
}

/* The published table for k, or NULL (under mu). */
static table *find_table(mt_runtime *rt, const mt_moe_key *k, unsigned h)
{
    for (table *t = rt->buckets[h]; t; t = t->next)
        if (same_key(t, k)) return t;
    return NULL;
}

/* The table for k: from memory, else read from the sources with no lock
 * held and then published, unless another thread published it first. */
static int load(mt_runtime *rt, const mt_moe_key *k, table **out)
{
    unsigned h = key_hash(k);
    pthread_mutex_lock(&rt->mu);
    table *have = find_table(rt, k, h);
    pthread_mutex_unlock(&rt->mu);
    if (have) {
        *out = have;
        return MT_OK;
    }
    table *t = calloc(1, sizeof *t);
    if (!t) return MT_ENOMEM;
    t->E = k->E;
    t->N = k->N;
    t->K = k->K;
    t->topk = k->topk;
    t->block_n = k->block_n;
    t->block_k = k->block_k;
    snprintf(t->dtype, sizeof t->dtype, "%s", k->dtype ? k->dtype : "");
    int found = 0;
    for (int d = 0; d < NDIRS && !found; d++)
        if (rt->dirs[d] && try_dir(rt, rt->dirs[d], k, rt->device, t)) {
            t->source = dir_source[d];
            found = 1;
        }
    for (int a = 0; !found && rt->aliases[a]; a++)
        for (int d = 0; d < NDIRS && !found; d++)
            if (rt->dirs[d] && try_dir(rt, rt->dirs[d], k, rt->aliases[a], t)) {
                t->source = MT_SOURCE_ALIAS;
                found = 1;
                rt_log(rt, MT_LOG_WARN, "no config for %s: using '%s' of the alias %s, as asked", rt->device,
                       t->file, rt->aliases[a]);
            }
    if (!found && try_same_arch(rt, k, t)) {
        t->source = MT_SOURCE_SAME_ARCH;
        found = 1;
        rt_log(rt, MT_LOG_WARN, "no config for %s (E=%lld, N=%lld): using '%s' of another device of architecture %s",
               rt->device, (long long)k->E, (long long)k->N, t->file, mt_device_arch_of(rt->device));
    }
    if (!found) {
        t->source = MT_SOURCE_DEFAULT;
        rt_log(rt, MT_LOG_WARN, "no config for %s (E=%lld, N=%lld%s%s): using the default heuristic, which can be "
                                "several times slower; run 'moetune sweep' for this device",
               rt->device, (long long)k->E, (long long)k->N, t->dtype[0] ? ", dtype=" : "", t->dtype);
    } else {
        rt_log(rt, MT_LOG_INFO, "E=%lld N=%lld: %d batch sizes from '%s' (%s%s)", (long long)k->E, (long long)k->N,
               t->n, t->file, mt_config_source_str(t->source), t->foreign ? ", foreign" : "");
    }
    pthread_mutex_lock(&rt->mu);
    if ((have = find_table(rt, k, h))) {
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

static int check_key(const mt_moe_key *k)
{
    return k && k->E > 0 && k->E <= MAX_DIM && k->N > 0 && k->N <= MAX_DIM && k->K >= 0 && k->K <= MAX_DIM &&
           k->topk >= 0 && k->topk <= MAX_DIM && k->block_n >= 0 && k->block_n <= MAX_DIM && k->block_k >= 0 &&
           k->block_k <= MAX_DIM && (!k->dtype || strlen(k->dtype) < 32);
}

int mt_runtime_load_moe(mt_runtime *rt, const mt_moe_key *k)
{
    table *t;
    if (!rt || !check_key(k)) return MT_EINVAL;
    return load(rt, k, &t);
}

int mt_runtime_lookup_moe(mt_runtime *rt, const mt_moe_key *k, int64_t M, mt_moe_config *out)
{
    table *t;
    if (!rt || !check_key(k) || !out || M < 1 || M > MAX_BATCH) return MT_EINVAL;
    int rc = load(rt, k, &t);
    if (rc != MT_OK) return rc;
    if (t->source == MT_SOURCE_DEFAULT) {
        config_init(out);
        if (strcmp(rt->backend, "cpu") == 0) {
            mt_cpu_params p;
            mt_cpu_params_default(k->N, k->K > 0 ? k->K : k->N, k->topk > 0 ? k->topk : 1, M, rt->threads, &p);
            out->block_m = p.block_m;
            out->block_n = p.block_n;
            out->block_k = p.block_k;
            out->threads = p.threads;
        } else {
            int v[6];
            mt_vllm_default_config(M, k->E, strcmp(rt->backend, "hip") == 0, v);
            out->block_size_m = v[0];
            out->block_size_n = v[1];
            out->block_size_k = v[2];
            out->group_size_m = v[3];
            out->num_warps = v[4];
            out->num_stages = v[5];
        }
        out->m_key = M;
        out->source = MT_SOURCE_DEFAULT;
        return MT_OK;
    }
    int i = mt_nearest_m(t->m, t->n, M);
    *out = t->cfg[i];
    out->m_key = t->m[i];
    out->source = t->source;
    out->file = t->file;
    out->foreign = t->foreign;
    out->stale = t->stale;
    return MT_OK;
}

/* ---- attention decode ---- */

/* The file of a name, read once: the first source that has it. Read with
 * no lock held, then published unless another thread was first; the
 * entries never move or change once published. */
static struct attn_file *attn_file(mt_runtime *rt, const char *name)
{
    struct attn_file *a;
    pthread_mutex_lock(&rt->mu);
    for (a = rt->attn; a && strcmp(a->name, name); a = a->next) {}
    pthread_mutex_unlock(&rt->mu);
    if (a) return a;
    if (!(a = calloc(1, sizeof *a))) return NULL;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->source = MT_SOURCE_DEFAULT;
    for (int d = 0; d < NDIRS && !a->text; d++) {
        if (!rt->dirs[d]) continue;
        char path[4400], why[256], params[512];
        char *text;
        snprintf(path, sizeof path, "%s/%s", rt->dirs[d], name);
        struct stat sb;
        if (stat(path, &sb) != 0) continue; /* not in this source */
        /* a file that cannot answer is reported and passed over */
        if (read_config(path, MAX_FILE_BYTES, &text, NULL, why, sizeof why) != 0) {
            rt_log(rt, MT_LOG_WARN, "skipping '%s': %s", path, why);
            continue;
        }
        if (mt_attn_config_pick(text, 1, 1, params, sizeof params, NULL, NULL, why, sizeof why) != MT_OK) {
            rt_log(rt, MT_LOG_WARN, "skipping '%s': %s", path, why);
            free(text);
            continue;
        }
        if (!(a->path = strdup(path))) {
            free(text);
            break;
        }
        a->text = text;
        a->source = dir_source[d];
    }
    if (!a->text) rt_log(rt, MT_LOG_INFO, "no %s in the config dir, tuned, cache or bundled configs: the default config", name);
    pthread_mutex_lock(&rt->mu);
    struct attn_file *have;
    for (have = rt->attn; have && strcmp(have->name, name); have = have->next) {}
    if (have) {
        free(a->text);
        free(a->path);
        free(a);
        a = have;
    } else {
        a->next = rt->attn;
        rt->attn = a;
    }
    pthread_mutex_unlock(&rt->mu);
    return a;
}

/* An attention file of another device of this device's architecture for
 * the key nm (its device field is overwritten), the first by name in the
 * first folder that has one; NULL when none. */
static struct attn_file *attn_same_arch(mt_runtime *rt, mt_attn_name *nm)
{
    const char *ours = mt_device_arch_of(rt->device);
    if (!ours) return NULL;
    for (int d = 0; d < NDIRS; d++) {
        if (!rt->dirs[d]) continue;
        DIR *dir = opendir(rt->dirs[d]);
        if (!dir) continue;
        char best[512] = "";
        struct dirent *de;
        while ((de = readdir(dir))) {
            mt_attn_name o;
            char why[128];
            if (mt_attn_name_parse(de->d_name, &o, why, sizeof why) != MT_OK) continue;
            if (o.num_heads != nm->num_heads || o.num_kv_heads != nm->num_kv_heads || o.head_dim != nm->head_dim ||
                o.page_size != nm->page_size || strcmp(o.dtype, nm->dtype) || !strcmp(o.device, rt->device))
                continue;
            const char *arch = mt_device_arch_of(o.device);
            if (!arch || strcmp(arch, ours)) continue;
            /* the directory's order is arbitrary: the first by name */
            if (!best[0] || strcmp(de->d_name, best) < 0) snprintf(best, sizeof best, "%s", de->d_name);
        }
        closedir(dir);
        if (best[0]) {
            struct attn_file *b = attn_file(rt, best);
            if (b && b->text) return b;
        }
    }
    return NULL;
}

static int json_int(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

/* the defaults: a split of about 512 tokens of whole pages (on the CPU only
 * when the context is longer) */
static int64_t attn_default_partition(int64_t page_size)
{
    int64_t part = (512 / page_size) * page_size;
    return part < page_size ? page_size : part;
}

/* the CUDA kernel's plainest variant: two passes, FMA, 4 warps; it builds
 * for every head_dim and group the kernel takes, so it is the last resort */
static void attn_cuda_fma_default(int64_t page_size, mt_attn_config *c)
{
    c->partition = (int)attn_default_partition(page_size);
    c->num_warps = 4;
    c->mma = 0;
    c->stage = 0;
    c->query_split = 1;
    c->source = MT_SOURCE_DEFAULT;
}

/* the CUDA kernel's default where no file has the key, or a file's config
 * does not fit: the ring sized by the batch's streams where the kernel has
 * it (mt_cuda_attn_default), else the FMA variant */
static void attn_cuda_default(const mt_attn_key *k, int64_t batch, int64_t ctx, mt_attn_config *c)
{
    attn_cuda_fma_default(k->page_size, c);
    mt_cuda_attn_cfg r = {(int)k->head_dim, (int)k->page_size, (int)(k->num_heads / k->num_kv_heads), 0, 0, 0, 0, 0, 1};
    if (!mt_cuda_attn_default(&r, (long long)(batch * k->num_kv_heads), (long long)ctx)) return;
    c->partition = r.partition;
    c->num_warps = r.warps;
    c->mma = r.mma;
    c->stage = r.stage;
    c->query_split = r.qsplit;
}

int mt_runtime_lookup_attention(mt_runtime *rt, const mt_attn_key *k, int64_t batch, int64_t ctx, mt_attn_config *out)
{
    if (!rt || !k || !out || batch < 1 || batch > MAX_BATCH || ctx < 1 || ctx > MAX_BATCH || k->num_heads < 1 ||
        k->num_heads > MAX_DIM || k->num_kv_heads < 1 || k->num_heads % k->num_kv_heads || k->head_dim < 1 ||
        k->head_dim > MAX_DIM || k->page_size < 1 || k->page_size > MAX_DIM || (k->dtype && strlen(k->dtype) >= 32))
        return MT_EINVAL;
    mt_attn_name nm = {k->num_heads, k->num_kv_heads, k->head_dim, k->page_size, "", ""};
    snprintf(nm.device, sizeof nm.device, "%s", rt->device);
    snprintf(nm.dtype, sizeof nm.dtype, "%s", k->dtype ? k->dtype : "bf16");
    char name[512];
    if (mt_attn_name_format(name, sizeof name, &nm) != MT_OK) return MT_EINVAL;
    struct attn_file *a = attn_file(rt, name);
    int source = a ? a->source : MT_SOURCE_DEFAULT;
    /* the fallbacks the fused-MoE lookup has: the aliases the user named,
     * then another device of the same architecture, each said once */
    for (int i = 0; a && !a->text && rt->aliases[i]; i++) {
        snprintf(nm.device, sizeof nm.device, "%s", rt->aliases[i]);
        char an[512];
        if (mt_attn_name_format(an, sizeof an, &nm) != MT_OK) continue;
        struct attn_file *b = attn_file(rt, an);
        if (b && b->text) {
            a = b;
            source = MT_SOURCE_ALIAS;
            rt_log(rt, MT_LOG_WARN, "no %s: using '%s' of the alias %s, as asked", name, b->path, rt->aliases[i]);
        }
    }
    if (a && !a->text) {
        struct attn_file *b = attn_same_arch(rt, &nm);
        if (b) {
            a = b;
            source = MT_SOURCE_SAME_ARCH;
            rt_log(rt, MT_LOG_WARN, "no %s: using '%s' of another device of architecture %s", name, b->path,
                   mt_device_arch_of(rt->device));
        }
    }
    char params[512] = "", why[256];
    int rc = MT_OK;
    memset(out, 0, sizeof *out);
    out->partition = out->num_warps = out->pages_per_iter = out->threads = out->mma = out->stage = out->query_split = -1;
    if (!a) rc = MT_ENOMEM;
    else if (a->text)
        rc = mt_attn_config_pick(a->text, batch, ctx, params, sizeof params, &out->batch_key, &out->ctx_key, why, sizeof why);
    if (rc != MT_OK) return rc;
    if (a->text) {
        cJSON *p = cJSON_Parse(params);
        out->partition = json_int(p, "partition");
        out->num_warps = json_int(p, "num_warps");
        out->pages_per_iter = json_int(p, "pages_per_iter");
        out->threads = json_int(p, "threads");
        out->mma = json_int(p, "mma");
        out->stage = json_int(p, "stage");
        out->query_split = json_int(p, "query_split");
        cJSON_Delete(p);
        out->source = source;
        out->file = a->path;
        return MT_OK;
    }
    out->source = MT_SOURCE_DEFAULT;
    if (!strcmp(rt->backend, "cpu")) {
        int64_t part = attn_default_partition(k->page_size);
        out->partition = ctx > part ? (int)part : 0;
        out->pages_per_iter = 1;
        out->threads = rt->threads;
    } else {
        attn_cuda_default(k, batch, ctx, out);
    }
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

int mt_fused_moe_cpu(mt_runtime *rt, int dtype, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                     int renormalize, const void *x, const void *w1, const void *w2, const float *logits, float *out,
                     mt_moe_config *used)
{
    mt_moe_config cfg;
    mt_moe_key key = {E, N, K, topk, NULL, 0, 0};
    if (!rt || !x || !w1 || !w2 || !logits || !out || M < 1 || topk < 1 || topk > E || E > MAX_DIM ||
        M > MAX_BATCH / topk)
        return MT_EINVAL;
    if (dtype != MT_DTYPE_BF16 && dtype != MT_DTYPE_FP32) return MT_EUNSUPPORTED;
    key.dtype = dtype == MT_DTYPE_FP32 ? "fp32" : NULL;
    int rc = mt_runtime_lookup_moe(rt, &key, M, &cfg);
    if (rc != MT_OK) return rc;
    mt_moe_shape s = {E, N, K, topk, dtype, renormalize};
    mt_cpu_params p = {cfg.block_m, cfg.block_n, cfg.block_k, cfg.threads};
    if (p.block_m < 1 || p.block_n < 1 || p.block_k < 1 || p.threads < 1 ||
        mt_cpu_params_check(&s, &p, rt->threads) != MT_OK) {
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
    void *ws = malloc(mt_moe_cpu_workspace(&s, &p, M));
    if (!ids || !tw || !ws) rc = MT_ENOMEM;
    if (rc == MT_OK) rc = mt_moe_route(logits, M, E, topk, renormalize, ids, tw);
    if (rc == MT_OK) {
        pthread_mutex_lock(&rt->run_mu);
        rc = mt_moe_cpu_forward(rt->pool, &s, &p, M, x, w1, w2, ids, tw, ws, out);
        pthread_mutex_unlock(&rt->run_mu);
    }
    free(ids);
    free(tw);
    free(ws);
    if (rc == MT_OK && used) *used = cfg;
    return rc;
}

/* ---- the CUDA kernels with the looked-up config ---- */

/* The compiled variant for cfg, built on first use (under run_mu). */
static int cuda_variant(mt_runtime *rt, const int cfg[MT_CUDA_MOE_NCFG], int fp16, mt_cuda_moe **out, char *why, size_t n)
{
    for (int i = 0; i < rt->nvariants; i++)
        if (!memcmp(rt->variants[i].cfg, cfg, sizeof rt->variants[i].cfg) && rt->variants[i].fp16 == fp16) {
            *out = &rt->variants[i].v;
            return MT_OK;
        }
    struct variant *nv = realloc(rt->variants, (size_t)(rt->nvariants + 1) * sizeof *nv);
    if (!nv) return MT_ENOMEM;
    rt->variants = nv;
    if (rt->kcache[0]) mkdir(rt->kcache, 0755);
    int rc = mt_cuda_moe_build(rt->cuda, cfg, fp16, rt->kcache[0] ? rt->kcache : NULL, &nv[rt->nvariants].v, why, n);
    if (rc != MT_OK) return rc;
    memcpy(nv[rt->nvariants].cfg, cfg, sizeof nv[rt->nvariants].cfg);
    nv[rt->nvariants].fp16 = fp16;
    *out = &nv[rt->nvariants++].v;
    return MT_OK;
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

int mt_fused_moe_cuda(mt_runtime *rt, int dtype, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                      uint64_t x, uint64_t w1, uint64_t w2, uint64_t topk_ids, uint64_t topk_weights, uint64_t out,
                      void *stream, mt_moe_config *used)
{
    enum { CHUNK = 16384 }; /* tokens per pipeline run: bounds the workspace */
    mt_moe_config cfg;
    mt_moe_key key = {E, N, K, topk, NULL, 0, 0};
    char why[512];
    if (!rt || !x || !w1 || !w2 || !topk_ids || !topk_weights || !out || M < 1 || topk < 1 || topk > E ||
        N % 8 || K % 8 || E > 1024 || M > (1 << 30) / topk)
        return MT_EINVAL;
    if (dtype != MT_DTYPE_BF16 && dtype != MT_DTYPE_FP16) return MT_EUNSUPPORTED;
    if (strcmp(rt->backend, "cuda") != 0) {
        rt_log(rt, MT_LOG_ERROR, "mt_fused_moe_cuda needs a runtime opened with backend \"cuda\"");
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
    int c7[MT_CUDA_MOE_NCFG] = {cfg.block_size_m, cfg.block_size_n, cfg.block_size_k, cfg.group_size_m,
                                cfg.num_warps,      cfg.num_stages,   cfg.num_sm > 0 ? cfg.num_sm : 0, 0, gemv};
    mt_cuda_moe *v = NULL;
    int ok = c7[0] > 0 && c7[1] > 0 && c7[2] > 0 && c7[3] > 0 && c7[4] > 0 && c7[5] >= 2;
    if (ok) rc = cuda_variant(rt, c7, dtype == MT_DTYPE_FP16, &v, why, sizeof why);
    if (!ok || rc == MT_EUNSUPPORTED || rc == MT_EPARSE) {
        /* a config our kernels cannot run (a Triton file's tile that does
         * not fit, ROCm's num_stages 0): vLLM's default instead, said once */
        int d[6];
        mt_vllm_default_config(M, E, 0, d);
        rt_log(rt, MT_LOG_WARN, "config from '%s' (M key %lld) does not fit moetune's CUDA kernels (%s): using vLLM's "
                                "default for it",
               cfg.file ? cfg.file : "(default)", (long long)cfg.m_key, ok ? why : "incomplete parameters");
        memcpy(c7, d, sizeof d);
        c7[6] = c7[MT_CUDA_MOE_GEMV] = 0;
        cfg.block_size_m = d[0]; cfg.block_size_n = d[1]; cfg.block_size_k = d[2];
        cfg.group_size_m = d[3]; cfg.num_warps = d[4]; cfg.num_stages = d[5]; cfg.num_sm = 0; cfg.gemv = 0;
        rc = cuda_variant(rt, c7, dtype == MT_DTYPE_FP16, &v, why, sizeof why);
    }
    if (rc == MT_OK) {
        int chunk = M < CHUNK ? (int)M : CHUNK;
        rc = cuda_workspace(rt, mt_cuda_moe_workspace(v, chunk, (int)E, (int)N, (int)K, (int)topk));
        if (rc == MT_OK) {
            mt_cuda_moe_args a = {x, w1, w2, topk_ids, topk_weights, out, rt->ws,
                                  (int)M, (int)E, (int)N, (int)K, (int)topk, chunk};
            rc = mt_cuda_moe_enqueue(rt->cuda, v, &a, stream);
        }
        if (rc != MT_OK) snprintf(why, sizeof why, "%s", mt_cuda_errmsg(rt->cuda));
    }
    rc = cuda_done(rt, rc, "fused MoE", why);
    if (rc == MT_OK && used) *used = cfg;
    return rc;
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

/* The compiled attention variant for cfg, built on first use (under run_mu). */
static int cuda_attn_variant(mt_runtime *rt, const mt_cuda_attn_cfg *cfg, mt_cuda_attn **out, char *why, size_t n)
{
    for (int i = 0; i < rt->navariants; i++)
        if (!memcmp(&rt->avariants[i].cfg, cfg, sizeof *cfg)) {
            *out = &rt->avariants[i].v;
            return MT_OK;
        }
    struct attn_variant *nv = realloc(rt->avariants, (size_t)(rt->navariants + 1) * sizeof *nv);
    if (!nv) return MT_ENOMEM;
    rt->avariants = nv;
    if (rt->kcache[0]) mkdir(rt->kcache, 0755);
    int rc = mt_cuda_attn_build(rt->cuda, cfg, rt->kcache[0] ? rt->kcache : NULL, &nv[rt->navariants].v, why, n);
    if (rc != MT_OK) return rc;
    nv[rt->navariants].cfg = *cfg;
    *out = &nv[rt->navariants++].v;
    return MT_OK;
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
    mt_cuda_attn_cfg c = cuda_attn_cfg_of(&cfg, D, ps, H / Hkv, dtype == MT_DTYPE_FP16);
    cfg.mma = c.mma, cfg.stage = c.stage, cfg.query_split = c.qsplit;
    mt_cuda_attn *v = NULL;
    int ok = c.partition > 0 && c.warps > 0;
    if (ok) rc = cuda_attn_variant(rt, &c, &v, why, sizeof why);
    /* a config the CUDA kernel cannot take (a CPU file's, or one for a GPU
     * with more shared memory): the kernel's default, said; where the
     * default's ring does not build either (too little shared memory, or no
     * bf16 MMA), the FMA variant. A fallback that is the variant which just
     * failed (a file's config equal to the default, or a default that is
     * already the FMA one) is not built again. */
    for (int step = cfg.source == MT_SOURCE_DEFAULT;
         step < 2 && (!ok || rc == MT_EINVAL || rc == MT_EUNSUPPORTED || rc == MT_EPARSE); step++) {
        mt_attn_config d = cfg;
        if (step)
            attn_cuda_fma_default(ps, &d);
        else
            attn_cuda_default(&key, B, max_context, &d);
        mt_cuda_attn_cfg dc = cuda_attn_cfg_of(&d, D, ps, H / Hkv, dtype == MT_DTYPE_FP16);
        if (ok && !memcmp(&dc, &c, sizeof dc)) continue;
        rt_log(rt, MT_LOG_WARN, "config from '%s' does not fit moetune's CUDA attention kernel (%s): using its %sdefault",
               cfg.file ? cfg.file : "(default)", ok ? why : "incomplete parameters", step ? "FMA " : "");
        cfg = d;
        cfg.file = NULL;
        c = dc;
        ok = 1;
        rc = cuda_attn_variant(rt, &c, &v, why, sizeof why);
    }
    if (rc == MT_OK) {
        rc = cuda_workspace(rt, mt_cuda_attn_workspace(v, (int)B, (int)H, (int)max_context));
        if (rc == MT_OK) {
            mt_cuda_attn_args a = {q, kc, vc, bt, lens, out, rt->ws, (int)B, (int)H, (int)Hkv, (int)max_pages,
                                   (int)max_context, scale};
            rc = mt_cuda_attn_enqueue(rt->cuda, v, &a, stream);
        }
        if (rc != MT_OK) snprintf(why, sizeof why, "%s", mt_cuda_errmsg(rt->cuda));
    }
    rc = cuda_done(rt, rc, "attention decode", why);
    if (rc == MT_OK && used) *used = cfg;
    return rc;
}
