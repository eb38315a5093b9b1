/* The results table that sweep prints at its end and show prints on demand. */
#ifndef MT_REPORT_H
#define MT_REPORT_H

#include <stdio.h>

#include "db.h"

/* Print the best config per point of (device, problem), any family, as a
 * table, or as one JSON object when json is set: the rows of the kernel
 * source the backend runs now, the finalists deciding where they ran.
 * Returns MT_OK or a status (MT_ECORRUPT: a key this build cannot read). */
int mt_report_pair(FILE *f, mt_db *db, const mt_device_info *d, const mt_problem *p, int json);

#endif
