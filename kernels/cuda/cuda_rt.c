#include "cuda_rt.h"
#include "switches.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hip_rt.h"
#include "moetune/moetune.h"

/* The handful of driver types we use, declared here so that the host code
 * builds without the CUDA toolkit's headers. Values are from cuda.h. */
typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream, *CUevent, *CUgraph, *CUgraphExec;
typedef unsigned long long CUdeviceptr;
enum {
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
    CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
    CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3,
    CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CU_STREAM_NON_BLOCKING = 1,
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
};
/* cuLaunchKernelEx's configuration, for programmatic dependent launch */
typedef struct {
    int id;
    char pad[4];
    union {
        char pad[64];
        int programmatic_stream_serialization;
    } value;
} CUlaunchAttribute;
typedef struct {
    unsigned grid_x, grid_y, grid_z, block_x, block_y, block_z, smem;
    CUstream stream;
    CUlaunchAttribute *attrs;
    unsigned nattrs;
} CUlaunchConfig;
enum { CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6 };
typedef int nvrtcResult;
typedef void *nvrtcProgram;

/* One table of entry points, filled by name. The versioned names are the
 * ABI names cuda.h maps the plain ones to. */
#define DRIVER_FUNCS(X)                                                                                       \
    X(cuInit, CUresult, (unsigned))                                                                         \
    X(cuDriverGetVersion, CUresult, (int *))                                                                \
    X(cuGetErrorString, CUresult, (CUresult, const char **))                                                \
    X(cuDeviceGet, CUresult, (CUdevice *, int))                                                             \
    X(cuDeviceGetCount, CUresult, (int *))                                                                  \
    X(cuDeviceGetName, CUresult, (char *, int, CUdevice))                                                   \
    X(cuDeviceGetAttribute, CUresult, (int *, int, CUdevice))                                               \
    X(cuDeviceTotalMem_v2, CUresult, (size_t *, CUdevice))                                                  \
    X(cuDevicePrimaryCtxRetain, CUresult, (CUcontext *, CUdevice))                                          \
    X(cuDevicePrimaryCtxRelease_v2, CUresult, (CUdevice))                                                   \
    X(cuCtxSetCurrent, CUresult, (CUcontext))                                                               \
    X(cuMemAlloc_v2, CUresult, (CUdeviceptr *, size_t))                                                     \
    X(cuMemFree_v2, CUresult, (CUdeviceptr))                                                                \
    X(cuMemcpyHtoD_v2, CUresult, (CUdeviceptr, const void *, size_t))                                       \
    X(cuMemcpyDtoH_v2, CUresult, (void *, CUdeviceptr, size_t))                                             \
    X(cuMemcpyDtoDAsync_v2, CUresult, (CUdeviceptr, CUdeviceptr, size_t, CUstream))                         \
    X(cuMemsetD8Async, CUresult, (CUdeviceptr, unsigned char, size_t, CUstream))                            \
    X(cuModuleLoadData, CUresult, (CUmodule *, const void *))                                               \
    X(cuModuleUnload, CUresult, (CUmodule))                                                                 \
    X(cuModuleGetFunction, CUresult, (CUfunction *, CUmodule, const char *))                                \
    X(cuFuncGetAttribute, CUresult, (int *, int, CUfunction))                                               \
    X(cuFuncSetAttribute, CUresult, (CUfunction, int, int))                                                 \
    X(cuLaunchKernel, CUresult, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,    \
                                   unsigned, CUstream, void **, void **))                                     \
    X(cuStreamCreate, CUresult, (CUstream *, unsigned))                                                     \
    X(cuStreamDestroy_v2, CUresult, (CUstream))                                                             \
    X(cuStreamSynchronize, CUresult, (CUstream))                                                            \
    X(cuStreamBeginCapture_v2, CUresult, (CUstream, int))                                                   \
    X(cuStreamEndCapture, CUresult, (CUstream, CUgraph *))                                                  \
    X(cuGraphInstantiateWithFlags, CUresult, (CUgraphExec *, CUgraph, unsigned long long))                  \
    X(cuGraphLaunch, CUresult, (CUgraphExec, CUstream))                                                     \
    X(cuGraphExecDestroy, CUresult, (CUgraphExec))                                                          \
    X(cuGraphDestroy, CUresult, (CUgraph))                                                                  \
    X(cuEventCreate, CUresult, (CUevent *, unsigned))                                                       \
    X(cuEventRecord, CUresult, (CUevent, CUstream))                                                         \
    X(cuEventSynchronize, CUresult, (CUevent))                                                              \
    X(cuEventElapsedTime, CUresult, (float *, CUevent, CUevent))                                            \
    X(cuEventDestroy_v2, CUresult, (CUevent))

#define NVRTC_FUNCS(X)                                                                                        \
    X(nvrtcVersion, nvrtcResult, (int *, int *))                                                            \
    X(nvrtcGetErrorString, const char *, (nvrtcResult))                                                    \
    X(nvrtcCreateProgram, nvrtcResult, (nvrtcProgram *, const char *, const char *, int, const char *const *, \
                                          const char *const *))                                               \
    X(nvrtcCompileProgram, nvrtcResult, (nvrtcProgram, int, const char *const *))                           \
    X(nvrtcGetProgramLogSize, nvrtcResult, (nvrtcProgram, size_t *))                                        \
    X(nvrtcGetProgramLog, nvrtcResult, (nvrtcProgram, char *))                                              \
    X(nvrtcGetCUBINSize, nvrtcResult, (nvrtcProgram, size_t *))                                             \
    X(nvrtcGetCUBIN, nvrtcResult, (nvrtcProgram, char *))                                                   \
    X(nvrtcDestroyProgram, nvrtcResult, (nvrtcProgram *))

#define DECLARE(name, ret, args) ret(*name) args;
/* NVRTC on its own: compiling needs no GPU, so CI can compile variants */
struct nvrtc {
    void *lib;
    NVRTC_FUNCS(DECLARE)
};

struct mt_cuda {
    void *libcuda, *libcublas, *libcublaslt;
    DRIVER_FUNCS(DECLARE)
    /* an AMD GPU through libamdhip64 (mt_hip_open): the same table, filled
     * with HIP's driver-style names; kernels compiled by hipRTC */
    int hip;
    const char *(*hipGetErrorString)(CUresult);
    /* optional (CUDA 11.8 and later, used from sm_90 on): a launch that may
     * begin before the stream's previous kernel ends */
    CUresult (*cuLaunchKernelEx)(const CUlaunchConfig *, CUfunction, void **, void **);
    int pdl; /* launches may overlap (mt_cuda_pdl_on), decided at open */
    struct nvrtc nv;
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    CUevent ev0, ev1;
    mt_cuda_props props;
    char err[512];
};

struct mt_cuda_module {
    CUmodule mod;
};

const char *mt_cuda_errmsg(const mt_cuda *c) { return c ? c->err : "no CUDA handle"; }
const mt_cuda_props *mt_cuda_get_props(const mt_cuda *c) { return &c->props; }
void *mt_cuda_stream(const mt_cuda *c) { return c->stream; }

static int cu_fail(mt_cuda *c, const char *what, CUresult r)
{
    const char *s = NULL;
    if (c->cuGetErrorString) c->cuGetErrorString(r, &s);
    if (c->hipGetErrorString) s = c->hipGetErrorString(r);
    snprintf(c->err, sizeof c->err, "%s: %s error %d (%s)", what, c->hip ? "HIP" : "CUDA", r, s ? s : "unknown");
    return r == 2 ? MT_ENOMEM : MT_EIO;
}
#define CU(c, call, what)                                \
    do {                                                 \
        CUresult r_ = (call);                            \
        if (r_ != 0) return cu_fail((c), (what), r_);    \
    } while (0)

static void *open_first(const char *const *names)
{
    for (; *names; names++) {
        void *h = dlopen(*names, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
    }
    return NULL;
}

static int load_nvrtc(struct nvrtc *nv, char *err, size_t n)
{
    /* NVRTC is versioned with the toolkit; the driver may be newer */
    static const char *const nvrtc_names[] = {"libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.13",
                                              "libnvrtc.so.12", "/usr/local/cuda/lib64/libnvrtc.so.12",
                                              "libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so", NULL};
    nv->lib = open_first(nvrtc_names);
    if (!nv->lib) {
        snprintf(err, n, "NVRTC (libnvrtc.so.13 or .12) was not found: install the CUDA toolkit or add its lib64 "
                         "folder to LD_LIBRARY_PATH");
        return MT_EUNSUPPORTED;
    }
#define LOAD_NVRTC(name, ret, args)                                       \
    nv->name = (ret(*) args)dlsym(nv->lib, #name);                        \
    if (!nv->name) {                                                      \
        snprintf(err, n, "the NVRTC library lacks %s", #name);            \
        return MT_EUNSUPPORTED;                                           \
    }
    NVRTC_FUNCS(LOAD_NVRTC)
    return MT_OK;
}

/* NVRTC is loaded once and stays loaded: unloading it would strand the
 * memory its static objects hold (and LeakSanitizer rightly reports that). */
static struct nvrtc shared_nv;
static int shared_nv_rc;
static char shared_nv_err[256];
static pthread_once_t shared_nv_once = PTHREAD_ONCE_INIT;
static void load_shared_nvrtc(void) { shared_nv_rc = load_nvrtc(&shared_nv, shared_nv_err, sizeof shared_nv_err); }

static int load_symbols(mt_cuda *c, char *err, size_t n)
{
    static const char *const cuda_names[] = {"libcuda.so.1", "libcuda.so", NULL};
    c->libcuda = open_first(cuda_names);
    if (!c->libcuda) {
        snprintf(err, n, "no CUDA device: the NVIDIA driver library libcuda.so.1 is not installed");
        return MT_ENODEV;
    }
#define LOAD_CUDA(name, ret, args)                                                               \
    c->name = (ret(*) args)dlsym(c->libcuda, #name);                                               \
    if (!c->name && !strcmp(#name, "cuEventElapsedTime"))                                   \
        c->name = (ret(*) args)dlsym(c->libcuda, "cuEventElapsedTime_v2");                         \
    if (!c->name) {                                                                         \
        snprintf(err, n, "the NVIDIA driver library lacks %s: the driver is too old", #name); \
        return MT_EUNSUPPORTED;                                                             \
    }
    DRIVER_FUNCS(LOAD_CUDA)
    c->cuLaunchKernelEx = (CUresult(*)(const CUlaunchConfig *, CUfunction, void **, void **))dlsym(c->libcuda,
                                                                                                  "cuLaunchKernelEx");
    pthread_once(&shared_nv_once, load_shared_nvrtc);
    if (shared_nv_rc != MT_OK) {
        snprintf(err, n, "%s", shared_nv_err);
        return shared_nv_rc;
    }
    c->nv = shared_nv;
    return MT_OK;
}

/* Device `ordinal` of the loaded driver (CUDA's or HIP's): its primary
 * context, a stream and two events. what: "CUDA device" or "AMD GPU". */
/* How many devices the loaded driver sees; 0 with err saying so. */
static int device_count(mt_cuda *c, const char *what, char *err, size_t n)
{
    int count = 0;
    if (c->cuInit(0) != 0 || c->cuDeviceGetCount(&count) != 0 || count <= 0) {
        snprintf(err, n, "no %s: the %s sees none", what, c->hip ? "HIP runtime" : "driver");
        return 0;
    }
    return count;
}

static int open_device(mt_cuda *c, int ordinal, const char *what, char *err, size_t n)
{
    int count = device_count(c, what, err, n);
    if (!count) return MT_ENODEV;
    if (ordinal < 0 || ordinal >= count) {
        snprintf(err, n, "no %s %d: the %s sees %d", what, ordinal, c->hip ? "HIP runtime" : "driver", count);
        return MT_ENODEV;
    }
    if (c->cuDeviceGet(&c->dev, ordinal) != 0 || c->cuDevicePrimaryCtxRetain(&c->ctx, c->dev) != 0 ||
        c->cuCtxSetCurrent(c->ctx) != 0 || c->cuStreamCreate(&c->stream, CU_STREAM_NON_BLOCKING) != 0 ||
        c->cuEventCreate(&c->ev0, 0) != 0 || c->cuEventCreate(&c->ev1, 0) != 0) {
        snprintf(err, n, "cannot open %s %d: context or stream creation failed", what, ordinal);
        return MT_ENODEV;
    }
    return MT_OK;
}

static int load_hip_symbols(mt_cuda *c, char *err, size_t n);

/* A new handle on device `ordinal` of CUDA's driver or (hip) HIP's runtime,
 * its props still to fill; NULL with err on failure. */
static mt_cuda *open_handle(int hip, int ordinal, char *err, size_t n, int *rc)
{
    mt_cuda *c = calloc(1, sizeof *c);
    if (!c) {
        *rc = MT_ENOMEM;
        return NULL;
    }
    if (hip) {
        if ((*rc = load_hip_symbols(c, err, n)) == MT_OK && (*rc = mt_hiprtc_available(err, n)) == MT_OK)
            *rc = open_device(c, ordinal, "AMD GPU", err, n);
    } else if ((*rc = load_symbols(c, err, n)) == MT_OK) {
        *rc = open_device(c, ordinal, "CUDA device", err, n);
    }
    if (*rc == MT_OK) return c;
    mt_cuda_close(c);
    return NULL;
}

int mt_cuda_open(mt_cuda **out, int ordinal, char *err, size_t n)
{
    int rc;
    size_t mem = 0;
    mt_cuda *c = open_handle(0, ordinal, err, n, &rc);
    *out = NULL;
    if (!c) return rc;
    mt_cuda_props *p = &c->props;
    int l2 = 0;
    c->cuDeviceGetName(p->name, (int)sizeof p->name, c->dev);
    c->cuDeviceGetAttribute(&p->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, c->dev);
    c->cuDeviceGetAttribute(&p->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, c->dev);
    c->cuDeviceGetAttribute(&p->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, c->dev);
    c->cuDeviceGetAttribute(&l2, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, c->dev);
    c->cuDeviceGetAttribute(&p->smem_optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, c->dev);
    c->cuDeviceTotalMem_v2(&mem, c->dev);
    c->cuDriverGetVersion(&p->driver_version);
    c->nv.nvrtcVersion(&p->nvrtc_major, &p->nvrtc_minor);
    p->l2_bytes = l2;
    p->memory_bytes = (int64_t)mem;
    /* Hopper's wgmma and setmaxnreg need the arch-specific 'a' target */
    snprintf(p->arch, sizeof p->arch, "sm_%d%d%s", p->cc_major, p->cc_minor, p->cc_major == 9 ? "a" : "");
    /* overlapped launches from sm_90 on, where the driver has them; read
     * here, not per launch (the runtime enqueues on its callers' hot path) */
    mt_cuda_switches sw;
    mt_cuda_switches_get(&sw);
    c->pdl = c->cuLaunchKernelEx && p->cc_major >= 9 && sw.pdl;
    *out = c;
    return MT_OK;
}

/* HIP's names for the driver entry points, in DRIVER_FUNCS' order. Their
 * signatures match the CUDA ones (HIP mirrors the driver API; device
 * pointers are 64-bit either way); NULL: none on HIP, and not needed there
 * (cuGetErrorString: hipGetErrorString, another signature, is loaded
 * apart; cuFuncSetAttribute: AMD's 64 KB of LDS need no opt-in). */
static const char *hip_name(const char *cu)
{
    static const char *const map[][2] = {
        {"cuInit", "hipInit"}, {"cuDriverGetVersion", "hipDriverGetVersion"}, {"cuGetErrorString", NULL},
        {"cuDeviceGet", "hipDeviceGet"}, {"cuDeviceGetCount", "hipGetDeviceCount"},
        {"cuDeviceGetName", "hipDeviceGetName"}, {"cuDeviceGetAttribute", "hipDeviceGetAttribute"},
        {"cuDeviceTotalMem_v2", "hipDeviceTotalMem"}, {"cuDevicePrimaryCtxRetain", "hipDevicePrimaryCtxRetain"},
        {"cuDevicePrimaryCtxRelease_v2", "hipDevicePrimaryCtxRelease"}, {"cuCtxSetCurrent", "hipCtxSetCurrent"},
        {"cuMemAlloc_v2", "hipMalloc"}, {"cuMemFree_v2", "hipFree"}, {"cuMemcpyHtoD_v2", "hipMemcpyHtoD"},
        {"cuMemcpyDtoH_v2", "hipMemcpyDtoH"}, {"cuMemcpyDtoDAsync_v2", "hipMemcpyDtoDAsync"},
        {"cuMemsetD8Async", "hipMemsetD8Async"}, {"cuModuleLoadData", "hipModuleLoadData"},
        {"cuModuleUnload", "hipModuleUnload"}, {"cuModuleGetFunction", "hipModuleGetFunction"},
        {"cuFuncGetAttribute", "hipFuncGetAttribute"}, {"cuFuncSetAttribute", NULL},
        {"cuLaunchKernel", "hipModuleLaunchKernel"}, {"cuStreamCreate", "hipStreamCreateWithFlags"},
        {"cuStreamDestroy_v2", "hipStreamDestroy"}, {"cuStreamSynchronize", "hipStreamSynchronize"},
        {"cuStreamBeginCapture_v2", "hipStreamBeginCapture"}, {"cuStreamEndCapture", "hipStreamEndCapture"},
        {"cuGraphInstantiateWithFlags", "hipGraphInstantiateWithFlags"}, {"cuGraphLaunch", "hipGraphLaunch"},
        {"cuGraphExecDestroy", "hipGraphExecDestroy"}, {"cuGraphDestroy", "hipGraphDestroy"},
        {"cuEventCreate", "hipEventCreateWithFlags"}, {"cuEventRecord", "hipEventRecord"},
        {"cuEventSynchronize", "hipEventSynchronize"}, {"cuEventElapsedTime", "hipEventElapsedTime"},
        {"cuEventDestroy_v2", "hipEventDestroy"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], cu)) return map[i][1];
    return "";
}

static int load_hip_symbols(mt_cuda *c, char *err, size_t n)
{
    static const char *const names[] = {"libamdhip64.so.6", "libamdhip64.so.5", "libamdhip64.so", NULL};
    c->libcuda = open_first(names);
    if (!c->libcuda) {
        snprintf(err, n, "no AMD GPU: the HIP runtime libamdhip64 is not installed (Debian: libamdhip64-5)");
        return MT_ENODEV;
    }
    c->hip = 1;
#define LOAD_HIP(name, ret, args)                                                                 \
    {                                                                                             \
        const char *hn = hip_name(#name);                                                         \
        if (hn && !hn[0]) {                                                                       \
            snprintf(err, n, "internal: no HIP name for %s", #name);                              \
            return MT_EINVAL;                                                                     \
        }                                                                                         \
        if (hn && !(c->name = (ret(*) args)dlsym(c->libcuda, hn))) {                              \
            snprintf(err, n, "the HIP runtime lacks %s: ROCm is too old (5.2 or newer is needed)", hn); \
            return MT_EUNSUPPORTED;                                                               \
        }                                                                                         \
    }
    DRIVER_FUNCS(LOAD_HIP)
    c->hipGetErrorString = (const char *(*)(CUresult))dlsym(c->libcuda, "hipGetErrorString");
    return MT_OK;
}

int mt_hip_driver_check(char *err, size_t n)
{
    mt_cuda *c = calloc(1, sizeof *c);
    if (!c) return MT_ENOMEM;
    int rc = load_hip_symbols(c, err, n);
    free(c); /* the library stays loaded (see NVRTC) */
    return rc;
}

int mt_hip_device_count(char *err, size_t n)
{
    mt_cuda *c = calloc(1, sizeof *c);
    if (!c) return MT_ENOMEM;
    c->hip = 1;
    int rc = load_hip_symbols(c, err, n), count = rc == MT_OK ? device_count(c, "AMD GPU", err, n) : 0;
    free(c); /* the library stays loaded (see NVRTC) */
    return rc == MT_OK ? count : rc;
}

int mt_hip_open(mt_cuda **out, int ordinal, char *err, size_t n)
{
    int rc;
    size_t mem = 0;
    mt_cuda *c = open_handle(1, ordinal, err, n, &rc);
    *out = NULL;
    if (!c) return rc;
    /* The gfx target, CU count and memory from the amdgpu driver's KFD
     * topology (GPU nodes in HIP's order): hipDeviceGetAttribute's numbers
     * are an enum whose values have changed between ROCm releases, and this
     * file is built without ROCm's headers. Shared memory: the 64 KB of
     * LDS every CDNA GPU gives a workgroup. */
    mt_cuda_props *p = &c->props;
    mt_hip_kfd_gpu g[16];
    char why[256];
    int ng = mt_hip_kfd_gpus(NULL, g, 16, why, sizeof why);
    if (ordinal >= ng) {
        snprintf(err, n, "cannot describe AMD GPU %d: %s", ordinal, ng ? "the KFD topology lists fewer GPUs" : why);
        mt_cuda_close(c);
        return MT_ENODEV;
    }
    c->cuDeviceGetName(p->name, (int)sizeof p->name, c->dev);
    if (!p->name[0]) snprintf(p->name, sizeof p->name, "%s", g[ordinal].market);
    snprintf(p->arch, sizeof p->arch, "%s", g[ordinal].arch);
    snprintf(p->vllm_name, sizeof p->vllm_name, "%s", g[ordinal].vllm_name);
    p->sms = g[ordinal].compute_units;
    c->cuDeviceTotalMem_v2(&mem, c->dev);
    p->memory_bytes = mem ? (int64_t)mem : (int64_t)g[ordinal].memory_bytes;
    p->smem_optin = 64 * 1024;
    p->l2_bytes = 0; /* unknown here: the cache flush falls back to its default size */
    c->cuDriverGetVersion(&p->driver_version);
    *out = c;
    return MT_OK;
}

int mt_cuda_is_hip(const mt_cuda *c) { return c && c->hip; }

void mt_cuda_close(mt_cuda *c)
{
    if (!c) return;
    if (c->stream) c->cuStreamDestroy_v2(c->stream);
    if (c->ev0) c->cuEventDestroy_v2(c->ev0);
    if (c->ev1) c->cuEventDestroy_v2(c->ev1);
    if (c->ctx) c->cuDevicePrimaryCtxRelease_v2(c->dev);
    /* the libraries stay loaded for the life of the process (see NVRTC) */
    free(c);
}

int mt_cuda_alloc(mt_cuda *c, size_t bytes, mt_dptr *p)
{
    CU(c, c->cuMemAlloc_v2(p, bytes ? bytes : 16), "cuMemAlloc");
    return MT_OK;
}
void mt_cuda_free(mt_cuda *c, mt_dptr p)
{
    if (p) c->cuMemFree_v2(p);
}
int mt_cuda_h2d(mt_cuda *c, mt_dptr dst, const void *src, size_t bytes)
{
    CU(c, c->cuMemcpyHtoD_v2(dst, src, bytes), "copy to device");
    return MT_OK;
}
int mt_cuda_d2h(mt_cuda *c, void *dst, mt_dptr src, size_t bytes)
{
    CU(c, c->cuStreamSynchronize(c->stream), "synchronize");
    CU(c, c->cuMemcpyDtoH_v2(dst, src, bytes), "copy from device");
    return MT_OK;
}
int mt_cuda_d2d_async(mt_cuda *c, mt_dptr dst, mt_dptr src, size_t bytes)
{
    CU(c, c->cuMemcpyDtoDAsync_v2(dst, src, bytes, c->stream), "device copy");
    return MT_OK;
}
int mt_cuda_memset_async(mt_cuda *c, mt_dptr dst, unsigned char v, size_t bytes)
{
    CU(c, c->cuMemsetD8Async(dst, v, bytes, c->stream), "memset");
    return MT_OK;
}
int mt_cuda_sync(mt_cuda *c)
{
    CU(c, c->cuStreamSynchronize(c->stream), "kernel execution");
    return MT_OK;
}

static int nvrtc_compile(struct nvrtc *nv, const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts,
                         char **bin, size_t *len, char **log, char *err, size_t n)
{
    nvrtcProgram prog;
    char archopt[64];
    const char **all = malloc((size_t)(nopts + 4) * sizeof *all);
    *bin = NULL;
    if (!all) return MT_ENOMEM;
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    all[0] = archopt;
    all[1] = "-std=c++17";
    all[2] = "--use_fast_math";
    for (int i = 0; i < nopts; i++) all[3 + i] = opts[i];
    if (nv->nvrtcCreateProgram(&prog, src->text, src->name, src->nheaders, src->headers, src->header_names) != 0) {
        free(all);
        snprintf(err, n, "NVRTC could not create a program");
        return MT_EIO;
    }
    nvrtcResult r = nv->nvrtcCompileProgram(prog, nopts + 3, all);
    free(all);
    size_t lsz = 0;
    nv->nvrtcGetProgramLogSize(prog, &lsz);
    if (r != 0) {
        if (log && lsz > 1 && (*log = malloc(lsz))) nv->nvrtcGetProgramLog(prog, *log);
        snprintf(err, n, "NVRTC compile failed: %s", nv->nvrtcGetErrorString(r));
        nv->nvrtcDestroyProgram(&prog);
        return MT_EPARSE;
    }
    if (nv->nvrtcGetCUBINSize(prog, len) != 0 || !(*bin = malloc(*len)) || nv->nvrtcGetCUBIN(prog, *bin) != 0) {
        nv->nvrtcDestroyProgram(&prog);
        free(*bin);
        *bin = NULL;
        snprintf(err, n, "NVRTC produced no cubin");
        return MT_EIO;
    }
    nv->nvrtcDestroyProgram(&prog);
    return MT_OK;
}

int mt_nvrtc_compile(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts, char **cubin,
                     size_t *len, char **log, char *err, size_t n)
{
    if (log) *log = NULL;
    pthread_once(&shared_nv_once, load_shared_nvrtc);
    if (shared_nv_rc != MT_OK) {
        snprintf(err, n, "%s", shared_nv_err);
        return shared_nv_rc;
    }
    return nvrtc_compile(&shared_nv, src, arch, opts, nopts, cubin, len, log, err, n);
}

int mt_nvrtc_available(char *err, size_t n)
{
    pthread_once(&shared_nv_once, load_shared_nvrtc);
    if (shared_nv_rc != MT_OK) snprintf(err, n, "%s", shared_nv_err);
    return shared_nv_rc;
}

int mt_nvrtc_cache_fill(const mt_cuda_source *src, const char *arch, const char *const *opts, int nopts,
                        const char *cache_dir, int *hit, char **log, char *err, size_t n)
{
    int major = 0, minor = 0;
    char tag[32];
    *hit = 0;
    if (log) *log = NULL;
    pthread_once(&shared_nv_once, load_shared_nvrtc);
    if (shared_nv_rc != MT_OK) {
        snprintf(err, n, "%s", shared_nv_err);
        return shared_nv_rc;
    }
    shared_nv.nvrtcVersion(&major, &minor);
    snprintf(tag, sizeof tag, "nvrtc=%d.%d", major, minor);
    return mt_kcache_fill("cubin", src, arch, tag, mt_nvrtc_compile, opts, nopts, cache_dir, hit, log, err, n);
}

int mt_cuda_build(mt_cuda *c, const mt_cuda_source *src, const char *const *opts, int nopts, const char *cache_dir,
                  mt_cuda_module **out, char **log)
{
    char *bin = NULL, tag[32], path[MT_KCACHE_PATH];
    size_t len = 0;
    int rc = MT_OK, hit = 0;
    *out = NULL;
    if (log) *log = NULL;
    if (c->hip) {
        /* the same kernel with the HIP headers (tile_hip.h), by hipRTC for
         * the device's gfx target, cached as `moetune compile --arch gfxNNN`
         * caches it */
        const mt_cuda_source *hs = src == mt_cuda_moe_source() ? mt_hip_moe_source()
                                   : src == mt_cuda_attn_source() ? mt_hip_attn_source()
                                                                  : src;
        if ((rc = mt_hiprtc_tag(tag, sizeof tag, c->err, sizeof c->err)) != MT_OK) return rc;
        rc = mt_kcache_get("hsaco", hs, c->props.arch, tag, mt_hiprtc_compile, opts, nopts, cache_dir, &bin, &len, &hit,
                        path, log, c->err, sizeof c->err);
    } else {
        snprintf(tag, sizeof tag, "nvrtc=%d.%d", c->props.nvrtc_major, c->props.nvrtc_minor);
        rc = mt_kcache_get("cubin", src, c->props.arch, tag, mt_nvrtc_compile, opts, nopts, cache_dir, &bin, &len, &hit,
                        path, log, c->err, sizeof c->err);
    }
    if (rc != MT_OK) return rc;
    mt_cuda_module *m = calloc(1, sizeof *m);
    if (!m) rc = MT_ENOMEM;
    else {
        CUresult r = c->cuModuleLoadData(&m->mod, bin);
        if (r != 0) {
            rc = cu_fail(c, "load module", r);
            free(m);
            m = NULL;
        }
    }
    free(bin);
    *out = m;
    return rc;
}

void mt_cuda_module_free(mt_cuda *c, mt_cuda_module *m)
{
    if (!m) return;
    c->cuModuleUnload(m->mod);
    free(m);
}

int mt_cuda_function(mt_cuda *c, mt_cuda_module *m, const char *name, mt_cufn *fn, mt_cuda_resources *res)
{
    CUfunction f;
    CU(c, c->cuModuleGetFunction(&f, m->mod, name), name);
    if (res) {
        c->cuFuncGetAttribute(&res->regs, CU_FUNC_ATTRIBUTE_NUM_REGS, f);
        c->cuFuncGetAttribute(&res->local_bytes, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, f);
        c->cuFuncGetAttribute(&res->static_smem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, f);
        c->cuFuncGetAttribute(&res->max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f);
    }
    *fn = f;
    return MT_OK;
}

int mt_cuda_set_smem(mt_cuda *c, mt_cufn fn, int bytes)
{
    if (c->hip) { /* no opt-in on AMD: up to the LDS a workgroup has */
        if (bytes <= c->props.smem_optin) return MT_OK;
        snprintf(c->err, sizeof c->err, "%d bytes of shared memory: over the %d bytes of LDS", bytes, c->props.smem_optin);
        return MT_EUNSUPPORTED;
    }
    CU(c, c->cuFuncSetAttribute((CUfunction)fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
       "raise the shared-memory limit");
    return MT_OK;
}

int mt_cuda_launch(mt_cuda *c, mt_cufn fn, unsigned grid, unsigned block, unsigned smem, void **args)
{
    return mt_cuda_launch_on(c, NULL, fn, grid, block, smem, args);
}

int mt_cuda_launch_on(mt_cuda *c, void *stream, mt_cufn fn, unsigned grid, unsigned block, unsigned smem, void **args)
{
    CU(c, c->cuLaunchKernel((CUfunction)fn, grid, 1, 1, block, 1, 1, smem, stream ? (CUstream)stream : c->stream, args,
                            NULL),
       "launch");
    return MT_OK;
}

int mt_cuda_launch3_on(mt_cuda *c, void *stream, mt_cufn fn, const unsigned grid[3], unsigned block, unsigned smem,
                       void **args)
{
    CU(c, c->cuLaunchKernel((CUfunction)fn, grid[0], grid[1], grid[2], block, 1, 1, smem,
                            stream ? (CUstream)stream : c->stream, args, NULL),
       "launch");
    return MT_OK;
}

int mt_cuda_pdl_on(const mt_cuda *c) { return c && c->pdl; }

int mt_cuda_launch3_dependent_on(mt_cuda *c, void *stream, mt_cufn fn, const unsigned grid[3], unsigned block,
                                 unsigned smem, void **args)
{
    if (!mt_cuda_pdl_on(c)) return mt_cuda_launch3_on(c, stream, fn, grid, block, smem, args);
    CUlaunchAttribute at;
    memset(&at, 0, sizeof at);
    at.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    at.value.programmatic_stream_serialization = 1;
    CUlaunchConfig cfg = {grid[0], grid[1], grid[2], block, 1, 1, smem, stream ? (CUstream)stream : c->stream, &at, 1};
    CU(c, c->cuLaunchKernelEx(&cfg, (CUfunction)fn, args, NULL), "launch (programmatic dependent)");
    return MT_OK;
}

int mt_cuda_capture_begin(mt_cuda *c)
{
    CU(c, c->cuStreamBeginCapture_v2(c->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "begin capture");
    return MT_OK;
}

int mt_cuda_capture_end(mt_cuda *c, mt_cugraph *g)
{
    CUgraph graph;
    CUgraphExec exec;
    CU(c, c->cuStreamEndCapture(c->stream, &graph), "end capture");
    CUresult r = c->cuGraphInstantiateWithFlags(&exec, graph, 0);
    c->cuGraphDestroy(graph);
    if (r != 0) return cu_fail(c, "instantiate graph", r);
    *g = exec;
    return MT_OK;
}

int mt_cuda_graph_launch(mt_cuda *c, mt_cugraph g)
{
    CU(c, c->cuGraphLaunch((CUgraphExec)g, c->stream), "graph launch");
    return MT_OK;
}

void mt_cuda_graph_free(mt_cuda *c, mt_cugraph g)
{
    if (g) c->cuGraphExecDestroy((CUgraphExec)g);
}

int mt_cuda_time(mt_cuda *c, int (*fn)(mt_cuda *, void *), void *arg, float *ms)
{
    int rc;
    CU(c, c->cuEventRecord(c->ev0, c->stream), "record event");
    if ((rc = fn(c, arg)) != MT_OK) return rc;
    CU(c, c->cuEventRecord(c->ev1, c->stream), "record event");
    CU(c, c->cuEventSynchronize(c->ev1), "kernel execution");
    CU(c, c->cuEventElapsedTime(ms, c->ev0, c->ev1), "elapsed time");
    return MT_OK;
}

/* cuBLAS, loaded only for the ceiling measurement */
typedef int (*cublas_create_t)(void **);
typedef int (*cublas_destroy_t)(void *);
typedef int (*cublas_stream_t)(void *, CUstream);
typedef int (*cublas_gemm_t)(void *, int, int, int, int, int, const void *, const void *, int, int, const void *,
                             int, int, const void *, void *, int, int, int, int);

struct gemm_arg { cublas_gemm_t gemm; void *h; int n; mt_dptr a, b, d; };

static int run_gemm(mt_cuda *c, void *p)
{
    struct gemm_arg *g = p;
    const float one = 1.0f, zero = 0.0f;
    /* CUBLAS_OP_N = 0, CUDA_R_16BF = 14, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1 */
    int r = g->gemm(g->h, 0, 0, g->n, g->n, g->n, &one, (void *)g->a, 14, g->n, (void *)g->b, 14, g->n, &zero,
                    (void *)g->d, 14, g->n, 68, -1);
    if (r != 0) {
        snprintf(c->err, sizeof c->err, "cublasGemmEx failed: status %d", r);
        return MT_EIO;
    }
    return MT_OK;
}

int mt_cuda_cublas_tflops(mt_cuda *c, int n, mt_dptr a, mt_dptr b, mt_dptr d, double *tflops)
{
    static const char *const names[] = {"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13", "libcublas.so.12",
                                        "/usr/local/cuda/lib64/libcublas.so.12", "libcublas.so", NULL};
    if (c->hip) return MT_EUNSUPPORTED; /* cuBLAS on NVIDIA only (hipBLAS: not loaded) */
    if (!c->libcublas) c->libcublas = open_first(names);
    if (!c->libcublas) return MT_EUNSUPPORTED;
    cublas_create_t create = (cublas_create_t)dlsym(c->libcublas, "cublasCreate_v2");
    cublas_destroy_t destroy = (cublas_destroy_t)dlsym(c->libcublas, "cublasDestroy_v2");
    cublas_stream_t set_stream = (cublas_stream_t)dlsym(c->libcublas, "cublasSetStream_v2");
    struct gemm_arg g = {(cublas_gemm_t)dlsym(c->libcublas, "cublasGemmEx"), NULL, n, a, b, d};
    if (!create || !destroy || !set_stream || !g.gemm || create(&g.h) != 0) return MT_EUNSUPPORTED;
    set_stream(g.h, c->stream);
    float best = 1e30f;
    int rc = MT_OK;
    for (int i = 0; rc == MT_OK && i < 10; i++) {
        float ms;
        rc = mt_cuda_time(c, run_gemm, &g, &ms);
        if (rc == MT_OK && i >= 3 && ms < best) best = ms; /* the first three warm up */
    }
    destroy(g.h);
    if (rc == MT_OK) *tflops = 2.0 * n * (double)n * n / (best * 1e-3) / 1e12;
    return rc;
}

/* cuBLASLt, loaded only for the fp8 ceiling: the values of its enums as
 * cublasLt.h, cublas_api.h and library_types.h (CUDA 12 and 13) give them */
enum {
    LT_R_32F = 0, LT_R_16BF = 14, LT_R_8F_E4M3 = 28, LT_COMPUTE_32F = 68, LT_OP_T = 1,
    LT_DESC_TRANSA = 3, LT_DESC_FAST_ACCUM = 25
};
typedef int (*lt_create_t)(void **);
typedef int (*lt_destroy_t)(void *);
typedef int (*lt_desc_create_t)(void **, int, int);
typedef int (*lt_desc_set_t)(void *, int, const void *, size_t);
typedef int (*lt_layout_create_t)(void **, int, uint64_t, uint64_t, int64_t);
typedef int (*lt_matmul_t)(void *, void *, const void *, const void *, void *, const void *, void *, const void *,
                           const void *, void *, void *, void *, const void *, void *, size_t, CUstream);

struct lt_arg {
    lt_matmul_t matmul;
    void *h, *desc, *la, *lb, *lc;
    mt_dptr a, b, d, ws;
    size_t ws_bytes;
};

static int run_lt(mt_cuda *c, void *p)
{
    struct lt_arg *g = p;
    const float one = 1.0f, zero = 0.0f;
    int r = g->matmul(g->h, g->desc, &one, (void *)g->a, g->la, (void *)g->b, g->lb, &zero, (void *)g->d, g->lc,
                      (void *)g->d, g->lc, NULL, (void *)g->ws, g->ws_bytes, c->stream);
    if (r != 0) {
        snprintf(c->err, sizeof c->err, "cublasLtMatmul (fp8) failed: status %d", r);
        return MT_EIO;
    }
    return MT_OK;
}

int mt_cuda_cublaslt_fp8_tflops(mt_cuda *c, int n, mt_dptr a, mt_dptr b, mt_dptr d, mt_dptr ws, size_t ws_bytes,
                                double *tflops)
{
    static const char *const names[] = {"libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.13",
                                        "libcublasLt.so.12", "/usr/local/cuda/lib64/libcublasLt.so.12", "libcublasLt.so",
                                        NULL};
    if (c->hip) return MT_EUNSUPPORTED;
    if (!c->libcublaslt) c->libcublaslt = open_first(names);
    if (!c->libcublaslt) {
        snprintf(c->err, sizeof c->err, "libcublasLt did not load");
        return MT_EUNSUPPORTED;
    }
    lt_create_t create = (lt_create_t)dlsym(c->libcublaslt, "cublasLtCreate");
    lt_destroy_t destroy = (lt_destroy_t)dlsym(c->libcublaslt, "cublasLtDestroy");
    lt_desc_create_t desc_create = (lt_desc_create_t)dlsym(c->libcublaslt, "cublasLtMatmulDescCreate");
    lt_destroy_t desc_destroy = (lt_destroy_t)dlsym(c->libcublaslt, "cublasLtMatmulDescDestroy");
    lt_desc_set_t desc_set = (lt_desc_set_t)dlsym(c->libcublaslt, "cublasLtMatmulDescSetAttribute");
    lt_layout_create_t layout_create = (lt_layout_create_t)dlsym(c->libcublaslt, "cublasLtMatrixLayoutCreate");
    lt_destroy_t layout_destroy = (lt_destroy_t)dlsym(c->libcublaslt, "cublasLtMatrixLayoutDestroy");
    struct lt_arg g = {(lt_matmul_t)dlsym(c->libcublaslt, "cublasLtMatmul"), NULL, NULL, NULL, NULL, NULL,
                       a, b, d, ws, ws_bytes};
    if (!create || !destroy || !desc_create || !desc_destroy || !desc_set || !layout_create || !layout_destroy ||
        !g.matmul) {
        snprintf(c->err, sizeof c->err, "libcublasLt lacks the matmul entry points");
        return MT_EUNSUPPORTED;
    }
    int rc = MT_EUNSUPPORTED;
    /* e4m3 takes the "TN" layout: A transposed (stored K x M), B as is (K x
     * N), both K-major; bf16 out. Fast accumulation: the rate the tensor
     * cores give, the ceiling a kernel that promotes into fp32 now and
     * then approaches. */
    const int32_t opt = LT_OP_T;
    const int8_t fast = 1;
    if (create(&g.h) != 0) {
        snprintf(c->err, sizeof c->err, "cublasLtCreate failed");
        return rc;
    }
    if (desc_create(&g.desc, LT_COMPUTE_32F, LT_R_32F) == 0 && desc_set(g.desc, LT_DESC_TRANSA, &opt, sizeof opt) == 0 &&
        desc_set(g.desc, LT_DESC_FAST_ACCUM, &fast, sizeof fast) == 0 &&
        layout_create(&g.la, LT_R_8F_E4M3, (uint64_t)n, (uint64_t)n, n) == 0 &&
        layout_create(&g.lb, LT_R_8F_E4M3, (uint64_t)n, (uint64_t)n, n) == 0 &&
        layout_create(&g.lc, LT_R_16BF, (uint64_t)n, (uint64_t)n, n) == 0) {
        float best = 1e30f;
        rc = MT_OK;
        for (int i = 0; rc == MT_OK && i < 10; i++) {
            float ms;
            rc = mt_cuda_time(c, run_lt, &g, &ms);
            if (rc == MT_OK && i >= 3 && ms < best) best = ms; /* the first three warm up */
        }
        if (rc == MT_OK) *tflops = 2.0 * n * (double)n * n / (best * 1e-3) / 1e12;
    } else {
        snprintf(c->err, sizeof c->err, "cuBLASLt refused the fp8 matmul's descriptors");
    }
    if (g.la) layout_destroy(g.la);
    if (g.lb) layout_destroy(g.lb);
    if (g.lc) layout_destroy(g.lc);
    if (g.desc) desc_destroy(g.desc);
    destroy(g.h);
    return rc;
}
