/* Warm starts: what is known elsewhere becomes the first proposals. */
#ifndef MT_WARMSTART_H
#define MT_WARMSTART_H

#include "db.h"
#include "space.h"
#include "strategy.h"

/* Suggest to s (batch size M of problem on dev) the configs known for it
 * elsewhere in the database: vLLM's tuned configs imported for this device
 * name or a device of the same architecture (the key nearest M, as vLLM
 * picks it), and the best verified config of the same problem at the same
 * M on other devices of the same architecture. Only points of pts (valid
 * here) are suggested. Returns how many, or a negative status. */
int mt_warm_start(mt_db *db, const mt_device_info *dev, const mt_problem *prob, const mt_space *sp,
                  const mt_config *pts, int n, int64_t M, mt_search *s);

/* Suggest the winners of the nearest other shapes measured on this device
 * (the two nearest within a total log2 distance of 4 over E, N, K and
 * top-k; each one's fastest config at the batch size nearest M), measured
 * with the same kernel source. Returns how many, or a negative status. */
int mt_warm_start_shapes(mt_db *db, const mt_device_info *dev, const mt_problem *prob, const char *kernel_hash,
                         const mt_space *sp, const mt_config *pts, int n, int64_t M, mt_search *s);

#endif
