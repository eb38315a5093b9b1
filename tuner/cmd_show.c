/* moetune show: the best config per M of every tuned (device, problem),
 * with its fraction of the roofline floor and its speedup over the default
 * config measured in the same sweep. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn_db.h"
#include "family.h"
#include "cmds.h"
#include "moetune/moetune.h"
#include "report.h"
#include "util.h"

static const char usage[] =
    "usage: moetune show [--db PATH] [--json]\n"
    "\n"
    "Print the best verified config per batch size of every device and\n"
    "problem in the database: median time, spread, roofline floor, the\n"
    "fraction of the floor reached, and the speedup over the default config;\n"
    "and for the attention decode kernel, the best verified config per batch\n"
    "size and context length with its time and KV-read floor.\n";

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

/* attention decode: one table per (device, attention problem) */
struct attn_show { struct show_ctx *c; int rows; };
static int attn_row(const mt_attn_row *r, void *u)
{
    struct attn_show *a = u;
    if (a->c->json) {
        printf("%s{\"batch\":%lld,\"ctx\":%lld,\"params\":%s,\"median_us\":%.10g,\"floor_us\":", a->rows ? "," : "",
               (long long)r->batch, (long long)r->ctx, r->params && *r->params == '{' ? r->params : "null", r->median_us);
        if (isnan(r->floor_us)) printf("null}");
        else printf("%.10g}", r->floor_us);
    } else {
        printf("%7lld %7lld  %-52s %10.1f %9.1f %6.2f\n", (long long)r->batch, (long long)r->ctx, r->params, r->median_us,
               r->floor_us, r->floor_us > 0 ? r->floor_us / r->median_us : NAN);
    }
    a->rows++;
    return 0;
}

static int show_attn_pair(int64_t dev, const char *name, const char *backend, const mt_problem *p,
                          const mt_family_key *k, void *u)
{
    struct show_ctx *c = u;
    struct attn_show a = {c, 0};
    if (c->json) {
        printf("%s{\"device\":", c->n ? "," : "");
        mt_json_str(stdout, name);
        printf(",\"backend\":");
        mt_json_str(stdout, backend);
        printf(",\"kernel\":\"attn_decode\",\"H\":%lld,\"H_kv\":%lld,\"D\":%lld,\"page\":%lld,\"dtype\":",
               (long long)k->v[MT_ATTN_KEY_H], (long long)k->v[MT_ATTN_KEY_HKV], (long long)k->v[MT_ATTN_KEY_D],
               (long long)k->v[MT_ATTN_KEY_PAGE]);
        mt_json_str(stdout, p->dtype);
        printf(",\"results\":[");
    } else {
        printf("%s%s (%s), attn_decode H=%lld H_kv=%lld D=%lld page=%lld %s\n", c->n ? "\n" : "", name, backend,
               (long long)k->v[MT_ATTN_KEY_H], (long long)k->v[MT_ATTN_KEY_HKV], (long long)k->v[MT_ATTN_KEY_D],
               (long long)k->v[MT_ATTN_KEY_PAGE], p->dtype);
        printf("%7s %7s  %-52s %10s %9s %6s\n", "batch", "ctx", "best config", "median us", "floor us", "floor/t");
    }
    c->n++;
    /* the rows of the backend's own kernel source */
    c->rc = mt_db_attn_best(c->db, dev, p->id, mt_attn_kernel_hash(backend), attn_row, &a);
    if (c->json) printf("]}");
    else if (!a.rows) printf("(none verified with this build's kernel source)\n");
    return c->rc;
}

static int count_foreign(const mt_device_info *d, const mt_problem *p, void *u)
{
    (void)d;
    (void)p;
    ((struct show_ctx *)u)->n++;
    return 0;
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
    struct show_ctx ctx = {db, json, 0, 0};
    if (json) printf("{\"results\":[");
    int rc = mt_db_pairs(db, "ok", show_pair, &ctx);
    struct show_ctx fc = {db, json, 0, 0};
    if (rc == 0) rc = mt_db_pairs(db, "foreign", count_foreign, &fc);
    struct show_ctx ac = {db, json, 0, 0};
    if (json) printf("],\"attention\":[");
    else if (ctx.n) ac.n = 1; /* a blank line between the tables */
    if (rc == 0) rc = mt_db_attn_pairs(db, show_attn_pair, &ac);
    if (rc == 0 && ac.rc) rc = ac.rc;
    if (json) printf("],\"imported_files\":%d}\n", fc.n);
    else if (ctx.n == 0 && ac.n == 0) printf("no measurements yet: run 'moetune sweep'\n");
    if (!json && fc.n) printf("\n%d imported vLLM file(s): 'moetune export --format vllm' writes them out\n", fc.n);
    if (ctx.rc == MT_ECORRUPT)
        status = mt_fail("show", "the database '%s' holds malformed rows (said above): it is damaged or was not "
                                 "written by moetune", dbpath ? dbpath : "(default)");
    else if (rc != 0 || ctx.rc != 0)
        status = mt_fail("show", "cannot read the database: %s", mt_db_errmsg(db));
    mt_db_close(db);
    return mt_cli_finish("show", status);
}
