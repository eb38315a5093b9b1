/* Paged attention decode on the CPU against the double reference: every
 * variant of a grid of tunables, bf16, fp16 and fp32, odd context lengths,
 * partly filled last pages, sequences of different lengths in one batch,
 * pages scattered through the cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "check.h"
#include "moetune/moetune.h"

typedef struct built {
    mt_attn_batch b;
    void *q, *k, *v;
    int32_t *bt, *lens;
} built;

/* a batch with the given context lengths; pages handed out in a shuffled
 * order so that no sequence's pages are contiguous */
static void build(built *x, const mt_attn_shape *s, const int32_t *lens, int B, uint64_t seed)
{
    mt_rng r = {seed};
    int64_t maxp = 0, total = 0;
    for (int i = 0; i < B; i++) {
        int64_t np = (lens[i] + s->page_size - 1) / s->page_size;
        maxp = np > maxp ? np : maxp;
        total += np;
    }
    int64_t num_pages = total + 3; /* a few pages nobody uses */
    size_t esz = mt_dtype_size(s->dtype), kvn = (size_t)(num_pages * s->page_size * s->num_kv_heads * s->head_dim);
    x->q = malloc((size_t)(B * s->num_heads * s->head_dim) * esz);
    x->k = malloc(kvn * esz);
    x->v = malloc(kvn * esz);
    x->bt = calloc((size_t)(B * maxp), sizeof *x->bt);
    x->lens = malloc((size_t)B * sizeof *x->lens);
    int32_t *perm = malloc((size_t)num_pages * sizeof *perm);
    for (int64_t i = 0; i < num_pages; i++) perm[i] = (int32_t)i;
    for (int64_t i = num_pages - 1; i > 0; i--) {
        int64_t j = (int64_t)(mt_rng_next(&r) % (uint64_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int64_t used = 0;
    for (int i = 0; i < B; i++) {
        x->lens[i] = lens[i];
        for (int64_t p = 0; p < (lens[i] + s->page_size - 1) / s->page_size; p++) x->bt[i * maxp + p] = perm[used++];
    }
    free(perm);
    /* fp16 has the smaller range: keep scores moderate for both */
    for (size_t i = 0; i < (size_t)(B * s->num_heads * s->head_dim); i++) mt_store_elem(x->q, s->dtype, i, mt_rng_uniform(&r));
    for (size_t i = 0; i < kvn; i++) {
        mt_store_elem(x->k, s->dtype, i, mt_rng_uniform(&r));
        mt_store_elem(x->v, s->dtype, i, mt_rng_uniform(&r));
    }
    mt_attn_batch b = {B, maxp, num_pages, x->q, x->k, x->v, x->bt, x->lens, 0};
    x->b = b;
}

static void unbuild(built *x)
{
    free(x->q);
    free(x->k);
    free(x->v);
    free(x->bt);
    free(x->lens);
}

static int variants, mismatches;

static void against_reference(mt_pool *pool, const mt_attn_shape *s, const int32_t *lens, int B)
{
    built x;
    build(&x, s, lens, B, 77 + (uint64_t)s->head_dim);
    size_t n = (size_t)(B * s->num_heads * s->head_dim);
    double *ref = malloc(n * sizeof *ref);
    CHECK(mt_attn_reference(s, &x.b, ref) == MT_OK, "reference");
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    /* the output is rounded to the dtype: its unit roundoff, with room for
     * the float accumulation */
    double tol = s->dtype == MT_DTYPE_BF16 ? 1e-2 : s->dtype == MT_DTYPE_FP16 ? 2e-3 : 2e-5;
    void *out = malloc(n * mt_dtype_size(s->dtype));
    int parts[] = {0, (int)s->page_size, (int)(3 * s->page_size), (int)(16 * s->page_size)};
    int ppi[] = {1, 2, 8};
    for (int a = 0; a < 4; a++)
        for (int c = 0; c < 3; c++)
            for (int t = 1; t <= 2; t++) {
                mt_attn_cpu_params p = {parts[a], ppi[c], t};
                char why[256];
                CHECK(mt_attn_check(s, &x.b, &p, 2, why, sizeof why) == MT_OK, "valid params: %s", why);
                void *ws = malloc(mt_attn_cpu_workspace(s, &x.b, &p));
                memset(out, 0xff, n * mt_dtype_size(s->dtype)); /* NaN in every dtype */
                CHECK(mt_attn_cpu_forward(pool, s, &x.b, &p, ws, out) == MT_OK, "forward");
                double worst = 0;
                for (size_t i = 0; i < n; i++) {
                    double e = fabs((double)mt_load_elem(out, s->dtype, i) - ref[i]);
                    if (!(e <= worst)) worst = e; /* NaN sticks */
                }
                variants++;
                if (!(worst <= tol * scale)) mismatches++;
                CHECK(worst <= tol * scale, "H=%lld Hkv=%lld D=%lld page %lld dtype %d partition %d ppi %d threads %d: "
                      "error %g of %g", (long long)s->num_heads, (long long)s->num_kv_heads, (long long)s->head_dim,
                      (long long)s->page_size, s->dtype, p.partition, p.pages_per_iter, p.threads, worst, scale);
                free(ws);
            }
    free(out);
    free(ref);
    unbuild(&x);
}

static void test_bad_input(void)
{
    mt_attn_shape s = {6, 4, 64, 16, MT_DTYPE_BF16};
    int32_t lens[] = {5};
    built x;
    char why[256];
    mt_attn_shape ok = {8, 4, 64, 16, MT_DTYPE_BF16};
    build(&x, &ok, lens, 1, 1);
    CHECK(mt_attn_check(&s, &x.b, NULL, 1, why, sizeof why) == MT_EINVAL && strstr(why, "must divide"), "%s", why);
    mt_attn_cpu_params p = {24, 1, 1};
    CHECK(mt_attn_check(&ok, &x.b, &p, 1, why, sizeof why) == MT_EINVAL && strstr(why, "multiple of page_size"), "%s", why);
    x.lens[0] = 0;
    CHECK(mt_attn_check(&ok, &x.b, NULL, 1, why, sizeof why) == MT_EINVAL && strstr(why, "context 0"), "%s", why);
    x.lens[0] = 5;
    x.bt[0] = (int32_t)x.b.num_pages;
    CHECK(mt_attn_check(&ok, &x.b, NULL, 1, why, sizeof why) == MT_EINVAL && strstr(why, "outside the cache"), "%s", why);
    unbuild(&x);
}

static void test_f16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN */
        if (mt_f32_to_f16(mt_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d fp16 values do not round-trip", bad);
    CHECK(mt_f32_to_f16(1.0f) == 0x3c00 && mt_f32_to_f16(65520.f) == 0x7c00 && mt_f32_to_f16(-2.0f) == 0xc000, "fp16 encodings");
    CHECK(mt_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00 && mt_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "ties to even");
}

int main(void)
{
    mt_pool *pool = NULL;
    CHECK(mt_pool_new(&pool, 2) == MT_OK, "pool");
    test_f16();
    test_bad_input();
    /* odd lengths, a last page partly filled, one token, several pages */
    int32_t lens[] = {1, 17, 33, 100, 517};
    int dtypes[] = {MT_DTYPE_BF16, MT_DTYPE_FP16, MT_DTYPE_FP32};
    for (int d = 0; d < 3; d++) {
        mt_attn_shape a = {8, 2, 64, 16, dtypes[d]};   /* GQA 4:1, page 16 */
        mt_attn_shape b = {4, 4, 128, 32, dtypes[d]};  /* MHA, page 32 */
        mt_attn_shape c = {16, 1, 256, 16, dtypes[d]}; /* MQA, head_dim 256 */
        against_reference(pool, &a, lens, 5);
        against_reference(pool, &b, lens, 5);
        against_reference(pool, &c, lens + 1, 3);
    }
    printf("%d variants against the reference, %d mismatches\n", variants, mismatches);
    mt_pool_free(pool);
    return check_report("test_attention");
}
