#include "moe_launch.h"
#include "switches.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe_cpu.h" /* mt_moe_align_capacity */
#include "moetune/moetune.h"

int mt_cuda_fp8_arch(const char *arch, char *why, size_t n)
{
    int cc = 0; /* sm_89, sm_90a, sm_100a: the number is major * 10 + minor */
    if (arch && sscanf(arch, "sm_%d", &cc) == 1 && cc >= 89) return 1;
    if (why && n)
        snprintf(why, n, "%s has no fp8 tensor cores: moetune's fp8 kernels need sm_89 (Ada) or later, such as an "
                         "L40S, H100 or H200", arch ? arch : "this device");
    return 0;
}

int mt_cuda_fp8_block_k(int bk, int64_t scale_k)
{
    while (bk > 32 && scale_k % bk) bk /= 2;
    return bk > 0 && scale_k % bk == 0 ? bk : 0;
}

/* the fp8 GEMMs' shared memory: NUM_STAGES stages of A and B rows of
 * BLOCK_SIZE_K + 16 bytes (moe.cu's F8_SROW) */
int mt_cuda_fp8_smem_bytes(int bm, int bn, int bk, int stages, int gemm1)
{
    return stages * (bm + (gemm1 ? 2 : 1) * bn) * (bk + 16);
}

int mt_cuda_moe_build(mt_cuda *c, const mt_cuda_moe_cfg *cfg, int fp16, int fp8, const char *cache_dir, mt_cuda_moe *v,
                      char *why, size_t n)
{
    char d[MT_CUDA_MOE_NOPTS][48], *log = NULL;
    const char *opts[MT_CUDA_MOE_NOPTS];
    int rc;
    memset(v, 0, sizeof *v);
    v->cfg = *cfg;
    v->fp16 = fp16;
    v->fp8 = fp8;
    v->warps_m = mt_cuda_warps_m(cfg->block_m, cfg->block_n, cfg->warps);
    if (!v->warps_m) {
        snprintf(why, n, "no warp layout for a %dx%d tile with %d warps", cfg->block_m, cfg->block_n, cfg->warps);
        return MT_EUNSUPPORTED;
    }
    const mt_cuda_props *props = mt_cuda_get_props(c);
    if (fp8 && (mt_cuda_is_hip(c) || !mt_cuda_fp8_arch(props->arch, why, n))) {
        if (mt_cuda_is_hip(c)) snprintf(why, n, "moetune's fp8 kernels are CUDA's only (e4m3 tensor-core MMAs)");
        return MT_EUNSUPPORTED;
    }
    if (fp8 && cfg->block_k % 32) {
        snprintf(why, n, "the fp8 GEMMs reduce 32 at a time: BLOCK_SIZE_K %d is not a multiple of 32", cfg->block_k);
        return MT_EUNSUPPORTED;
    }
    mt_cuda_moe_options(cfg, fp16, fp8, props->arch, d, opts);
    /* fp8: no split-K */
    v->wgmma = mt_cuda_wgmma_on(props->arch) &&
               (fp8 ? mt_cuda_fp8_wgmma_tile(cfg->block_m, cfg->block_n, cfg->block_k, cfg->warps)
                    : mt_cuda_wgmma_tile(cfg->block_m, cfg->block_n, cfg->block_k, cfg->warps));
    mt_cuda_switches sw;
    mt_cuda_switches_get(&sw);
    v->splitk = sw.splitk && !fp8;
    v->sms = props->sms;
    v->l2_bytes = props->l2_bytes;
    v->align_one = sw.align_one;
    v->gemv_prefetch = sw.gemv_prefetch;
    /* per SM: what one block may opt in to, plus the 1 KB the driver keeps
     * per block (228 KB on Hopper, 164 KB on A100) */
    v->smem_sm = props->smem_optin + 1024;
    rc = mt_cuda_build(c, mt_cuda_moe_source(), opts, MT_CUDA_MOE_NOPTS, cache_dir, &v->mod, &log);
    if (rc != MT_OK) {
        snprintf(why, n, "compile failed: %s%s%.160s", mt_cuda_errmsg(c), log ? ": " : "", log ? log : "");
        free(log);
        return rc;
    }
    if ((rc = mt_cuda_function(c, v->mod, "moe_align", &v->align, NULL)) != MT_OK ||
        (rc = mt_cuda_function(c, v->mod, "moe_align_count", &v->align_count, NULL)) != MT_OK ||
        (rc = mt_cuda_function(c, v->mod, "moe_align_scan", &v->align_scan, NULL)) != MT_OK ||
        (rc = mt_cuda_function(c, v->mod, "moe_align_scatter", &v->align_scatter, NULL)) != MT_OK ||
        (rc = mt_cuda_function(c, v->mod, fp8 ? "moe_fp8_gemm1" : "moe_gemm1", &v->gemm1, &v->r1)) != MT_OK ||
        (rc = mt_cuda_function(c, v->mod, fp8 ? "moe_fp8_gemm2" : "moe_gemm2", &v->gemm2, &v->r2)) != MT_OK ||
        (fp8 && (rc = mt_cuda_function(c, v->mod, "fp8_quant_rows", &v->quant, NULL)) != MT_OK) ||
        (fp8 && (rc = mt_cuda_function(c, v->mod, "fp8_quant_groups", &v->quant_g, NULL)) != MT_OK) ||
        (fp8 && (rc = mt_cuda_function(c, v->mod, "fp8_amax", &v->amax, NULL)) != MT_OK) ||
        (fp8 && (rc = mt_cuda_function(c, v->mod, "fp8_zero", &v->zero, NULL)) != MT_OK) ||
        (rc = mt_cuda_function(c, v->mod, "moe_combine", &v->combine, NULL)) != MT_OK ||
        (rc = mt_cuda_function(c, v->mod, fp8 ? "moe_gemv1_fp8" : "moe_gemv1", &v->gemv1, NULL)) != MT_OK ||
        (rc = mt_cuda_function(c, v->mod, fp8 ? "moe_gemv2_fp8" : "moe_gemv2", &v->gemv2, &v->rg2)) != MT_OK) {
        snprintf(why, n, "%s", mt_cuda_errmsg(c));
        mt_cuda_moe_release(c, v);
        return rc;
    }
    int (*smem)(int, int, int, int, int) = fp8 ? (v->wgmma ? mt_cuda_fp8_wgmma_smem_bytes : mt_cuda_fp8_smem_bytes)
                                               : v->wgmma ? mt_cuda_wgmma_smem_bytes : mt_cuda_smem_bytes;
    v->smem1 = (unsigned)smem(cfg->block_m, cfg->block_n, cfg->block_k, cfg->stages, 1);
    /* GEMM 2's wgmma tile is as wide as GEMM 1's gate-and-up tile */
    v->smem2 = (unsigned)smem(cfg->block_m, cfg->block_n, cfg->block_k, cfg->stages, v->wgmma);
    int limit = props->smem_optin;
    if ((int)v->smem1 > limit || v->r1.max_threads < cfg->warps * 32 || v->r2.max_threads < cfg->warps * 32) {
        snprintf(why, n, "cannot launch: %u bytes of shared memory (limit %d), %d threads", v->smem1, limit, cfg->warps * 32);
        mt_cuda_moe_release(c, v);
        return MT_EUNSUPPORTED;
    }
    if ((rc = mt_cuda_set_smem(c, v->gemm1, (int)v->smem1)) != MT_OK ||
        (rc = mt_cuda_set_smem(c, v->gemm2, (int)v->smem2)) != MT_OK) {
        snprintf(why, n, "%s", mt_cuda_errmsg(c));
        mt_cuda_moe_release(c, v);
        return rc;
    }
    return MT_OK;
}

int mt_cuda_moe_options(const mt_cuda_moe_cfg *cfg, int fp16, int fp8, const char *arch, char d[MT_CUDA_MOE_NOPTS][48],
                        const char *opts[MT_CUDA_MOE_NOPTS])
{
    /* the tile's shape only: GROUP_SIZE_M and NUM_SM are launch arguments */
    int wm = mt_cuda_warps_m(cfg->block_m, cfg->block_n, cfg->warps);
    snprintf(d[0], 48, "-DBLOCK_SIZE_M=%d", cfg->block_m);
    snprintf(d[1], 48, "-DBLOCK_SIZE_N=%d", cfg->block_n);
    snprintf(d[2], 48, "-DBLOCK_SIZE_K=%d", cfg->block_k);
    snprintf(d[3], 48, "-DNUM_WARPS=%d", cfg->warps);
    snprintf(d[4], 48, "-DNUM_STAGES=%d", cfg->stages);
    snprintf(d[5], 48, "-DWARPS_M=%d", wm ? wm : 1);
    snprintf(d[6], 48, "-DMT_FP16=%d", fp16 ? 1 : 0);
    snprintf(d[7], 48, "-DMT_WGMMA=%d", mt_cuda_wgmma_on(arch));
    /* ROCm's occupancy hint (portable.h's MT_WAVES_HINT); no effect on NVIDIA */
    snprintf(d[8], 48, "-DMT_WAVES_PER_EU=%d", cfg->waves_per_eu > 0 ? cfg->waves_per_eu : 0);
    snprintf(d[9], 48, "-DMT_FP8=%d", fp8 == 1 || fp8 == 2 ? fp8 : 0);
    for (int i = 0; i < MT_CUDA_MOE_NOPTS; i++) opts[i] = d[i];
    return wm ? MT_OK : MT_EUNSUPPORTED;
}

int mt_cuda_gemv_fits(int64_t M, int64_t E, int64_t topk)
{
    return topk >= 1 && topk <= MT_CUDA_GEMV_MAX_TOPK && M * topk <= 2 * E;
}

void mt_cuda_moe_cfg_from_space(const int *v, int hip, mt_cuda_moe_cfg *cfg)
{
    *cfg = (mt_cuda_moe_cfg){v[0], v[1], v[2], v[3], v[4], v[5], v[6], hip ? v[7] : 0, hip ? 0 : v[7]};
}

int mt_cuda_moe_same_binary(const mt_cuda_moe_cfg *a, const mt_cuda_moe_cfg *b)
{
    return a->block_m == b->block_m && a->block_n == b->block_n && a->block_k == b->block_k && a->warps == b->warps &&
           a->stages == b->stages && a->waves_per_eu == b->waves_per_eu;
}

void mt_cuda_moe_release(mt_cuda *c, mt_cuda_moe *v)
{
    if (!v) return;
    mt_cuda_module_free(c, v->mod);
    v->mod = NULL;
}

int mt_cuda_warps_m(int bm, int bn, int warps)
{
    int best = 0;
    double best_score = 1e9;
    for (int wm = 1; wm <= warps; wm *= 2) {
        int wn = warps / wm;
        if (bm % (16 * wm) || bn % (8 * wn)) continue;
        double r = (double)(bm / wm) / (double)(bn / wn);
        double score = r > 1 ? r : 1 / r;
        if (score < best_score) {
            best_score = score;
            best = wm;
        }
    }
    return best;
}

int mt_cuda_smem_bytes(int bm, int bn, int bk, int stages, int gemm1)
{
    return stages * (bm + (gemm1 ? 2 : 1) * bn) * (bk + 8) * 2;
}

int mt_cuda_wgmma_on(const char *arch)
{
    mt_cuda_switches sw;
    mt_cuda_switches_get(&sw);
    return sw.wgmma && arch && !strcmp(arch, "sm_90a");
}

/* kernels/cuda/moe.cu's USE_WGMMA: warpgroups take 64-row blocks when
 * there are enough, else split the columns; each has *mb blocks of 64 x *tn */
static int wgmma_layout(int bm, int bn, int bk, int warps, int krow, int *mb, int *tn)
{
    int wg = warps / 4;
    if (wg < 1 || warps % 4 || bm % 64 || bk % krow) return 0;
    int wg_m = bm % (64 * wg) == 0 ? wg : 1, wg_n = wg / wg_m;
    if (bn % wg_n) return 0;
    *tn = bn / wg_n;
    *mb = bm / wg_m / 64;
    return *tn >= 16 && *tn <= 128 && !(*tn & (*tn - 1)); /* the wrappers' N */
}

int mt_cuda_wgmma_tile(int bm, int bn, int bk, int warps)
{
    int mb, tn;
    return wgmma_layout(bm, bn, bk, warps, 64, &mb, &tn);
}

int mt_cuda_fp8_wgmma_tile(int bm, int bn, int bk, int warps)
{
    /* k tiles of whole 128-byte rows (128 e4m3 values); at most 64
     * accumulators a thread, which the k tile's own sums double (moe.cu's
     * moe_fp8_tile_wg) */
    int mb, tn;
    return wgmma_layout(bm, bn, bk, warps, 128, &mb, &tn) && mb * tn <= 64;
}

int mt_cuda_wgmma_smem_bytes(int bm, int bn, int bk, int stages, int gemm1)
{
    return stages * (bm + (gemm1 ? 2 : 1) * bn) * bk * 2 + 1024;
}

int mt_cuda_fp8_wgmma_smem_bytes(int bm, int bn, int bk, int stages, int gemm1)
{
    (void)gemm1; /* GEMM 2's tile is as wide as GEMM 1's gate-and-up tile */
    return stages * (bm + 2 * bn) * bk + 1024;
}

#define ALIGN256(x) (((x) + 255) & ~(size_t)255)

/* kernels/cuda/moe.cu's gemm_args, field for field: the GEMM kernels take
 * it as their one parameter */
typedef struct mt_cuda_gemm_args {
    mt_dptr A, W, C, sorted_ids, expert_ids, num_post, topk_w;
    int num_pairs, a_div, n_out, k_red, num_pid_m, group_m;
    mt_dptr partials, counters;
    int splits, pad_;
} mt_cuda_gemm_args;
_Static_assert(sizeof(mt_cuda_gemm_args) == 104, "the layout of moe.cu's gemm_args");

static int cdiv(long a, long b) { return (int)((a + b - 1) / b); }

/* Row blocks that can hold pairs: the aligned runs are packed (experts
 * without pairs take no space), so they are the first min(pairs, E +
 * pairs / bm) of the capacity's. The GEMMs' grids cover only these. */
static int row_blocks(int pairs, int E, int bm, int cap)
{
    long rb = cdiv(cap, bm), most = pairs < E + pairs / bm ? pairs : E + pairs / bm;
    return (int)(rb < most ? rb : most);
}

int mt_cuda_moe_tile_n(const mt_cuda_moe *v, int gemm) { return v->cfg.block_n * (gemm == 2 && v->wgmma ? 2 : 1); }

/* blocks of `threads` threads, `regs` registers each and `smem` bytes of
 * dynamic shared memory that one SM holds at once */
static int blocks_per_sm(const mt_cuda_moe *v, int threads, int regs, int smem)
{
    int n = 2048 / (threads > 0 ? threads : 1);
    if (smem > 0 && v->smem_sm > 0 && v->smem_sm / (smem + 1024) < n) n = v->smem_sm / (smem + 1024);
    /* registers are granted per warp in units of 256 */
    int per_warp = (regs * 32 + 255) / 256 * 256;
    if (regs > 0 && threads >= 32 && 65536 / (per_warp * (threads / 32)) < n) n = 65536 / (per_warp * (threads / 32));
    return n < 1 ? 1 : n;
}

int mt_cuda_moe_blocks_per_sm(const mt_cuda_moe *v, int gemm)
{
    return blocks_per_sm(v, v->cfg.warps * 32, gemm == 1 ? v->r1.regs : v->r2.regs, (int)(gemm == 1 ? v->smem1 : v->smem2));
}

/* moe_gemv2's blocks that ask the L2 for their weight rows before waiting
 * for moe_gemv1 (moe.cu): those of the first wave, which can overlap its
 * end, and no more than half of the L2 holds. Later blocks gain nothing
 * from it and pay for it: prefetching every block's rows without the
 * overlap made the M = 1 rows 2 to 7 % slower, Mixtral's (28 KB rows)
 * most (H100, bench/results/2026-11-24-h100-align, call 47).
 * MOETUNE_DEBUG_CUDA=no-gemv-prefetch when the variant was built: none (to
 * compare). */
static int gemv_prefetch_blocks(const mt_cuda_moe *v, int topk, int cc, int N)
{
    if (!v->gemv_prefetch) return 0;
    long wave = (long)v->sms * blocks_per_sm(v, v->cfg.warps * 32, v->rg2.regs > 0 ? v->rg2.regs : 128, 0);
    long bytes = (long)topk * cc * N * 2, fit = v->l2_bytes > 0 && bytes > 0 ? (long)(v->l2_bytes / 2 / bytes) : wave;
    return (int)(wave < fit ? wave : fit);
}

int mt_cuda_align_one(void)
{
    /* one block up to 4,096 pairs: three launches cost 2 to 9 us more at
     * 512 to 2,048 pairs (Qwen3-30B-A3B M = 64 and 256) and 2 us more at
     * 4,096 (M = 512), 4 us less at 8,192 (M = 1024), 34 us less at 32,768
     * (M = 4096; H100, bench/results/2026-11-24-h100-align) */
    mt_cuda_switches sw;
    mt_cuda_switches_get(&sw);
    return sw.align_one;
}

int mt_cuda_splitk_on(void)
{
    mt_cuda_switches sw;
    mt_cuda_switches_get(&sw);
    return sw.splitk;
}

int mt_cuda_moe_splits(const mt_cuda_moe *v, int gemm, int pairs, int E, int n_out, int k_red)
{
    if (!v->splitk) return 1;
    int bm = v->cfg.block_m, bk = v->cfg.block_k, sms = v->sms > 0 ? v->sms : 1;
    long tiles = (long)row_blocks(pairs, E, bm, (int)mt_moe_align_capacity(pairs, 1, E, bm)) *
                 cdiv(n_out, mt_cuda_moe_tile_n(v, gemm));
    long slots = (long)mt_cuda_moe_blocks_per_sm(v, gemm) * sms;
    if (2 * tiles > slots) return 1;
    long s = slots / tiles, most = cdiv(k_red, bk) / 4;
    if (s > most) s = most;
    if (s > 16) s = 16;
    return s < 1 ? 1 : (int)s;
}

/* bytes of split-K slots and counters for m tokens; 0 once neither GEMM
 * splits, which then holds for every larger m (tiles grow with m) */
static int split_space(const mt_cuda_moe *v, int m, int E, int N, int K, int topk, size_t *slots, size_t *counters)
{
    int bm = v->cfg.block_m, bn = v->cfg.block_n, bn2 = mt_cuda_moe_tile_n(v, 2), pairs = m * topk;
    int rb = row_blocks(pairs, E, bm, (int)mt_moe_align_capacity(m, topk, E, bm));
    int s1 = mt_cuda_moe_splits(v, 1, pairs, E, N, K), s2 = mt_cuda_moe_splits(v, 2, pairs, E, K, N);
    size_t t1 = (size_t)rb * (size_t)cdiv(N, bn), t2 = (size_t)rb * (size_t)cdiv(K, bn2);
    size_t b1 = s1 > 1 ? t1 * (size_t)s1 * (size_t)bm * 2 * (size_t)bn * 4 : 0;
    size_t b2 = s2 > 1 ? t2 * (size_t)s2 * (size_t)bm * (size_t)bn2 * 4 : 0;
    *slots = b1 > b2 ? b1 : b2;
    *counters = (t1 > t2 ? t1 : t2) * 4;
    return s1 > 1 || s2 > 1;
}

struct ws_layout { size_t sorted, eids, npost, tpe, hist, act, out2, slots, counters, xq, xs, aq, as, amax, total; };

/* moe.cu's ALIGN_CHUNK: pairs per block of the many-block alignment */
#define ALIGN_CHUNK 1024

static void layout(const mt_cuda_moe *v, int chunk, int E, int N, int K, int topk, struct ws_layout *L)
{
    size_t cap = (size_t)mt_moe_align_capacity(chunk, topk, E, v->cfg.block_m);
    size_t pairs = (size_t)chunk * (size_t)topk, o = 0, slots = 0, counters = 0;
    /* a chunk's last, shorter run may split more: the most any m up to
     * chunk needs */
    for (int m = 1, more = 1; m <= chunk && more; m++) {
        size_t sl, ct;
        more = split_space(v, m, E, N, K, topk, &sl, &ct);
        if (sl > slots) slots = sl;
        if (ct > counters) counters = ct;
    }
    L->sorted = o; o += ALIGN256(cap * 4);
    L->eids = o;   o += ALIGN256((cap / (size_t)v->cfg.block_m + 1) * 4);
    L->npost = o;  o += 256;
    L->tpe = o;    o += ALIGN256((size_t)E * 4);
    L->hist = o;   o += ALIGN256((pairs + ALIGN_CHUNK - 1) / ALIGN_CHUNK * (size_t)E * 4);
    L->act = o;    o += ALIGN256(pairs * (size_t)N * 2);
    L->out2 = o;   o += ALIGN256(pairs * (size_t)K * 2);
    L->slots = o;  o += ALIGN256(slots);
    L->counters = o; o += ALIGN256(counters);
    /* fp8: the quantised x and intermediate, and their scales (groups of 16
     * columns at the finest, which covers any block) */
    int f8 = v->fp8 != 0;
    L->xq = o;     o += f8 ? ALIGN256((size_t)chunk * (size_t)K) : 0;
    L->xs = o;     o += f8 ? ALIGN256((size_t)chunk * (size_t)cdiv(K, 16) * 4) : 0;
    L->aq = o;     o += f8 ? ALIGN256(pairs * (size_t)N) : 0;
    L->as = o;     o += f8 ? ALIGN256(pairs * (size_t)cdiv(N, 16) * 4) : 0;
    L->amax = o;   o += f8 ? 256 : 0;
    L->total = o;
}

size_t mt_cuda_moe_workspace(const mt_cuda_moe *v, int chunk, int E, int N, int K, int topk)
{
    struct ws_layout L;
    layout(v, chunk, E, N, K, topk, &L);
    return L.total;
}

/* The small-batch path's grids for m tokens (pairs of them): columns in
 * groups of BLOCK_SIZE_N / 16 (moe.cu's GV_CC, *cc); the pairs (tokens)
 * fastest in the grid, so that those sharing an expert read its rows side
 * by side: Qwen3-30B-A3B M = 8 201 -> 173 us, DeepSeek-V3 241 -> 223, M = 1
 * unchanged (H100, bench/results/2026-11-24-h100-moe-gemv, call 38); the
 * column groups fastest where there are more than grid y takes. Returns
 * the kernels' rows_fast. */
static int gemv_grids(const mt_cuda_moe *v, int N, int K, int pairs, int m, int *cc, unsigned g1[3], unsigned g2[3])
{
    *cc = v->cfg.block_n / 16 > 2 ? v->cfg.block_n / 16 : 2;
    int rf = cdiv(N, *cc) <= 65535 && cdiv(K, *cc) <= 65535;
    g1[0] = (unsigned)cdiv(N, *cc), g1[1] = (unsigned)pairs, g1[2] = 1;
    g2[0] = (unsigned)cdiv(K, *cc), g2[1] = (unsigned)m, g2[2] = 1;
    if (rf) {
        g1[0] = (unsigned)pairs, g1[1] = (unsigned)cdiv(N, *cc);
        g2[0] = (unsigned)m, g2[1] = (unsigned)cdiv(K, *cc);
    }
    return rf;
}

/* the pairs of ids sorted by expert into the workspace: one block up to
 * align_one pairs, else three launches over many */
static int launch_align(mt_cuda *c, const mt_cuda_moe *v, void *stream, mt_dptr ids, int pairs, int E,
                        const struct ws_layout *L, mt_dptr ws, int cap, int ncounters)
{
    mt_dptr sorted = ws + L->sorted, eids = ws + L->eids, npost = ws + L->npost, tpe = ws + L->tpe;
    mt_dptr counters = ws + L->counters, hist = ws + L->hist;
    if (pairs <= v->align_one) {
        void *a_align[] = {&ids, &pairs, &E, &sorted, &eids, &npost, &tpe, &cap, &counters, &ncounters};
        return mt_cuda_launch_on(c, stream, v->align, 1, 1024, 0, a_align);
    }
    int nblk = cdiv(pairs, ALIGN_CHUNK), rc;
    void *a_count[] = {&ids, &pairs, &E, &hist};
    void *a_scan[] = {&pairs, &E, &nblk, &hist, &sorted, &eids, &npost, &tpe, &counters, &ncounters};
    void *a_scatter[] = {&ids, &pairs, &E, &hist, &sorted};
    if ((rc = mt_cuda_launch_on(c, stream, v->align_count, (unsigned)nblk, 256, 0, a_count)) != MT_OK ||
        (rc = mt_cuda_launch_on(c, stream, v->align_scan, 1, 1024, 0, a_scan)) != MT_OK)
        return rc;
    return mt_cuda_launch_on(c, stream, v->align_scatter, (unsigned)nblk, 256, 0, a_scatter);
}

/* moe.cu's f8_args */
typedef struct f8_args {
    mt_dptr A, W, C, sorted_ids, expert_ids, num_post, topk_w, a_scale, w_scale;
    int num_pairs, a_div, n_out, k_red, num_pid_m, group_m, channel, block_n, block_k, pad;
} f8_args;

/* rows x cols bf16 at in quantised into q (scales at sc): with the static
 * scale fixed, else (per tensor) the maximum of the whole, else per row
 * and group: a row's groups a warp each where there are several of up to
 * 256 columns (DeepSeek-V3's 1x128), else a CTA a row */
static int quant_rows(mt_cuda *c, const mt_cuda_moe *v, void *stream, mt_dptr in, int rows, int cols, int group,
                      int tensor, mt_dptr fixed, mt_dptr amax, mt_dptr q, mt_dptr sc)
{
    int rc = MT_OK, one = 1;
    mt_dptr none = 0, use_amax = tensor && !fixed ? amax : 0;
    if (use_amax) {
        long n = (long)rows * cols;
        unsigned blocks = (unsigned)(n / 2048 + 1 < 1024 ? n / 2048 + 1 : 1024);
        void *a_zero[] = {&amax, &one}, *a_amax[] = {&in, &n, &amax};
        if ((rc = mt_cuda_launch_on(c, stream, v->zero, 1, 32, 0, a_zero)) != MT_OK ||
            (rc = mt_cuda_launch_on(c, stream, v->amax, blocks, 256, 0, a_amax)) != MT_OK)
            return rc;
    }
    if (!tensor && group < cols && group <= 256) {
        long warps = (long)rows * ((cols + group - 1) / group);
        void *a_g[] = {&in, &rows, &cols, &group, &q, &sc};
        return rows > 0 ? mt_cuda_launch_on(c, stream, v->quant_g, (unsigned)((warps + 7) / 8), 256, 0, a_g) : MT_OK;
    }
    void *a_q[] = {&in, &cols, &group, tensor && fixed ? &fixed : &none, &use_amax, &q, &sc};
    return rows > 0 ? mt_cuda_launch_on(c, stream, v->quant, (unsigned)rows, 256, 0, a_q) : MT_OK;
}

/* The fp8 pipeline of a chunk: x quantised, align, GEMM 1, the
 * intermediate quantised, GEMM 2, combine. */
static int enqueue_fp8(mt_cuda *c, const mt_cuda_moe *v, const mt_cuda_moe_args *a, void *stream, const struct ws_layout *L,
                       int chunk, int ncounters)
{
    int rc = MT_OK, bm = v->cfg.block_m, bn = v->cfg.block_n, group_m = v->cfg.group_m > 0 ? v->cfg.group_m : 1;
    int E = a->E, N = a->N, K = a->K, topk = a->topk, num_sm = v->cfg.num_sm;
    int tensor = !a->channel && a->block_k <= 0, g1k = a->block_k > 0 ? a->block_k : K, g2k = a->block_k > 0 ? a->block_k : N;
    unsigned threads = (unsigned)(v->cfg.warps * 32);
    mt_dptr ws = a->workspace, xq = ws + L->xq, xs = ws + L->xs, aq = ws + L->aq, as = ws + L->as, amax = ws + L->amax;
    mt_dptr act = ws + L->act, out2 = ws + L->out2;
    if ((v->fp8 == 2) != (a->block_k > 0) || K % 16 || N % 16 ||
        (a->block_k > 0 && (a->block_n < 2 || a->block_n % 2 || a->block_k % 16 ||
                            (!v->cfg.gemv && a->block_k % v->cfg.block_k))) ||
        (v->cfg.gemv && !mt_cuda_gemv_fits(0, E, topk)))
        return MT_EINVAL;
    /* the small-batch path's scheme code (moe.cu's moe_gemv1_fp8): 0 per
     * tensor, 1 per channel and token, 2 blocks */
    int scheme = tensor ? 0 : a->block_k > 0 ? 2 : 1, sbn = a->block_n > 0 ? a->block_n : 1, sbk = a->block_k > 0 ? a->block_k : 16;
    for (int t0 = 0; t0 < a->M && rc == MT_OK; t0 += chunk) {
        int m = a->M - t0 < chunk ? a->M - t0 : chunk, pairs = m * topk;
        int cap = (int)mt_moe_align_capacity(m, topk, E, bm), rb = row_blocks(pairs, E, bm, cap);
        unsigned g1 = (unsigned)(rb * cdiv(N, bn)), g2 = (unsigned)(rb * cdiv(K, mt_cuda_moe_tile_n(v, 2)));
        if (num_sm > 0) {
            g1 = g1 < (unsigned)num_sm ? g1 : (unsigned)num_sm;
            g2 = g2 < (unsigned)num_sm ? g2 : (unsigned)num_sm;
        }
        unsigned gc = (unsigned)(((long)m * K / 8 + 255) / 256);
        mt_dptr x = a->x + (mt_dptr)t0 * (mt_dptr)K * 2, out = a->out + (mt_dptr)t0 * (mt_dptr)K * 2;
        mt_dptr ids = a->topk_ids + (mt_dptr)t0 * (mt_dptr)topk * 4, tw = a->topk_w + (mt_dptr)t0 * (mt_dptr)topk * 4;
        f8_args f1 = {xq, a->w1, act, ws + L->sorted, ws + L->eids, ws + L->npost, 0, tensor && a->a1_scale ? a->a1_scale : xs,
                      a->w1_scale, pairs, topk, N, K, rb, group_m, a->channel, a->block_n, a->block_k, 0};
        f8_args f2 = {aq, a->w2, out2, ws + L->sorted, ws + L->eids, ws + L->npost, tw, tensor && a->a2_scale ? a->a2_scale : as,
                      a->w2_scale, pairs, 1, K, N, rb, group_m, a->channel, a->block_n, a->block_k, 0};
        void *a_g1[] = {&f1}, *a_g2[] = {&f2}, *a_c[] = {&out2, &out, &m, &topk, &K};
        if (v->cfg.gemv) {
            /* two launches and the quantisations */
            int cc;
            unsigned grid1[3], grid2[3];
            int rf = gemv_grids(v, N, K, pairs, m, &cc, grid1, grid2);
            mt_dptr xsc = tensor && a->a1_scale ? a->a1_scale : xs, asc = tensor && a->a2_scale ? a->a2_scale : as;
            void *a_v1[] = {&xq, &xsc, (void *)&a->w1, (void *)&a->w1_scale, &ids, &act, &topk, &N, &K, &rf, &scheme, &sbn, &sbk};
            void *a_v2[] = {&aq, &asc, (void *)&a->w2, (void *)&a->w2_scale, &ids, &tw, &out, &topk, &N, &K, &rf, &scheme, &sbn, &sbk};
            if ((rc = quant_rows(c, v, stream, x, m, K, g1k, tensor, a->a1_scale, amax, xq, xs)) != MT_OK ||
                (rc = mt_cuda_launch3_on(c, stream, v->gemv1, grid1, threads, 0, a_v1)) != MT_OK ||
                (rc = quant_rows(c, v, stream, act, pairs, N, g2k, tensor, a->a2_scale, amax, aq, as)) != MT_OK)
                break;
            rc = mt_cuda_launch3_on(c, stream, v->gemv2, grid2, threads, 0, a_v2);
            continue;
        }
        /* per tensor, the GEMMs read the static scale, or the dynamic one
         * that fp8_quant_rows writes to xs[0] and as[0] */
        if ((rc = quant_rows(c, v, stream, x, m, K, g1k, tensor, a->a1_scale, amax, xq, xs)) != MT_OK ||
            (rc = launch_align(c, v, stream, ids, pairs, E, L, ws, cap, ncounters)) != MT_OK ||
            (rc = mt_cuda_launch_on(c, stream, v->gemm1, g1, threads, v->smem1, a_g1)) != MT_OK ||
            (rc = quant_rows(c, v, stream, act, pairs, N, g2k, tensor, a->a2_scale, amax, aq, as)) != MT_OK ||
            (rc = mt_cuda_launch_on(c, stream, v->gemm2, g2, threads, v->smem2, a_g2)) != MT_OK)
            break;
        rc = mt_cuda_launch_on(c, stream, v->combine, gc, 256, 0, a_c);
    }
    return rc;
}

int mt_cuda_moe_enqueue(mt_cuda *c, const mt_cuda_moe *v, const mt_cuda_moe_args *a, void *stream)
{
    struct ws_layout L;
    int rc = MT_OK, bm = v->cfg.block_m, bn = v->cfg.block_n, group_m = v->cfg.group_m > 0 ? v->cfg.group_m : 1, num_sm = v->cfg.num_sm;
    int chunk = a->chunk > 0 && a->chunk < a->M ? a->chunk : a->M;
    unsigned threads = (unsigned)(v->cfg.warps * 32);
    layout(v, chunk, a->E, a->N, a->K, a->topk, &L);
    mt_dptr sorted = a->workspace + L.sorted, eids = a->workspace + L.eids, npost = a->workspace + L.npost;
    mt_dptr act = a->workspace + L.act, out2 = a->workspace + L.out2;
    mt_dptr slots = a->workspace + L.slots, counters = a->workspace + L.counters;
    int ncounters = (int)((L.xq - L.counters) / 4);
    int E = a->E, N = a->N, K = a->K, topk = a->topk;
    if (v->fp8) return enqueue_fp8(c, v, a, stream, &L, chunk, ncounters);
    /* the small-batch path: two launches per chunk */
    if (v->cfg.gemv) {
        if (!mt_cuda_gemv_fits(0, E, topk)) return MT_EINVAL; /* its shared memory holds topk slots */
        for (int t0 = 0; t0 < a->M && rc == MT_OK; t0 += chunk) {
            int m = a->M - t0 < chunk ? a->M - t0 : chunk, pairs = m * topk;
            mt_dptr x = a->x + (mt_dptr)t0 * (mt_dptr)K * 2, out = a->out + (mt_dptr)t0 * (mt_dptr)K * 2;
            mt_dptr ids = a->topk_ids + (mt_dptr)t0 * (mt_dptr)topk * 4, tw = a->topk_w + (mt_dptr)t0 * (mt_dptr)topk * 4;
            int cc;
            unsigned grid1[3], grid2[3];
            int rf = gemv_grids(v, N, K, pairs, m, &cc, grid1, grid2), pf = gemv_prefetch_blocks(v, topk, cc, N);
            void *a_v1[] = {&x, (void *)&a->w1, &ids, &act, &topk, &N, &K, &rf};
            void *a_v2[] = {&act, (void *)&a->w2, &ids, &tw, &out, &topk, &N, &K, &rf, &pf};
            if ((rc = mt_cuda_launch3_on(c, stream, v->gemv1, grid1, threads, 0, a_v1)) != MT_OK) break;
            rc = mt_cuda_launch3_dependent_on(c, stream, v->gemv2, grid2, threads, 0, a_v2);
        }
        return rc;
    }
    for (int t0 = 0; t0 < a->M && rc == MT_OK; t0 += chunk) {
        int m = a->M - t0 < chunk ? a->M - t0 : chunk;
        int pairs = m * topk;
        int cap = (int)mt_moe_align_capacity(m, topk, E, bm);
        int rb = row_blocks(pairs, E, bm, cap);
        int s1 = mt_cuda_moe_splits(v, 1, pairs, E, N, K), s2 = mt_cuda_moe_splits(v, 2, pairs, E, K, N);
        unsigned g1 = (unsigned)(rb * cdiv(N, bn) * s1), g2 = (unsigned)(rb * cdiv(K, mt_cuda_moe_tile_n(v, 2)) * s2);
        if (num_sm > 0) { /* a persistent grid never has more CTAs than tiles */
            g1 = g1 < (unsigned)num_sm ? g1 : (unsigned)num_sm;
            g2 = g2 < (unsigned)num_sm ? g2 : (unsigned)num_sm;
        }
        unsigned gc = (unsigned)(((long)m * K / 8 + 255) / 256);
        mt_dptr x = a->x + (mt_dptr)t0 * (mt_dptr)K * 2, out = a->out + (mt_dptr)t0 * (mt_dptr)K * 2;
        mt_dptr ids = a->topk_ids + (mt_dptr)t0 * (mt_dptr)topk * 4, tw = a->topk_w + (mt_dptr)t0 * (mt_dptr)topk * 4;
        mt_cuda_gemm_args ga1 = {x, a->w1, act, sorted, eids, npost, 0, pairs, topk, N, K, rb, group_m,
                                 slots, counters, s1, 0};
        mt_cuda_gemm_args ga2 = {act, a->w2, out2, sorted, eids, npost, tw, pairs, 1, K, N, rb, group_m,
                                 slots, counters, s2, 0};
        void *a_g1[] = {&ga1}, *a_g2[] = {&ga2};
        void *a_c[] = {&out2, &out, &m, &topk, &K};
        if ((rc = launch_align(c, v, stream, ids, pairs, E, &L, a->workspace, cap, ncounters)) != MT_OK) break;
        if ((rc = mt_cuda_launch_on(c, stream, v->gemm1, g1, threads, v->smem1, a_g1)) != MT_OK) break;
        if ((rc = mt_cuda_launch_on(c, stream, v->gemm2, g2, threads, v->smem2, a_g2)) != MT_OK) break;
        rc = mt_cuda_launch_on(c, stream, v->combine, gc, 256, 0, a_c);
    }
    return rc;
}
