/* moetune merge: bring databases together, e.g. the shards of a sweep run
 * on different nodes (sweep --shard I/N), so that one export holds every
 * batch size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "merge.h"
#include "moetune/moetune.h"
#include "util.h"

static const char usage[] =
    "usage: moetune merge [--db PATH] SOURCE.db [SOURCE.db ...]\n"
    "\n"
    "Copy every device, problem, sweep, measurement, finalist and import of\n"
    "the sources into the database (--db, default as for sweep). Rows are\n"
    "matched by what they are, not by their row numbers: merging again adds\n"
    "nothing, and where both hold a measurement the database's own is kept.\n"
    "Each source is merged in one transaction. Then 'moetune export' writes\n"
    "config files that hold the batch sizes of every source.\n";

int cmd_merge(int argc, char **argv)
{
    const char *db_path = NULL;
    const char *src[256];
    int ns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(usage, stdout), mt_cli_finish("merge", 0);
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db_path = argv[++i];
        else if (!strncmp(argv[i], "--db=", 5)) db_path = argv[i] + 5;
        else if (argv[i][0] == '-') return mt_usage_error("merge", "unknown option '%s'", argv[i]);
        else if (ns == 256) return mt_usage_error("merge", "at most 256 sources at a time");
        else src[ns++] = argv[i];
    }
    if (!ns) return mt_usage_error("merge", "which databases? (moetune merge --db ALL.db shard0.db shard1.db ...)");
    char path[4096];
    if (mt_cli_db_path(db_path, path, sizeof path) != MT_OK)
        return mt_fail("merge", "cannot find the database (set XDG_DATA_HOME or HOME, or pass --db PATH)");
    /* every source is checked before anything is written */
    for (int i = 0; i < ns; i++) {
        if (access(src[i], R_OK) != 0)
            return mt_usage_error("merge", "cannot read the source '%s': %s", src[i], strerror(errno));
        char rp[4096], rd[4096];
        if (realpath(src[i], rp) && realpath(path, rd) && !strcmp(rp, rd))
            return mt_usage_error("merge", "'%s' is the database itself", src[i]);
        mt_db *s = NULL;
        /* opening migrates an older source to this schema, and refuses a
         * file that is not a moetune database */
        int st = mt_cli_open_db("merge", src[i], &s);
        mt_db_close(s);
        /* a source that is not a database is a wrong argument, as a missing one is */
        if (st) return MT_EXIT_USAGE;
    }
    mt_db *db = NULL;
    int status = mt_cli_open_db("merge", path, &db);
    if (status) return status;
    for (int i = 0; i < ns && !status; i++) {
        int64_t added = 0, present = 0;
        char err[1024] = "";
        if (mt_db_merge(db, src[i], &added, &present, err, sizeof err) != MT_OK)
            status = mt_fail("merge", "merging '%s' failed (nothing of it was written): %s", src[i], err);
        else
            printf("%s: %lld measurements added, %lld already there\n", src[i], (long long)added, (long long)present);
    }
    mt_db_close(db);
    return mt_cli_finish("merge", status);
}
