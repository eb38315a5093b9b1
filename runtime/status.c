#include "moetune/moetune.h"

#include <string.h>

#include "moe_cpu.h" /* the scale layouts, one definition */

/* A switch with no default: a new status code without a string is a
 * compiler warning (-Wswitch), and -Werror makes it a build failure. */
const char *mt_status_str(int status)
{
    switch ((enum mt_status)status) {
    case MT_OK: return "success";
    case MT_EINVAL: return "invalid argument";
    case MT_ENOMEM: return "out of memory";
    case MT_EIO: return "input/output error";
    case MT_ENOTFOUND: return "not found";
    case MT_EDB: return "database error";
    case MT_EPARSE: return "malformed input";
    case MT_ENODEV: return "no such device";
    case MT_EUNSUPPORTED: return "not supported";
    case MT_ETIMEOUT: return "timed out";
    case MT_ECRASH: return "worker process crashed";
    case MT_ECHECK: return "output does not match the reference";
    case MT_ESCHEMA: return "database written by a newer moetune";
    case MT_ECORRUPT: return "database file is corrupt or not a database";
    case MT_EDENIED: return "the server refused the credentials";
    case MT_ENET: return "the server or the network failed";
    case MT_EINTEGRITY: return "a file does not match its manifest";
    }
    return "unknown status";
}

const char *mt_dtype_name(int dtype)
{
    switch (dtype) {
    case MT_DTYPE_BF16: return "bf16";
    case MT_DTYPE_FP16: return "fp16";
    case MT_DTYPE_FP32: return "fp32";
    case MT_DTYPE_FP8_W8A8: return "fp8_w8a8";
    default: return NULL;
    }
}

const char *mt_quant_scheme_name(int scheme)
{
    switch (scheme) {
    case MT_QUANT_TENSOR: return "tensor";
    case MT_QUANT_CHANNEL: return "channel";
    case MT_QUANT_BLOCK: return "block";
    default: return NULL;
    }
}

const char *mt_quant_dtype_name(int scheme)
{
    switch (scheme) {
    case MT_QUANT_TENSOR:
    case MT_QUANT_BLOCK: return "fp8_w8a8";
    case MT_QUANT_CHANNEL: return "fp8_w8a8_per_channel";
    default: return NULL;
    }
}

int64_t mt_quant_weight_scales(const mt_quant *q, int which, int64_t E, int64_t N, int64_t K)
{
    mt_moe_shape s = {E, N, K, 1, MT_DTYPE_FP8_W8A8, 1, q ? q->scheme : 0, q ? q->block_n : 0, q ? q->block_k : 0};
    if (!q || (which != 1 && which != 2) || E < 1 || N < 1 || K < 1) return 0;
    return mt_moe_weight_scales(&s, which);
}

int mt_dtype_parse(const char *s, int *out)
{
    static const struct { const char *name; int v; } tab[] = {
        {"bf16", MT_DTYPE_BF16}, {"bfloat16", MT_DTYPE_BF16},
        {"fp16", MT_DTYPE_FP16}, {"float16", MT_DTYPE_FP16},
        {"fp32", MT_DTYPE_FP32}, {"float32", MT_DTYPE_FP32},
        {"fp8_w8a8", MT_DTYPE_FP8_W8A8},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (s && strcmp(s, tab[i].name) == 0) {
            *out = tab[i].v;
            return MT_OK;
        }
    return MT_EPARSE;
}
