/* MOETUNE_DEBUG_CUDA (switches.h). */
#include "switches.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "moetune/moetune.h"

int mt_cuda_switches_parse(const char *text, mt_cuda_switches *s, char *why, size_t n)
{
    static const struct { const char *word; size_t off; } offs[] = {
        {"no-wgmma", offsetof(mt_cuda_switches, wgmma)},
        {"no-splitk", offsetof(mt_cuda_switches, splitk)},
        {"no-pdl", offsetof(mt_cuda_switches, pdl)},
        {"no-gemv-prefetch", offsetof(mt_cuda_switches, gemv_prefetch)},
    };
    int rc = MT_OK;
    *s = (mt_cuda_switches){1, 1, 1, 1, 4096};
    if (why && n) why[0] = 0;
    for (const char *p = text ? text : ""; *p;) {
        size_t len = strcspn(p, ",");
        char w[64];
        snprintf(w, sizeof w, "%.*s", (int)(len < sizeof w - 1 ? len : sizeof w - 1), p);
        int known = !w[0];
        for (size_t i = 0; i < sizeof offs / sizeof offs[0] && !known; i++)
            if (!strcmp(w, offs[i].word)) *(int *)((char *)s + offs[i].off) = 0, known = 1;
        if (!known && !strncmp(w, "align-one=", 10)) {
            char *end;
            long v = strtol(w + 10, &end, 10);
            if (!*end && end != w + 10 && v >= 0 && v <= 1 << 30) s->align_one = (int)v, known = 1;
        }
        if (!known && rc == MT_OK) {
            rc = MT_EPARSE;
            if (why) snprintf(why, n, "'%s' is not a switch (no-wgmma, no-splitk, no-pdl, no-gemv-prefetch, align-one=N)", w);
        }
        p += len;
        if (*p == ',') p++;
    }
    return rc;
}

void mt_cuda_switches_get(mt_cuda_switches *s)
{
    char why[160];
    if (mt_cuda_switches_parse(getenv("MOETUNE_DEBUG_CUDA"), s, why, sizeof why) != MT_OK)
        mt_log(MT_LOG_WARN, "MOETUNE_DEBUG_CUDA: %s; ignored", why);
}
