/* moetune: the command table. Each subcommand lives in its own file. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "moetune/moetune.h"
#include "util.h"

static const struct cmd {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} cmds[] = {
    {"sweep", cmd_sweep, "tune a problem on a device (the main job)"},
    {"devices", cmd_devices, "list the devices this machine has"},
    {"show", cmd_show, "print the best config per batch size"},
    {"export", cmd_export, "write config files (vLLM's and moetune's formats)"},
    {"import", cmd_import, "read vLLM config files into the database"},
    {"lookup", cmd_lookup, "print the config the runtime picks for a problem"},
    {"replay", cmd_replay, "run a search strategy against a recorded grid"},
    {"compile", cmd_compile, "fill the CUDA kernel cache in parallel (no GPU needed)"},
    {"submit", cmd_submit, "queue a sweep as a job for the daemon"},
    {"status", cmd_status, "show the daemon's queue, running jobs and devices"},
    {"cancel", cmd_cancel, "cancel a queued or running job"},
    {"daemon", cmd_daemon, "run the queued jobs, one sweep per device"},
    {"merge", cmd_merge, "bring databases together (e.g. the shards of a sweep)"},
    {"publish", cmd_publish, "put the best configs in a shared bucket (s3, http, file)"},
    {"pull", cmd_pull, "fetch a shared bucket's configs into the local cache"},
    {"worker", cmd_worker, "internal: measure variants for a parent process"},
};

static int help(FILE *f)
{
    fprintf(f, "usage: moetune COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\n'moetune COMMAND --help' describes each. Start with: moetune sweep --device auto\n");
    return 0;
}

int main(int argc, char **argv)
{
    /* a worker that dies must not take the parent with it through SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    mt_log_set(mt_cli_log, NULL, MT_LOG_WARN);
    if (argc < 2) {
        help(stderr);
        return MT_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        /* `moetune help sweep` is `moetune sweep --help` */
        if (argc > 2 && !strcmp(argv[1], "help")) {
            for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
                if (!strcmp(argv[2], cmds[i].name)) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return cmds[i].fn(2, sub);
                }
            fprintf(stderr, "moetune help: unknown command '%s'\n", argv[2]);
            help(stderr);
            return MT_EXIT_USAGE;
        }
        help(stdout);
        return mt_cli_finish("help", 0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("moetune %s\n", MOETUNE_VERSION);
        return mt_cli_finish("version", 0);
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "moetune: unknown command '%s'\n", argv[1]);
    help(stderr);
    return MT_EXIT_USAGE;
}
