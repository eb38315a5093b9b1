/*
 * What search strategies do with a parameter space (families/family_space.h):
 * enumerate its valid points, narrow it, write and read its configs. They
 * only ever see valid points.
 */
#ifndef MT_SPACE_H
#define MT_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "family_space.h" /* the space types, and each family's spaces */

/* Index of a named parameter, or -1. */
int mt_space_param_index(const mt_space *sp, const char *name);

/* Points worth measuring early, whatever the strategy: one representative
 * of each distinct kernel path the space holds besides the tiled one (the
 * CUDA space's GEMV path, a few of its hundreds of points at small batch
 * sizes, which a 10 % search may never draw), where valid for ctx. Writes
 * up to max configs to out, returns how many. */
int mt_space_seeds(const mt_space *sp, const mt_space_ctx *ctx, mt_config *out, int max);

/* Narrow the space to the points with the given values: spec is
 * "NAME=V[,NAME=V...]", names as the space spells them, each value one of
 * the parameter's. MT_EINVAL with why saying what is wrong (the names or
 * the values there are) otherwise, the space unchanged. */
int mt_space_fix(mt_space *sp, const char *spec, char *why, size_t why_len);

/* All valid points, in lexicographic order of the declared values. *out is
 * malloc'ed; returns the count or a negative status. */
int mt_space_enumerate(const mt_space *sp, const mt_space_ctx *ctx, mt_config **out);

/* The canonical JSON text of a config: {"name": value, ...} in declared
 * order with no spaces. Returns MT_OK or MT_EINVAL when out is too small. */
int mt_config_to_json(const mt_space *sp, const mt_config *c, char *out, size_t out_len);
/* Parse canonical or any JSON object holding every parameter. */
int mt_config_from_json(const mt_space *sp, const char *json, mt_config *out);

/* Grid strategy: choose up to budget points out of n (budget <= 0: all),
 * evenly strided so that a capped grid still spans the space. The default
 * config goes first. Writes indices into order[]; returns their count. */
int mt_grid_order(const mt_config *pts, int n, const mt_config *def, int nparams, int budget, int *order);

#endif
