/* The measurement: one figure over several routings of a batch size's
 * tokens, the checks run on every routing, the repetitions cycle through
 * the routings. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "measure.h"
#include "moetune/moetune.h"

static void test_summarize_routings(void)
{
    /* routing 0 takes 1, routing 1 takes 2, routing 2 takes 9 (in turn):
     * the figure is the mean of their medians, 4, where the median of all
     * six would say 2 */
    double t[] = {1, 2, 9, 1, 2, 9};
    mt_measure_result r;
    memset(&r, 0, sizeof r);
    mt_summarize_routings(t, 6, 3, 1.0, &r);
    CHECK(fabs(r.median_us - 4.0) < 1e-12, "mean of the routing medians: got %g", r.median_us);
    CHECK(r.reps == 6 && r.ok, "reps %d ok %d", r.reps, r.ok);

    /* each routing's own median, not its mean: an outlier in routing 1 */
    double u[] = {1, 2, 3, 1, 100, 3, 1, 2, 3};
    memset(&r, 0, sizeof r);
    mt_summarize_routings(u, 9, 3, 1.0, &r);
    CHECK(fabs(r.median_us - 2.0) < 1e-12, "medians 1, 2, 3: got %g", r.median_us);

    /* one routing is the plain median */
    double v[] = {5, 1, 3};
    memset(&r, 0, sizeof r);
    mt_summarize_routings(v, 3, 1, 2.0, &r);
    CHECK(fabs(r.median_us - 6.0) < 1e-12, "plain median 3 x 2: got %g", r.median_us);
}

static void test_cpu_routings(void)
{
    mt_cpu_bench *b = NULL;
    CHECK(mt_cpu_bench_new(&b, 2) == MT_OK, "bench");
    if (!b) return;
    mt_moe_shape s = {8, 64, 128, 2, MT_DTYPE_FP32, 1, 0, 0, 0};
    mt_cpu_params p = {4, 16, 64, 1};
    mt_policy pol;
    mt_policy_cpu_default(&pol);
    pol.min_time_s = 0;
    pol.min_reps = 1;
    for (int R = 1; R <= 5; R += 2) {
        pol.routings = R;
        mt_measure_result res;
        CHECK(mt_cpu_bench_measure(b, &s, 5, &p, 42, &pol, &res) == MT_OK, "measure R=%d", R);
        CHECK(res.ok && res.median_us > 0, "R=%d ok %d reason %s", R, res.ok, res.reason);
        /* each routing at least twice, and all of them equally often */
        CHECK(res.reps >= 2 * R && res.reps % R == 0, "R=%d reps %d", R, res.reps);
        CHECK(res.rel_err >= 0 && res.rel_err <= pol.tolerance, "R=%d rel_err %g", R, res.rel_err);
        CHECK(res.experts_hit >= 2 && res.experts_hit <= 8, "R=%d experts hit %lld", R, (long long)res.experts_hit);
    }
    /* the same seed is the same inputs, whatever the config: the routing's
     * experts hit agree */
    mt_cpu_params q = {8, 32, 32, 2};
    mt_measure_result a, c;
    pol.routings = 1;
    CHECK(mt_cpu_bench_measure(b, &s, 3, &p, 7, &pol, &a) == MT_OK && mt_cpu_bench_measure(b, &s, 3, &q, 7, &pol, &c) == MT_OK,
          "two configs");
    CHECK(a.experts_hit == c.experts_hit, "experts hit %lld and %lld", (long long)a.experts_hit, (long long)c.experts_hit);
    /* a corrupt output is caught on the first routing, with its number */
    pol.routings = 3;
    mt_cpu_bench_set_fault(b, MT_FAULT_NAN);
    CHECK(mt_cpu_bench_measure(b, &s, 5, &p, 42, &pol, &a) == MT_OK, "measure with a fault");
    CHECK(!a.ok && strstr(a.reason, "NaN") && strstr(a.reason, "routing 0"), "reason: %s", a.reason);
    mt_cpu_bench_set_fault(b, MT_FAULT_NONE);
    mt_cpu_bench_free(b);
}

int main(void)
{
    test_summarize_routings();
    test_cpu_routings();
    return check_report("test_measure");
}
