/*
 * moetune.h: the public interface of libmoetune.
 *
 * Every call returns an int status: MT_OK (0) or a negative MT_E* code.
 * mt_status_str() gives each code a fixed English string; detail about a
 * particular failure goes to the log callback. The library never aborts and
 * never prints on its own: without a callback it is silent.
 *
 * Threads: the naming, parsing and status functions keep no state and may
 * be called from any thread. One mt_runtime may be shared by any number of
 * threads for mt_runtime_load_moe, mt_runtime_lookup_moe,
 * mt_runtime_lookup_attention, mt_runtime_device_name and the CPU entry
 * points (mt_fused_moe_cpu, mt_attention_decode_cpu: serialised inside);
 * the CUDA entry points share one workspace, so their calls on one runtime
 * must be ordered on one stream. mt_runtime_open and mt_runtime_close are not
 * to race with anything on the same runtime, and mt_log_set is to be called
 * before threads start. The log callback may be called from several threads
 * at once.
 */
#ifndef MOETUNE_MOETUNE_H
#define MOETUNE_MOETUNE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. Numbered once, never reused. */
enum mt_status {
    MT_OK = 0,
    MT_EINVAL = -1,       /* an argument is out of range or inconsistent */
    MT_ENOMEM = -2,       /* an allocation failed */
    MT_EIO = -3,          /* reading or writing a file failed */
    MT_ENOTFOUND = -4,    /* the thing asked for does not exist */
    MT_EDB = -5,          /* the database refused an operation */
    MT_EPARSE = -6,       /* malformed input (JSON, file name, option) */
    MT_ENODEV = -7,       /* no such device on this machine */
    MT_EUNSUPPORTED = -8, /* valid, but this build or backend cannot do it */
    MT_ETIMEOUT = -9,     /* a measurement ran past its time limit */
    MT_ECRASH = -10,      /* a worker process died */
    MT_ECHECK = -11,      /* a kernel's output did not match the reference */
    MT_ESCHEMA = -12,     /* the database was written by a newer moetune */
    MT_ECORRUPT = -13,    /* the database file is damaged or not a database */
    MT_EDENIED = -14,     /* a server refused the credentials (HTTP 401, 403) */
    MT_ENET = -15,        /* a server or the network failed, retries included */
    MT_EINTEGRITY = -16,  /* a fetched file does not match its manifest's sha256 or size */
};

/* The string for a status code; never NULL ("unknown status" for codes
 * this version does not know). */
const char *mt_status_str(int status);

/* Log levels, most severe first. */
enum mt_log_level { MT_LOG_ERROR = 0, MT_LOG_WARN = 1, MT_LOG_INFO = 2, MT_LOG_DEBUG = 3 };

/* The log callback: level, a NUL-terminated message without trailing
 * newline, and the user pointer given to mt_log_set. */
typedef void (*mt_log_fn)(int level, const char *msg, void *user);

/* Route library messages at or above `max_level` to `fn`. fn == NULL turns
 * logging off. Process-wide; set it before starting threads. */
void mt_log_set(mt_log_fn fn, void *user, int max_level);

/* ---- device naming, exactly as vLLM spells device names in file names ---- */

/* Write the vLLM file-name spelling of a CUDA device name (as
 * cudaGetDeviceProperties reports it) into out: each run of whitespace or
 * '/' becomes '_', and any name containing the token H200 becomes
 * "NVIDIA_H200". Returns MT_OK, or MT_EINVAL when out is too small. */
int mt_device_vllm_name(char *out, size_t out_len, const char *raw_name);

/* The CPU of this machine as moetune names it in config files: "CPU_"
 * followed by the processor's model name from /proc/cpuinfo ("model name",
 * or "Model" on Arm) as mt_device_cpu_name_of spells it. model (may be
 * NULL) receives the model name as read. Returns MT_OK or MT_EINVAL. */
int mt_device_cpu_name(char *out, size_t out_len, char *model, size_t model_len);
/* "CPU_" and a model name spelled by mt_device_vllm_name's rule, without
 * trademark marks ("(R)", "(TM)"), every character but letters, digits and
 * ".+-" as '_', runs of '_' as one: a file name and a bucket key as it is.
 * "Intel(R) Xeon(R) CPU @ 2.20GHz" -> "CPU_Intel_Xeon_CPU_2.20GHz". */
int mt_device_cpu_name_of(char *out, size_t out_len, const char *model);

/* Element types of weights and activations. MT_DTYPE_FP8_W8A8: weights in
 * fp8 e4m3 (the "fn" variant: largest finite 448, no infinities) with
 * float32 scales, activations given in bf16 and quantised to e4m3 inside the
 * pipeline, float32 accumulation; the scales' scheme and layouts are an
 * mt_quant (below). */
enum mt_dtype { MT_DTYPE_BF16 = 0, MT_DTYPE_FP16 = 1, MT_DTYPE_FP32 = 2, MT_DTYPE_FP8_W8A8 = 3 };

/* "bf16", "fp16", "fp32", "fp8_w8a8"; NULL for an unknown value. */
const char *mt_dtype_name(int dtype);
/* Parse the above names; returns MT_OK or MT_EPARSE. */
int mt_dtype_parse(const char *s, int *out);

/* ---- fp8 quantisation schemes ----
 *
 * A quantised value is q = e4m3(x / scale), rounded to nearest (ties to
 * even) and saturated at +-448, so that x ~= q * scale. A dynamic scale is
 * the absolute maximum of what it covers over 448 (at least 1e-10 / 448).
 * Every scale array is float32, row-major, in the memory of the device the
 * call runs on (host memory for the CPU entry point, device memory for the
 * CUDA one). w1 is [E, 2N, K] (gate rows, then up rows) and w2 [E, K, N], as
 * vLLM lays them out; the intermediate is the [M * topk, N] SiLU-and-mul
 * output, rounded to bf16 and then quantised as the activations are.
 *
 *   MT_QUANT_TENSOR   w1_scale [E], w2_scale [E]: one per expert matrix.
 *                     a1_scale, a2_scale: one float each for static scales
 *                     (the checkpoint's input_scale), or NULL for a dynamic
 *                     scale over the whole x (a1) or the whole intermediate
 *                     (a2), computed by the pipeline.
 *   MT_QUANT_CHANNEL  w1_scale [E, 2N], w2_scale [E, K]: one per output
 *                     channel (weight row). Activations per token: a dynamic
 *                     scale per row of x and per row of the intermediate.
 *                     a1_scale and a2_scale must be NULL.
 *   MT_QUANT_BLOCK    w1_scale [E, ceil(2N / block_n), ceil(K / block_k)],
 *                     w2_scale [E, ceil(K / block_n), ceil(N / block_k)]: one
 *                     per block_n x block_k weight block (DeepSeek-V3's 128 x
 *                     128). Activations in 1 x block_k groups along the
 *                     reduction: a dynamic scale per row and group of x and
 *                     of the intermediate. a1_scale and a2_scale must be NULL.
 */
enum mt_quant_scheme { MT_QUANT_TENSOR = 1, MT_QUANT_CHANNEL = 2, MT_QUANT_BLOCK = 3 };

typedef struct mt_quant {
    int scheme;               /* enum mt_quant_scheme */
    int64_t block_n, block_k; /* MT_QUANT_BLOCK's weight block; 0 otherwise */
    const float *w1_scale, *w2_scale;
    const float *a1_scale, *a2_scale; /* MT_QUANT_TENSOR: static scales, or NULL for dynamic */
} mt_quant;

/* "tensor", "channel", "block"; NULL for an unknown value. */
const char *mt_quant_scheme_name(int scheme);
/* The problem's dtype as files and the database spell it: "fp8_w8a8" for
 * per-tensor and block scales (whose block shape is named apart, as
 * block_shape=[N,K]), "fp8_w8a8_per_channel" for per-channel scales.
 * NULL for an unknown scheme. */
const char *mt_quant_dtype_name(int scheme);
/* The number of floats in w1_scale (which 1) or w2_scale (which 2) for the
 * scheme and shape; 0 for a malformed scheme. */
int64_t mt_quant_weight_scales(const mt_quant *q, int which, int64_t E, int64_t N, int64_t K);

/* ---- vLLM config file names ---- */

/* The identity carried by a vLLM fused-MoE config file name:
 * E={E},N={N},device_name={device}[,dtype={dtype}][,block_shape=[{bn},{bk}]].json
 * dtype is empty for bf16/fp16; block_n/block_k are 0 when absent. */
typedef struct mt_vllm_name {
    int64_t E;
    int64_t N;
    char device[128];
    char dtype[32];
    int64_t block_n;
    int64_t block_k;
} mt_vllm_name;

/* Build the file name (with ".json") for `name` into out. */
int mt_vllm_name_format(char *out, size_t out_len, const mt_vllm_name *name);

/* Parse a file name (no directory). Fields other than E, N, device_name,
 * dtype and block_shape are refused with MT_EUNSUPPORTED; a name that is not
 * of this form with MT_EPARSE. On failure `why` (may be NULL) receives a
 * short reason. */
int mt_vllm_name_parse(const char *file_name, mt_vllm_name *out, char *why, size_t why_len);

/* Attention decode config files (docs/attention-format.md), named
 *   attn_decode,H=32,H_kv=8,D=128,page=16,device_name=NVIDIA_H100_80GB_HBM3,dtype=bf16.json
 * and holding {"BATCH": {"CONTEXT": {params}}}: batch sizes, then context
 * lengths, as decimal strings in increasing order. */
typedef struct mt_attn_name {
    int64_t num_heads, num_kv_heads, head_dim, page_size;
    char device[128];
    char dtype[32];
} mt_attn_name;
int mt_attn_name_format(char *out, size_t out_len, const mt_attn_name *name);
/* MT_EPARSE with why for a name that is not an attention config file. */
int mt_attn_name_parse(const char *file_name, mt_attn_name *out, char *why, size_t why_len);
/* The parameters (a JSON object's text) for batch and ctx in a file's JSON
 * text: the nearest batch key, then within it the nearest context key,
 * each as mt_nearest_m chooses. The keys used go to *batch_key, *ctx_key. */
int mt_attn_config_pick(const char *json_text, int64_t batch, int64_t ctx, char *params, size_t params_len,
                        int64_t *batch_key, int64_t *ctx_key, char *why, size_t why_len);

/* The index of the key nearest to m among keys[0..n-1], exactly as vLLM
 * chooses it: the minimum of |key - m|, ties to the earliest key in the
 * given (file) order. Returns -1 when n == 0. */
int mt_nearest_m(const int64_t *keys, int n, int64_t m);

/* The ROCm spelling vLLM uses in file names: from the PCI device id where
 * vLLM maps it (0x74a0 MI300A, 0x74a1/0x74b5 MI300X, 0x74a2 MI308X,
 * 0x74a5/0x74b9 MI325X, 0x74a9/0x74bd MI300X_HF, each AMD_Instinct_...),
 * else the market name spelled by mt_device_vllm_name's rule. */
int mt_device_rocm_vllm_name(char *out, size_t out_len, unsigned pci_device_id, const char *market_name);

/* The architecture of a device known by its vLLM spelling ("sm_90",
 * "gfx942/304": gfx and compute-unit count for AMD), or NULL when unknown. Two
 * devices may share configs only when these match. */
const char *mt_device_arch_of(const char *vllm_name);

/* ---- the runtime: look tuned configs up at load, launch the kernels ---- */

typedef struct mt_runtime mt_runtime;

/* The folders searched, first hit wins: config_dir, tuned_dir (what
 * `moetune sweep` on this machine wrote), cache_dir (what `moetune pull`
 * fetched), bundled_dir (what came with moetune). A folder that exists but
 * cannot be read is reported once and skipped. */
typedef struct mt_runtime_options {
    /* sizeof(mt_runtime_options) as the caller was compiled: the struct
     * grows at its end, and the runtime reads only the fields the caller
     * knows of (the others take their defaults). MT_RUNTIME_OPTIONS_INIT
     * sets it; a size smaller than this release's struct is refused. */
    size_t size;
    /* searched first; NULL: $MOETUNE_CONFIG_DIR (unset: skipped) */
    const char *config_dir;
    /* the pulled bucket cache; NULL: $XDG_CACHE_HOME/moetune/bucket or ~/.cache/moetune/bucket */
    const char *cache_dir;
    /* the installed configs; NULL: the share/moetune/configs of the install
     * prefix, or, where that does not exist (a build tree never installed),
     * the configs/ folder of the source tree it was built from */
    const char *bundled_dir;
    /* the device whose configs are looked up, spelled as vLLM spells it
     * (e.g. "NVIDIA_H100_80GB_HBM3", "CPU_..."); NULL: the CPU of this machine */
    const char *device_name;
    /* "cpu", "cuda", "hip": which kernels the configs are for (NULL: "cpu") */
    const char *backend;
    /* other device names whose files this device may read, in order of
     * preference (e.g. an MI300X reading AMD_Instinct_MI300X_OAM files):
     * only when the user says so; NULL-terminated, may be NULL */
    const char *const *aliases;
    /* use moetune-format configs measured with another kernel source */
    int allow_stale;
    mt_log_fn log;
    void *log_user;
    int log_level; /* MT_LOG_WARN by default (0 means ERROR only) */
    /* backend "cuda": the device ordinal; with device_name NULL the
     * runtime opens it at once and takes its name from the driver */
    int device_index;
    /* backend "cuda": where compiled kernel variants are cached; NULL:
     * $XDG_CACHE_HOME/moetune/cuda (or ~/.cache/moetune/cuda) */
    const char *kernel_cache_dir;
    /* the configs `moetune sweep` writes by default; NULL:
     * $XDG_DATA_HOME/moetune/configs (or ~/.local/share/moetune/configs) */
    const char *tuned_dir;
} mt_runtime_options;
#define MT_RUNTIME_OPTIONS_INIT {sizeof(mt_runtime_options), NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, MT_LOG_WARN, 0, NULL, NULL}

/* Open a runtime context. opts may be NULL (defaults). */
int mt_runtime_open(mt_runtime **out, const mt_runtime_options *opts);
/* NULL is a harmless no-op. */
void mt_runtime_close(mt_runtime *rt);
/* The device name the context looks configs up for. */
const char *mt_runtime_device_name(const mt_runtime *rt);

/* What identifies a fused-MoE config file. dtype: NULL or "" for bf16/fp16,
 * else vLLM's string ("fp8_w8a8", ...); block_n/block_k 0 when absent. K and
 * topk are needed only for moetune-format files (0: vLLM files only). */
typedef struct mt_moe_key {
    int64_t E, N, K, topk;
    const char *dtype;
    int64_t block_n, block_k;
} mt_moe_key;

/* Where a config came from. First hit wins: config dir, tuned, cache,
 * bundled, alias, same architecture, default. */
enum mt_config_source {
    MT_SOURCE_CONFIG_DIR = 0, /* $MOETUNE_CONFIG_DIR or options.config_dir */
    MT_SOURCE_CACHE = 1,      /* the pulled bucket cache */
    MT_SOURCE_BUNDLED = 2,    /* the installed configs */
    MT_SOURCE_ALIAS = 3,      /* a file of an alias the user named */
    MT_SOURCE_SAME_ARCH = 4,  /* fallback: another device of the same architecture */
    MT_SOURCE_DEFAULT = 5,    /* fallback: the default heuristic */
    MT_SOURCE_TUNED = 6,      /* what `moetune sweep` wrote on this machine (searched after the config dir) */
};
/* "config dir", "cache", "bundled", "alias", "same architecture", "default", "tuned" */
const char *mt_config_source_str(int source);

/* A looked-up config. Parameters absent from the file are -1. */
typedef struct mt_moe_config {
    /* vLLM's keys (GPU kernels) */
    int block_size_m, block_size_n, block_size_k, group_size_m, num_warps, num_stages;
    int waves_per_eu, matrix_instr_nonkdim, kpack, split_k, num_ctas;
    /* moetune's own */
    int num_sm;                           /* CUDA persistent grid */
    int gemv;                             /* CUDA: 1 for the small-batch path (no tiles) */
    int block_m, block_n, block_k, threads; /* the CPU backend */
    int64_t m_key;    /* the batch-size key chosen */
    int source;       /* enum mt_config_source */
    const char *file; /* the file that served it (owned by the runtime); NULL for the default */
    int foreign;      /* 1: a vLLM file, no provenance */
    int stale;        /* 1: measured with another kernel source (used only with allow_stale) */
} mt_moe_config;

/* Load the configs for key now (the first lookup does it otherwise), so
 * that later lookups are a table hit. */
int mt_runtime_load_moe(mt_runtime *rt, const mt_moe_key *key);

/* The config for M tokens: the key nearest to M as vLLM chooses it, from
 * the first source that has a file for key, else the fallbacks, each
 * reported once through the log callback. Always MT_OK unless an argument
 * is invalid or memory runs out: the default heuristic is the last resort. */
int mt_runtime_lookup_moe(mt_runtime *rt, const mt_moe_key *key, int64_t M, mt_moe_config *out);

/* Paged attention decode (docs/attention-format.md): the key of a file. */
typedef struct mt_attn_key {
    int64_t num_heads, num_kv_heads, head_dim, page_size;
    const char *dtype; /* "bf16" (NULL), "fp16" */
} mt_attn_key;
/* A looked-up attention config: parameters absent from the file are -1. */
typedef struct mt_attn_config {
    int partition, num_warps, pages_per_iter, threads;
    int mma;   /* CUDA: 1 for the tensor-core path */
    int stage; /* CUDA: 1 to copy K and V to shared memory first, N >= 2 a ring of N chunks per warp */
    int query_split; /* CUDA: blocks per KV head, each a share of its query heads */
    int64_t batch_key, ctx_key; /* the file's keys used (0: the default) */
    int source;                 /* enum mt_config_source */
    const char *file;           /* valid while the runtime is open; NULL for the default */
} mt_attn_config;
/* The config for `batch` sequences of context `ctx`: the first source that
 * has the key's file for this device (config dir, tuned, cache, bundled), nearest
 * batch key then nearest context key; else the file of an alias the user
 * named (MT_SOURCE_ALIAS), else of another device of the same architecture
 * (MT_SOURCE_SAME_ARCH), else the backend's default (MT_SOURCE_DEFAULT);
 * each fallback reported once. */
int mt_runtime_lookup_attention(mt_runtime *rt, const mt_attn_key *key, int64_t batch, int64_t ctx, mt_attn_config *out);
/* ---- kernel families: one lookup for all of them ---- */

/* Each family of kernels (fused MoE, attention decode, ...) names its
 * problems by a key, indexes its config files by a point, and has its own
 * parameters. The families this library knows, by index from 0; NULL past
 * the last. "fused_moe": key {E, N, K, topk, block_n, block_k, dtype},
 * point {M}. "attn_decode": key {H, H_kv, D, page, dtype}, point {batch,
 * context}. */
const char *mt_family_name(int index);
enum mt_family_field_kind { MT_FIELD_KEY = 0, MT_FIELD_POINT = 1, MT_FIELD_PARAM = 2 };
/* The name of a family's index-th key field (integers; "dtype" is last),
 * point field or parameter; NULL past the last or for an unknown family. */
const char *mt_family_field(const char *family, int kind, int index);

#define MT_POINT_MAX 2          /* point fields of any family */
#define MT_CONFIG_MAX_PARAMS 24 /* parameters of any family */
/* A looked-up config of any family. */
typedef struct mt_config_values {
    const char *family;                      /* the family's name */
    int nparams;                             /* the family's parameters ... */
    const char *names[MT_CONFIG_MAX_PARAMS]; /* ... their names (static strings) ... */
    int values[MT_CONFIG_MAX_PARAMS];        /* ... and values, -1 where the config says nothing */
    int64_t point_key[MT_POINT_MAX];         /* the file's keys used, per point field (the point for a default) */
    int source;                              /* enum mt_config_source */
    const char *file;                        /* valid while the runtime is open; NULL for the default */
    int foreign;                             /* 1: no provenance (a vLLM or attention file) */
    int stale;                               /* 1: measured with another kernel source (only with allow_stale) */
} mt_config_values;

/* The config of `family` for the problem `key_json` (a JSON object of the
 * family's key fields, e.g. {"E":8,"N":14336,"K":4096,"topk":2}; absent
 * optional fields are 0, an absent dtype the family's default) at `point`
 * (one value per point field, each at least 1): the nearest key of each
 * point field in turn, as vLLM picks the nearest batch size, from the first
 * source that has the key's file for this device (config dir, tuned,
 * cache, bundled), else the file of an alias the user named, else of
 * another device of the same architecture, else the backend's default;
 * each fallback reported once through the log callback, as is a file that
 * cannot be used (malformed, or stale without allow_stale). MT_EINVAL for
 * an unknown family, a malformed key (the log says which field) or a point
 * out of range; MT_ENOMEM. mt_runtime_lookup_moe and
 * mt_runtime_lookup_attention are this lookup for their families. */
int mt_runtime_lookup(mt_runtime *rt, const char *family, const char *key_json, const int64_t *point,
                      mt_config_values *out);
/* The value of a parameter in c, or -1 where it has none. */
int mt_config_value(const mt_config_values *c, const char *name);

/* Paged attention decode on the CPU with the looked-up config. Layouts as
 * kernels/cpu/attn.h: q [B, H, D], caches [num_pages, page_size, H_kv, D],
 * block_table [B, max_pages], context_lens [B], out [B, H, D], all in
 * dtype (MT_DTYPE_BF16, MT_DTYPE_FP16 or MT_DTYPE_FP32). */
int mt_attention_decode_cpu(mt_runtime *rt, int dtype, int64_t B, int64_t num_heads, int64_t num_kv_heads,
                            int64_t head_dim, int64_t page_size, const void *q, const void *k_cache,
                            const void *v_cache, const int32_t *block_table, int64_t max_pages, int64_t num_pages,
                            const int32_t *context_lens, void *out, mt_attn_config *used);

/* Paged attention decode on a CUDA device with the looked-up config
 * (backend "cuda"). Device pointers, layouts as mt_attention_decode_cpu's:
 * q [B, H, D], caches [num_pages, page_size, H_kv, D], block_table
 * [B, max_pages] int32, context_lens [B] int32, out [B, H, D], in dtype
 * (MT_DTYPE_BF16 or MT_DTYPE_FP16). max_context: the batch's longest
 * context (1 to max_pages x page_size; the lengths are on the device), which
 * sizes the grid and picks the config, as vLLM's max_seq_len does. scale:
 * the softmax's (0: 1/sqrt(head_dim)). Enqueued on `stream` (a CUstream;
 * NULL: the runtime's own) and not synchronised; the runtime's workspace is
 * shared with mt_fused_moe_cuda, so calls on one runtime must be ordered.
 * A config the CUDA kernel cannot take (one for the CPU) falls back to the
 * kernel's default, said in the log. MT_ENODEV without a CUDA device. */
int mt_attention_decode_cuda(mt_runtime *rt, int dtype, int64_t B, int64_t num_heads, int64_t num_kv_heads,
                             int64_t head_dim, int64_t page_size, uint64_t q, uint64_t k_cache, uint64_t v_cache,
                             uint64_t block_table, int64_t max_pages, uint64_t context_lens, int64_t max_context,
                             float scale, uint64_t out, void *stream, mt_attn_config *used);

/* ---- the bundled kernels ---- */

/* The fused-MoE forward on the CPU backend with the looked-up config:
 * x [M, K], w1 [E, 2N, K], w2 [E, K, N] in dtype (MT_DTYPE_BF16 or
 * MT_DTYPE_FP32), router logits [M, E]; softmax top-k routing
 * (renormalised when renormalize), out [M, K] float. `used` (may be NULL)
 * receives the config that ran. */
int mt_fused_moe_cpu(mt_runtime *rt, int dtype, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                     int renormalize, const void *x, const void *w1, const void *w2, const float *router_logits,
                     float *out, mt_moe_config *used);

/* The fp8 fused-MoE forward on the CPU backend with the looked-up config
 * for the scheme's file (dtype=fp8_w8a8[,block_shape=[..]] or
 * fp8_w8a8_per_channel): x [M, K] bf16 (uint16 bit patterns), w1
 * [E, 2N, K] and w2 [E, K, N] e4m3 bytes, the scales as q describes them,
 * router logits [M, E]; softmax top-k routing, out [M, K] float. The
 * activations are quantised here, as the scheme says; their time is part of
 * the call. MT_EINVAL for a malformed descriptor (the log says which field).
 * Thread-safe as mt_fused_moe_cpu is. */
int mt_fused_moe_fp8_cpu(mt_runtime *rt, const mt_quant *q, int64_t M, int64_t E, int64_t N, int64_t K,
                         int64_t topk, int renormalize, const uint16_t *x, const uint8_t *w1, const uint8_t *w2,
                         const float *router_logits, float *out, mt_moe_config *used);

/* The fused-MoE forward on a CUDA device with the looked-up config
 * (backend "cuda"). Device pointers: x [M, K], w1 [E, 2N, K], w2 [E, K, N]
 * in dtype (MT_DTYPE_BF16 or MT_DTYPE_FP16), topk_ids [M, topk] int32 and
 * topk_weights [M, topk] float from the engine's router, out [M, K] in
 * dtype. N and K must be multiples of 8. Enqueued on `stream` (a CUstream;
 * NULL: the runtime's own) and not synchronised. The runtime's workspace is
 * reused by every call: calls on one runtime must be ordered (one stream,
 * or one runtime per stream). The variant for a config is compiled on first
 * use and cached on disk. MT_ENODEV without a CUDA device. */
int mt_fused_moe_cuda(mt_runtime *rt, int dtype, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                      uint64_t x, uint64_t w1, uint64_t w2, uint64_t topk_ids, uint64_t topk_weights, uint64_t out,
                      void *stream, mt_moe_config *used);

/* The fp8 fused-MoE forward on a CUDA device (sm_89 or later: fp8 tensor
 * cores) with the looked-up config for the scheme's file. Device pointers:
 * x [M, K] bf16, w1 [E, 2N, K] and w2 [E, K, N] e4m3, topk_ids and
 * topk_weights as mt_fused_moe_cuda's, out [M, K] bf16; q's scale pointers
 * are device memory in the layouts above. N and K must be multiples of 16;
 * a block scheme needs an even block_n and a block_k that is a multiple of
 * 32. The activations are quantised on the stream as part of the call.
 * Enqueued on `stream` and not synchronised, sharing the runtime's
 * workspace as mt_fused_moe_cuda does. MT_EUNSUPPORTED on a GPU without fp8
 * tensor cores (the log says so), MT_ENODEV without a CUDA device. */
int mt_fused_moe_fp8_cuda(mt_runtime *rt, const mt_quant *q, int64_t M, int64_t E, int64_t N, int64_t K, int64_t topk,
                          uint64_t x, uint64_t w1, uint64_t w2, uint64_t topk_ids, uint64_t topk_weights, uint64_t out,
                          void *stream, mt_moe_config *used);

#ifdef __cplusplus
}
#endif
#endif
