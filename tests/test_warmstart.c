/* Warm starts from a real database: vLLM configs imported for the device or
 * one of its architecture, and winners on same-architecture devices, come
 * right after the default; other architectures and dtypes never do. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "db.h"
#include "family.h"
#include "family_space.h"
#include "family_tuning.h"
#include "moetune/moetune.h"
#include "space.h"
#include "strategy.h"
#include "warmstart.h"

static mt_db *db;

static void row2(int64_t dev, int64_t prob, int64_t M, int64_t p2, const char *params, const char *status, double med,
                 int ord)
{
    int64_t cfg;
    CHECK(mt_db_config_upsert(db, "x", params, &cfg) == MT_OK, "config");
    mt_measurement m = {.device_id = dev, .problem_id = prob, .config_id = cfg, .M = M, .p2 = p2, .status = status,
                        .kernel_hash = "h", .timing_policy = "p", .ord = ord};
    m.median_us = med;
    m.spread_us = m.rel_err = m.tolerance = m.floor_us = m.efficiency = NAN;
    CHECK(mt_db_measurement_insert(db, &m) == MT_OK, "insert");
}
static void row(int64_t dev, int64_t prob, int64_t M, const char *params, const char *status, double med, int ord)
{
    row2(dev, prob, M, 0, params, status, med, ord);
}

/* The attention family takes the same warm starts over its key and its
 * (batch, context) point: the same shape's winner at the same point on a
 * device of the architecture, and the nearest other shapes' winners here
 * at their nearest point; never a fused-MoE row. */
static void attention(const mt_device_info *h200, const mt_device_info *pcie)
{
    mt_problem ours = {.kernel = "attn_decode", .key = "{\"H\":32,\"H_kv\":8,\"D\":128,\"page\":16,\"dtype\":\"bf16\"}"};
    mt_problem near = {.kernel = "attn_decode", .key = "{\"H\":64,\"H_kv\":8,\"D\":128,\"page\":16,\"dtype\":\"bf16\"}"};
    mt_problem far = {.kernel = "attn_decode", .key = "{\"H\":128,\"H_kv\":1,\"D\":64,\"page\":16,\"dtype\":\"bf16\"}"};
    mt_problem f16 = {.kernel = "attn_decode", .key = "{\"H\":32,\"H_kv\":8,\"D\":128,\"page\":16,\"dtype\":\"fp16\"}"};
    CHECK(mt_db_problem_upsert(db, &ours) == MT_OK && mt_db_problem_upsert(db, &near) == MT_OK &&
              mt_db_problem_upsert(db, &far) == MT_OK && mt_db_problem_upsert(db, &f16) == MT_OK,
          "attention problems");
#define AC(part, w, mma, st, q)                                                                                 \
    "{\"partition\":" #part ",\"num_warps\":" #w ",\"mma\":" #mma ",\"stage\":" #st ",\"query_split\":" #q "}"
    /* the same shape on the PCIe card: at (8, 4096) and at (8, 1024) */
    row2(pcie->id, ours.id, 8, 4096, AC(512, 4, 1, 2, 2), "ok", 30.0, 0);
    row2(pcie->id, ours.id, 8, 1024, AC(256, 8, 1, 3, 1), "ok", 10.0, 0);
    /* neighbouring shapes here: H=64 (one doubling) at two contexts, the
     * nearer (4096) with two configs; H=128/H_kv=1/D=64 (more than 4
     * doublings in all); fp16 (another dtype) */
    row2(h200->id, near.id, 8, 1024, AC(1024, 4, 1, 2, 1), "ok", 50.0, 0);
    row2(h200->id, near.id, 8, 8192, AC(2048, 4, 1, 3, 4), "ok", 60.0, 0);
    row2(h200->id, near.id, 8, 8192, AC(4096, 4, 1, 3, 4), "ok", 61.0, 0);
    row2(h200->id, far.id, 8, 4096, AC(64, 2, 0, 0, 1), "ok", 1.0, 0);
    row2(h200->id, f16.id, 8, 4096, AC(128, 2, 0, 1, 1), "ok", 1.0, 0);

    mt_space sp;
    mt_space_cuda_attn(&sp);
    mt_family_key k;
    char why[128];
    CHECK(mt_family_key_parse(&mt_family_attn_decode, ours.key, &k, why, sizeof why) == MT_OK, "key: %s", why);
    const int64_t point[2] = {8, 4096};
    mt_space_ctx x;
    mt_tuning_attn_decode.space_ctx(&k, point, 132, 227 * 1024, &x);
    mt_config *pts, def;
    int n = mt_space_enumerate(&sp, &x, &pts);
    CHECK(n > 10, "the attention space: %d points", n);
    sp.default_config(&sp, &x, &def);
    mt_search *s;
    mt_search_new(&s, MT_STRATEGY_BAYES, &sp, pts, n, &def, 8 * 4096, 20, 1);
    int got = mt_warm_start(db, h200, &ours, &sp, pts, n, point, s);
    CHECK(got == 1, "the same shape's winner at the same point on the PCIe card, got %d", got);
    int idx;
    mt_search_next(s, &idx); /* the default */
    mt_search_next(s, &idx);
    int want[5] = {512, 4, 1, 2, 2};
    CHECK(!memcmp(pts[idx].v, want, sizeof want), "the PCIe card's (8, 4096) winner, not its (8, 1024) one");
    mt_search_report(s, idx, 1.0);
    mt_search_free(s);
    mt_search_new(&s, MT_STRATEGY_BAYES, &sp, pts, n, &def, 8 * 4096, 20, 1);
    got = mt_warm_start_shapes(db, h200, &ours, "h", &sp, pts, n, point, s);
    CHECK(got == 1, "one near shape (H=64), got %d", got);
    mt_search_next(s, &idx);
    mt_search_next(s, &idx);
    int want_near[5] = {2048, 4, 1, 3, 4};
    CHECK(!memcmp(pts[idx].v, want_near, sizeof want_near),
          "H=64's fastest at its point nearest (8, 4096) (got %d/%d/%d/%d/%d)", pts[idx].v[0], pts[idx].v[1],
          pts[idx].v[2], pts[idx].v[3], pts[idx].v[4]);
    mt_search_free(s);
    free(pts);
}

int main(void)
{
    char path[] = "/tmp/mt_test_ws.XXXXXX", err[256];
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    CHECK(mt_db_open(&db, path, err, sizeof err) == MT_OK, "open: %s", err);
    mt_device_info h200 = {.backend = "cuda", .name = "NVIDIA_H200", .raw_name = "NVIDIA H200", .arch = "sm_90a"};
    mt_device_info h100 = {.backend = "cuda", .name = "NVIDIA_H100_80GB_HBM3", .raw_name = "NVIDIA_H100_80GB_HBM3"};
    mt_device_info pcie = {.backend = "cuda", .name = "NVIDIA_H100_PCIe", .raw_name = "NVIDIA H100 PCIe", .arch = "sm_90a"};
    mt_device_info a100 = {.backend = "cuda", .name = "NVIDIA_A100-SXM4-80GB", .raw_name = "NVIDIA_A100-SXM4-80GB"};
    mt_db_device_upsert(db, &h200);
    mt_db_device_upsert(db, &h100);
    mt_db_device_upsert(db, &pcie);
    mt_db_device_upsert(db, &a100);
    mt_problem imp = {.kernel = "fused_moe", .dtype = "vllm:", .E = 8, .N = 7168, .renormalize = 1};
    mt_problem imp8 = {.kernel = "fused_moe", .dtype = "vllm:fp8_w8a8", .E = 8, .N = 7168, .renormalize = 1};
    mt_problem ours = {.kernel = "fused_moe", .dtype = "bf16", .E = 8, .N = 7168, .K = 4096, .topk = 2, .renormalize = 1};
    mt_db_problem_upsert(db, &imp);
    mt_db_problem_upsert(db, &imp8);
    mt_db_problem_upsert(db, &ours);
#define CFG(bm, bn, bk, g, w, st)                                                                               \
    "{\"BLOCK_SIZE_M\":" #bm ",\"BLOCK_SIZE_N\":" #bn ",\"BLOCK_SIZE_K\":" #bk ",\"GROUP_SIZE_M\":" #g          \
    ",\"num_warps\":" #w ",\"num_stages\":" #st "}"
    /* vLLM's H100 file: keys 1 and 64; M=50 takes 64's */
    row(h100.id, imp.id, 1, CFG(16, 64, 128, 1, 4, 4), "foreign", NAN, 0);
    row(h100.id, imp.id, 64, CFG(32, 64, 64, 1, 4, 2), "foreign", NAN, 1);
    /* an fp8 file of the same device: another dtype, never suggested */
    row(h100.id, imp8.id, 64, CFG(64, 64, 64, 16, 4, 3), "foreign", NAN, 0);
    /* an A100 file: another architecture, never suggested */
    row(a100.id, imp.id, 64, CFG(64, 128, 64, 1, 8, 3), "foreign", NAN, 0);
    /* our sweep on an H100 PCIe at M=50: the faster of two */
    row(pcie.id, ours.id, 50, "{\"BLOCK_SIZE_M\":16,\"BLOCK_SIZE_N\":128,\"BLOCK_SIZE_K\":64,\"GROUP_SIZE_M\":16,"
                              "\"num_warps\":8,\"num_stages\":3,\"NUM_SM\":132}", "ok", 20.0, 0);
    row(pcie.id, ours.id, 50, "{\"BLOCK_SIZE_M\":16,\"BLOCK_SIZE_N\":64,\"BLOCK_SIZE_K\":128,\"GROUP_SIZE_M\":1,"
                              "\"num_warps\":4,\"num_stages\":3,\"NUM_SM\":0}", "ok", 10.0, 0);

    mt_space sp;
    mt_space_cuda_moe(&sp, 132);
    mt_space_ctx ctx = {8, 7168, 4096, 2, 50, 1, 227 * 1024, 0, 0, 0, 0, 0, 0};
    mt_config *pts, def;
    int n = mt_space_enumerate(&sp, &ctx, &pts);
    sp.default_config(&sp, &ctx, &def);
    mt_search *s;
    mt_search_new(&s, MT_STRATEGY_BAYES, &sp, pts, n, &def, 50, 20, 1);
    int k = mt_warm_start(db, &h200, &ours, &sp, pts, n, (int64_t[2]){50, 0}, s);
    CHECK(k == 2, "two suggestions (vLLM's H100 file, the PCIe winner), got %d", k);
    int idx;
    mt_search_next(s, &idx);
    CHECK(!memcmp(&pts[idx], &def, sizeof def), "the default first");
    int want[2][7] = {{16, 64, 128, 1, 4, 3, 0}, {32, 64, 64, 1, 4, 2, 0}};
    int got = 0;
    for (int q = 0; q < 2; q++) {
        mt_search_next(s, &idx);
        for (int w = 0; w < 2; w++) got |= !memcmp(pts[idx].v, want[w], sizeof want[w]) << w;
        mt_search_report(s, idx, 1.0);
    }
    CHECK(got == 3, "both suggestions come next (mask %d)", got);
    mt_search_free(s);
    /* an A100 sweep gets only the A100 file */
    mt_search_new(&s, MT_STRATEGY_RANDOM, &sp, pts, n, &def, 50, 20, 1);
    mt_device_info a100m = {.backend = "cuda", .name = "NVIDIA_A100-SXM4-80GB", .raw_name = "NVIDIA A100-SXM4-80GB",
                            .arch = "sm_80"};
    mt_db_device_upsert(db, &a100m);
    k = mt_warm_start(db, &a100m, &ours, &sp, pts, n, (int64_t[2]){50, 0}, s);
    CHECK(k == 1, "an A100 gets its own architecture's file only: %d", k);
    mt_search_free(s);
    /* the grid keeps its order */
    mt_search_new(&s, MT_STRATEGY_GRID, &sp, pts, n, &def, 50, 20, 1);
    mt_warm_start(db, &h200, &ours, &sp, pts, n, (int64_t[2]){50, 0}, s);
    mt_search_next(s, &idx);
    CHECK(!memcmp(&pts[idx], &def, sizeof def), "grid: default first");
    mt_search_next(s, &idx);
    int *order = malloc((size_t)n * sizeof *order);
    mt_grid_order(pts, n, &def, sp.nparams, 20, order);
    CHECK(idx == order[1], "grid keeps its own order, suggestions aside");
    free(order);
    mt_search_free(s);

    /* neighbouring shapes on the same device: Mixtral at TP4 (N 3584, one
     * doubling away) and at TP8 (two), and a far shape (E=256, K=7168:
     * more than 4 doublings in all); fp16 and another kernel source never */
    mt_problem tp4 = {.kernel = "fused_moe", .dtype = "bf16", .E = 8, .N = 3584, .K = 4096, .topk = 2, .renormalize = 1};
    mt_problem tp8 = {.kernel = "fused_moe", .dtype = "bf16", .E = 8, .N = 1792, .K = 4096, .topk = 2, .renormalize = 1};
    mt_problem far = {.kernel = "fused_moe", .dtype = "bf16", .E = 256, .N = 2048, .K = 7168, .topk = 8, .renormalize = 1};
    mt_problem f16 = {.kernel = "fused_moe", .dtype = "fp16", .E = 8, .N = 3584, .K = 4096, .topk = 2, .renormalize = 1};
    mt_db_problem_upsert(db, &tp4);
    mt_db_problem_upsert(db, &tp8);
    mt_db_problem_upsert(db, &far);
    mt_db_problem_upsert(db, &f16);
#define C7(bm, bn, bk, g, w, st, sm)                                                                            \
    "{\"BLOCK_SIZE_M\":" #bm ",\"BLOCK_SIZE_N\":" #bn ",\"BLOCK_SIZE_K\":" #bk ",\"GROUP_SIZE_M\":" #g          \
    ",\"num_warps\":" #w ",\"num_stages\":" #st ",\"NUM_SM\":" #sm "}"
    /* TP4: M=32 and M=64 (nearest to 50 in log2: 64), the faster first */
    row(h200.id, tp4.id, 32, C7(16, 32, 64, 1, 4, 2, 0), "ok", 5.0, 0);
    row(h200.id, tp4.id, 64, C7(32, 128, 64, 16, 8, 3, 0), "ok", 9.0, 0);
    row(h200.id, tp4.id, 64, C7(64, 64, 64, 1, 4, 4, 132), "ok", 12.0, 0);
    row(h200.id, tp8.id, 64, C7(16, 64, 64, 32, 4, 3, 264), "ok", 4.0, 0);
    row(h200.id, far.id, 64, C7(16, 128, 128, 1, 8, 2, 0), "ok", 1.0, 0);
    row(h200.id, f16.id, 64, C7(64, 128, 64, 1, 8, 2, 0), "ok", 1.0, 0);
    mt_search_new(&s, MT_STRATEGY_BAYES, &sp, pts, n, &def, 50, 20, 1);
    k = mt_warm_start_shapes(db, &h200, &ours, "h", &sp, pts, n, (int64_t[2]){50, 0}, s);
    CHECK(k == 2, "the two near shapes, got %d", k);
    int near_want[2][7] = {{32, 128, 64, 16, 8, 3, 0}, {16, 64, 64, 32, 4, 3, 264}};
    mt_search_next(s, &idx); /* the default */
    for (int q = 0; q < 2; q++) {
        mt_search_next(s, &idx);
        CHECK(!memcmp(pts[idx].v, near_want[q], sizeof near_want[q]),
              "suggestion %d: the nearer shape's winner at the nearest M first (got %d/%d/%d/%d/%d/%d/%d)", q,
              pts[idx].v[0], pts[idx].v[1], pts[idx].v[2], pts[idx].v[3], pts[idx].v[4], pts[idx].v[5], pts[idx].v[6]);
        mt_search_report(s, idx, 1.0);
    }
    mt_search_free(s);
    /* another kernel source: nothing */
    mt_search_new(&s, MT_STRATEGY_BAYES, &sp, pts, n, &def, 50, 20, 1);
    CHECK(mt_warm_start_shapes(db, &h200, &ours, "other-hash", &sp, pts, n, (int64_t[2]){50, 0}, s) == 0, "stale kernels suggest nothing");
    mt_search_free(s);
    /* another device: nothing of the H200's */
    mt_search_new(&s, MT_STRATEGY_BAYES, &sp, pts, n, &def, 50, 20, 1);
    CHECK(mt_warm_start_shapes(db, &pcie, &ours, "h", &sp, pts, n, (int64_t[2]){50, 0}, s) == 0, "shapes are per device");
    mt_search_free(s);
    free(pts);
    attention(&h200, &pcie);
    mt_db_close(db);
    unlink(path);
    char wal[64];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    return check_report("test_warmstart");
}
