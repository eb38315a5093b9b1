/* From the database to files: the best verified config per M, in vLLM's
 * format (for kernels that take vLLM's parameters, and imported files) and
 * in moetune's own (every backend, with the figures behind each choice). */
#ifndef MT_EXPORT_H
#define MT_EXPORT_H

#include <stdint.h>

#include "db.h"

/* The best of one point (fused MoE: M; attention: batch in M, context in
 * p2). */
typedef struct mt_best {
    int64_t M, p2;
    char *params; /* canonical JSON */
    double median_us, spread_us, rel_err, floor_us, efficiency;
    int reps, is_default;
    char *def_params; /* the default config's, NULL when not measured */
    double def_median_us;
    int n_ok, n_failed;
    int finalists; /* how many were measured again side by side (0: none) */
} mt_best;

typedef struct mt_best_list {
    mt_best *v;
    int n;
} mt_best_list;

/* Best verified row per point of (device, problem) among rows of
 * kernel_hash (NULL: any), by point; the finalists decide where a sweep ran
 * them. The default config competes like any other, so a best never loses
 * to it. Any family. */
int mt_best_collect(mt_db *db, int64_t device_id, int64_t problem_id, const char *kernel_hash, mt_best_list *out);
void mt_best_list_free(mt_best_list *l);

/* The name of a family's plain config file for key on a device (the
 * first of its file_names not in moetune's format). MT_OK, or MT_EINVAL
 * when the family names none. */
struct mt_family;
struct mt_family_key;
int mt_family_plain_file(const struct mt_family *f, const struct mt_family_key *k, const char *device,
                         const char *backend, char *out, size_t n);

typedef struct mt_export_opts {
    const char *out_dir;
    int vllm, moetune;
    int grid; /* every measurement as CSV, for replaying strategies */
    int64_t device_id, problem_id; /* 0: all */
    int quiet;                     /* no per-file lines on stdout */
} mt_export_opts;

typedef struct mt_export_stats {
    int written;
    int own_skipped; /* results of moetune's own kernels asked for in vLLM's format */
    int failed;
} mt_export_stats;

int mt_export(mt_db *db, const mt_export_opts *o, mt_export_stats *st);

/* vLLM's file name for problem p on device d (its dtype field, none for
 * bf16 and fp16; an import's own). */
int mt_vllm_file_name(char *out, size_t n, const mt_device_info *d, const mt_problem *p);
/* The engine's own file name for p on d, by d's backend: vLLM's, or
 * SGLang's (its block_shape with a space, per_channel_quant, int4's packed
 * N). */
int mt_engine_file_name(char *out, size_t n, const mt_device_info *d, const mt_problem *p);

/* SGLang's down GEMM, tuned on its own (sweep --down) with the gate-up
 * GEMM's config pinned: its rows at batch size M carry up_hash (the
 * gate-up rows' kernel), this mark and a digest of M and the gate-up
 * config pinned there (up_params), so that they are told from the gate-up
 * rows, and a row measured against another gate-up config is never
 * written beside this one. */
#define MT_DOWN_GEMM_MARK ", down GEMM after gate-up "
int mt_down_gemm_hash(const char *up_hash, int64_t M, const char *up_params, char *out, size_t n);

/* The vLLM device spelling, problem and backend name a moetune-format file
 * is named from. */
int mt_mtformat_name(char *out, size_t n, const mt_device_info *d, const mt_problem *p);


#endif
