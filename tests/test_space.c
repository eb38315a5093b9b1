/* The parameter spaces: constraints, defaults, grid order and JSON. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "moetune/moetune.h"
#include "attn.h"
#include "attn_launch.h"
#include "moe_launch.h" /* the kernel's rules the space follows */
#include "space.h"
#include "vllm.h"

static void test_cpu_space(void)
{
    mt_space sp;
    mt_space_cpu_moe(&sp, 2);
    CHECK(sp.nparams == 4, "cpu space has %d params", sp.nparams);
    CHECK(sp.params[3].nvalues == 2 && sp.params[3].values[1] == 2, "threads 1 and 2");
    int64_t ms[] = {1, 2, 7, 64, 4096};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        mt_space_ctx ctx = {8, 256, 512, 2, ms[i], 2, 0, 0, 0, 0, 0, 0, 0};
        mt_config *pts, def;
        char why[128];
        int n = mt_space_enumerate(&sp, &ctx, &pts);
        sp.default_config(&sp, &ctx, &def);
        CHECK(n > 0, "M=%lld: no valid point", (long long)ms[i]);
        CHECK(sp.valid(&sp, &def, &ctx, why, sizeof why), "M=%lld: the default is invalid: %s", (long long)ms[i], why);
        int found = 0;
        for (int k = 0; k < n; k++) {
            CHECK(sp.valid(&sp, &pts[k], &ctx, why, sizeof why), "enumerated an invalid point");
            found |= memcmp(&pts[k], &def, sizeof def) == 0;
        }
        CHECK(found, "M=%lld: the default is not among the enumerated points", (long long)ms[i]);
        /* the constraints prune: M=1 top-2 makes 2 pairs, so block_m stays at 4 */
        if (ms[i] == 1)
            for (int k = 0; k < n; k++) CHECK(pts[k].v[0] <= 4, "block_m %d kept for 2 pairs", pts[k].v[0]);
        int *order = malloc((size_t)n * sizeof *order);
        int cnt = mt_grid_order(pts, n, &def, sp.nparams, 5, order);
        CHECK(cnt == 5 || (n < 5 && cnt == n), "budget 5 gave %d", cnt);
        CHECK(memcmp(&pts[order[0]], &def, sizeof def) == 0, "the default goes first");
        for (int a = 0; a < cnt; a++)
            for (int b = a + 1; b < cnt; b++) CHECK(order[a] != order[b], "point %d chosen twice", order[a]);
        cnt = mt_grid_order(pts, n, &def, sp.nparams, 0, order);
        CHECK(cnt == n, "no budget: all %d points, got %d", n, cnt);
        free(order);
        free(pts);
    }
    mt_config c = {{16, 32, 256, 2}}, back;
    char js[256];
    CHECK(mt_config_to_json(&sp, &c, js, sizeof js) == MT_OK, "to json");
    CHECK(strcmp(js, "{\"block_m\":16,\"block_n\":32,\"block_k\":256,\"threads\":2}") == 0, "json %s", js);
    CHECK(mt_config_from_json(&sp, "{\"threads\":2,\"block_k\":256,\"block_n\":32,\"block_m\":16}", &back) == MT_OK &&
              memcmp(&back, &c, sizeof c) == 0, "key order does not matter when reading");
    CHECK(mt_config_from_json(&sp, "{\"block_m\":16}", &back) == MT_EPARSE, "missing parameters are refused");
}

/* ROCm's space against vLLM's shipped AMD files: the same keys in the same
 * order, and every entry that holds all of them is a point of the space
 * (num_stages aside: older files hold 0 and 1, which import unchanged) */
static void test_rocm_corpus(const mt_space *sp)
{
    const char *shared = getenv("MT_SHARED");
    if (!shared) {
        CHECK(0, "MT_SHARED is not set: the AMD corpus files are needed");
        return;
    }
    const char *files[] = {"E=8,N=7168,device_name=AMD_Instinct_MI300X.json", "E=8,N=7168,device_name=AMD_Instinct_MI325X.json",
                           "E=72,N=192,device_name=AMD_Instinct_MI300X.json",
                           "E=256,N=1024,device_name=AMD_Instinct_MI325X,block_shape=[128,128].json"};
    int entries = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/data/vllm-configs/%s", shared, files[f]);
        FILE *fp = fopen(path, "rb");
        CHECK(fp != NULL, "cannot read %s", path);
        if (!fp) continue;
        static char text[1 << 20];
        size_t n = fread(text, 1, sizeof text - 1, fp);
        fclose(fp);
        text[n] = 0;
        cJSON *root = cJSON_Parse(text), *e;
        CHECK(root != NULL, "%s parses", files[f]);
        cJSON_ArrayForEach(e, root)
        {
            if (!cJSON_IsObject(e)) continue;
            int i = 0;
            const cJSON *k;
            cJSON_ArrayForEach(k, e)
            {
                CHECK(i < sp->nparams && strcmp(k->string, sp->params[i].name) == 0,
                      "%s M=%s: key %d is %s, the space's %s", files[f], e->string, i, k->string,
                      i < sp->nparams ? sp->params[i].name : "(none)");
                i++;
            }
            char *json = cJSON_PrintUnformatted(e);
            mt_config c;
            CHECK(json && mt_config_from_json(sp, json, &c) == MT_OK, "%s M=%s reads into the space", files[f], e->string);
            for (int p = 0; p < sp->nparams; p++) {
                if (p == 5) continue;
                int found = 0;
                for (int v = 0; v < sp->params[p].nvalues; v++) found |= sp->params[p].values[v] == c.v[p];
                CHECK(found, "%s M=%s: %s=%d is not a declared value", files[f], e->string, sp->params[p].name, c.v[p]);
            }
            free(json);
            entries++;
        }
        cJSON_Delete(root);
    }
    CHECK(entries >= 60, "only %d entries read", entries);
}

static void test_vllm_space(void)
{
    mt_space sp;
    mt_space_vllm_moe(&sp, 0);
    size_t total = 1;
    for (int i = 0; i < sp.nparams; i++) total *= (size_t)sp.params[i].nvalues;
    CHECK(total == 1920, "vLLM's grid has 1,920 points, ours %zu", total);
    /* the default heuristic, from VLLM-FORMAT.md */
    struct { int64_t M, E; int bm, bn, bk, g, w, s; } cases[] = {
        {1, 8, 16, 64, 128, 1, 4, 4},   {32, 8, 16, 64, 128, 1, 4, 4},  {64, 8, 32, 64, 128, 1, 4, 3},
        {96, 8, 32, 128, 64, 1, 4, 3},  {256, 8, 64, 128, 64, 1, 8, 3}, {1024, 8, 128, 128, 64, 1, 8, 3},
        {4096, 8, 128, 128, 64, 16, 8, 3}, {4096, 128, 128, 128, 64, 1, 8, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mt_space_ctx ctx = {cases[i].E, 1024, 4096, 2, cases[i].M, 1, 0, 0, 0, 0, 0, 0, 0};
        mt_config d;
        sp.default_config(&sp, &ctx, &d);
        CHECK(d.v[0] == cases[i].bm && d.v[1] == cases[i].bn && d.v[2] == cases[i].bk && d.v[3] == cases[i].g &&
                  d.v[4] == cases[i].w && d.v[5] == cases[i].s,
              "M=%lld E=%lld: default %d/%d/%d/%d/%d/%d", (long long)cases[i].M, (long long)cases[i].E, d.v[0], d.v[1],
              d.v[2], d.v[3], d.v[4], d.v[5]);
    }
    mt_space_vllm_moe(&sp, 1);
    mt_space_ctx ctx = {8, 1024, 4096, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    mt_config d;
    sp.default_config(&sp, &ctx, &d);
    CHECK(d.v[5] == 2, "ROCm's default num_stages is 2, got %d", d.v[5]);
    CHECK(d.v[6] == 0 && d.v[7] == 16 && d.v[8] == 1, "ROCm's default AMD keys: %d/%d/%d", d.v[6], d.v[7], d.v[8]);
    test_rocm_corpus(&sp);
}

/* The HIP space: our kernels' seven keys, then ROCm's three; its configs,
 * with the keys vLLM passes to its kernel kept (NUM_SM dropped, as the
 * exporter does), come out in the key order of vLLM's AMD files; the
 * default is valid within an AMD GPU's 64 KB of LDS; only waves_per_eu of
 * the AMD keys is searched. */
static void test_hip_space(void)
{
    mt_space sp;
    mt_space_hip_moe(&sp, 304);
    static const char *const rocm_keys[] = {"BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps",
                                            "num_stages", "waves_per_eu", "matrix_instr_nonkdim", "kpack"};
    CHECK(sp.nparams == 10 && !strcmp(sp.backend, "hip"), "10 keys on hip, got %d on %s", sp.nparams, sp.backend);
    CHECK(!strcmp(sp.params[6].name, "NUM_SM") && sp.params[6].values[1] == 304 && sp.params[6].values[2] == 608,
          "NUM_SM 0, 304, 608 on an MI300X");
    CHECK(sp.params[7].nvalues == 4 && sp.params[8].nvalues == 1 && sp.params[8].values[0] == 16 &&
              sp.params[9].nvalues == 1 && sp.params[9].values[0] == 1,
          "waves_per_eu searched, matrix_instr_nonkdim 16 and kpack 1 fixed");
    int64_t ms[] = {1, 16, 64, 256, 1024, 4096};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        mt_space_ctx ctx = {8, 14336, 4096, 2, ms[i], 304, 64 * 1024, 0, 0, 0, 0, 0, 0};
        mt_config d;
        char why[128] = "", json[512];
        sp.default_config(&sp, &ctx, &d);
        CHECK(sp.valid(&sp, &d, &ctx, why, sizeof why), "M=%lld: the HIP default is invalid: %s", (long long)ms[i], why);
        CHECK(d.v[5] == 2 && d.v[6] == 0 && d.v[7] == 0 && d.v[8] == 16 && d.v[9] == 1,
              "M=%lld: ROCm's defaults, got stages %d NUM_SM %d waves %d nonkdim %d kpack %d", (long long)ms[i], d.v[5],
              d.v[6], d.v[7], d.v[8], d.v[9]);
        CHECK(mt_config_to_json(&sp, &d, json, sizeof json) == MT_OK, "to JSON");
        cJSON *o = cJSON_Parse(json);
        const cJSON *k;
        size_t n = 0;
        cJSON_ArrayForEach(k, o)
        {
            if (!mt_vllm_is_kernel_key(k->string)) continue;
            CHECK(n < 9 && !strcmp(k->string, rocm_keys[n]), "M=%lld: kernel key %zu is %s, vLLM's AMD files have %s",
                  (long long)ms[i], n, k->string, n < 9 ? rocm_keys[n] : "none");
            n++;
        }
        CHECK(n == 9, "nine kernel keys, got %zu", n);
        cJSON_Delete(o);
    }
    /* every point fits the LDS */
    mt_space_ctx big = {8, 14336, 4096, 2, 4096, 304, 64 * 1024, 0, 0, 0, 0, 0, 0};
    mt_config *pts;
    int n = mt_space_enumerate(&sp, &big, &pts);
    CHECK(n > 100, "%d points", n);
    for (int i = 0; i < n; i++)
        CHECK(mt_cuda_smem_bytes(pts[i].v[0], pts[i].v[1], pts[i].v[2], pts[i].v[5], 1) <= 64 * 1024,
              "point %d overflows the LDS", i);
    free(pts);
}

/* vLLM's default config is always measured, so it must be a valid point of
 * our CUDA kernels' space for every batch size and the shapes we tune. */
static void test_vllm_default_valid(void)
{
    mt_space sp;
    mt_space_vllm_moe(&sp, 0);
    int64_t shapes[][4] = {{8, 14336, 4096, 2}, {8, 7168, 4096, 2}, {128, 768, 2048, 8}, {256, 256, 7168, 8}};
    int64_t ms[] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 1536, 2048, 3072, 4096};
    for (size_t s = 0; s < 4; s++)
        for (size_t i = 0; i < 18; i++) {
            mt_space_ctx ctx = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], ms[i], 1, 227 * 1024, 0, 0, 0, 0, 0, 0};
            mt_config d;
            char why[128] = "";
            sp.default_config(&sp, &ctx, &d);
            CHECK(sp.valid(&sp, &d, &ctx, why, sizeof why), "E=%lld M=%lld: vLLM's default is invalid: %s",
                  (long long)shapes[s][0], (long long)ms[i], why);
        }
    mt_space_ctx big = {8, 7168, 4096, 2, 4096, 1, 227 * 1024, 0, 0, 0, 0, 0, 0};
    mt_config *pts;
    int n = mt_space_enumerate(&sp, &big, &pts);
    CHECK(n > 300 && n < 1920, "the constraints keep %d of 1,920 points", n);
    for (int i = 0; i < n; i++) {
        int wm = mt_cuda_warps_m(pts[i].v[0], pts[i].v[1], pts[i].v[4]);
        CHECK(wm > 0 && pts[i].v[0] % (16 * wm) == 0 && pts[i].v[1] % (8 * (pts[i].v[4] / wm)) == 0,
              "point %d has no warp layout", i);
        CHECK(mt_cuda_smem_bytes(pts[i].v[0], pts[i].v[1], pts[i].v[2], pts[i].v[5], 1) <= 227 * 1024,
              "point %d overflows shared memory", i);
    }
    free(pts);
    mt_space cs;
    mt_space_cuda_moe(&cs, 132);
    CHECK(cs.nparams == 8 && !strcmp(cs.params[6].name, "NUM_SM") && cs.params[6].values[1] == 132 &&
              cs.params[6].values[2] == 264, "NUM_SM 0, 132, 264 on an H100");
    CHECK(!strcmp(cs.params[7].name, "GEMV") && cs.params[7].nvalues == 2, "GEMV 0 or 1");
    mt_config cd;
    cs.default_config(&cs, &big, &cd);
    CHECK(cd.v[6] == 0 && cd.v[7] == 0, "the default is not persistent and tiled");
    /* the GEMV path: one tile per (BLOCK_SIZE_N, num_warps), where experts
     * hold at most two pairs each (Qwen3-30B-A3B: 128 experts, top-8) */
    mt_space_ctx q1 = {128, 768, 2048, 8, 1, 0, 227 * 1024, 0, 0, 0, 0, 0, 0}, q64 = q1, q32 = q1, wide = q1;
    q32.M = 32, q64.M = 64, wide.topk = MT_CUDA_GEMV_MAX_TOPK + 1, wide.E = 1024;
    mt_config gv = {{16, 64, 64, 1, 4, 2, 0, 1}}, gv_bm = gv, gv_st = gv, gv_sm = gv;
    gv_bm.v[0] = 32, gv_st.v[5] = 3, gv_sm.v[6] = 132;
    char gwhy[256];
    CHECK(cs.valid(&cs, &gv, &q1, gwhy, sizeof gwhy), "GEMV at M = 1: %s", gwhy);
    CHECK(cs.valid(&cs, &gv, &q32, gwhy, sizeof gwhy), "GEMV at M = 32 (256 pairs on 128 experts): %s", gwhy);
    CHECK(!cs.valid(&cs, &gv, &q64, gwhy, sizeof gwhy) && strstr(gwhy, "pairs"), "GEMV at M = 64: %s", gwhy);
    CHECK(!cs.valid(&cs, &gv, &wide, gwhy, sizeof gwhy) && strstr(gwhy, "topk"), "GEMV at topk 65: %s", gwhy);
    CHECK(!cs.valid(&cs, &gv_bm, &q1, gwhy, sizeof gwhy) && !cs.valid(&cs, &gv_st, &q1, gwhy, sizeof gwhy) &&
              !cs.valid(&cs, &gv_sm, &q1, gwhy, sizeof gwhy) && strstr(gwhy, "GEMV"),
          "GEMV takes one tile per width: %s", gwhy);
    mt_config *gpts;
    int ng = mt_space_enumerate(&cs, &q1, &gpts), ngemv = 0, nbn[4] = {0};
    for (int i = 0; i < ng; i++)
        if (gpts[i].v[7]) {
            ngemv++;
            for (int b = 0; b < 4; b++) nbn[b] += gpts[i].v[1] == 32 << b;
        }
    /* 4 widths x 2 warp counts, less 32 columns on 8 warps (no layout of
     * the binary's tile) */
    CHECK(ngemv == 7 && nbn[0] == 1 && nbn[3] == 2, "%d GEMV points at M = 1 (%d of width 32)", ngemv, nbn[0]);
    free(gpts);
    ng = mt_space_enumerate(&cs, &q64, &gpts);
    ngemv = 0;
    for (int i = 0; i < ng; i++) ngemv += gpts[i].v[7];
    CHECK(ngemv == 0, "%d GEMV points at M = 64", ngemv);
    free(gpts);
    /* the GEMV path's representative is proposed early where it is valid */
    mt_config seed[2];
    CHECK(mt_space_seeds(&cs, &q1, seed, 2) == 1 && seed[0].v[7] == 1 && cs.valid(&cs, &seed[0], &q1, gwhy, sizeof gwhy),
          "a GEMV seed at M = 1");
    CHECK(mt_space_seeds(&cs, &q64, seed, 2) == 0, "no GEMV seed at M = 64");
    mt_space tiled = cs;
    CHECK(mt_space_fix(&tiled, "GEMV=0", gwhy, sizeof gwhy) == MT_OK && mt_space_seeds(&tiled, &q1, seed, 2) == 0,
          "no GEMV seed once --only GEMV=0");
    CHECK(mt_space_fix(&tiled, "GEMV=2", gwhy, sizeof gwhy) == MT_EINVAL && strstr(gwhy, "the values are 0"),
          "GEMV=2 refused: %s", gwhy);
    mt_space cpu;
    mt_space_cpu_moe(&cpu, 8);
    CHECK(mt_space_seeds(&cpu, &q1, seed, 2) == 0, "the CPU space has one path");
    /* the launcher's cfg: the CUDA space's GEMV moves past waves_per_eu,
     * the HIP space's waves_per_eu stays */
    mt_cuda_moe_cfg lc;
    int hv[MT_SPACE_MAX_PARAMS] = {16, 64, 64, 1, 4, 2, 0, 2, 16, 1};
    mt_cuda_moe_cfg_from_space(gv.v, 0, &lc);
    CHECK(lc.waves_per_eu == 0 && lc.gemv == 1 && lc.block_n == 64, "CUDA: waves %d, GEMV %d", lc.waves_per_eu, lc.gemv);
    mt_cuda_moe_cfg_from_space(hv, 1, &lc);
    CHECK(lc.waves_per_eu == 2 && lc.gemv == 0 && lc.block_m == 16 && lc.stages == 2, "HIP: waves %d, GEMV %d",
          lc.waves_per_eu, lc.gemv);
    CHECK(mt_cuda_warps_m(16, 64, 4) == 1, "16x64 with 4 warps: one warp row");
    CHECK(mt_cuda_warps_m(128, 128, 8) == 2, "128x128 with 8 warps: 2 rows of 4");
    CHECK(mt_cuda_warps_m(16, 16, 8) == 0, "16x16 cannot feed 8 warps");
}

/* Attention: every CPU point is one the kernel takes, none runs as another,
 * the defaults are valid; the CUDA points fit in shared memory and only one
 * partition covers a short context. */
static void test_attn_spaces(void)
{
    mt_space sp;
    mt_space_cpu_attn(&sp, 2);
    int64_t ctxs[] = {1, 100, 2048, 9000}, bs[] = {1, 32};
    for (int ci = 0; ci < 4; ci++)
        for (int bi = 0; bi < 2; bi++) {
            mt_space_ctx x = {32, 8, 128, 16, bs[bi], 2, 0, ctxs[ci], 0, 0, 0, 0, 0};
            mt_config *pts, def;
            int n = mt_space_enumerate(&sp, &x, &pts);
            CHECK(n > 0, "ctx %lld: %d points", (long long)ctxs[ci], n);
            sp.default_config(&sp, &x, &def);
            char why[256];
            CHECK(sp.valid(&sp, &def, &x, why, sizeof why), "CPU default invalid at ctx %lld: %s", (long long)ctxs[ci], why);
            for (int i = 0; i < n; i++) {
                int part = pts[i].v[0], ppi = pts[i].v[1];
                CHECK(part % 16 == 0 && (part == 0 || part < ctxs[ci]), "partition %d at ctx %lld", part, (long long)ctxs[ci]);
                int64_t span = part ? part : ctxs[ci];
                CHECK(ppi == 1 || (ppi / 2) * 16 < span, "step of %d pages over a span of %lld", ppi, (long long)span);
                /* the kernel's own check agrees */
                mt_attn_shape sh = {32, 8, 128, 16, MT_DTYPE_BF16};
                int32_t len = (int32_t)ctxs[ci], *bt = calloc((size_t)(ctxs[ci] + 15) / 16, sizeof *bt);
                uint16_t dummy[1];
                mt_attn_batch b = {1, (ctxs[ci] + 15) / 16, 1, dummy, dummy, dummy, bt, &len, 0};
                mt_attn_cpu_params p = {part, ppi, pts[i].v[2]};
                char kw[256] = "";
                CHECK(mt_attn_check(&sh, &b, &p, 2, kw, sizeof kw) == MT_OK, "the kernel refuses %d/%d/%d: %s", part, ppi,
                      p.threads, kw);
                free(bt);
            }
            free(pts);
        }
    mt_space_cuda_attn(&sp);
    for (int ci = 0; ci < 4; ci++) {
        mt_space_ctx x = {64, 8, 128, 16, 8, 1, 227 * 1024, ctxs[ci], 0, 0, 0, 0, 0};
        mt_config *pts, def;
        int n = mt_space_enumerate(&sp, &x, &pts), covering = 0, staged = 0, rings = 0;
        char why[256];
        sp.default_config(&sp, &x, &def);
        CHECK(n > 0 && sp.valid(&sp, &def, &x, why, sizeof why), "CUDA ctx %lld: %d points, default %s", (long long)ctxs[ci],
              n, why);
        for (int i = 0; i < n; i++) {
            mt_cuda_attn_cfg cfg = {128, 16, 8, 0, pts[i].v[0], pts[i].v[1], pts[i].v[2], pts[i].v[3], pts[i].v[4]};
            CHECK(mt_cuda_attn_smem(&cfg) <= 227 * 1024, "partition %d stage %d: %u bytes", pts[i].v[0], pts[i].v[3],
                  mt_cuda_attn_smem(&cfg));
            covering += pts[i].v[0] >= ctxs[ci] && pts[i].v[1] == 4 && pts[i].v[2] == 0 && pts[i].v[3] == 0;
            staged += pts[i].v[3] == 1;
            rings += pts[i].v[3] >= 2;
            /* staged K and V (2 x 2 bytes x partition x head_dim) stop at 256 tokens of 128 dims */
            CHECK(pts[i].v[3] != 1 || pts[i].v[0] <= 256, "staged partition %d of 128 dims kept", pts[i].v[0]);
            /* a ring is the tensor-core path's, and never deeper than the warp's chunks need */
            CHECK(pts[i].v[3] < 2 || pts[i].v[2] == 1, "ring %d without mma", pts[i].v[3]);
            int64_t span = pts[i].v[0] < ctxs[ci] ? pts[i].v[0] : ctxs[ci];
            CHECK(pts[i].v[3] <= 2 || (pts[i].v[3] - 1) * pts[i].v[1] * MT_CUDA_ATTN_RING_TOKENS < span,
                  "ring %d of %d warps over %lld tokens",
                  pts[i].v[3], pts[i].v[1], (long long)span);
        }
        CHECK(rings > 0, "ctx %lld: no ring variant", (long long)ctxs[ci]);
        CHECK(covering <= 1, "ctx %lld: %d covering partitions with 4 warps", (long long)ctxs[ci], covering);
        CHECK(staged > 0, "ctx %lld: no staged variant", (long long)ctxs[ci]);
        free(pts);
    }
    /* the default is the runtime's without a file (mt_cuda_attn_default):
     * the ring sized by batch x KV heads, where it is a point of the space;
     * else two passes of FMA */
    {
        struct {
            mt_space_ctx x;
            int part, warps, mma, stage;
        } dc[] = {
            {{64, 8, 128, 16, 8, 1, 227 * 1024, 2048, 0, 0, 0, 0, 0}, 512, 4, 1, 2},   /* 64 streams: 2048 x 64 / 264 -> 512 */
            {{64, 8, 128, 16, 32, 1, 227 * 1024, 2048, 0, 0, 0, 0, 0}, 2048, 2, 1, 2}, /* 256 streams: one partition */
            {{8, 1, 256, 16, 1, 1, 227 * 1024, 8192, 0, 0, 0, 0, 0}, 64, 4, 1, 2},     /* 1 stream */
            {{32, 8, 96, 16, 8, 1, 227 * 1024, 2048, 0, 0, 0, 0, 0}, 512, 4, 0, 0},    /* head_dim 96: no MMA path */
            {{8, 1, 256, 16, 1, 1, 100 * 1024, 8192, 0, 0, 0, 0, 0}, 512, 4, 0, 0},    /* 4 warps' ring of 256 dims: 128 KB */
        };
        for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++) {
            mt_config d, *pts;
            char w[256] = "";
            sp.default_config(&sp, &dc[i].x, &d);
            CHECK(d.v[0] == dc[i].part && d.v[1] == dc[i].warps && d.v[2] == dc[i].mma && d.v[3] == dc[i].stage && d.v[4] == 1,
                  "CUDA attention default %zu: %d/%d/%d/%d/%d", i, d.v[0], d.v[1], d.v[2], d.v[3], d.v[4]);
            CHECK(sp.valid(&sp, &d, &dc[i].x, w, sizeof w), "CUDA attention default %zu invalid: %s", i, w);
            int n = mt_space_enumerate(&sp, &dc[i].x, &pts), found = 0;
            for (int j = 0; j < n; j++) found += !memcmp(&pts[j], &d, sizeof d);
            CHECK(found == 1, "CUDA attention default %zu: among the points %d times", i, found);
            free(pts);
        }
    }
    /* the tensor-core path only where its tiles fit: head_dim % 64, groups of
     * at most 16 */
    mt_space_ctx d96 = {32, 8, 96, 16, 8, 1, 227 * 1024, 2048, 0, 0, 0, 0, 0}, g32 = {64, 2, 128, 16, 8, 1, 227 * 1024, 2048, 0, 0, 0, 0, 0},
                 d128 = {64, 8, 128, 16, 8, 1, 227 * 1024, 2048, 0, 0, 0, 0, 0};
    mt_config tc = {{512, 4, 1}};
    char why2[256] = "";
    CHECK(!sp.valid(&sp, &tc, &d96, why2, sizeof why2) && strstr(why2, "mma"), "head_dim 96 with mma: %s", why2);
    CHECK(!sp.valid(&sp, &tc, &g32, why2, sizeof why2) && strstr(why2, "mma"), "group 32 with mma: %s", why2);
    CHECK(sp.valid(&sp, &tc, &d128, why2, sizeof why2), "head_dim 128, group 8 with mma: %s", why2);
    /* one partition per sequence at 8192 tokens: the ring's (its shared
     * memory does not grow with the partition), not the two-pass kernel's
     * (its scores for 8 heads x 8192 tokens are 256 KB), and no longer
     * a choice where 4096 or less already covers the context */
    mt_space_ctx c8k = {64, 8, 128, 16, 32, 1, 227 * 1024, 8192, 0, 0, 0, 0, 0}, c2k = c8k;
    c2k.ctx = 2048;
    mt_config ring8k = {{8192, 2, 1, 2}}, two8k = {{8192, 4, 1, 0}};
    CHECK(sp.valid(&sp, &ring8k, &c8k, why2, sizeof why2), "ring with partition 8192 at ctx 8192: %s", why2);
    CHECK(!sp.valid(&sp, &two8k, &c8k, why2, sizeof why2) && strstr(why2, "shared memory"), "two-pass 8192: %s", why2);
    CHECK(!sp.valid(&sp, &ring8k, &c2k, why2, sizeof why2) && strstr(why2, "covers"), "8192 at ctx 2048: %s", why2);
    {
        mt_config *pts;
        int n = mt_space_enumerate(&sp, &c8k, &pts), whole = 0, whole_two_pass = 0;
        for (int i = 0; i < n; i++) {
            whole += pts[i].v[0] == 8192;
            whole_two_pass += pts[i].v[0] == 8192 && pts[i].v[3] < 2;
        }
        CHECK(whole > 0 && !whole_two_pass, "ctx 8192: %d points of partition 8192, %d not a ring", whole, whole_two_pass);
        free(pts);
    }
    /* a big group and long partitions do not fit: pruned by shared memory */
    mt_space_ctx wide = {64, 1, 256, 16, 1, 1, 100 * 1024, 100000, 0, 0, 0, 0, 0};
    mt_config big = {{4096, 4}};
    char why[256];
    CHECK(!sp.valid(&sp, &big, &wide, why, sizeof why) && strstr(why, "shared memory"), "%s", why);
    /* staging takes K and V of the partition on top: 128 tokens of 256 dims
     * fit 227 KB unstaged and staged, 512 only unstaged */
    mt_space_ctx d256 = {8, 1, 256, 16, 8, 1, 227 * 1024, 100000, 0, 0, 0, 0, 0};
    mt_config s128 = {{128, 4, 0, 1}}, s512 = {{512, 4, 0, 1}}, u512 = {{512, 4, 0, 0}};
    CHECK(sp.valid(&sp, &s128, &d256, why, sizeof why), "staged 128 x 256: %s", why);
    CHECK(!sp.valid(&sp, &s512, &d256, why, sizeof why) && strstr(why, "shared memory"), "staged 512 x 256: %s", why);
    CHECK(sp.valid(&sp, &u512, &d256, why, sizeof why), "unstaged 512 x 256: %s", why);
    mt_cuda_attn_cfg c0 = {256, 16, 8, 0, 512, 4, 0, 0, 1}, c1 = c0;
    c1.stage = 1;
    CHECK(mt_cuda_attn_smem(&c1) >= mt_cuda_attn_smem(&c0) + 4u * 512 * 256 && mt_cuda_attn_smem(&c1) % 16 == 0,
          "staged smem %u against %u", mt_cuda_attn_smem(&c1), mt_cuda_attn_smem(&c0));
    /* a ring's shared memory does not grow with the partition: the scores
     * stay in registers, K and V take [warps][stage][2][RING_TOKENS][head_dim] */
    mt_cuda_attn_cfg r3 = {256, 16, 8, 0, 4096, 4, 1, 3, 1}, r3s = r3;
    r3s.partition = 512;
    unsigned ring_bytes = 4u * 3 * 2 * MT_CUDA_ATTN_RING_TOKENS * 256 * 2;
    CHECK(mt_cuda_attn_smem(&r3) - mt_cuda_attn_smem(&r3s) == 4u * (4096 - 512) / 16 && mt_cuda_attn_smem(&r3) > ring_bytes &&
              mt_cuda_attn_smem(&r3) < ring_bytes + 4u * (8 * 256 + 4 * 16 + 16 + 4096 / 16 + 4),
          "ring smem %u (partition 4096), %u (512)", mt_cuda_attn_smem(&r3), mt_cuda_attn_smem(&r3s));
    mt_config ring_nomma = {{512, 4, 0, 2}}, ring_deep = {{64, 4, 1, 4}}, ring_ok = {{512, 2, 1, 4}};
    CHECK(!sp.valid(&sp, &ring_nomma, &d128, why, sizeof why) && strstr(why, "mma"), "ring without mma: %s", why);
    CHECK(!sp.valid(&sp, &ring_deep, &d128, why, sizeof why) && strstr(why, "ring"), "ring 4 over 64 tokens: %s", why);
    CHECK(sp.valid(&sp, &ring_ok, &d128, why, sizeof why), "ring 4 over 512 tokens: %s", why);
    /* query_split: the ring's variants, where it divides the group; a
     * block's share of the group takes less shared memory */
    mt_config split2 = {{512, 2, 1, 2, 2}}, split4 = {{512, 2, 1, 2, 4}}, split_staged = {{128, 4, 1, 1, 2}};
    mt_space_ctx g2 = {16, 8, 128, 16, 8, 1, 227 * 1024, 100000, 0, 0, 0, 0, 0};
    CHECK(sp.valid(&sp, &split2, &d128, why, sizeof why) && sp.valid(&sp, &split4, &d128, why, sizeof why),
          "query_split 2 and 4 of a group of 8: %s", why);
    CHECK(!sp.valid(&sp, &split4, &g2, why, sizeof why) && strstr(why, "query_split"), "query_split 4 of a group of 2: %s", why);
    CHECK(!sp.valid(&sp, &split_staged, &d128, why, sizeof why) && strstr(why, "query_split"), "query_split staged: %s", why);
    mt_cuda_attn_cfg whole = {128, 16, 8, 0, 512, 2, 1, 2, 1}, half = whole, odd = whole;
    half.qsplit = 2;
    odd.qsplit = 3; /* does not divide 8: one block per KV head */
    CHECK(mt_cuda_attn_smem(&half) < mt_cuda_attn_smem(&whole) && mt_cuda_attn_smem(&odd) == mt_cuda_attn_smem(&whole),
          "split smem %u, whole %u, odd %u", mt_cuda_attn_smem(&half), mt_cuda_attn_smem(&whole), mt_cuda_attn_smem(&odd));
}

/* The engines' own spaces: vLLM's and SGLang's CUDA grid, their block
 * filters, vLLM's ROCm pruning (prune_rocm_configs, either GEMM keeping a
 * config keeps it), and each default valid. */
static int count_valid(const mt_space *sp, const mt_space_ctx *x)
{
    mt_config *pts = NULL;
    int n = mt_space_enumerate(sp, x, &pts);
    free(pts);
    return n;
}

static void test_engine_spaces(void)
{
    mt_space sp;
    char why[256];
    /* Mixtral TP2 */
    mt_space_ctx x = {8, 7168, 4096, 2, 64, 132, 227 * 1024, 0, 0, 0, 2, 0, 0};
    mt_space_engine_moe(&sp, "vllm", 0, 0);
    CHECK(count_valid(&sp, &x) == 1920, "vLLM's CUDA grid: %d points", count_valid(&sp, &x));
    mt_space_engine_moe(&sp, "sglang", 0, 0);
    CHECK(count_valid(&sp, &x) == 1920, "SGLang's CUDA grid: %d points", count_valid(&sp, &x));
    /* 128x128 blocks: SGLang keeps BLOCK_SIZE_K dividing 128 (64, 128), vLLM
     * every size where one divides the other (all of its grid's) */
    mt_space_ctx b = {256, 256, 7168, 8, 64, 132, 227 * 1024, 0, 128, 128, 1, 0, 0};
    CHECK(count_valid(&sp, &b) == 1280, "SGLang's block filter: %d points", count_valid(&sp, &b));
    mt_config k256 = {{64, 128, 256, 1, 4, 3}};
    CHECK(!sp.valid(&sp, &k256, &b, why, sizeof why) && strstr(why, "SGLang's block filter"), "BLOCK_SIZE_K 256: %s", why);
    mt_space_engine_moe(&sp, "vllm", 0, 1);
    CHECK(count_valid(&sp, &b) == 1920, "vLLM's block filter: %d points", count_valid(&sp, &b));
    /* a GPU's shared memory (H100: 232,448 bytes): Triton keeps num_stages
     * copies of both tiles, so 672 of bf16's 1,920 configs cannot compile
     * (stages x BLOCK_SIZE_K x (BLOCK_SIZE_M + BLOCK_SIZE_N) x 2 bytes), and
     * 240 of fp8's, whose elements are one byte */
    mt_space_ctx hs = x;
    hs.smem_limit = 232448;
    hs.act_bytes = 2;
    hs.weight_bits = 16;
    CHECK(count_valid(&sp, &hs) == 1920 - 672, "bf16 on an H100: %d configs fit", count_valid(&sp, &hs));
    mt_config big = {{128, 256, 128, 1, 8, 4}}, fits = {{64, 128, 128, 1, 4, 3}};
    CHECK(!sp.valid(&sp, &big, &hs, why, sizeof why) && strstr(why, "393216 bytes of shared memory"),
          "128/256/128 in 4 stages: %s", why);
    CHECK(sp.valid(&sp, &fits, &hs, why, sizeof why), "64/128/128 in 3 stages fits: %s", why);
    mt_space_ctx hs8 = hs;
    hs8.act_bytes = 1;
    hs8.weight_bits = 8;
    CHECK(count_valid(&sp, &hs8) == 1920 - 240, "fp8 on an H100: %d configs fit", count_valid(&sp, &hs8));
    /* int4 weights are loaded packed, two a byte: 256 x 128 x 4 stages of
     * them and 16 rows of bf16 fit (81,920 bytes) */
    mt_space_ctx hs4 = hs;
    hs4.weight_bits = 4;
    mt_config w4 = {{16, 256, 256, 1, 4, 4}};
    CHECK(sp.valid(&sp, &w4, &hs4, why, sizeof why), "int4 16/256/256 in 4 stages fits: %s", why);
    CHECK(!sp.valid(&sp, &w4, &hs, why, sizeof why), "bf16 16/256/256 in 4 stages does not");
    /* SGLang's down GEMM: the grid less BLOCK_SIZE_M (the gate-up config's),
     * 384 points; SGLang's block filter keeps BLOCK_SIZE_K 64 and 128 */
    mt_space dn;
    mt_space_engine_moe_down(&dn);
    CHECK(dn.nparams == 5 && !strcmp(dn.params[0].name, "BLOCK_SIZE_N") && count_valid(&dn, &x) == 384,
          "the down GEMM's grid: %d points", count_valid(&dn, &x));
    CHECK(count_valid(&dn, &b) == 256, "the down GEMM's block filter: %d points", count_valid(&dn, &b));
    mt_config dd;
    dn.default_config(&dn, &b, &dd);
    CHECK(dn.valid(&dn, &dd, &b, why, sizeof why) && dd.v[0] == 128 && dd.v[1] == 128,
          "the down GEMM's block default %d/%d: %s", dd.v[0], dd.v[1], why);
    /* no limit known (the CPU doubles): the whole grid */
    hs.smem_limit = 0;
    CHECK(count_valid(&sp, &hs) == 1920, "no shared-memory limit: %d configs", count_valid(&sp, &hs));
    mt_space_ctx b96 = b;
    b96.block_n = 96;
    mt_config n64 = {{64, 64, 128, 1, 4, 3}};
    CHECK(!sp.valid(&sp, &n64, &b96, why, sizeof why), "BLOCK_SIZE_N 64 and a block of 96 do not divide");
    for (int e = 0; e < 2; e++) {
        mt_config d;
        mt_space_engine_moe(&sp, e ? "sglang" : "vllm", 0, 1);
        sp.default_config(&sp, &b, &d);
        CHECK(sp.valid(&sp, &d, &b, why, sizeof why) && d.v[1] == 128 && d.v[2] == 128,
              "%s's block default %d/%d: %s", e ? "SGLang" : "vLLM", d.v[1], d.v[2], why);
    }
    /* vLLM's ROCm space, fp16 (nine keys, BLOCK_SIZE_K from 16) */
    mt_space_engine_moe(&sp, "vllm", 1, 0);
    CHECK(sp.nparams == 9 && sp.params[2].values[0] == 16 && !strcmp(sp.backend, "vllm-rocm"), "ROCm fp16 space");
    mt_space_ctx r1 = {8, 7168, 4096, 2, 1, 304, 65536, 0, 0, 0, 2, 0, 0};
    /* M x topk = 2: MFMA 16, tiles at most 16 rows unless 16, groups of 1 */
    mt_config ok = {{16, 16, 16, 1, 4, 2, 0, 16, 1}}, big_m = ok, mfma32 = ok, group4 = ok;
    big_m.v[0] = 64;
    mfma32.v[7] = 32;
    group4.v[3] = 4;
    CHECK(sp.valid(&sp, &ok, &r1, why, sizeof why), "M=1: 16/16/16 kept: %s", why);
    CHECK(!sp.valid(&sp, &big_m, &r1, why, sizeof why), "M=1: BLOCK_SIZE_M 64 pruned (twice the pairs is 4)");
    CHECK(!sp.valid(&sp, &mfma32, &r1, why, sizeof why), "M=1: MFMA 32 pruned (the GEMM needs 16)");
    CHECK(!sp.valid(&sp, &group4, &r1, why, sizeof why), "M=1: GROUP_SIZE_M 4 pruned (64 rows > 2 pairs)");
    /* a large GEMM (4096 x 2 pairs, N 14336): tiles under 64 pruned; LDS over 64 KiB pruned */
    mt_space_ctx r4 = r1;
    r4.M = 4096;
    mt_config small = {{32, 64, 64, 1, 4, 2, 0, 16, 1}}, large = {{128, 128, 64, 1, 4, 2, 0, 32, 1}},
              lds = {{256, 256, 128, 1, 8, 2, 0, 32, 1}};
    CHECK(!sp.valid(&sp, &small, &r4, why, sizeof why), "M=4096: BLOCK_SIZE_M 32 pruned on a large GEMM");
    CHECK(sp.valid(&sp, &large, &r4, why, sizeof why), "M=4096: 128/128/64 kept: %s", why);
    CHECK(!sp.valid(&sp, &lds, &r4, why, sizeof why), "M=4096: 256x128 + 128x256 halves need 128 KiB of LDS");
    /* quantised: seven keys, BLOCK_SIZE_K from 32; SGLang's ROCm grid */
    mt_space_engine_moe(&sp, "vllm", 1, 1);
    CHECK(sp.nparams == 7 && sp.params[2].values[0] == 32, "ROCm fp8 space");
    mt_space_engine_moe(&sp, "sglang", 1, 0);
    CHECK(sp.nparams == 7 && sp.params[0].values[0] == 32 && !strcmp(sp.backend, "sglang-rocm") &&
              count_valid(&sp, &x) == 4 * 5 * 4 * 5 * 4,
          "SGLang's ROCm grid: %d points", count_valid(&sp, &x));
}

/* moetune's fp8 CUDA kernels: the same space, with the fp8 GEMMs' rules
 * (their own shared memory, a k tile inside a scale block) and the GEMV
 * path's */
static void test_cuda_fp8_space(void)
{
    mt_space cs;
    mt_space_cuda_moe(&cs, 132);
    /* DeepSeek-V3 TP8 in 128x128 blocks at M = 64; Mixtral TP2 per tensor */
    mt_space_ctx ds = {256, 256, 7168, 8, 64, 0, 227 * 1024, 0, 128, 128, 1, 0, 0};
    mt_space_ctx mx = {8, 7168, 4096, 2, 64, 0, 227 * 1024, 0, 0, 0, 1, 0, 0}, bf = mx;
    bf.elem_bytes = 2;
    mt_config *pts;
    /* M = 64: 512 pairs on 256 experts, where the GEMV path fits */
    int n = mt_space_enumerate(&cs, &ds, &pts), bad = 0, k256 = 0, gemv_pts = 0;
    for (int i = 0; i < n; i++) {
        bad += 128 % pts[i].v[2] != 0 ||
               mt_cuda_fp8_smem_bytes(pts[i].v[0], pts[i].v[1], pts[i].v[2], pts[i].v[5], 1) > 227 * 1024;
        k256 += pts[i].v[2] == 256;
        gemv_pts += pts[i].v[7] != 0;
    }
    CHECK(n > 0 && !bad && !k256 && gemv_pts > 0, "blocks: %d points (%d GEMV), every BLOCK_SIZE_K divides 128 (%d bad)",
          n, gemv_pts, bad);
    free(pts);
    char why[256];
    mt_config g = {{16, 64, 256, 1, 4, 3, 0, 0}}, gemv = {{16, 64, 64, 1, 4, 2, 0, 1}};
    CHECK(!cs.valid(&cs, &g, &ds, why, sizeof why) && strstr(why, "does not divide"), "BLOCK_SIZE_K 256: %s", why);
    CHECK(cs.valid(&cs, &g, &mx, why, sizeof why), "per tensor takes BLOCK_SIZE_K 256: %s", why);
    CHECK(cs.valid(&cs, &gemv, &ds, why, sizeof why), "fp8's GEMV where the experts hold two pairs: %s", why);
    CHECK(!cs.valid(&cs, &gemv, &mx, why, sizeof why) && strstr(why, "GEMV"), "no GEMV for 128 pairs on 8 experts: %s", why);
    /* a tile whose bf16 stages overflow but whose fp8 ones fit (half the bytes) */
    mt_config big = {{64, 128, 128, 1, 8, 4, 0, 0}};
    CHECK(!cs.valid(&cs, &big, &bf, why, sizeof why) && cs.valid(&cs, &big, &mx, why, sizeof why),
          "fp8 stages of 64x128x128 x4 fit where bf16's do not: %s", why);
    mt_space_ctx odd = mx;
    odd.N = 7160;
    CHECK(!cs.valid(&cs, &g, &odd, why, sizeof why) && strstr(why, "multiples of 16"), "N 7160: %s", why);
    mt_config d;
    ds.M = 2000; /* vLLM's default for large M has BLOCK_SIZE_K 64 */
    cs.default_config(&cs, &ds, &d);
    CHECK(cs.valid(&cs, &d, &ds, why, sizeof why) && 128 % d.v[2] == 0, "the default fits the blocks: %s", why);
}

int main(void)
{
    test_cuda_fp8_space();
    test_engine_spaces();
    test_attn_spaces();
    test_vllm_default_valid();
    test_cpu_space();
    test_vllm_space();
    test_hip_space();
    return check_report("test_space");
}
