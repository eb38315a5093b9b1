#include "device.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cuda_rt.h"
#include "hip_rt.h"
#include "moetune/moetune.h"

int mt_device_spec_parse(const char *s, mt_device_spec *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(s, "auto") == 0) {
        out->auto_pick = 1;
        return MT_OK;
    }
    if (strcmp(s, "cpu") == 0) return MT_OK;
    const char *rest = NULL;
    if (strncmp(s, "cuda", 4) == 0) { out->kind = MT_BACKEND_CUDA; rest = s + 4; }
    else if (strncmp(s, "hip", 3) == 0) { out->kind = MT_BACKEND_HIP; rest = s + 3; }
    else return MT_EPARSE;
    if (!*rest) return MT_OK;
    if (*rest != ':' || !rest[1]) return MT_EPARSE;
    char *end;
    long v = strtol(rest + 1, &end, 10);
    if (*end || v < 0 || v > 1024) return MT_EPARSE;
    out->index = (int)v;
    return MT_OK;
}

int mt_device_cpu_info(mt_device_info *d)
{
    struct utsname u;
    memset(d, 0, sizeof *d);
    snprintf(d->backend, sizeof d->backend, "cpu");
    /* the runtime names the CPU the same way: lookups find what was tuned */
    mt_device_cpu_name(d->name, sizeof d->name, d->raw_name, sizeof d->raw_name);
    if (uname(&u) == 0) {
        snprintf(d->arch, sizeof d->arch, "%.31s", u.machine);
        snprintf(d->driver, sizeof d->driver, "linux %.56s", u.release);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    d->cores = n > 0 ? (int)n : 1;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    d->memory_bytes = pages > 0 && psz > 0 ? (int64_t)pages * psz : 0;
#ifdef __VERSION__
    snprintf(d->toolkit, sizeof d->toolkit, "cc %s", __VERSION__);
#endif
    return MT_OK;
}

/* The few driver-API entry points discovery needs, loaded from libcuda so
 * that the binary neither links nor requires it. */
typedef int (*cu_init_t)(unsigned);
typedef int (*cu_count_t)(int *);
typedef int (*cu_get_t)(int *, int);
typedef int (*cu_name_t)(char *, int, int);
typedef int (*cu_mem_t)(size_t *, int);
typedef int (*cu_attr_t)(int *, int, int);
typedef int (*cu_ver_t)(int *);

static void *cuda_lib(char *why, size_t n)
{
    static void *h;
    static int tried;
    if (!tried) {
        tried = 1;
        h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    }
    if (!h) snprintf(why, n, "no CUDA device: the NVIDIA driver library libcuda.so.1 is not installed");
    return h;
}

int mt_device_cuda_count(char *why, size_t n)
{
    void *h = cuda_lib(why, n);
    int count = 0;
    if (!h) return 0;
    cu_init_t init = (cu_init_t)dlsym(h, "cuInit");
    cu_count_t cnt = (cu_count_t)dlsym(h, "cuDeviceGetCount");
    if (!init || !cnt) {
        snprintf(why, n, "no CUDA device: libcuda.so.1 lacks cuInit");
        return 0;
    }
    int rc = init(0);
    if (rc != 0) {
        snprintf(why, n, "no CUDA device: the driver failed to initialise (CUresult %d)", rc);
        return 0;
    }
    if (cnt(&count) != 0 || count == 0) {
        snprintf(why, n, "no CUDA device: the driver sees none");
        return 0;
    }
    return count;
}

int mt_device_cuda_info(int idx, mt_device_info *d, char *why, size_t n)
{
    void *h = cuda_lib(why, n);
    int count = mt_device_cuda_count(why, n);
    if (!h || count == 0) return MT_ENODEV;
    if (idx < 0 || idx >= count) {
        snprintf(why, n, "no CUDA device %d: the driver sees %d", idx, count);
        return MT_ENODEV;
    }
    cu_get_t get = (cu_get_t)dlsym(h, "cuDeviceGet");
    cu_name_t name = (cu_name_t)dlsym(h, "cuDeviceGetName");
    cu_mem_t mem = (cu_mem_t)dlsym(h, "cuDeviceTotalMem_v2");
    cu_attr_t attr = (cu_attr_t)dlsym(h, "cuDeviceGetAttribute");
    cu_ver_t ver = (cu_ver_t)dlsym(h, "cuDriverGetVersion");
    int dev = 0, major = 0, minor = 0, sms = 0, dv = 0;
    size_t bytes = 0;
    if (!get || !name || !mem || !attr || !ver || get(&dev, idx) != 0) {
        snprintf(why, n, "CUDA device %d: the driver API is incomplete", idx);
        return MT_ENODEV;
    }
    memset(d, 0, sizeof *d);
    snprintf(d->backend, sizeof d->backend, "cuda");
    name(d->raw_name, (int)sizeof d->raw_name, dev);
    mt_device_vllm_name(d->name, sizeof d->name, d->raw_name);
    attr(&major, 75, dev); /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR */
    attr(&minor, 76, dev); /* ..._MINOR */
    attr(&sms, 16, dev);   /* CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT */
    attr(&d->smem_per_block, 97, dev); /* ..._MAX_SHARED_MEMORY_PER_BLOCK_OPTIN */
    mem(&bytes, dev);
    ver(&dv);
    /* Hopper's arch-specific instructions need the 'a' target */
    snprintf(d->arch, sizeof d->arch, "sm_%d%d%s", major, minor, major == 9 ? "a" : "");
    d->cores = sms;
    d->memory_bytes = (int64_t)bytes;
    snprintf(d->driver, sizeof d->driver, "cuda driver %d.%d", dv / 1000, (dv % 1000) / 10);
    return MT_OK;
}

int mt_backend_available(int kind)
{
    /* CUDA and HIP: the kernels travel inside the binary and the worker
     * loads the driver (libcuda, libamdhip64) and its compiler (NVRTC,
     * hipRTC). HIP's path has never run on an AMD GPU (issue 10). */
    return kind == MT_BACKEND_CPU || kind == MT_BACKEND_CUDA || kind == MT_BACKEND_HIP;
}

const char *mt_backend_name(int kind)
{
    return kind == MT_BACKEND_CUDA ? "cuda" : kind == MT_BACKEND_HIP ? "hip" : "cpu";
}

int mt_device_resolve(const mt_device_spec *spec, mt_device_spec *out, char *note, size_t n)
{
    char why[256] = "";
    *out = *spec;
    note[0] = 0;
    if (!spec->auto_pick) {
        if (spec->kind == MT_BACKEND_CPU) return MT_OK;
        if (spec->kind == MT_BACKEND_CUDA) {
            mt_device_info d;
            if (mt_device_cuda_info(spec->index, &d, why, sizeof why) != MT_OK) {
                snprintf(note, n, "%s", why);
                return MT_ENODEV;
            }
        }
        if (spec->kind == MT_BACKEND_HIP) {
            /* AMD GPUs as the amdgpu driver lists them; the worker opens
             * one through libamdhip64 (never yet run on one: issue 10) */
            mt_hip_kfd_gpu g;
            if (mt_hip_kfd_gpu_at(spec->index, &g, why, sizeof why) != MT_OK) {
                snprintf(note, n, "%s", why);
                return MT_ENODEV;
            }
        }
        if (!mt_backend_available(spec->kind)) {
            snprintf(note, n, "the %s backend's kernels are not part of this build yet; use --device cpu",
                     mt_backend_name(spec->kind));
            return MT_EUNSUPPORTED;
        }
        return MT_OK;
    }
    out->auto_pick = 0;
    out->kind = MT_BACKEND_CPU;
    out->index = 0;
    int cuda = mt_device_cuda_count(why, sizeof why);
    if (cuda > 0 && mt_backend_available(MT_BACKEND_CUDA)) {
        out->kind = MT_BACKEND_CUDA;
        snprintf(note, n, "auto: picked cuda:0 of %d CUDA device(s)", cuda);
    } else if (cuda > 0) {
        snprintf(note, n, "auto: %d CUDA device(s) found, but this build has no CUDA kernels yet: tuning the CPU", cuda);
    } else {
        /* no NVIDIA GPU: an AMD one the amdgpu driver lists and the HIP
         * runtime can use, else the CPU */
        mt_hip_kfd_gpu g[16];
        char hwhy[256] = "";
        int ng = mt_hip_kfd_gpus(NULL, g, 16, hwhy, sizeof hwhy);
        int nh = ng > 0 ? mt_hip_device_count(hwhy, sizeof hwhy) : 0;
        if (ng > 0 && nh > 0) {
            out->kind = MT_BACKEND_HIP;
            snprintf(note, n, "auto: picked hip:0 (%s) of %d AMD GPU(s); the HIP backend has never run on AMD hardware "
                              "before, check its results", g[0].vllm_name, ng);
        } else if (ng > 0) {
            snprintf(note, n, "auto: %s; the amdgpu driver lists %d AMD GPU(s) but %s; tuning the CPU backend", why, ng,
                     nh < 0 ? "libamdhip64 cannot be loaded" : "the HIP runtime sees none");
        } else {
            snprintf(note, n, "auto: %s; tuning the CPU backend", why);
        }
    }
    return MT_OK;
}

