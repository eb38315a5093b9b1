/* moetune submit: queue a sweep for the daemon. The job is the sweep's own
 * options, checked here exactly as the sweep will read them, so a bad spec
 * is refused now and not found by a daemon an hour later. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "family_tuning.h"
#include "moetune/moetune.h"
#include "device.h"
#include "jobs.h"
#include "util.h"

static const char usage[] =
    "usage: moetune submit [--db PATH] [--device any|cpu|cuda|cuda:N|hip|hip:N] [--json]\n"
    "                      [sweep options: problem, --batch-sizes, --strategy, --budget, ...]\n"
    "\n"
    "Queue a sweep as a job for 'moetune daemon' and print its number. The\n"
    "sweep options are those of 'moetune sweep' (see its --help) and are\n"
    "checked now: a job the daemon could not run is refused here.\n"
    "  --device D   where the job may run: any (default: any device of the host\n"
    "               the daemon serves, GPUs first), cpu, cuda (any CUDA GPU),\n"
    "               cuda:N, hip, hip:N. A job for a kind the host lacks waits\n"
    "  --db PATH    the database the daemon serves (default as for sweep)\n"
    "  --json       print {\"job\": ID}\n";

static int device_ok(const char *d)
{
    if (!strcmp(d, "any") || !strcmp(d, "cpu") || !strcmp(d, "cuda") || !strcmp(d, "hip")) return 1;
    mt_device_spec spec;
    return (!strncmp(d, "cuda:", 5) || !strncmp(d, "hip:", 4)) && mt_device_spec_parse(d, &spec) == MT_OK;
}

int cmd_submit(int argc, char **argv)
{
    const char *db_path = NULL, *device = "any";
    int json = 0;
    /* submit's own options are taken out; the rest is the sweep's */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return mt_fail("submit", "out of memory");
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        int take = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            free(rest);
            fputs(usage, stdout);
            return mt_cli_finish("submit", 0);
        }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--db") || !strcmp(a, "--device")) {
            if (i + 1 >= argc) {
                free(rest);
                return mt_usage_error("submit", "%s needs a value", a);
            }
            val = argv[++i];
            take = 1;
        } else if (!strncmp(a, "--db=", 5) || !strncmp(a, "--device=", 9)) {
            val = strchr(a, '=') + 1;
            take = 1;
        }
        if (take) {
            if (!strncmp(a, "--db", 4)) db_path = val;
            else device = val;
            continue;
        }
        rest[nrest++] = argv[i];
    }
    if (!device_ok(device)) {
        free(rest);
        return mt_usage_error("submit", "--device '%s': expected any, cpu, cuda, cuda:N, hip or hip:N", device);
    }
    char model_config[4096] = "";
    int status;
    /* a family other than fused MoE: its sweep's options, declared by it */
    const mt_family_tuning *fam = NULL;
    for (int i = 1; i < nrest; i++)
        if (!strcmp(rest[i], "--kernel") && i + 1 < nrest) fam = mt_sweep_family_of(rest[i + 1]);
        else if (!strncmp(rest[i], "--kernel=", 9)) fam = mt_sweep_family_of(rest[i] + 9);
    if (fam && !strncmp(device, "hip", 3)) {
        free(rest);
        return mt_usage_error("submit", "%s jobs run on the CPU and CUDA GPUs: submit them with --device cpu, cuda, "
                                        "cuda:N or any",
                              fam->cli_name ? fam->cli_name : fam->family->name);
    }
    status = fam ? mt_sweep_family_check("submit", fam, nrest, rest)
                 : mt_sweep_check_args("submit", nrest, rest, model_config, sizeof model_config);
    if (status) {
        free(rest);
        return status;
    }
    /* the arguments as the sweep will get them (a model config by its
     * absolute path) */
    cJSON *args = cJSON_CreateArray();
    for (int i = 1; i < nrest; i++) {
        const char *a = rest[i];
        if (model_config[0] && !strncmp(a, "--model-config=", 15)) {
            cJSON_AddItemToArray(args, cJSON_CreateString("--model-config"));
            a = model_config;
        } else if (model_config[0] && i > 1 && !strcmp(rest[i - 1], "--model-config")) {
            a = model_config;
        }
        cJSON_AddItemToArray(args, cJSON_CreateString(a));
    }
    free(rest);
    char *text = cJSON_PrintUnformatted(args);
    cJSON_Delete(args);
    if (!text) return mt_fail("submit", "out of memory");
    mt_db *db = NULL;
    if ((status = mt_cli_open_db("submit", db_path, &db)) != 0) {
        free(text);
        return status;
    }
    int64_t id = 0;
    if (mt_db_job_submit(db, text, device, &id) != MT_OK) status = mt_fail("submit", "cannot queue the job: %s", mt_db_errmsg(db));
    else if (json) printf("{\"job\":%lld}\n", (long long)id);
    else printf("job %lld queued for %s: moetune sweep %s\n", (long long)id, device, text);
    free(text);
    mt_db_close(db);
    return mt_cli_finish("submit", status);
}
