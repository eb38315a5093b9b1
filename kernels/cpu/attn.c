/* Paged attention decode on the CPU: the reference in double, and the
 * split-KV kernel (attn.h). */
#include "attn.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moetune/moetune.h"

static float scale_of(const mt_attn_shape *s, const mt_attn_batch *b)
{
    return b->scale > 0 ? b->scale : 1.0f / sqrtf((float)s->head_dim);
}

/* element (token t of sequence i, KV head g, dim 0) of a cache */
static size_t kv_at(const mt_attn_shape *s, const mt_attn_batch *b, int64_t i, int64_t t, int64_t g)
{
    int64_t page = b->block_table[i * b->max_pages + t / s->page_size];
    return (size_t)(((page * s->page_size + t % s->page_size) * s->num_kv_heads + g) * s->head_dim);
}

int mt_attn_check(const mt_attn_shape *s, const mt_attn_batch *b, const mt_attn_cpu_params *p, int max_threads,
                  char *why, size_t n)
{
    char tmp[8];
    if (!why) why = tmp, n = sizeof tmp;
    if (!s || !b) return snprintf(why, n, "no shape or batch"), MT_EINVAL;
    if (s->num_heads < 1 || s->num_kv_heads < 1 || s->num_heads % s->num_kv_heads || s->head_dim < 1 ||
        s->head_dim > 1024 || s->page_size < 1)
        return snprintf(why, n, "heads %lld over %lld KV heads, head_dim %lld, page_size %lld: the heads must divide",
                        (long long)s->num_heads, (long long)s->num_kv_heads, (long long)s->head_dim,
                        (long long)s->page_size), MT_EINVAL;
    if (s->dtype != MT_DTYPE_BF16 && s->dtype != MT_DTYPE_FP16 && s->dtype != MT_DTYPE_FP32)
        return snprintf(why, n, "dtype must be bf16, fp16 or fp32"), MT_EINVAL;
    if (b->B < 1 || b->max_pages < 1 || b->num_pages < 1 || !b->q || !b->k_cache || !b->v_cache || !b->block_table ||
        !b->context_lens)
        return snprintf(why, n, "an empty batch"), MT_EINVAL;
    for (int64_t i = 0; i < b->B; i++) {
        int64_t c = b->context_lens[i];
        if (c < 1 || c > b->max_pages * s->page_size)
            return snprintf(why, n, "sequence %lld: context %lld outside 1 .. %lld", (long long)i, (long long)c,
                            (long long)(b->max_pages * s->page_size)), MT_EINVAL;
        for (int64_t j = 0; j < (c + s->page_size - 1) / s->page_size; j++) {
            int32_t pg = b->block_table[i * b->max_pages + j];
            if (pg < 0 || pg >= b->num_pages)
                return snprintf(why, n, "sequence %lld: page %lld is %d, outside the cache's %lld", (long long)i,
                                (long long)j, pg, (long long)b->num_pages), MT_EINVAL;
        }
    }
    if (p) {
        if (p->partition < 0 || (p->partition && p->partition % s->page_size) || p->pages_per_iter < 1 ||
            p->pages_per_iter > 64 || p->threads < 1 || p->threads > max_threads)
            return snprintf(why, n, "partition %d (a multiple of page_size %lld, or 0), pages_per_iter %d (1..64), "
                            "threads %d (1..%d)", p->partition, (long long)s->page_size, p->pages_per_iter,
                            p->threads, max_threads), MT_EINVAL;
    }
    return MT_OK;
}

int mt_attn_reference(const mt_attn_shape *s, const mt_attn_batch *b, double *out)
{
    int rc = mt_attn_check(s, b, NULL, 1, NULL, 0);
    if (rc != MT_OK) return rc;
    int64_t H = s->num_heads, D = s->head_dim, G = H / s->num_kv_heads, maxc = 0;
    for (int64_t i = 0; i < b->B; i++) maxc = b->context_lens[i] > maxc ? b->context_lens[i] : maxc;
    double *sc = malloc((size_t)maxc * sizeof *sc);
    if (!sc) return MT_ENOMEM;
    double scale = scale_of(s, b);
    for (int64_t i = 0; i < b->B; i++)
        for (int64_t h = 0; h < H; h++) {
            int64_t c = b->context_lens[i], g = h / G;
            const size_t qo = (size_t)((i * H + h) * D);
            double mx = -INFINITY, sum = 0;
            for (int64_t t = 0; t < c; t++) {
                size_t ko = kv_at(s, b, i, t, g);
                double d = 0;
                for (int64_t k = 0; k < D; k++)
                    d += (double)mt_load_elem(b->q, s->dtype, qo + (size_t)k) * mt_load_elem(b->k_cache, s->dtype, ko + (size_t)k);
                sc[t] = d * scale;
                if (sc[t] > mx) mx = sc[t];
            }
            for (int64_t t = 0; t < c; t++) sum += (sc[t] = exp(sc[t] - mx));
            for (int64_t k = 0; k < D; k++) {
                double acc = 0;
                for (int64_t t = 0; t < c; t++) acc += sc[t] * mt_load_elem(b->v_cache, s->dtype, kv_at(s, b, i, t, g) + (size_t)k);
                out[qo + (size_t)k] = acc / sum;
            }
        }
    free(sc);
    return MT_OK;
}

static int64_t max_ctx(const mt_attn_batch *b)
{
    int64_t m = 0;
    for (int64_t i = 0; i < b->B; i++) m = b->context_lens[i] > m ? b->context_lens[i] : m;
    return m;
}

static int64_t parts_of(int64_t ctx, int partition) { return partition ? (ctx + partition - 1) / partition : 1; }

/* A thread's scratch: the step's scores for the group's heads, one query
 * row, and the step's K and V rows in fp32 */
static size_t per_thread(int64_t G, size_t step, size_t D) { return (size_t)G * step + D + 2 * step * D; }

/* n elements of a cache or q row as fp32: one branch per row, not per
 * element, and a loop the compiler vectorises */
static void row_f32(const void *base, int dtype, size_t off, int64_t n, float *dst)
{
    if (dtype == MT_DTYPE_FP32) {
        memcpy(dst, (const float *)base + off, (size_t)n * sizeof *dst);
    } else if (dtype == MT_DTYPE_BF16) {
        const uint16_t *h = (const uint16_t *)base + off;
        for (int64_t k = 0; k < n; k++) dst[k] = mt_bf16_to_f32(h[k]);
    } else {
        const uint16_t *h = (const uint16_t *)base + off;
        for (int64_t k = 0; k < n; k++) dst[k] = mt_f16_to_f32(h[k]);
    }
}

/* q . k over n elements with 8 partial sums: without -ffast-math the
 * compiler may not reorder one running sum, and 8 lanes vectorise */
static float dot_f32(const float *a, const float *b, int64_t n)
{
    float p[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int l = 0; l < 8; l++) p[l] += a[k + l] * b[k + l];
    float d = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; k < n; k++) d += a[k] * b[k];
    return d;
}

size_t mt_attn_cpu_workspace(const mt_attn_shape *s, const mt_attn_batch *b, const mt_attn_cpu_params *p)
{
    int64_t G = s->num_heads / s->num_kv_heads, P = parts_of(max_ctx(b), p->partition);
    size_t items = (size_t)(b->B * s->num_kv_heads * P);
    /* per item and query head: max, sum, D outputs; per thread: the
     * scores of one step for the group's heads */
    size_t part = items * (size_t)G * (size_t)(2 + s->head_dim);
    size_t step = (size_t)p->pages_per_iter * (size_t)s->page_size;
    size_t scratch = (size_t)p->threads * per_thread(G, step, (size_t)s->head_dim);
    return (part + scratch) * sizeof(float) + 64;
}

struct job {
    const mt_attn_shape *s;
    const mt_attn_batch *b;
    const mt_attn_cpu_params *p;
    float *part, *scratch;
    int64_t P, G, items;
    float scale;
    atomic_long next;
    void *out;
};

/* One (sequence, KV head, partition): online softmax over its tokens, a
 * step of pages_per_iter pages at a time, for every query head of the group */
static void do_item(struct job *j, int64_t it, float *sc, float *qf)
{
    const mt_attn_shape *s = j->s;
    const mt_attn_batch *b = j->b;
    int64_t D = s->head_dim, G = j->G, Hkv = s->num_kv_heads;
    int64_t i = it / (Hkv * j->P), g = (it / j->P) % Hkv, part = it % j->P;
    int64_t c = b->context_lens[i];
    int64_t t0 = j->p->partition ? part * j->p->partition : 0;
    int64_t t1 = j->p->partition ? t0 + j->p->partition : c;
    if (t1 > c) t1 = c;
    float *res = j->part + (size_t)it * (size_t)G * (size_t)(2 + D); /* [G][max, sum, D] */
    for (int64_t h = 0; h < G; h++) {
        float *r = res + h * (2 + D);
        r[0] = -INFINITY;
        r[1] = 0;
        for (int64_t k = 0; k < D; k++) r[2 + k] = 0;
    }
    if (t0 >= t1) return; /* a partition past this sequence's end */
    int64_t step = (int64_t)j->p->pages_per_iter * s->page_size;
    float *kf = qf + D, *vf = kf + step * D; /* the step's K and V rows, converted once for all G heads */
    for (int64_t a = t0; a < t1; a += step) {
        int64_t e = a + step < t1 ? a + step : t1;
        for (int64_t t = a; t < e; t++) {
            size_t o = kv_at(s, b, i, t, g);
            row_f32(b->k_cache, s->dtype, o, D, kf + (t - a) * D);
            row_f32(b->v_cache, s->dtype, o, D, vf + (t - a) * D);
        }
        for (int64_t h = 0; h < G; h++) {
            int64_t qh = g * G + h;
            row_f32(b->q, s->dtype, (size_t)((i * s->num_heads + qh) * D), D, qf);
            float *r = res + h * (2 + D), mx = r[0];
            float *sh = sc + h * step;
            for (int64_t t = a; t < e; t++) {
                sh[t - a] = dot_f32(qf, kf + (t - a) * D, D) * j->scale;
                if (sh[t - a] > mx) mx = sh[t - a];
            }
            /* rescale what was summed under the old maximum */
            float f = r[0] == -INFINITY ? 0.f : expf(r[0] - mx);
            r[1] *= f;
            float *acc = r + 2;
            for (int64_t k = 0; k < D; k++) acc[k] *= f;
            for (int64_t t = a; t < e; t++) {
                float w = expf(sh[t - a] - mx);
                const float *vr = vf + (t - a) * D;
                r[1] += w;
                for (int64_t k = 0; k < D; k++) acc[k] += w * vr[k];
            }
            r[0] = mx;
        }
    }
}

static void worker(void *arg, int tid)
{
    struct job *j = arg;
    int64_t step = (int64_t)j->p->pages_per_iter * j->s->page_size;
    float *sc = j->scratch + (size_t)tid * per_thread(j->G, (size_t)step, (size_t)j->s->head_dim);
    float *qf = sc + j->G * step;
    for (;;) {
        int64_t it = atomic_fetch_add(&j->next, 1);
        if (it >= j->items) break;
        do_item(j, it, sc, qf);
    }
}

/* The second pass: each (sequence, head) merges its partitions by their
 * log-sum-exp */
static void reduce(struct job *j)
{
    const mt_attn_shape *s = j->s;
    int64_t D = s->head_dim, G = j->G, Hkv = s->num_kv_heads;
    for (int64_t i = 0; i < j->b->B; i++)
        for (int64_t h = 0; h < s->num_heads; h++) {
            int64_t g = h / G, hh = h % G, np = parts_of(j->b->context_lens[i], j->p->partition);
            float mx = -INFINITY, sum = 0;
            for (int64_t p = 0; p < np; p++) {
                const float *r = j->part + (size_t)(((i * Hkv + g) * j->P + p) * G + hh) * (size_t)(2 + D);
                if (r[0] > mx) mx = r[0];
            }
            for (int64_t p = 0; p < np; p++) {
                const float *r = j->part + (size_t)(((i * Hkv + g) * j->P + p) * G + hh) * (size_t)(2 + D);
                if (r[0] != -INFINITY) sum += r[1] * expf(r[0] - mx);
            }
            for (int64_t k = 0; k < D; k++) {
                float acc = 0;
                for (int64_t p = 0; p < np; p++) {
                    const float *r = j->part + (size_t)(((i * Hkv + g) * j->P + p) * G + hh) * (size_t)(2 + D);
                    if (r[0] != -INFINITY) acc += r[2 + k] * expf(r[0] - mx);
                }
                mt_store_elem(j->out, s->dtype, (size_t)((i * s->num_heads + h) * D + k), acc / sum);
            }
        }
}

int mt_attn_cpu_forward(mt_pool *pool, const mt_attn_shape *s, const mt_attn_batch *b, const mt_attn_cpu_params *p,
                        void *workspace, void *out)
{
    int rc = mt_attn_check(s, b, p, mt_pool_size(pool), NULL, 0);
    if (rc != MT_OK) return rc;
    struct job j = {s, b, p, NULL, NULL, parts_of(max_ctx(b), p->partition), s->num_heads / s->num_kv_heads, 0,
                    scale_of(s, b), 0, out};
    j.items = b->B * s->num_kv_heads * j.P;
    j.part = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    j.scratch = j.part + (size_t)j.items * (size_t)j.G * (size_t)(2 + s->head_dim);
    atomic_init(&j.next, 0);
    mt_pool_run(pool, p->threads, worker, &j);
    reduce(&j);
    return MT_OK;
}
