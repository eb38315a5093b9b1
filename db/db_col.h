/* Reading columns of a database that may come from elsewhere. */
#ifndef MT_DB_COL_H
#define MT_DB_COL_H

#include <sqlite3.h>

/* A text column, "" for NULL: a damaged or hostile database may hold NULL
 * where moetune always writes text, and the readers then refuse the value
 * as malformed instead of following a NULL pointer. */
static inline const char *mt_col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

#endif
