/* NVRTC needs no GPU: compile a sample of the declared CUDA variants, the
 * extremes of every tunable among them, for sm_90a and sm_80, and check that
 * a config the kernel's static assertions forbid is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda_rt.h"
#include "attn_launch.h"
#include "moe_launch.h"
#include "switches.h"
#include "moetune/moetune.h"
#include "space.h"


static int compile_fp8(const mt_config *c, const char *arch, int fp8, char **log)
{
    char d[MT_CUDA_MOE_NOPTS][48], err[512];
    const char *opts[MT_CUDA_MOE_NOPTS];
    mt_cuda_moe_cfg lc;
    mt_cuda_moe_cfg_from_space(c->v, 0, &lc);
    mt_cuda_moe_options(&lc, 0, fp8, arch, d, opts);
    char *bin = NULL;
    size_t len = 0;
    int rc = mt_nvrtc_compile(mt_cuda_moe_source(), arch, opts, MT_CUDA_MOE_NOPTS, &bin, &len, log, err, sizeof err);
    if (rc == MT_OK) CHECK(len > 4 && memcmp(bin, "\x7f" "ELF", 4) == 0, "%s: the cubin is not an ELF file", arch);
    else if (rc != MT_EPARSE) fprintf(stderr, "%s\n", err);
    free(bin);
    return rc;
}
static int compile(const mt_config *c, const char *arch, char **log) { return compile_fp8(c, arch, 0, log); }

/* one attention variant for sm_90a: MT_OK with a non-empty cubin, or the
 * status and (in *log, freed by the caller) the compiler's log */
static int compile_attn(const mt_cuda_attn_cfg *ac, char **log)
{
    char d[MT_CUDA_ATTN_NOPTS][48], err[512];
    const char *o[MT_CUDA_ATTN_NOPTS];
    mt_cuda_attn_options(ac, d, o);
    char *bin = NULL;
    size_t len = 0;
    *log = NULL;
    int rc = mt_nvrtc_compile(mt_cuda_attn_source(), "sm_90a", o, MT_CUDA_ATTN_NOPTS, &bin, &len, log, err, sizeof err);
    if (rc == MT_OK && !len) rc = MT_EIO;
    if (rc != MT_OK && rc != MT_EPARSE) fprintf(stderr, "%s\n", err);
    free(bin);
    return rc;
}

/* Configs that differ only in launch arguments share a binary: the same
 * NVRTC options; any tile parameter or the dtype gives another. */
static void options_share(void)
{
    mt_cuda_moe_cfg a = {64, 128, 64, 1, 8, 3, 0, 0, 0}, b = {64, 128, 64, 32, 8, 3, 264, 0, 0};
    char da[MT_CUDA_MOE_NOPTS][48], db[MT_CUDA_MOE_NOPTS][48];
    const char *oa[MT_CUDA_MOE_NOPTS], *ob[MT_CUDA_MOE_NOPTS];
    CHECK(mt_cuda_moe_options(&a, 0, 0, "sm_90a", da, oa) == MT_OK && mt_cuda_moe_options(&b, 0, 0, "sm_90a", db, ob) == MT_OK,
          "options");
    int same = 1;
    for (int i = 0; i < MT_CUDA_MOE_NOPTS; i++) same &= !strcmp(oa[i], ob[i]);
    CHECK(same && mt_cuda_moe_same_binary(&a, &b), "GROUP_SIZE_M and NUM_SM must not change the binary");
    mt_cuda_moe_options(&a, 1, 0, "sm_90a", db, ob);
    same = 1;
    for (int i = 0; i < MT_CUDA_MOE_NOPTS; i++) same &= !strcmp(oa[i], ob[i]);
    CHECK(!same, "fp16 is another binary");
    /* the GEMV path's kernels are in every binary: choosing them is a launch */
    mt_cuda_moe_cfg g = a;
    g.gemv = 1;
    CHECK(mt_cuda_moe_same_binary(&a, &g), "GEMV must not change the binary");
    /* every tile parameter, and ROCm's hint, makes another binary */
    static const struct { const char *name; size_t off; int value; } tile[] = {
        {"block_m", offsetof(mt_cuda_moe_cfg, block_m), 128}, {"block_n", offsetof(mt_cuda_moe_cfg, block_n), 256},
        {"block_k", offsetof(mt_cuda_moe_cfg, block_k), 128}, {"warps", offsetof(mt_cuda_moe_cfg, warps), 4},
        {"stages", offsetof(mt_cuda_moe_cfg, stages), 6},     {"waves_per_eu", offsetof(mt_cuda_moe_cfg, waves_per_eu), 2},
    };
    for (size_t p = 0; p < sizeof tile / sizeof tile[0]; p++) {
        mt_cuda_moe_cfg c = a;
        *(int *)((char *)&c + tile[p].off) = tile[p].value;
        CHECK(!mt_cuda_moe_same_binary(&a, &c), "%s changes the binary", tile[p].name);
    }
}

/* Hopper's warpgroup MMA: on for sm_90a only, off when asked, taken by the
 * tiles the kernel's rule admits, never needing more shared memory than the
 * padded bound the space checks. */
static void wgmma_rules(void)
{
    mt_cuda_moe_cfg a = {128, 128, 64, 1, 8, 3, 0, 0, 0};
    char d[MT_CUDA_MOE_NOPTS][48];
    const char *o[MT_CUDA_MOE_NOPTS];
    mt_cuda_moe_options(&a, 0, 0, "sm_90a", d, o);
    CHECK(!strcmp(o[7], "-DMT_WGMMA=1"), "sm_90a turns wgmma on: %s", o[7]);
    mt_cuda_moe_options(&a, 0, 0, "sm_80", d, o);
    CHECK(!strcmp(o[7], "-DMT_WGMMA=0"), "sm_80 has no wgmma: %s", o[7]);
    mt_cuda_moe_options(&a, 0, 0, "sm_90", d, o);
    CHECK(!strcmp(o[7], "-DMT_WGMMA=0"), "plain sm_90 has no wgmma: %s", o[7]);
    setenv("MOETUNE_DEBUG_CUDA", "no-splitk,no-wgmma", 1);
    mt_cuda_moe_options(&a, 0, 0, "sm_90a", d, o);
    CHECK(!strcmp(o[7], "-DMT_WGMMA=0"), "MOETUNE_DEBUG_CUDA=no-wgmma turns it off: %s", o[7]);
    unsetenv("MOETUNE_DEBUG_CUDA");
    CHECK(mt_cuda_wgmma_tile(128, 128, 64, 8) && mt_cuda_wgmma_tile(64, 64, 128, 4) && mt_cuda_wgmma_tile(64, 32, 64, 8),
          "64-row blocks with 16 to 128 columns per warpgroup");
    CHECK(!mt_cuda_wgmma_tile(32, 64, 64, 4) && !mt_cuda_wgmma_tile(64, 256, 64, 4) && !mt_cuda_wgmma_tile(64, 64, 64, 2),
          "fewer than 64 rows, more than 128 columns per warpgroup, or less than a warpgroup: mma.sync");
    mt_space sp;
    mt_space_cuda_moe(&sp, 132);
    mt_space_ctx ctx = {8, 7168, 4096, 2, 4096, 1, 227 * 1024, 0, 0, 0, 0, 0, 0};
    mt_config *pts;
    int np = mt_space_enumerate(&sp, &ctx, &pts), taken = 0;
    for (int i = 0; i < np; i++) {
        const int *v = pts[i].v;
        if (!mt_cuda_wgmma_tile(v[0], v[1], v[2], v[4])) continue;
        taken++;
        for (int g = 0; g < 2; g++)
            CHECK(mt_cuda_wgmma_smem_bytes(v[0], v[1], v[2], v[5], g) <= mt_cuda_smem_bytes(v[0], v[1], v[2], v[5], g),
                  "%d/%d/%d/%d: the wgmma stages fit where the padded ones do", v[0], v[1], v[2], v[5]);
    }
    CHECK(taken > 0 && taken < np, "some valid tiles take wgmma (%d of %d)", taken, np);
    free(pts);
    /* fp8: k tiles of 128 e4m3 values, at most 64 accumulators a thread (a
     * second set holds each k tile's sums) */
    CHECK(mt_cuda_fp8_wgmma_tile(64, 64, 128, 4) && mt_cuda_fp8_wgmma_tile(64, 128, 128, 8) &&
              mt_cuda_fp8_wgmma_tile(128, 64, 128, 8) && mt_cuda_fp8_wgmma_tile(64, 128, 256, 8),
          "fp8 tiles that take wgmma");
    CHECK(!mt_cuda_fp8_wgmma_tile(128, 64, 64, 8) && !mt_cuda_fp8_wgmma_tile(128, 128, 128, 8) &&
              !mt_cuda_fp8_wgmma_tile(64, 128, 128, 4) && !mt_cuda_fp8_wgmma_tile(128, 64, 128, 4),
          "fp8: a k tile under 128, or more accumulators than the rule allows: mma.sync");
    mt_space_ctx f8 = {256, 256, 7168, 8, 4096, 1, 227 * 1024, 0, 128, 128, 1, 0, 0};
    np = mt_space_enumerate(&sp, &f8, &pts);
    taken = 0;
    for (int i = 0; i < np; i++) {
        const int *v = pts[i].v;
        if (v[7] || !mt_cuda_fp8_wgmma_tile(v[0], v[1], v[2], v[4])) continue;
        taken++;
        for (int g = 0; g < 2; g++)
            CHECK(mt_cuda_fp8_wgmma_smem_bytes(v[0], v[1], v[2], v[5], g) <= mt_cuda_fp8_smem_bytes(v[0], v[1], v[2], v[5], 1),
                  "fp8 %d/%d/%d/%d: the wgmma stages fit where the padded ones do", v[0], v[1], v[2], v[5]);
    }
    CHECK(taken > 0 && taken < np, "some valid block-scaled fp8 tiles take wgmma (%d of %d)", taken, np);
    free(pts);
    mt_cuda_moe_options(&a, 0, 2, "sm_90a", d, o);
    CHECK(!strcmp(o[7], "-DMT_WGMMA=1") && !strcmp(o[9], "-DMT_FP8=2"), "fp8 on sm_90a: wgmma on: %s %s", o[7], o[9]);
}

/* Split-K: only where the tiles that can have work fill at most half of the
 * CTA slots the SMs hold at once, then as many CTAs as fit in one wave (no
 * second, partial wave), never under 4 k tiles per split; off when asked;
 * the workspace holds the slots of every batch size up to the chunk. */
static void splitk_rules(void)
{
    mt_cuda_moe v;
    memset(&v, 0, sizeof v);
    mt_cuda_moe_cfg cfg = {16, 64, 128, 1, 4, 3, 0, 0, 0};
    v.cfg = cfg;
    v.sms = 132;
    v.splitk = 1;
    v.smem_sm = 228 * 1024;
    v.smem1 = v.smem2 = (unsigned)mt_cuda_smem_bytes(16, 64, 128, 3, 1); /* 115 KB: one CTA per SM */
    CHECK(mt_cuda_moe_blocks_per_sm(&v, 1) == 1, "a 115 KB pipeline: one CTA per SM");
    /* DeepSeek-V3 TP8 at M = 1: 8 pairs in 8 row blocks x 4 column tiles */
    int s1 = mt_cuda_moe_splits(&v, 1, 8, 256, 256, 7168);
    CHECK(s1 == 132 / 32, "32 tiles on 132 slots split %d ways (one wave)", s1);
    v.smem1 = 60 * 1024; /* three per SM */
    CHECK(mt_cuda_moe_blocks_per_sm(&v, 1) == 3, "a 60 KB pipeline: three CTAs per SM");
    int s3 = mt_cuda_moe_splits(&v, 1, 8, 256, 256, 7168);
    CHECK(s3 == 396 / 32 && 32 * s3 <= 396, "32 tiles on 396 slots split %d ways", s3);
    v.r1.regs = 255; /* 256 registers a thread: 65,536 / (4 warps x 8,192) = 2 */
    CHECK(mt_cuda_moe_blocks_per_sm(&v, 1) == 2, "255 registers: two 4-warp CTAs per SM");
    v.r1.regs = 0;
    v.smem1 = v.smem2;
    CHECK(mt_cuda_moe_splits(&v, 2, 8, 256, 7168, 256) == 1, "GEMM 2 has 8 x 112 tiles: no split");
    CHECK(mt_cuda_moe_splits(&v, 1, 8, 256, 256, 512) == 1, "4 k tiles: too few to split");
    CHECK(mt_cuda_moe_splits(&v, 1, 4096 * 8, 256, 256, 7168) == 1, "M = 4096: tiles enough");
    CHECK(mt_cuda_moe_tile_n(&v, 2) == 64, "mma.sync: GEMM 2's tile is BLOCK_SIZE_N wide");
    v.wgmma = 1;
    CHECK(mt_cuda_moe_tile_n(&v, 1) == 64 && mt_cuda_moe_tile_n(&v, 2) == 128, "wgmma: GEMM 2's tile twice as wide");
    v.wgmma = 0;
    size_t with = mt_cuda_moe_workspace(&v, 16, 256, 256, 7168, 8);
    CHECK(mt_cuda_splitk_on(), "split-K is on by default");
    setenv("MOETUNE_DEBUG_CUDA", "no-splitk", 1);
    v.splitk = mt_cuda_splitk_on(); /* as mt_cuda_moe_build sets it */
    CHECK(mt_cuda_moe_splits(&v, 1, 8, 256, 256, 7168) == 1, "MOETUNE_DEBUG_CUDA=no-splitk turns it off");
    size_t without = mt_cuda_moe_workspace(&v, 16, 256, 256, 7168, 8);
    unsetenv("MOETUNE_DEBUG_CUDA");
    /* the old per-switch variables are gone from the library */
    setenv("MOETUNE_CUDA_SPLITK", "0", 1);
    CHECK(mt_cuda_splitk_on(), "MOETUNE_CUDA_SPLITK is no longer read");
    unsetenv("MOETUNE_CUDA_SPLITK");
    mt_cuda_switches sw;
    char why[200];
    CHECK(mt_cuda_switches_parse(NULL, &sw, why, sizeof why) == MT_OK && sw.wgmma && sw.splitk && sw.pdl &&
              sw.gemv_prefetch && sw.align_one == 4096,
          "no switches: everything as shipped");
    CHECK(mt_cuda_switches_parse("no-pdl,align-one=0,,no-gemv-prefetch", &sw, why, sizeof why) == MT_OK && sw.wgmma &&
              sw.splitk && !sw.pdl && !sw.gemv_prefetch && sw.align_one == 0,
          "switches parsed");
    CHECK(mt_cuda_switches_parse("no-pdl,nowgmma,align-one=x", &sw, why, sizeof why) == MT_EPARSE && !sw.pdl && sw.wgmma &&
              strstr(why, "'nowgmma' is not a switch"),
          "a word that is not a switch is named: %s", why);
    /* at least the slots of M = 1's GEMM 1: 32 tiles x s1 x 16 x 128 floats */
    CHECK(with >= without + (size_t)32 * (size_t)s1 * 16 * 128 * 4, "split-K slots in the workspace: %zu vs %zu",
          with, without);
}

int main(void)
{
    char err[256], *log = NULL, *bin = NULL;
    options_share();
    wgmma_rules();
    splitk_rules();
    size_t len;
    const char *probe[] = {"-DMT_FP16=0"};
    const mt_cuda_source trivial = {"k.cu", "extern \"C\" __global__ void k() {}", 0, NULL, NULL};
    int rc = mt_nvrtc_compile(&trivial, "sm_90a", probe, 1, &bin, &len, &log, err, sizeof err);
    free(bin);
    free(log);
    if (rc == MT_EUNSUPPORTED) {
        printf("skipped: %s\n", err);
        return 77;
    }
    CHECK(rc == MT_OK, "a trivial kernel: %s", err);

    mt_space sp;
    mt_space_cuda_moe(&sp, 132);
    mt_config sample[32];
    int n = 0;
    int64_t ms[] = {1, 4096};
    /* (its sample includes NUM_SM 0 and 264: the persistent form too) */
    for (int mi = 0; mi < 2; mi++) {
        mt_space_ctx ctx = {8, 7168, 4096, 2, ms[mi], 1, 227 * 1024, 0, 0, 0, 0, 0, 0};
        mt_config *pts;
        int np = mt_space_enumerate(&sp, &ctx, &pts);
        sp.default_config(&sp, &ctx, &sample[n++]);
        /* for every tunable, a valid point at its smallest and at its largest value */
        for (int p = 0; p < sp.nparams; p++) {
            int lo = -1, hi = -1;
            for (int i = 0; i < np; i++) {
                if (lo < 0 || pts[i].v[p] < pts[lo].v[p]) lo = i;
                if (hi < 0 || pts[i].v[p] > pts[hi].v[p]) hi = i;
            }
            if (lo >= 0 && n < 30) sample[n++] = pts[lo];
            if (hi >= 0 && n < 30) sample[n++] = pts[hi];
        }
        free(pts);
    }
    for (int i = 0; i < n; i++) {
        log = NULL;
        rc = compile(&sample[i], "sm_90a", &log);
        CHECK(rc == MT_OK, "variant %d/%d/%d/%d/%d/%d fails to compile: %.300s", sample[i].v[0], sample[i].v[1],
              sample[i].v[2], sample[i].v[3], sample[i].v[4], sample[i].v[5], log ? log : "");
        free(log);
    }
    log = NULL;
    CHECK(compile(&sample[0], "sm_80", &log) == MT_OK, "the default config for sm_80: %.300s", log ? log : "");
    free(log);
    /* fp8: the same extremes with per-tensor/channel scales and with block
     * scales (whose BLOCK_SIZE_K divides the 128-deep scale block), for
     * Hopper and for Ada */
    for (int i = 0; i < n; i++)
        for (int f8 = 1; f8 <= 2; f8++) {
            if ((f8 == 2 && 128 % sample[i].v[2]) || (i % 2 && i != n - 1)) continue; /* half of them: the time */
            log = NULL;
            rc = compile_fp8(&sample[i], i % 4 == 3 ? "sm_89" : "sm_90a", f8, &log);
            CHECK(rc == MT_OK, "fp8 (%d) variant %d/%d/%d/%d/%d/%d fails to compile: %.300s", f8, sample[i].v[0],
                  sample[i].v[1], sample[i].v[2], sample[i].v[3], sample[i].v[4], sample[i].v[5], log ? log : "");
            free(log);
        }
    /* fp8's warpgroup-MMA tiles, both schemes, at the extremes of their
     * rule: one and two warpgroups, 16 to 64 columns each, k tiles of 128
     * and 256 (per tensor; a block scale is 128 deep) */
    static const mt_config wg8[] = {{{64, 64, 128, 1, 4, 3, 0, 0}}, {{128, 64, 128, 1, 8, 2, 132, 0}},
                                    {{64, 128, 128, 1, 8, 4, 0, 0}}, {{64, 32, 128, 1, 8, 3, 0, 0}},
                                    {{64, 128, 256, 1, 8, 2, 0, 0}}};
    for (size_t i = 0; i < sizeof wg8 / sizeof wg8[0]; i++)
        for (int f8 = 1; f8 <= 2; f8++) {
            const int *v = wg8[i].v;
            if (!mt_cuda_fp8_wgmma_tile(v[0], v[1], v[2], v[4]) || (f8 == 2 && v[2] != 128)) continue;
            log = NULL;
            rc = compile_fp8(&wg8[i], "sm_90a", f8, &log);
            CHECK(rc == MT_OK, "fp8 (%d) wgmma tile %d/%d/%d w%d s%d fails to compile: %.300s", f8, v[0], v[1], v[2], v[4],
                  v[5], log ? log : "");
            free(log);
        }
    char why[200] = "";
    CHECK(mt_cuda_fp8_arch("sm_90a", NULL, 0) && mt_cuda_fp8_arch("sm_89", NULL, 0) && mt_cuda_fp8_arch("sm_100a", NULL, 0) &&
              !mt_cuda_fp8_arch("sm_80", why, sizeof why) && strstr(why, "no fp8 tensor cores"),
          "fp8 from sm_89 on: %s", why);
    /* a tile the static assertions forbid: 24 rows are not whole MMA tiles */
    mt_config bad = {{24, 64, 64, 1, 4, 3, 0}};
    log = NULL;
    CHECK(compile(&bad, "sm_90a", &log) == MT_EPARSE, "BLOCK_SIZE_M=24 must not compile");
    CHECK(log && strstr(log, "MMA tiles"), "the log names the violated assertion: %.200s", log ? log : "(none)");
    free(log);
    /* the attention kernels: every head_dim and dtype, groups from MHA to a
     * wide GQA (16: two passes of 8 heads' sums), short and long partitions,
     * few and many warps; 96 and 32 leave lanes idle or pack 8 tokens */
    int heads[] = {64, 128, 256, 96, 32}, groups[] = {1, 16}, partitions[] = {16, 2048}, warps[] = {2, 8}, na = 0;
    for (int h = 0; h < 5; h++)
        for (int g = 0; g < 2; g++)
            for (int pi = 0; pi < 2; pi++) {
                /* the tensor-core path for the head dims it takes (multiples
                 * of 64); staged copies with either path */
                mt_cuda_attn_cfg ac = {heads[h], 16, groups[g], (h + g) & 1, partitions[pi], warps[(h + pi) & 1],
                                       h < 3 && pi == 0, (h + g + pi) & 1, 1};
                rc = compile_attn(&ac, &log);
                CHECK(rc == MT_OK, "attention head_dim %d group %d partition %d mma %d stage %d: %.300s", ac.head_dim,
                      ac.group, ac.partition, ac.mma, ac.stage, log ? log : "");
                free(log);
                na++;
            }
    /* the one-pass ring (stage >= 2, tensor-core path only): every head dim
     * it takes, MHA to a group of 16, depths 2 and 4, bf16 and fp16; the
     * group of 16 also over 4 blocks per KV head (query_split) */
    for (int h = 0; h < 3; h++)
        for (int g = 0; g < 2; g++) {
            mt_cuda_attn_cfg ac = {heads[h], 32, groups[g], g, 512, warps[(h + g) & 1], 1, 2 + 2 * ((h + g) & 1), g ? 4 : 1};
            rc = compile_attn(&ac, &log);
            CHECK(rc == MT_OK, "attention ring head_dim %d group %d stage %d: %.300s", ac.head_dim, ac.group, ac.stage,
                  log ? log : "");
            free(log);
            na++;
        }
    /* a ring without the tensor-core path: refused by the source's own assertion */
    mt_cuda_attn_cfg ring_fma = {128, 16, 4, 0, 512, 4, 0, 2, 1};
    rc = compile_attn(&ring_fma, &log);
    CHECK(rc == MT_EPARSE && log && strstr(log, "tensor-core path"), "a ring without mma: rc %d, %.200s", rc,
          log ? log : "(no log)");
    free(log);
    /* a partition that is not whole pages is refused by the source itself */
    mt_cuda_attn_cfg bad_a = {128, 16, 4, 0, 24, 4, 0, 0, 1};
    rc = compile_attn(&bad_a, &log);
    CHECK(rc == MT_EPARSE && log && strstr(log, "whole pages"), "partition 24 of pages of 16 must not compile");
    free(log);
    printf("compiled %d sampled variants and %d attention variants\n", n, na);
    return check_report("test_nvrtc");
}
