/* The runtime at load: input is "FILE NAME\nCONTENT" placed in a config
 * folder (vLLM, moetune-format or attention file names), then looked up
 * for the key the name gives and a few others; the content is also given
 * to mt_runtime_lookup as a key of every family. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[256], path[512], dir[128];
    size_t n;
    static int round;
    /* a fresh folder per input: the runtime caches what it read */
    snprintf(dir, sizeof dir, "%s/cfg%d", fuzz_dir(), round++ % 4);
    mkdir(dir, 0755);
    const uint8_t *body = fuzz_split(data, size, name, sizeof name, &n);
    if (!name[0]) snprintf(name, sizeof name, "E=8,N=14336,device_name=NVIDIA_H100_80GB_HBM3.json");
    fuzz_write(dir, name, body, n, path, sizeof path);
    mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
    o.config_dir = dir;
    o.tuned_dir = o.cache_dir = o.bundled_dir = "";
    o.device_name = "NVIDIA_H100_80GB_HBM3";
    o.backend = "cuda";
    mt_runtime *rt;
    if (mt_runtime_open(&rt, &o) == MT_OK) {
        mt_vllm_name vn;
        mt_attn_name an;
        mt_moe_config c;
        mt_attn_config a;
        char why[256];
        if (mt_vllm_name_parse(name, &vn, why, sizeof why) == MT_OK) {
            mt_moe_key k = {vn.E, vn.N, 0, 0, vn.dtype, vn.block_n, vn.block_k};
            mt_runtime_lookup_moe(rt, &k, 1, &c);
            mt_runtime_lookup_moe(rt, &k, 4096, &c);
        }
        mt_moe_key mk = {8, 14336, 4096, 2, NULL, 0, 0};
        mt_runtime_lookup_moe(rt, &mk, 64, &c);
        if (mt_attn_name_parse(name, &an, why, sizeof why) == MT_OK && an.num_kv_heads > 0 &&
            an.num_heads % an.num_kv_heads == 0) {
            mt_attn_key k = {an.num_heads, an.num_kv_heads, an.head_dim, an.page_size, an.dtype};
            mt_runtime_lookup_attention(rt, &k, 3, 1000, &a);
        }
        /* the content as a key of each family: the public lookup's parser */
        char key[512];
        size_t kn = n < sizeof key - 1 ? n : sizeof key - 1;
        memcpy(key, body, kn);
        key[kn] = 0;
        int64_t pt[2] = {3, 1000};
        mt_config_values v;
        for (int f = 0; mt_family_name(f); f++) mt_runtime_lookup(rt, mt_family_name(f), key, pt, &v);
        mt_runtime_close(rt);
    }
    unlink(path);
    return 0;
}
