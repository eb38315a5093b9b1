/* The HIP backend's host side: libamdhip64 and hipRTC loaded at run time,
 * and AMD GPUs from the KFD topology (hip_rt.h). */
#include "hip_rt.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moetune/moetune.h"

/* hipRTC's C API, the few entries we use (hiprtc.h of ROCm 5 and 6 agree
 * on these) */
typedef void *hiprtcProgram;
static struct {
    void *lib;
    char why[256];
    int (*create)(hiprtcProgram *, const char *, const char *, int, const char *const *, const char *const *);
    int (*compile)(hiprtcProgram, int, const char *const *);
    int (*log_size)(hiprtcProgram, size_t *);
    int (*get_log)(hiprtcProgram, char *);
    int (*code_size)(hiprtcProgram, size_t *);
    int (*get_code)(hiprtcProgram, char *);
    int (*destroy)(hiprtcProgram *);
    const char *(*rtc_err)(int);
    int (*version)(int *, int *);
} H;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    static const char *names[] = {"libamdhip64.so.6", "libamdhip64.so.5", "libamdhip64.so", NULL};
    for (const char **n = names; *n && !H.lib; n++) H.lib = dlopen(*n, RTLD_NOW | RTLD_LOCAL);
    if (!H.lib) {
        snprintf(H.why, sizeof H.why, "libamdhip64 not found (install ROCm HIP; on Debian: apt-get install libamdhip64-5)");
        return;
    }
    struct { void **fn; const char *name; } syms[] = {
        {(void **)&H.create, "hiprtcCreateProgram"}, {(void **)&H.compile, "hiprtcCompileProgram"},
        {(void **)&H.log_size, "hiprtcGetProgramLogSize"}, {(void **)&H.get_log, "hiprtcGetProgramLog"},
        {(void **)&H.code_size, "hiprtcGetCodeSize"}, {(void **)&H.get_code, "hiprtcGetCode"},
        {(void **)&H.destroy, "hiprtcDestroyProgram"}, {(void **)&H.rtc_err, "hiprtcGetErrorString"},
        {(void **)&H.version, "hiprtcVersion"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (!(*syms[i].fn = dlsym(H.lib, syms[i].name))) {
            snprintf(H.why, sizeof H.why, "libamdhip64 lacks %s (ROCm too old?)", syms[i].name);
            dlclose(H.lib);
            H.lib = NULL;
            return;
        }
}

int mt_hiprtc_available(char *err, size_t err_len)
{
    pthread_once(&once, load);
    if (H.lib) return MT_OK;
    if (err && err_len) snprintf(err, err_len, "%s", H.why);
    return MT_EUNSUPPORTED;
}

int mt_hiprtc_compile(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts, char **code,
                      size_t *len, char **log, char *err, size_t err_len)
{
    *code = NULL;
    *len = 0;
    if (log) *log = NULL;
    if (mt_hiprtc_available(err, err_len) != MT_OK) return MT_EUNSUPPORTED;
    if (nopts < 0 || nopts > 60 || !arch || strlen(arch) > 32) return MT_EINVAL;
    hiprtcProgram p = NULL;
    int rc = H.create(&p, src->text, src->name, src->nheaders, src->headers, src->header_names);
    if (rc) {
        snprintf(err, err_len, "hiprtcCreateProgram: %s", H.rtc_err(rc));
        return MT_EUNSUPPORTED;
    }
    char archopt[48];
    snprintf(archopt, sizeof archopt, "--offload-arch=%s", arch);
    const char *all[64] = {archopt, "-O3", "-std=c++17"};
    int n = 3;
    for (int i = 0; i < nopts; i++) all[n++] = opts[i];
    int crc = H.compile(p, n, all);
    size_t ls = 0;
    if (log && H.log_size(p, &ls) == 0 && ls > 1 && (*log = malloc(ls + 1))) {
        if (H.get_log(p, *log)) (*log)[0] = 0;
        (*log)[ls] = 0;
    }
    int out = MT_OK;
    if (crc) {
        snprintf(err, err_len, "hipRTC: %s", H.rtc_err(crc));
        out = MT_EPARSE;
    } else if (H.code_size(p, len) || *len == 0 || !(*code = malloc(*len)) || H.get_code(p, *code)) {
        snprintf(err, err_len, "hipRTC produced no code object");
        free(*code);
        *code = NULL;
        *len = 0;
        out = MT_EUNSUPPORTED;
    }
    H.destroy(&p);
    return out;
}

int mt_hiprtc_tag(char *tag, size_t n, char *err, size_t err_len)
{
    int major = 0, minor = 0, rc;
    if ((rc = mt_hiprtc_available(err, err_len)) != MT_OK) return rc;
    H.version(&major, &minor);
    snprintf(tag, n, "hiprtc=%d.%d", major, minor);
    return MT_OK;
}

int mt_hiprtc_cache_fill(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts,
                         const char *cache_dir, int *hit, char **log, char *err, size_t err_len)
{
    int rc;
    char tag[32];
    *hit = 0;
    if (log) *log = NULL;
    if ((rc = mt_hiprtc_tag(tag, sizeof tag, err, err_len)) != MT_OK) return rc;
    return mt_kcache_fill("hsaco", src, arch, tag, mt_hiprtc_compile, opts, nopts, cache_dir, hit, log, err, err_len);
}

int mt_hip_kfd_gpu_at(int index, mt_hip_kfd_gpu *out, char *why, size_t why_len)
{
    mt_hip_kfd_gpu g[16];
    int ng = mt_hip_kfd_gpus(NULL, g, 16, why, why_len);
    if (index < 0 || index >= ng) {
        if (ng > 0) snprintf(why, why_len, "no AMD GPU hip:%d: the amdgpu driver lists %d", index, ng);
        return MT_ENODEV;
    }
    *out = g[index];
    return MT_OK;
}

/* one "key value" line of a KFD properties file */
static int prop(const char *text, const char *key, unsigned long long *v)
{
    size_t k = strlen(key);
    for (const char *l = text; *l;) {
        if (!strncmp(l, key, k) && l[k] == ' ') {
            *v = strtoull(l + k + 1, NULL, 10);
            return 1;
        }
        const char *nl = strchr(l, '\n');
        if (!nl) break;
        l = nl + 1;
    }
    return 0;
}

static int slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = 0;
    fclose(f);
    return 1;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int mt_hip_kfd_gpus(const char *root, mt_hip_kfd_gpu *out, int max, char *why, size_t why_len)
{
    char dir[512], path[700], text[4096], bank[1024];
    if (!root) root = getenv("MOETUNE_SYSFS_ROOT");
    snprintf(dir, sizeof dir, "%s/sys/class/kfd/kfd/topology/nodes", root && *root ? root : "");
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, why_len, "no AMD GPU: the amdgpu driver's KFD topology is absent (%s)", dir);
        return 0;
    }
    int nodes[256], nn = 0;
    for (struct dirent *e; (e = readdir(d)) && nn < 256;)
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') nodes[nn++] = atoi(e->d_name);
    closedir(d);
    qsort(nodes, (size_t)nn, sizeof nodes[0], cmp_int); /* HIP numbers the GPUs in node order */
    int n = 0;
    for (int i = 0; i < nn && n < max; i++) {
        snprintf(path, sizeof path, "%s/%d/properties", dir, nodes[i]);
        unsigned long long simds = 0, per_cu = 0, gfx = 0, dev = 0, minor = 0, vendor = 0;
        if (!slurp(path, text, sizeof text) || !prop(text, "simd_count", &simds) || simds == 0) continue; /* a CPU */
        prop(text, "vendor_id", &vendor);
        if (vendor && vendor != 0x1002) continue;
        mt_hip_kfd_gpu *g = &out[n];
        memset(g, 0, sizeof *g);
        g->node = nodes[i];
        prop(text, "simd_per_cu", &per_cu);
        prop(text, "gfx_target_version", &gfx);
        prop(text, "device_id", &dev);
        g->device_id = (unsigned)dev;
        g->compute_units = (int)(simds / (per_cu ? per_cu : 4));
        /* gfx_target_version is major*10000 + minor*100 + stepping: 90010 is gfx90a, 90402 gfx942 */
        snprintf(g->arch, sizeof g->arch, "gfx%u%x%x", (unsigned)(gfx / 10000 % 1000), (unsigned)(gfx / 100 % 100),
                 (unsigned)(gfx % 100));
        for (int b = 0; b < 8; b++) {
            unsigned long long sz = 0;
            snprintf(path, sizeof path, "%s/%d/mem_banks/%d/properties", dir, nodes[i], b);
            if (!slurp(path, bank, sizeof bank)) break;
            if (prop(bank, "size_in_bytes", &sz)) g->memory_bytes += sz;
        }
        if (prop(text, "drm_render_minor", &minor)) {
            snprintf(path, sizeof path, "%s/sys/class/drm/renderD%llu/device/product_name", root && *root ? root : "",
                     minor);
            if (slurp(path, g->market, sizeof g->market)) g->market[strcspn(g->market, "\n")] = 0;
        }
        if (mt_device_rocm_vllm_name(g->vllm_name, sizeof g->vllm_name, g->device_id, g->market) != MT_OK)
            snprintf(g->vllm_name, sizeof g->vllm_name, "AMD_%s", g->arch); /* no id in vLLM's map, no market name */
        n++;
    }
    if (n == 0) snprintf(why, why_len, "no AMD GPU: no KFD node under %s has SIMDs", dir);
    return n;
}
