#include "moetune/moetune.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mt_device_vllm_name(char *out, size_t out_len, const char *raw)
{
    size_t o = 0;
    int in_run = 0;
    if (!out || out_len == 0 || !raw) return MT_EINVAL;
    for (const char *p = raw; *p; p++) {
        int sep = isspace((unsigned char)*p) || *p == '/';
        if (sep) {
            if (in_run) continue;
            in_run = 1;
        } else {
            in_run = 0;
        }
        if (o + 1 >= out_len) return MT_EINVAL;
        out[o++] = sep ? '_' : *p;
    }
    out[o] = 0;
    /* vLLM merges every H200 variant (NVL, 141GB, ...) into one name: the
     * token must stand alone between underscores. */
    for (const char *t = out; *t;) {
        size_t n = strcspn(t, "_");
        if (n == 4 && strncmp(t, "H200", 4) == 0) {
            if (out_len < sizeof "NVIDIA_H200") return MT_EINVAL;
            strcpy(out, "NVIDIA_H200");
            break;
        }
        t += n;
        if (*t == '_') t++;
    }
    return MT_OK;
}

int mt_vllm_name_format(char *out, size_t out_len, const mt_vllm_name *nm)
{
    int n;
    if (!out || !nm) return MT_EINVAL;
    n = snprintf(out, out_len, "E=%lld,N=%lld,device_name=%s", (long long)nm->E, (long long)nm->N,
                 nm->device);
    if (n < 0 || (size_t)n >= out_len) return MT_EINVAL;
    if (nm->dtype[0]) {
        int k = snprintf(out + n, out_len - n, ",dtype=%s", nm->dtype);
        if (k < 0 || (size_t)k >= out_len - n) return MT_EINVAL;
        n += k;
    }
    /* vLLM leaves block_shape out when either element is 0 */
    if (nm->block_n > 0 && nm->block_k > 0) {
        int k = snprintf(out + n, out_len - n, ",block_shape=[%lld,%lld]", (long long)nm->block_n,
                         (long long)nm->block_k);
        if (k < 0 || (size_t)k >= out_len - n) return MT_EINVAL;
        n += k;
    }
    if ((size_t)n + 6 > out_len) return MT_EINVAL;
    strcpy(out + n, ".json");
    return MT_OK;
}

static int parse_i64(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    char *end;
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (!isdigit((unsigned char)buf[0])) return -1;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

#define WHY(...) do { if (why) snprintf(why, why_len, __VA_ARGS__); } while (0)

int mt_vllm_name_parse(const char *file, mt_vllm_name *out, char *why, size_t why_len)
{
    size_t len;
    int seen = 0; /* bit 0 E, 1 N, 2 device_name */
    if (!file || !out) return MT_EINVAL;
    memset(out, 0, sizeof *out);
    len = strlen(file);
    if (len < 5 || strcmp(file + len - 5, ".json") != 0) {
        WHY("the name does not end in .json");
        return MT_EPARSE;
    }
    len -= 5;
    size_t i = 0;
    while (i < len) {
        /* a field runs to the next comma outside brackets */
        size_t j = i;
        int depth = 0;
        while (j < len && (file[j] != ',' || depth > 0)) {
            if (file[j] == '[') depth++;
            if (file[j] == ']') depth--;
            j++;
        }
        const char *f = file + i;
        size_t flen = j - i;
        const char *eq = memchr(f, '=', flen);
        if (!eq) {
            WHY("field '%.*s' has no '='", (int)flen, f);
            return MT_EPARSE;
        }
        size_t klen = (size_t)(eq - f);
        const char *v = eq + 1;
        size_t vlen = flen - klen - 1;
        if (klen == 1 && f[0] == 'E') {
            if (parse_i64(v, vlen, &out->E) || out->E <= 0) { WHY("E is not a positive integer"); return MT_EPARSE; }
            seen |= 1;
        } else if (klen == 1 && f[0] == 'N') {
            if (parse_i64(v, vlen, &out->N) || out->N <= 0) { WHY("N is not a positive integer"); return MT_EPARSE; }
            seen |= 2;
        } else if (klen == 11 && strncmp(f, "device_name", 11) == 0) {
            if (vlen >= sizeof out->device) { WHY("device name too long"); return MT_EPARSE; }
            memcpy(out->device, v, vlen);
            out->device[vlen] = 0;
            seen |= 4;
        } else if (klen == 5 && strncmp(f, "dtype", 5) == 0) {
            if (vlen == 0 || vlen >= sizeof out->dtype) { WHY("bad dtype field"); return MT_EPARSE; }
            memcpy(out->dtype, v, vlen);
            out->dtype[vlen] = 0;
        } else if (klen == 11 && strncmp(f, "block_shape", 11) == 0) {
            const char *comma = memchr(v, ',', vlen);
            /* vLLM's spelling has no space after the comma; SGLang's has one */
            if (vlen < 5 || v[0] != '[' || v[vlen - 1] != ']' || !comma ||
                parse_i64(v + 1, (size_t)(comma - v - 1), &out->block_n) ||
                parse_i64(comma + 1, (size_t)(v + vlen - 1 - comma - 1), &out->block_k)) {
                WHY("block_shape '%.*s' is not of the form [N,K] (vLLM spelling, no space)", (int)vlen, v);
                return MT_EPARSE;
            }
        } else {
            WHY("field '%.*s' is not part of vLLM's fused-MoE file names", (int)klen, f);
            return MT_EUNSUPPORTED;
        }
        i = j + 1;
    }
    if (seen != 7) {
        WHY("the name lacks %s", !(seen & 1) ? "E=" : !(seen & 2) ? "N=" : "device_name=");
        return MT_EPARSE;
    }
    return MT_OK;
}

int mt_device_rocm_vllm_name(char *out, size_t out_len, unsigned id, const char *market)
{
    /* vLLM's map of PCI device ids (VLLM-FORMAT.md) */
    static const struct { unsigned id; const char *name; } ids[] = {
        {0x74a0, "AMD_Instinct_MI300A"}, {0x74a1, "AMD_Instinct_MI300X"}, {0x74b5, "AMD_Instinct_MI300X"},
        {0x74a2, "AMD_Instinct_MI308X"}, {0x74a5, "AMD_Instinct_MI325X"}, {0x74b9, "AMD_Instinct_MI325X"},
        {0x74a9, "AMD_Instinct_MI300X_HF"}, {0x74bd, "AMD_Instinct_MI300X_HF"},
    };
    if (!out || !out_len) return MT_EINVAL;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].id == id) {
            if (strlen(ids[i].name) + 1 > out_len) return MT_EINVAL;
            strcpy(out, ids[i].name);
            return MT_OK;
        }
    if (!market || !*market) return MT_EINVAL;
    return mt_device_vllm_name(out, out_len, market);
}

const char *mt_device_arch_of(const char *name)
{
    /* Which devices may share configs. AMD devices are told apart by gfx
     * target and compute-unit count, so an MI308X (80 CUs) never reads an
     * MI300X (304 CUs) file. The old *_OAM names are deliberately absent:
     * they are read only when the user names them as an alias. */
    static const struct { const char *name; const char *arch; } tab[] = {
        {"NVIDIA_H100_80GB_HBM3", "sm_90"}, {"NVIDIA_H100", "sm_90"}, {"NVIDIA_H100_PCIe", "sm_90"},
        {"NVIDIA_H100_NVL", "sm_90"}, {"NVIDIA_H200", "sm_90"}, {"NVIDIA_H20", "sm_90"}, {"NVIDIA_H20-3e", "sm_90"},
        {"NVIDIA_H800", "sm_90"}, {"NVIDIA_GH200_480GB", "sm_90"},
        {"NVIDIA_A100-SXM4-80GB", "sm_80"}, {"NVIDIA_A100-SXM4-40GB", "sm_80"}, {"NVIDIA_A100_80GB_PCIe", "sm_80"},
        {"NVIDIA_A100-PCIE-40GB", "sm_80"}, {"NVIDIA_A800-SXM4-80GB", "sm_80"},
        {"NVIDIA_L40S", "sm_89"}, {"NVIDIA_L40", "sm_89"}, {"NVIDIA_L4", "sm_89"}, {"NVIDIA_GeForce_RTX_4090", "sm_89"},
        {"NVIDIA_B200", "sm_100"}, {"NVIDIA_GB200", "sm_100"}, {"NVIDIA_B300_SXM6_AC", "sm_103"},
        {"NVIDIA_GB300", "sm_103"}, {"NVIDIA_RTX_PRO_6000_Blackwell_Server_Edition", "sm_120"},
        {"AMD_Instinct_MI300X", "gfx942/304"}, {"AMD_Instinct_MI300X_HF", "gfx942/304"},
        {"AMD_Instinct_MI325X", "gfx942/304"}, {"AMD_Instinct_MI308X", "gfx942/80"},
        {"AMD_Instinct_MI300A", "gfx942/228"}, {"AMD_Instinct_MI350X", "gfx950/256"},
        {"AMD_Instinct_MI355X", "gfx950/256"},
    };
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(tab[i].name, name) == 0) return tab[i].arch;
    return NULL;
}

int mt_device_cpu_name(char *out, size_t out_len, char *model_out, size_t model_len)
{
    char model[128] = "", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!out || out_len == 0) return MT_EINVAL;
    while (f && fgets(line, sizeof line, f)) {
        int x86 = strncmp(line, "model name", 10) == 0;
        if (!x86 && (model[0] || strncmp(line, "Model", 5) != 0)) continue;
        char *c = strchr(line, ':');
        if (!c) continue;
        for (c++; *c == ' ' || *c == '\t'; c++) {}
        c[strcspn(c, "\n")] = 0;
        snprintf(model, sizeof model, "%s", c);
        if (x86) break;
    }
    if (f) fclose(f);
    if (!model[0]) snprintf(model, sizeof model, "unknown processor");
    if (model_out && model_len) snprintf(model_out, model_len, "%s", model);
    return mt_device_cpu_name_of(out, out_len, model);
}

int mt_device_cpu_name_of(char *out, size_t out_len, const char *model)
{
    char spelled[120], clean[120];
    if (!out || out_len == 0 || !model) return MT_EINVAL;
    if (mt_device_vllm_name(spelled, sizeof spelled, model) != MT_OK) snprintf(spelled, sizeof spelled, "unknown");
    /* vLLM has no CPU files, so this name is ours to spell: it becomes a
     * file name and a bucket key (publish takes letters, digits and
     * "=,._+-[]"), and "Intel(R) Xeon(R) CPU @ 2.20GHz" is a common model
     * name. Trademark marks go, any other character becomes '_', and runs
     * of '_' are one. */
    size_t k = 0;
    for (const char *p = spelled; *p && k + 1 < sizeof clean; p++) {
        if (!strncmp(p, "(R)", 3) || !strncmp(p, "(r)", 3)) { p += 2; continue; }
        if (!strncmp(p, "(TM)", 4) || !strncmp(p, "(tm)", 4)) { p += 3; continue; }
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr(".+-", ch))) ch = '_';
        if (ch == '_' && (k == 0 || clean[k - 1] == '_')) continue;
        clean[k++] = ch;
    }
    while (k && clean[k - 1] == '_') k--;
    clean[k] = 0;
    int n = snprintf(out, out_len, "CPU_%s", k ? clean : "unknown");
    return n < 0 || (size_t)n >= out_len ? MT_EINVAL : MT_OK;
}

int mt_attn_name_format(char *out, size_t out_len, const mt_attn_name *nm)
{
    if (!out || !nm || !nm->device[0] || !nm->dtype[0]) return MT_EINVAL;
    int n = snprintf(out, out_len, "attn_decode,H=%lld,H_kv=%lld,D=%lld,page=%lld,device_name=%s,dtype=%s.json",
                     (long long)nm->num_heads, (long long)nm->num_kv_heads, (long long)nm->head_dim,
                     (long long)nm->page_size, nm->device, nm->dtype);
    return n < 0 || (size_t)n >= out_len ? MT_EINVAL : MT_OK;
}

/* "KEY=" then digits (at least one, positive) then ',' */
static int take_int(const char **p, const char *key, int64_t *v)
{
    size_t kl = strlen(key);
    if (strncmp(*p, key, kl)) return 0;
    const char *s = *p + kl;
    int64_t x = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 12) x = x * 10 + (*s++ - '0'), digits++;
    if (!digits || x < 1 || *s != ',') return 0;
    *v = x;
    *p = s + 1;
    return 1;
}

int mt_attn_name_parse(const char *file, mt_attn_name *out, char *why, size_t why_len)
{
    char tmp[8];
    if (!why) why = tmp, why_len = sizeof tmp;
    if (!file || !out) return MT_EINVAL;
    memset(out, 0, sizeof *out);
    const char *p = file;
    if (strncmp(p, "attn_decode,", 12)) return snprintf(why, why_len, "not an attention config file"), MT_EPARSE;
    p += 12;
    if (!take_int(&p, "H=", &out->num_heads) || !take_int(&p, "H_kv=", &out->num_kv_heads) ||
        !take_int(&p, "D=", &out->head_dim) || !take_int(&p, "page=", &out->page_size))
        return snprintf(why, why_len, "expected H=, H_kv=, D=, page= with positive integers"), MT_EPARSE;
    if (strncmp(p, "device_name=", 12)) return snprintf(why, why_len, "expected device_name="), MT_EPARSE;
    p += 12;
    size_t dl = strcspn(p, ",");
    if (!dl || dl >= sizeof out->device || p[dl] != ',')
        return snprintf(why, why_len, "a device name, then ,dtype="), MT_EPARSE;
    memcpy(out->device, p, dl);
    p += dl + 1;
    if (strncmp(p, "dtype=", 6)) return snprintf(why, why_len, "expected dtype="), MT_EPARSE;
    p += 6;
    size_t tl = strlen(p);
    if (tl <= 5 || strcmp(p + tl - 5, ".json") || tl - 5 >= sizeof out->dtype || memchr(p, ',', tl))
        return snprintf(why, why_len, "expected dtype=NAME.json at the end"), MT_EPARSE;
    memcpy(out->dtype, p, tl - 5);
    if (out->num_heads % out->num_kv_heads)
        return snprintf(why, why_len, "H=%lld is not a multiple of H_kv=%lld", (long long)out->num_heads,
                        (long long)out->num_kv_heads), MT_EPARSE;
    return MT_OK;
}
