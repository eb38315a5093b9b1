/*
 * moetune.h: the public interface of libmoetune.
 *
 * Every call returns an int status: MT_OK (0) or a negative MT_E* code.
 * mt_status_str() gives each code a fixed English string; detail about a
 * particular failure goes to the log callback. The library never aborts and
 * never prints on its own: without a callback it is silent.
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

/* Element types of weights and activations. */
enum mt_dtype { MT_DTYPE_BF16 = 0, MT_DTYPE_FP16 = 1, MT_DTYPE_FP32 = 2 };

/* "bf16", "fp16", "fp32"; NULL for an unknown value. */
const char *mt_dtype_name(int dtype);
/* Parse the above names; returns MT_OK or MT_EPARSE. */
int mt_dtype_parse(const char *s, int *out);

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

/* The index of the key nearest to m among keys[0..n-1], exactly as vLLM
 * chooses it: the minimum of |key - m|, ties to the earliest key in the
 * given (file) order. Returns -1 when n == 0. */
int mt_nearest_m(const int64_t *keys, int n, int64_t m);

#ifdef __cplusplus
}
#endif
#endif
