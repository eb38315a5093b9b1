/* The CUDA paged attention decode on a GPU: every variant of a small grid
 * checked against the double reference (kernels/cpu/attn.c) on batches with
 * odd and unequal context lengths and scattered pages, then timed with the
 * KV cache read once against the device's copy bandwidth (the floor), best
 * of 20 with the L2 flushed before each.
 *
 * Variants: partition 64..1024 (up to 8192 for the ring) x warps 2, 4, 8 x
 * mma 0/1 x stage 0/1, and rings of 2 and 3 chunks with mma.
 *
 * usage: cuda_attn_check [--quick] [--equal] [--warm] [--reps N] [--shapes LO:HI]
 *                        [--only H/HKV/D/PAGE/B/CTX] [--variant PART/WARPS/MMA/STAGE[/QSPLIT]]
 *                        [--query-split S[,S...]]
 * --shapes LO:HI: the table's shapes LO to HI (0..4) only: a full table in parts
 * --check-only: the rows with a reference only, each variant run once (correctness, no timing)
 * --equal: every sequence of a batch has the full context, as
 * bench/attn_sdpa.py gives torch's scaled_dot_product_attention
 * --warm: no L2 flush before the timed runs (to tell the cold cache's cost)
 * --layers N: also time each variant as a decode step runs it, N launches
 * in one graph, each over its own layer's KV cache (as many layers as 16 GB
 * of KV holds, at least 1), the graph's time over the launches: the
 * kernels' cost without the graph launch's fixed latency
 * --compile-jobs N: every variant compiled first by N processes at once (tuner/precompile.c)
 * --only, --variant: one row, one variant (for a profiler: bench/attn_probe.sh)
 * --l2-pages N: the block table cycles over pages 0 to N - 1 (at most the
 * row's pages; N small enough that they stay in the L2, spread over its
 * slices): the kernel's cost with K and V read from the L2 instead of DRAM,
 * to tell its compute's share
 * --in-order: each sequence's pages in order, one after another, instead of
 * shuffled (a cache as a fresh engine fills it; SDPA's dense layout is
 * this with one page per sequence and head)
 * --query-split S[,S...]: the ring's variants with S blocks per KV head, each
 * S of the list in turn (an S over 1 where it divides the group), so that one
 * table holds every split the tuner's space offers (--query-split 1,2,4)
 * Prints one line per (shape, batch, context, variant) and, last, the best
 * variant per row with its fraction of the floor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attn.h"
#include "attn_launch.h"
#include "cuda_rt.h"
#include "moetune/moetune.h"
#include "precompile.h"

static mt_cuda *c;

/* " split S" for S blocks per KV head, "" for one */
static const char *split_name(int qsplit)
{
    static char b[4][16];
    static int i;
    if (qsplit <= 1) return "";
    i = (i + 1) % 4;
    snprintf(b[i], sizeof b[i], " split %d", qsplit);
    return b[i];
}

static const char *stage_name(int stage)
{
    static char b[4][16];
    static int i;
    if (!stage) return "";
    if (stage == 1) return " stage";
    i = (i + 1) % 4;
    snprintf(b[i], sizeof b[i], " ring%d", stage);
    return b[i];
}

/* timed as a graph replay of the variant's kernels, as the sweep times it
 * and as bench/attn_sdpa.py times SDPA: no launch gaps in the window */
static int run(mt_cuda *cc, void *arg) { return mt_cuda_graph_launch(cc, *(mt_cugraph *)arg); }

/* the table's shapes: H, Hkv, head_dim, page size */
typedef struct { int H, Hkv, D, ps; } shape_def;
static const int partitions[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192}, warps[] = {2, 4, 8};
static const char *const cache = "/tmp/mt_attn_check_cache";

struct copy { mt_dptr a, d; size_t n; };
static int copy_once(mt_cuda *cc, void *arg)
{
    struct copy *p = arg;
    return mt_cuda_d2d_async(cc, p->d, p->a, p->n);
}

int main(int argc, char **argv)
{
    int quick = 0, equal = 0, warm = 0, reps = 20, only[6] = {0}, variant[5] = {0, 0, 0, 0, 1}, has_only = 0, has_variant = 0;
    int qsplits[4] = {1}, nq = 1;
    int shape_lo = 0, shape_hi = -1, check_only = 0, layers = 0, jobs = 0, l2_pages = 0, in_order = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--equal")) equal = 1;
        else if (!strcmp(argv[i], "--warm")) warm = 1;
        else if (!strcmp(argv[i], "--in-order")) in_order = 1;
        else if (!strcmp(argv[i], "--l2-pages") && i + 1 < argc && (l2_pages = atoi(argv[++i])) >= 1) {
        }
        else if (!strcmp(argv[i], "--check-only")) check_only = 1, reps = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--compile-jobs") && i + 1 < argc) jobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc &&
                 sscanf(argv[++i], "%d/%d/%d/%d/%d/%d", &only[0], &only[1], &only[2], &only[3], &only[4], &only[5]) == 6)
            has_only = 1;
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc && sscanf(argv[++i], "%d:%d", &shape_lo, &shape_hi) == 2 &&
                 shape_lo >= 0 && shape_hi >= shape_lo && shape_hi < 5) {
        } else if (!strcmp(argv[i], "--variant") && i + 1 < argc &&
                 sscanf(argv[++i], "%d/%d/%d/%d/%d", &variant[0], &variant[1], &variant[2], &variant[3], &variant[4]) >= 4)
            has_variant = 1;
        else if (!strcmp(argv[i], "--query-split") && i + 1 < argc) {
            char *e = argv[++i];
            nq = 0;
            do {
                long v = strtol(e, &e, 10);
                if (v < 1 || v > 16 || nq == 4 || (*e && *e != ',')) return fprintf(stderr, "--query-split: up to 4 of 1..16, comma-separated\n"), 2;
                qsplits[nq++] = (int)v;
            } while (*e++ == ',');
        }
        else
            return fprintf(stderr, "usage: %s [--quick] [--equal] [--warm] [--l2-pages N] [--in-order] [--check-only] [--reps N] [--layers N] [--compile-jobs N] [--shapes LO:HI] [--only H/HKV/D/PAGE/B/CTX] "
                                   "[--variant PART/WARPS/MMA/STAGE[/QSPLIT]] [--query-split S[,S...]]\n", argv[0]), 2;
    }
    if (reps < 1) return fprintf(stderr, "--reps: at least 1\n"), 2;
    if (layers < 0 || layers > 256) return fprintf(stderr, "--layers: 0 (off) to 256\n"), 2;
    if (check_only) layers = 0;
    if (jobs < 0 || jobs > 64) return fprintf(stderr, "--compile-jobs: 0 to 64\n"), 2;
    shape_def shapes[] = {{32, 8, 128, 16}, {64, 8, 128, 16}, {32, 32, 128, 16}, {16, 16, 64, 32}, {8, 1, 256, 16}};
    if (has_only) { /* one row: the lists below become that row's */
        shapes[0].H = only[0], shapes[0].Hkv = only[1], shapes[0].D = only[2], shapes[0].ps = only[3];
        quick = 1;
    }
    /* --shapes LO:HI: the table's shapes LO to HI only (one GPU call each part) */
    const int si_lo = has_only ? 0 : shape_hi >= 0 ? shape_lo : 0, si_hi = has_only ? 0 : shape_hi >= 0 ? shape_hi : quick ? 1 : 4;
    mkdir(cache, 0755);
    char err[512];
    if (mt_cuda_open(&c, 0, err, sizeof err) != MT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* --compile-jobs N: the tuner's compile-ahead (NVRTC in N processes, no
     * GPU in them) over each shape's attention space up to the longest
     * context, both dtypes: a superset of this grid, so the timing below
     * loads every variant instead of compiling it (a full table spent much
     * of its 10-minute calls compiling one variant at a time) */
    for (int si = si_lo; jobs > 1 && !has_variant && si <= si_hi; si++) {
        mt_precompile_stats st;
        if (mt_precompile_cuda_attn(mt_cuda_get_props(c)->arch, mt_cuda_get_props(c)->smem_optin, shapes[si].D,
                                    shapes[si].ps, shapes[si].H / shapes[si].Hkv, 8192, 3, jobs, cache, NULL, NULL, &st,
                                    err, sizeof err) != MT_OK)
            printf("compiling ahead failed: %s\n", err);
        else
            printf("compiled ahead: %d variants, %d compiled, %d cached, %d failed, %.1f s\n", st.binaries, st.compiled,
                   st.cached, st.failed, st.seconds);
    }
    /* the floor's bandwidth: a 1 GiB device copy, best of 5 */
    struct copy cp = {0, 0, (size_t)1 << 30};
    float best_ms = 1e30f, ms;
    if (mt_cuda_alloc(c, cp.n, &cp.a) || mt_cuda_alloc(c, cp.n, &cp.d)) return fprintf(stderr, "alloc\n"), 1;
    for (int i = 0; i < 6; i++)
        if (mt_cuda_time(c, copy_once, &cp, &ms) == MT_OK && i && ms < best_ms) best_ms = ms;
    double bw = 2.0 * (double)cp.n / (best_ms * 1e-3);
    mt_cuda_free(c, cp.a);
    mt_cuda_free(c, cp.d);
    printf("copy bandwidth %.0f GB/s\n", bw / 1e9);
    /* compiled variants kept across rows (the options hold no batch or
     * context): each compiles once per shape and dtype, in cache */
    size_t flush_bytes = (size_t)256 << 20; /* over the L2 of any current GPU */
    mt_dptr flush = 0;
    if (mt_cuda_alloc(c, flush_bytes, &flush)) return fprintf(stderr, "alloc flush\n"), 1;

    /* partitions past 1024 for the ring only (its shared memory does not
     * grow with the partition): one partition per sequence, no merge */
    int batches[] = {1, 8, 32}, contexts[] = {511, 2048, 8192};
    int failed = 0, checked = 0;
    char summary[64][320];
    int ns = 0;
    if (has_only) batches[0] = only[4], contexts[0] = only[5];
    for (int si = si_lo; si <= si_hi; si++)
        for (int dt = 0; dt < 2; dt++)
            for (int bi = 0; bi < 3; bi++)
                for (int ci = 0; ci < 3; ci++) {
                    int H = shapes[si].H, Hkv = shapes[si].Hkv, D = shapes[si].D, ps = shapes[si].ps, B = batches[bi];
                    int ctx = contexts[ci], dtype = dt ? MT_DTYPE_FP16 : MT_DTYPE_BF16;
                    if (dt && (bi || ci != 1)) continue; /* fp16: one row per shape */
                    if (has_only && (dt || bi || ci)) continue;
                    if (check_only && (int64_t)batches[bi] * ctx > 8 * 2048) continue; /* no reference there */
                    /* unequal lengths: ctx, ctx - 37, ctx - 74, ... (at least 1) */
                    int32_t *lens = malloc((size_t)B * sizeof *lens);
                    int64_t maxp = (ctx + ps - 1) / ps, pages = 0, kv_tokens = 0;
                    for (int b = 0; b < B; b++) {
                        lens[b] = equal ? ctx : ctx - 37 * b > 1 ? ctx - 37 * b : 1;
                        pages += (lens[b] + ps - 1) / ps;
                        kv_tokens += lens[b];
                    }
                    pages += 1;
                    int32_t *bt = calloc((size_t)(B * maxp), sizeof *bt), *perm = malloc((size_t)pages * sizeof *perm);
                    mt_rng r = {(uint64_t)(si * 1000 + bi * 10 + ci + 1)};
                    for (int64_t i = 0; i < pages; i++) perm[i] = (int32_t)i;
                    for (int64_t i = pages - 1; i > 0 && !in_order; i--) {
                        int64_t j = (int64_t)(mt_rng_next(&r) % (uint64_t)(i + 1)), t = perm[i];
                        perm[i] = perm[j];
                        perm[j] = (int32_t)t;
                    }
                    int64_t used = 0;
                    for (int b = 0; b < B; b++)
                        for (int64_t p = 0; p < (lens[b] + ps - 1) / ps; p++) bt[b * maxp + p] = l2_pages ? (int32_t)(used++ % (l2_pages < pages ? l2_pages : pages)) : perm[used++];
                    size_t qn = (size_t)B * H * D, kvn = (size_t)pages * ps * Hkv * D;
                    uint16_t *q = malloc(qn * 2), *k = malloc(kvn * 2), *v = malloc(kvn * 2), *out = malloc(qn * 2),
                             *out2 = malloc(qn * 2);
                    for (size_t i = 0; i < qn; i++) mt_store_elem(q, dtype, i, mt_rng_uniform(&r));
                    for (size_t i = 0; i < kvn; i++) {
                        mt_store_elem(k, dtype, i, mt_rng_uniform(&r));
                        mt_store_elem(v, dtype, i, mt_rng_uniform(&r));
                    }
                    /* the reference for the rows small enough to compute in double */
                    double *ref = NULL;
                    mt_attn_shape sh = {H, Hkv, D, ps, dtype};
                    mt_attn_batch hb = {B, maxp, pages, q, k, v, bt, lens, 0};
                    if ((int64_t)B * ctx <= 8 * 2048) {
                        ref = malloc(qn * sizeof *ref);
                        mt_attn_reference(&sh, &hb, ref);
                    }
                    mt_cuda_attn_args a = {0, 0, 0, 0, 0, 0, 0, B, H, Hkv, (int)maxp, ctx, 0};
                    if (mt_cuda_alloc(c, qn * 2, &a.q) || mt_cuda_alloc(c, kvn * 2, &a.k_cache) ||
                        mt_cuda_alloc(c, kvn * 2, &a.v_cache) || mt_cuda_alloc(c, (size_t)(B * maxp) * 4, &a.block_table) ||
                        mt_cuda_alloc(c, (size_t)B * 4, &a.context_lens) || mt_cuda_alloc(c, qn * 2, &a.out) ||
                        mt_cuda_h2d(c, a.q, q, qn * 2) || mt_cuda_h2d(c, a.k_cache, k, kvn * 2) ||
                        mt_cuda_h2d(c, a.v_cache, v, kvn * 2) || mt_cuda_h2d(c, a.block_table, bt, (size_t)(B * maxp) * 4) ||
                        mt_cuda_h2d(c, a.context_lens, lens, (size_t)B * 4))
                        return fprintf(stderr, "alloc/copy: %s\n", mt_cuda_errmsg(c)), 1;
                    /* --layers: the other layers' K and V, copies of the first's
                     * (the same pages, as an engine's block table serves every layer) */
                    int L = 0;
                    mt_dptr lk[256] = {0}, lv[256] = {0};
                    if (layers) {
                        size_t cap = (size_t)16 << 30, per = 2 * kvn * 2;
                        L = per * (size_t)layers <= cap ? layers : (int)(cap / per) > 1 ? (int)(cap / per) : 1;
                        lk[0] = a.k_cache, lv[0] = a.v_cache;
                        for (int l = 1; l < L; l++)
                            if (mt_cuda_alloc(c, kvn * 2, &lk[l]) || mt_cuda_alloc(c, kvn * 2, &lv[l]) ||
                                mt_cuda_d2d_async(c, lk[l], a.k_cache, kvn * 2) || mt_cuda_d2d_async(c, lv[l], a.v_cache, kvn * 2))
                                return fprintf(stderr, "alloc/copy layer %d: %s\n", l, mt_cuda_errmsg(c)), 1;
                    }
                    double best_l = 1e30;
                    char best_l_cfg[64] = "";
                    /* K and V of the tokens in use, read once */
                    double floor_us = (double)kv_tokens * Hkv * D * 2 * 2 / bw * 1e6;
                    double best = 1e30;
                    char best_cfg[64] = "";
                    /* stage 0, 1 with and without mma; rings of 2 and 3 (mma only) */
                    for (int vq = 0; vq < 4 * 2 * 8 * 3 * nq; vq++) {
                            const int vi = vq / nq, qi = vq % nq;
                            const int stage = vi / 48, mma = vi / 24 % 2, pi = vi / 3 % 8, wi = vi % 3;
                            /* a split for the ring only, and only one that divides the group */
                            if (qi && (stage < 2 || (qsplits[qi] > 1 && (H / Hkv) % qsplits[qi]))) continue;
                            if (stage >= 2 && !mma && !has_variant) continue;
                            /* a partition over 1024 only for the ring, and none
                             * past the first that holds the whole context */
                            if (!has_variant && ((pi >= 5 && stage < 2) || (pi && partitions[pi - 1] >= ctx))) continue;
                            mt_cuda_attn_cfg cfg = {D, ps, H / Hkv, dt, partitions[pi], warps[wi], mma, stage, stage >= 2 ? qsplits[qi] : 1};
                            if (has_variant) {
                                if (vq) break;
                                cfg.partition = variant[0], cfg.warps = variant[1], cfg.mma = variant[2], cfg.stage = variant[3];
                                cfg.qsplit = variant[4];
                            }
                            mt_cuda_attn var;
                            char why[256];
                            if (mt_cuda_attn_build(c, &cfg, cache, &var, why, sizeof why) != MT_OK) {
                                if (!cfg.mma)
                                    printf("  H=%d Hkv=%d D=%d partition %d warps %d%s: %s\n", H, Hkv, D, cfg.partition,
                                           cfg.warps, stage_name(cfg.stage), why);
                                continue;
                            }
                            size_t wsz = mt_cuda_attn_workspace(&var, B, H, ctx);
                            if (mt_cuda_alloc(c, wsz, &a.workspace)) return fprintf(stderr, "alloc ws\n"), 1;
                            mt_cuda_memset_async(c, a.out, 0xff, qn * 2);
                            int rc = mt_cuda_attn_enqueue(c, &var, &a, NULL);
                            if (rc == MT_OK) rc = mt_cuda_sync(c);
                            double worst = 0, scale = 0;
                            if (rc == MT_OK) rc = mt_cuda_d2h(c, out, a.out, qn * 2);
                            if (rc == MT_OK && ref) {
                                for (size_t i = 0; i < qn; i++) {
                                    double e = fabs((double)mt_load_elem(out, dtype, i) - ref[i]);
                                    if (!(e <= worst)) worst = e;
                                    if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
                                }
                                checked++;
                                if (!(worst <= (dt ? 2e-3 : 1e-2) * scale)) failed++;
                            }
                            float t = 1e30f, tm;
                            mt_cugraph g = NULL;
                            if (rc == MT_OK && (rc = mt_cuda_capture_begin(c)) == MT_OK) {
                                int rc1 = mt_cuda_attn_enqueue(c, &var, &a, NULL);
                                rc = mt_cuda_capture_end(c, &g);
                                if (rc == MT_OK) rc = rc1;
                            }
                            for (int rep = 0; rc == MT_OK && rep < reps; rep++) {
                                /* a cold L2, as a decode step meets the cache: flushed outside the timing */
                                if (!warm) mt_cuda_memset_async(c, flush, (unsigned char)rep, flush_bytes);
                                if (mt_cuda_time(c, run, &g, &tm) == MT_OK && tm < t) t = tm;
                            }
                            if (g) mt_cuda_graph_free(c, g);
                            /* --layers: L launches in one graph, layer l over its own K and V */
                            float tl = 1e30f;
                            g = NULL;
                            if (rc == MT_OK && L && (rc = mt_cuda_capture_begin(c)) == MT_OK) {
                                int rc1 = MT_OK;
                                for (int l = 0; l < L && rc1 == MT_OK; l++) {
                                    mt_cuda_attn_args al = a;
                                    al.k_cache = lk[l], al.v_cache = lv[l];
                                    rc1 = mt_cuda_attn_enqueue(c, &var, &al, NULL);
                                }
                                rc = mt_cuda_capture_end(c, &g);
                                if (rc == MT_OK) rc = rc1;
                            }
                            for (int rep = 0; rc == MT_OK && L && rep < reps; rep++) {
                                if (!warm) mt_cuda_memset_async(c, flush, (unsigned char)rep, flush_bytes);
                                if (mt_cuda_time(c, run, &g, &tm) == MT_OK && tm / L < tl) tl = tm / L;
                            }
                            if (g) mt_cuda_graph_free(c, g);
                            /* the timed runs' output is the first run's, bit for bit (a fixed order of sums) */
                            int same = 1;
                            if (rc == MT_OK && (rc = mt_cuda_d2h(c, out2, a.out, qn * 2)) == MT_OK)
                                same = !memcmp(out, out2, qn * 2);
                            if (!same) failed++, printf("  (the next variant's output changed between runs)\n");
                            double us = t * 1e3;
                            printf("  H=%d Hkv=%d D=%d page %d %s B=%d ctx=%d partition %d warps %d%s%s%s: %s%s %.1f us, %.2f "
                                   "of floor%s\n", H, Hkv, D, ps, dt ? "fp16" : "bf16", B, ctx, cfg.partition, cfg.warps,
                                   cfg.mma ? " mma" : "", stage_name(cfg.stage), split_name(var.qsplit),
                                   rc == MT_OK ? "" : mt_cuda_errmsg(c), ref ? (worst <= (dt ? 2e-3 : 1e-2) * scale ? "ok" : "WRONG") : "unchecked",
                                   us, floor_us / us, ref ? "" : "");
                            if (L && rc == MT_OK)
                                printf("    per layer of %d: %.2f us, %.2f of floor\n", L, tl * 1e3, floor_us / (tl * 1e3));
                            if (L && rc == MT_OK && tl * 1e3 < best_l) {
                                best_l = tl * 1e3;
                                snprintf(best_l_cfg, sizeof best_l_cfg, "partition %d warps %d%s%s%s", cfg.partition, cfg.warps,
                                         cfg.mma ? " mma" : "", stage_name(cfg.stage), split_name(var.qsplit));
                            }
                            if (rc == MT_OK && us < best) {
                                best = us;
                                snprintf(best_cfg, sizeof best_cfg, "partition %d warps %d%s%s%s", cfg.partition, cfg.warps,
                                         cfg.mma ? " mma" : "", stage_name(cfg.stage), split_name(var.qsplit));
                            }
                            mt_cuda_free(c, a.workspace);
                            mt_cuda_attn_release(c, &var);
                        }
                    if (ns < 64 && !L)
                        snprintf(summary[ns++], sizeof summary[0], "| %d/%d/%d/%d | %s | %d | %d | %.1f | %.1f | %.2f | %s |",
                                 H, Hkv, D, ps, dt ? "fp16" : "bf16", B, ctx, best, floor_us, floor_us / best, best_cfg);
                    else if (ns < 64) /* the per-layer columns after the single launch's */
                        snprintf(summary[ns++], sizeof summary[0],
                                 "| %d/%d/%d/%d | %s | %d | %d | %.1f | %.1f | %.2f | %s | %.2f | %.2f | %s | %d |", H, Hkv, D,
                                 ps, dt ? "fp16" : "bf16", B, ctx, best, floor_us, floor_us / best, best_cfg, best_l,
                                 floor_us / best_l, best_l_cfg, L);
                    for (int l = 1; l < L; l++) mt_cuda_free(c, lk[l]), mt_cuda_free(c, lv[l]);
                    mt_dptr bufs[] = {a.q, a.k_cache, a.v_cache, a.block_table, a.context_lens, a.out};
                    for (int i = 0; i < 6; i++) mt_cuda_free(c, bufs[i]);
                    free(q), free(k), free(v), free(out), free(out2), free(ref), free(bt), free(perm), free(lens);
                }
    printf("\n%d variants checked against the reference, %d wrong\n\n", checked, failed);
    if (layers)
        printf("| H/Hkv/D/page | dtype | B | ctx | best us | floor us | floor/t | variant | per layer us | floor/t | variant | "
               "layers |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    else
        printf("| H/Hkv/D/page | dtype | B | ctx | best us | floor us | floor/t | variant |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < ns; i++) printf("%s\n", summary[i]);
    mt_cuda_close(c);
    return failed ? 1 : 0;
}
