/*
 * The on-disk cache of compiled kernels, shared by the GPU vendors: NVRTC's
 * cubins (kernels/cuda) and hipRTC's code objects (kernels/hip) use one key
 * and file scheme, so a device's build and a compile without a device read
 * and write the same files.
 */
#include "kcache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moetune/moetune.h"

/* FNV-1a: the cache key only needs to spread; the full key text is stored
 * in the file and compared on load, so a collision is a miss, not a bug. */
static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static int cache_read(const char *path, const char *key, char **bin, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t klen = strlen(key);
    char *hdr = malloc(klen + 1);
    int ok = hdr && fread(hdr, 1, klen + 1, f) == klen + 1 && memcmp(hdr, key, klen) == 0 && hdr[klen] == '\n';
    free(hdr);
    if (!ok) {
        fclose(f);
        return -1;
    }
    long start = ftell(f);
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    fseek(f, start, SEEK_SET);
    *len = (size_t)(end - start);
    *bin = malloc(*len ? *len : 1);
    ok = *bin && fread(*bin, 1, *len, f) == *len;
    fclose(f);
    if (!ok) {
        free(*bin);
        *bin = NULL;
        return -1;
    }
    return 0;
}

static void cache_write(const char *dir, const char *path, const char *key, const char *bin, size_t len)
{
    char tmp[4300];
    mkdir(dir, 0755);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return; /* a cache that cannot be written is only slower */
    int ok = fwrite(key, 1, strlen(key), f) == strlen(key) && fputc('\n', f) != EOF && fwrite(bin, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (ok) rename(tmp, path);
    else unlink(tmp);
}

/* The cache key and file of a build: the key names the kind ("cubin",
 * "hsaco"), the hash of the source and its headers, the target, the
 * compiler and its version, and the options; the file is DIR/<hash of the
 * key>.<kind> and starts with the key, so a collision reads as a miss. */
static int kcache_key(const char *kind, const mt_cuda_source *src, const char *arch, const char *compiler,
                      const char *const *opts, int nopts, const char *cache_dir, char *key, size_t klen, char *path,
                      size_t plen)
{
    size_t o = 0;
    /* the key covers the source and every header it includes */
    uint64_t h = fnv(0xcbf29ce484222325ull, src->text, strlen(src->text));
    for (int i = 0; i < src->nheaders; i++) h = fnv(h, src->headers[i], strlen(src->headers[i]));
    o += (size_t)snprintf(key + o, klen - o, "moetune-%s/1 src=%016llx arch=%s %s", kind, (unsigned long long)h, arch,
                          compiler);
    for (int i = 0; i < nopts && o < klen; i++) o += (size_t)snprintf(key + o, klen - o, " %s", opts[i]);
    if (o >= klen) return MT_EINVAL;
    snprintf(path, plen, "%s/%016llx.%s", cache_dir ? cache_dir : ".",
             (unsigned long long)fnv(0xcbf29ce484222325ull, key, strlen(key)), kind);
    return MT_OK;
}

/* The cached binary of a build, else compiled and cached: what a device's
 * build (mt_cuda_build) and a fill without a device (mt_kcache_fill) share,
 * so both read and write the same files. *bin is the caller's to free;
 * path (MT_KCACHE_PATH bytes) receives the cache file's name. */
int mt_kcache_get(const char *kind, const mt_cuda_source *src, const char *arch, const char *compiler,
                  mt_compile_fn compile, const char *const *opts, int nopts, const char *cache_dir, char **bin,
                  size_t *len, int *hit, char *path, char **log, char *err, size_t n)
{
    char key[4096];
    int rc;
    *hit = 0;
    *bin = NULL;
    *len = 0;
    if (log) *log = NULL;
    if (kcache_key(kind, src, arch, compiler, opts, nopts, cache_dir, key, sizeof key, path, MT_KCACHE_PATH) != MT_OK) {
        snprintf(err, n, "the compile options are too long for a cache key");
        return MT_EINVAL;
    }
    if (cache_dir && cache_read(path, key, bin, len) == 0) {
        *hit = 1;
        return MT_OK;
    }
    if ((rc = compile(src, arch, opts, nopts, bin, len, log, err, n)) != MT_OK) return rc;
    if (cache_dir) cache_write(cache_dir, path, key, *bin, *len);
    return MT_OK;
}

int mt_kcache_fill(const char *kind, const mt_cuda_source *src, const char *arch, const char *compiler,
                   mt_compile_fn compile, const char *const *opts, int nopts, const char *cache_dir, int *hit, char **log,
                   char *err, size_t n)
{
    char path[MT_KCACHE_PATH], *bin = NULL;
    size_t len = 0;
    int rc = mt_kcache_get(kind, src, arch, compiler, compile, opts, nopts, cache_dir, &bin, &len, hit, path, log, err, n);
    free(bin);
    if (rc != MT_OK || *hit) return rc;
    if (access(path, R_OK) != 0) {
        snprintf(err, n, "cannot write the kernel cache %s: %s", path, strerror(errno));
        return MT_EIO;
    }
    return MT_OK;
}
