/* A bucket's manifest through pull: input is the manifest of device DEV in
 * a file:// bucket that also holds one real config file of DEV; pull into
 * a fresh cache must never write outside it, whatever the manifest says. */
#include "bucket.h"
#include "fuzz_util.h"
#include "publish.h"

static const char DEV[] = "NVIDIA_H100_80GB_HBM3";
static const char FILE_TEXT[] = "{\n    \"1\": {\n        \"BLOCK_SIZE_M\": 16\n    }\n}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char b[256], d[300], p[512], cache[300], url[300], err[1024];
    const char *dir = fuzz_dir();
    snprintf(b, sizeof b, "%s/bucket", dir);
    snprintf(d, sizeof d, "%s/%s", b, DEV);
    mkdir(b, 0755);
    mkdir(d, 0755);
    fuzz_write(d, "E=8,N=14336,device_name=NVIDIA_H100_80GB_HBM3.json", (const uint8_t *)FILE_TEXT,
               sizeof FILE_TEXT - 1, p, sizeof p);
    fuzz_write(d, "manifest.json", data, size, p, sizeof p);
    static int round;
    snprintf(cache, sizeof cache, "%s/cache%d", dir, round++ % 8);
    snprintf(url, sizeof url, "file://%s", b);
    mt_bucket *bk;
    if (mt_bucket_open(&bk, url, NULL, err, sizeof err) == MT_OK) {
        const char *devs[] = {DEV};
        mt_pull_stats st;
        mt_pull(bk, devs, 1, cache, NULL, NULL, &st, err, sizeof err);
        mt_pull_stats_free(&st);
        mt_bucket_close(bk);
    }
    /* nothing but the cache may have been written beside the bucket */
    struct stat sb;
    snprintf(p, sizeof p, "%s/evil.json", dir);
    if (stat(p, &sb) == 0) abort();
    return 0;
}
