/* The HIP backend without an AMD GPU (issue 10): hipRTC compiles a sample of
 * the MoE and attention variants from the same sources as CUDA, for gfx90a
 * and gfx908, and refuses what the kernels' static assertions forbid; the
 * KFD topology of a made-up machine gives the devices vLLM's names. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn_launch.h"
#include "check.h"
#include "db.h"
#include "buf.h"
#include "export.h"
#include "space.h"
#include "hip_rt.h"
#include "moe_launch.h"
#include "moetune/moetune.h"
#include "rt_internal.h"

/* an AMD GPU code object: ELF, e_machine EM_AMDGPU (224), naming the kernel */
static int is_amdgpu_elf(const char *code, size_t len, const char *kernel)
{
    if (len < 64 || memcmp(code, "\x7f" "ELF", 4) != 0) return 0;
    unsigned machine = (unsigned char)code[18] | (unsigned)(unsigned char)code[19] << 8;
    if (machine != 224) return 0;
    size_t k = strlen(kernel);
    for (size_t i = 0; i + k <= len; i++)
        if (memcmp(code + i, kernel, k) == 0) return 1;
    return 0;
}

static void hiprtc_moe(const mt_cuda_moe_cfg *c, const char *arch)
{
    char d[MT_CUDA_MOE_NOPTS][48], err[512], *code = NULL, *log = NULL;
    const char *opts[MT_CUDA_MOE_NOPTS];
    size_t len = 0;
    mt_cuda_moe_options(c, 0, 0, arch, d, opts);
    int rc = mt_hiprtc_compile(mt_hip_moe_source(), arch, opts, MT_CUDA_MOE_NOPTS, &code, &len, &log, err, sizeof err);
    CHECK(rc == MT_OK && is_amdgpu_elf(code, len, "moe_gemm"), "moe %d/%d/%d/%d/%d/%d for %s: %s %.400s", c->block_m,
          c->block_n, c->block_k, c->group_m, c->warps, c->stages, arch, err, log ? log : "");
    free(code);
    free(log);
}

static void hiprtc_attn(int head_dim, int group, int fp16, int partition, int warps, int stage, const char *arch)
{
    /* a ring (stage >= 2) is the tensor-core path's */
    mt_cuda_attn_cfg c = {head_dim, 16, group, fp16, partition, warps, stage >= 2, stage, 1};
    char d[MT_CUDA_ATTN_NOPTS][48], err[512], *code = NULL, *log = NULL;
    const char *opts[MT_CUDA_ATTN_NOPTS];
    size_t len = 0;
    mt_cuda_attn_options(&c, d, opts);
    int rc = mt_hiprtc_compile(mt_hip_attn_source(), arch, opts, MT_CUDA_ATTN_NOPTS, &code, &len, &log, err, sizeof err);
    CHECK(rc == MT_OK && is_amdgpu_elf(code, len, "attn_partial") && is_amdgpu_elf(code, len, "attn_reduce"),
          "attention head_dim %d group %d partition %d stage %d for %s: %s %.400s", head_dim, group, partition, stage, arch, err,
          log ? log : "");
    free(code);
    free(log);
}

/* `kernel`'s .vgpr_count in a code object's metadata (the msgpack note of
 * AMDGPU code objects v3 and later: a kernel's map holds ".name" and, after
 * it in key order, ".vgpr_count"); -1 when absent. hipRTC 5.2 returns no
 * resource remarks in its log, so the test reads what the loader reads. */
static long vgprs_of(const char *code, size_t len, const char *kernel)
{
    char key[80];
    size_t k = strlen(kernel);
    if (k > 31) return -1;
    int n = snprintf(key, sizeof key, ".name%c%s", (char)(0xa0 | k), kernel);
    const char *v = ".vgpr_count";
    for (size_t i = 0; i + (size_t)n <= len; i++) {
        if (memcmp(code + i, key, (size_t)n) != 0) continue;
        for (size_t j = i + (size_t)n; j + 14 <= len; j++) {
            if (memcmp(code + j, v, 11) != 0) continue;
            const unsigned char *p = (const unsigned char *)code + j + 11;
            if (p[0] < 0x80) return p[0];                            /* positive fixint */
            if (p[0] == 0xcc) return p[1];                           /* uint 8 */
            if (p[0] == 0xcd) return (long)p[1] << 8 | p[2];         /* uint 16 */
            return -1;
        }
    }
    return -1;
}

/* ROCm's waves_per_eu reaches the compiler: a wide tile compiled with
 * waves_per_eu 4 gets at most 128 VGPRs (512 per SIMD lane / 4), where
 * without the hint it takes more; so the key is a real tunable of our
 * kernels, not a label copied into the file */
static void waves_per_eu_applies(void)
{
    long vg[2] = {-1, -1};
    const int waves[2] = {0, 4};
    for (int i = 0; i < 2; i++) {
        mt_cuda_moe_cfg cfg = {128, 128, 64, 1, 4, 2, 0, waves[i], 0};
        char d[MT_CUDA_MOE_NOPTS][48], err[512], *log = NULL, *code = NULL, want[48];
        const char *opts[MT_CUDA_MOE_NOPTS];
        size_t len = 0;
        mt_cuda_moe_options(&cfg, 0, 0, "gfx90a", d, opts);
        snprintf(want, sizeof want, "-DMT_WAVES_PER_EU=%d", waves[i]);
        CHECK(!strcmp(opts[8], want), "the option: %s", opts[8]);
        int rc = mt_hiprtc_compile(mt_hip_moe_source(), "gfx90a", opts, MT_CUDA_MOE_NOPTS, &code, &len, &log, err,
                                   sizeof err);
        CHECK(rc == MT_OK, "waves_per_eu %d: %s %.300s", waves[i], err, log ? log : "");
        vg[i] = rc == MT_OK ? vgprs_of(code, len, "moe_gemm1") : -1;
        free(code);
        free(log);
    }
    CHECK(vg[0] > 0 && vg[1] > 0, "moe_gemm1's VGPR count in the metadata: %ld, %ld", vg[0], vg[1]);
    CHECK(vg[1] <= 128, "waves_per_eu 4: %ld VGPRs (at most 128)", vg[1]);
    CHECK(vg[0] > vg[1], "without the hint the tile takes more than with 4: %ld against %ld VGPRs", vg[0], vg[1]);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *path)
{
    char p[600];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

/* a CPU node, an MI300X (in vLLM's id map), an MI308X (in the map: must not
 * be named MI300X), a board outside the map with a product name, and one
 * with neither */
static void kfd(void)
{
    char root[] = "/tmp/mt_kfd_XXXXXX", p[600];
    CHECK(mkdtemp(root) != NULL, "mkdtemp");
    mt_hip_kfd_gpu g[8];
    char why[300] = "";
    CHECK(mt_hip_kfd_gpus(root, g, 8, why, sizeof why) == 0 && strstr(why, "no AMD GPU") && strstr(why, "KFD"),
          "no topology: %s", why);
    /* written field by field: node | properties (with \n) | memory | product */
    struct { int node; const char *props; const char *mem; const char *product; int minor; } t[] = {
        {0, "cpu_cores_count 64\nsimd_count 0\nvendor_id 0\ndevice_id 0\n", NULL, NULL, 0},
        {1, "cpu_cores_count 0\nsimd_count 1216\nsimd_per_cu 4\ngfx_target_version 90402\nvendor_id 4098\n"
            "device_id 29857\ndrm_render_minor 128\n", "size_in_bytes 206141652992\n", "AMD Instinct MI300X\n", 128},
        {2, "simd_count 320\nsimd_per_cu 4\ngfx_target_version 90402\nvendor_id 4098\ndevice_id 29858\n"
            "drm_render_minor 136\n", "size_in_bytes 206141652992\n", "AMD Instinct MI300X\n", 136},
        {10, "simd_count 1024\nsimd_per_cu 4\ngfx_target_version 90500\nvendor_id 4098\ndevice_id 30000\n"
             "drm_render_minor 144\n", "size_in_bytes 309237645312\n", "AMD Instinct MI355X\n", 144},
        {11, "simd_count 440\nsimd_per_cu 4\ngfx_target_version 90010\nvendor_id 4098\ndevice_id 29824\n",
         "size_in_bytes 68702699520\n", NULL, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(p, sizeof p, "%s/sys/class/kfd/kfd/topology/nodes/%d/mem_banks/0", root, t[i].node);
        mkdirs(p);
        snprintf(p, sizeof p, "%s/sys/class/kfd/kfd/topology/nodes/%d/properties", root, t[i].node);
        write_file(p, t[i].props);
        if (t[i].mem) {
            snprintf(p, sizeof p, "%s/sys/class/kfd/kfd/topology/nodes/%d/mem_banks/0/properties", root, t[i].node);
            write_file(p, t[i].mem);
        }
        if (t[i].product) {
            snprintf(p, sizeof p, "%s/sys/class/drm/renderD%d/device", root, t[i].minor);
            mkdirs(p);
            snprintf(p, sizeof p, "%s/sys/class/drm/renderD%d/device/product_name", root, t[i].minor);
            write_file(p, t[i].product);
        }
    }
    int n = mt_hip_kfd_gpus(root, g, 8, why, sizeof why);
    CHECK(n == 4, "4 GPUs (the CPU node skipped), got %d: %s", n, why);
    if (n == 4) {
        CHECK(g[0].node == 1 && !strcmp(g[0].vllm_name, "AMD_Instinct_MI300X") && !strcmp(g[0].arch, "gfx942") &&
                  g[0].compute_units == 304 && g[0].memory_bytes == 206141652992ULL,
              "node 1: %s %s %d CUs %llu bytes", g[0].vllm_name, g[0].arch, g[0].compute_units, g[0].memory_bytes);
        CHECK(!strcmp(g[1].vllm_name, "AMD_Instinct_MI308X") && g[1].compute_units == 80,
              "node 2 is an MI308X by its id (0x74a2), whatever its product name: %s, %d CUs", g[1].vllm_name,
              g[1].compute_units);
        CHECK(g[2].node == 10 && !strcmp(g[2].vllm_name, "AMD_Instinct_MI355X") && !strcmp(g[2].arch, "gfx950"),
              "node 10 (numeric order, after 2): an id outside the map takes the product name: %d %s %s", g[2].node,
              g[2].vllm_name, g[2].arch);
        CHECK(!strcmp(g[3].arch, "gfx90a") && !strcmp(g[3].vllm_name, "AMD_gfx90a") && g[3].compute_units == 110,
              "node 11: no name anywhere: %s %s %d", g[3].vllm_name, g[3].arch, g[3].compute_units);
    }
    CHECK(mt_hip_kfd_gpus(root, g, 2, why, sizeof why) == 2, "at most max");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "cleanup");
}

/* What a sweep on an AMD GPU stores exports for libmoetune: a real SQLite
 * database holding measurements of HIP-space configs on an MI300X (as the
 * worker would record them), exported; never under vLLM's name (vLLM runs
 * its own kernel), and in moetune's format each entry holds ROCm's nine
 * keys with the searched waves_per_eu, and NUM_SM. */
static void rocm_export(void)
{
    char dir[] = "/tmp/mt_hip_export_XXXXXX", path[600], err[512];
    CHECK(mkdtemp(dir) != NULL, "temporary folder");
    snprintf(path, sizeof path, "%s/m.db", dir);
    mt_db *db = NULL;
    CHECK(mt_db_open(&db, path, err, sizeof err) == MT_OK, "open: %s", err);
    if (!db) return;
    mt_device_info d = {.backend = "hip", .name = "AMD_Instinct_MI300X", .raw_name = "AMD Instinct MI300X",
                        .arch = "gfx942", .cores = 304, .smem_per_block = 65536};
    mt_problem pr = {.kernel = "fused_moe", .dtype = "bf16", .E = 8, .N = 7168, .K = 4096, .topk = 2, .renormalize = 1};
    CHECK(mt_db_device_upsert(db, &d) == MT_OK && mt_db_problem_upsert(db, &pr) == MT_OK, "device and problem");
    mt_space sp;
    mt_space_hip_moe(&sp, 304);
    const int64_t ms[2] = {1, 64};
    const int waves[2] = {2, 0}, num_sm[2] = {304, 0};
    for (int i = 0; i < 2; i++) {
        mt_space_ctx ctx = {8, 7168, 4096, 2, ms[i], 304, 65536, 0, 0, 0, 0, 0, 0};
        mt_config c;
        char json[512];
        int64_t cfg = 0;
        sp.default_config(&sp, &ctx, &c);
        c.v[6] = num_sm[i];
        c.v[7] = waves[i];
        CHECK(mt_config_to_json(&sp, &c, json, sizeof json) == MT_OK &&
                  mt_db_config_upsert(db, "hip", json, &cfg) == MT_OK, "config %s", json);
        mt_measurement m = {.device_id = d.id, .problem_id = pr.id, .config_id = cfg, .M = ms[i], .status = "ok",
                            .median_us = 10.0 + (double)i, .spread_us = 0.1, .reps = 9, .rel_err = 1e-3,
                            .tolerance = 1e-2, .floor_us = 5, .efficiency = 0.5, .kernel_hash = mt_kernel_hash("hip"),
                            .timing_policy = "hip"};
        CHECK(mt_db_measurement_insert(db, &m) == MT_OK, "measurement at M=%lld", (long long)ms[i]);
    }
    char out[100];
    snprintf(out, sizeof out, "%s/out", dir);
    mkdir(out, 0755);
    /* vLLM's names hold only configs of vLLM's kernel: none for these */
    mt_export_opts o = {.out_dir = out, .vllm = 1, .quiet = 1};
    mt_export_stats st;
    memset(&st, 0, sizeof st);
    CHECK(mt_export(db, &o, &st) == MT_OK && st.written == 0 && st.own_skipped == 1 && st.failed == 0,
          "vLLM's format: %d written, %d of moetune's kernels left out, %d failed", st.written, st.own_skipped, st.failed);
    /* moetune's format, which libmoetune reads: every key, in the order of
     * vLLM's AMD files, then moetune's */
    o = (mt_export_opts){.out_dir = out, .moetune = 1, .quiet = 1};
    memset(&st, 0, sizeof st);
    CHECK(mt_export(db, &o, &st) == MT_OK && st.written == 1 && st.failed == 0, "export: %d written, %d failed",
          st.written, st.failed);
    mt_db_close(db);
    snprintf(path, sizeof path, "%s/E=8,N=7168,K=4096,topk=2,device_name=AMD_Instinct_MI300X,backend=hip,dtype=bf16.moetune.json",
             out);
    char *text = NULL;
    size_t n = 0;
    CHECK(mt_read_file(path, &text, &n, err, sizeof err) == MT_OK, "moetune's file for an MI300X: %s", err);
    cJSON *file = text ? cJSON_ParseWithLength(text, n) : NULL, *root = cJSON_GetObjectItemCaseSensitive(file, "configs");
    free(text);
    static const char *const keys[] = {"BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps",
                                       "num_stages", "waves_per_eu", "matrix_instr_nonkdim", "kpack"};
    for (int i = 0; i < 2; i++) {
        char mk[16];
        snprintf(mk, sizeof mk, "%lld", (long long)ms[i]);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, mk), "params"), *k;
        CHECK(cJSON_IsObject(e), "M=%s in the file", mk);
        int j = 0;
        cJSON_ArrayForEach(k, e) j++;
        for (int q = 0; q < 9; q++)
            CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, keys[q])), "M=%s: vLLM's AMD key %s", mk, keys[q]);
        const cJSON *sm = cJSON_GetObjectItemCaseSensitive(e, "NUM_SM");
        CHECK(j == 10 && cJSON_IsNumber(sm) && sm->valueint == num_sm[i], "M=%s: vLLM's nine keys and NUM_SM %d, %d keys",
              mk, num_sm[i], j);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(e, "waves_per_eu");
        CHECK(cJSON_IsNumber(w) && w->valueint == waves[i], "M=%s: waves_per_eu %d", mk, waves[i]);
    }
    cJSON_Delete(file);
    /* nothing left behind in /tmp */
    unlink(path);
    rmdir(out);
    const char *dbfiles[] = {"m.db", "m.db-wal", "m.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, dbfiles[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0, "the test's folder %s holds only what it wrote", dir);
}

int main(void)
{
    kfd();
    rocm_export();
    char err[300];
    if (mt_hiprtc_available(err, sizeof err) != MT_OK) {
        printf("hipRTC: %s\n", err);
#ifdef MT_EXPECT_HIPRTC
        CHECK(0, "this build found hipcc, so libamdhip64 must load: %s", err);
#else
        printf("hipRTC checks skipped\n");
        return check_report("test_hip") ? 1 : 77;
#endif
        return check_report("test_hip");
    }
    /* the extremes of the tile space, the defaults for small and large M */
    mt_cuda_moe_cfg moe[] = {{16, 32, 64, 1, 4, 2, 0, 0, 0}, {64, 128, 64, 16, 8, 3, 0, 0, 0}, {128, 256, 64, 1, 8, 2, 0, 0, 0}};
    for (int i = 0; i < 3; i++) hiprtc_moe(&moe[i], "gfx90a");
    waves_per_eu_applies();
    hiprtc_moe(&moe[1], "gfx908"); /* not gfx940: Debian's comgr 5.2 crashes compiling for it at run time (hipcc compiles it) */
    /* every head_dim, MHA and a wide GQA, short and long partitions */
    hiprtc_attn(64, 1, 0, 16, 2, 0, "gfx90a");
    hiprtc_attn(128, 8, 1, 512, 4, 0, "gfx90a");
    hiprtc_attn(256, 16, 0, 2048, 8, 0, "gfx90a");
    hiprtc_attn(96, 4, 0, 256, 4, 0, "gfx908");
    hiprtc_attn(128, 8, 0, 512, 4, 2, "gfx90a");
    hiprtc_attn(64, 1, 1, 1024, 2, 3, "gfx90a");
    hiprtc_attn(128, 8, 0, 64, 4, 1, "gfx90a"); /* K and V staged in shared memory */
    /* what the sources forbid is refused with the assertion's words */
    mt_cuda_attn_cfg bad = {128, 16, 4, 0, 24, 4, 0, 0, 1};
    char d[MT_CUDA_ATTN_NOPTS][48], *code = NULL, *log = NULL;
    const char *opts[MT_CUDA_ATTN_NOPTS];
    size_t len = 0;
    mt_cuda_attn_options(&bad, d, opts);
    int rc = mt_hiprtc_compile(mt_hip_attn_source(), "gfx90a", opts, MT_CUDA_ATTN_NOPTS, &code, &len, &log, err, sizeof err);
    CHECK(rc == MT_EPARSE && log && strstr(log, "whole pages"), "partition 24 of pages of 16: rc %d, %.300s", rc,
          log ? log : "(no log)");
    free(code);
    free(log);
    /* the measurement path's driver: every entry point it uses resolves in
     * the installed libamdhip64 (a misspelt or missing name fails here), and
     * with no AMD GPU opening one says so */
    CHECK(mt_hip_driver_check(err, sizeof err) == MT_OK, "the HIP driver's entry points: %s", err);
    mt_cuda *hc = NULL;
    rc = mt_hip_open(&hc, 0, err, sizeof err);
    if (rc == MT_OK) {
        printf("an AMD GPU answered: %s, %s, %d CUs\n", mt_cuda_get_props(hc)->name, mt_cuda_get_props(hc)->arch,
               mt_cuda_get_props(hc)->sms);
        CHECK(mt_cuda_is_hip(hc) && !strncmp(mt_cuda_get_props(hc)->arch, "gfx", 3), "an AMD GPU's target: %s",
              mt_cuda_get_props(hc)->arch);
        mt_cuda_close(hc);
    } else {
        CHECK(rc == MT_ENODEV && strstr(err, "no AMD GPU") && hc == NULL, "no AMD GPU here: rc %d, %s", rc, err);
    }
    return check_report("test_hip");
}
