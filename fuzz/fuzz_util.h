/* Shared by the libFuzzer harnesses: one scratch folder per process, and a
 * file written whole into it. */
#ifndef MT_FUZZ_UTIL_H
#define MT_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moetune/moetune.h"

static inline const char *fuzz_dir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/mt_fuzz.XXXXXX");
        if (!mkdtemp(dir)) abort(); /* the harness cannot run at all */
        mt_log_set(NULL, NULL, 0);  /* the library is silent: the fuzzer's output stays readable */
    }
    return dir;
}

/* dir/name holding data[0..n); the path into out */
static inline void fuzz_write(const char *dir, const char *name, const uint8_t *data, size_t n, char *out, size_t out_n)
{
    snprintf(out, out_n, "%s/%s", dir, name);
    FILE *f = fopen(out, "wb");
    if (!f) return;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

/* Split "first line\nrest": the line into name (NUL-terminated, '/' and
 * control bytes refused: "" then), the rest's start and size returned. */
static inline const uint8_t *fuzz_split(const uint8_t *d, size_t n, char *name, size_t name_n, size_t *rest_n)
{
    size_t i = 0;
    while (i < n && d[i] != '\n') i++;
    size_t l = i < name_n - 1 ? i : name_n - 1;
    memcpy(name, d, l);
    name[l] = 0;
    for (size_t k = 0; k < l; k++)
        if (name[k] == '/' || (unsigned char)name[k] < 0x20) name[0] = 0;
    if (!strcmp(name, ".") || !strcmp(name, "..")) name[0] = 0;
    *rest_n = i < n ? n - i - 1 : 0;
    return i < n ? d + i + 1 : d + n;
}

#endif
