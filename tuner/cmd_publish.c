/* moetune publish: the database's best configs to a shared bucket. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "moetune/moetune.h"
#include "publish.h"
#include "util.h"

static const char usage[] =
    "usage: moetune publish URL [--db PATH] [--endpoint URL] [--region R]\n"
    "                       [--connect-timeout S] [--stall-timeout S] [--timeout S] [--retries N]\n"
    "\n"
    "Export the database's best configs (vLLM's, SGLang's and moetune's\n"
    "formats) and put them in a shared bucket: URL/DEVICE/FILE (SGLang's:\n"
    "URL/DEVICE/triton_X_Y_Z/FILE), then URL/DEVICE/manifest.json (name,\n"
    "sha256 and size of each file) last. Publishing again uploads only what\n"
    "changed. URL is one of:\n"
    "  s3://BUCKET/PREFIX    signed with AWS SigV4; credentials from AWS_ACCESS_KEY_ID,\n"
    "                        AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), else\n"
    "                        ~/.aws/credentials (mode 600, profile AWS_PROFILE);\n"
    "                        endpoint: --endpoint, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL;\n"
    "                        region: --region, AWS_REGION or AWS_DEFAULT_REGION\n"
    "  http(s)://HOST/PATH   plain PUT (WebDAV, presigned endpoints); basic auth from\n"
    "                        MOETUNE_BUCKET_USER and MOETUNE_BUCKET_PASSWORD, bearer\n"
    "                        from MOETUNE_BUCKET_TOKEN, else ~/.netrc\n"
    "  file:///PATH          a shared folder (NFS)\n"
    "Credentials are never taken from the command line or the URL.\n"
    "5xx answers and connection errors are retried with exponential backoff\n"
    "(--retries, default 4); a transfer slower than 1 KiB/s for --stall-timeout\n"
    "seconds (default 30) fails, and so does one request that takes longer than\n"
    "--timeout seconds (300); connecting may take --connect-timeout (10).\n"
    "Redirects are not followed: give the bucket's final URL.\n";

static void progress(const char *what, const char *name, int i, int n, void *u)
{
    (void)u;
    if (isatty(2)) fprintf(stderr, "\r\033[Kmoetune publish: %d/%d %s %s", i, n, what, name);
}

/* options every bucket command takes */
int mt_bucket_opt(int c, const char *arg, const char *cmd, mt_bucket_opts *bo)
{
    int64_t v;
    int st;
    switch (c) {
    case 'e': bo->endpoint = arg; return 0;
    case 'r': bo->region = arg; return 0;
    case 'c': st = mt_parse_int_opt(cmd, "--connect-timeout", arg, 1, 3600, &v); bo->connect_timeout_s = (long)v; return st;
    case 's': st = mt_parse_int_opt(cmd, "--stall-timeout", arg, 1, 3600, &v); bo->stall_timeout_s = (long)v; return st;
    case 'R': st = mt_parse_int_opt(cmd, "--retries", arg, 0, 100, &v); bo->retries = (int)v; return st;
    case 'T': st = mt_parse_int_opt(cmd, "--timeout", arg, 1, 86400, &v); bo->total_timeout_s = (long)v; return st;
    }
    return -1;
}

int cmd_publish(int argc, char **argv)
{
    static const struct option lo[] = {{"db", required_argument, 0, 'd'}, {"endpoint", required_argument, 0, 'e'},
                                       {"region", required_argument, 0, 'r'}, {"connect-timeout", required_argument, 0, 'c'},
                                       {"stall-timeout", required_argument, 0, 's'}, {"retries", required_argument, 0, 'R'},
                                       {"timeout", required_argument, 0, 'T'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *db_path = NULL;
    mt_bucket_opts bo = {.retries = -1};
    int c, status;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'd') db_path = optarg;
        else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("publish", 0);
        else if ((status = mt_bucket_opt(c, optarg, "publish", &bo)) != 0)
            return status > 0 ? status : mt_usage_error("publish", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return mt_usage_error("publish", optind >= argc ? "where to? (a URL: s3://..., http(s)://... or file:///...)"
                                                        : "one URL at a time");
    const char *url = argv[optind];
    char err[2048] = "";
    mt_bucket *b = NULL;
    int rc = mt_bucket_open(&b, url, &bo, err, sizeof err);
    if (rc == MT_EPARSE) return mt_usage_error("publish", "%s", err);
    if (rc != MT_OK) return mt_fail("publish", "%s", err);
    mt_db *db = NULL;
    if ((status = mt_cli_open_db("publish", db_path, &db)) != 0) {
        mt_bucket_close(b);
        return status;
    }
    mt_publish_stats st;
    rc = mt_publish(db, b, progress, NULL, &st, err, sizeof err);
    if (isatty(2)) fputs("\r\033[K", stderr);
    if (rc != MT_OK) status = mt_fail("publish", "%s", err);
    else {
        printf("published to %s: %d device(s), %d file(s) uploaded, %d unchanged\n", url, st.devices, st.uploaded,
               st.unchanged);
        if (st.sglang)
            printf("of them, %d SGLang file(s) in their triton_X_Y_Z folders: `moetune pull` puts them into "
                   "configs/triton_X_Y_Z/ of its cache, for SGLANG_MOE_CONFIG_DIR\n",
                   st.sglang);
        if (st.skipped)
            fprintf(stderr, "moetune publish: warning: %d exported file(s) left out: their names cannot be bucket keys, "
                            "e.g. '%s' (letters, digits and \"=,._+-[]\" only)\n", st.skipped, st.first_skipped);
        if (st.sglang_skipped)
            fprintf(stderr, "moetune publish: warning: %d exported folder(s) named triton_* but not triton_X_Y_Z left "
                            "out\n",
                    st.sglang_skipped);
    }
    mt_db_close(db);
    mt_bucket_close(b);
    return mt_cli_finish("publish", status);
}
