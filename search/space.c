/* The operations every family's parameter space shares: enumerating its
 * valid points, narrowing it, its configs as JSON, seeds and grid order. */
#include "space.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moetune/moetune.h"

int mt_space_param_index(const mt_space *sp, const char *name)
{
    for (int i = 0; i < sp->nparams; i++)
        if (strcmp(sp->params[i].name, name) == 0) return i;
    return -1;
}

int mt_space_seeds(const mt_space *sp, const mt_space_ctx *ctx, mt_config *out, int max)
{
    int g = mt_space_param_index(sp, "GEMV");
    if (g < 0 || max < 1 || strcmp(sp->backend, "cuda") != 0) return 0;
    /* the GEMV point that won at M = 1 on three of the four TARGETS shapes
     * (bench/results/2026-11-24-h100-moe-gemv): 64 columns a CTA, 4 warps */
    mt_config c = {{16, 64, 64, 1, 4, 2, 0, 1}};
    char why[128];
    /* --only may have narrowed GEMV (or another key) away from it */
    for (int p = 0; p < sp->nparams; p++) {
        int ok = 0;
        for (int k = 0; k < sp->params[p].nvalues; k++) ok |= sp->params[p].values[k] == c.v[p];
        if (!ok) return 0;
    }
    if (!sp->valid(sp, &c, ctx, why, sizeof why)) return 0;
    out[0] = c;
    return 1;
}

int mt_space_fix(mt_space *sp, const char *spec, char *why, size_t n)
{
    mt_space fixed = *sp;
    const char *p = spec;
    while (p && *p) {
        const char *end = strchr(p, ','), *eq = strchr(p, '=');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[64];
        if (!eq || eq > p + len || eq == p || (size_t)(eq - p) >= sizeof name) {
            snprintf(why, n, "'%.*s' is not NAME=VALUE", (int)len, p);
            return MT_EINVAL;
        }
        memcpy(name, p, (size_t)(eq - p));
        name[eq - p] = 0;
        int i = mt_space_param_index(&fixed, name);
        if (i < 0) {
            int o = snprintf(why, n, "no parameter '%s'; this space has", name);
            for (int j = 0; j < fixed.nparams && o > 0 && (size_t)o < n; j++)
                o += snprintf(why + o, n - (size_t)o, " %s", fixed.params[j].name);
            return MT_EINVAL;
        }
        char *stop;
        long v = strtol(eq + 1, &stop, 10);
        int found = -1;
        for (int k = 0; stop == p + len && stop > eq + 1 && k < fixed.params[i].nvalues; k++)
            if (fixed.params[i].values[k] == v) found = k;
        if (found < 0) {
            int o = snprintf(why, n, "%s=%.*s: the values are", name, (int)(p + len - eq - 1), eq + 1);
            for (int k = 0; k < fixed.params[i].nvalues && o > 0 && (size_t)o < n; k++)
                o += snprintf(why + o, n - (size_t)o, " %d", fixed.params[i].values[k]);
            return MT_EINVAL;
        }
        fixed.params[i].nvalues = 1;
        fixed.params[i].values[0] = (int)v;
        p = end ? end + 1 : NULL;
    }
    *sp = fixed;
    return MT_OK;
}

int mt_space_enumerate(const mt_space *sp, const mt_space_ctx *ctx, mt_config **out)
{
    size_t total = 1, n = 0;
    mt_config *pts;
    char why[128];
    for (int i = 0; i < sp->nparams; i++) total *= (size_t)sp->params[i].nvalues;
    pts = malloc((total ? total : 1) * sizeof *pts);
    if (!pts) return MT_ENOMEM;
    for (size_t idx = 0; idx < total; idx++) {
        mt_config c;
        size_t r = idx;
        memset(&c, 0, sizeof c);
        /* the last parameter varies fastest */
        for (int i = sp->nparams - 1; i >= 0; i--) {
            c.v[i] = sp->params[i].values[r % (size_t)sp->params[i].nvalues];
            r /= (size_t)sp->params[i].nvalues;
        }
        if (sp->valid(sp, &c, ctx, why, sizeof why)) pts[n++] = c;
    }
    *out = pts;
    return (int)n;
}

int mt_config_to_json(const mt_space *sp, const mt_config *c, char *out, size_t len)
{
    size_t o = 0;
    int k = snprintf(out, len, "{");
    if (k < 0 || (size_t)k >= len) return MT_EINVAL;
    o = (size_t)k;
    for (int i = 0; i < sp->nparams; i++) {
        k = snprintf(out + o, len - o, "%s\"%s\":%d", i ? "," : "", sp->params[i].name, c->v[i]);
        if (k < 0 || (size_t)k >= len - o) return MT_EINVAL;
        o += (size_t)k;
    }
    k = snprintf(out + o, len - o, "}");
    if (k < 0 || (size_t)k >= len - o) return MT_EINVAL;
    return MT_OK;
}

int mt_config_from_json(const mt_space *sp, const char *json, mt_config *out)
{
    cJSON *root = cJSON_Parse(json);
    int rc = MT_OK;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return MT_EPARSE;
    }
    memset(out, 0, sizeof *out);
    for (int i = 0; i < sp->nparams && rc == MT_OK; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(root, sp->params[i].name);
        if (!cJSON_IsNumber(v)) rc = MT_EPARSE;
        else out->v[i] = v->valueint;
    }
    cJSON_Delete(root);
    return rc;
}

static int same(const mt_config *a, const mt_config *b, int np)
{
    for (int i = 0; i < np; i++)
        if (a->v[i] != b->v[i]) return 0;
    return 1;
}

int mt_grid_order(const mt_config *pts, int n, const mt_config *def, int np, int budget, int *order)
{
    int cnt = 0, def_idx = -1;
    for (int i = 0; i < n; i++)
        if (def && same(&pts[i], def, np)) def_idx = i;
    if (def_idx >= 0) order[cnt++] = def_idx;
    int want = budget > 0 && budget < n ? budget : n;
    int rest = want - cnt;
    int others = n - (def_idx >= 0);
    for (int q = 0; q < rest; q++) {
        /* the q-th of `rest` evenly spaced picks among the non-default points */
        int k = (int)((long long)q * others / rest);
        int i = k + (def_idx >= 0 && k >= def_idx);
        order[cnt++] = i;
    }
    return cnt;
}
