/* One step of a sweep, for every family (sweep_step.h). */
#include "sweep_step.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "moetune/moetune.h"
#include "strategy.h"
#include "util.h"

/* The reply (or its absence) as the row m, figures from the reply. */
static void fill_row(const mt_sweep_ctx *c, const int64_t point[2], mt_measurement *m, const char *reply, int call_rc,
                     const char *call_why, mt_step *out, char **resources, int *fatal)
{
    m->median_us = m->spread_us = m->rel_err = m->floor_us = m->efficiency = NAN;
    m->reps = 0;
    m->reason = NULL;
    m->transient = 0;
    out->median_us = NAN;
    out->reason[0] = 0;
    if (call_rc != MT_OK) {
        m->status = "failed";
        snprintf(out->reason, sizeof out->reason, "%s", call_why);
        m->reason = out->reason;
        /* a timeout or a kill from outside says nothing of the variant */
        m->transient = mt_worker_failure_transient(call_rc, call_why);
        return;
    }
    cJSON *r = cJSON_Parse(reply);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(r, "ok"), *st = cJSON_GetObjectItemCaseSensitive(r, "status"), *v;
    if (!cJSON_IsTrue(ok) || !cJSON_IsString(st)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
        m->status = "failed";
        snprintf(out->reason, sizeof out->reason, "worker error: %s", cJSON_IsString(e) ? e->valuestring : "malformed reply");
        m->reason = out->reason;
        cJSON_Delete(r);
        return;
    }
    m->status = !strcmp(st->valuestring, "ok") ? "ok" : !strcmp(st->valuestring, "aborted") ? "aborted" : "failed";
    if ((v = cJSON_GetObjectItemCaseSensitive(r, "reason")) && cJSON_IsString(v)) {
        snprintf(out->reason, sizeof out->reason, "%s", v->valuestring);
        m->reason = out->reason;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(r, "rel_err")) && cJSON_IsNumber(v)) m->rel_err = v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(r, "tolerance")) && cJSON_IsNumber(v)) m->tolerance = v->valuedouble;
    /* the worker is exiting: its device context is unusable */
    *fatal = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "fatal"));
    if ((v = cJSON_GetObjectItemCaseSensitive(r, "resources")) && cJSON_IsObject(v))
        m->resources = *resources = cJSON_PrintUnformatted(v);
    const cJSON *med = cJSON_GetObjectItemCaseSensitive(r, "median_us"), *reps = cJSON_GetObjectItemCaseSensitive(r, "reps");
    if (strcmp(m->status, "failed") && cJSON_IsNumber(med)) {
        /* ok, or aborted with its partial figure: the search learns the
         * variant is slow */
        m->median_us = out->median_us = med->valuedouble;
        if (cJSON_IsNumber(reps)) m->reps = reps->valueint;
    } else if (strcmp(m->status, "failed")) {
        m->status = "failed";
        snprintf(out->reason, sizeof out->reason, "worker error: a reply without its figure");
        m->reason = out->reason;
    }
    if (!strcmp(m->status, "ok")) {
        v = cJSON_GetObjectItemCaseSensitive(r, "spread_us");
        m->spread_us = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        v = cJSON_GetObjectItemCaseSensitive(r, "experts_hit");
        int64_t hit = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
        /* fp8 problems' compute ceiling is the device's fp8 rate, where measured */
        double peak = !strncmp(c->key->dtype, "fp8", 3) && c->dev->peak_fp8_gflops > 0 ? c->dev->peak_fp8_gflops
                                                                                      : c->dev->peak_gflops;
        m->floor_us = c->t->floor_us(c->key, point, c->dev->bandwidth_gbs, peak, hit);
        m->efficiency = m->median_us > 0 && !isnan(m->floor_us) ? m->floor_us / m->median_us : NAN;
    }
    cJSON_Delete(r);
}

/* A config's row at point: 1 (its figure in *stored; *retry when it is a
 * failure to measure again), 0 when there is none, -1 when the database
 * cannot say. A failure that was not the variant's (a timeout, a kill from
 * outside) is measured again; with --retry-failed, every failure. */
static int point_row(const mt_sweep_ctx *c, const int64_t point[2], int64_t cfg_id, double *stored, int *retry)
{
    int failed_kind = 0;
    int have = mt_db_point_get(c->db, c->dev->id, c->problem_id, point, cfg_id, c->kernel_hash, c->policy_text, stored,
                               &failed_kind);
    *retry = have > 0 && (failed_kind == MT_FAILED_TRANSIENT || (failed_kind && c->retry_failed));
    return have;
}

int mt_sweep_step(const mt_sweep_ctx *c, const int64_t point[2], const char *params, int64_t cfg_id, int is_default,
                  uint64_t seed, const mt_policy *pol, const volatile sig_atomic_t *stop, mt_step *out, char *why,
                  size_t n)
{
    double stored = NAN;
    memset(out, 0, sizeof *out);
    out->median_us = NAN;
    int have = point_row(c, point, cfg_id, &stored, &out->retried);
    if (have < 0) return snprintf(why, n, "cannot read the database: %s", mt_db_errmsg(c->db)), MT_EDB;
    if (have && !out->retried) {
        /* measured before (a resumed sweep): the search learns it again */
        out->kind = MT_STEP_STORED;
        out->median_us = stored;
        return MT_OK;
    }
    char req[2048], call_why[512], *reply = NULL;
    if (mt_measure_request(req, sizeof req, c->t->family->name, c->key_json, point, c->t->family->npoint,
                           c->renormalize, params, seed, pol, c->request_extra ? c->request_extra(c->extra_user, point) : NULL) != MT_OK)
        return snprintf(why, n, "the measure request does not fit: %.200s", params), MT_EINVAL;
    int crc = mt_worker_call(c->w, req, c->timeout_s, &reply, call_why, sizeof call_why);
    if (stop && *stop && crc != MT_OK) {
        free(reply);
        out->kind = MT_STEP_ABANDONED; /* the variant in flight is abandoned, not blamed */
        return MT_OK;
    }
    mt_measurement m = {.sweep_id = c->sweep_id, .device_id = c->dev->id, .problem_id = c->problem_id,
                        .config_id = cfg_id, .M = point[0], .p2 = c->t->family->npoint > 1 ? point[1] : 0,
                        .is_default = is_default, .tolerance = pol->tolerance, .kernel_hash = c->kernel_hash,
                        .timing_policy = c->policy_text};
    char *resources = NULL;
    int fatal = 0;
    fill_row(c, point, &m, reply, crc, call_why, out, &resources, &fatal);
    free(reply);
    out->kind = MT_STEP_MEASURED;
    out->status = m.status;
    /* a failure stored before and measured again is replaced in place */
    int rc = out->retried ? mt_db_measurement_retry(c->db, &m) : mt_db_measurement_insert(c->db, &m);
    free(resources);
    if (rc != MT_OK) {
        /* another sweep of the same problem on this database may have stored
         * the same variant meanwhile: its row is kept (either is a
         * measurement of the same kernel, the same way) */
        if (mt_db_point_get(c->db, c->dev->id, c->problem_id, point, cfg_id, c->kernel_hash, c->policy_text, NULL,
                            NULL) != 1)
            return snprintf(why, n, "cannot store a measurement: %s", mt_db_errmsg(c->db)), MT_EDB;
    }
    if (crc != MT_OK || fatal) {
        char err[512];
        if (mt_worker_restart(c->w, err, sizeof err) != MT_OK)
            return snprintf(why, n, "cannot restart the worker: %s", err), MT_ECRASH;
    }
    return MT_OK;
}

/* A config stored already at point, so not measured again (as
 * mt_sweep_step decides): 1, 0, or -1 when the database cannot say. */
static int stored_already(const mt_sweep_ctx *c, const int64_t point[2], const char *params)
{
    int64_t cfg_id;
    double t;
    int retry;
    if (mt_db_config_upsert(c->db, c->dev->backend, params, &cfg_id) != MT_OK) return -1;
    int have = point_row(c, point, cfg_id, &t, &retry);
    return have <= 0 ? have : !retry;
}

/* pts[idx] is about to be measured: unless compiled already (listed in
 * *done), it and the search's likely next proposals are compiled in one
 * parallel call. Best effort: a failure here costs only time. */
static void prefetch(const mt_sweep_ctx *c, mt_point_search *ps, int idx, int **done, int *ndone)
{
    for (int i = 0; i < *ndone; i++)
        if ((*done)[i] == idx) return;
    /* a round of q: the whole round is then measured (below), so it is
     * sized to the budget, a quarter of it at most, and the model still
     * learns between rounds */
    int want[MT_SEARCH_MAX_PEEK + 1], nw = 0, q = c->prefetch_n < 1 ? 1 : c->prefetch_n;
    int quarter = mt_search_budget(ps->search) / 4;
    if (q > (quarter < 2 ? 2 : quarter)) q = quarter < 2 ? 2 : quarter;
    if (q > MT_SEARCH_MAX_PEEK) q = MT_SEARCH_MAX_PEEK;
    want[nw++] = idx;
    if (q > 1) nw += mt_search_peek(ps->search, want + 1, q - 1);
    char (*txt)[256] = malloc((size_t)nw * sizeof *txt);
    const char *list[MT_SEARCH_MAX_PEEK + 1];
    int *grown = realloc(*done, (size_t)(*ndone + nw) * sizeof **done);
    if (!txt || !grown) {
        free(txt);
        return;
    }
    *done = grown;
    int nl = 0, round[MT_SEARCH_MAX_PEEK + 1], nr = 0;
    for (int i = 0; i < nw; i++) {
        int known = 0;
        for (int j = 0; j < *ndone && !known; j++) known = (*done)[j] == want[i];
        if (known) continue;
        (*done)[(*ndone)++] = want[i];
        round[nr++] = want[i];
        mt_config_to_json(ps->sp, &ps->pts[want[i]], txt[nl], sizeof txt[nl]);
        /* a resumed sweep: what is stored is not measured, nor compiled */
        if (stored_already(c, ps->point, txt[nl]) == 1) continue;
        list[nl] = txt[nl];
        nl++;
    }
    if (nl > 0) c->prefetch(c->prefetch_user, ps->point, list, nl);
    /* the round is measured next, in the model's order: its guesses are
     * not left unmeasured when the next proposal moves (on an H100, 570
     * configs compiled for 157 measured). Suggested whether compiled,
     * stored or not, so that a resumed sweep proposes what the first did. */
    for (int i = 0; i < nr; i++) mt_search_suggest(ps->search, round[i]);
    free(txt);
}

int mt_sweep_search_point(const mt_sweep_ctx *c, mt_point_search *ps, mt_policy *pol,
                          const volatile sig_atomic_t *stop, char *why, size_t n)
{
    int idx, rc = MT_OK, *compiled = NULL, ncompiled = 0;
    while (!(stop && *stop) && mt_search_next(ps->search, &idx)) {
        if (ps->deadline > 0 && mt_now() > ps->deadline) {
            ps->out_of_time = 1;
            break;
        }
        const mt_config *cf = &ps->pts[idx];
        char params[256], best_txt[128];
        int64_t cfg_id;
        mt_config_to_json(ps->sp, cf, params, sizeof params);
        if (mt_db_config_upsert(c->db, c->dev->backend, params, &cfg_id) != MT_OK) {
            snprintf(why, n, "cannot record a config: %s", mt_db_errmsg(c->db));
            rc = MT_EDB;
            break;
        }
        if (c->prefetch) prefetch(c, ps, idx, &compiled, &ncompiled);
        ps->done++;
        /* early abort: a variant clearly slower than the incumbent of this
         * point stops after a few repetitions */
        double incumbent;
        pol->abort_us = ps->abort_factor > 0 && mt_search_best(ps->search, &incumbent) >= 0 ? incumbent * ps->abort_factor : 0;
        mt_step step;
        rc = mt_sweep_step(c, ps->point, params, cfg_id, memcmp(cf, ps->def, sizeof *cf) == 0, ps->seed, pol, stop,
                           &step, why, n);
        pol->abort_us = 0;
        if (rc != MT_OK || step.kind == MT_STEP_ABANDONED) break;
        ps->retried += step.retried;
        mt_search_report(ps->search, idx, step.median_us);
        if (step.kind == MT_STEP_STORED) {
            /* measured before (a resumed sweep): the search learned it again */
            ps->skipped++;
            continue;
        }
        ps->measured++;
        if (!strcmp(step.status, "aborted")) {
            ps->aborted++;
        } else if (strcmp(step.status, "ok") != 0) {
            ps->failed++;
            if (ps->warn_failures) mt_warn("%s %s: %s", ps->label, params, step.reason[0] ? step.reason : "failed");
        }
        if (step.median_us < ps->best) ps->best = step.median_us;
        /* the model's view of what is left to find at this point */
        double gain = mt_search_expected_gain(ps->search);
        if (isinf(ps->best))
            snprintf(best_txt, sizeof best_txt, "%s", ps->label);
        else if (isnan(gain))
            snprintf(best_txt, sizeof best_txt, "%s best %.1f us", ps->label, ps->best);
        else
            snprintf(best_txt, sizeof best_txt, "%s best %.1f us, maybe %.1f %% faster still to find", ps->label, ps->best,
                     100.0 * gain);
        if (ps->progress) ps->progress(ps->user, ps->done, best_txt);
    }
    free(compiled);
    return rc;
}
