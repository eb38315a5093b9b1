/* moetune status: the queue, the running jobs with their progress, the
 * latest finished ones, the daemon's devices and whether a daemon serves
 * the database. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "moetune/moetune.h"
#include "jobs.h"
#include "util.h"

static const char usage[] =
    "usage: moetune status [--db PATH] [--recent N] [--json]\n"
    "\n"
    "Show the daemon's queue: queued and running jobs (with progress and the\n"
    "best so far), the latest N finished ones (default 10), the devices as the\n"
    "daemon sees them, and the pid of the daemon serving the database.\n";

/* every key always there: null where there is no value, so that a reader
 * need not tell a missing key from an empty one */
static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v) cJSON_AddStringToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static int add_job(const mt_job *j, void *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)j->id);
    cJSON_AddStringToObject(o, "status", j->status);
    cJSON_AddStringToObject(o, "device", j->device);
    add_str_or_null(o, "assigned_device", j->assigned);
    cJSON_AddItemToObject(o, "args", cJSON_Parse(j->args));
    cJSON_AddNumberToObject(o, "attempts", j->attempts);
    cJSON_AddNumberToObject(o, "done", (double)j->done);
    cJSON_AddNumberToObject(o, "total", (double)j->total);
    add_str_or_null(o, "best", j->best);
    add_str_or_null(o, "message", j->message);
    if (j->exit_status >= 0) cJSON_AddNumberToObject(o, "exit_status", j->exit_status);
    else cJSON_AddNullToObject(o, "exit_status");
    if (j->sweep_pid) cJSON_AddNumberToObject(o, "sweep_pid", (double)j->sweep_pid);
    else cJSON_AddNullToObject(o, "sweep_pid");
    add_str_or_null(o, "submitted_at", j->submitted_at);
    add_str_or_null(o, "started_at", j->started_at);
    add_str_or_null(o, "finished_at", j->finished_at);
    cJSON_AddItemToArray(u, o);
    return 0;
}

static int add_device(const char *device, const char *state, int failures, const char *message, int64_t pid,
                      const char *at, void *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "device", device);
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddNumberToObject(o, "failures", failures);
    add_str_or_null(o, "message", message);
    cJSON_AddNumberToObject(o, "daemon_pid", (double)pid);
    cJSON_AddStringToObject(o, "updated_at", at);
    cJSON_AddItemToArray(u, o);
    return 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, 0, 'd'}, {"recent", required_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *db_path = NULL;
    int64_t recent = 10;
    int json = 0, c, status;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') db_path = optarg;
        else if (c == 'j') json = 1;
        else if (c == 'r') {
            if ((status = mt_parse_int_opt("status", "--recent", optarg, 0, 100000, &recent))) return status;
        } else if (c == 'h') return fputs(usage, stdout), mt_cli_finish("status", 0);
        else return mt_usage_error("status", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind < argc) return mt_usage_error("status", "unexpected argument '%s'", argv[optind]);
    char path[4096];
    if (mt_cli_db_path(db_path, path, sizeof path) != MT_OK)
        return mt_fail("status", "cannot find the database (set XDG_DATA_HOME or HOME, or pass --db PATH)");
    mt_db *db = NULL;
    if ((status = mt_cli_open_db("status", path, &db)) != 0) return status;
    cJSON *root = cJSON_CreateObject(), *jobs = cJSON_AddArrayToObject(root, "jobs"),
          *devs = cJSON_AddArrayToObject(root, "devices");
    int pid = mt_daemon_holder(path);
    cJSON_AddStringToObject(root, "database", path);
    if (pid) cJSON_AddNumberToObject(root, "daemon_pid", pid);
    else cJSON_AddNullToObject(root, "daemon_pid");
    if (mt_db_jobs(db, (int)recent, add_job, jobs) != MT_OK || mt_db_daemon_devices(db, add_device, devs) != MT_OK) {
        status = mt_fail("status", "cannot read the queue: %s", mt_db_errmsg(db));
    } else if (json) {
        char *t = cJSON_PrintUnformatted(root);
        if (t) printf("%s\n", t);
        cJSON_free(t);
    } else {
        if (pid > 0) printf("daemon: pid %d serves %s\n", pid, path);
        else if (pid < 0) printf("daemon: one serves %s (pid unknown)\n", path);
        else printf("daemon: none serves %s (start one: moetune daemon --db %s)\n", path, path);
        const cJSON *d;
        cJSON_ArrayForEach(d, devs)
            printf("device %-8s %s%s%s (failures in a row: %d)\n", str(d, "device"), str(d, "state"),
                   *str(d, "message") ? ": " : "", str(d, "message"), (int)num(d, "failures"));
        if (!cJSON_GetArraySize(jobs)) printf("no jobs (queue one: moetune submit --model NAME ...)\n");
        else printf("%5s  %-9s  %-8s  %-8s  %-13s  %s\n", "job", "status", "wants", "on", "progress", "best / message");
        const cJSON *j;
        cJSON_ArrayForEach(j, jobs) {
            char prog[32] = "-";
            if (num(j, "total") > 0) snprintf(prog, sizeof prog, "%.0f/%.0f", num(j, "done"), num(j, "total"));
            const char *best = str(j, "best"), *msg = str(j, "message");
            printf("%5.0f  %-9s  %-8s  %-8s  %-13s  %s%s%s\n", num(j, "id"), str(j, "status"), str(j, "device"),
                   *str(j, "assigned_device") ? str(j, "assigned_device") : "-", prog, best, *best && *msg ? "; " : "",
                   msg);
        }
    }
    cJSON_Delete(root);
    mt_db_close(db);
    return mt_cli_finish("status", status);
}
