/* moetune worker: measures variants for its parent, one JSON request per
 * line on stdin, one JSON reply per line on stdout. It exits when stdin
 * closes. Everything risky (running a variant) happens here, so that a
 * crash or hang costs only this process. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "family_tuning.h"
#include "cmds.h"
#include "device.h"
#include "measure.h"
#include "measure_cuda.h"
#include "space.h"
#include "precompile.h"
#include "util.h"

static const char usage[] =
    "usage: moetune worker --device cpu|cuda:N\n"
    "\n"
    "Internal: started by sweep, one per device, speaking JSON lines over\n"
    "stdin and stdout. Not meant to be run by hand.\n";

static void reply(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    free(s);
    cJSON_Delete(o);
}

static void reply_error(const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 0);
    cJSON_AddStringToObject(o, "error", msg);
    reply(o);
}

static int64_t num(const cJSON *o, const char *k, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

static double numf(const cJSON *o, const char *k, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* MOETUNE_TEST_FAULT=kind:substring (see measure.h), or several joined
 * by ';' (the first that matches wins) */
static int fault_for(const char *params)
{
    const char *f = getenv("MOETUNE_TEST_FAULT");
    static const struct { const char *name; int fault; } kinds[] = {
        {"crash", MT_FAULT_CRASH}, {"hang", MT_FAULT_HANG}, {"nan", MT_FAULT_NAN}, {"gpufault", MT_FAULT_GPU},
        {"killed", MT_FAULT_KILLED}, {"fatal", MT_FAULT_FATAL}};
    while (f && *f) {
        const char *end = strchr(f, ';'), *colon = strchr(f, ':');
        size_t len = end ? (size_t)(end - f) : strlen(f);
        if (colon && colon < f + len) {
            char sub[256];
            size_t sl = (size_t)(f + len - colon - 1);
            if (sl < sizeof sub) {
                memcpy(sub, colon + 1, sl);
                sub[sl] = 0;
                if (strstr(params, sub))
                    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
                        if ((size_t)(colon - f) == strlen(kinds[k].name) && !strncmp(f, kinds[k].name, (size_t)(colon - f)))
                            return kinds[k].fault;
            }
        }
        f = end ? end + 1 : NULL;
    }
    return MT_FAULT_NONE;
}

/* MOETUNE_TEST_TIMING=synthetic: the variant still runs and is checked,
 * but its figure is a fixed function of its parameters and M, so that tests
 * can compare whole runs (a killed and resumed daemon against one left
 * alone) without timing noise deciding the winners. Never for real use. */
static double synthetic_us(const char *params, int64_t M)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = params; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (50.0 + (double)(h % 100000) / 100.0) * (1.0 + (double)M / 16.0);
}

struct backend {
    int kind;
    const char *backend; /* "cpu", "cuda", "hip": which space each family takes */
    mt_cpu_bench *cpu;
    mt_cuda_bench *cuda;
    mt_device_info info;
};

/* A measurement's reply: its status, reason, figures and error */
static cJSON *result_json(const mt_measure_result *res)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 1);
    cJSON_AddStringToObject(o, "status", res->ok ? "ok" : res->aborted ? "aborted" : "failed");
    if (!res->ok) cJSON_AddStringToObject(o, "reason", res->reason);
    if (res->ok || res->aborted) {
        cJSON_AddNumberToObject(o, "median_us", res->median_us);
        cJSON_AddNumberToObject(o, "spread_us", res->spread_us);
        cJSON_AddNumberToObject(o, "reps", res->reps);
    }
    if (res->rel_err == res->rel_err) cJSON_AddNumberToObject(o, "rel_err", res->rel_err);
    if (res->tolerance > 0) cJSON_AddNumberToObject(o, "tolerance", res->tolerance);
    return o;
}

/* The device context is poisoned: report the variant as failed, then exit
 * so that the parent starts a fresh worker. */
static void reply_fatal(const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 1);
    cJSON_AddStringToObject(o, "status", "failed");
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddBoolToObject(o, "fatal", 1);
    reply(o);
    exit(3);
}

/* The family, key and point of a measure request: {"family", "key": {...},
 * "point": [...]}; or fused MoE's shorthand (no family: E, N, K, topk,
 * dtype, M), or attention's ("op":"measure_attn": H, Hkv, D, page, dtype,
 * batch, ctx), which the sweeps of earlier releases sent. 0, or -1 with why. */
static int request_problem(const cJSON *req, int attn_op, const mt_family **f, mt_family_key *k, int64_t *point,
                           char *why, size_t n)
{
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(req, "family");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(req, "dtype");
    char key[512];
    if (cJSON_IsString(fam)) {
        const cJSON *kj = cJSON_GetObjectItemCaseSensitive(req, "key"), *pj = cJSON_GetObjectItemCaseSensitive(req, "point");
        char *text = cJSON_IsObject(kj) ? cJSON_PrintUnformatted(kj) : NULL;
        int rc = (*f = mt_family_find(fam->valuestring)) ? MT_OK : MT_EINVAL;
        if (rc != MT_OK) snprintf(why, n, "no kernel family '%.40s'", fam->valuestring);
        else if (!text) rc = MT_EPARSE, snprintf(why, n, "no key object");
        else rc = mt_family_key_parse(*f, text, k, why, n);
        free(text);
        if (rc != MT_OK) return -1;
        if (!cJSON_IsArray(pj) || cJSON_GetArraySize(pj) != (*f)->npoint) {
            snprintf(why, n, "the point is not an array of %d integers", (*f)->npoint);
            return -1;
        }
        for (int i = 0; i < (*f)->npoint; i++) point[i] = (int64_t)cJSON_GetArrayItem(pj, i)->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(dt) || strlen(dt->valuestring) > 20) return snprintf(why, n, "no dtype"), -1;
    if (attn_op) {
        *f = &mt_family_attn_decode;
        snprintf(key, sizeof key, "{\"H\":%lld,\"H_kv\":%lld,\"D\":%lld,\"page\":%lld,\"dtype\":\"%s\"}",
                 (long long)num(req, "H", 0), (long long)num(req, "Hkv", 0), (long long)num(req, "D", 0),
                 (long long)num(req, "page", 0), dt->valuestring);
        point[0] = num(req, "batch", 0);
        point[1] = num(req, "ctx", 0);
    } else {
        *f = &mt_family_fused_moe;
        snprintf(key, sizeof key, "{\"E\":%lld,\"N\":%lld,\"K\":%lld,\"topk\":%lld,\"dtype\":\"%s\"}",
                 (long long)num(req, "E", 0), (long long)num(req, "N", 0), (long long)num(req, "K", 0),
                 (long long)num(req, "topk", 0), dt->valuestring);
        point[0] = num(req, "M", 0);
    }
    return mt_family_key_parse(*f, key, k, why, n) == MT_OK ? 0 : -1;
}

/* One measurement of any family: {"op":"measure", the problem as
 * request_problem reads it, "params":{...} (every parameter of the
 * backend's space), "seed", "policy":{...}, "abort_us", "renormalize"}. */
static void do_measure(struct backend *be, const cJSON *req, int attn_op)
{
    const mt_family *f;
    mt_family_key k;
    int64_t point[MT_FAMILY_MAX_POINT] = {0};
    char why[300];
    if (request_problem(req, attn_op, &f, &k, point, why, sizeof why) != 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "malformed measure request: %s", why);
        reply_error(msg);
        return;
    }
    const mt_family_tuning *t = mt_family_tuning_of(f);
    mt_space sp;
    mt_config c;
    mt_policy pol;
    mt_measure_result res;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "params");
    char *ptxt = params ? cJSON_PrintUnformatted(params) : NULL;
    int ok_point = 1;
    for (int i = 0; i < f->npoint; i++) ok_point &= point[i] >= 1;
    if (!t || t->space(&sp, be->backend, be->info.cores) != MT_OK) {
        free(ptxt);
        snprintf(why, sizeof why, "%s is not measured on the %s backend", f->name, be->backend);
        reply_error(why);
        return;
    }
    if (!ptxt || !ok_point || mt_config_from_json(&sp, ptxt, &c) != MT_OK) {
        free(ptxt);
        reply_error("malformed measure request: a point below 1, or params without every parameter of the space");
        return;
    }
    mt_policy_default(be->backend, &pol);
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(req, "policy");
    if (cJSON_IsObject(pj)) {
        pol.warmup = (int)num(pj, "warmup", pol.warmup);
        pol.min_reps = (int)num(pj, "min_reps", pol.min_reps);
        pol.max_reps = (int)num(pj, "max_reps", pol.max_reps);
        pol.min_time_s = numf(pj, "min_time_s", pol.min_time_s);
        pol.cold = (int)num(pj, "cold", pol.cold);
        pol.check_rows = (int)num(pj, "check_rows", pol.check_rows);
        pol.tolerance = numf(pj, "tolerance", pol.tolerance);
        pol.max_tokens = (int)num(pj, "max_tokens", pol.max_tokens);
        pol.routings = (int)num(pj, "routings", pol.routings);
    }
    pol.abort_us = numf(req, "abort_us", 0);
    if (pol.routings < 1 || pol.routings > 16 || pol.max_reps < 1 || pol.max_reps > 100000) {
        free(ptxt);
        reply_error("malformed measure request: routings must be 1 to 16, max_reps 1 to 100000");
        return;
    }
    int fault = fault_for(ptxt);
    const char *tt = getenv("MOETUNE_TEST_TIMING");
    double synth = tt && !strcmp(tt, "synthetic") ? synthetic_us(ptxt, point[0]) : 0;
    if (synth > 0) pol.abort_us = 0; /* the real figure must not decide */
    free(ptxt);
    char resources[512] = "";
    uint64_t seed = (uint64_t)num(req, "seed", 1);
    if (fault == MT_FAULT_FATAL) reply_fatal("test fault: the device context is poisoned");
    if (be->cuda) mt_cuda_bench_set_fault(be->cuda, fault);
    else mt_cpu_bench_set_fault(be->cpu, fault);
    mt_bench b = {be->backend, be->cpu, be->cuda, be->info.cores, be->info.smem_per_block};
    memset(&res, 0, sizeof res);
    int rc = t->measure(&b, &k, (int)num(req, "renormalize", 1), point, &sp, &c, seed, &pol, &res, resources,
                        sizeof resources);
    if (rc == MT_ECRASH) reply_fatal(res.reason);
    if (rc == MT_EUNSUPPORTED) {
        snprintf(why, sizeof why, "%s: the %s backend does not take dtype %s (it takes %s)", f->name, be->backend, k.dtype,
                 t->dtypes(be->backend));
        reply_error(why);
        return;
    }
    if (rc != MT_OK) {
        reply_error(mt_status_str(rc));
        return;
    }
    if (synth > 0 && res.ok) {
        res.median_us = synth;
        res.spread_us = 0;
    }
    cJSON *o = result_json(&res);
    cJSON_AddNumberToObject(o, "experts_hit", (double)res.experts_hit);
    if (resources[0]) cJSON_AddItemToObject(o, "resources", cJSON_Parse(resources));
    reply(o);
}

static void hello(const struct backend *be)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 1);
    mt_device_info_to_json(o, &be->info);
    reply(o);
}

int cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {{"device", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *device = "cpu";
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') device = optarg;
        else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("worker", 0);
        else return mt_usage_error("worker", "unknown option");
    }
    mt_device_spec spec;
    struct backend be;
    char err[1024] = "";
    memset(&be, 0, sizeof be);
    if (mt_device_spec_parse(device, &spec) != MT_OK || spec.auto_pick)
        return mt_fail("worker", "cannot measure on '%s': expected cpu, cuda:N or hip:N", device);
    /* HIP (an AMD GPU) runs the CUDA measurement path on mt_hip_open's
     * handle: from here on it is a GPU like a CUDA one */
    be.kind = spec.kind == MT_BACKEND_HIP ? MT_BACKEND_CUDA : spec.kind;
    int init = MT_OK;
    if (be.kind == MT_BACKEND_CUDA) {
        char cache[1100];
        mt_kernel_cache_dir(spec.kind == MT_BACKEND_HIP ? "hip" : "cuda", cache, sizeof cache);
        init = mt_cuda_bench_new(&be.cuda, spec.kind == MT_BACKEND_HIP, spec.index, cache[0] ? cache : NULL, err,
                                 sizeof err);
        if (init == MT_OK) mt_cuda_bench_info(be.cuda, &be.info);
        /* an AMD GPU takes ROCm's keys (waves_per_eu and the rest) */
        be.backend = spec.kind == MT_BACKEND_HIP ? "hip" : "cuda";
    } else {
        mt_device_cpu_info(&be.info);
        init = mt_cpu_bench_new(&be.cpu, be.info.cores);
        if (init != MT_OK) snprintf(err, sizeof err, "cannot start the CPU bench: %s", mt_status_str(init));
        be.backend = "cpu";
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        cJSON *req = cJSON_Parse(line);
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(req, "op");
        if (init != MT_OK) {
            /* every request gets the reason the device could not be opened */
            reply_error(err);
        } else if (!cJSON_IsString(op)) {
            reply_error("malformed request");
        } else if (!strcmp(op->valuestring, "hello")) {
            hello(&be);
        } else if (!strcmp(op->valuestring, "ceilings")) {
            double bw = 0, peak = 0, peak8 = 0;
            char how[512] = "copy of 64 MiB (read+write); fp32 multiply-add loop";
            cJSON *o = cJSON_CreateObject();
            int rc = be.kind == MT_BACKEND_CUDA ? mt_cuda_bench_ceilings(be.cuda, &bw, &peak, &peak8, how, sizeof how)
                                                : mt_cpu_ceilings(be.cpu, &bw, &peak);
            cJSON_AddBoolToObject(o, "ok", rc == MT_OK);
            if (rc != MT_OK) cJSON_AddStringToObject(o, "error", how);
            cJSON_AddNumberToObject(o, "bandwidth_gbs", bw);
            cJSON_AddNumberToObject(o, "peak_gflops", peak);
            if (peak8 > 0) cJSON_AddNumberToObject(o, "peak_fp8_gflops", peak8);
            cJSON_AddStringToObject(o, "how", how);
            reply(o);
        } else if (!strcmp(op->valuestring, "measure") || !strcmp(op->valuestring, "measure_attn")) {
            do_measure(&be, req, !strcmp(op->valuestring, "measure_attn"));
        } else {
            reply_error("unknown op");
        }
        cJSON_Delete(req);
    }
    free(line);
    mt_cpu_bench_free(be.cpu);
    mt_cuda_bench_free(be.cuda);
    return 0;
}
