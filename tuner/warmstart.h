/* Warm starts: what is known elsewhere becomes the first proposals. */
#ifndef MT_WARMSTART_H
#define MT_WARMSTART_H

#include "db.h"
#include "space.h"
#include "strategy.h"

/* Suggest to s (one point of problem on dev: M, or batch and context) the
 * configs known for it elsewhere in the database: the configs imported
 * from vLLM's files for this device name or a device of the same
 * architecture (the key nearest M, as vLLM picks it), and the best verified
 * config of the same problem at the same point on other devices of the same
 * architecture. Any family. Only points of pts (valid here) are suggested.
 * Returns how many, or a negative status. */
int mt_warm_start(mt_db *db, const mt_device_info *dev, const mt_problem *prob, const mt_space *sp,
                  const mt_config *pts, int n, const int64_t point[2], mt_search *s);
/* Suggest to s the entry of a config file in vLLM's format (path: the
 * engine's config in use for this problem) nearest the point's M, as vLLM
 * picks it (ties to the first in the file's order), where it is a point of
 * pts. 1 when suggested, 0 when not (no such entry, not a valid point
 * here), a negative status when the file cannot be read (why says why). */
int mt_warm_start_file(const char *path, const mt_space *sp, const mt_config *pts, int n, int64_t M, mt_search *s,
                       char *why, size_t wn);
/* Suggest the winners of the nearest other problems of the family and
 * dtype measured on this device (the two nearest within a total log2
 * distance of 4 over the key's fields; each one's fastest config at the
 * point nearest this one), measured with the same kernel source. Returns
 * how many, or a negative status. */
int mt_warm_start_shapes(mt_db *db, const mt_device_info *dev, const mt_problem *prob, const char *kernel_hash,
                         const mt_space *sp, const mt_config *pts, int n, const int64_t point[2], mt_search *s);
#endif
