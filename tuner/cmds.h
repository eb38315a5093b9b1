/* The subcommands, one file each, listed in main.c's table. */
#ifndef MT_CMDS_H
#define MT_CMDS_H

#include <stddef.h>

int cmd_sweep(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_daemon(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_pull(int argc, char **argv);
/* sweep --kernel NAME of a family other than fused MoE, its options
 * declared by the family (tuner/sweep_family.c) */
struct mt_family_tuning;
/* the family `--kernel NAME` means (its name or its CLI name), or NULL */
const struct mt_family_tuning *mt_sweep_family_of(const char *kernel);
int mt_sweep_family(const struct mt_family_tuning *t, int argc, char **argv);
/* its options checked as a job would run them */
int mt_sweep_family_check(const char *cmd, const struct mt_family_tuning *t, int argc, char **argv);

struct mt_db;
struct mt_worker;
struct mt_device_info;
/* Start the worker of a device, learn the device from its hello, record it,
 * and measure its ceilings once (sweep's, shared with every family's sweep).
 * Returns an exit status. */
int mt_sweep_start_worker(const char *exe, const char *device, struct mt_worker **w, struct mt_device_info *dev,
                          struct mt_db *db);
/* The same for an engine's kernel (engine "vllm", "sglang"; NULL: moetune's
 * worker): the engine worker's hello names the kernel (engine and Triton
 * versions), copied to kernel_id, which keys the stored rows. */
int mt_sweep_start_engine_worker(const char *exe, const char *engine, const char *device, struct mt_worker **w,
                                 struct mt_device_info *dev, struct mt_db *db, char *kernel_id, size_t kid_len);
/* Import one vLLM config file into the database as foreign rows (one
 * transaction); why gets the reason on failure. */
int mt_import_vllm_file(struct mt_db *db, const char *path, char *why, size_t n);

/* Check sweep arguments as a job would run them (usage errors name cmd):
 * MT_EXIT_OK, or the exit status after printing the error. model_config
 * gets the absolute path of --model-config ("" when none). */
int mt_sweep_check_args(const char *cmd, int argc, char **argv, char *model_config, size_t n);

#endif
