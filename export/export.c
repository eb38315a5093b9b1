#include "export.h"
#include "family.h"

#include "vllm.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "moetune/moetune.h"
#include "vllm.h"


struct collect { mt_best_list *l; int failed_pass; int err; };

/* A config's parameters as moetune stores them: a JSON object of numbers.
 * A row that holds anything else comes from a damaged or hostile database,
 * and is an error, never a file. */
static int params_ok(const char *params, int64_t M)
{
    cJSON *p = cJSON_Parse(params);
    int ok = cJSON_IsObject(p) && p->child;
    for (const cJSON *v = ok ? p->child : NULL; v; v = v->next) ok &= cJSON_IsNumber(v) || cJSON_IsBool(v);
    cJSON_Delete(p);
    if (!ok)
        mt_err("the database holds a config for M=%lld whose parameters are not a JSON object of numbers ('%.60s'): "
               "it is damaged or was not written by moetune; nothing is exported from it",
               (long long)M, params);
    return ok;
}

static mt_best *slot(mt_best_list *l, int64_t M, int64_t p2)
{
    if (l->n && l->v[l->n - 1].M == M && l->v[l->n - 1].p2 == p2) return &l->v[l->n - 1];
    for (int i = 0; i < l->n; i++)
        if (l->v[i].M == M && l->v[i].p2 == p2) return &l->v[i];
    mt_best *v = realloc(l->v, (size_t)(l->n + 1) * sizeof *v);
    if (!v) return NULL;
    l->v = v;
    mt_best *b = &l->v[l->n++];
    memset(b, 0, sizeof *b);
    b->M = M;
    b->p2 = p2;
    b->def_median_us = NAN;
    return b;
}

static int collect_row(const mt_result_row *r, void *u)
{
    struct collect *c = u;
    if (!params_ok(r->params, r->M)) return c->err = MT_ECORRUPT;
    mt_best *b = slot(c->l, r->M, r->p2);
    if (!b) return c->err = MT_ENOMEM;
    if (c->failed_pass) {
        b->n_failed++;
        return 0;
    }
    b->n_ok++;
    /* rows come ordered by point then median: the first is the best */
    if (!b->params) {
        b->params = strdup(r->params);
        b->median_us = r->median_us;
        b->spread_us = r->spread_us;
        b->rel_err = r->rel_err;
        b->floor_us = r->floor_us;
        b->efficiency = r->efficiency;
        b->reps = r->reps;
        b->is_default = r->is_default;
        if (!b->params) return c->err = MT_ENOMEM;
    }
    if (r->is_default && !b->def_params) {
        b->def_params = strdup(r->params);
        b->def_median_us = r->median_us;
        if (!b->def_params) return c->err = MT_ENOMEM;
    }
    return 0;
}

struct fin { mt_best *b; int n; int err; };

/* The finalists decide: the fastest side by side is the best, and the
 * default (always among them) gives the speedup on the same footing. */
static int fin_row(int64_t cfg, const char *params, double median, void *u)
{
    struct fin *f = u;
    mt_best *b = f->b;
    (void)cfg;
    if (!params_ok(params, b->M)) return f->err = MT_ECORRUPT;
    if (f->n++ == 0) {
        char *p = strdup(params);
        if (!p) return f->err = MT_ENOMEM;
        if (b->median_us > 0 && b->floor_us > 0) b->efficiency = b->floor_us / median;
        free(b->params);
        b->params = p;
        b->median_us = median;
        b->is_default = b->def_params && !strcmp(p, b->def_params);
    }
    if (b->def_params && !strcmp(params, b->def_params)) b->def_median_us = median;
    b->finalists = f->n;
    return 0;
}

int mt_best_collect(mt_db *db, int64_t dev, int64_t prob, const char *hash, mt_best_list *out)
{
    struct collect c = {out, 0, 0};
    memset(out, 0, sizeof *out);
    int rc = mt_db_results(db, dev, prob, "ok", hash, collect_row, &c);
    if (rc == MT_OK) {
        c.failed_pass = 1;
        rc = mt_db_results(db, dev, prob, "failed", hash, collect_row, &c);
    }
    if (rc == MT_OK) rc = c.err;
    /* a point with failures only has no best: drop it */
    int k = 0;
    for (int i = 0; i < out->n; i++) {
        if (out->v[i].params) out->v[k++] = out->v[i];
        else free(out->v[i].def_params);
    }
    out->n = k;
    for (int i = 0; rc == MT_OK && i < out->n; i++) {
        struct fin f = {&out->v[i], 0, 0};
        rc = mt_db_finalists(db, dev, prob, (int64_t[2]){out->v[i].M, out->v[i].p2}, hash, fin_row, &f);
        if (rc == MT_OK) rc = f.err;
    }
    if (rc != MT_OK) mt_best_list_free(out);
    return rc;
}

void mt_best_list_free(mt_best_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->v[i].params);
        free(l->v[i].def_params);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

int mt_mtformat_name(char *out, size_t n, const mt_device_info *d, const mt_problem *p)
{
    return mt_moe_mtformat_name(out, n, p->E, p->N, p->K, p->topk, d->name, d->backend, p->dtype, p->block_n, p->block_k);
}

static void add_num(cJSON *o, const char *k, double v)
{
    if (isnan(v)) cJSON_AddNullToObject(o, k);
    else cJSON_AddNumberToObject(o, k, v);
}

static int write_json(const char *dir, const char *name, cJSON *root, int quiet)
{
    char path[4096], err[512];
    mt_buf b = {0};
    mt_json_python(&b, root, 0);
    mt_buf_puts(&b, "\n");
    if (b.oom) {
        mt_buf_free(&b);
        return MT_ENOMEM;
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = mt_write_file_atomic(path, b.data, b.len, err, sizeof err);
    mt_buf_free(&b);
    if (rc != MT_OK) mt_err("%s", err);
    else if (!quiet) printf("%s\n", path);
    return rc;
}

static int export_moetune(const mt_export_opts *o, const mt_device_info *d, const mt_problem *p,
                          const mt_best_list *l, const char *hash)
{
    char name[512];
    if (mt_mtformat_name(name, sizeof name, d, p) != MT_OK) return MT_EINVAL;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "moetune-config/1");
    cJSON_AddStringToObject(root, "kernel", p->kernel);
    cJSON_AddStringToObject(root, "backend", d->backend);
    cJSON *dev = cJSON_AddObjectToObject(root, "device");
    mt_device_info_to_json(dev, d);
    add_num(dev, "bandwidth_gbs", d->bandwidth_gbs > 0 ? d->bandwidth_gbs : NAN);
    add_num(dev, "peak_gflops", d->peak_gflops > 0 ? d->peak_gflops : NAN);
    /* fp8 problems' compute ceiling, where the device has one measured */
    if (d->peak_fp8_gflops > 0) add_num(dev, "peak_fp8_gflops", d->peak_fp8_gflops);
    cJSON *pr = cJSON_AddObjectToObject(root, "problem");
    cJSON_AddNumberToObject(pr, "E", (double)p->E);
    cJSON_AddNumberToObject(pr, "N", (double)p->N);
    cJSON_AddNumberToObject(pr, "K", (double)p->K);
    cJSON_AddNumberToObject(pr, "topk", (double)p->topk);
    cJSON_AddStringToObject(pr, "dtype", p->dtype);
    cJSON_AddBoolToObject(pr, "renormalize", p->renormalize);
    if (!strncmp(p->dtype, "fp8_w8a8", 8)) {
        /* the scheme in full, as libmoetune's mt_quant takes it */
        int channel = !strcmp(p->dtype, "fp8_w8a8_per_channel"), block = p->block_n > 0 && p->block_k > 0;
        char groups[64];
        snprintf(groups, sizeof groups, "per token, in 1x%lld groups", (long long)p->block_k);
        cJSON *q = cJSON_AddObjectToObject(pr, "quant");
        cJSON_AddStringToObject(q, "scheme", block ? "block" : channel ? "channel" : "tensor");
        cJSON_AddStringToObject(q, "weights", "float8_e4m3fn");
        cJSON_AddStringToObject(q, "activations", "float8_e4m3fn");
        if (block) {
            cJSON *bs = cJSON_AddArrayToObject(q, "block_shape");
            cJSON_AddItemToArray(bs, cJSON_CreateNumber((double)p->block_n));
            cJSON_AddItemToArray(bs, cJSON_CreateNumber((double)p->block_k));
        }
        cJSON_AddStringToObject(q, "weight_scales", block ? "per block" : channel ? "per output channel" : "per expert");
        cJSON_AddStringToObject(q, "activation_scales", block ? groups : channel ? "per token" : "per tensor");
    }
    cJSON *pv = cJSON_AddObjectToObject(root, "provenance");
    cJSON_AddStringToObject(pv, "moetune_version", MOETUNE_VERSION);
    cJSON_AddStringToObject(pv, "kernel_hash", hash ? hash : "");
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(pv, "exported_at", ts);
    cJSON *cf = cJSON_AddObjectToObject(root, "configs");
    for (int i = 0; i < l->n; i++) {
        const mt_best *b = &l->v[i];
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)b->M);
        cJSON *e = cJSON_AddObjectToObject(cf, key);
        cJSON_AddItemToObject(e, "params", cJSON_Parse(b->params));
        add_num(e, "median_us", b->median_us);
        add_num(e, "spread_us", b->spread_us);
        cJSON_AddNumberToObject(e, "reps", b->reps);
        add_num(e, "rel_err", b->rel_err);
        add_num(e, "floor_us", b->floor_us);
        add_num(e, "fraction_of_floor", b->efficiency);
        cJSON_AddBoolToObject(e, "is_default", b->is_default);
        if (b->def_params) cJSON_AddItemToObject(e, "default_params", cJSON_Parse(b->def_params));
        else cJSON_AddNullToObject(e, "default_params");
        add_num(e, "default_median_us", b->def_median_us);
        add_num(e, "speedup_vs_default", b->def_params ? b->def_median_us / b->median_us : NAN);
        cJSON_AddNumberToObject(e, "finalists", b->finalists);
        cJSON_AddNumberToObject(e, "variants_ok", b->n_ok);
        cJSON_AddNumberToObject(e, "variants_failed", b->n_failed);
    }
    int rc = write_json(o->out_dir, name, root, o->quiet);
    cJSON_Delete(root);
    return rc;
}

int mt_vllm_file_name(char *out, size_t n, const mt_device_info *d, const mt_problem *p)
{
    mt_vllm_name nm;
    memset(&nm, 0, sizeof nm);
    nm.E = p->E;
    nm.N = p->N;
    snprintf(nm.device, sizeof nm.device, "%s", d->name);
    /* imports keep the file's own field ("vllm:" + it); bf16 and fp16
     * carry no dtype field in vLLM's names */
    if (strncmp(p->dtype, "vllm:", 5) == 0)
        snprintf(nm.dtype, sizeof nm.dtype, "%s", p->dtype + 5);
    else if (!strcmp(p->dtype, "fp8_w8a8_per_channel"))
        snprintf(nm.dtype, sizeof nm.dtype, "fp8_w8a8"); /* vLLM's name does not tell it from per tensor */
    else if (!strcmp(p->dtype, "int4_w4a16_zp"))
        snprintf(nm.dtype, sizeof nm.dtype, "int4_w4a16"); /* nor int4 with zero points from without */
    else if (strcmp(p->dtype, "bf16") && strcmp(p->dtype, "fp16"))
        snprintf(nm.dtype, sizeof nm.dtype, "%s", strcmp(p->dtype, "fp32") == 0 ? "float32" : p->dtype);
    nm.block_n = p->block_n;
    nm.block_k = p->block_k;
    return mt_vllm_name_format(out, n, &nm);
}

/* 1 for the engines whose own kernel the engine worker measures */
static int engine_backend(const char *backend)
{
    return !strcmp(backend, "vllm") || !strcmp(backend, "sglang");
}

/* The Triton version in an engine kernel's id ("vllm 0.11.0, triton 3.6.0,
 * quant_config"), dots kept; 0 when it names none. */
static int triton_of(const char *hash, char *out, size_t n)
{
    const char *t = hash ? strstr(hash, "triton ") : NULL;
    size_t k = 0;
    if (!t || n < 2) return 0;
    for (t += 7; (isdigit((unsigned char)t[k]) || t[k] == '.') && k + 1 < n; k++) out[k] = t[k];
    out[k] = 0;
    return k > 0;
}

int mt_down_gemm_hash(const char *up_hash, int64_t M, const char *up_params, char *out, size_t n)
{
    /* FNV-1a over the batch size and the gate-up config */
    char m[32];
    uint64_t h = 1469598103934665603ull;
    snprintf(m, sizeof m, "%lld:", (long long)M);
    for (const char *t = m; *t; t++) h = (h ^ (unsigned char)*t) * 1099511628211ull;
    for (const char *t = up_params; t && *t; t++) h = (h ^ (unsigned char)*t) * 1099511628211ull;
    int w = snprintf(out, n, "%s%s%016llx", up_hash, MT_DOWN_GEMM_MARK, (unsigned long long)h);
    return w < 0 || (size_t)w >= n ? MT_EINVAL : MT_OK;
}

int mt_engine_file_name(char *out, size_t n, const mt_device_info *d, const mt_problem *p)
{
    if (strcmp(d->backend, "sglang")) return mt_vllm_file_name(out, n, d, p);
    /* SGLang names int4 files by the packed N (w2.shape[2]) */
    mt_problem q = *p;
    if (!strncmp(p->dtype, "int4_w4a16", 10)) q.N = p->N / 2;
    if (mt_vllm_file_name(out, n, d, &q) != MT_OK) return MT_EINVAL;
    /* SGLang's dtype names keep int8_w8a8, and its block shape has a space */
    char *b = strstr(out, ",block_shape=[");
    if (b) {
        char tail[64];
        snprintf(tail, sizeof tail, ",block_shape=[%lld, %lld].json", (long long)p->block_n, (long long)p->block_k);
        if (strlen(tail) + (size_t)(b - out) >= n) return MT_EINVAL;
        snprintf(b, n - (size_t)(b - out), "%s", tail);
    }
    size_t nl = strlen(out);
    if (!strcmp(p->dtype, "fp8_w8a8_per_channel")) {
        if (nl < 5 || nl + 23 >= n) return MT_EINVAL;
        snprintf(out + nl - 5, n - (nl - 5), ",per_channel_quant=True.json");
    }
    return MT_OK;
}

/* SGLang's _down file beside its gate-up file (up_name in dir): per batch
 * size of the gate-up file, the down GEMM's best measured with that file's
 * config pinned, given its BLOCK_SIZE_M (SGLang asserts they are equal: one
 * alignment of the tokens feeds both GEMMs). SGLang takes each file's
 * nearest batch size on its own, so the two must hold the same ones: where
 * a batch size has no down GEMM measured against this gate-up config, no
 * file is written, and the sweep's --down is named where some were. */
static int export_down(mt_db *db, const mt_export_opts *o, const mt_device_info *d, const mt_problem *p,
                       const mt_best_list *up, const char *up_hash, const char *dir, const char *up_name, int *written)
{
    char dh[600], name[560], missing[256] = "";
    int found = 0, rc = MT_OK;
    size_t nl = strlen(up_name);
    snprintf(name, sizeof name, "%.*s_down.json", (int)(nl > 5 ? nl - 5 : nl), up_name);
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; i < up->n && rc == MT_OK; i++) {
        mt_best_list dl;
        const mt_best *best = NULL;
        if (mt_down_gemm_hash(up_hash, up->v[i].M, up->v[i].params, dh, sizeof dh) != MT_OK ||
            mt_best_collect(db, d->id, p->id, dh, &dl) != MT_OK) {
            rc = MT_EDB;
            break;
        }
        for (int j = 0; j < dl.n; j++)
            if (dl.v[j].M == up->v[i].M) best = &dl.v[j];
        cJSON *ua = cJSON_Parse(up->v[i].params), *da = best ? cJSON_Parse(best->params) : NULL;
        const cJSON *bm = cJSON_GetObjectItemCaseSensitive(ua, "BLOCK_SIZE_M");
        if (cJSON_IsNumber(bm) && da) {
            char key[32];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "BLOCK_SIZE_M", bm->valuedouble);
            for (cJSON *c = da->child; c; c = c->next)
                if (strcmp(c->string, "BLOCK_SIZE_M") && mt_vllm_is_kernel_key(c->string))
                    cJSON_AddItemToObject(e, c->string, cJSON_Duplicate(c, 1));
            snprintf(key, sizeof key, "%lld", (long long)up->v[i].M);
            cJSON_AddItemToObject(root, key, e);
            found++;
        } else if (strlen(missing) + 24 < sizeof missing) {
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%lld", missing[0] ? "," : "",
                     (long long)up->v[i].M);
        }
        cJSON_Delete(ua);
        cJSON_Delete(da);
        mt_best_list_free(&dl);
    }
    if (rc == MT_OK && found == up->n) {
        rc = write_json(dir, name, root, o->quiet);
        if (rc == MT_OK) (*written)++;
    } else if (rc == MT_OK && found > 0) {
        mt_warn("%s is not written: batch sizes %s have no down GEMM tuned with this file's gate-up configs, and "
                "SGLang needs both files to hold the same ones; run the sweep with --down again",
                name, missing);
    }
    cJSON_Delete(root);
    return rc;
}

/* "DTYPE[ in groups of G] K=.. top-..": a problem as the engines' names
 * cannot tell it from another */
static const char *twin_label(const mt_problem *p, char *buf, size_t n)
{
    char grp[48] = "";
    if (p->block_n == 0 && p->block_k > 0) snprintf(grp, sizeof grp, " in groups of %lld", (long long)p->block_k);
    snprintf(buf, n, "%s%s K=%lld top-%lld", p->dtype, grp, (long long)p->K, (long long)p->topk);
    return buf;
}

/* An engine's kernel's results, in the engine's own file: vLLM's name and
 * layout with triton_version as vLLM's tuner writes it; SGLang's name
 * (block_shape with its space) in the triton_X_Y_Z folder it looks in,
 * without triton_version, which its loader does not take. */
static int export_engine(mt_db *db, const mt_export_opts *o, const mt_device_info *d, const mt_problem *p,
                         const mt_best_list *l, const char *hash, int *extra_written)
{
    char name[512], triton[32] = "", dir[4200];
    int sglang = !strcmp(d->backend, "sglang");
    if (mt_engine_file_name(name, sizeof name, d, p) != MT_OK) return MT_EINVAL;
    /* the engine's name has no K or top-k: problems that differ only there
     * share a file, and one would silently replace the other */
    mt_problem tw[4];
    char pl[128], tl[128];
    int twins = mt_db_name_twins(db, d->id, p->id, !sglang, tw, 4);
    twin_label(p, pl, sizeof pl);
    for (int i = 0; i < twins && i < 4; i++) {
        twin_label(&tw[i], tl, sizeof tl);
        /* exporting the whole database: the first problem keeps the name */
        if (!o->problem_id && tw[i].id < p->id) {
            mt_err("%s: problem %s on %s has the same %s file name as %s, which is written there: the engine cannot "
                   "tell them apart, so this one is not written; its sweep run again with another --out writes it "
                   "there",
                   name, pl, d->name, d->backend, tl);
            return MT_EINVAL;
        }
        mt_warn("%s: problem %s on %s has the same %s file name as this one (%s): the engine cannot tell them apart; "
                "keep their files in separate folders",
                name, tl, d->name, d->backend, pl);
    }
    int has_triton = triton_of(hash, triton, sizeof triton);
    snprintf(dir, sizeof dir, "%s", o->out_dir);
    if (sglang) {
        if (!has_triton) {
            mt_err("%s: the engine worker found no Triton, so SGLang's triton_X_Y_Z folder cannot be named: nothing "
                   "is exported",
                   name);
            return MT_EINVAL;
        }
        /* SGLang looks for SGLANG_MOE_CONFIG_DIR/configs/triton_X_Y_Z/NAME:
         * the export folder is that root */
        snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/configs");
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            mt_err("cannot create '%s'", dir);
            return MT_EIO;
        }
        char *t = dir + strlen(dir);
        snprintf(t, sizeof dir - strlen(dir), "/triton_%s", triton);
        for (; *t; t++)
            if (*t == '.') *t = '_';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            mt_err("cannot create '%s'", dir);
            return MT_EIO;
        }
    }
    cJSON *root = cJSON_CreateObject();
    /* first, as vLLM's tuner writes it */
    if (!sglang && has_triton) cJSON_AddStringToObject(root, "triton_version", triton);
    for (int i = 0; i < l->n; i++) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)l->v[i].M);
        cJSON *all = cJSON_Parse(l->v[i].params), *e = cJSON_CreateObject();
        for (cJSON *c = all ? all->child : NULL; c; c = c->next)
            if (mt_vllm_is_kernel_key(c->string)) cJSON_AddItemToObject(e, c->string, cJSON_Duplicate(c, 1));
        cJSON_Delete(all);
        cJSON_AddItemToObject(root, key, e);
    }
    int rc = write_json(dir, name, root, o->quiet);
    cJSON_Delete(root);
    if (rc == MT_OK && sglang) rc = export_down(db, o, d, p, l, hash, dir, name, extra_written);
    return rc;
}

struct foreign_ctx { cJSON *by_m; int err; };

static int foreign_row(const mt_result_row *r, void *u)
{
    struct foreign_ctx *c = u;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)r->M);
    cJSON *v = cJSON_Parse(r->params);
    if (!v) return c->err = MT_EPARSE;
    cJSON_AddItemToObject(c->by_m, key, v);
    return 0;
}

/* An imported file, rebuilt in its own key order with its own extra keys. */
static int export_vllm_foreign(mt_db *db, const mt_export_opts *o, const mt_device_info *d, const mt_problem *p)
{
    char name[512], *order_s = NULL, *extra_s = NULL;
    struct foreign_ctx c = {cJSON_CreateObject(), 0};
    int rc;
    if (mt_vllm_file_name(name, sizeof name, d, p) != MT_OK) {
        cJSON_Delete(c.by_m);
        return MT_EINVAL;
    }
    rc = mt_db_results(db, d->id, p->id, "foreign", NULL, foreign_row, &c);
    if (rc == MT_OK) rc = c.err;
    if (rc == MT_OK) rc = mt_db_import_get(db, d->id, p->id, &order_s, &extra_s);
    cJSON *order = rc == MT_OK ? cJSON_Parse(order_s) : NULL, *extra = rc == MT_OK ? cJSON_Parse(extra_s) : NULL;
    cJSON *root = cJSON_CreateObject();
    if (rc == MT_OK && (!cJSON_IsArray(order) || !cJSON_IsObject(extra))) rc = MT_EPARSE;
    for (cJSON *k = order ? order->child : NULL; rc == MT_OK && k; k = k->next) {
        const char *key = k->valuestring;
        cJSON *src = cJSON_GetObjectItemCaseSensitive(mt_vllm_is_m_key(key) ? c.by_m : extra, key);
        if (!src) continue;
        cJSON_AddItemToObject(root, key, cJSON_Duplicate(src, 1));
    }
    if (rc == MT_OK) rc = write_json(o->out_dir, name, root, o->quiet);
    else mt_err("imported results of '%s' are damaged in the database: %s", name, mt_status_str(rc));
    cJSON_Delete(root);
    cJSON_Delete(order);
    cJSON_Delete(extra);
    cJSON_Delete(c.by_m);
    free(order_s);
    free(extra_s);
    return rc;
}

struct grid_rows { mt_buf b; int header; int err; const mt_family *f; };

/* One CSV row per measurement: the point (M; batch, ctx), the parameters
 * in the config's own order, median, status, and whether it is the default
 * config. */
static int grid_row(const mt_result_row *r, void *u)
{
    struct grid_rows *g = u;
    cJSON *p = cJSON_Parse(r->params);
    if (!cJSON_IsObject(p)) {
        cJSON_Delete(p);
        return g->err = MT_EPARSE;
    }
    if (!g->header) {
        for (int k = 0; k < g->f->npoint; k++) mt_buf_printf(&g->b, "%s%s", k ? "," : "", g->f->point[k]);
        for (cJSON *c = p->child; c; c = c->next) mt_buf_printf(&g->b, ",%s", c->string);
        mt_buf_puts(&g->b, ",median_us,status,is_default\n");
        g->header = 1;
    }
    mt_buf_printf(&g->b, "%lld", (long long)r->M);
    if (g->f->npoint > 1) mt_buf_printf(&g->b, ",%lld", (long long)r->p2);
    for (cJSON *c = p->child; c; c = c->next) mt_buf_printf(&g->b, ",%lld", (long long)c->valuedouble);
    if (isnan(r->median_us)) mt_buf_puts(&g->b, ",");
    else mt_buf_printf(&g->b, ",%.4f", r->median_us);
    mt_buf_printf(&g->b, ",%s,%d\n", r->status, r->is_default);
    cJSON_Delete(p);
    return 0;
}

/* Every measurement of (device, problem) as CSV, for replaying strategies:
 * NAME.grid.csv beside the family's file NAME.json (fused MoE: its
 * moetune-format name). */
static int export_grid(mt_db *db, const mt_export_opts *o, const mt_device_info *d, const mt_problem *p,
                       const mt_family *f, const char *file, const char *hash)
{
    char name[512], path[4096], err[512];
    struct grid_rows g;
    memset(&g, 0, sizeof g);
    g.f = f;
    snprintf(name, sizeof name, "%s", file);
    char *dot = strstr(name, ".moetune.json");
    if (!dot) dot = strstr(name, ".json");
    if (!dot) return MT_EINVAL;
    strcpy(dot, ".grid.csv");
    /* a replay scores a strategy against the grid's points: on the points a
     * search chose, every strategy looks perfect; such a grid says so */
    int partial = mt_db_partial_sweeps(db, d->id, p->id);
    if (partial != 0)
        mt_buf_printf(&g.b, "# partial: measured by a search, a budget, --only, --time, a shard or an unfinished "
                            "sweep; not every valid point is here (moetune sweep --strategy grid records them all)\n");
    int rc = mt_db_results(db, d->id, p->id, "ok", hash, grid_row, &g);
    /* aborted rows carry their partial figure: clearly slower than the
     * incumbent, which a replay needs to know as much as the winners */
    if (rc == MT_OK) rc = mt_db_results(db, d->id, p->id, "aborted", hash, grid_row, &g);
    if (rc == MT_OK) rc = mt_db_results(db, d->id, p->id, "failed", hash, grid_row, &g);
    if (rc == MT_OK) rc = g.err;
    if (rc == MT_OK && g.b.oom) rc = MT_ENOMEM;
    if (rc == MT_OK) {
        snprintf(path, sizeof path, "%s/%s", o->out_dir, name);
        rc = mt_write_file_atomic(path, g.b.data, g.b.len, err, sizeof err);
        if (rc != MT_OK) mt_err("%s", err);
        else if (!o->quiet) printf("%s\n", path);
    }
    mt_buf_free(&g.b);
    return rc;
}

struct export_ctx { mt_db *db; const mt_export_opts *o; mt_export_stats *st; };

static int wanted(const mt_export_opts *o, const mt_device_info *d, const mt_problem *p)
{
    return (!o->device_id || o->device_id == d->id) && (!o->problem_id || o->problem_id == p->id);
}

static int export_ok_pair(const mt_device_info *d, const mt_problem *p, void *u)
{
    struct export_ctx *c = u;
    mt_best_list l;
    if (!wanted(c->o, d, p)) return 0;
    const char *hash = mt_family_fused_moe.kernel_hash(d->backend);
    char ehash[256];
    int engine = engine_backend(d->backend);
    if (engine) {
        /* the rows of the engine version that measured last */
        if (mt_db_latest_kernel_hash(c->db, d->id, p->id, NULL, "%" MT_DOWN_GEMM_MARK "%", ehash, sizeof ehash) != MT_OK)
            return 0;
        hash = ehash;
    }
    if (mt_best_collect(c->db, d->id, p->id, hash, &l) != MT_OK) {
        c->st->failed++;
        return 0;
    }
    char mtname[512];
    if (l.n > 0 && c->o->grid) {
        if (mt_mtformat_name(mtname, sizeof mtname, d, p) == MT_OK &&
            export_grid(c->db, c->o, d, p, &mt_family_fused_moe, mtname, hash) == MT_OK)
            c->st->written++;
        else
            c->st->failed++;
    }
    if (l.n > 0 && engine) {
        /* only the engine's own files: they hold configs measured on its kernel */
        if (c->o->vllm) {
            if (export_engine(c->db, c->o, d, p, &l, hash, &c->st->written) == MT_OK) c->st->written++;
            else c->st->failed++;
        }
    } else if (l.n > 0) {
        if (c->o->moetune) {
            if (export_moetune(c->o, d, p, &l, hash) == MT_OK) c->st->written++;
            else c->st->failed++;
        }
        /* a file under vLLM's name holds only configs measured on vLLM's
         * kernel: vLLM would launch its own kernel with these */
        if (c->o->vllm) c->st->own_skipped++;
    }
    mt_best_list_free(&l);
    return 0;
}

static int export_foreign_pair(const mt_device_info *d, const mt_problem *p, void *u)
{
    struct export_ctx *c = u;
    if (!wanted(c->o, d, p) || !c->o->vllm) return 0;
    if (export_vllm_foreign(c->db, c->o, d, p) == MT_OK) c->st->written++;
    else c->st->failed++;
    return 0;
}

int mt_family_plain_file(const mt_family *f, const mt_family_key *k, const char *device, const char *backend,
                         char *out, size_t n)
{
    mt_family_file files[4];
    int nf = f->file_names(k, device, backend, files, 4);
    for (int i = 0; i < nf; i++)
        if (!files[i].moetune_format) return snprintf(out, n, "%s", files[i].name) < (int)n ? MT_OK : MT_EINVAL;
    return MT_EINVAL;
}

/* A family's plain file per (device, problem) with verified rows of the
 * backend's own kernel source (a CUDA sweep's rows are under the CUDA
 * kernel's hash, not the CPU's): its point keys nested in order, each
 * leaf the best config's parameters, named as the family names it
 * (attention: docs/attention-format.md). A family added to the registry
 * is exported this way with no code here. */
static int export_plain_pair(const mt_device_info *d, const mt_problem *p, void *u)
{
    struct export_ctx *c = u;
    if (!wanted(c->o, d, p)) return 0;
    const mt_family *f = mt_family_find(p->kernel);
    mt_family_key k;
    mt_best_list l;
    char why[256], path[4700], err[512], file[512];
    if (!f || mt_family_key_parse(f, p->key, &k, why, sizeof why) != MT_OK ||
        mt_family_plain_file(f, &k, d->name, d->backend, file, sizeof file) != MT_OK) {
        mt_err("the database holds a %.32s problem with a bad key ('%.80s'): it is damaged or was not written by "
               "moetune; nothing is exported from it",
               p->kernel, p->key);
        c->st->failed++;
        return 0;
    }
    int rc = mt_best_collect(c->db, d->id, p->id, f->kernel_hash(d->backend), &l);
    if (rc != MT_OK) {
        c->st->failed++;
        return 0;
    }
    if (c->o->grid) {
        /* every measurement, for replay, instead of the file */
        if (l.n) {
            if (export_grid(c->db, c->o, d, p, f, file, f->kernel_hash(d->backend)) == MT_OK) c->st->written++;
            else c->st->failed++;
        }
        mt_best_list_free(&l);
        return 0;
    }
    mt_attn_entry *e = l.n ? calloc((size_t)l.n, sizeof *e) : NULL;
    for (int i = 0; e && i < l.n; i++) {
        if (!params_ok(l.v[i].params, l.v[i].M)) rc = MT_ECORRUPT;
        e[i] = (mt_attn_entry){l.v[i].M, l.v[i].p2, l.v[i].params};
    }
    if (l.n && !e) rc = MT_ENOMEM;
    if (rc == MT_OK && l.n) {
        snprintf(path, sizeof path, "%s/%s", c->o->out_dir, file);
        rc = mt_point_file_write(path, f->npoint, e, l.n, err, sizeof err);
        if (rc == MT_OK) {
            c->st->written++;
            if (!c->o->quiet) printf("%s\n", path);
        } else {
            mt_err("%s", err);
        }
    }
    if (rc != MT_OK) c->st->failed++;
    free(e);
    mt_best_list_free(&l);
    return 0;
}

int mt_export(mt_db *db, const mt_export_opts *opts, mt_export_stats *st)
{
    /* "out/" names files "out/x", never "out//x" */
    char dir[4096];
    mt_export_opts oc = *opts;
    snprintf(dir, sizeof dir, "%s", opts->out_dir ? opts->out_dir : ".");
    mt_path_trim(dir);
    oc.out_dir = dir;
    const mt_export_opts *o = &oc;
    struct export_ctx c = {db, o, st};
    memset(st, 0, sizeof *st);
    int rc = MT_OK;
    for (int k = 0; k < mt_nfamilies && rc == MT_OK; k++) {
        /* fused MoE writes vLLM's files (its kernel's keys only, none for
         * the CPU, imported files rebuilt in their own key order) and
         * moetune's with provenance; every other family its plain file */
        if (mt_families[k] == &mt_family_fused_moe) {
            rc = mt_db_pairs(db, "ok", export_ok_pair, &c);
            if (rc == MT_OK) rc = mt_db_pairs(db, "foreign", export_foreign_pair, &c);
        } else {
            rc = mt_db_family_pairs(db, mt_families[k]->name, "ok", export_plain_pair, &c);
        }
    }
    return rc;
}
