/* NVRTC needs no GPU: compile a sample of the declared CUDA variants, the
 * extremes of every tunable among them, for sm_90a and sm_80, and check that
 * a config the kernel's static assertions forbid is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda_rt.h"
#include "moetune/moetune.h"
#include "space.h"


static int compile(const mt_config *c, const char *arch, char **log)
{
    char d[8][48], err[512];
    const char *opts[8];
    int wm = mt_cuda_warps_m(c->v[0], c->v[1], c->v[4]);
    snprintf(d[0], 48, "-DBLOCK_SIZE_M=%d", c->v[0]);
    snprintf(d[1], 48, "-DBLOCK_SIZE_N=%d", c->v[1]);
    snprintf(d[2], 48, "-DBLOCK_SIZE_K=%d", c->v[2]);
    snprintf(d[3], 48, "-DGROUP_SIZE_M=%d", c->v[3]);
    snprintf(d[4], 48, "-DNUM_WARPS=%d", c->v[4]);
    snprintf(d[5], 48, "-DNUM_STAGES=%d", c->v[5]);
    snprintf(d[6], 48, "-DWARPS_M=%d", wm ? wm : 3);
    snprintf(d[7], 48, "-DNUM_SM=%d", c->v[6]);
    for (int i = 0; i < 8; i++) opts[i] = d[i];
    char *bin = NULL;
    size_t len = 0;
    int rc = mt_nvrtc_compile(mt_cuda_moe_source(), arch, opts, 8, &bin, &len, log, err, sizeof err);
    if (rc == MT_OK) CHECK(len > 4 && memcmp(bin, "\x7f" "ELF", 4) == 0, "%s: the cubin is not an ELF file", arch);
    else if (rc != MT_EPARSE) fprintf(stderr, "%s\n", err);
    free(bin);
    return rc;
}

int main(void)
{
    char err[256], *log = NULL, *bin = NULL;
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
        mt_space_ctx ctx = {8, 7168, 4096, 2, ms[mi], 1, 227 * 1024};
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
    /* a tile the static assertions forbid: 24 rows are not whole MMA tiles */
    mt_config bad = {{24, 64, 64, 1, 4, 3, 0}};
    log = NULL;
    CHECK(compile(&bad, "sm_90a", &log) == MT_EPARSE, "BLOCK_SIZE_M=24 must not compile");
    CHECK(log && strstr(log, "MMA tiles"), "the log names the violated assertion: %.200s", log ? log : "(none)");
    free(log);
    printf("compiled %d sampled variants\n", n);
    return check_report("test_nvrtc");
}
