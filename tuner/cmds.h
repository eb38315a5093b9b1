/* The subcommands, one file each, listed in main.c's table. */
#ifndef MT_CMDS_H
#define MT_CMDS_H

int cmd_sweep(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_compile(int argc, char **argv);

#endif
