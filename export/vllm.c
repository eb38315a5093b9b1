#include "vllm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void indent(mt_buf *b, int depth)
{
    for (int i = 0; i < depth * 4; i++) mt_buf_put(b, " ", 1);
}

/* Python's json.dumps string escaping with ensure_ascii=True. */
static void py_string(mt_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    mt_buf_put(b, "\"", 1);
    while (*p) {
        unsigned c = *p;
        unsigned cp;
        int extra;
        if (c == '"') mt_buf_puts(b, "\\\"");
        else if (c == '\\') mt_buf_puts(b, "\\\\");
        else if (c == '\n') mt_buf_puts(b, "\\n");
        else if (c == '\r') mt_buf_puts(b, "\\r");
        else if (c == '\t') mt_buf_puts(b, "\\t");
        else if (c == '\b') mt_buf_puts(b, "\\b");
        else if (c == '\f') mt_buf_puts(b, "\\f");
        else if (c < 0x20) mt_buf_printf(b, "\\u%04x", c);
        else if (c < 0x80) mt_buf_put(b, (const char *)p, 1);
        if (c < 0x80) {
            p++;
            continue;
        }
        /* decode UTF-8; invalid bytes pass as U+FFFD */
        if ((c & 0xe0) == 0xc0) { cp = c & 0x1f; extra = 1; }
        else if ((c & 0xf0) == 0xe0) { cp = c & 0x0f; extra = 2; }
        else if ((c & 0xf8) == 0xf0) { cp = c & 0x07; extra = 3; }
        else { cp = 0xfffd; extra = 0; }
        p++;
        for (int i = 0; i < extra; i++, p++) {
            if ((*p & 0xc0) != 0x80) { cp = 0xfffd; break; }
            cp = (cp << 6) | (*p & 0x3f);
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            mt_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else {
            mt_buf_printf(b, "\\u%04x", cp);
        }
    }
    mt_buf_put(b, "\"", 1);
}

static void py_number(mt_buf *b, double v)
{
    /* cJSON keeps no int/float distinction: integral values are written as
     * Python writes ints, which is what every vLLM config value is. */
    if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0) {
        mt_buf_printf(b, "%lld", (long long)v);
        return;
    }
    if (isnan(v)) { mt_buf_puts(b, "NaN"); return; }
    if (isinf(v)) { mt_buf_puts(b, v > 0 ? "Infinity" : "-Infinity"); return; }
    /* the shortest text that reads back as the same double, as Python's repr */
    char tmp[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    mt_buf_puts(b, tmp);
    if (!strpbrk(tmp, ".eE")) mt_buf_puts(b, ".0");
}

void mt_json_python(mt_buf *b, const cJSON *item, int depth)
{
    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        int obj = cJSON_IsObject(item);
        const cJSON *c = item->child;
        if (!c) {
            mt_buf_puts(b, obj ? "{}" : "[]");
            return;
        }
        mt_buf_puts(b, obj ? "{\n" : "[\n");
        for (; c; c = c->next) {
            indent(b, depth + 1);
            if (obj) {
                py_string(b, c->string ? c->string : "");
                mt_buf_puts(b, ": ");
            }
            mt_json_python(b, c, depth + 1);
            mt_buf_puts(b, c->next ? ",\n" : "\n");
        }
        indent(b, depth);
        mt_buf_puts(b, obj ? "}" : "]");
    } else if (cJSON_IsString(item)) {
        py_string(b, item->valuestring);
    } else if (cJSON_IsNumber(item)) {
        py_number(b, item->valuedouble);
    } else if (cJSON_IsTrue(item)) {
        mt_buf_puts(b, "true");
    } else if (cJSON_IsFalse(item)) {
        mt_buf_puts(b, "false");
    } else {
        mt_buf_puts(b, "null");
    }
}

int mt_vllm_is_m_key(const char *k)
{
    if (!k || !*k || (k[0] == '0' && k[1])) return 0;
    for (const char *p = k; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return strlen(k) <= 12;
}

int mt_vllm_is_kernel_key(const char *k)
{
    static const char *const keys[] = {"BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M",
                                       "num_warps", "num_stages", "waves_per_eu", "matrix_instr_nonkdim",
                                       "kpack", "SPLIT_K", "num_ctas"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0) return 1;
    return 0;
}

#define WHY(...) snprintf(why, why_len, __VA_ARGS__)

int mt_vllm_file_read(const char *path, mt_vllm_file *out, char *why, size_t why_len)
{
    const char *base = strrchr(path, '/');
    memset(out, 0, sizeof *out);
    base = base ? base + 1 : path;
    char detail[256] = "";
    int rc = mt_vllm_name_parse(base, &out->name, detail, sizeof detail);
    if (rc != MT_OK) {
        WHY("not a vLLM fused-MoE config file name (E=...,N=...,device_name=...[,dtype=...][,block_shape=[N,K]].json): %s",
            detail);
        return rc;
    }
    mt_vllm_name name = out->name;
    rc = mt_vllm_file_read_content(path, out, why, why_len);
    out->name = name;
    return rc;
}

int mt_vllm_file_read_content(const char *path, mt_vllm_file *out, char *why, size_t why_len)
{
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int rc = mt_read_file(path, &text, &len, why, why_len);
    if (rc != MT_OK) return rc;
    const char *end = NULL;
    out->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!out->root) {
        size_t off = end ? (size_t)(end - text) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off && i < len; i++) line += text[i] == '\n';
        WHY("malformed JSON near line %zu (byte %zu)", line, off);
        free(text);
        return MT_EPARSE;
    }
    free(text);
    if (!cJSON_IsObject(out->root)) {
        WHY("the top level is not a JSON object");
        goto bad;
    }
    for (cJSON *e = out->root->child; e; e = e->next) {
        if (!mt_vllm_is_m_key(e->string)) {
            if (!cJSON_IsString(e) && !cJSON_IsNumber(e)) {
                WHY("top-level key '%s' is neither a batch size nor a scalar vLLM drops", e->string);
                goto bad;
            }
            continue;
        }
        if (!cJSON_IsObject(e)) {
            WHY("entry for M=%s is not an object", e->string);
            goto bad;
        }
        for (cJSON *v = e->child; v; v = v->next)
            if (!(cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble)) && !cJSON_IsBool(v)) {
                WHY("M=%s: value of '%s' is not an integer", e->string, v->string);
                goto bad;
            }
        out->n_m++;
    }
    if (out->n_m == 0) {
        WHY("no batch-size keys");
        goto bad;
    }
    return MT_OK;
bad:
    cJSON_Delete(out->root);
    out->root = NULL;
    return MT_EPARSE;
}

void mt_vllm_file_free(mt_vllm_file *f)
{
    if (!f) return;
    cJSON_Delete(f->root);
    f->root = NULL;
}

static int by_batch_ctx(const void *a, const void *b)
{
    const mt_attn_entry *x = a, *y = b;
    if (x->batch != y->batch) return x->batch < y->batch ? -1 : 1;
    return x->ctx < y->ctx ? -1 : x->ctx > y->ctx;
}

int mt_point_file_write(const char *path, int depth, const mt_attn_entry *e, int n, char *err, size_t err_len)
{
    if (n < 1) return snprintf(err, err_len, "no entries to write"), MT_EINVAL;
    if (depth < 1 || depth > 2) return snprintf(err, err_len, "a file nests 1 or 2 point levels, not %d", depth), MT_EINVAL;
    mt_attn_entry *s = malloc((size_t)n * sizeof *s);
    if (!s) return MT_ENOMEM;
    memcpy(s, e, (size_t)n * sizeof *s);
    for (int i = 0; depth == 1 && i < n; i++) s[i].ctx = 1; /* one level: the second field is not a key */
    qsort(s, (size_t)n, sizeof *s, by_batch_ctx);
    cJSON *root = cJSON_CreateObject(), *cur = NULL;
    int rc = MT_OK;
    for (int i = 0; i < n && rc == MT_OK; i++) {
        char bk[32], ck[32], where[80];
        if (depth == 2) snprintf(where, sizeof where, "batch %lld, context %lld", (long long)s[i].batch, (long long)s[i].ctx);
        else snprintf(where, sizeof where, "point %lld", (long long)s[i].batch);
        if (s[i].batch < 1 || s[i].ctx < 1 || (i && s[i].batch == s[i - 1].batch && s[i].ctx == s[i - 1].ctx)) {
            snprintf(err, err_len, "%s: %s", where, s[i].batch < 1 || s[i].ctx < 1 ? "keys must be positive" : "given twice");
            rc = MT_EINVAL;
            break;
        }
        cJSON *p = cJSON_Parse(s[i].params);
        if (!cJSON_IsObject(p)) {
            cJSON_Delete(p);
            snprintf(err, err_len, "%s: the parameters are not a JSON object", where);
            rc = MT_EINVAL;
            break;
        }
        snprintf(bk, sizeof bk, "%lld", (long long)s[i].batch);
        snprintf(ck, sizeof ck, "%lld", (long long)s[i].ctx);
        if (depth == 1) {
            cJSON_AddItemToObject(root, bk, p);
            continue;
        }
        if (!i || s[i].batch != s[i - 1].batch) cur = cJSON_AddObjectToObject(root, bk);
        cJSON_AddItemToObject(cur, ck, p);
    }
    free(s);
    if (rc == MT_OK) {
        mt_buf b = {0};
        mt_json_python(&b, root, 0);
        mt_buf_puts(&b, "\n");
        rc = b.oom ? MT_ENOMEM : mt_write_file_atomic(path, b.data, b.len, err, err_len);
        mt_buf_free(&b);
    }
    cJSON_Delete(root);
    return rc;
}

int mt_attn_file_write(const char *path, const mt_attn_entry *e, int n, char *err, size_t err_len)
{
    return mt_point_file_write(path, 2, e, n, err, err_len);
}
