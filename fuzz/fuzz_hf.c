/* The Hugging Face config.json reader and the sharding that follows it. */
#include "fuzz_util.h"
#include "problem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[512];
    fuzz_write(fuzz_dir(), "config.json", data, size, path, sizeof path);
    mt_model_shape m;
    if (mt_model_config_read(path, &m, err, sizeof err) == MT_OK) {
        int64_t E, N;
        for (int tp = 1; tp <= 8; tp *= 2) mt_shape_shard(&m, tp, 1, &E, &N, err, sizeof err);
        mt_shape_shard(&m, 1, 8, &E, &N, err, sizeof err);
    }
    return 0;
}
