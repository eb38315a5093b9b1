/* moetune devices: what this machine can tune, and what the build can do. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "device.h"
#include "hip_rt.h"
#include "moetune/moetune.h"
#include "util.h"

static const char usage[] =
    "usage: moetune devices [--json]\n"
    "\n"
    "List the devices of this machine: the CPU, CUDA GPUs (through the\n"
    "NVIDIA driver, when installed) and HIP GPUs, each with the name vLLM\n"
    "gives it in config file names, and whether this build can tune it.\n";

static void print_dev(const mt_device_info *d, const char *spec, int usable, int json, int first)
{
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "device", spec);
        mt_device_info_to_json(o, d);
        cJSON_AddBoolToObject(o, "tunable", usable);
        char *text = cJSON_PrintUnformatted(o);
        printf("%s%s", first ? "" : ",", text ? text : "{}");
        free(text);
        cJSON_Delete(o);
    } else {
        printf("%-8s %-48s %-8s %5d %s  %6.1f GiB  %s%s\n", spec, d->name, d->arch, d->cores,
               !strcmp(d->backend, "cpu") ? "threads" : !strcmp(d->backend, "hip") ? "CUs" : "SMs", (double)d->memory_bytes / (1 << 30), d->driver,
               !usable ? "  (not tunable by this build)"
               : !strcmp(d->backend, "hip") ? "  (tunable, untried: the HIP path has never run on an AMD GPU)"
                                            : "");
    }
}

int cmd_devices(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("devices", 0);
        else return mt_usage_error("devices", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind < argc) return mt_usage_error("devices", "unexpected argument '%s'", argv[optind]);
    mt_device_info d;
    char why[256] = "", spec[32];
    if (json) printf("{\"devices\":[");
    mt_device_cpu_info(&d);
    print_dev(&d, "cpu", 1, json, 1);
    int n = mt_device_cuda_count(why, sizeof why);
    for (int i = 0; i < n; i++) {
        char w2[256];
        snprintf(spec, sizeof spec, "cuda:%d", i);
        if (mt_device_cuda_info(i, &d, w2, sizeof w2) == MT_OK)
            print_dev(&d, spec, mt_backend_available(MT_BACKEND_CUDA), json, 0);
    }
    /* AMD GPUs from the amdgpu driver's KFD topology (MOETUNE_SYSFS_ROOT
     * stands for / in tests: mt_hip_kfd_gpus reads it); the HIP measurement path is built but has
     * never run on an AMD GPU (issue 10), and the listing says so */
    mt_hip_kfd_gpu g[16];
    char hwhy[400] = "";
    int nh = mt_hip_kfd_gpus(NULL, g, 16, hwhy, sizeof hwhy);
    for (int i = 0; i < nh; i++) {
        memset(&d, 0, sizeof d);
        snprintf(d.backend, sizeof d.backend, "hip");
        snprintf(d.name, sizeof d.name, "%s", g[i].vllm_name);
        snprintf(d.raw_name, sizeof d.raw_name, "%s", g[i].market[0] ? g[i].market : g[i].arch);
        snprintf(d.arch, sizeof d.arch, "%s", g[i].arch);
        d.cores = g[i].compute_units;
        d.memory_bytes = (int64_t)g[i].memory_bytes;
        snprintf(d.driver, sizeof d.driver, "amdgpu, KFD node %d, PCI id 0x%04x", g[i].node, g[i].device_id);
        snprintf(spec, sizeof spec, "hip:%d", i);
        print_dev(&d, spec, mt_backend_available(MT_BACKEND_HIP), json, 0);
    }
    if (json) {
        printf("],\"cuda\":");
        mt_json_str(stdout, n > 0 ? "" : why);
        printf(",\"hip\":");
        mt_json_str(stdout, nh > 0 ? "" : hwhy);
        printf("}\n");
    } else {
        if (n == 0) printf("%s\n", why);
        if (nh == 0) printf("%s\n", hwhy);
    }
    return mt_cli_finish("devices", 0);
}
