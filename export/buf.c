#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moetune/moetune.h"

void mt_buf_put(mt_buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void mt_buf_puts(mt_buf *b, const char *s) { mt_buf_put(b, s, strlen(s)); }

void mt_buf_printf(mt_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        mt_buf_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    mt_buf_put(b, big, (size_t)n);
    free(big);
}

void mt_buf_free(mt_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void mt_path_trim(char *path)
{
    for (size_t l = strlen(path); l > 1 && path[l - 1] == '/'; l--) path[l - 1] = 0;
}

int mt_write_file_new(const char *path, const char *data, size_t len, int sync, char *err, size_t n)
{
    /* O_EXCL and O_NOFOLLOW: a link planted at path is never written through */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, n, "cannot create '%s': %s", path, strerror(errno));
        return MT_EIO;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, n, "cannot write '%s': %s", path, w < 0 ? strerror(errno) : "short write");
            close(fd);
            unlink(path);
            return MT_EIO;
        }
        off += (size_t)w;
    }
    /* both always run: the descriptor is closed whether fsync failed or not */
    int e = sync && fsync(fd) != 0 ? errno : 0;
    if (close(fd) != 0 && !e) e = errno;
    if (e) {
        snprintf(err, n, "cannot write '%s': %s", path, strerror(e));
        unlink(path);
        return MT_EIO;
    }
    return MT_OK;
}

int mt_write_file_atomic(const char *path, const char *data, size_t len, char *err, size_t n)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, n, "path too long: '%s'", path);
        return MT_EINVAL;
    }
    unlink(tmp); /* a leftover of a killed run with this pid */
    int rc = mt_write_file_new(tmp, data, len, 1, err, n);
    if (rc != MT_OK) return rc;
    if (rename(tmp, path) != 0) {
        snprintf(err, n, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        return MT_EIO;
    }
    return MT_OK;
}

int mt_read_file(const char *path, char **out, size_t *len, char *err, size_t n)
{
    return mt_read_file_max(path, MT_READ_FILE_MAX, out, len, err, n);
}

int mt_read_file_max(const char *path, size_t max, char **out, size_t *len, char *err, size_t n)
{
    struct stat st;
    *out = NULL;
    /* a FIFO, a device, or a link to /dev/zero must not block or read
     * without end: regular files only, checked on what was opened */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(err, n, "cannot open '%s': %s", path, strerror(e));
        return e == ENOENT ? MT_ENOTFOUND : MT_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, n, "cannot read '%s': %s", path, S_ISDIR(st.st_mode) ? "it is a folder" : "not a regular file");
        close(fd);
        return MT_EINVAL;
    }
    if ((unsigned long long)st.st_size > max) {
        snprintf(err, n, "cannot read '%s': %lld bytes, more than the %zu it may be", path, (long long)st.st_size, max);
        close(fd);
        return MT_EINVAL;
    }
    mt_buf b = {0};
    char chunk[65536];
    ssize_t r;
    int bad = 0;
    while ((r = read(fd, chunk, sizeof chunk)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            bad = 1;
            break;
        }
        mt_buf_put(&b, chunk, (size_t)r);
        if (b.len > max) { /* it grew while read */
            bad = 1;
            break;
        }
    }
    close(fd);
    if (bad || b.oom) {
        snprintf(err, n, "cannot read '%s': %s", path, b.oom ? "out of memory" : "read error");
        mt_buf_free(&b);
        return bad ? MT_EIO : MT_ENOMEM;
    }
    if (!b.data) mt_buf_put(&b, "", 0);
    if (!b.data) return MT_ENOMEM;
    *out = b.data;
    if (len) *len = b.len;
    return MT_OK;
}
