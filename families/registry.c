/*
 * The registry of kernel families, and what every family shares: its key
 * in JSON, parsed and written one way.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "family.h"
#include "family_backend.h"

/* One line per family. */
const mt_family *const mt_families[] = {
    &mt_family_fused_moe,
    &mt_family_attn_decode,
};
const int mt_nfamilies = (int)(sizeof mt_families / sizeof mt_families[0]);

/* Each family's GPU kernels: one line per (family, backend). */
static const mt_family_backend *const backends[] = {
    &mt_backend_fused_moe_cuda,
    &mt_backend_attn_decode_cuda,
};

const mt_family_backend *mt_family_backend_find(const mt_family *f, const char *backend)
{
    /* HIP runs the CUDA kernels' source through hipRTC, with the same host code */
    if (backend && !strcmp(backend, "hip")) backend = "cuda";
    for (size_t i = 0; f && backend && i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i]->family == f && !strcmp(backends[i]->backend, backend)) return backends[i];
    return NULL;
}

const mt_family *mt_family_find(const char *name)
{
    for (int i = 0; name && i < mt_nfamilies; i++)
        if (strcmp(mt_families[i]->name, name) == 0) return mt_families[i];
    return NULL;
}

int mt_family_param_index(const mt_family *f, const char *name)
{
    for (int i = 0; f && name && i < f->nparams; i++)
        if (strcmp(f->params[i].name, name) == 0) return i;
    return -1;
}

int mt_family_key_parse(const mt_family *f, const char *json, mt_family_key *out, char *why, size_t n)
{
    char tmp[8];
    if (!why) why = tmp, n = sizeof tmp;
    if (!f || !json || !out) return snprintf(why, n, "no family or key"), MT_EINVAL;
    memset(out, 0, sizeof *out);
    snprintf(out->dtype, sizeof out->dtype, "%s", f->dtype_default);
    cJSON *root = cJSON_Parse(json);
    int rc = MT_OK, seen[MT_FAMILY_MAX_KEY] = {0};
    if (!cJSON_IsObject(root)) {
        snprintf(why, n, "the %s key is not a JSON object: %.80s", f->name, json);
        cJSON_Delete(root);
        return MT_EPARSE;
    }
    for (const cJSON *e = root->child; e && rc == MT_OK; e = e->next) {
        if (strcmp(e->string, "dtype") == 0) {
            if (!cJSON_IsString(e) || strlen(e->valuestring) >= sizeof out->dtype)
                rc = MT_EINVAL, snprintf(why, n, "the %s key's dtype is not a short string", f->name);
            else
                snprintf(out->dtype, sizeof out->dtype, "%s", e->valuestring);
            continue;
        }
        int i = 0;
        while (i < f->nkey && strcmp(f->key[i].name, e->string)) i++;
        if (i == f->nkey) {
            char names[256] = "";
            for (int j = 0; j < f->nkey; j++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s, ", f->key[j].name);
            snprintf(why, n, "the %s key has no field '%.40s' (its fields: %sdtype)", f->name, e->string, names);
            rc = MT_EINVAL;
        } else if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
                   e->valuedouble < (double)f->key[i].min || e->valuedouble > (double)f->key[i].max) {
            snprintf(why, n, "the %s key's %s is not an integer from %lld to %lld", f->name, f->key[i].name,
                     (long long)f->key[i].min, (long long)f->key[i].max);
            rc = MT_EINVAL;
        } else {
            out->v[i] = (int64_t)e->valuedouble;
            seen[i] = 1;
        }
    }
    cJSON_Delete(root);
    for (int i = 0; rc == MT_OK && i < f->nkey; i++)
        if (f->key[i].required && !seen[i])
            rc = MT_EINVAL, snprintf(why, n, "the %s key has no %s", f->name, f->key[i].name);
    if (rc == MT_OK && f->check_key && !f->check_key(out, why, n)) rc = MT_EINVAL;
    return rc;
}

int mt_family_key_format(const mt_family *f, const mt_family_key *k, char *out, size_t n)
{
    size_t len = 0;
    int w = snprintf(out, n, "{");
    for (int i = 0; w >= 0 && (size_t)w < n - len && i < f->nkey; i++) {
        len += (size_t)w;
        w = snprintf(out + len, n - len, "\"%s\":%lld,", f->key[i].name, (long long)k->v[i]);
    }
    if (w < 0 || (size_t)w >= n - len) return MT_EINVAL;
    len += (size_t)w;
    /* dtypes are short identifiers ("bf16", "fp8_w8a8"): nothing to escape,
     * and a key that would need it is refused */
    for (const char *p = k->dtype; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) return MT_EINVAL;
    w = snprintf(out + len, n - len, "\"dtype\":\"%s\"}", k->dtype);
    return w < 0 || (size_t)w >= n - len ? MT_EINVAL : MT_OK;
}

/* ---- the public face of the registry (moetune.h) ---- */

const char *mt_family_name(int index)
{
    return index >= 0 && index < mt_nfamilies ? mt_families[index]->name : NULL;
}

const char *mt_family_field(const char *family, int kind, int index)
{
    const mt_family *f = mt_family_find(family);
    if (!f || index < 0) return NULL;
    switch (kind) {
    case MT_FIELD_KEY: return index < f->nkey ? f->key[index].name : index == f->nkey ? "dtype" : NULL;
    case MT_FIELD_POINT: return index < f->npoint ? f->point[index] : NULL;
    case MT_FIELD_PARAM: return index < f->nparams ? f->params[index].name : NULL;
    }
    return NULL;
}
