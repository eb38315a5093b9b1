/* Attention decode measurements (attn_db.h). */
#include "attn_db.h"
#include "family.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "moetune/moetune.h"

const char *mt_attn_kernel_hash(const char *backend)
{
    /* the family owns its kernels' hashes: the GPU one for any GPU backend */
    return mt_family_attn_decode.kernel_hash(backend && strcmp(backend, "cpu") ? "cuda" : "cpu");
}

/* An attention row is a measurement of the one table: the batch in M, the
 * context length in p2, through the statements every family uses. */
int mt_db_attn_insert(mt_db *db, const mt_attn_row *r)
{
    mt_measurement m = {.sweep_id = r->sweep_id, .device_id = r->device_id, .problem_id = r->problem_id,
                        .config_id = r->config_id, .M = r->batch, .p2 = r->ctx, .is_default = r->is_default,
                        .status = r->status, .reason = r->reason, .median_us = r->median_us,
                        .spread_us = r->spread_us, .rel_err = r->rel_err, .tolerance = NAN, .floor_us = r->floor_us,
                        .efficiency = NAN, .reps = r->reps, .kernel_hash = r->kernel_hash,
                        .timing_policy = r->timing_policy, .transient = r->transient};
    return mt_db_measurement_insert(db, &m);
}
