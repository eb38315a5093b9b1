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

int mt_write_file_atomic(const char *path, const char *data, size_t len, char *err, size_t n)
{
    char tmp[4096];
    int fd;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, n, "path too long: '%s'", path);
        return MT_EINVAL;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, n, "cannot create '%s': %s", tmp, strerror(errno));
        return MT_EIO;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, n, "cannot write '%s': %s", tmp, w < 0 ? strerror(errno) : "short write");
            close(fd);
            unlink(tmp);
            return MT_EIO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(err, n, "cannot write '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        return MT_EIO;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, n, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        return MT_EIO;
    }
    return MT_OK;
}

int mt_read_file(const char *path, char **out, size_t *len, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    mt_buf b = {0};
    char chunk[65536];
    size_t r;
    *out = NULL;
    if (!f) {
        snprintf(err, n, "cannot open '%s': %s", path, strerror(errno));
        return errno == ENOENT ? MT_ENOTFOUND : MT_EIO;
    }
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) mt_buf_put(&b, chunk, r);
    int bad = ferror(f);
    fclose(f);
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
