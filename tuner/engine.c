#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moetune/moetune.h"

#ifndef MT_ENGINE_WORKER
#define MT_ENGINE_WORKER "/usr/local/share/moetune/python/moetune-engine-worker"
#endif
#ifndef MT_SOURCE_ENGINE_WORKER
#define MT_SOURCE_ENGINE_WORKER ""
#endif

int mt_engine_known(const char *name)
{
    return name && (!strcmp(name, "vllm") || !strcmp(name, "sglang"));
}

int mt_engine_worker_argv(const char *engine, const char *device, const char *argv[8], char *buf, size_t n, char *err,
                          size_t el)
{
    const char *py = getenv("MOETUNE_PYTHON"), *script = getenv("MOETUNE_ENGINE_WORKER");
    if (!py || !*py) py = "python3";
    if (script && *script) {
        if (access(script, R_OK) != 0)
            return snprintf(err, el, "MOETUNE_ENGINE_WORKER='%s' cannot be read", script), MT_ENOTFOUND;
    } else if (access(MT_ENGINE_WORKER, R_OK) == 0) {
        script = MT_ENGINE_WORKER;
    } else if (*MT_SOURCE_ENGINE_WORKER && access(MT_SOURCE_ENGINE_WORKER, R_OK) == 0) {
        /* a build tree that was never installed */
        script = MT_SOURCE_ENGINE_WORKER;
    } else {
        return snprintf(err, el,
                        "the engine worker is not installed (looked for %s%s%s): install moetune, or set "
                        "MOETUNE_ENGINE_WORKER to python/moetune-engine-worker of its source",
                        MT_ENGINE_WORKER, *MT_SOURCE_ENGINE_WORKER ? " and " : "", MT_SOURCE_ENGINE_WORKER),
               MT_ENOTFOUND;
    }
    int w = snprintf(buf, n, "%s%c%s%c%s%c%s", py, 0, script, 0, engine, 0, device);
    if (w < 0 || (size_t)w >= n) return snprintf(err, el, "the engine worker's command is too long"), MT_EINVAL;
    const char *p = buf;
    argv[0] = p;
    p += strlen(p) + 1;
    argv[1] = p;
    p += strlen(p) + 1;
    argv[2] = "--engine";
    argv[3] = p;
    p += strlen(p) + 1;
    argv[4] = "--device";
    argv[5] = p;
    argv[6] = NULL;
    return MT_OK;
}
