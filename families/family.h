/*
 * Kernel families: what every layer needs to know about a family of kernels
 * (fused MoE, attention decode, ...), declared once as data and a few
 * functions, so that each layer has one code path for all of them.
 *
 * A family has
 *   - a key: the fields that name one problem (E, N, K, topk, dtype | H,
 *     H_kv, D, page, dtype), which also name its config files;
 *   - a point: the fields a config file is indexed by (M | batch, context),
 *     nested in that order, the nearest key at each level picked as vLLM
 *     picks the nearest batch size;
 *   - its parameters: the names a config file's leaves may hold, with the
 *     smallest value each may take;
 *   - file names, the match of another device's file, the default config
 *     per backend, and the kernel source hash that makes a measured config
 *     stale when the kernel changes.
 *
 * Adding a family: a folder under families/ with its descriptor, one line
 * in families/registry.c, its sources in CMakeLists.txt, its docs page.
 *
 * Everything here is immutable data and pure functions: thread-safe.
 */
#ifndef MT_FAMILY_H
#define MT_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "moetune/moetune.h"

#define MT_FAMILY_MAX_KEY 8 /* integer key fields; the dtype is one more */
#define MT_FAMILY_MAX_POINT MT_POINT_MAX
#define MT_FAMILY_MAX_PARAMS MT_CONFIG_MAX_PARAMS

/* One integer field of a key: its name as the key's JSON spells it, the
 * range it may take, and whether a key must give it (absent: 0). */
typedef struct mt_family_field {
    const char *name;
    int64_t min, max;
    int required;
} mt_family_keyfield;

/* One parameter a config may hold, and the smallest value it takes. */
typedef struct mt_family_param {
    const char *name;
    int min;
} mt_family_param;

/* A parsed key: the integer fields in the family's order, and the dtype
 * ("" where the family allows none). */
typedef struct mt_family_key {
    int64_t v[MT_FAMILY_MAX_KEY];
    char dtype[32];
} mt_family_key;

/* A candidate config file: its name, and whether it is in moetune's format
 * (with provenance, so that it can be stale) or a plain nested one. */
typedef struct mt_family_file {
    char name[512];
    int moetune_format;
} mt_family_file;

typedef struct mt_family {
    const char *name; /* "fused_moe", "attn_decode" */
    int version;      /* of the key, point and file layout */
    const char *about;
    const char *sweep_command; /* what tunes it, for the messages that say so */
    int nkey;
    const mt_family_keyfield *key;
    const char *dtype_default; /* the key's dtype when the JSON gives none */
    int npoint;
    const char *point[MT_FAMILY_MAX_POINT];       /* as tables and JSON name them: "M" | "batch", "ctx" */
    const char *point_about[MT_FAMILY_MAX_POINT]; /* in words, for messages: "batch size", "context length" */
    int nparams;
    const mt_family_param *params;
    /* consistency of the fields together (H a multiple of H_kv); 1 when
     * fine, else 0 and why */
    int (*check_key)(const mt_family_key *k, char *why, size_t n);
    /* the key for logs: "E=8, N=14336" */
    void (*describe)(const mt_family_key *k, char *out, size_t n);
    /* the names of k's files for `device` and backend, best first; the count */
    int (*file_names)(const mt_family_key *k, const char *device, const char *backend, mt_family_file *out, int max);
    /* 1 when file_name is one of k's files for some device (written to
     * device); only plain files take part (another device's provenance
     * does not apply here) */
    int (*file_match)(const char *file_name, const mt_family_key *k, char *device, size_t n);
    /* the backend's default config for k at point: values[i] for params[i],
     * -1 where the default says nothing */
    void (*default_config)(const mt_family_key *k, const int64_t *point, const char *backend, int threads, int *values);
    /* the source hash a moetune-format file must carry to be current for
     * backend, or NULL (the backend has no such kernel) */
    const char *(*kernel_hash)(const char *backend);
} mt_family;

/* The registry (families/registry.c), in a fixed order. */
extern const mt_family *const mt_families[];
extern const int mt_nfamilies;

/* The family of this name, or NULL. */
const mt_family *mt_family_find(const char *name);
/* The index of a parameter, or -1. */
int mt_family_param_index(const mt_family *f, const char *name);
/* A key from its JSON text: an object of the family's fields only, each
 * integer in range, "dtype" a string; the required ones present.
 * MT_EPARSE or MT_EINVAL with why naming the field. */
int mt_family_key_parse(const mt_family *f, const char *json, mt_family_key *out, char *why, size_t n);
/* The canonical JSON of a key: every field in the family's order, no
 * spaces, dtype last. Two keys are the same problem when these match. */
int mt_family_key_format(const mt_family *f, const mt_family_key *k, char *out, size_t n);

/* The families' own descriptors (in their folders). */
extern const mt_family mt_family_fused_moe;
extern const mt_family mt_family_attn_decode;

/* Indices of the families' key fields and parameters, for the code that
 * converts to and from their typed structs. */
enum { MT_MOE_KEY_E, MT_MOE_KEY_N, MT_MOE_KEY_K, MT_MOE_KEY_TOPK, MT_MOE_KEY_BLOCK_N, MT_MOE_KEY_BLOCK_K };
enum { MT_ATTN_KEY_H, MT_ATTN_KEY_HKV, MT_ATTN_KEY_D, MT_ATTN_KEY_PAGE };

/* moetune's own fused-MoE file name, which names every key field:
 * E=..,N=..,K=..,topk=..,device_name=..,backend=..,dtype=..[,block_shape=[BN,BK]].moetune.json
 * (the block as vLLM spells it, for fp8_w8a8 in blocks). MT_EINVAL when it
 * does not fit. */
int mt_moe_mtformat_name(char *out, size_t n, int64_t E, int64_t N, int64_t K, int64_t topk, const char *device,
                         const char *backend, const char *dtype, int64_t block_n, int64_t block_k);

#endif
