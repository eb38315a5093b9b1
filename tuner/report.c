#include "report.h"

#include <math.h>
#include <string.h>

#include "export.h"
#include "moetune/moetune.h"
#include "family.h"
#include "log.h"
#include "util.h"

/* {"block_m":16,"block_n":32} -> block_m=16 block_n=32 */
static void compact(char *out, size_t n, const char *json)
{
    size_t o = 0;
    for (const char *p = json; *p && o + 1 < n; p++) {
        if (*p == '{' || *p == '}' || *p == '"') continue;
        out[o++] = *p == ':' ? '=' : *p == ',' ? ' ' : *p;
    }
    out[o] = 0;
}

static void num_or_null(FILE *f, double v)
{
    if (isnan(v) || isinf(v)) fputs("null", f);
    else fprintf(f, "%.10g", v);
}

/* A table's point columns: "M" (fused MoE), "batch" and "ctx" (attention). */
static void point_cells(FILE *f, const mt_family *fam, const mt_best *b, int json)
{
    const int64_t v[2] = {b->M, b->p2};
    for (int k = 0; k < fam->npoint && k < 2; k++) {
        if (json) fprintf(f, "%s\"%s\":%lld", k ? "," : "", fam->point[k], (long long)v[k]);
        else fprintf(f, fam->npoint == 1 ? "%6lld  " : "%7lld ", (long long)v[k]);
    }
    if (!json && fam->npoint > 1) fputc(' ', f);
}

int mt_report_pair(FILE *f, mt_db *db, const mt_device_info *d, const mt_problem *p, int json)
{
    const mt_family *fam = mt_family_find(p->kernel);
    mt_family_key key;
    char why[256];
    if (!fam || mt_family_key_parse(fam, p->key, &key, why, sizeof why) != MT_OK) {
        mt_err("the database holds a problem of kernel '%.32s' with key '%.80s' that this moetune cannot read: it is "
               "damaged, or was written by a later moetune",
               p->kernel, p->key);
        return MT_ECORRUPT;
    }
    mt_best_list l;
    /* the rows of the backend's own kernel source; an engine's (whose id
     * is its version), the rows of the version that measured last */
    const char *hash = fam->kernel_hash(d->backend);
    char ehash[256];
    if (!hash && mt_db_latest_kernel_hash(db, d->id, p->id, NULL, "%" MT_DOWN_GEMM_MARK "%", ehash, sizeof ehash) == MT_OK)
        hash = ehash;
    int rc = mt_best_collect(db, d->id, p->id, hash, &l);
    if (rc != MT_OK) return rc;
    if (json) {
        fprintf(f, "{\"device\":");
        mt_json_str(f, d->name);
        fprintf(f, ",\"backend\":");
        mt_json_str(f, d->backend);
        fprintf(f, ",\"kernel\":");
        mt_json_str(f, p->kernel);
        fprintf(f, ",\"key\":%s", p->key);
        /* the key's fields at the top as well, as scripts read them */
        for (int k = 0; k < fam->nkey; k++)
            if (fam->key[k].required || key.v[k]) fprintf(f, ",\"%s\":%lld", fam->key[k].name, (long long)key.v[k]);
        fprintf(f, ",\"dtype\":");
        mt_json_str(f, p->dtype);
        fprintf(f, ",\"results\":[");
        for (int i = 0; i < l.n; i++) {
            const mt_best *b = &l.v[i];
            fprintf(f, "%s{", i ? "," : "");
            point_cells(f, fam, b, 1);
            fprintf(f, ",\"params\":%s,\"median_us\":", b->params);
            num_or_null(f, b->median_us);
            fprintf(f, ",\"spread_us\":");
            num_or_null(f, b->spread_us);
            fprintf(f, ",\"floor_us\":");
            num_or_null(f, b->floor_us);
            fprintf(f, ",\"fraction_of_floor\":");
            num_or_null(f, b->efficiency);
            fprintf(f, ",\"rel_err\":");
            num_or_null(f, b->rel_err);
            fprintf(f, ",\"is_default\":%s,\"default_params\":%s,\"default_median_us\":", b->is_default ? "true" : "false",
                    b->def_params ? b->def_params : "null");
            num_or_null(f, b->def_median_us);
            fprintf(f, ",\"speedup_vs_default\":");
            num_or_null(f, b->def_params ? b->def_median_us / b->median_us : NAN);
            fprintf(f, ",\"finalists\":%d,\"variants_ok\":%d,\"variants_failed\":%d}", b->finalists, b->n_ok,
                    b->n_failed);
        }
        fprintf(f, "]}");
    } else {
        fprintf(f, "%s (%s), %s", d->name, d->backend, p->kernel);
        for (int k = 0; k < fam->nkey; k++)
            if (fam->key[k].required || key.v[k]) fprintf(f, " %s=%lld", fam->key[k].name, (long long)key.v[k]);
        fprintf(f, " %s\n", p->dtype);
        if (fam->npoint == 1) fprintf(f, "%6s  ", fam->point[0]);
        else fprintf(f, "%7s %7s  ", fam->point[0], fam->point[1]);
        fprintf(f, "%-52s %10s %8s %9s %7s %10s %8s %9s\n", "best config", "median us", "IQR us", "floor us", "floor/t",
                "default us", "speedup", "ok/failed");
        for (int i = 0; i < l.n; i++) {
            const mt_best *b = &l.v[i];
            char cfg[128];
            compact(cfg, sizeof cfg, b->params);
            if (b->is_default) strncat(cfg, " (default)", sizeof cfg - strlen(cfg) - 1);
            point_cells(f, fam, b, 0);
            fprintf(f, "%-52s %10.1f %8.1f %9.1f %7.2f ", cfg, b->median_us, b->spread_us, b->floor_us, b->efficiency);
            if (b->def_params) fprintf(f, "%10.1f %7.2fx", b->def_median_us, b->def_median_us / b->median_us);
            else fprintf(f, "%10s %8s", "-", "-");
            fprintf(f, " %4d/%-4d\n", b->n_ok, b->n_failed);
        }
        if (!l.n) fprintf(f, "(none verified with this build's kernel source)\n");
    }
    mt_best_list_free(&l);
    return MT_OK;
}
