/* A growable byte buffer for building files before they are written in one
 * atomic step. */
#ifndef MT_BUF_H
#define MT_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct mt_buf {
    char *data;
    size_t len, cap;
    int oom; /* sticky: set when an append failed */
} mt_buf;

void mt_buf_put(mt_buf *b, const char *s, size_t n);
void mt_buf_puts(mt_buf *b, const char *s);
void mt_buf_printf(mt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mt_buf_free(mt_buf *b);

/* Write data to path through a temporary file in the same folder, fsync,
 * then rename over path: a crash or a full disk leaves either the old file
 * or the new one, never half of one. err gets a message on failure. */
int mt_write_file_atomic(const char *path, const char *data, size_t len, char *err, size_t err_len);
/* Write a file that must not exist yet (links at path are not followed),
 * fsync'ed when sync; on failure nothing is left at path. */
int mt_write_file_new(const char *path, const char *data, size_t len, int sync, char *err, size_t err_len);

/* Read a whole file; *out is malloc'ed and NUL-terminated. Regular files of
 * at most MT_READ_FILE_MAX bytes only: anything else is refused with
 * MT_EINVAL, never waited on. */
#define MT_READ_FILE_MAX (256u << 20)
int mt_read_file(const char *path, char **out, size_t *len, char *err, size_t err_len);
/* A folder's path without its trailing '/' ("/" stays): files under it are
 * named dir/name, never dir//name. */
void mt_path_trim(char *path);
/* The same with a bound of max bytes. */
int mt_read_file_max(const char *path, size_t max, char **out, size_t *len, char *err, size_t err_len);

#endif
