/* The HIP backend without an AMD GPU (issue 10): hipRTC compiles a sample of
 * the MoE and attention variants from the same sources as CUDA, for gfx90a
 * and gfx908, and refuses what the kernels' static assertions forbid; the
 * KFD topology of a made-up machine gives the devices vLLM's names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn_launch.h"
#include "check.h"
#include "hip_rt.h"
#include "moe_launch.h"
#include "moetune/moetune.h"

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

static void hiprtc_moe(const int *v, const char *arch)
{
    char d[MT_CUDA_MOE_NOPTS][48], err[512], *code = NULL, *log = NULL;
    const char *opts[MT_CUDA_MOE_NOPTS];
    size_t len = 0;
    mt_cuda_moe_options(v, 0, arch, d, opts);
    int rc = mt_hiprtc_compile(mt_hip_moe_source(), arch, opts, MT_CUDA_MOE_NOPTS, &code, &len, &log, err, sizeof err);
    CHECK(rc == MT_OK && is_amdgpu_elf(code, len, "moe_gemm"), "moe %d/%d/%d/%d/%d/%d for %s: %s %.400s", v[0], v[1],
          v[2], v[3], v[4], v[5], arch, err, log ? log : "");
    free(code);
    free(log);
}

static void hiprtc_attn(int head_dim, int group, int fp16, int partition, int warps, int stage, const char *arch)
{
    mt_cuda_attn_cfg c = {head_dim, 16, group, fp16, partition, warps, 0, stage};
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

int main(void)
{
    kfd();
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
    int moe[][7] = {{16, 32, 64, 1, 4, 2, 0}, {64, 128, 64, 16, 8, 3, 0}, {128, 256, 64, 1, 8, 2, 0}};
    for (int i = 0; i < 3; i++) hiprtc_moe(moe[i], "gfx90a");
    hiprtc_moe(moe[1], "gfx908"); /* not gfx940: Debian's comgr 5.2 crashes compiling for it at run time (hipcc compiles it) */
    /* every head_dim, MHA and a wide GQA, short and long partitions */
    hiprtc_attn(64, 1, 0, 16, 2, 0, "gfx90a");
    hiprtc_attn(128, 8, 1, 512, 4, 0, "gfx90a");
    hiprtc_attn(256, 16, 0, 2048, 8, 0, "gfx90a");
    hiprtc_attn(96, 4, 0, 256, 4, 0, "gfx908");
    hiprtc_attn(128, 8, 0, 64, 4, 1, "gfx90a"); /* K and V staged in shared memory */
    /* what the sources forbid is refused with the assertion's words */
    mt_cuda_attn_cfg bad = {128, 16, 4, 0, 24, 4, 0, 0};
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
