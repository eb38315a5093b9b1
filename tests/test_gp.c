/* The Gaussian process against closed forms: the posterior on one and two
 * points computed by hand, expected improvement against a direct
 * integration, and length scales recovered from data drawn from a GP. */
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gp.h"

static double k52(double dist, double ls)
{
    double r = sqrt(5.0) * fabs(dist) / ls;
    return (1 + r + r * r / 3) * exp(-r);
}

static void test_one_point(void)
{
    mt_gp g;
    memset(&g, 0, sizeof g);
    double X[1] = {0.0}, y[1] = {3.0};
    g.ls[0] = 1.0;
    g.noise = 1e-2;
    CHECK(mt_gp_fit(&g, X, y, 1, 1, 0) == 0, "fit");
    double mu, sd;
    mt_gp_predict(&g, (double[]){0.5}, &mu, &sd);
    double k = k52(0.5, 1.0);
    CHECK(fabs(mu - 3.0) < 1e-12, "one point: the mean is its value (%g)", mu);
    CHECK(fabs(sd - sqrt(1 - k * k / 1.01)) < 1e-9, "one point: sd %g, by hand %g", sd, sqrt(1 - k * k / 1.01));
    mt_gp_free(&g);
}

static void test_two_points(void)
{
    mt_gp g;
    memset(&g, 0, sizeof g);
    double X[2] = {0.0, 1.0}, y[2] = {0.0, 2.0};
    g.ls[0] = 0.7;
    g.noise = 1e-3;
    CHECK(mt_gp_fit(&g, X, y, 2, 1, 0) == 0, "fit");
    /* by hand: standardise (mean 1, sd sqrt 2), K^-1 of a 2x2, k* */
    double ysd = sqrt(2.0), ys[2] = {-1 / ysd, 1 / ysd};
    double a = 1 + 1e-3, b = k52(1.0, 0.7), det = a * a - b * b;
    double al[2] = {(a * ys[0] - b * ys[1]) / det, (-b * ys[0] + a * ys[1]) / det};
    for (double x = 0; x <= 1.0001; x += 0.25) {
        double ks[2] = {k52(x, 0.7), k52(x - 1, 0.7)};
        double mu_hand = 1 + ysd * (ks[0] * al[0] + ks[1] * al[1]);
        double quad = (a * ks[0] * ks[0] - 2 * b * ks[0] * ks[1] + a * ks[1] * ks[1]) / det;
        double sd_hand = ysd * sqrt(1 - quad);
        double mu, sd;
        mt_gp_predict(&g, &x, &mu, &sd);
        CHECK(fabs(mu - mu_hand) < 1e-9, "x=%g: mean %.12g, by hand %.12g", x, mu, mu_hand);
        CHECK(fabs(sd - sd_hand) < 1e-6, "x=%g: sd %.9g, by hand %.9g", x, sd, sd_hand);
    }
    double mu;
    double sd;
    mt_gp_predict(&g, (double[]){0.5}, &mu, &sd);
    CHECK(fabs(mu - 1.0) < 1e-9, "halfway between two points: their mean by symmetry (%g)", mu);
    mt_gp_free(&g);
}

static void test_ei(void)
{
    double cases[][4] = {{1.0, 0.5, 1.2, 0.0}, {2.0, 0.1, 1.0, 0.0}, {0.0, 2.0, 0.5, 0.1}, {3.0, 1e-3, 3.1, 0.01}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double mu = cases[c][0], sd = cases[c][1], best = cases[c][2], xi = cases[c][3];
        /* E[max(best - xi - Y, 0)], Y ~ N(mu, sd^2), by the midpoint rule */
        double sum = 0, lo = mu - 12 * sd, hi = mu + 12 * sd, h = (hi - lo) / 200000;
        for (double t = lo + h / 2; t < hi; t += h) {
            double imp = best - xi - t;
            if (imp > 0) sum += imp * exp(-0.5 * ((t - mu) / sd) * ((t - mu) / sd)) / (sd * sqrt(2 * M_PI)) * h;
        }
        double ei = mt_ei(mu, sd, best, xi);
        CHECK(fabs(ei - sum) < 1e-6 * (1 + sum), "case %zu: EI %.9g, integrated %.9g", c, ei, sum);
        CHECK(ei >= 0, "EI is never negative");
    }
    CHECK(mt_ei(1.0, 0.0, 2.0, 0.0) == 1.0 && mt_ei(3.0, 0.0, 2.0, 0.0) == 0.0, "no uncertainty: the plain improvement");
}

static uint64_t rs = 12345;
static double urand(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static void test_recovers_length_scales(void)
{
    /* 80 points in [0,1]^2, values drawn from a GP whose length scale is
     * 0.3 along x0 and 5 (flat) along x1 */
    enum { N = 80 };
    double X[N * 2], y[N], z[N];
    double *K = malloc(sizeof(double) * N * N);
    double ls[2] = {0.3, 5.0};
    for (int i = 0; i < N; i++) {
        X[2 * i] = urand();
        X[2 * i + 1] = urand();
        /* Box-Muller */
        double u1 = urand() + 1e-12, u2 = urand();
        z[i] = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) K[i * N + j] = mt_gp_kernel(&X[2 * i], &X[2 * j], ls, 2) + (i == j ? 1e-6 : 0);
    CHECK(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', N, K, N) == 0, "prior factor");
    for (int i = 0; i < N; i++) {
        y[i] = 0;
        for (int j = 0; j <= i; j++) y[i] += K[i * N + j] * z[j];
    }
    free(K);
    mt_gp g;
    memset(&g, 0, sizeof g);
    CHECK(mt_gp_fit(&g, X, y, N, 2, 1) == 0, "fit");
    CHECK(g.ls[0] >= 0.15 && g.ls[0] <= 0.6, "the short length scale is found: %g (true 0.3)", g.ls[0]);
    CHECK(g.ls[1] >= 2.5, "the flat direction gets a long length scale: %g (true 5)", g.ls[1]);
    CHECK(g.noise <= 1e-2, "little noise is inferred from noiseless data: %g", g.noise);
    double fitted = mt_gp_lml(&g);
    double keep = g.ls[0];
    g.ls[0] = 2.5;
    mt_gp_fit(&g, X, y, N, 2, 0);
    CHECK(mt_gp_lml(&g) < fitted, "the fitted length scale has the higher likelihood");
    g.ls[0] = keep;
    mt_gp_free(&g);
}

int main(void)
{
    test_one_point();
    test_two_points();
    test_ei();
    test_recovers_length_scales();
    return check_report("test_gp");
}
