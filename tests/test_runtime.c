/* The runtime: lookup equivalent to vLLM's rule on the whole shared corpus,
 * the order of sources and fallbacks, device names, staleness, malformed
 * files, and the CPU kernel run with a looked-up config. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn.h"
#include "attn_launch.h"
#include "family_backend.h"
#include "moe_launch.h"
#include "check.h"
#include "cuda_rt.h"
#include "moe_cpu.h"
#include "moetune/moetune.h"
#include "rt_internal.h"

static char tmp[256];
static char logbuf[16384];
static int nwarn;

static void capture(int level, const char *msg, void *user)
{
    (void)user;
    if (level <= MT_LOG_WARN) nwarn++;
    strncat(logbuf, msg, sizeof logbuf - strlen(logbuf) - 2);
    strcat(logbuf, "\n");
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[1024];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static mt_runtime *open_rt(const char *cfg, const char *cache, const char *bundled, const char *device,
                           const char *backend, const char *const *aliases)
{
    mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
    mt_runtime *rt = NULL;
    o.config_dir = cfg ? cfg : "/nonexistent";
    o.cache_dir = cache ? cache : "/nonexistent";
    o.bundled_dir = bundled ? bundled : "/nonexistent";
    o.tuned_dir = "/nonexistent";
    o.device_name = device;
    o.backend = backend;
    o.aliases = aliases;
    o.log = capture;
    o.log_level = MT_LOG_DEBUG;
    CHECK(mt_runtime_open(&rt, &o) == MT_OK, "open");
    return rt;
}

/* vLLM's rule, written here from VLLM-FORMAT.md: the key nearest to M by
 * absolute difference, ties to the first key in the file's order. */
static int64_t vllm_rule(const int64_t *keys, int n, int64_t M)
{
    int64_t best = keys[0];
    for (int i = 1; i < n; i++)
        if (llabs(keys[i] - M) < llabs(best - M)) best = keys[i];
    return best;
}

static void test_corpus_equivalence(const char *corpus)
{
    DIR *d = opendir(corpus);
    struct dirent *de;
    int files = 0;
    CHECK(d != NULL, "no corpus at %s", corpus);
    while (d && (de = readdir(d))) {
        mt_vllm_name nm;
        char why[256], path[1400];
        if (mt_vllm_name_parse(de->d_name, &nm, why, sizeof why) != MT_OK) continue; /* flydsl */
        snprintf(path, sizeof path, "%s/%s", corpus, de->d_name);
        FILE *f = fopen(path, "rb");
        char *text = calloc(1, 1 << 20);
        size_t len = fread(text, 1, (1 << 20) - 1, f);
        fclose(f);
        cJSON *root = cJSON_ParseWithLength(text, len);
        free(text);
        int64_t keys[128];
        int n = 0;
        for (cJSON *e = root ? root->child : NULL; e && n < 128; e = e->next)
            if (strcmp(e->string, "triton_version")) keys[n++] = strtoll(e->string, NULL, 10);
        cJSON_Delete(root);
        mt_runtime *rt = open_rt(corpus, NULL, NULL, nm.device, !strncmp(nm.device, "AMD", 3) ? "hip" : "cuda", NULL);
        mt_moe_key key = {nm.E, nm.N, 0, 0, nm.dtype, nm.block_n, nm.block_k};
        int bad = 0;
        for (int64_t M = 1; M <= 8192; M++) {
            mt_moe_config c;
            if (mt_runtime_lookup_moe(rt, &key, M, &c) != MT_OK || c.source != MT_SOURCE_CONFIG_DIR ||
                c.m_key != vllm_rule(keys, n, M)) {
                if (!bad++)
                    fprintf(stderr, "%s M=%lld: key %lld source %d, vLLM's rule %lld\n", de->d_name, (long long)M,
                            (long long)c.m_key, c.source, (long long)vllm_rule(keys, n, M));
            }
        }
        CHECK(bad == 0, "%s: %d batch sizes disagree with vLLM's rule", de->d_name, bad);
        mt_runtime_close(rt);
        files++;
    }
    if (d) closedir(d);
    CHECK(files >= 40, "only %d corpus files checked", files);
}

static const char *cfg_file(int bm)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\n    \"1\": {\"BLOCK_SIZE_M\": %d, \"BLOCK_SIZE_N\": 64, \"BLOCK_SIZE_K\": 64, \"GROUP_SIZE_M\": 1, "
             "\"num_warps\": 4, \"num_stages\": 3},\n    \"64\": {\"BLOCK_SIZE_M\": %d, \"BLOCK_SIZE_N\": 128, "
             "\"BLOCK_SIZE_K\": 64, \"GROUP_SIZE_M\": 1, \"num_warps\": 8, \"num_stages\": 3}\n}\n",
             bm, bm * 2);
    return buf;
}

#define H100 "E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json"

static int lookup_bm(mt_runtime *rt, int *source)
{
    mt_moe_key key = {8, 7168, 0, 0, NULL, 0, 0};
    mt_moe_config c;
    CHECK(mt_runtime_lookup_moe(rt, &key, 1, &c) == MT_OK, "lookup");
    *source = c.source;
    return c.block_size_m;
}

static void test_source_order(void)
{
    char a[300], b[300], c[300], cdev[400];
    int src;
    snprintf(a, sizeof a, "%s/order_cfg", tmp);
    snprintf(b, sizeof b, "%s/order_cache", tmp);
    snprintf(c, sizeof c, "%s/order_bundled", tmp);
    write_text(a, H100, cfg_file(16));
    write_text(b, H100, cfg_file(32));
    write_text(c, H100, cfg_file(64));
    mt_runtime *rt = open_rt(a, b, c, "NVIDIA_H100_80GB_HBM3", "cuda", NULL);
    CHECK(lookup_bm(rt, &src) == 16 && src == MT_SOURCE_CONFIG_DIR, "the config dir wins");
    mt_runtime_close(rt);
    rt = open_rt(NULL, b, c, "NVIDIA_H100_80GB_HBM3", "cuda", NULL);
    CHECK(lookup_bm(rt, &src) == 32 && src == MT_SOURCE_CACHE, "then the cache");
    mt_runtime_close(rt);
    rt = open_rt(NULL, NULL, c, "NVIDIA_H100_80GB_HBM3", "cuda", NULL);
    CHECK(lookup_bm(rt, &src) == 64 && src == MT_SOURCE_BUNDLED, "then the bundled configs");
    mt_runtime_close(rt);
    /* the pulled cache keeps a folder per device */
    snprintf(cdev, sizeof cdev, "%s/order_cache2", tmp);
    mkdir(cdev, 0755);
    snprintf(cdev, sizeof cdev, "%s/order_cache2/NVIDIA_H100_80GB_HBM3", tmp);
    write_text(cdev, H100, cfg_file(128));
    snprintf(cdev, sizeof cdev, "%s/order_cache2", tmp);
    rt = open_rt(NULL, cdev, c, "NVIDIA_H100_80GB_HBM3", "cuda", NULL);
    CHECK(lookup_bm(rt, &src) == 128 && src == MT_SOURCE_CACHE, "the cache's device folder");
    mt_runtime_close(rt);
    /* fallbacks: same architecture (reported), then the default (reported) */
    logbuf[0] = 0;
    nwarn = 0;
    rt = open_rt(NULL, NULL, c, "NVIDIA_H200", "cuda", NULL);
    CHECK(lookup_bm(rt, &src) == 64 && src == MT_SOURCE_SAME_ARCH, "an H200 falls back to the H100's file");
    CHECK(lookup_bm(rt, &src) == 64 && nwarn == 1, "the fallback is reported once, not per lookup (%d)", nwarn);
    CHECK(strstr(logbuf, "another device of architecture sm_90") != NULL, "the report names the reason: %s", logbuf);
    mt_runtime_close(rt);
    logbuf[0] = 0;
    rt = open_rt(NULL, NULL, c, "NVIDIA_A100-SXM4-80GB", "cuda", NULL);
    CHECK(lookup_bm(rt, &src) == 16 && src == MT_SOURCE_DEFAULT, "an A100 never reads a Hopper file: vLLM's default");
    CHECK(strstr(logbuf, "default heuristic") != NULL, "the default is reported: %s", logbuf);
    mt_moe_key key = {8, 7168, 0, 0, NULL, 0, 0};
    mt_moe_config d;
    mt_runtime_lookup_moe(rt, &key, 2048, &d);
    CHECK(d.block_size_m == 128 && d.num_warps == 8 && d.num_stages == 3 && d.group_size_m == 16,
          "vLLM's default at M=2048, E=8: %d/%d/%d/%d", d.block_size_m, d.num_warps, d.num_stages, d.group_size_m);
    mt_runtime_close(rt);
}

/* what `moetune sweep` wrote is searched after the config dir and before
 * the pulled cache; a folder that is not one is reported and skipped */
static void test_tuned_dir(void)
{
    char a[300], t[300], b[300], notdir[300];
    int src;
    snprintf(a, sizeof a, "%s/tuned_cfg", tmp);
    snprintf(t, sizeof t, "%s/tuned_tuned", tmp);
    snprintf(b, sizeof b, "%s/tuned_cache", tmp);
    write_text(a, H100, cfg_file(16));
    write_text(t, H100, cfg_file(32));
    write_text(b, H100, cfg_file(64));
    mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
    mt_runtime *rt = NULL;
    o.tuned_dir = t;
    o.cache_dir = b;
    o.bundled_dir = "/nonexistent";
    o.device_name = "NVIDIA_H100_80GB_HBM3";
    o.backend = "cuda";
    o.config_dir = a;
    CHECK(mt_runtime_open(&rt, &o) == MT_OK, "open");
    CHECK(lookup_bm(rt, &src) == 16 && src == MT_SOURCE_CONFIG_DIR, "the config dir before the tuned configs");
    mt_runtime_close(rt);
    o.config_dir = "/nonexistent";
    CHECK(mt_runtime_open(&rt, &o) == MT_OK, "open");
    CHECK(lookup_bm(rt, &src) == 32 && src == MT_SOURCE_TUNED, "then the tuned configs, before the cache (%d)", src);
    CHECK(!strcmp(mt_config_source_str(MT_SOURCE_TUNED), "tuned"), "the source's name");
    mt_runtime_close(rt);
    /* the default tuned folder is where the sweep writes: $XDG_DATA_HOME/moetune/configs */
    char xdg[300], xdgc[400];
    snprintf(xdg, sizeof xdg, "%s/xdgdata", tmp);
    snprintf(xdgc, sizeof xdgc, "%s/moetune", xdg);
    mkdir(xdg, 0755);
    mkdir(xdgc, 0755);
    snprintf(xdgc, sizeof xdgc, "%s/moetune/configs", xdg);
    write_text(xdgc, H100, cfg_file(128));
    setenv("XDG_DATA_HOME", xdg, 1);
    o.tuned_dir = NULL;
    o.cache_dir = "/nonexistent";
    CHECK(mt_runtime_open(&rt, &o) == MT_OK, "open");
    CHECK(lookup_bm(rt, &src) == 128 && src == MT_SOURCE_TUNED, "$XDG_DATA_HOME/moetune/configs by default (%d)", src);
    mt_runtime_close(rt);
    unsetenv("XDG_DATA_HOME");
    /* a config dir that is a file: said once, the other sources still serve */
    snprintf(notdir, sizeof notdir, "%s/plain_file", tmp);
    write_text(tmp, "plain_file", "x");
    logbuf[0] = 0;
    rt = open_rt(notdir, b, NULL, "NVIDIA_H100_80GB_HBM3", "cuda", NULL);
    CHECK(strstr(logbuf, "is not a folder") && strstr(logbuf, "plain_file"), "an unusable folder is reported: %s", logbuf);
    CHECK(lookup_bm(rt, &src) == 64 && src == MT_SOURCE_CACHE, "and the next source serves");
    mt_runtime_close(rt);
}

/* special files where a config should be: refused at once, never read */
static void test_special_files(void)
{
    char d[300], p[700], c[300];
    snprintf(d, sizeof d, "%s/fifo_cfg", tmp);
    snprintf(c, sizeof c, "%s/fifo_cache", tmp);
    mkdir(d, 0755);
    write_text(c, "E=9,N=8,device_name=NVIDIA_H100.json", cfg_file(16));
    snprintf(p, sizeof p, "%s/E=9,N=8,device_name=NVIDIA_H100.json", d);
    CHECK(mkfifo(p, 0644) == 0, "mkfifo");
    const char *an = "attn_decode,H=8,H_kv=2,D=64,page=16,device_name=NVIDIA_H100,dtype=bf16.json";
    snprintf(p, sizeof p, "%s/%s", d, an);
    CHECK(mkfifo(p, 0644) == 0, "mkfifo");
    /* a link to /dev/zero: endless if it were read */
    snprintf(p, sizeof p, "%s/E=10,N=8,device_name=NVIDIA_H100.json", d);
    CHECK(symlink("/dev/zero", p) == 0, "symlink");
    logbuf[0] = 0;
    mt_runtime *rt = open_rt(d, c, NULL, "NVIDIA_H100", "cuda", NULL);
    mt_moe_key key = {9, 8, 0, 0, NULL, 0, 0};
    mt_moe_config m;
    CHECK(mt_runtime_lookup_moe(rt, &key, 1, &m) == MT_OK && m.source == MT_SOURCE_CACHE, "a FIFO is passed over");
    key.E = 10;
    CHECK(mt_runtime_lookup_moe(rt, &key, 1, &m) == MT_OK && m.source == MT_SOURCE_DEFAULT, "a link to /dev/zero too");
    mt_attn_key k = {8, 2, 64, 16, NULL};
    mt_attn_config ac;
    CHECK(mt_runtime_lookup_attention(rt, &k, 1, 100, &ac) == MT_OK && ac.source == MT_SOURCE_DEFAULT,
          "an attention FIFO is passed over");
    CHECK(strstr(logbuf, "not a regular file") != NULL, "and said: %s", logbuf);
    /* sizes far past any model are refused, never looped on */
    key.E = 8;
    CHECK(mt_runtime_lookup_moe(rt, &key, INT64_C(1) << 62, &m) == MT_EINVAL, "M = 2^62 is refused");
    mt_moe_key huge = {8, INT64_C(1) << 62, 0, 0, NULL, 0, 0};
    CHECK(mt_runtime_lookup_moe(rt, &huge, 1, &m) == MT_EINVAL, "N = 2^62 is refused");
    mt_runtime_close(rt);
    /* the CPU backend's default at the largest sizes taken: it returns */
    rt = open_rt(NULL, NULL, NULL, "CPU_TEST", "cpu", NULL);
    mt_moe_key big = {1 << 20, INT64_C(1) << 31, INT64_C(1) << 31, INT64_C(1) << 31, NULL, 0, 0};
    CHECK(mt_runtime_lookup_moe(rt, &big, INT64_C(1) << 40, &m) == MT_OK && m.block_m > 0 && m.block_k > 0,
          "the CPU default for the largest sizes");
    mt_runtime_close(rt);
}

static void test_rocm_names_and_aliases(void)
{
    char out[128], dir[300];
    int src;
    CHECK(mt_device_rocm_vllm_name(out, sizeof out, 0x74a1, "whatever") == MT_OK && !strcmp(out, "AMD_Instinct_MI300X"),
          "0x74a1: %s", out);
    CHECK(mt_device_rocm_vllm_name(out, sizeof out, 0x74b5, NULL) == MT_OK && !strcmp(out, "AMD_Instinct_MI300X"), "0x74b5");
    CHECK(mt_device_rocm_vllm_name(out, sizeof out, 0x74a2, NULL) == MT_OK && !strcmp(out, "AMD_Instinct_MI308X"), "0x74a2");
    CHECK(mt_device_rocm_vllm_name(out, sizeof out, 0x74a0, NULL) == MT_OK && !strcmp(out, "AMD_Instinct_MI300A"), "0x74a0");
    CHECK(mt_device_rocm_vllm_name(out, sizeof out, 0x74b9, NULL) == MT_OK && !strcmp(out, "AMD_Instinct_MI325X"), "0x74b9");
    CHECK(mt_device_rocm_vllm_name(out, sizeof out, 0x74bd, NULL) == MT_OK && !strcmp(out, "AMD_Instinct_MI300X_HF"), "0x74bd");
    CHECK(mt_device_rocm_vllm_name(out, sizeof out, 0x75a3, "AMD Instinct MI355X") == MT_OK &&
              !strcmp(out, "AMD_Instinct_MI355X"), "market name: %s", out);
    CHECK(mt_device_rocm_vllm_name(out, sizeof out, 0x1234, NULL) == MT_EINVAL, "no id, no name");
    CHECK(strcmp(mt_device_arch_of("AMD_Instinct_MI308X"), mt_device_arch_of("AMD_Instinct_MI300X")) != 0,
          "MI308X and MI300X differ");
    CHECK(mt_device_arch_of("AMD_Instinct_MI300X_OAM") == NULL, "_OAM names are alias-only");

    snprintf(dir, sizeof dir, "%s/amd", tmp);
    write_text(dir, "E=8,N=7168,device_name=AMD_Instinct_MI300X.json", cfg_file(32));
    write_text(dir, "E=8,N=7168,device_name=AMD_Instinct_MI300X_OAM.json", cfg_file(64));
    mt_moe_key key = {8, 7168, 0, 0, NULL, 0, 0};
    mt_moe_config c;
    mt_runtime *rt = open_rt(dir, NULL, NULL, "AMD_Instinct_MI308X", "hip", NULL);
    mt_runtime_lookup_moe(rt, &key, 1, &c);
    CHECK(c.source == MT_SOURCE_DEFAULT, "an MI308X never reads an MI300X file (source %d)", c.source);
    mt_runtime_close(rt);
    rt = open_rt(dir, NULL, NULL, "AMD_Instinct_MI325X", "hip", NULL);
    mt_runtime_lookup_moe(rt, &key, 1, &c);
    CHECK(c.source == MT_SOURCE_SAME_ARCH && c.block_size_m == 32, "an MI325X may read the MI300X file, reported");
    mt_runtime_close(rt);
    /* an MI300X without its own file reads an _OAM file only when asked */
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/amd_oam", tmp);
    write_text(dir2, "E=8,N=7168,device_name=AMD_Instinct_MI300X_OAM.json", cfg_file(64));
    rt = open_rt(dir2, NULL, NULL, "AMD_Instinct_MI300X", "hip", NULL);
    mt_runtime_lookup_moe(rt, &key, 1, &c);
    CHECK(c.source == MT_SOURCE_DEFAULT, "no _OAM file unless asked (source %d)", c.source);
    mt_runtime_close(rt);
    const char *alias[] = {"AMD_Instinct_MI300X_OAM", NULL};
    rt = open_rt(dir2, NULL, NULL, "AMD_Instinct_MI300X", "hip", alias);
    CHECK(lookup_bm(rt, &src) == 64 && src == MT_SOURCE_ALIAS, "the alias the user named");
    mt_runtime_close(rt);
}

static void test_malformed(void)
{
    char bad[300], good[300], p[600];
    snprintf(bad, sizeof bad, "%s/bad", tmp);
    snprintf(good, sizeof good, "%s/good", tmp);
    mkdir(bad, 0755);
    write_text(good, "E=1,N=8,device_name=NVIDIA_H100.json", cfg_file(16));
    write_text(good, "E=2,N=8,device_name=NVIDIA_H100.json", cfg_file(16));
    write_text(good, "E=3,N=8,device_name=NVIDIA_H100.json", cfg_file(16));
    write_text(good, "E=4,N=8,device_name=NVIDIA_H100.json", cfg_file(16));
    write_text(good, "E=5,N=8,device_name=NVIDIA_H100.json", cfg_file(16));
    write_text(good, "E=6,N=8,device_name=NVIDIA_H100.json", cfg_file(16));
    write_text(bad, "E=1,N=8,device_name=NVIDIA_H100.json", "{\n    \"1\": {\n        \"BLOCK_SIZE_M\": 16,\n");
    write_text(bad, "E=2,N=8,device_name=NVIDIA_H100.json", "{\"1\": {\"BLOCK_SIZE_M\": 16}, \"big\": {}}");
    write_text(bad, "E=3,N=8,device_name=NVIDIA_H100.json", "{\"1\": {\"BLOCK_SIZE_M\": -16}}");
    write_text(bad, "E=4,N=8,device_name=NVIDIA_H100.json", "{\"1\": {\"num_warps\": 0}}");
    /* a 100 MB file: sparse, so the test costs no disk */
    snprintf(p, sizeof p, "%s/E=5,N=8,device_name=NVIDIA_H100.json", bad);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, 100 << 20) == 0, "sparse file");
    close(fd);
    snprintf(p, sizeof p, "%s/E=6,N=8,device_name=NVIDIA_H100.json", bad);
    mkdir(p, 0755);
    const char *reason[] = {"malformed or truncated", "not a batch size", "out of range", "out of range",
                            "more than a config file can be", "is a directory"};
    for (int e = 1; e <= 6; e++) {
        logbuf[0] = 0;
        mt_runtime *rt = open_rt(bad, good, NULL, "NVIDIA_H100", "cuda", NULL);
        mt_moe_key key = {e, 8, 0, 0, NULL, 0, 0};
        mt_moe_config c;
        CHECK(mt_runtime_lookup_moe(rt, &key, 1, &c) == MT_OK, "E=%d: a malformed file must not fail the lookup", e);
        CHECK(c.source == MT_SOURCE_CACHE && c.block_size_m == 16, "E=%d: the next source serves (source %d)", e,
              c.source);
        CHECK(strstr(logbuf, "skipping") && strstr(logbuf, reason[e - 1]), "E=%d: the reason '%s' is logged: %s", e,
              reason[e - 1], logbuf);
        mt_runtime_close(rt);
    }
    /* vLLM's ROCm files hold num_stages 0 and waves_per_eu 0: valid */
    write_text(bad, "E=7,N=8,device_name=NVIDIA_H100.json", "{\"1\": {\"BLOCK_SIZE_M\": 16, \"num_stages\": 0, "
                                                               "\"waves_per_eu\": 0}}");
    mt_runtime *rt = open_rt(bad, NULL, NULL, "NVIDIA_H100", "cuda", NULL);
    mt_moe_key key = {7, 8, 0, 0, NULL, 0, 0};
    mt_moe_config c;
    CHECK(mt_runtime_lookup_moe(rt, &key, 1, &c) == MT_OK && c.source == MT_SOURCE_CONFIG_DIR && c.num_stages == 0 &&
              c.waves_per_eu == 0, "zero stages and waves are accepted");
    mt_runtime_close(rt);
}

static void test_staleness_and_cpu_kernel(void)
{
    char dir[300], name[512], text[2048];
    const char *dev = "CPU_TEST_MACHINE";
    snprintf(dir, sizeof dir, "%s/cpu", tmp);
    snprintf(name, sizeof name, "E=4,N=40,K=72,topk=2,device_name=%s,backend=cpu,dtype=bf16.moetune.json", dev);
    const char *fmt = "{\"format\": \"moetune-config/1\", \"provenance\": {\"kernel_hash\": \"%s\"}, \"configs\": "
                      "{\"1\": {\"params\": {\"block_m\": 4, \"block_n\": 8, \"block_k\": 64, \"threads\": 1}}, "
                      "\"16\": {\"params\": {\"block_m\": 8, \"block_n\": 16, \"block_k\": 64, \"threads\": 2}}}}";
    snprintf(text, sizeof text, fmt, "cpu-0000000000000000");
    write_text(dir, name, text);
    mt_moe_key key = {4, 40, 72, 2, NULL, 0, 0};
    mt_moe_config c;
    logbuf[0] = 0;
    mt_runtime *rt = open_rt(dir, NULL, NULL, dev, "cpu", NULL);
    mt_runtime_lookup_moe(rt, &key, 16, &c);
    CHECK(c.source == MT_SOURCE_DEFAULT && strstr(logbuf, "stale"), "a stale config is skipped, and said: %s", logbuf);
    mt_runtime_close(rt);
    mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
    o.config_dir = dir;
    o.cache_dir = o.bundled_dir = "/nonexistent";
    o.device_name = dev;
    o.allow_stale = 1;
    mt_runtime_open(&rt, &o);
    mt_runtime_lookup_moe(rt, &key, 16, &c);
    CHECK(c.source == MT_SOURCE_CONFIG_DIR && c.stale && !c.foreign && c.block_m == 8, "allow_stale uses it, flagged");
    mt_runtime_close(rt);

    snprintf(text, sizeof text, fmt, mt_kernel_hash("cpu"));
    write_text(dir, name, text);
    rt = open_rt(dir, NULL, NULL, dev, "cpu", NULL);
    mt_runtime_lookup_moe(rt, &key, 12, &c);
    CHECK(c.source == MT_SOURCE_CONFIG_DIR && !c.stale && c.m_key == 16 && c.block_m == 8 && c.threads == 2,
          "a current moetune file serves M=12 from key 16 (key %lld)", (long long)c.m_key);

    /* the CPU kernel with that config against the oracle */
    int64_t M = 12, E = 4, N = 40, K = 72, topk = 2;
    mt_rng r = {99};
    uint16_t *x = malloc((size_t)(M * K) * 2), *w1 = malloc((size_t)(E * 2 * N * K) * 2), *w2 = malloc((size_t)(E * K * N) * 2);
    float *logits = malloc((size_t)(M * E) * 4), *out = malloc((size_t)(M * K) * 4), *tw = malloc((size_t)(M * topk) * 4);
    int32_t *ids = malloc((size_t)(M * topk) * 4);
    double *ref = malloc((size_t)(M * K) * 8);
    mt_fill_random(x, MT_DTYPE_BF16, (size_t)(M * K), 1.0f, &r);
    mt_fill_random(w1, MT_DTYPE_BF16, (size_t)(E * 2 * N * K), 0.1f, &r);
    mt_fill_random(w2, MT_DTYPE_BF16, (size_t)(E * K * N), 0.1f, &r);
    for (int64_t i = 0; i < M * E; i++) logits[i] = mt_rng_uniform(&r);
    mt_moe_config used;
    CHECK(mt_fused_moe_cpu(rt, MT_DTYPE_BF16, M, E, N, K, topk, 1, x, w1, w2, logits, out, &used) == MT_OK, "forward");
    mt_moe_route(logits, M, E, topk, 1, ids, tw);
    mt_moe_shape s = {E, N, K, topk, MT_DTYPE_BF16, 1, 0, 0, 0};
    mt_moe_reference(&s, M, x, w1, w2, ids, tw, ref);
    double err = mt_rel_l2_error(out, ref, (size_t)(M * K));
    CHECK(err < 1e-4, "the looked-up kernel matches the oracle: %g", err);
    CHECK(used.block_m == 8 && used.source == MT_SOURCE_CONFIG_DIR, "it ran the tuned config");
    mt_runtime_close(rt);
    free(x); free(w1); free(w2); free(logits); free(out); free(tw); free(ids); free(ref);
}

/* fp8 through the runtime: each scheme finds its own file (the block
 * file is not the per-tensor one), runs the tuned config, matches the fp8
 * oracle; a malformed descriptor is refused with the field named. */
static void test_fp8_cpu(void)
{
    char dir[300], name[512], text[2048];
    const char *dev = "CPU_TEST_FP8";
    int64_t M = 9, E = 4, N = 128, K = 256, topk = 2;
    snprintf(dir, sizeof dir, "%s/fp8", tmp);
    const char *fmt = "{\"format\": \"moetune-config/1\", \"provenance\": {\"kernel_hash\": \"%s\"}, \"configs\": "
                      "{\"8\": {\"params\": {\"block_m\": %d, \"block_n\": 16, \"block_k\": 64, \"threads\": 2}}}}";
    /* block_m tells the files apart: 4 per tensor, 8 in blocks, 16 per channel */
    static const struct { const char *dtype, *block; int block_m; } files[] = {
        {"fp8_w8a8", "", 4}, {"fp8_w8a8", ",block_shape=[128,128]", 8}, {"fp8_w8a8_per_channel", "", 16}};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "E=4,N=128,K=256,topk=2,device_name=%s,backend=cpu,dtype=%s%s.moetune.json", dev,
                 files[i].dtype, files[i].block);
        snprintf(text, sizeof text, fmt, mt_kernel_hash("cpu"), files[i].block_m);
        write_text(dir, name, text);
    }
    mt_runtime *rt = open_rt(dir, NULL, NULL, dev, "cpu", NULL);
    mt_rng r = {7};
    float *w1f = malloc((size_t)(E * 2 * N * K) * 4), *w2f = malloc((size_t)(E * K * N) * 4);
    uint8_t *q1 = malloc((size_t)(E * 2 * N * K)), *q2 = malloc((size_t)(E * K * N));
    float *s1 = malloc((size_t)(E * 2 * N) * 4), *s2 = malloc((size_t)(E * K) * 4); /* the largest: per channel */
    uint16_t *x = malloc((size_t)(M * K) * 2);
    float *logits = malloc((size_t)(M * E) * 4), *out = malloc((size_t)(M * K) * 4), *tw = malloc((size_t)(M * topk) * 4);
    int32_t *ids = malloc((size_t)(M * topk) * 4);
    double *ref = malloc((size_t)(M * K) * 8);
    mt_fill_random(w1f, MT_DTYPE_FP32, (size_t)(E * 2 * N * K), 0.06f, &r);
    mt_fill_random(w2f, MT_DTYPE_FP32, (size_t)(E * K * N), 0.09f, &r);
    mt_fill_random(x, MT_DTYPE_BF16, (size_t)(M * K), 1.0f, &r);
    for (int64_t i = 0; i < M * E; i++) logits[i] = mt_rng_uniform(&r);
    mt_moe_route(logits, M, E, topk, 1, ids, tw);
    static const int schemes[] = {MT_QUANT_TENSOR, MT_QUANT_BLOCK, MT_QUANT_CHANNEL};
    for (int i = 0; i < 3; i++) {
        int b = schemes[i] == MT_QUANT_BLOCK;
        mt_moe_shape s = {E, N, K, topk, MT_DTYPE_FP8_W8A8, 1, schemes[i], b ? 128 : 0, b ? 128 : 0};
        mt_moe_quantize_weights(&s, w1f, w2f, q1, q2, s1, s2);
        mt_quant q = {schemes[i], s.block_n, s.block_k, s1, s2, NULL, NULL};
        mt_moe_scales sc = {s1, s2, NULL, NULL};
        mt_moe_config used;
        memset(&used, 0, sizeof used);
        CHECK(mt_fused_moe_fp8_cpu(rt, &q, M, E, N, K, topk, 1, x, q1, q2, logits, out, &used) == MT_OK &&
                  used.source == MT_SOURCE_CONFIG_DIR && used.block_m == files[i].block_m,
              "%s: its own file (block_m %d, want %d)", mt_quant_scheme_name(schemes[i]), used.block_m, files[i].block_m);
        CHECK(mt_moe_reference_fp8(&s, M, x, q1, q2, &sc, ids, tw, ref, NULL) == MT_OK, "oracle");
        double err = mt_rel_l2_error(out, ref, (size_t)(M * K));
        CHECK(err < 1e-4, "%s through the runtime matches the fp8 oracle: %g", mt_quant_scheme_name(schemes[i]), err);
    }
    /* another block shape has no file: the default, said */
    mt_quant q64 = {MT_QUANT_BLOCK, 64, 64, s1, s2, NULL, NULL};
    mt_moe_shape s64 = {E, N, K, topk, MT_DTYPE_FP8_W8A8, 1, MT_QUANT_BLOCK, 64, 64};
    mt_moe_quantize_weights(&s64, w1f, w2f, q1, q2, s1, s2);
    mt_moe_config used;
    CHECK(mt_fused_moe_fp8_cpu(rt, &q64, M, E, N, K, topk, 1, x, q1, q2, logits, out, &used) == MT_OK &&
              used.source == MT_SOURCE_DEFAULT,
          "64x64 blocks: no file, the default (source %d)", used.source);
    /* malformed descriptors: the field named in the log */
    static const struct { mt_quant q; const char *says; } bad[] = {
        {{0, 0, 0, NULL, NULL, NULL, NULL}, "scheme"},
        {{MT_QUANT_BLOCK, 0, 128, NULL, NULL, NULL, NULL}, "block_n"},
        {{MT_QUANT_CHANNEL, 128, 128, NULL, NULL, NULL, NULL}, "MT_QUANT_BLOCK only"},
        {{MT_QUANT_TENSOR, 0, 0, NULL, NULL, NULL, NULL}, "w1_scale"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        logbuf[0] = 0;
        mt_quant q = bad[i].q;
        if (i == 2) q.w1_scale = s1, q.w2_scale = s2;
        CHECK(mt_fused_moe_fp8_cpu(rt, &q, M, E, N, K, topk, 1, x, q1, q2, logits, out, NULL) == MT_EINVAL &&
                  strstr(logbuf, bad[i].says),
              "malformed descriptor %zu: %s", i, logbuf);
    }
    float one = 1;
    mt_quant stat = {MT_QUANT_CHANNEL, 0, 0, s1, s2, &one, NULL};
    logbuf[0] = 0;
    CHECK(mt_fused_moe_fp8_cpu(rt, &stat, M, E, N, K, topk, 1, x, q1, q2, logits, out, NULL) == MT_EINVAL &&
              strstr(logbuf, "a1_scale"),
          "a static scale with per-token activations: %s", logbuf);
    CHECK(mt_fused_moe_fp8_cpu(rt, NULL, M, E, N, K, topk, 1, x, q1, q2, logits, out, NULL) == MT_EINVAL, "no descriptor");
    mt_runtime_close(rt);
    free(w1f), free(w2f), free(q1), free(q2), free(s1), free(s2), free(x), free(logits), free(out), free(tw), free(ids);
    free(ref);
}

/* Attention: the config dir before the cache, the nearest keys, a broken
 * file passed over with a warning, the default without a file, and the CPU
 * kernel through the runtime equal to the reference. */
static void test_attention(void)
{
    char cfg[600], cache[600];
    snprintf(cfg, sizeof cfg, "%s/attn_cfg", tmp);
    snprintf(cache, sizeof cache, "%s/attn_cache", tmp);
    const char *name = "attn_decode,H=8,H_kv=2,D=64,page=16,device_name=CPU_TEST,dtype=bf16.json";
    write_text(cfg, name, "{\"1\": {\"64\": {\"partition\": 0, \"pages_per_iter\": 2, \"threads\": 1}, "
                          "\"1024\": {\"partition\": 256, \"pages_per_iter\": 4, \"threads\": 2}}, "
                          "\"16\": {\"64\": {\"partition\": 32, \"pages_per_iter\": 1, \"threads\": 2, \"mma\": 1, \"stage\": 2, "
                          "\"query_split\": 4}}}\n");
    write_text(cache, name, "{\"1\": {\"64\": {\"partition\": 16, \"pages_per_iter\": 1, \"threads\": 1}}}\n");
    mt_runtime *rt = open_rt(cfg, cache, NULL, "CPU_TEST", "cpu", NULL);
    mt_attn_key k = {8, 2, 64, 16, NULL};
    mt_attn_config c;
    CHECK(mt_runtime_lookup_attention(rt, &k, 2, 900, &c) == MT_OK && c.source == MT_SOURCE_CONFIG_DIR &&
              c.batch_key == 1 && c.ctx_key == 1024 && c.partition == 256 && c.pages_per_iter == 4 && c.threads == 2 &&
              c.num_warps == -1 && c.mma == -1 && c.stage == -1 && c.query_split == -1 && c.file && strstr(c.file, "attn_cfg"),
          "config dir, nearest keys: source %d keys %lld/%lld partition %d", c.source, (long long)c.batch_key,
          (long long)c.ctx_key, c.partition);
    CHECK(mt_runtime_lookup_attention(rt, &k, 30, 10, &c) == MT_OK && c.batch_key == 16 && c.partition == 32 && c.mma == 1 &&
              c.stage == 2 && c.query_split == 4,
          "batch 30: stage %d query_split %d", c.stage, c.query_split);
    /* another head count: no file, the default */
    mt_attn_key k2 = {8, 8, 64, 16, NULL};
    CHECK(mt_runtime_lookup_attention(rt, &k2, 1, 4000, &c) == MT_OK && c.source == MT_SOURCE_DEFAULT &&
              c.partition == 512 && c.file == NULL, "default: source %d partition %d", c.source, c.partition);
    CHECK(mt_runtime_lookup_attention(rt, &k2, 0, 10, &c) == MT_EINVAL, "batch 0");
    mt_attn_key bad = {6, 4, 64, 16, NULL};
    CHECK(mt_runtime_lookup_attention(rt, &bad, 1, 10, &c) == MT_EINVAL, "heads that do not divide");

    /* the kernel through the runtime: two sequences of unequal length */
    int32_t lens[2] = {700, 33}, bt[2 * 44];
    for (int i = 0; i < 88; i++) bt[i] = (i * 7) % 60;
    int64_t npages = 60;
    size_t qn = 2 * 8 * 64, kvn = (size_t)npages * 16 * 2 * 64;
    uint16_t *q = malloc(qn * 2), *kc = malloc(kvn * 2), *vc = malloc(kvn * 2), *out = malloc(qn * 2);
    mt_rng r = {5};
    for (size_t i = 0; i < qn; i++) q[i] = mt_f32_to_bf16(mt_rng_uniform(&r));
    for (size_t i = 0; i < kvn; i++) kc[i] = mt_f32_to_bf16(mt_rng_uniform(&r)), vc[i] = mt_f32_to_bf16(mt_rng_uniform(&r));
    CHECK(mt_attention_decode_cpu(rt, MT_DTYPE_BF16, 2, 8, 2, 64, 16, q, kc, vc, bt, 44, npages, lens, out, &c) == MT_OK &&
              c.source == MT_SOURCE_CONFIG_DIR && c.partition == 256, "decode through the runtime: partition %d", c.partition);
    mt_attn_shape sh = {8, 2, 64, 16, MT_DTYPE_BF16};
    mt_attn_batch b = {2, 44, npages, q, kc, vc, bt, lens, 0};
    double ref[2 * 8 * 64], worst = 0;
    CHECK(mt_attn_reference(&sh, &b, ref) == MT_OK, "reference");
    for (size_t i = 0; i < qn; i++) worst = fmax(worst, fabs(mt_bf16_to_f32(out[i]) - ref[i]));
    CHECK(worst < 1e-2, "runtime decode against the reference: %g", worst);
    free(q), free(kc), free(vc), free(out);
    mt_runtime_close(rt);

    /* a broken file in the config dir: warned about and passed over for the cache's */
    write_text(cfg, name, "{\"1\": [1, 2]}\n");
    logbuf[0] = 0;
    rt = open_rt(cfg, cache, NULL, "CPU_TEST", "cpu", NULL);
    CHECK(mt_runtime_lookup_attention(rt, &k, 1, 64, &c) == MT_OK && c.source == MT_SOURCE_CACHE && c.partition == 16,
          "the cache's file after a broken one: source %d", c.source);
    CHECK(strstr(logbuf, "skipping") != NULL, "the broken file is reported: %s", logbuf);
    mt_runtime_close(rt);
}

/* mt_attention_decode_cuda on 2 sequences of 8 heads of 64 dims, pages of
 * 16, 4 pages in the table, with the log cleared first; the pointers other
 * than q are never dereferenced */
static int cuda_decode(mt_runtime *rt, int dtype, int64_t kv_heads, uint64_t q, int64_t max_context)
{
    const uint64_t p = 0x1000;
    logbuf[0] = 0;
    return mt_attention_decode_cuda(rt, dtype, 2, 8, kv_heads, 64, 16, q, p, p, p, 4, p, max_context, 0.f, p, NULL, NULL);
}

/* mt_attention_decode_cuda: its argument checks, and a clean "no CUDA
 * device" where there is none (CI). The kernel itself runs on a GPU in
 * bench/cuda_runtime_check.c; the pointers here are never dereferenced. */
/* The attention lookup's fallbacks, as the fused-MoE lookup's: an alias the
 * user names, then another device of the same architecture; each said once. */
static void test_attention_fallbacks(void)
{
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/attn_fb", tmp);
    write_text(cfg, "attn_decode,H=32,H_kv=8,D=128,page=16,device_name=NVIDIA_H100_80GB_HBM3,dtype=bf16.json",
               "{\"1\": {\"512\": {\"partition\": 256, \"num_warps\": 4}}}\n");
    write_text(cfg, "attn_decode,H=32,H_kv=8,D=128,page=16,device_name=NVIDIA_A100-SXM4-80GB,dtype=bf16.json",
               "{\"1\": {\"512\": {\"partition\": 128, \"num_warps\": 8}}}\n");
    mt_attn_key k = {32, 8, 128, 16, NULL};
    mt_attn_config c;
    logbuf[0] = 0;
    nwarn = 0;
    mt_runtime *rt = open_rt(cfg, NULL, NULL, "NVIDIA_H200", "cuda", NULL);
    CHECK(mt_runtime_lookup_attention(rt, &k, 1, 512, &c) == MT_OK && c.source == MT_SOURCE_SAME_ARCH && c.partition == 256,
          "an H200 reads the H100's attention file: source %d partition %d", c.source, c.partition);
    CHECK(mt_runtime_lookup_attention(rt, &k, 2, 600, &c) == MT_OK && nwarn == 1, "said once (%d)", nwarn);
    CHECK(strstr(logbuf, "another device of architecture sm_90") != NULL, "with the reason: %s", logbuf);
    mt_runtime_close(rt);
    const char *aliases[] = {"NVIDIA_A100-SXM4-80GB", NULL};
    rt = open_rt(cfg, NULL, NULL, "NVIDIA_H200", "cuda", aliases);
    CHECK(mt_runtime_lookup_attention(rt, &k, 1, 512, &c) == MT_OK && c.source == MT_SOURCE_ALIAS && c.partition == 128,
          "an alias named by the user comes first: source %d partition %d", c.source, c.partition);
    mt_runtime_close(rt);
    rt = open_rt(cfg, NULL, NULL, "NVIDIA_L4", "cuda", NULL);
    CHECK(mt_runtime_lookup_attention(rt, &k, 1, 512, &c) == MT_OK && c.source == MT_SOURCE_DEFAULT,
          "another architecture reads neither: source %d", c.source);
    mt_runtime_close(rt);
}

static void test_attention_cuda(void)
{
    const uint64_t p = 0x1000;
    mt_runtime *cpu = open_rt(NULL, NULL, NULL, "NVIDIA_H100_80GB_HBM3", "cpu", NULL);
    CHECK(cuda_decode(cpu, MT_DTYPE_BF16, 2, p, 64) == MT_EINVAL && strstr(logbuf, "backend \"cuda\""),
          "a CPU runtime refuses, saying why: %s", logbuf);
    mt_runtime_close(cpu);
    mt_runtime *rt = open_rt(NULL, NULL, NULL, "NVIDIA_H100_80GB_HBM3", "cuda", NULL);
    CHECK(cuda_decode(rt, MT_DTYPE_BF16, 3, p, 64) == MT_EINVAL && strstr(logbuf, "over 3 KV heads"),
          "heads that the KV heads do not divide: %s", logbuf);
    CHECK(cuda_decode(rt, MT_DTYPE_BF16, 2, p, 65) == MT_EINVAL, "a context past the block table's pages");
    CHECK(cuda_decode(rt, MT_DTYPE_BF16, 2, 0, 64) == MT_EINVAL, "a null pointer");
    CHECK(cuda_decode(rt, MT_DTYPE_FP32, 2, p, 64) == MT_EUNSUPPORTED && strstr(logbuf, "bf16"),
          "fp32 (the CPU kernel's only), said: %s", logbuf);
    /* the CUDA default without a file: the ring, its partition sized by the
     * batch's streams (batch x KV heads), or the FMA variant where the ring
     * cannot run (runtime.c, attn_cuda_default) */
    struct {
        mt_attn_key k;
        int64_t batch, ctx;
        int partition, warps, mma, stage;
    } dc[] = {
        {{32, 8, 128, 16, NULL}, 1, 2048, 64, 4, 1, 2},     /* 8 streams: 2048 x 8 / 264 -> 64 */
        {{32, 8, 128, 16, NULL}, 8, 8192, 2048, 4, 1, 2},   /* 64 streams: 1985 -> 2048 */
        {{32, 8, 128, 16, NULL}, 32, 2048, 2048, 2, 1, 2},  /* 256 streams: one partition */
        {{32, 8, 128, 16, NULL}, 32, 9000, 8192, 2, 1, 2},  /* at most 8192 */
        {{8, 1, 256, 16, NULL}, 32, 511, 64, 4, 1, 2},      /* 32 streams: 61 -> 64 */
        {{32, 8, 128, 48, NULL}, 1, 2048, 96, 4, 1, 2},     /* 64 -> whole pages of 48 */
        {{32, 8, 96, 16, NULL}, 1, 2048, 512, 4, 0, 0},     /* head_dim 96: no MMA path */
        {{32, 1, 128, 16, NULL}, 1, 2048, 512, 4, 0, 0},    /* 32 query heads per KV head */
    };
    for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++) {
        mt_attn_config c;
        CHECK(mt_runtime_lookup_attention(rt, &dc[i].k, dc[i].batch, dc[i].ctx, &c) == MT_OK &&
                  c.source == MT_SOURCE_DEFAULT && c.partition == dc[i].partition && c.num_warps == dc[i].warps &&
                  c.mma == dc[i].mma && c.stage == dc[i].stage && c.query_split == 1,
              "CUDA default %zu: partition %d warps %d mma %d stage %d split %d", i, c.partition, c.num_warps, c.mma,
              c.stage, c.query_split);
    }
    mt_cuda *c = NULL;
    char err[512];
    if (mt_cuda_open(&c, 0, err, sizeof err) == MT_OK) {
        mt_cuda_close(c);
        fprintf(stderr, "test_runtime: a CUDA device is here; bench/cuda_runtime_check runs the attention kernel on it\n");
    } else {
        int rc = cuda_decode(rt, MT_DTYPE_BF16, 2, p, 64);
        CHECK(rc == MT_ENODEV && strstr(logbuf, "no CUDA device"), "no device: rc %d, log %s", rc, logbuf);
    }
    /* fp8 on CUDA: the descriptor and the shape are checked before any
     * device is asked for; without one, MT_ENODEV said */
    const float *sp = (const float *)(uintptr_t)0x2000;
    mt_quant qb = {MT_QUANT_BLOCK, 128, 128, sp, sp, NULL, NULL}, bad = {MT_QUANT_BLOCK, 128, 100, sp, sp, NULL, NULL};
    mt_quant none = {MT_QUANT_CHANNEL, 0, 0, NULL, sp, NULL, NULL};
    logbuf[0] = 0;
    CHECK(mt_fused_moe_fp8_cuda(rt, &none, 4, 8, 256, 512, 2, p, p, p, p, p, p, NULL, NULL) == MT_EINVAL &&
              strstr(logbuf, "w1_scale"),
          "fp8 on CUDA without w1's scales: %s", logbuf);
    logbuf[0] = 0;
    CHECK(mt_fused_moe_fp8_cuda(rt, &bad, 4, 8, 256, 512, 2, p, p, p, p, p, p, NULL, NULL) == MT_EUNSUPPORTED &&
              strstr(logbuf, "multiple of 32"),
          "a 128x100 block: %s", logbuf);
    CHECK(mt_fused_moe_fp8_cuda(rt, &qb, 4, 8, 264, 512, 2, p, p, p, p, p, p, NULL, NULL) == MT_EINVAL,
          "N = 264 is no multiple of 16");
    mt_runtime *cpu2 = open_rt(NULL, NULL, NULL, "NVIDIA_H100_80GB_HBM3", "cpu", NULL);
    logbuf[0] = 0;
    CHECK(mt_fused_moe_fp8_cuda(cpu2, &qb, 4, 8, 256, 512, 2, p, p, p, p, p, p, NULL, NULL) == MT_EINVAL &&
              strstr(logbuf, "mt_fused_moe_fp8_cuda needs a runtime opened with backend \"cuda\""),
          "fp8 on a CPU runtime: %s", logbuf);
    mt_runtime_close(cpu2);
    if (!c) {
        logbuf[0] = 0;
        int rc = mt_fused_moe_fp8_cuda(rt, &qb, 4, 8, 256, 512, 2, p, p, p, p, p, p, NULL, NULL);
        CHECK(rc == MT_ENODEV, "fp8, no device: rc %d, log %s", rc, logbuf);
    }
    mt_runtime_close(rt);
}

/* One lookup for every family: the registry, mt_runtime_lookup against the
 * typed wrappers, its key checks, and a file whose every level is checked
 * before it answers (a bad entry deep in it passes the file over whole,
 * where it used to fail only the lookups that reached it). */
static void test_families(void)
{
    /* each family's GPU kernels behind one table; HIP takes CUDA's; the CPU
     * has no built variants */
    CHECK(mt_family_backend_find(&mt_family_fused_moe, "cuda") == &mt_backend_fused_moe_cuda &&
              mt_family_backend_find(&mt_family_fused_moe, "hip") == &mt_backend_fused_moe_cuda &&
              mt_family_backend_find(&mt_family_attn_decode, "cuda") == &mt_backend_attn_decode_cuda &&
              mt_family_backend_find(&mt_family_attn_decode, "cpu") == NULL && mt_family_backend_find(NULL, "cuda") == NULL,
          "the backend tables");
    CHECK(mt_backend_fused_moe_cuda.cfg_size == sizeof(mt_cuda_moe_variant_cfg) &&
              mt_backend_attn_decode_cuda.variant_size == sizeof(mt_cuda_attn) && mt_backend_attn_decode_cuda.build &&
              mt_backend_fused_moe_cuda.enqueue && mt_backend_fused_moe_cuda.workspace && mt_backend_attn_decode_cuda.release,
          "the tables' sizes and functions");
    CHECK(mt_family_name(0) && !strcmp(mt_family_name(0), "fused_moe") && mt_family_name(1) &&
              !strcmp(mt_family_name(1), "attn_decode") && mt_family_name(2) == NULL && mt_family_name(-1) == NULL,
          "the registry: %s, %s", mt_family_name(0), mt_family_name(1));
    CHECK(!strcmp(mt_family_field("attn_decode", MT_FIELD_KEY, 0), "H") &&
              !strcmp(mt_family_field("attn_decode", MT_FIELD_KEY, 4), "dtype") &&
              mt_family_field("attn_decode", MT_FIELD_KEY, 5) == NULL &&
              !strcmp(mt_family_field("attn_decode", MT_FIELD_POINT, 1), "ctx") &&
              mt_family_field("attn_decode", MT_FIELD_POINT, 2) == NULL &&
              !strcmp(mt_family_field("fused_moe", MT_FIELD_POINT, 0), "M") &&
              !strcmp(mt_family_field("fused_moe", MT_FIELD_PARAM, 12), "GEMV") &&
              mt_family_field("mla_decode", MT_FIELD_KEY, 0) == NULL,
          "the families' fields");

    char cfg[600], cache[600];
    snprintf(cfg, sizeof cfg, "%s/fam_cfg", tmp);
    snprintf(cache, sizeof cache, "%s/fam_cache", tmp);
    write_text(cfg, "E=8,N=14336,device_name=CPU_FAM.json",
               "{\"1\": {\"BLOCK_SIZE_M\": 16, \"num_warps\": 4}, \"64\": {\"BLOCK_SIZE_M\": 64, \"num_warps\": 8}}\n");
    const char *attn = "attn_decode,H=8,H_kv=2,D=64,page=16,device_name=CPU_FAM,dtype=bf16.json";
    /* batch 1 is fine; batch 16 holds a context key that is not one */
    write_text(cfg, attn, "{\"1\": {\"64\": {\"partition\": 0, \"threads\": 1}}, \"16\": {\"x\": {\"partition\": 32}}}\n");
    write_text(cache, attn, "{\"1\": {\"64\": {\"partition\": 16, \"threads\": 1}}, \"16\": {\"512\": {\"partition\": 64}}}\n");
    logbuf[0] = 0;
    mt_runtime *rt = open_rt(cfg, cache, NULL, "CPU_FAM", "cpu", NULL);
    mt_config_values v;
    mt_moe_config m;
    mt_moe_key mk = {8, 14336, 0, 0, NULL, 0, 0};
    int64_t M = 50;
    CHECK(mt_runtime_lookup(rt, "fused_moe", "{\"E\":8,\"N\":14336}", &M, &v) == MT_OK &&
              mt_runtime_lookup_moe(rt, &mk, 50, &m) == MT_OK && v.source == MT_SOURCE_CONFIG_DIR &&
              v.point_key[0] == 64 && m.m_key == 64 && mt_config_value(&v, "BLOCK_SIZE_M") == 64 &&
              m.block_size_m == 64 && mt_config_value(&v, "num_warps") == 8 && m.num_warps == 8 &&
              mt_config_value(&v, "GEMV") == -1 && m.gemv == -1 && v.file == m.file && v.foreign == 1 &&
              !strcmp(v.family, "fused_moe"),
          "fused_moe through both lookups: key %lld, BLOCK_SIZE_M %d", (long long)v.point_key[0],
          mt_config_value(&v, "BLOCK_SIZE_M"));
    int64_t pt[2] = {16, 600};
    mt_attn_key ak = {8, 2, 64, 16, NULL};
    mt_attn_config ac;
    CHECK(mt_runtime_lookup(rt, "attn_decode", "{\"H\":8,\"H_kv\":2,\"D\":64,\"page\":16,\"dtype\":\"bf16\"}", pt, &v) ==
                  MT_OK &&
              mt_runtime_lookup_attention(rt, &ak, 16, 600, &ac) == MT_OK && v.source == MT_SOURCE_CACHE &&
              ac.source == MT_SOURCE_CACHE && v.point_key[0] == 16 && v.point_key[1] == 512 && ac.ctx_key == 512 &&
              mt_config_value(&v, "partition") == 64 && ac.partition == 64,
          "attn_decode: the config dir's file with a bad entry deep in it is passed over for the cache's: source %d "
          "partition %d",
          v.source, mt_config_value(&v, "partition"));
    CHECK(strstr(logbuf, "skipping") && strstr(logbuf, "key 'x' is not a context length"), "the bad entry is named: %s", logbuf);
    /* keys that are not keys */
    logbuf[0] = 0;
    CHECK(mt_runtime_lookup(rt, "fused_moe", "{\"E\":8,\"N\":14336,\"H\":3}", &M, &v) == MT_EINVAL &&
              strstr(logbuf, "no field 'H'"),
          "a field of another family is refused by name: %s", logbuf);
    CHECK(mt_runtime_lookup(rt, "fused_moe", "{\"E\":8}", &M, &v) == MT_EINVAL && strstr(logbuf, "has no N"),
          "a required field: %s", logbuf);
    CHECK(mt_runtime_lookup(rt, "fused_moe", "{\"E\":8.5,\"N\":1}", &M, &v) == MT_EINVAL, "a fraction");
    CHECK(mt_runtime_lookup(rt, "fused_moe", "[8]", &M, &v) == MT_EINVAL, "not an object");
    CHECK(mt_runtime_lookup(rt, "attn_decode", "{\"H\":6,\"H_kv\":4,\"D\":64,\"page\":16}", pt, &v) == MT_EINVAL &&
              strstr(logbuf, "not a multiple"),
          "heads that do not divide: %s", logbuf);
    CHECK(mt_runtime_lookup(rt, "mla_decode", "{}", pt, &v) == MT_EINVAL && strstr(logbuf, "no kernel family 'mla_decode'"),
          "an unknown family: %s", logbuf);
    int64_t zero[2] = {0, 5};
    CHECK(mt_runtime_lookup(rt, "attn_decode", "{\"H\":8,\"H_kv\":2,\"D\":64,\"page\":16}", zero, &v) == MT_EINVAL,
          "a point below 1");
    /* the default through the generic lookup is the typed one's */
    int64_t pd[2] = {1, 4000};
    CHECK(mt_runtime_lookup(rt, "attn_decode", "{\"H\":8,\"H_kv\":8,\"D\":64,\"page\":16}", pd, &v) == MT_OK &&
              v.source == MT_SOURCE_DEFAULT && mt_config_value(&v, "partition") == 512 && v.file == NULL &&
              v.point_key[0] == 1 && v.point_key[1] == 4000,
          "the default: partition %d", mt_config_value(&v, "partition"));
    mt_runtime_close(rt);

    /* the options' size: a struct not made by MT_RUNTIME_OPTIONS_INIT is
     * refused; a bigger one (a caller built against a later release) is
     * read as far as this release knows it */
    struct {
        mt_runtime_options o;
        char later[64];
    } big;
    mt_runtime_options init = MT_RUNTIME_OPTIONS_INIT, zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    memset(&big, 0x5a, sizeof big);
    big.o = init;
    big.o.size = sizeof big;
    big.o.device_name = "CPU_BIG";
    CHECK(mt_runtime_open(&rt, &zeroed) == MT_EINVAL && rt == NULL, "options without a size are refused");
    CHECK(mt_runtime_open(&rt, &big.o) == MT_OK && !strcmp(mt_runtime_device_name(rt), "CPU_BIG"),
          "options from a later release");
    mt_runtime_close(rt);
}

int main(void)
{
    const char *shared = getenv("MT_SHARED");
    char corpus[1024];
    snprintf(tmp, sizeof tmp, "/tmp/mt_test_runtime.XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    snprintf(corpus, sizeof corpus, "%s/data/vllm-configs", shared ? shared : "../shared");
    test_corpus_equivalence(corpus);
    test_source_order();
    test_tuned_dir();
    test_special_files();
    test_rocm_names_and_aliases();
    test_malformed();
    test_staleness_and_cpu_kernel();
    test_fp8_cpu();
    test_attention();
    test_attention_fallbacks();
    test_attention_cuda();
    test_families();
    mt_runtime *rt;
    CHECK(mt_runtime_open(&rt, NULL) == MT_OK && !strncmp(mt_runtime_device_name(rt), "CPU_", 4), "defaults");
    mt_runtime_close(rt);
    mt_runtime_close(NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_report("test_runtime");
}
