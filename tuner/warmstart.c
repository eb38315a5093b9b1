#include "warmstart.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family.h"
#include "moetune/moetune.h"
#include "vllm.h"

struct ws {
    const mt_device_info *dev;
    const mt_problem *prob;
    const mt_space *sp;
    const mt_config *pts;
    int n;
    int64_t M, p2; /* the point */
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
    /* verified rows are of the same problem (the query matched its key):
     * only the point remains to match */
    if (!foreign && r->point[1] != w->p2) return 0;
    char group[160];
    snprintf(group, sizeof group, "%s/%s", r->device, r->status);
    if (strcmp(group, w->group)) {
        flush(w);
        snprintf(w->group, sizeof w->group, "%s", group);
    }
    /* foreign: the key nearest M, ties to the first as vLLM picks; verified:
     * the fastest at exactly this M (rows come fastest first) */
    int64_t d = r->point[0] > w->M ? r->point[0] - w->M : w->M - r->point[0];
    if (!foreign && d != 0) return 0;
    if (w->best_d >= 0 && d >= w->best_d) return 0;
    int idx = point_of(w, r->params);
    if (idx < 0) return 0;
    w->best_d = d;
    w->best_idx = idx;
    return 0;
}

int mt_warm_start(mt_db *db, const mt_device_info *dev, const mt_problem *prob, const mt_space *sp,
                  const mt_config *pts, int n, const int64_t point[2], mt_search *s)
{
    struct ws w = {dev, prob, sp, pts, n, point[0], point[1], s, 0, "", -1, -1};
    int rc = mt_db_related(db, prob, dev->id, row, &w);
    flush(&w);
    return rc == MT_OK ? w.count : rc;
}

/* ---- neighbouring keys ---- */

#define NEAR_SHAPES 2
struct near {
    const struct ws *w;
    const mt_family *f;
    mt_family_key key; /* the problem's own */
    int64_t cur;       /* the problem being read */
    double cur_mdist;  /* its nearest point so far (log2 distance) */
    int cur_idx;       /* its fastest valid point there */
    double cur_sdist;
    double sdist[NEAR_SHAPES];
    int idx[NEAR_SHAPES];
};

/* |log2(a/b)|; 0 where both are 0 (a field neither key has), and too far
 * to count where only one is */
static double l2r(double a, double b)
{
    if (a == b) return 0;
    if (a <= 0 || b <= 0) return INFINITY;
    return fabs(log2(a / b));
}

static void near_flush(struct near *n)
{
    if (n->cur < 0 || n->cur_idx < 0) return;
    /* keep the NEAR_SHAPES nearest keys, nearest first */
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
        /* the distance between keys: log2 ratios summed over the family's
         * fields (a key this build cannot read is passed over) */
        mt_family_key k;
        char why[128];
        n->cur_sdist = 0;
        if (mt_family_key_parse(n->f, r->key, &k, why, sizeof why) != MT_OK) n->cur_sdist = INFINITY;
        for (int i = 0; i < n->f->nkey && n->cur_sdist < INFINITY; i++)
            n->cur_sdist += l2r((double)k.v[i], (double)n->key.v[i]);
    }
    /* a key more than 16 times away in total teaches little */
    if (n->cur_sdist > 4.0) return 0;
    double md = l2r((double)r->point[0], (double)n->w->M) + l2r((double)r->point[1], (double)n->w->p2);
    if (md >= n->cur_mdist) return 0; /* rows of one point come fastest first */
    int idx = point_of(n->w, r->params);
    if (idx < 0) return 0;
    n->cur_mdist = md;
    n->cur_idx = idx;
    return 0;
}

int mt_warm_start_shapes(mt_db *db, const mt_device_info *dev, const mt_problem *prob, const char *kernel_hash,
                         const mt_space *sp, const mt_config *pts, int n, const int64_t point[2], mt_search *s)
{
    struct ws w = {dev, prob, sp, pts, n, point[0], point[1], s, 0, "", -1, -1};
    struct near nr;
    char why[128];
    memset(&nr, 0, sizeof nr);
    nr.w = &w;
    nr.f = mt_family_find(prob->kernel);
    nr.cur = -1;
    nr.cur_mdist = INFINITY;
    nr.cur_idx = -1;
    if (!nr.f || mt_family_key_parse(nr.f, prob->key, &nr.key, why, sizeof why) != MT_OK) return 0;
    for (int k = 0; k < NEAR_SHAPES; k++) nr.idx[k] = -1;
    int rc = mt_db_other_keys(db, dev->id, prob, kernel_hash, shape_row, &nr);
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

int mt_warm_start_file(const char *path, const mt_space *sp, const mt_config *pts, int n, int64_t M, mt_search *s,
                       char *why, size_t wn)
{
    mt_vllm_file f;
    int rc = mt_vllm_file_read_content(path, &f, why, wn);
    if (rc != MT_OK) return rc < 0 ? rc : -rc;
    struct ws w = {NULL, NULL, sp, pts, n, M, 0, s, 0, "", -1, -1};
    const cJSON *best = NULL;
    int64_t best_d = -1;
    for (const cJSON *e = f.root->child; e; e = e->next) {
        if (!mt_vllm_is_m_key(e->string)) continue;
        int64_t m = strtoll(e->string, NULL, 10), d = m > M ? m - M : M - m;
        if (best_d < 0 || d < best_d) best_d = d, best = e;
    }
    char *params = best ? cJSON_PrintUnformatted(best) : NULL;
    int idx = params ? point_of(&w, params) : -1;
    free(params);
    mt_vllm_file_free(&f);
    if (idx < 0) return 0;
    mt_search_suggest(s, idx);
    return 1;
}
