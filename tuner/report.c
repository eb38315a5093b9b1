#include "report.h"

#include <math.h>
#include <string.h>

#include "export.h"
#include "moetune/moetune.h"
#include "rt_internal.h"
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

int mt_report_pair(FILE *f, mt_db *db, const mt_device_info *d, const mt_problem *p, int json)
{
    mt_best_list l;
    int rc = mt_best_collect(db, d->id, p->id, mt_kernel_hash(d->backend), &l);
    if (rc != MT_OK) return rc;
    if (json) {
        fprintf(f, "{\"device\":");
        mt_json_str(f, d->name);
        fprintf(f, ",\"backend\":");
        mt_json_str(f, d->backend);
        fprintf(f, ",\"kernel\":");
        mt_json_str(f, p->kernel);
        fprintf(f, ",\"E\":%lld,\"N\":%lld,\"K\":%lld,\"topk\":%lld,\"dtype\":", (long long)p->E, (long long)p->N,
                (long long)p->K, (long long)p->topk);
        mt_json_str(f, p->dtype);
        fprintf(f, ",\"results\":[");
        for (int i = 0; i < l.n; i++) {
            const mt_best *b = &l.v[i];
            fprintf(f, "%s{\"M\":%lld,\"params\":%s,\"median_us\":", i ? "," : "", (long long)b->M, b->params);
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
            fprintf(f, ",\"variants_ok\":%d,\"variants_failed\":%d}", b->n_ok, b->n_failed);
        }
        fprintf(f, "]}");
    } else {
        fprintf(f, "%s (%s), %s E=%lld N=%lld K=%lld top-%lld %s\n", d->name, d->backend, p->kernel, (long long)p->E,
                (long long)p->N, (long long)p->K, (long long)p->topk, p->dtype);
        fprintf(f, "%6s  %-52s %10s %8s %9s %7s %10s %8s %9s\n", "M", "best config", "median us", "IQR us",
                "floor us", "floor/t", "default us", "speedup", "ok/failed");
        for (int i = 0; i < l.n; i++) {
            const mt_best *b = &l.v[i];
            char cfg[128];
            compact(cfg, sizeof cfg, b->params);
            if (b->is_default) strncat(cfg, " (default)", sizeof cfg - strlen(cfg) - 1);
            fprintf(f, "%6lld  %-52s %10.1f %8.1f %9.1f %7.2f ", (long long)b->M, cfg, b->median_us, b->spread_us,
                    b->floor_us, b->efficiency);
            if (b->def_params) fprintf(f, "%10.1f %7.2fx", b->def_median_us, b->def_median_us / b->median_us);
            else fprintf(f, "%10s %8s", "-", "-");
            fprintf(f, " %4d/%-4d\n", b->n_ok, b->n_failed);
        }
    }
    mt_best_list_free(&l);
    return MT_OK;
}
