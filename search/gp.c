#include "gp.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double mt_gp_kernel(const double *a, const double *b, const double *ls, int d)
{
    double r2 = 0;
    for (int p = 0; p < d; p++) {
        double u = (a[p] - b[p]) / ls[p];
        r2 += u * u;
    }
    double r = sqrt(5.0 * r2);
    return (1.0 + r + r * r / 3.0) * exp(-r);
}

/* Factor K + noise I and solve for alpha with the current hyperparameters;
 * ys are the standardised targets. 0 or -1. */
static int factor(mt_gp *g, const double *ys)
{
    int n = g->n, d = g->d;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double k = mt_gp_kernel(&g->X[(size_t)i * d], &g->X[(size_t)j * d], g->ls, d);
            g->L[(size_t)i * n + j] = k + (i == j ? g->noise : 0.0);
            g->L[(size_t)j * n + i] = g->L[(size_t)i * n + j];
        }
    /* Gershgorin: no eigenvalue exceeds the largest absolute row sum; it
     * bounds the posterior deviation from above without a solve */
    g->lmax = 0;
    for (int i = 0; i < n; i++) {
        double r = 0;
        for (int j = 0; j < n; j++) r += fabs(g->L[(size_t)i * n + j]);
        g->lmax = r > g->lmax ? r : g->lmax;
    }
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, g->L, n) != 0) return -1;
    memcpy(g->alpha, ys, (size_t)n * sizeof *ys);
    return LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', n, 1, g->L, n, g->alpha, 1) != 0 ? -1 : 0;
}

static double lml_of(const mt_gp *g, const double *ys)
{
    double fit = 0, logdet = 0;
    for (int i = 0; i < g->n; i++) {
        fit += ys[i] * g->alpha[i];
        logdet += log(g->L[(size_t)i * g->n + i]);
    }
    return -0.5 * fit - logdet;
}

double mt_gp_lml(const mt_gp *g)
{
    /* alpha = K^-1 ys, so ys = K alpha: recover ys' contribution from alpha
     * and the factor: y^T alpha = alpha^T (L L^T) alpha */
    double fit = 0, logdet = 0;
    int n = g->n;
    for (int i = 0; i < n; i++) {
        double v = 0;
        for (int j = i; j < n; j++) v += g->L[(size_t)j * n + i] * g->alpha[j]; /* (L^T alpha)_i */
        fit += v * v;
        logdet += log(g->L[(size_t)i * n + i]);
    }
    return -0.5 * fit - logdet;
}

/* The index of the grid value nearest v (in log scale). */
static int nearest(const double *grid, size_t n, double v)
{
    int at = 0;
    for (size_t k = 1; k < n; k++)
        if (fabs(log(grid[k] / v)) < fabs(log(grid[at] / v))) at = (int)k;
    return at;
}

int mt_gp_fit(mt_gp *g, const double *X, const double *y, int n, int d, int optimize)
{
    static const double grid[] = {0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5.0};
    static const double noises[] = {1e-4, 1e-3, 1e-2, 5e-2, 2e-1};
    double *ys = malloc((size_t)n * sizeof *ys);
    free(g->L);
    free(g->alpha);
    g->L = malloc((size_t)n * n * sizeof *g->L);
    g->alpha = malloc((size_t)n * sizeof *g->alpha);
    if (!ys || !g->L || !g->alpha || d > MT_GP_MAXD || n < 1) {
        free(ys);
        return -1;
    }
    g->n = n;
    g->d = d;
    g->X = X;
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += y[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (y[i] - mean) * (y[i] - mean);
    g->ymean = mean;
    g->ysd = n > 1 && var > 1e-24 ? sqrt(var / (n - 1)) : 1.0;
    for (int i = 0; i < n; i++) ys[i] = (y[i] - mean) / g->ysd;
    if (g->noise <= 0) g->noise = 1e-2;
    for (int p = 0; p < d; p++)
        if (g->ls[p] <= 0) g->ls[p] = 0.5;
    if (optimize) {
        /* coordinate ascent over log-spaced grids; a warm model (optimize 2)
         * only tries each value's neighbours in one sweep: the fit moves
         * little between steps, and a full search per step is what made
         * long searches slow */
        int warm = optimize == 2;
        double best = factor(g, ys) == 0 ? lml_of(g, ys) : -INFINITY;
        for (int sweep = 0; sweep < (warm ? 1 : 2); sweep++) {
            for (int p = 0; p < d; p++) {
                double keep = g->ls[p];
                int at = nearest(grid, sizeof grid / sizeof grid[0], keep);
                for (int k = 0; k < (int)(sizeof grid / sizeof grid[0]); k++) {
                    if (warm && (k < at - 1 || k > at + 1 || k == at)) continue;
                    g->ls[p] = grid[k];
                    double v = factor(g, ys) == 0 ? lml_of(g, ys) : -INFINITY;
                    if (v > best) {
                        best = v;
                        keep = grid[k];
                    }
                }
                g->ls[p] = keep;
            }
            double keepn = g->noise;
            int at = nearest(noises, sizeof noises / sizeof noises[0], keepn);
            for (int k = 0; k < (int)(sizeof noises / sizeof noises[0]); k++) {
                if (warm && (k < at - 1 || k > at + 1 || k == at)) continue;
                g->noise = noises[k];
                double v = factor(g, ys) == 0 ? lml_of(g, ys) : -INFINITY;
                if (v > best) {
                    best = v;
                    keepn = noises[k];
                }
            }
            g->noise = keepn;
        }
    }
    int rc = factor(g, ys);
    free(ys);
    return rc;
}

void mt_gp_free(mt_gp *g)
{
    if (!g) return;
    free(g->L);
    free(g->alpha);
    free(g->scratch);
    g->L = g->alpha = g->scratch = NULL;
    g->scratch_n = 0;
}

void mt_gp_predict(const mt_gp *g, const double *x, double *mu, double *sd)
{
    int n = g->n, d = g->d;
    double *k = malloc((size_t)n * sizeof *k), m = 0;
    if (!k) {
        *mu = g->ymean;
        *sd = g->ysd;
        return;
    }
    for (int i = 0; i < n; i++) {
        k[i] = mt_gp_kernel(x, &g->X[(size_t)i * d], g->ls, d);
        m += k[i] * g->alpha[i];
    }
    /* variance: 1 - |L^-1 k|^2 */
    double v = 1.0;
    if (LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'L', 'N', 'N', n, 1, g->L, n, k, 1) == 0)
        for (int i = 0; i < n; i++) v -= k[i] * k[i];
    free(k);
    *mu = g->ymean + g->ysd * m;
    *sd = g->ysd * (v > 1e-12 ? sqrt(v) : 1e-6);
}

void mt_gp_mean_many(const mt_gp *g, const double *Xc, int nc, double *mu, double *sd_max)
{
    for (int c = 0; c < nc; c++) {
        double m = 0, kk = 0;
        for (int i = 0; i < g->n; i++) {
            double k = mt_gp_kernel(&Xc[(size_t)c * g->d], &g->X[(size_t)i * g->d], g->ls, g->d);
            m += k * g->alpha[i];
            kk += k * k;
        }
        mu[c] = g->ymean + g->ysd * m;
        /* k^T K^-1 k >= |k|^2 / lambda_max(K) */
        double v = g->lmax > 0 ? 1.0 - kk / g->lmax : 1.0;
        if (sd_max) sd_max[c] = g->ysd * (v > 1e-12 ? sqrt(v) : 1e-6);
    }
}

int mt_gp_predict_many(mt_gp *g, const double *Xc, int nc, double *mu, double *sd)
{
    int n = g->n, d = g->d;
    if (nc < 1) return 0;
    /* K* with one column of n per candidate, in column-major order: the
     * row-major lower factor is the column-major upper one, so one
     * triangular solve with nc right-hand sides (BLAS 3) runs with no
     * transposed copies; the buffer is kept between calls */
    size_t need = (size_t)n * (size_t)nc;
    if (need > g->scratch_n) {
        free(g->scratch);
        g->scratch = malloc(need * sizeof *g->scratch);
        g->scratch_n = g->scratch ? need : 0;
    }
    double *B = g->scratch;
    if (!B) return -1;
    for (int c = 0; c < nc; c++) {
        const double *xc = &Xc[(size_t)c * d];
        double *col = &B[(size_t)c * n], m = 0;
        for (int i = 0; i < n; i++) {
            col[i] = mt_gp_kernel(xc, &g->X[(size_t)i * d], g->ls, d);
            m += col[i] * g->alpha[i];
        }
        mu[c] = m;
    }
    /* L V = K*, i.e. (L^T)^T V = K* with L^T upper in column-major */
    int bad = LAPACKE_dtrtrs(LAPACK_COL_MAJOR, 'U', 'T', 'N', n, nc, g->L, n, B, n) != 0;
    for (int c = 0; c < nc; c++) {
        double v = 1.0;
        const double *col = &B[(size_t)c * n];
        if (!bad)
            for (int i = 0; i < n; i++) v -= col[i] * col[i];
        mu[c] = g->ymean + g->ysd * mu[c];
        sd[c] = g->ysd * (v > 1e-12 ? sqrt(v) : 1e-6);
    }
    return bad ? -1 : 0;
}

double mt_ei(double mu, double sd, double best, double xi)
{
    double imp = best - mu - xi;
    if (!(sd > 0)) return imp > 0 ? imp : 0;
    double z = imp / sd;
    return imp * 0.5 * erfc(-z / sqrt(2.0)) + sd * exp(-0.5 * z * z) / sqrt(2.0 * M_PI);
}
