/* A device's description as JSON (db.h): one spelling for the worker's
 * hello, `devices --json` and the moetune format; and back. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "db.h"

void mt_device_info_to_json(cJSON *o, const mt_device_info *d)
{
    cJSON_AddStringToObject(o, "backend", d->backend);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "raw_name", d->raw_name);
    cJSON_AddStringToObject(o, "arch", d->arch);
    cJSON_AddNumberToObject(o, "cores", d->cores);
    cJSON_AddNumberToObject(o, "memory_bytes", (double)d->memory_bytes);
    cJSON_AddStringToObject(o, "driver", d->driver);
    cJSON_AddStringToObject(o, "toolkit", d->toolkit);
    if (strcmp(d->backend, "cpu") != 0) {
        cJSON_AddNumberToObject(o, "l2_bytes", (double)d->l2_bytes);
        cJSON_AddNumberToObject(o, "smem_per_block", d->smem_per_block);
    }
}

static void get_str(char *dst, size_t n, const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static double get_num(const cJSON *o, const char *k, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

void mt_device_info_from_json(const cJSON *o, mt_device_info *d)
{
    memset(d, 0, sizeof *d);
    get_str(d->backend, sizeof d->backend, o, "backend");
    get_str(d->name, sizeof d->name, o, "name");
    get_str(d->raw_name, sizeof d->raw_name, o, "raw_name");
    get_str(d->arch, sizeof d->arch, o, "arch");
    get_str(d->driver, sizeof d->driver, o, "driver");
    get_str(d->toolkit, sizeof d->toolkit, o, "toolkit");
    d->cores = (int)get_num(o, "cores", 1);
    d->memory_bytes = (int64_t)get_num(o, "memory_bytes", 0);
    d->l2_bytes = (int64_t)get_num(o, "l2_bytes", 0);
    d->smem_per_block = (int)get_num(o, "smem_per_block", 0);
}
