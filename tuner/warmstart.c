#include "warmstart.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moetune/moetune.h"

struct ws {
    const mt_device_info *dev;
    const mt_problem *prob;
    const mt_space *sp;
    const mt_config *pts;
    int n;
    int64_t M;
    mt_search *s;
    int count;
    /* the group being read: one device's foreign rows, or its verified ones */
    char group[160];
    int64_t best_d;
    int best_idx;
};

/* The point of pts that a stored params object names; -1 when none. A
 * vLLM file has no NUM_SM (it means one CTA per tile, 0) and no GEMV
 * (the tiled path, 0). */
static int point_of(const struct ws *w, const char *params)
{
    cJSON *j = cJSON_Parse(params);
    mt_config c;
    memset(&c, 0, sizeof c);
    int ok = cJSON_IsObject(j);
    for (int p = 0; ok && p < w->sp->nparams; p++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, w->sp->params[p].name);
        /* a key our space fixes to one value (ROCm's kpack and
         * matrix_instr_nonkdim: our kernels have no MFMA to choose) takes
         * it: a Triton file's other value still names the same tile */
        if (w->sp->params[p].nvalues == 1) c.v[p] = w->sp->params[p].values[0];
        else if (cJSON_IsNumber(v)) c.v[p] = v->valueint;
        else if (!strcmp(w->sp->params[p].name, "NUM_SM") || !strcmp(w->sp->params[p].name, "GEMV")) c.v[p] = 0;
        else ok = 0;
    }
    cJSON_Delete(j);
    for (int i = 0; ok && i < w->n; i++)
        if (!memcmp(&w->pts[i], &c, sizeof c)) return i;
    return -1;
}

static void flush(struct ws *w)
{
    if (w->best_idx >= 0) {
        mt_search_suggest(w->s, w->best_idx);
        w->count++;
    }
    w->best_idx = -1;
    w->best_d = -1;
}

static int row(const mt_related_row *r, void *u)
{
    struct ws *w = u;
    const char *ours = mt_device_arch_of(w->dev->name), *theirs = mt_device_arch_of(r->device);
    int same_device = !strcmp(r->device, w->dev->name);
    if (!same_device && (!ours || !theirs || strcmp(ours, theirs))) return 0;
    int foreign = !strcmp(r->status, "foreign");
    /* imported files carry vLLM's dtype field: none means bf16 or fp16 */
    if (foreign && !(strncmp(r->dtype, "vllm:", 5) == 0 &&
                     (r->dtype[5] == 0 ? strcmp(w->prob->dtype, "fp32") != 0 : !strcmp(r->dtype + 5, w->prob->dtype))))
        return 0;
    if (!foreign && (strcmp(r->dtype, w->prob->dtype) || r->K != w->prob->K || r->topk != w->prob->topk)) return 0;
    char group[160];
    snprintf(group, sizeof group, "%s/%s", r->device, r->status);
    if (strcmp(group, w->group)) {
        flush(w);
        snprintf(w->group, sizeof w->group, "%s", group);
    }
    /* foreign: the key nearest M, ties to the first as vLLM picks; verified:
     * the fastest at exactly this M (rows come fastest first) */
    int64_t d = r->M > w->M ? r->M - w->M : w->M - r->M;
    if (!foreign && d != 0) return 0;
    if (w->best_d >= 0 && d >= w->best_d) return 0;
    int idx = point_of(w, r->params);
    if (idx < 0) return 0;
    w->best_d = d;
    w->best_idx = idx;
    return 0;
}

int mt_warm_start(mt_db *db, const mt_device_info *dev, const mt_problem *prob, const mt_space *sp,
                  const mt_config *pts, int n, int64_t M, mt_search *s)
{
    struct ws w = {dev, prob, sp, pts, n, M, s, 0, "", -1, -1};
    int rc = mt_db_related(db, prob->E, prob->N, dev->id, row, &w);
    flush(&w);
    return rc == MT_OK ? w.count : rc;
}

/* ---- neighbouring shapes ---- */

#define NEAR_SHAPES 2
struct near {
    const struct ws *w;
    const mt_problem *prob;
    int64_t cur;        /* the problem being read */
    double cur_mdist;   /* its nearest M so far (log2 distance) */
    int cur_idx;        /* its fastest valid point there */
    double cur_sdist;
    double sdist[NEAR_SHAPES];
    int idx[NEAR_SHAPES];
};

static double l2r(double a, double b) { return fabs(log2(a / b)); }

static void near_flush(struct near *n)
{
    if (n->cur < 0 || n->cur_idx < 0) return;
    /* keep the NEAR_SHAPES nearest shapes, nearest first */
    for (int k = 0; k < NEAR_SHAPES; k++)
        if (n->idx[k] < 0 || n->cur_sdist < n->sdist[k]) {
            for (int j = NEAR_SHAPES - 1; j > k; j--) {
                n->idx[j] = n->idx[j - 1];
                n->sdist[j] = n->sdist[j - 1];
            }
            n->idx[k] = n->cur_idx;
            n->sdist[k] = n->cur_sdist;
            break;
        }
}

static int shape_row(const mt_shape_row *r, void *u)
{
    struct near *n = u;
    if (r->problem_id != n->cur) {
        near_flush(n);
        n->cur = r->problem_id;
        n->cur_idx = -1;
        n->cur_mdist = INFINITY;
        n->cur_sdist = l2r((double)r->E, (double)n->prob->E) + l2r((double)r->N, (double)n->prob->N) +
                       l2r((double)r->K, (double)n->prob->K) + l2r((double)r->topk, (double)n->prob->topk);
    }
    /* a shape more than 16 times away in total teaches little */
    if (n->cur_sdist > 4.0) return 0;
    double md = l2r((double)r->M, (double)n->w->M);
    if (md >= n->cur_mdist) return 0; /* rows of one M come fastest first */
    int idx = point_of(n->w, r->params);
    if (idx < 0) return 0;
    n->cur_mdist = md;
    n->cur_idx = idx;
    return 0;
}

int mt_warm_start_shapes(mt_db *db, const mt_device_info *dev, const mt_problem *prob, const char *kernel_hash,
                         const mt_space *sp, const mt_config *pts, int n, int64_t M, mt_search *s)
{
    struct ws w = {dev, prob, sp, pts, n, M, s, 0, "", -1, -1};
    struct near nr = {&w, prob, -1, INFINITY, -1, 0, {0}, {0}};
    for (int k = 0; k < NEAR_SHAPES; k++) nr.idx[k] = -1;
    int rc = mt_db_other_shapes(db, dev->id, prob->id, prob->dtype, kernel_hash, shape_row, &nr);
    if (rc != MT_OK) return rc;
    near_flush(&nr);
    int count = 0;
    for (int k = 0; k < NEAR_SHAPES; k++)
        if (nr.idx[k] >= 0) {
            mt_search_suggest(s, nr.idx[k]);
            count++;
        }
    return count;
}
