#include "problem.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "moetune/moetune.h"

/* Checked against each model's config.json (Hugging Face hub) on
 * 2026-11-23, and on 2026-12-06 for gpt-oss-20b, Kimi-K2, GLM-4.5/4.6/4.5-Air
 * and Llama 4; the key each figure comes from is in `about`. */
const mt_preset mt_presets[] = {
    {"mixtral-8x7b", "Mixtral-8x7B: num_local_experts 8, hidden 4096, intermediate_size 14336, top-2", 8, 4096, 14336, 2, 1, NULL, 0},
    {"mixtral-8x22b", "Mixtral-8x22B: num_local_experts 8, hidden 6144, intermediate_size 16384, top-2", 8, 6144, 16384, 2, 1, NULL, 0},
    {"deepseek-v3", "DeepSeek-V3 / R1: n_routed_experts 256, hidden 7168, moe_intermediate_size 2048, top-8", 256, 7168, 2048, 8, 1,
     "fp8_w8a8, block_shape=[128,128]", 0},
    /* DeepSeek's published checkpoint itself: quant_method fp8,
     * weight_block_size [128, 128], dynamic activations */
    {"deepseek-v3-fp8", "DeepSeek-V3 / R1 as published: as deepseek-v3, fp8 e4m3 weights in 128x128 blocks", 256, 7168,
     2048, 8, 1, "fp8_w8a8, block_shape=[128,128]", 128},
    {"qwen3-30b-a3b", "Qwen3-30B-A3B: num_experts 128, hidden 2048, moe_intermediate_size 768, top-8", 128, 2048, 768, 8, 1, NULL, 0},
    {"qwen3-235b-a22b", "Qwen3-235B-A22B: num_experts 128, hidden 4096, moe_intermediate_size 1536, top-8", 128, 4096, 1536, 8, 1, NULL, 0},
    /* Qwen's FP8 checkpoints: quant_method fp8, weight_block_size [128, 128],
     * dynamic activations */
    {"qwen3-30b-a3b-fp8", "Qwen3-30B-A3B-FP8: as Qwen3-30B-A3B, fp8 e4m3 weights in 128x128 blocks", 128, 2048, 768, 8, 1,
     "fp8_w8a8, block_shape=[128,128]", 128},
    {"qwen3-235b-a22b-fp8", "Qwen3-235B-A22B-FP8: as Qwen3-235B-A22B, fp8 e4m3 weights in 128x128 blocks", 128, 4096, 1536,
     8, 1, "fp8_w8a8, block_shape=[128,128]", 128},
    {"gpt-oss-120b", "gpt-oss-120b: num_local_experts 128, hidden 2880, intermediate_size 2880, top-4", 128, 2880, 2880, 4, 1,
     "mxfp4", 0},
    {"gpt-oss-20b", "gpt-oss-20b: num_local_experts 32, hidden 2880, intermediate_size 2880, top-4", 32, 2880, 2880, 4, 1,
     "mxfp4", 0},
    {"kimi-k2", "Kimi-K2: n_routed_experts 384, hidden 7168, moe_intermediate_size 2048, top-8", 384, 7168, 2048, 8, 1,
     "fp8_w8a8, block_shape=[128,128]", 0},
    {"kimi-k2-fp8", "Kimi-K2 as published: as kimi-k2, fp8 e4m3 weights in 128x128 blocks", 384, 7168, 2048, 8, 1,
     "fp8_w8a8, block_shape=[128,128]", 128},
    {"glm-4.5", "GLM-4.5 / GLM-4.6: n_routed_experts 160, hidden 5120, moe_intermediate_size 1536, top-8", 160, 5120, 1536, 8, 1, NULL, 0},
    {"glm-4.6", "GLM-4.6: as GLM-4.5 (n_routed_experts 160, hidden 5120, moe_intermediate_size 1536, top-8)", 160, 5120, 1536, 8, 1, NULL, 0},
    {"glm-4.5-air", "GLM-4.5-Air: n_routed_experts 128, hidden 4096, moe_intermediate_size 1408, top-8", 128, 4096, 1408, 8, 1, NULL, 0},
    /* Llama 4 routes top-1 through a sigmoid: no renormalisation */
    {"llama-4-scout", "Llama-4-Scout-17B-16E: text_config num_local_experts 16, hidden 5120, intermediate_size 8192, top-1", 16, 5120, 8192, 1, 0, NULL, 0},
    {"llama-4-maverick", "Llama-4-Maverick-17B-128E: text_config num_local_experts 128, hidden 5120, intermediate_size 8192, top-1", 128, 5120, 8192, 1, 0, NULL, 0},
    {"olmoe-1b-7b", "OLMoE-1B-7B: num_experts 64, hidden 2048, intermediate_size 1024, top-8 (norm_topk_prob false)", 64, 2048, 1024, 8, 0, NULL, 0},
    /* not a real model: small enough that the CPU default job ends in
     * minutes on two cores, large enough that tiling matters */
    {"tiny", "synthetic: 8 experts, hidden 512, intermediate 256, top-2 (the CPU default job)", 8, 512, 256, 2, 1, NULL, 0},
};
const int mt_n_presets = (int)(sizeof mt_presets / sizeof mt_presets[0]);

const int64_t mt_default_batch_sizes[18] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 1536, 2048, 3072, 4096};

/* SGLang's shared-expert fusion (on by default): the architectures it
 * fuses, as its model code names them, and the presets of those models */
static const char *const sglang_fused_archs[] = {"DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM", "Glm4MoeForCausalLM",
                                                 "Llama4ForConditionalGeneration", "Llama4ForCausalLM", NULL};
static const char *const sglang_fused_presets[] = {"deepseek-v3", "deepseek-v3-fp8", "kimi-k2", "kimi-k2-fp8", "glm-4.5", "glm-4.6", "glm-4.5-air",
                                                   "llama-4-scout", "llama-4-maverick", NULL};

int mt_preset_sglang_fuses_shared(const mt_preset *p)
{
    for (int i = 0; p && sglang_fused_presets[i]; i++)
        if (!strcmp(p->name, sglang_fused_presets[i])) return 1;
    return 0;
}

const mt_preset *mt_preset_find(const char *name)
{
    for (int i = 0; i < mt_n_presets; i++)
        if (strcasecmp(mt_presets[i].name, name) == 0) return &mt_presets[i];
    return NULL;
}

/* The first key of `names` that `obj` holds, as a positive integer. 0: none
 * of them; -1: present but not a positive integer below 2^31 (the range
 * is checked before the conversion: 1e300 must not reach the cast). */
static int get_int(const cJSON *obj, const char *const *names, int64_t *out, const char **which)
{
    for (; *names; names++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, *names);
        if (!v) continue;
        *which = *names;
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble < 2147483648.0) ||
            v->valuedouble != (double)(int64_t)v->valuedouble)
            return -1;
        *out = (int64_t)v->valuedouble;
        return 1;
    }
    return 0;
}

static int64_t int_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e9 ? (int64_t)v->valuedouble : 0;
}

/* a block size of [n, k]: both positive integers within reason (a hostile
 * 1e300 is never converted), else 0 */
static void block_of(const cJSON *a, int64_t *n, int64_t *k)
{
    *n = *k = 0;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2) return;
    const cJSON *x = cJSON_GetArrayItem(a, 0), *y = cJSON_GetArrayItem(a, 1);
    if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y) || !(x->valuedouble >= 1 && x->valuedouble <= 65536) ||
        !(y->valuedouble >= 1 && y->valuedouble <= 65536))
        return;
    *n = (int64_t)x->valuedouble;
    *k = (int64_t)y->valuedouble;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* compressed-tensors: the first config group's weights and input
 * activations (num_bits, type float|int, strategy, group_size, block
 * structure) */
static void quant_compressed(const cJSON *qc, mt_model_quant *q)
{
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(qc, "config_groups");
    const cJSON *g = cJSON_IsObject(groups) ? groups->child : NULL;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(g, "weights");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(g, "input_activations");
    int64_t wb = int_of(w, "num_bits"), ab = cJSON_IsObject(a) ? int_of(a, "num_bits") : 0;
    int wfloat = !strcmp(str_of(w, "type"), "float"), afloat = !strcmp(str_of(a, "type"), "float");
    const char *strat = str_of(w, "strategy");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(w, "block_structure");
    if (wb == 8 && wfloat && ab == 8 && afloat) snprintf(q->dtype, sizeof q->dtype, "fp8_w8a8");
    else if (wb == 8 && !wfloat && ab == 8 && !afloat) snprintf(q->dtype, sizeof q->dtype, "int8_w8a8");
    else if (wb == 8 && !wfloat && !ab) snprintf(q->dtype, sizeof q->dtype, "int8_w8a16");
    else if (wb == 4 && !wfloat && !ab) snprintf(q->dtype, sizeof q->dtype, "int4_w4a16");
    else snprintf(q->dtype, sizeof q->dtype, "compressed-tensors");
    block_of(bs, &q->block_n, &q->block_k);
    q->group_size = int_of(w, "group_size");
    q->per_channel = wb == 8 && wfloat && !strcmp(strat, "channel");
    const cJSON *sym = cJSON_GetObjectItemCaseSensitive(w, "symmetric");
    q->zero_point = wb == 4 && !wfloat && cJSON_IsFalse(sym);
    snprintf(q->about, sizeof q->about, "compressed-tensors, weights %lld-bit %s (%s%s)%s%s", (long long)wb,
             wfloat ? "float" : "int", strat[0] ? strat : "?", q->zero_point ? ", asymmetric" : "",
             ab ? ", activations " : ", activations unquantised", ab ? (afloat ? "8-bit float" : "8-bit int") : "");
}

/* quantization_config: what the engine would run the experts in */
static void quant_read(const cJSON *qc, mt_model_quant *q)
{
    memset(q, 0, sizeof *q);
    if (!cJSON_IsObject(qc)) return;
    const char *method = str_of(qc, "quant_method");
    const cJSON *wbs = cJSON_GetObjectItemCaseSensitive(qc, "weight_block_size");
    if (!strcmp(method, "fp8")) {
        snprintf(q->dtype, sizeof q->dtype, "fp8_w8a8");
        block_of(wbs, &q->block_n, &q->block_k);
        if (q->block_n > 0)
            snprintf(q->about, sizeof q->about, "fp8 (%s) with %lldx%lld block scales, %s activation scales",
                     str_of(qc, "fmt")[0] ? str_of(qc, "fmt") : "e4m3", (long long)q->block_n, (long long)q->block_k,
                     str_of(qc, "activation_scheme")[0] ? str_of(qc, "activation_scheme") : "dynamic");
        else
            snprintf(q->about, sizeof q->about, "fp8 per tensor, %s activation scales",
                     str_of(qc, "activation_scheme")[0] ? str_of(qc, "activation_scheme") : "dynamic");
    } else if (!strcmp(method, "compressed-tensors")) {
        quant_compressed(qc, q);
    } else if (!strcmp(method, "awq") || !strcmp(method, "gptq") || !strcmp(method, "awq_marlin") ||
               !strcmp(method, "gptq_marlin")) {
        int64_t bits = int_of(qc, "bits");
        snprintf(q->dtype, sizeof q->dtype, "%s", bits == 8 ? "int8_w8a16" : bits == 4 ? "int4_w4a16" : method);
        q->group_size = int_of(qc, "group_size");
        /* as vLLM's moe_wna16 reads them: AWQ's zero_point (AutoAWQ
         * writes true), GPTQ's zero points where sym is false */
        const cJSON *zp = cJSON_GetObjectItemCaseSensitive(qc, "zero_point");
        const cJSON *sym = cJSON_GetObjectItemCaseSensitive(qc, "sym");
        q->zero_point = bits == 4 && (!strncmp(method, "awq", 3) ? !cJSON_IsFalse(zp) : cJSON_IsFalse(sym));
        snprintf(q->about, sizeof q->about, "%s, %lld-bit weights in groups of %lld%s", method, (long long)bits,
                 (long long)q->group_size, q->zero_point ? " with zero points" : "");
    } else if (method[0]) {
        /* mxfp4 (gpt-oss), bitsandbytes, ...: no fused-MoE file name of vLLM's */
        snprintf(q->dtype, sizeof q->dtype, "%.31s", method);
        snprintf(q->about, sizeof q->about, "%s", method);
    }
}

int mt_model_config_read(const char *path, mt_model_shape *out, char *err, size_t n)
{
    static const char *const k_experts[] = {"num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts", NULL};
    /* moe_intermediate_size first: Qwen-MoE and DeepSeek also carry a dense
     * intermediate_size that is not the experts'. DBRX keeps its MoE keys
     * under ffn_config (moe_num_experts, moe_top_k, ffn_hidden_size). */
    static const char *const k_inter[] = {"moe_intermediate_size", "intermediate_size", "ffn_hidden_size", NULL};
    static const char *const k_hidden[] = {"hidden_size", "d_model", NULL};
    static const char *const k_topk[] = {"num_experts_per_tok", "experts_per_token", "moe_topk", "top_k", "moe_top_k", NULL};
    static const struct { const char *what; const char *const *keys; } need[] = {
        {"expert count", k_experts}, {"intermediate size", k_inter}, {"hidden size", k_hidden}, {"top-k", k_topk}};
    char *text = NULL;
    size_t len;
    int rc = mt_read_file(path, &text, &len, err, n);
    if (rc != MT_OK) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        snprintf(err, n, "cannot read model config '%s': %s near byte %ld; expected a Hugging Face config.json",
                 path, root ? "the top level is not an object" : "malformed JSON",
                 root ? 0L : (long)(end ? end - text : 0));
        cJSON_Delete(root);
        free(text);
        return MT_EPARSE;
    }
    free(text);
    /* multimodal models keep the language model's keys under text_config */
    const cJSON *obj = root;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    const cJSON *ffn = cJSON_GetObjectItemCaseSensitive(root, "ffn_config");
    int64_t vals[4];
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 4; i++) {
        const char *which = NULL;
        int got = get_int(obj, need[i].keys, &vals[i], &which);
        if (got == 0 && cJSON_IsObject(tc)) got = get_int(tc, need[i].keys, &vals[i], &which);
        if (got == 0 && cJSON_IsObject(ffn)) got = get_int(ffn, need[i].keys, &vals[i], &which);
        if (got == 1) continue;
        if (got < 0)
            snprintf(err, n, "model config '%s': key '%s' (%s) is not a positive integer", path, which, need[i].what);
        else {
            char keys[256] = "";
            for (const char *const *k = need[i].keys; *k; k++)
                snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s'%s'", keys[0] ? ", " : "", *k);
            snprintf(err, n, "model config '%s' has no %s: none of %s at its top level, under text_config or under "
                             "ffn_config; if it is a Mixture-of-Experts model, give the shape with --experts, "
                             "--intermediate, --hidden and --topk",
                     path, need[i].what, keys);
        }
        cJSON_Delete(root);
        return MT_EPARSE;
    }
    out->experts = vals[0];
    out->intermediate = vals[1];
    out->hidden = vals[2];
    out->topk = vals[3];
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(tc) && !cJSON_GetObjectItemCaseSensitive(root, "norm_topk_prob") ? tc : root, "norm_topk_prob");
    /* Mixtral and gpt-oss renormalise without saying so */
    out->renormalize = cJSON_IsBool(norm) ? cJSON_IsTrue(norm) : 1;
    /* a quantised checkpoint: its experts run in what the config says */
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (!qc && cJSON_IsObject(tc)) qc = cJSON_GetObjectItemCaseSensitive(tc, "quantization_config");
    quant_read(qc, &out->quant);
    /* a shared expert SGLang fuses: the architecture is one it fuses, and
     * the config has a shared expert (Llama 4's is implicit) */
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
    const cJSON *nsh = cJSON_GetObjectItemCaseSensitive(root, "n_shared_experts");
    for (int i = 0; cJSON_IsString(a0) && sglang_fused_archs[i]; i++)
        if (!strcmp(a0->valuestring, sglang_fused_archs[i]))
            out->sglang_fuses_shared = !strncmp(a0->valuestring, "Llama4", 6) || (cJSON_IsNumber(nsh) && nsh->valuedouble >= 1);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "_name_or_path");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    snprintf(out->name, sizeof out->name, "%s",
             cJSON_IsString(name) ? name->valuestring : cJSON_IsString(mt) ? mt->valuestring : path);
    cJSON_Delete(root);
    if (out->topk > out->experts) {
        snprintf(err, n, "model config '%s': top-k %lld exceeds the expert count %lld", path, (long long)out->topk,
                 (long long)out->experts);
        return MT_EPARSE;
    }
    return MT_OK;
}

int mt_shape_shard(const mt_model_shape *m, int tp, int ep, int64_t *E, int64_t *N, char *err, size_t n)
{
    if (tp < 1 || ep < 1) {
        snprintf(err, n, "--tp and --ep must be at least 1");
        return MT_EINVAL;
    }
    if (m->topk > m->experts) {
        snprintf(err, n, "top-k %lld exceeds the expert count %lld", (long long)m->topk, (long long)m->experts);
        return MT_EINVAL;
    }
    if (ep > 1) {
        /* vLLM with expert parallelism: experts are split, each keeps its
         * whole intermediate size */
        if (tp > 1) {
            snprintf(err, n, "--tp %d with --ep %d: with expert parallelism vLLM splits experts, not their "
                     "intermediate size; give --ep alone", tp, ep);
            return MT_EINVAL;
        }
        if (m->experts % ep) {
            snprintf(err, n, "%lld experts do not divide by --ep %d", (long long)m->experts, ep);
            return MT_EINVAL;
        }
        *E = m->experts / ep;
        *N = m->intermediate;
        return MT_OK;
    }
    if (m->intermediate % tp) {
        snprintf(err, n, "intermediate size %lld does not divide by --tp %d", (long long)m->intermediate, tp);
        return MT_EINVAL;
    }
    *E = m->experts;
    *N = m->intermediate / tp;
    return MT_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int mt_batch_sizes_parse(const char *s, int64_t **out, int *count, char *err, size_t n)
{
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int64_t *v = malloc((size_t)cap * sizeof *v);
    int k = 0;
    if (!v) return MT_ENOMEM;
    const char *p = s;
    while (1) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x < 1 || x > (1LL << 24) || (*end && *end != ',')) {
            snprintf(err, n, "--batch-sizes '%s': expected positive integers separated by commas (e.g. 1,8,64)", s);
            free(v);
            return MT_EPARSE;
        }
        v[k++] = x;
        if (!*end) break;
        p = end + 1;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_i64);
    for (int i = 1; i < k; i++)
        if (v[i] == v[i - 1]) {
            snprintf(err, n, "--batch-sizes '%s': %lld appears twice", s, (long long)v[i]);
            free(v);
            return MT_EPARSE;
        }
    *out = v;
    *count = k;
    return MT_OK;
}
