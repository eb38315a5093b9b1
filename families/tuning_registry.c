/* The tuning parts of the registry's families (family_tuning.h): one line
 * per family, in the registry's order. */
#include <string.h>

#include "family_tuning.h"

const mt_family_tuning *const mt_family_tunings[] = {
    &mt_tuning_fused_moe,
    &mt_tuning_attn_decode,
};

const mt_family_tuning *mt_family_tuning_of(const mt_family *f)
{
    for (size_t i = 0; f && i < sizeof mt_family_tunings / sizeof mt_family_tunings[0]; i++)
        if (mt_family_tunings[i]->family == f) return mt_family_tunings[i];
    return NULL;
}

int mt_family_takes_dtype(const mt_family_tuning *t, const char *backend, const char *dtype)
{
    const char *list = t && backend && dtype && *dtype ? t->dtypes(backend) : "";
    size_t n = strlen(dtype ? dtype : "");
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && !strncmp(p, dtype, n)) return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}
