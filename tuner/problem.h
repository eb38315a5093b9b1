/* Problems: model presets, Hugging Face config.json, explicit shapes, and
 * the tensor/expert-parallel arithmetic that names vLLM's files. */
#ifndef MT_PROBLEM_H
#define MT_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

/* A checkpoint's quantisation, from its config's quantization_config, named
 * as vLLM names it in its config files: dtype fp8_w8a8 (fp8 weights and
 * activations: per tensor, per channel or in blocks), int8_w8a8, int8_w8a16,
 * int4_w4a16, or the method's own name where vLLM's fused-MoE files have no
 * name for it (mxfp4). dtype "" when the config says nothing. */
typedef struct mt_model_quant {
    char dtype[32];
    int64_t block_n, block_k; /* weight_block_size; 0: not in blocks */
    int64_t group_size;       /* weight-only schemes: the group; 0: none */
    int per_channel;          /* fp8 weights scaled per output channel (activations per token) */
    int zero_point;           /* int4 weights with a zero point per group (AWQ; GPTQ with sym false) */
    char about[192];          /* what the config says, in words */
} mt_model_quant;

typedef struct mt_model_shape {
    char name[64];
    int64_t experts, hidden, intermediate, topk;
    int renormalize;
    mt_model_quant quant;
    /* the architecture runs a shared expert beside the routed ones that
     * SGLang fuses into its fused-MoE call by default (DeepSeek-V3, Kimi-K2,
     * GLM-4.5, Llama 4): SGLang's kernel then sees E + 1 experts */
    int sglang_fuses_shared;
} mt_model_shape;

typedef struct mt_preset {
    const char *name;
    const char *about;
    int64_t experts, hidden, intermediate, topk;
    int renormalize;
    /* the published checkpoint's quantisation as vLLM names it, NULL when
     * it is bf16: a sweep of the preset says that it tunes the shape's
     * unquantised kernel */
    const char *published;
    /* a preset named for its fp8 checkpoint (qwen3-30b-a3b-fp8): that
     * checkpoint's weight blocks, taken as a model config's would be */
    int64_t fp8_block;
} mt_preset;

extern const mt_preset mt_presets[];
extern const int mt_n_presets;

/* 1 when SGLang fuses the shared expert of the preset's architecture. */
int mt_preset_sglang_fuses_shared(const mt_preset *p);
/* Find a preset by name (case-insensitive). */
const mt_preset *mt_preset_find(const char *name);

/* Read the MoE shape from a Hugging Face config.json. err names the file and
 * the missing or malformed key. */
int mt_model_config_read(const char *path, mt_model_shape *out, char *err, size_t err_len);

/* E and N of the kernel for tp and ep, as vLLM names its files: N is
 * intermediate / tp, or with ep > 1, E is experts / ep and N is the full
 * intermediate. err says what is inconsistent. */
int mt_shape_shard(const mt_model_shape *m, int tp, int ep, int64_t *E, int64_t *N, char *err, size_t err_len);

/* vLLM's 18 batch sizes. */
extern const int64_t mt_default_batch_sizes[18];
/* Parse "1,8,64": positive, strictly increasing after sorting, no
 * duplicates. *out malloc'ed. */
int mt_batch_sizes_parse(const char *s, int64_t **out, int *n, char *err, size_t err_len);

#endif
