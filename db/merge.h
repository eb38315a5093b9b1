/* Merge another moetune database into this one (both at this moetune's
 * schema version: open the source with mt_db_open first to migrate it). */
#ifndef MT_MERGE_H
#define MT_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* *added: measurements copied; *present: the source's measurements this
 * database already held (kept as they are). */
int mt_db_merge(mt_db *db, const char *src_path, int64_t *added, int64_t *present, char *err, size_t n);

#endif
