/*
 * The paged attention decode family: a problem is (H, H_kv, D, page,
 * dtype), a point (batch, context). Its files are named
 * attn_decode,H=..,H_kv=..,D=..,page=..,device_name=..,dtype=...json and
 * hold {batch: {context: params}} (docs/attention-format.md).
 */
#include <stdio.h>
#include <string.h>

#include "attn_decode.h"
#include "attn_launch.h"
#include "family.h"

#define DIM (INT64_C(1) << 31)

static const mt_family_keyfield key[] = {
    {"H", 1, DIM, 1}, {"H_kv", 1, DIM, 1}, {"D", 1, DIM, 1}, {"page", 1, DIM, 1},
};

static const mt_family_param params[] = {
    {"partition", 0}, {"num_warps", 1}, {"pages_per_iter", 1}, {"threads", 1}, {"mma", 0}, {"stage", 0}, {"query_split", 1},
};

static int check_key(const mt_family_key *k, char *why, size_t n)
{
    if (k->v[MT_ATTN_KEY_H] % k->v[MT_ATTN_KEY_HKV] == 0) return 1;
    snprintf(why, n, "H=%lld is not a multiple of H_kv=%lld", (long long)k->v[MT_ATTN_KEY_H],
             (long long)k->v[MT_ATTN_KEY_HKV]);
    return 0;
}

static void name_of(const mt_family_key *k, const char *device, mt_attn_name *nm)
{
    memset(nm, 0, sizeof *nm);
    nm->num_heads = k->v[MT_ATTN_KEY_H];
    nm->num_kv_heads = k->v[MT_ATTN_KEY_HKV];
    nm->head_dim = k->v[MT_ATTN_KEY_D];
    nm->page_size = k->v[MT_ATTN_KEY_PAGE];
    snprintf(nm->device, sizeof nm->device, "%s", device);
    snprintf(nm->dtype, sizeof nm->dtype, "%s", k->dtype);
}

static void describe(const mt_family_key *k, char *out, size_t n)
{
    snprintf(out, n, "attention H=%lld, H_kv=%lld, D=%lld, page=%lld, dtype=%s", (long long)k->v[MT_ATTN_KEY_H],
             (long long)k->v[MT_ATTN_KEY_HKV], (long long)k->v[MT_ATTN_KEY_D], (long long)k->v[MT_ATTN_KEY_PAGE],
             k->dtype);
}

static int file_names(const mt_family_key *k, const char *device, const char *backend, mt_family_file *out, int max)
{
    (void)backend; /* one file per device, whichever backend measured it */
    mt_attn_name nm;
    name_of(k, device, &nm);
    if (max < 1 || mt_attn_name_format(out[0].name, sizeof out[0].name, &nm) != MT_OK) return 0;
    out[0].moetune_format = 0;
    return 1;
}

static int file_match(const char *file, const mt_family_key *k, char *device, size_t n)
{
    mt_attn_name o;
    char why[128];
    if (mt_attn_name_parse(file, &o, why, sizeof why) != MT_OK) return 0;
    if (o.num_heads != k->v[MT_ATTN_KEY_H] || o.num_kv_heads != k->v[MT_ATTN_KEY_HKV] ||
        o.head_dim != k->v[MT_ATTN_KEY_D] || o.page_size != k->v[MT_ATTN_KEY_PAGE] || strcmp(o.dtype, k->dtype))
        return 0;
    snprintf(device, n, "%s", o.device);
    return 1;
}

/* a split of about 512 tokens of whole pages */
static int64_t default_partition(int64_t page_size)
{
    int64_t part = (512 / page_size) * page_size;
    return part < page_size ? page_size : part;
}

void mt_attn_decode_fma_default(int64_t page_size, int *v)
{
    v[MT_ATTN_P_PARTITION] = (int)default_partition(page_size);
    v[MT_ATTN_P_WARPS] = 4;
    v[MT_ATTN_P_MMA] = 0;
    v[MT_ATTN_P_STAGE] = 0;
    v[MT_ATTN_P_QSPLIT] = 1;
}

void mt_attn_decode_cuda_default(const mt_family_key *k, int64_t batch, int64_t ctx, int *v)
{
    mt_attn_decode_fma_default(k->v[MT_ATTN_KEY_PAGE], v);
    mt_cuda_attn_cfg r = {(int)k->v[MT_ATTN_KEY_D], (int)k->v[MT_ATTN_KEY_PAGE],
                          (int)(k->v[MT_ATTN_KEY_H] / k->v[MT_ATTN_KEY_HKV]), 0, 0, 0, 0, 0, 1};
    if (!mt_cuda_attn_default(&r, (long long)(batch * k->v[MT_ATTN_KEY_HKV]), (long long)ctx)) return;
    v[MT_ATTN_P_PARTITION] = r.partition;
    v[MT_ATTN_P_WARPS] = r.warps;
    v[MT_ATTN_P_MMA] = r.mma;
    v[MT_ATTN_P_STAGE] = r.stage;
    v[MT_ATTN_P_QSPLIT] = r.qsplit;
}

/* CPU: a split of about 512 tokens where the context is longer, one page
 * per step, every thread; CUDA: mt_cuda_attn_default's ring where the
 * kernel has it, else the FMA variant */
static void default_config(const mt_family_key *k, const int64_t *point, const char *backend, int threads, int *v)
{
    for (int i = 0; i < MT_ATTN_NPARAMS; i++) v[i] = -1;
    if (strcmp(backend, "cpu") == 0) {
        int64_t part = default_partition(k->v[MT_ATTN_KEY_PAGE]);
        v[MT_ATTN_P_PARTITION] = point[1] > part ? (int)part : 0;
        v[MT_ATTN_P_PAGES] = 1;
        v[MT_ATTN_P_THREADS] = threads;
    } else {
        mt_attn_decode_cuda_default(k, point[0], point[1], v);
    }
}

/* the GPU kernel's hash serves CUDA and HIP (one source) */
static const char *kernel_hash(const char *backend)
{
    if (!backend) return NULL;
    if (strcmp(backend, "cpu") == 0) return MT_CPU_ATTN_HASH;
    if (strcmp(backend, "cuda") == 0 || strcmp(backend, "hip") == 0) return MT_CUDA_ATTN_HASH;
    return NULL;
}

const mt_family mt_family_attn_decode = {
    .name = "attn_decode",
    .version = 1,
    .about = "paged attention decode: one query token per sequence against its paged KV cache",
    .sweep_command = "moetune sweep --kernel attention",
    .nkey = (int)(sizeof key / sizeof key[0]),
    .key = key,
    .dtype_default = "bf16",
    .npoint = 2,
    .point = {"batch", "ctx"},
    .point_about = {"batch size", "context length"},
    .nparams = MT_ATTN_NPARAMS,
    .params = params,
    .check_key = check_key,
    .describe = describe,
    .file_names = file_names,
    .file_match = file_match,
    .default_config = default_config,
    .kernel_hash = kernel_hash,
};
