/* moetune pull: a shared bucket's configs into the local cache that the
 * runtime searches, and into the database as foreign results. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cmds.h"
#include "moetune/moetune.h"
#include "publish.h"
#include "util.h"

static const char usage[] =
    "usage: moetune pull URL [--device NAME ...] [--cache DIR] [--db PATH] [--no-db]\n"
    "                    [--endpoint URL] [--region R] [--connect-timeout S]\n"
    "                    [--stall-timeout S] [--timeout S] [--retries N]\n"
    "\n"
    "Read the bucket's manifests (those of --device NAME, as vLLM spells it, or\n"
    "of every device folder the bucket lists) and fetch the files that differ\n"
    "from the cached copies into the cache the runtime searches (default\n"
    "$XDG_CACHE_HOME/moetune/bucket). Each file is checked against its\n"
    "manifest's sha256 and size, and its name must stay inside the cache; a\n"
    "device whose files do not all check is refused and nothing of it is\n"
    "replaced. The vLLM files fetched are imported into the database as\n"
    "foreign results (--no-db: not); SGLang's go into configs/triton_X_Y_Z/\n"
    "of the cache (SGLANG_MOE_CONFIG_DIR=the cache). URLs, credentials and the\n"
    "other options as for publish (moetune publish --help).\n";

int mt_bucket_opt(int c, const char *arg, const char *cmd, mt_bucket_opts *bo);

static void progress(const char *what, const char *name, int i, int n, void *u)
{
    (void)u;
    if (isatty(2)) fprintf(stderr, "\r\033[Kmoetune pull: %d/%d %s %s", i, n, what, name);
}

int cmd_pull(int argc, char **argv)
{
    static const struct option lo[] = {{"db", required_argument, 0, 'd'}, {"device", required_argument, 0, 'D'},
                                       {"cache", required_argument, 0, 'C'}, {"no-db", no_argument, 0, 'N'},
                                       {"endpoint", required_argument, 0, 'e'}, {"region", required_argument, 0, 'r'},
                                       {"connect-timeout", required_argument, 0, 'c'},
                                       {"stall-timeout", required_argument, 0, 's'}, {"retries", required_argument, 0, 'R'},
                                       {"timeout", required_argument, 0, 'T'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *db_path = NULL, *cache = NULL, *devs[64];
    int ndev = 0, no_db = 0, c, status;
    mt_bucket_opts bo = {.retries = -1};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'd') db_path = optarg;
        else if (c == 'C') cache = optarg;
        else if (c == 'N') no_db = 1;
        else if (c == 'D') {
            if (ndev == 64) return mt_usage_error("pull", "at most 64 --device");
            devs[ndev++] = optarg;
        } else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("pull", 0);
        else if ((status = mt_bucket_opt(c, optarg, "pull", &bo)) != 0)
            return status > 0 ? status : mt_usage_error("pull", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return mt_usage_error("pull", optind >= argc ? "from where? (a URL: s3://..., http(s)://... or file:///...)"
                                                     : "one URL at a time");
    const char *url = argv[optind];
    char cdir[4096], err[2048] = "";
    if (cache) snprintf(cdir, sizeof cdir, "%s", cache);
    else if (getenv("XDG_CACHE_HOME") && *getenv("XDG_CACHE_HOME"))
        snprintf(cdir, sizeof cdir, "%s/moetune/bucket", getenv("XDG_CACHE_HOME"));
    else if (getenv("HOME")) snprintf(cdir, sizeof cdir, "%s/.cache/moetune/bucket", getenv("HOME"));
    else return mt_usage_error("pull", "no cache folder: pass --cache DIR (or set XDG_CACHE_HOME or HOME)");
    mt_path_trim(cdir);
    mt_bucket *b = NULL;
    int rc = mt_bucket_open(&b, url, &bo, err, sizeof err);
    if (rc == MT_EPARSE) return mt_usage_error("pull", "%s", err);
    if (rc != MT_OK) return mt_fail("pull", "%s", err);
    mt_pull_stats st;
    rc = mt_pull(b, devs, ndev, cdir, progress, NULL, &st, err, sizeof err);
    if (isatty(2)) fputs("\r\033[K", stderr);
    status = rc == MT_OK ? MT_EXIT_OK : rc == MT_EINVAL ? mt_usage_error("pull", "%s", err) : mt_fail("pull", "%s", err);
    /* what did arrive is imported even when another device failed */
    int imported = 0, refused = 0;
    if (!no_db && st.n_new) {
        mt_db *db = NULL;
        int s2 = mt_cli_open_db("pull", db_path, &db);
        for (int i = 0; !s2 && i < st.n_new; i++) {
            const char *base = strrchr(st.new_files[i], '/');
            mt_vllm_name nm;
            char why[512];
            /* SGLang's files (in its triton_X_Y_Z folders) configure SGLang's
             * kernel: not rows of vLLM's */
            const char *parent = base;
            while (parent > st.new_files[i] && parent[-1] != '/') parent--;
            if (!strncmp(parent, "triton_", 7) || strstr(base, ".moetune.json") ||
                mt_vllm_name_parse(base + 1, &nm, why, sizeof why) != MT_OK)
                continue;
            if (mt_import_vllm_file(db, st.new_files[i], why, sizeof why) == MT_OK) imported++;
            else {
                refused++;
                fprintf(stderr, "moetune pull: %s not imported: %s\n", base + 1, why);
            }
        }
        mt_db_close(db);
        if (s2 && !status) status = s2;
    }
    /* a pull that reached nothing has only its error to say */
    if (rc == MT_OK || st.devices || st.fetched)
        printf("pulled from %s into %s: %d device(s), %d file(s) fetched, %d unchanged, %d imported into the database\n",
               url, cdir, st.devices, st.fetched, st.unchanged, imported);
    mt_pull_stats_free(&st);
    mt_bucket_close(b);
    return mt_cli_finish("pull", status);
}
