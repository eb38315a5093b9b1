/*
 * The cross-backend check, in the spirit of ggml's test-backend-ops: every
 * kernel family x the backend's dtypes x the family's check cases x a
 * spread of its space's valid configs (the default first), each run on the
 * backend's bench and compared with the family's reference within the
 * dtype's bound. A dtype the backend's kernel does not take is reported as
 * "not supported", never skipped silently.
 *
 * usage: test_backend_ops [--device cpu|cuda:N|hip:N] [--family NAME]
 *                         [--configs N] [--perf]
 *   --configs N  configs per case: the default and N - 1 spread over the
 *                valid points (default 4; 0: every valid point)
 *   --perf       time each config with the backend's policy and print it
 *                (otherwise each runs once: correctness only)
 *   --fault nan  poison every output with a NaN after the kernel ran: each
 *                case must then fail (the check of the check)
 * Exit 0 when every supported case passed, 1 when one failed, 2 on bad
 * usage, 77 when the device is not there (CI without a GPU).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "family_tuning.h"
#include "measure.h"
#include "measure_cuda.h"
#include "moetune/moetune.h"
#include "space.h"

static const char *const all_dtypes[] = {"bf16", "fp16", "fp32", "fp8_w8a8", "fp8_w8a8_per_channel"};

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"device", required_argument, 0, 'd'}, {"family", required_argument, 0, 'f'},
                                         {"configs", required_argument, 0, 'c'}, {"perf", no_argument, 0, 'p'}, {"fault", required_argument, 0, 'F'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *device = "cpu", *only = NULL;
    int nconfigs = 4, perf = 0, fault = MT_FAULT_NONE, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') device = optarg;
        else if (c == 'f') only = optarg;
        else if (c == 'c') nconfigs = atoi(optarg);
        else if (c == 'p') perf = 1;
        else if (c == 'F' && !strcmp(optarg, "nan")) fault = MT_FAULT_NAN;
        else {
            fprintf(stderr, "usage: test_backend_ops [--device cpu|cuda:N|hip:N] [--family NAME] [--configs N] [--perf] "
                            "[--fault nan]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (only && !mt_family_find(only)) {
        fprintf(stderr, "test_backend_ops: no kernel family '%s'\n", only);
        return 2;
    }
    mt_device_spec spec;
    if (mt_device_spec_parse(device, &spec) != MT_OK || spec.auto_pick || nconfigs < 0) {
        fprintf(stderr, "test_backend_ops: --device cpu, cuda:N or hip:N, --configs 0 or more\n");
        return 2;
    }
    mt_bench b = {"cpu", NULL, NULL, 1, 0};
    mt_device_info info;
    char err[1024];
    memset(&info, 0, sizeof info);
    if (spec.kind == MT_BACKEND_CPU) {
        mt_device_cpu_info(&info);
        if (mt_cpu_bench_new(&b.cpu, info.cores) != MT_OK) return fprintf(stderr, "cannot start the CPU bench\n"), 1;
    } else {
        b.backend = spec.kind == MT_BACKEND_HIP ? "hip" : "cuda";
        if (mt_cuda_bench_new(&b.cuda, spec.kind == MT_BACKEND_HIP, spec.index, NULL, err, sizeof err) != MT_OK) {
            printf("test_backend_ops: no %s device: %s\n", b.backend, err);
            return 77;
        }
        mt_cuda_bench_info(b.cuda, &info);
    }
    if (b.cpu) mt_cpu_bench_set_fault(b.cpu, fault);
    if (b.cuda) mt_cuda_bench_set_fault(b.cuda, fault);
    b.cores = info.cores;
    b.smem_per_block = info.smem_per_block;
    printf("backend %s: %s (%d cores)\n", b.backend, info.name, info.cores);
    int passed = 0, failed = 0, unsupported = 0;
    for (int fi = 0; fi < mt_nfamilies; fi++) {
        const mt_family *f = mt_families[fi];
        const mt_family_tuning *t = mt_family_tuning_of(f);
        if (only && strcmp(only, f->name)) continue;
        mt_space sp;
        if (!t || t->space(&sp, b.backend, b.cores) != MT_OK) {
            printf("  %-12s %-5s not supported: the %s backend has no kernel of this family\n", f->name, "", b.backend);
            unsupported++;
            continue;
        }
        for (size_t di = 0; di < sizeof all_dtypes / sizeof all_dtypes[0]; di++) {
            const char *dt = all_dtypes[di];
            if (!mt_family_takes_dtype(t, b.backend, dt)) {
                printf("  %-12s %-5s not supported on %s (it takes %s)\n", f->name, dt, b.backend, t->dtypes(b.backend));
                unsupported++;
                continue;
            }
            for (int ci = 0; ci < t->nchecks; ci++) {
                const mt_family_check *ck = &t->checks[ci];
                char keytext[400], why[300];
                snprintf(keytext, sizeof keytext, "%.*s,\"dtype\":\"%s\"}", (int)strlen(ck->key) - 1, ck->key, dt);
                mt_family_key k;
                if (mt_family_key_parse(f, keytext, &k, why, sizeof why) != MT_OK) {
                    printf("FAIL %s %s: the check's key: %s\n", f->name, keytext, why);
                    failed++;
                    continue;
                }
                mt_space_ctx x;
                t->space_ctx(&k, ck->point, b.cores, b.smem_per_block, &x);
                mt_config *pts = NULL, def;
                int n = mt_space_enumerate(&sp, &x, &pts);
                if (n <= 0) {
                    printf("FAIL %s %s: no valid config\n", f->name, keytext);
                    failed++;
                    free(pts);
                    continue;
                }
                sp.default_config(&sp, &x, &def);
                int *order = malloc((size_t)n * sizeof *order);
                int m = order ? mt_grid_order(pts, n, &def, sp.nparams, nconfigs, order) : 0;
                for (int i = 0; i < m; i++) {
                    mt_policy pol;
                    mt_measure_result res;
                    char params[512], res_json[512];
                    mt_policy_default(b.backend, &pol);
                    if (!perf) pol.warmup = 0, pol.min_reps = pol.max_reps = 1, pol.min_time_s = 0;
                    mt_config_to_json(&sp, &pts[order[i]], params, sizeof params);
                    int rc = t->measure(&b, &k, 1, ck->point, &sp, &pts[order[i]], 1, &pol, &res, res_json,
                                        sizeof res_json);
                    char pt[64];
                    snprintf(pt, sizeof pt, "%lld", (long long)ck->point[0]);
                    if (f->npoint > 1) snprintf(pt + strlen(pt), sizeof pt - strlen(pt), ",%lld", (long long)ck->point[1]);
                    if (rc == MT_OK && res.ok) {
                        passed++;
                        printf("  ok   %-12s %-5s %s @%s %s err %.2e <= %.0e", f->name, dt, ck->key, pt, params, res.rel_err,
                               res.tolerance);
                        if (perf) printf("  %.2f us", res.median_us);
                        printf("\n");
                    } else {
                        failed++;
                        printf("FAIL %-12s %-5s %s @%s %s: %s\n", f->name, dt, ck->key, pt, params,
                               rc == MT_OK ? res.reason : mt_status_str(rc));
                    }
                    if (rc == MT_ECRASH) {
                        printf("the device context is lost: stopping\n");
                        free(order);
                        free(pts);
                        goto done;
                    }
                }
                free(order);
                free(pts);
            }
        }
    }
done:
    printf("test_backend_ops: %d passed, %d failed, %d not supported\n", passed, failed, unsupported);
    mt_cpu_bench_free(b.cpu);
    mt_cuda_bench_free(b.cuda);
    return failed || passed == 0 ? 1 : 0;
}
