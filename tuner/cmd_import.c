/* moetune import: read vLLM config files into the database as foreign
 * results (device, problem and per-M configs; no timings). A file that
 * cannot be taken is named with its reason and the rest go on. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds.h"
#include "db.h"
#include "util.h"
#include "vllm.h"

static const char usage[] =
    "usage: moetune import [--db PATH] [--json] PATH...\n"
    "\n"
    "Import vLLM fused-MoE config files (E=...,N=...,device_name=....json).\n"
    "A PATH that is a folder imports every .json file in it. Files that are\n"
    "not vLLM fused-MoE configs (e.g. backend=flydsl) or hold malformed JSON\n"
    "are refused with the reason; the others are imported. Exit status 1 when\n"
    "any file was refused.\n";

int mt_import_vllm_file(mt_db *db, const char *path, char *why, size_t n)
{
    mt_vllm_file f;
    int rc = mt_vllm_file_read(path, &f, why, n);
    if (rc != MT_OK) return rc;
    mt_device_info d;
    mt_problem p;
    memset(&d, 0, sizeof d);
    memset(&p, 0, sizeof p);
    /* vLLM spells AMD devices AMD_Instinct_... and NVIDIA ones NVIDIA_... */
    snprintf(d.backend, sizeof d.backend, "%s", strncmp(f.name.device, "AMD", 3) == 0 ? "hip" : "cuda");
    snprintf(d.name, sizeof d.name, "%s", f.name.device);
    snprintf(d.raw_name, sizeof d.raw_name, "%s", f.name.device);
    snprintf(p.kernel, sizeof p.kernel, "fused_moe");
    /* the file's own dtype field, verbatim, so the name comes back as it was */
    snprintf(p.dtype, sizeof p.dtype, "vllm:%.26s", f.name.dtype);
    p.E = f.name.E;
    p.N = f.name.N;
    p.block_n = f.name.block_n;
    p.block_k = f.name.block_k;
    p.renormalize = 1;
    cJSON *order = cJSON_CreateArray(), *extra = cJSON_CreateObject();
    for (cJSON *e = f.root->child; e; e = e->next) {
        cJSON_AddItemToArray(order, cJSON_CreateString(e->string));
        if (!mt_vllm_is_m_key(e->string)) cJSON_AddItemToObject(extra, e->string, cJSON_Duplicate(e, 1));
    }
    char *order_s = cJSON_PrintUnformatted(order), *extra_s = cJSON_PrintUnformatted(extra);
    cJSON_Delete(order);
    cJSON_Delete(extra);
    /* one transaction per file: a file is in the database whole or not at all */
    rc = mt_db_begin(db);
    if (rc == MT_OK) rc = mt_db_device_upsert(db, &d);
    if (rc == MT_OK) rc = mt_db_problem_upsert(db, &p);
    const char *base = strrchr(path, '/');
    if (rc == MT_OK) rc = mt_db_import_begin(db, d.id, p.id, base ? base + 1 : path, order_s, extra_s);
    int64_t ord = 0;
    for (cJSON *e = f.root->child; rc == MT_OK && e; e = e->next) {
        if (!mt_vllm_is_m_key(e->string)) continue;
        char *params = cJSON_PrintUnformatted(e);
        int64_t cfg;
        rc = params ? mt_db_config_upsert(db, "vllm", params, &cfg) : MT_ENOMEM;
        free(params);
        if (rc != MT_OK) break;
        mt_measurement m = {.device_id = d.id, .problem_id = p.id, .config_id = cfg,
                            .M = strtoll(e->string, NULL, 10), .status = "foreign", .kernel_hash = "imported",
                            .timing_policy = "none", .ord = ord++};
        m.median_us = m.spread_us = m.rel_err = m.tolerance = m.floor_us = m.efficiency = 0.0 / 0.0;
        rc = mt_db_measurement_insert(db, &m);
    }
    if (rc == MT_OK) rc = mt_db_commit(db);
    if (rc != MT_OK) {
        mt_db_rollback(db);
        snprintf(why, n, "database: %s", mt_db_errmsg(db));
    }
    free(order_s);
    free(extra_s);
    mt_vllm_file_free(&f);
    return rc;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, 0, 'd'}, {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dbpath = NULL;
    int json = 0, c, status;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') dbpath = optarg;
        else if (c == 'j') json = 1;
        else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("import", 0);
        else return mt_usage_error("import", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind >= argc) return mt_usage_error("import", "give at least one file or folder");
    /* collect the files first, so a bad path is reported before any work */
    char **files = NULL;
    int nf = 0;
    for (int i = optind; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            for (int k = 0; k < nf; k++) free(files[k]);
            free(files);
            return mt_usage_error("import", "cannot find '%s'", argv[i]);
        }
        if (S_ISDIR(sb.st_mode)) {
            DIR *dir = opendir(argv[i]);
            struct dirent *de;
            while (dir && (de = readdir(dir))) {
                size_t l = strlen(de->d_name);
                if (l < 5 || strcmp(de->d_name + l - 5, ".json")) continue;
                char **nfiles = realloc(files, (size_t)(nf + 1) * sizeof *files);
                if (!nfiles) break;
                files = nfiles;
                size_t len = strlen(argv[i]) + l + 2;
                files[nf] = malloc(len);
                if (files[nf]) snprintf(files[nf++], len, "%s/%s", argv[i], de->d_name);
            }
            if (dir) closedir(dir);
        } else {
            char **nfiles = realloc(files, (size_t)(nf + 1) * sizeof *files);
            if (!nfiles) break;
            files = nfiles;
            files[nf] = strdup(argv[i]);
            if (files[nf]) nf++;
        }
    }
    if (nf > 1) qsort(files, (size_t)nf, sizeof *files, by_name); /* files is NULL when nf is 0 */
    mt_db *db;
    if ((status = mt_cli_open_db("import", dbpath, &db)) != 0) {
        for (int k = 0; k < nf; k++) free(files[k]);
        free(files);
        return status;
    }
    int ok = 0, refused = 0;
    if (json) printf("{\"files\":[");
    for (int k = 0; k < nf; k++) {
        char why[512] = "";
        int rc = mt_import_vllm_file(db, files[k], why, sizeof why);
        if (json) {
            printf("%s{\"file\":", k ? "," : "");
            mt_json_str(stdout, files[k]);
            printf(",\"imported\":%s", rc == 0 ? "true" : "false");
            if (rc) {
                printf(",\"reason\":");
                mt_json_str(stdout, why);
            }
            printf("}");
        }
        if (rc == 0) ok++;
        else {
            refused++;
            fprintf(stderr, "moetune import: refused '%s': %s\n", files[k], why);
        }
        free(files[k]);
    }
    free(files);
    if (json) printf("],\"imported\":%d,\"refused\":%d}\n", ok, refused);
    else printf("imported %d file(s), refused %d\n", ok, refused);
    mt_db_close(db);
    return mt_cli_finish("import", refused ? MT_EXIT_FAIL : 0);
}
