/* moetune lookup: what the runtime picks for a problem of any kernel family
 * on a device, as JSON: the config, the file and source that served it, and
 * the keys chosen. The same code path an engine linking libmoetune takes
 * (mt_runtime_lookup). */
#include <errno.h>
#include <getopt.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "device.h"
#include "family.h"
#include "hip_rt.h"
#include "moetune/moetune.h"
#include "util.h"

static const char usage[] =
    "usage: moetune lookup --experts E --intermediate N --batch M [options]\n"
    "       moetune lookup --family NAME --key JSON --point P[,P] [options]\n"
    "\n"
    "Print, as JSON, the config the runtime uses for M tokens: the parameters,\n"
    "the file and source that served them, and the batch-size key chosen\n"
    "(the nearest to M, ties to the first in the file, as vLLM chooses).\n"
    "  --family NAME         any kernel family: fused_moe (what --experts and the\n"
    "                        options after it give) or attn_decode\n"
    "  --key JSON            the family's key, e.g. for attn_decode\n"
    "                        '{\"H\":32,\"H_kv\":8,\"D\":128,\"page\":16,\"dtype\":\"bf16\"}'\n"
    "  --point P[,P]         one value per point field (attn_decode: batch,context)\n"
    "  --device auto|cpu|cuda:N|hip:N  the device of this machine whose configs are\n"
    "                        looked up (default auto: the first GPU, else the CPU, as\n"
    "                        `moetune sweep --device auto` picks; said on stderr)\n"
    "  --device-name NAME    any device, as vLLM spells it, e.g. NVIDIA_H100_80GB_HBM3\n"
    "  --backend cpu|cuda|hip  whose kernels the config is for (default: the device's)\n"
    "  --dtype DTYPE         vLLM's dtype field, e.g. fp8_w8a8 (default: none, bf16/fp16)\n"
    "  --block-shape N,K     vLLM's block_shape field\n"
    "  --hidden K --topk T   also look for moetune-format files\n"
    "  --config-dir DIR      searched first (default: $MOETUNE_CONFIG_DIR)\n"
    "  --tuned-dir DIR       what `moetune sweep` wrote (default:\n"
    "                        $XDG_DATA_HOME/moetune/configs)\n"
    "  --cache-dir DIR       the pulled bucket cache (default:\n"
    "                        $XDG_CACHE_HOME/moetune/bucket)\n"
    "  --bundled-dir DIR     the installed configs (default: the install prefix's, or\n"
    "                        the source tree's configs/ from a build tree)\n"
    "                        (a folder given must exist; '' leaves that source out)\n"
    "  --alias NAME          a device whose files this one may read (repeatable)\n"
    "  --allow-stale         use configs measured with other kernel sources\n";

static void put_int(const char *k, int v, int *first)
{
    if (v < 0) return;
    printf("%s\"%s\":%d", *first ? "" : ",", k, v);
    *first = 0;
}

int cmd_lookup(int argc, char **argv)
{
    static const struct option opts[] = {
        {"experts", required_argument, 0, 'E'}, {"intermediate", required_argument, 0, 'N'},
        {"batch", required_argument, 0, 'M'}, {"device-name", required_argument, 0, 'd'},
        {"backend", required_argument, 0, 'b'}, {"dtype", required_argument, 0, 't'},
        {"block-shape", required_argument, 0, 's'}, {"hidden", required_argument, 0, 'K'},
        {"topk", required_argument, 0, 'k'}, {"config-dir", required_argument, 0, 'c'},
        {"cache-dir", required_argument, 0, 'C'}, {"bundled-dir", required_argument, 0, 'B'},
        {"alias", required_argument, 0, 'a'}, {"allow-stale", no_argument, 0, 'S'},
        {"device", required_argument, 0, 'D'}, {"tuned-dir", required_argument, 0, 'T'},
        {"family", required_argument, 0, 'f'}, {"key", required_argument, 0, 'j'},
        {"point", required_argument, 0, 'p'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    mt_runtime_options ro = MT_RUNTIME_OPTIONS_INIT;
    mt_moe_key key = {0, 0, 0, 0, NULL, 0, 0};
    int64_t M = 0;
    const char *aliases[17] = {0};
    int na = 0, c, st, npoint = 0;
    const char *device = NULL, *family = NULL, *key_json = NULL;
    int64_t point[MT_POINT_MAX] = {0};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        st = 0;
        switch (c) {
        case 'E': st = mt_parse_int_opt("lookup", "--experts", optarg, 1, 1 << 16, &key.E); break;
        case 'N': st = mt_parse_int_opt("lookup", "--intermediate", optarg, 1, 1 << 24, &key.N); break;
        case 'M': st = mt_parse_int_opt("lookup", "--batch", optarg, 1, 1 << 30, &M); break;
        case 'K': st = mt_parse_int_opt("lookup", "--hidden", optarg, 1, 1 << 24, &key.K); break;
        case 'k': st = mt_parse_int_opt("lookup", "--topk", optarg, 1, 1 << 16, &key.topk); break;
        case 'd':
            if (!*optarg)
                return mt_usage_error("lookup", "--device-name '': expected a device as vLLM spells it, e.g. "
                                                "NVIDIA_H100_80GB_HBM3 (`moetune devices` lists this machine's)");
            ro.device_name = optarg;
            break;
        case 'D': device = optarg; break;
        case 'T': ro.tuned_dir = optarg; break;
        case 'b': ro.backend = optarg; break;
        case 't': key.dtype = optarg; break;
        case 's': {
            char *end;
            key.block_n = strtoll(optarg, &end, 10);
            if (*end != ',' || key.block_n < 1 || (key.block_k = strtoll(end + 1, &end, 10)) < 1 || *end)
                return mt_usage_error("lookup", "--block-shape '%s': expected N,K such as 128,128", optarg);
            break;
        }
        case 'c': ro.config_dir = optarg; break;
        case 'C': ro.cache_dir = optarg; break;
        case 'B': ro.bundled_dir = optarg; break;
        case 'a':
            if (na == 16) return mt_usage_error("lookup", "at most 16 --alias");
            aliases[na++] = optarg;
            break;
        case 'S': ro.allow_stale = 1; break;
        case 'f': family = optarg; break;
        case 'j': key_json = optarg; break;
        case 'p': {
            char *end;
            const char *q = optarg;
            npoint = 0;
            do {
                if (npoint == MT_POINT_MAX) return mt_usage_error("lookup", "--point '%s': at most %d values", optarg, MT_POINT_MAX);
                long long v = strtoll(q, &end, 10);
                if (end == q || v < 1 || (*end && *end != ','))
                    return mt_usage_error("lookup", "--point '%s': expected positive integers separated by commas", optarg);
                point[npoint++] = v;
                q = end + (*end == ',');
            } while (*end);
            break;
        }
        case 'h': return fputs(usage, stdout), mt_cli_finish("lookup", 0);
        default: return mt_usage_error("lookup", "unknown option '%s'", argv[optind - 1]);
        }
        if (st) return st;
    }
    if (optind < argc) return mt_usage_error("lookup", "unexpected argument '%s'", argv[optind]);
    /* the fused-MoE options are that family's key and point */
    int moe_opts = key.E || key.N || M || key.K || key.topk || key.dtype || key.block_n;
    if (family || key_json || npoint) {
        if (moe_opts)
            return mt_usage_error("lookup", "--family, --key and --point, or the fused-MoE options (--experts ...): give one form");
        if (!family || !key_json || !npoint) return mt_usage_error("lookup", "--family, --key and --point go together");
        int nf = 0;
        while (mt_family_field(family, MT_FIELD_POINT, nf)) nf++;
        if (!nf) {
            char names[128] = "";
            for (int i = 0; mt_family_name(i); i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", mt_family_name(i));
            return mt_usage_error("lookup", "--family '%s': expected one of %s", family, names);
        }
        if (npoint != nf)
            return mt_usage_error("lookup", "--point: %s takes %d value(s) (%s%s%s)", family, nf,
                                  mt_family_field(family, MT_FIELD_POINT, 0), nf > 1 ? "," : "",
                                  nf > 1 ? mt_family_field(family, MT_FIELD_POINT, 1) : "");
    } else if (!key.E || !key.N || !M) {
        return mt_usage_error("lookup", "--experts, --intermediate and --batch are required (or --family, --key and --point)");
    }
    if (ro.backend && strcmp(ro.backend, "cpu") && strcmp(ro.backend, "cuda") && strcmp(ro.backend, "hip"))
        return mt_usage_error("lookup", "--backend '%s': expected cpu, cuda or hip", ro.backend);
    /* a folder named on the command line must be there: a typo would
     * otherwise answer "default" without a word */
    const char *dirs[4][2] = {{"--config-dir", ro.config_dir}, {"--tuned-dir", ro.tuned_dir},
                              {"--cache-dir", ro.cache_dir}, {"--bundled-dir", ro.bundled_dir}};
    for (int i = 0; i < 4; i++) {
        struct stat sb;
        if (dirs[i][1] && *dirs[i][1] && (stat(dirs[i][1], &sb) != 0 || !S_ISDIR(sb.st_mode)))
            return mt_usage_error("lookup", "%s '%s': %s", dirs[i][0], dirs[i][1],
                                  stat(dirs[i][1], &sb) != 0 ? strerror(errno) : "not a folder");
    }
    if (device && ro.device_name)
        return mt_usage_error("lookup", "--device and --device-name: give one (--device for this machine's, "
                                        "--device-name for any device)");
    char picked[128] = "";
    if (!ro.device_name) {
        /* this machine's device, picked as the sweep picks it */
        mt_device_spec spec, res;
        char note[512];
        if (mt_device_spec_parse(device ? device : "auto", &spec) != MT_OK)
            return mt_usage_error("lookup", "--device '%s': expected auto, cpu, cuda:N or hip:N", device);
        int rc = mt_device_resolve(&spec, &res, note, sizeof note);
        if (rc != MT_OK) return mt_fail("lookup", "--device %s: %s", device ? device : "auto", note);
        if (res.kind == MT_BACKEND_CUDA) {
            mt_device_info d;
            char why[256];
            if (mt_device_cuda_info(res.index, &d, why, sizeof why) != MT_OK)
                return mt_fail("lookup", "cuda:%d: %s", res.index, why);
            snprintf(picked, sizeof picked, "%s", d.name);
        } else if (res.kind == MT_BACKEND_HIP) {
            mt_hip_kfd_gpu g;
            char why[256];
            if (mt_hip_kfd_gpu_at(res.index, &g, why, sizeof why) != MT_OK)
                return mt_fail("lookup", "hip:%d: %s", res.index, why);
            snprintf(picked, sizeof picked, "%s", g.vllm_name);
        } else {
            mt_device_cpu_name(picked, sizeof picked, NULL, 0);
        }
        ro.device_name = picked;
        if (!ro.backend) ro.backend = mt_backend_name(res.kind);
        char *tail = strstr(note, "; tuning the CPU");
        if (tail) *tail = 0; /* the sweep's wording: nothing is tuned here */
        fprintf(stderr, "moetune lookup: device %s (%s:%d%s%s)\n", picked, mt_backend_name(res.kind), res.index,
                note[0] ? "; " : "", note);
    }
    if (!ro.backend)
        ro.backend = !strncmp(ro.device_name, "CPU_", 4) ? "cpu" : !strncmp(ro.device_name, "AMD", 3) ? "hip" : "cuda";
    ro.aliases = aliases;
    ro.log = mt_cli_log;
    ro.log_level = MT_LOG_WARN;
    mt_runtime *rt;
    int rc = mt_runtime_open(&rt, &ro);
    if (rc != MT_OK) return mt_fail("lookup", "cannot open the runtime: %s", mt_status_str(rc));
    char kbuf[512];
    if (!family) {
        /* the fused-MoE options as that family's key */
        family = "fused_moe";
        mt_family_key fk = {{key.E, key.N, key.K, key.topk, key.block_n, key.block_k}, ""};
        if (key.dtype && strlen(key.dtype) >= sizeof fk.dtype)
            return mt_runtime_close(rt), mt_usage_error("lookup", "--dtype '%s': not a dtype name", key.dtype);
        snprintf(fk.dtype, sizeof fk.dtype, "%s", key.dtype ? key.dtype : "");
        if (mt_family_key_format(&mt_family_fused_moe, &fk, kbuf, sizeof kbuf) != MT_OK)
            return mt_runtime_close(rt), mt_usage_error("lookup", "--dtype '%s': not a dtype name", key.dtype);
        key_json = kbuf;
        point[0] = M;
        npoint = 1;
    }
    mt_config_values cfg;
    rc = mt_runtime_lookup(rt, family, key_json, point, &cfg);
    if (rc != MT_OK) {
        mt_runtime_close(rt);
        return rc == MT_EINVAL ? mt_usage_error("lookup", "--key '%s': not a key of %s (said above)", key_json, family)
                               : mt_fail("lookup", "%s", mt_status_str(rc));
    }
    int first = 1;
    printf("{\"family\":");
    mt_json_str(stdout, family);
    printf(",\"device_name\":");
    mt_json_str(stdout, mt_runtime_device_name(rt));
    printf(",\"point\":[");
    for (int i = 0; i < npoint; i++) printf("%s%lld", i ? "," : "", (long long)point[i]);
    printf("],\"point_key\":[");
    for (int i = 0; i < npoint; i++) printf("%s%lld", i ? "," : "", (long long)cfg.point_key[i]);
    printf("]");
    /* fused MoE's names for them, as before the families */
    if (!strcmp(family, "fused_moe")) printf(",\"batch\":%lld,\"key\":%lld", (long long)point[0], (long long)cfg.point_key[0]);
    printf(",\"source\":");
    mt_json_str(stdout, mt_config_source_str(cfg.source));
    printf(",\"file\":");
    if (cfg.file) mt_json_str(stdout, cfg.file);
    else printf("null");
    printf(",\"foreign\":%s,\"stale\":%s,\"config\":{", cfg.foreign ? "true" : "false", cfg.stale ? "true" : "false");
    for (int i = 0; i < cfg.nparams; i++) put_int(cfg.names[i], cfg.values[i], &first);
    printf("}}\n");
    mt_runtime_close(rt);
    return mt_cli_finish("lookup", 0);
}
