/* moetune cancel: take a job out of the queue, or stop it where it runs. */
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "moetune/moetune.h"
#include "jobs.h"
#include "util.h"

static const char usage[] =
    "usage: moetune cancel JOB [--db PATH]\n"
    "\n"
    "Cancel a queued job, or a running one: its sweep stops after the\n"
    "measurement in flight, which is kept, like everything measured before.\n";

int cmd_cancel(int argc, char **argv)
{
    const char *db_path = NULL, *job = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(usage, stdout), mt_cli_finish("cancel", 0);
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db_path = argv[++i];
        else if (!strncmp(argv[i], "--db=", 5)) db_path = argv[i] + 5;
        else if (argv[i][0] == '-') return mt_usage_error("cancel", "unknown option '%s'", argv[i]);
        else if (job) return mt_usage_error("cancel", "one job at a time ('%s' and '%s')", job, argv[i]);
        else job = argv[i];
    }
    if (!job) return mt_usage_error("cancel", "which job? (moetune status lists them)");
    int64_t id;
    int status = mt_parse_int_opt("cancel", "JOB", job, 1, INT64_MAX, &id);
    if (status) return status;
    mt_db *db = NULL;
    if ((status = mt_cli_open_db("cancel", db_path, &db)) != 0) return status;
    const char *was = "missing";
    if (mt_db_job_cancel(db, id, &was) != MT_OK) status = mt_fail("cancel", "cannot cancel job %lld: %s", (long long)id, mt_db_errmsg(db));
    else if (!strcmp(was, "missing")) status = mt_fail("cancel", "there is no job %lld (moetune status lists them)", (long long)id);
    else if (!strcmp(was, "queued")) printf("job %lld cancelled (it had not started)\n", (long long)id);
    else if (!strcmp(was, "running")) printf("job %lld cancelled: its sweep stops after the variant in flight\n", (long long)id);
    else printf("job %lld had already ended (%s): nothing to cancel\n", (long long)id, was);
    mt_db_close(db);
    return mt_cli_finish("cancel", status);
}
