/* vLLM's fused-MoE config files: read them, and write them byte for byte
 * as vLLM's json.dump(obj, f, indent=4) plus a newline would. */
#ifndef MT_VLLM_H
#define MT_VLLM_H

#include <cjson/cJSON.h>

#include "buf.h"
#include "moetune/moetune.h"

/* Append `item` in Python json.dumps(indent=4) layout (ensure_ascii). */
void mt_json_python(mt_buf *b, const cJSON *item, int depth);

/* A parsed vLLM file. */
typedef struct mt_vllm_file {
    mt_vllm_name name;
    cJSON *root;   /* the whole object, in file order */
    int n_m;       /* number of batch-size keys */
} mt_vllm_file;

/* Read and check one file. Refused (with a reason in why): names that are
 * not vLLM fused-MoE names (e.g. backend=flydsl), malformed JSON, a top
 * level that is not an object, an entry that is not an object of integers
 * or booleans, a file without any batch-size key. */
int mt_vllm_file_read(const char *path, mt_vllm_file *out, char *why, size_t why_len);
void mt_vllm_file_free(mt_vllm_file *f);
/* The same checks of the content alone, whatever the file's name (SGLang's
 * spelling, a _down file); out->name is left zero. */
int mt_vllm_file_read_content(const char *path, mt_vllm_file *out, char *why, size_t why_len);

/* 1 when key is a batch size: a decimal integer without sign or leading
 * zeros. */
int mt_vllm_is_m_key(const char *key);

/* Keep only the keys vLLM passes to its kernel launch. */
int mt_vllm_is_kernel_key(const char *key);

/* One entry of an attention decode config file: the parameters (a JSON
 * object's text) chosen for a batch size and a context length. */
typedef struct mt_attn_entry {
    int64_t batch, ctx;
    const char *params;
} mt_attn_entry;
/* Write an attention config file (docs/attention-format.md) at path:
 * batch keys, then context keys, in increasing order, laid out as Python's
 * json.dump(indent=4) does, written to a temporary name and renamed.
 * MT_EINVAL for a duplicate (batch, ctx) or params that are not an object. */
int mt_attn_file_write(const char *path, const mt_attn_entry *e, int n, char *err, size_t err_len);
/* The same for any family's plain file: depth 1 (one key level, the
 * entries' ctx ignored) or 2 (batch, then context). */
int mt_point_file_write(const char *path, int depth, const mt_attn_entry *e, int n, char *err, size_t err_len);

#endif
