/*
 * A Gaussian process for the Bayesian search: Matérn 5/2 kernel with one
 * length scale per dimension, unit signal variance on standardised targets,
 * hyperparameters fitted by maximising the marginal likelihood, linear
 * algebra through LAPACKE. Small and exact: at most a few hundred points.
 */
#ifndef MT_GP_H
#define MT_GP_H
#include <stddef.h>

#define MT_GP_MAXD 16

typedef struct mt_gp {
    int n, d;
    const double *X;           /* [n][d], the caller's, kept while the model is used */
    double ls[MT_GP_MAXD];     /* length scales */
    double noise;              /* noise variance, in standardised units */
    double ymean, ysd;         /* the standardisation of the targets */
    double *L;                 /* Cholesky factor of K + noise I, [n][n] lower */
    double *alpha;             /* (K + noise I)^-1 y */
    double lmax;               /* an upper bound of K + noise I's eigenvalues */
    double *scratch;           /* mt_gp_predict_many's buffer, kept between calls */
    size_t scratch_n;
} mt_gp;

/* Matérn 5/2 between a and b (unit variance). */
double mt_gp_kernel(const double *a, const double *b, const double *ls, int d);

/* Fit to y (n values): standardise, optionally search the length scales and
 * noise (coordinate ascent over log-spaced grids), factor. X must outlive
 * the model. optimize 2: a warm refit that only tries the neighbouring
 * grid values of the current hyperparameters. Returns 0, or -1 when the matrix cannot be factored. */
int mt_gp_fit(mt_gp *g, const double *X, const double *y, int n, int d, int optimize);
void mt_gp_free(mt_gp *g);

/* The log marginal likelihood of the standardised targets, up to a constant. */
double mt_gp_lml(const mt_gp *g);

/* The posterior mean and standard deviation at x, in the targets' units. */
void mt_gp_predict(const mt_gp *g, const double *x, double *mu, double *sd);

/* The same for nc points Xc [nc][d] at once (one triangular solve with nc
 * right-hand sides): 0, or -1 (out of memory or a failed solve). */
int mt_gp_predict_many(mt_gp *g, const double *Xc, int nc, double *mu, double *sd);
/* The posterior mean at nc points, and (sd_max, may be NULL) an upper bound
 * of the standard deviation from Gershgorin's bound on K's eigenvalues:
 * O(n) each, no solve. */
void mt_gp_mean_many(const mt_gp *g, const double *Xc, int nc, double *mu, double *sd_max);
/* Expected improvement below `best` (minimisation) with margin xi. */
double mt_ei(double mu, double sd, double best, double xi);

#endif
