/* moetune compile: fill the CUDA kernel cache ahead of a sweep, with every
 * core. NVRTC needs no GPU, so a CPU node (or a container build) can compile
 * for the fleet's architecture and ship the cache; on a GPU node it turns a
 * sweep's compiles (about a second each) into seconds before it starts.
 * `sweep` does the same on its own before measuring. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "device.h"
#include "hip_rt.h"
#include "moetune/moetune.h"
#include "moe_launch.h" /* mt_cuda_fp8_arch */
#include "precompile.h"
#include "util.h"

static const char usage[] =
    "usage: moetune compile [--arch sm_XX | --arch gfxNNN | --device cuda:N|hip:N] [options]\n"
    "\n"
    "Compile every binary of the fused-MoE space (or, with --kernel attention,\n"
    "every variant of one attention shape) into the kernel cache, in parallel,\n"
    "so that sweeps load instead of compiling: NVRTC for NVIDIA\n"
    "targets, hipRTC for AMD ones (the same kernel sources; the HIP backend\n"
    "compiles but has never run on an AMD GPU). No GPU is needed with --arch.\n"
    "A binary is one tile shape (block sizes, warps, stages), dtype and, on AMD,\n"
    "waves_per_eu: GROUP_SIZE_M and NUM_SM do not change it.\n"
    "  --arch ARCH           target: sm_80, sm_89, sm_90a, ... or gfx908, gfx90a\n"
    "  --device cuda:N|hip:N target this machine's GPU (its arch and shared memory;\n"
    "                        an AMD GPU's from the amdgpu driver, no HIP runtime needed)\n"
    "  --smem-limit BYTES    shared memory a block may use (default: the device's,\n"
    "                        or the architecture's known limit)\n"
    "  --dtype bf16|fp16|fp8_w8a8|all  (default bf16; fp8_w8a8: per-tensor and per-channel\n"
    "                        scales and 128x128 blocks, for sm_89 and later)\n"
    "  --jobs N              compiler processes (default: the online CPUs)\n"
    "  --limit N             compile only the first N binaries (for a quick check)\n"
    "  --cache-dir DIR       the cache (default $XDG_CACHE_HOME/moetune/cuda, as\n"
    "                        sweep; .../moetune/hip for AMD targets)\n"
    "  --quiet               no progress line\n"
    "  --kernel attention    the paged attention decode space of one shape instead\n"
    "                        (NVIDIA targets): --heads H --kv-heads K --head-dim D\n"
    "                        --page-size P [--max-context C], every variant a sweep\n"
    "                        over contexts up to C (default 8192) may time\n";

static void on_progress(int done, int total, void *user)
{
    char b[64];
    snprintf(b, sizeof b, "compiled %d of %d", done, total);
    mt_progress_update(user, done, total, b);
}

int cmd_compile(int argc, char **argv)
{
    static const struct option opts[] = {
        {"arch", required_argument, 0, 'a'},       {"device", required_argument, 0, 'd'},
        {"smem-limit", required_argument, 0, 's'}, {"dtype", required_argument, 0, 't'},
        {"jobs", required_argument, 0, 'j'},       {"limit", required_argument, 0, 'l'},
        {"cache-dir", required_argument, 0, 'c'},  {"quiet", no_argument, 0, 'q'},
        {"kernel", required_argument, 0, 'k'},     {"heads", required_argument, 0, 'H'},
        {"kv-heads", required_argument, 0, 'V'},   {"head-dim", required_argument, 0, 'D'},
        {"page-size", required_argument, 0, 'P'},  {"max-context", required_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    const char *arch = NULL, *device = NULL, *dir = NULL;
    int64_t smem = 0, jobs = sysconf(_SC_NPROCESSORS_ONLN), limit = 0;
    int64_t heads = 0, kv_heads = 0, head_dim = 0, page = 0, max_ctx = 8192;
    int attn = 0;
    int mask = 1, quiet = 0, c, st;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        st = 0;
        switch (c) {
        case 'h': fputs(usage, stdout); return mt_cli_finish("compile", 0);
        case 'a': arch = optarg; break;
        case 'd': device = optarg; break;
        case 's': st = mt_parse_int_opt("compile", "--smem-limit", optarg, 16 * 1024, 1 << 24, &smem); break;
        case 'j': st = mt_parse_int_opt("compile", "--jobs", optarg, 1, 1024, &jobs); break;
        case 'l': st = mt_parse_int_opt("compile", "--limit", optarg, 1, 1 << 20, &limit); break;
        case 'c': dir = optarg; break;
        case 'q': quiet = 1; break;
        case 'k':
            if (!strcmp(optarg, "attention")) attn = 1;
            else if (!strcmp(optarg, "moe") || !strcmp(optarg, "fused_moe")) attn = 0;
            else return mt_usage_error("compile", "--kernel '%s': expected moe or attention", optarg);
            break;
        case 'H': st = mt_parse_int_opt("compile", "--heads", optarg, 1, 4096, &heads); break;
        case 'V': st = mt_parse_int_opt("compile", "--kv-heads", optarg, 1, 4096, &kv_heads); break;
        case 'D': st = mt_parse_int_opt("compile", "--head-dim", optarg, 32, 256, &head_dim); break;
        case 'P': st = mt_parse_int_opt("compile", "--page-size", optarg, 1, 1024, &page); break;
        case 'C': st = mt_parse_int_opt("compile", "--max-context", optarg, 1, 1 << 24, &max_ctx); break;
        case 't':
            if (!strcmp(optarg, "bf16")) mask = 1;
            else if (!strcmp(optarg, "fp16")) mask = 2;
            else if (!strcmp(optarg, "fp8_w8a8")) mask = 12;
            else if (!strcmp(optarg, "all")) mask = 15;
            else return mt_usage_error("compile", "--dtype '%s': expected bf16, fp16, fp8_w8a8 or all", optarg);
            break;
        default: return mt_usage_error("compile", "unknown option '%s'", argv[optind - 1]);
        }
        if (st) return st;
    }
    if (optind < argc) return mt_usage_error("compile", "unexpected argument '%s'", argv[optind]);
    if (!!arch == !!device)
        return mt_usage_error("compile", "give one of --arch (e.g. sm_90a or gfx90a) or --device cuda:N or hip:N");
    if (jobs < 1) jobs = 1;
    if (attn && (!heads || !kv_heads || !head_dim || !page))
        return mt_usage_error("compile", "--kernel attention: give --heads, --kv-heads, --head-dim and --page-size");
    if (attn && heads % kv_heads)
        return mt_usage_error("compile", "--heads %lld is not a multiple of --kv-heads %lld", (long long)heads,
                              (long long)kv_heads);
    if (!attn && (heads || kv_heads || head_dim || page))
        return mt_usage_error("compile", "--heads, --kv-heads, --head-dim and --page-size go with --kernel attention");

    mt_device_info dev;
    char arch_buf[32], err[512] = "", cache[1100];
    memset(&dev, 0, sizeof dev);
    if (device) {
        /* the device's own arch and limit, read through the worker's code */
        mt_device_spec spec;
        if (mt_device_spec_parse(device, &spec) != MT_OK || spec.kind == MT_BACKEND_CPU || spec.auto_pick)
            return mt_usage_error("compile", "--device '%s': expected cuda:N or hip:N", device);
        if (spec.kind == MT_BACKEND_HIP) {
            /* the gfx target as the amdgpu driver lists it (hipRTC needs no
             * GPU, so neither does this), and the 64 KB of LDS a workgroup
             * has on every CDNA GPU */
            mt_hip_kfd_gpu g;
            if (mt_hip_kfd_gpu_at(spec.index, &g, err, sizeof err) != MT_OK)
                return mt_fail("compile", "--device %s: %s", device, err);
            snprintf(dev.arch, sizeof dev.arch, "%s", g.arch);
            dev.smem_per_block = 64 * 1024;
        } else if (mt_device_cuda_info(spec.index, &dev, err, sizeof err) != MT_OK) {
            return mt_fail("compile", "--device %s: %s", device, err);
        }
        snprintf(arch_buf, sizeof arch_buf, "%s", dev.arch);
        arch = arch_buf;
        if (!smem) smem = dev.smem_per_block;
    } else if ((strncmp(arch, "sm_", 3) != 0 && strncmp(arch, "gfx", 3) != 0) || !arch[3] || strlen(arch) > 24) {
        return mt_usage_error("compile", "--arch '%s': expected an NVIDIA target such as sm_80 or sm_90a, or an AMD one "
                                         "such as gfx90a", arch);
    }
    int hip = !strncmp(arch, "gfx", 3);
    if (!smem) smem = mt_arch_smem_limit(arch);
    if (!smem)
        return mt_usage_error("compile", "--arch %s: its shared-memory limit is not known here; give --smem-limit BYTES",
                              arch);
    if ((mask & 12) && attn) return mt_usage_error("compile", "--dtype fp8_w8a8 is the fused-MoE kernels' only");
    char f8why[200];
    if (mask == 12 && (hip || !mt_cuda_fp8_arch(arch, f8why, sizeof f8why)))
        return mt_usage_error("compile", "--dtype fp8_w8a8 for %s: %s", arch,
                              hip ? "moetune's fp8 kernels are CUDA's only" : f8why);
    if (dir) snprintf(cache, sizeof cache, "%s", dir);
    else mt_kernel_cache_dir(hip ? "hip" : "cuda", cache, sizeof cache); /* AMD code objects beside the cubins */
    if (!cache[0]) return mt_usage_error("compile", "no cache folder: set $XDG_CACHE_HOME or $HOME, or give --cache-dir");

    mt_progress pr;
    mt_progress_init_named(&pr, quiet, "compile");
    mt_precompile_stats s;
    int rc = attn ? mt_precompile_cuda_attn(arch, (int)smem, (int)head_dim, (int)page, (int)(heads / kv_heads), (int)max_ctx,
                                            mask, (int)jobs, cache, on_progress, &pr, &s, err, sizeof err)
                  : mt_precompile_cuda(arch, (int)smem, mask, (int)jobs, (int)limit, cache, on_progress, &pr, &s, err,
                                       sizeof err);
    mt_progress_end(&pr);
    if (rc != MT_OK) return mt_fail("compile", "%s", err);
    printf("%d %s for %s (shared memory %lld bytes) in %s: %d compiled, %d already cached, %d failed, "
           "%.1f s with %lld processes\n",
           s.binaries, attn ? "attention variants" : "binaries", arch, (long long)smem, cache, s.compiled, s.cached,
           s.failed, s.seconds, (long long)jobs);
    if (s.failed) {
        fprintf(stderr, "moetune compile: error: %d binaries did not compile; the first: %s\n", s.failed,
                s.first_error);
        return mt_cli_finish("compile", MT_EXIT_FAIL);
    }
    return mt_cli_finish("compile", 0);
}
