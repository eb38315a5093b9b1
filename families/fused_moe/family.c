/*
 * The fused-MoE family: a problem is (E, N, K, topk, dtype, block shape),
 * a point the batch size M. Its files are vLLM's, named
 * E=..,N=..,device_name=..[,dtype=..][,block_shape=[..]].json, and
 * moetune's, which add K, topk and the backend and carry provenance.
 */
#include <stdio.h>
#include <string.h>

#include "family.h"
#include "moe_cpu.h"
#include "rt_internal.h"

#define DIM (INT64_C(1) << 31)

static const mt_family_keyfield key[] = {
    {"E", 1, DIM, 1}, {"N", 1, DIM, 1}, {"K", 0, DIM, 0}, {"topk", 0, DIM, 0}, {"block_n", 0, DIM, 0}, {"block_k", 0, DIM, 0},
};

/* vLLM's keys (the GPU kernels; ROCm's files hold num_stages 0 and
 * waves_per_eu 0), then moetune's own */
static const mt_family_param params[] = {
    {"BLOCK_SIZE_M", 1}, {"BLOCK_SIZE_N", 1}, {"BLOCK_SIZE_K", 1}, {"GROUP_SIZE_M", 1}, {"num_warps", 1},
    {"num_stages", 0},   {"waves_per_eu", 0}, {"matrix_instr_nonkdim", 0}, {"kpack", 0}, {"SPLIT_K", 1},
    {"num_ctas", 1},     {"NUM_SM", 0},       {"GEMV", 0},         {"block_m", 1},   {"block_n", 1},
    {"block_k", 1},      {"threads", 1},
};

static void describe(const mt_family_key *k, char *out, size_t n)
{
    snprintf(out, n, "E=%lld, N=%lld%s%s", (long long)k->v[MT_MOE_KEY_E], (long long)k->v[MT_MOE_KEY_N],
             k->dtype[0] ? ", dtype=" : "", k->dtype);
}

static int vllm_name(const mt_family_key *k, const char *device, char *out, size_t n)
{
    mt_vllm_name nm;
    memset(&nm, 0, sizeof nm);
    nm.E = k->v[MT_MOE_KEY_E];
    nm.N = k->v[MT_MOE_KEY_N];
    snprintf(nm.device, sizeof nm.device, "%s", device);
    snprintf(nm.dtype, sizeof nm.dtype, "%s", k->dtype);
    nm.block_n = k->v[MT_MOE_KEY_BLOCK_N];
    nm.block_k = k->v[MT_MOE_KEY_BLOCK_K];
    return mt_vllm_name_format(out, n, &nm);
}

int mt_moe_mtformat_name(char *out, size_t n, int64_t E, int64_t N, int64_t K, int64_t topk, const char *device,
                         const char *backend, const char *dtype, int64_t block_n, int64_t block_k)
{
    char block[64] = "";
    if (block_n > 0 && block_k > 0) snprintf(block, sizeof block, ",block_shape=[%lld,%lld]", (long long)block_n, (long long)block_k);
    int w = snprintf(out, n, "E=%lld,N=%lld,K=%lld,topk=%lld,device_name=%s,backend=%s,dtype=%s%s.moetune.json",
                     (long long)E, (long long)N, (long long)K, (long long)topk, device, backend,
                     dtype && dtype[0] ? dtype : "bf16", block);
    return w < 0 || (size_t)w >= n ? MT_EINVAL : MT_OK;
}

/* moetune's file (richer: every key, and provenance) where K and topk are
 * known, then vLLM's */
static int file_names(const mt_family_key *k, const char *device, const char *backend, mt_family_file *out, int max)
{
    int n = 0;
    if (n < max && k->v[MT_MOE_KEY_K] > 0 && k->v[MT_MOE_KEY_TOPK] > 0 &&
        mt_moe_mtformat_name(out[n].name, sizeof out[n].name, k->v[MT_MOE_KEY_E], k->v[MT_MOE_KEY_N], k->v[MT_MOE_KEY_K],
                             k->v[MT_MOE_KEY_TOPK], device, backend, k->dtype, k->v[MT_MOE_KEY_BLOCK_N],
                             k->v[MT_MOE_KEY_BLOCK_K]) == MT_OK)
        out[n++].moetune_format = 1;
    if (n < max && vllm_name(k, device, out[n].name, sizeof out[n].name) == MT_OK) out[n++].moetune_format = 0;
    return n;
}

static int file_match(const char *file, const mt_family_key *k, char *device, size_t n)
{
    mt_vllm_name nm;
    char why[128];
    if (mt_vllm_name_parse(file, &nm, why, sizeof why) != MT_OK) return 0;
    if (nm.E != k->v[MT_MOE_KEY_E] || nm.N != k->v[MT_MOE_KEY_N] || strcmp(nm.dtype, k->dtype) ||
        nm.block_n != k->v[MT_MOE_KEY_BLOCK_N] || nm.block_k != k->v[MT_MOE_KEY_BLOCK_K])
        return 0;
    snprintf(device, n, "%s", nm.device);
    return 1;
}

/* CPU: the kernel's own default tile for the shape; GPUs: vLLM's default
 * heuristic (VLLM-FORMAT.md) */
static void default_config(const mt_family_key *k, const int64_t *point, const char *backend, int threads, int *v)
{
    for (int i = 0; i < (int)(sizeof params / sizeof params[0]); i++) v[i] = -1;
    int64_t M = point[0], N = k->v[MT_MOE_KEY_N], K = k->v[MT_MOE_KEY_K], topk = k->v[MT_MOE_KEY_TOPK];
    if (strcmp(backend, "cpu") == 0) {
        mt_cpu_params p;
        mt_cpu_params_default(N, K > 0 ? K : N, topk > 0 ? topk : 1, M, threads, &p);
        v[13] = p.block_m;
        v[14] = p.block_n;
        v[15] = p.block_k;
        v[16] = p.threads;
    } else {
        int d[6];
        mt_vllm_default_config(M, k->v[MT_MOE_KEY_E], strcmp(backend, "hip") == 0, d);
        for (int i = 0; i < 6; i++) v[i] = d[i];
    }
}

const mt_family mt_family_fused_moe = {
    .name = "fused_moe",
    .version = 1,
    .about = "fused Mixture-of-Experts: routing, both expert GEMMs, SiLU-and-mul and the top-k sum",
    .sweep_command = "moetune sweep",
    .nkey = (int)(sizeof key / sizeof key[0]),
    .key = key,
    .dtype_default = "",
    .npoint = 1,
    .point = {"M"},
    .point_about = {"batch size"},
    .nparams = (int)(sizeof params / sizeof params[0]),
    .params = params,
    .check_key = NULL,
    .describe = describe,
    .file_names = file_names,
    .file_match = file_match,
    .default_config = default_config,
    .kernel_hash = mt_kernel_hash,
};
