/* The results table that sweep prints at its end and show prints on demand. */
#ifndef MT_REPORT_H
#define MT_REPORT_H

#include <stdio.h>

#include "db.h"

/* Print the best config per M of (device, problem) as a table, or as one
 * JSON object when json is set. Returns MT_OK or a status. */
int mt_report_pair(FILE *f, mt_db *db, const mt_device_info *d, const mt_problem *p, int json);

#endif
