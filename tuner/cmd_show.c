/* moetune show: the best config per M of every tuned (device, problem),
 * with its fraction of the roofline floor and its speedup over the default
 * config measured in the same sweep. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "family.h"
#include "cmds.h"
#include "moetune/moetune.h"
#include "report.h"
#include "util.h"

static const char usage[] =
    "usage: moetune show [--db PATH] [--json]\n"
    "\n"
    "Print the best verified config of every device and problem in the\n"
    "database, for each kernel family (fused MoE per batch size, attention\n"
    "decode per batch size and context length): median time, spread, roofline\n"
    "floor, the fraction of the floor reached, and the speedup over the default\n"
    "config.\n";

struct show_ctx { mt_db *db; int json, n, rc; };

static int show_pair(const mt_device_info *d, const mt_problem *p, void *u)
{
    struct show_ctx *c = u;
    if (c->json && c->n) printf(",");
    if (!c->json && c->n) printf("\n");
    c->n++;
    c->rc = mt_report_pair(stdout, c->db, d, p, c->json);
    return c->rc;
}

static int count_foreign(const mt_device_info *d, const mt_problem *p, void *u)
{
    (void)d;
    (void)p;
    ((struct show_ctx *)u)->n++;
    return 0;
}

/* The JSON array of a family's tables: the names scripts have read since
 * before there were families; a family added later goes by its own name. */
static const char *json_name(const mt_family *f)
{
    if (!strcmp(f->name, "fused_moe")) return "results";
    if (!strcmp(f->name, "attn_decode")) return "attention";
    return f->name;
}

int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'}, {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dbpath = NULL;
    int json = 0, c, status;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') dbpath = optarg;
        else if (c == 'j') json = 1;
        else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("show", 0);
        else return mt_usage_error("show", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind < argc) return mt_usage_error("show", "unexpected argument '%s'", argv[optind]);
    mt_db *db;
    if ((status = mt_cli_open_db("show", dbpath, &db)) != 0) return status;
    /* every family of the registry, one table per (device, problem) */
    struct show_ctx ctx = {db, json, 0, 0};
    int rc = 0;
    if (json) printf("{");
    for (int k = 0; k < mt_nfamilies && rc == 0; k++) {
        if (json) printf("%s\"%s\":[", k ? "," : "", json_name(mt_families[k]));
        int before = ctx.n;
        if (json) ctx.n = 0;
        rc = mt_db_family_pairs(db, mt_families[k]->name, "ok", show_pair, &ctx);
        if (json) {
            printf("]");
            ctx.n += before;
        }
        if (rc == 0 && ctx.rc) rc = ctx.rc;
    }
    struct show_ctx fc = {db, json, 0, 0};
    if (rc == 0) rc = mt_db_pairs(db, "foreign", count_foreign, &fc);
    if (json) printf(",\"imported_files\":%d}\n", fc.n);
    else if (ctx.n == 0) printf("no measurements yet: run 'moetune sweep'\n");
    if (!json && fc.n) printf("\n%d imported vLLM file(s): 'moetune export --format vllm' writes them out\n", fc.n);
    if (ctx.rc == MT_ECORRUPT)
        status = mt_fail("show", "the database '%s' holds malformed rows (said above): it is damaged or was not "
                                 "written by moetune", dbpath ? dbpath : "(default)");
    else if (rc != 0 || ctx.rc != 0)
        status = mt_fail("show", "cannot read the database: %s", mt_db_errmsg(db));
    mt_db_close(db);
    return mt_cli_finish("show", status);
}
