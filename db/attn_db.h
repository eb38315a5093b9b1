/* Attention decode measurements: rows of the measurements table, one per
 * (device, problem, batch in M, context length in p2, config, kernel hash,
 * timing policy), committed as taken. */
#ifndef MT_ATTN_DB_H
#define MT_ATTN_DB_H

#include <stdint.h>

#include "db.h"

typedef struct mt_attn_row {
    int64_t sweep_id, device_id, problem_id, batch, ctx, config_id;
    int is_default;
    const char *status, *reason; /* ok, failed, aborted */
    double median_us, spread_us, rel_err, floor_us; /* NaN: NULL */
    int reps;
    const char *kernel_hash, *timing_policy;
    const char *params; /* filled by listings */
    int transient;      /* a failure that was not the variant's: measured again on the next run */
} mt_attn_row;

/* The kernel source hash current attention rows of a backend carry: the
 * CPU kernel's for "cpu", the GPU kernel's (CUDA, and HIP through the same
 * source) otherwise. */
const char *mt_attn_kernel_hash(const char *backend);

/* A row of the one measurements table (db.h): the batch in M, the context
 * length in p2. The sweep stores through mt_sweep_step, as every family. */
int mt_db_attn_insert(mt_db *db, const mt_attn_row *r);
#endif
