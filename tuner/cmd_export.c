/* moetune export: write the best verified config per M as files. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "export.h"
#include "util.h"

static const char usage[] =
    "usage: moetune export --out DIR [--format moetune|vllm|all|grid] [--db PATH]\n"
    "\n"
    "Write one file per (device, kernel, problem) with the best verified\n"
    "config per batch size.\n"
    "  --format moetune   moetune's own format: every parameter, with the\n"
    "                     figures and provenance behind each choice (docs/format.md)\n"
    "  --format vllm      the engines' own files: vLLM's E=...,N=...,device_name=....json\n"
    "                     for results of vLLM's kernel (sweep --engine vllm) and\n"
    "                     imported files, SGLang's in configs/triton_X_Y_Z/ for SGLang's;\n"
    "                     results of moetune's own kernels are never written there\n"
    "  --format all       both (default)\n"
    "  --format grid      every verified and failed measurement as CSV, one row per\n"
    "                     (point, config): the point (M; attention: batch, ctx), the\n"
    "                     parameters, median_us, status, is_default; 'moetune\n"
    "                     replay' runs search strategies against it\n";

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, 0, 'o'}, {"format", required_argument, 0, 'f'},
                                         {"db", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL, *fmt = "all", *dbpath = NULL;
    int c, status;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 'f') fmt = optarg;
        else if (c == 'd') dbpath = optarg;
        else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("export", 0);
        else return mt_usage_error("export", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind < argc) return mt_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (!out) return mt_usage_error("export", "--out DIR is required");
    mt_export_opts eo = {out, 0, 0, 0, 0, 0, 0};
    if (!strcmp(fmt, "moetune")) eo.moetune = 1;
    else if (!strcmp(fmt, "vllm")) eo.vllm = 1;
    else if (!strcmp(fmt, "all")) eo.moetune = eo.vllm = 1;
    else if (!strcmp(fmt, "grid")) eo.grid = 1;
    else return mt_usage_error("export", "--format '%s': expected moetune, vllm, all or grid", fmt);
    if (mt_mkdir_p(out) != 0) return mt_fail("export", "cannot create the folder '%s'", out);
    mt_db *db;
    if ((status = mt_cli_open_db("export", dbpath, &db)) != 0) return status;
    mt_export_stats st;
    int rc = mt_export(db, &eo, &st);
    if (rc != 0) status = mt_fail("export", "cannot read the database: %s", mt_db_errmsg(db));
    else if (st.failed) status = mt_fail("export", "%d file(s) could not be written (see above)", st.failed);
    if (!status && st.own_skipped)
        fprintf(stderr,
                "moetune export: %d result set(s) of moetune's own kernels not written under vLLM's names: vLLM "
                "launches its own kernel, which they were not measured on; libmoetune reads them in moetune's "
                "format%s, and `moetune sweep --engine vllm` tunes vLLM's kernel\n",
                st.own_skipped, eo.moetune ? "" : " (--format moetune)");
    if (!status && st.written == 0) {
        if (st.own_skipped) status = MT_EXIT_FAIL;
        else status = mt_fail("export", "nothing to export: the database holds no verified results or imports");
    }
    mt_db_close(db);
    return mt_cli_finish("export", status);
}
