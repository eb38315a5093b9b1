/*
 * The measurement database: one SQLite file, schema versioned with
 * PRAGMA user_version, WAL, every measurement committed as it is taken.
 */
#ifndef MT_DB_H
#define MT_DB_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_db mt_db;

/* The schema version this moetune writes. */
#define MT_DB_SCHEMA_VERSION 9

typedef struct mt_device_info {
    int64_t id;
    char backend[16];   /* cpu, cuda, hip */
    char name[128];     /* as vLLM spells it in file names */
    char raw_name[128]; /* as the driver reports it */
    char arch[32];      /* sm_90a, gfx942, x86_64 */
    int cores;          /* SMs, CUs or hardware threads */
    int64_t memory_bytes;
    char driver[64];
    char toolkit[64];
    int64_t l2_bytes;     /* GPUs: L2 cache */
    int smem_per_block;   /* GPUs: shared memory a block may opt in to */
    double bandwidth_gbs; /* measured; 0 when not yet measured */
    double peak_gflops;
    /* measured dense fp8 (e4m3) matmul rate, the compute ceiling of fp8
     * problems; 0 when not measured or the device has no fp8 tensor cores */
    double peak_fp8_gflops;
} mt_device_info;

typedef struct mt_problem {
    int64_t id;
    char kernel[32];   /* "fused_moe" */
    char dtype[32];    /* bf16, fp32, or a vLLM dtype string for imports */
    int64_t E, N, K, topk; /* K and topk are 0 when unknown (imports) */
    int64_t block_n, block_k;
    int renormalize;
    /* the family's key as its canonical JSON (families/family.h): what
     * names the problem. For fused MoE it is made from the fields above;
     * another family's problem is given by its key alone (the fields above
     * are fused MoE's, 0 for it). */
    char key[256];
} mt_problem;

/* Fill p->key from p (fused MoE: from its fields; another family: its key
 * checked and written canonically, the fused-MoE fields zeroed, dtype taken
 * from the key). MT_EINVAL with why for an unknown family or a bad key. */
int mt_problem_key_of(mt_problem *p, char *why, size_t n);

typedef struct mt_measurement {
    int64_t sweep_id; /* 0: none */
    int64_t device_id, problem_id, config_id, M;
    int is_default;
    const char *status; /* "ok", "failed", "foreign", "aborted" */
    const char *reason; /* may be NULL */
    double median_us, spread_us, rel_err, tolerance, floor_us, efficiency; /* NaN: NULL */
    int reps;
    const char *kernel_hash, *timing_policy;
    int64_t ord; /* position in an imported file, else 0 */
    const char *resources; /* the compiler's resource report (JSON), or NULL */
    int transient; /* a failure that did not come from the variant: measured again on the next run */
    int64_t p2;    /* the family's second point field (attention: the context length); 0 for fused MoE */
} mt_measurement;

/* A device's description as JSON: one spelling for the worker's hello,
 * `devices --json` and the moetune format; and back (absent fields empty,
 * cores 1). */
struct cJSON;
void mt_device_info_to_json(struct cJSON *o, const mt_device_info *d);
void mt_device_info_from_json(const struct cJSON *o, mt_device_info *d);

/* Open (creating and migrating) the database at path. On failure *out is
 * NULL and err holds a message naming the file. Returns MT_OK, MT_EIO
 * (cannot open or create), MT_ECORRUPT, MT_ESCHEMA or MT_EDB. */
int mt_db_open(mt_db **out, const char *path, char *err, size_t err_len);
/* NULL is a harmless no-op. */
void mt_db_close(mt_db *db);
/* The SQLite connection, for the other parts of the database layer
 * (db/jobs.c). */
struct sqlite3;
struct sqlite3 *mt_db_sqlite(mt_db *db);
/* The last SQLite error message on this handle. */
const char *mt_db_errmsg(mt_db *db);

int mt_db_begin(mt_db *db);
int mt_db_commit(mt_db *db);
void mt_db_rollback(mt_db *db);

/* Insert or find the device; fills d->id and, when stored, the ceilings. */
int mt_db_device_upsert(mt_db *db, mt_device_info *d);
/* peak_fp8_gflops <= 0: none (stored as NULL) */
int mt_db_device_set_ceilings(mt_db *db, int64_t id, double bandwidth_gbs, double peak_gflops, double peak_fp8_gflops);
int mt_db_problem_upsert(mt_db *db, mt_problem *p);
int mt_db_config_upsert(mt_db *db, const char *backend, const char *params_json, int64_t *id);

int mt_db_sweep_begin(mt_db *db, int64_t device_id, int64_t problem_id, const char *strategy, int budget,
                      const char *batch_sizes, const char *command, int64_t *id);
int mt_db_sweep_end(mt_db *db, int64_t id, const char *status);
/* The sweeps of (device, problem) that measured less than the full grid
 * (another strategy, a budget, --only, --time, a shard, or not done);
 * negative on error. */
int mt_db_partial_sweeps(mt_db *db, int64_t device_id, int64_t problem_id);
/* Sweeps of this host still 'running' whose process is gone (alive(pid)
 * is 0) become 'killed'; their count, or a negative status. */
int mt_db_sweeps_reap(mt_db *db, int (*alive)(int64_t pid));

/* 1 when a measurement of this (device, problem, M, config, kernel hash,
 * timing policy) is stored, 0 when not, negative on error. */
int mt_db_measurement_exists(mt_db *db, int64_t device_id, int64_t problem_id, int64_t M, int64_t config_id,
                             const char *kernel_hash, const char *timing_policy);
/* A stored failure's kind: the variant's own (a wrong result, a compile
 * error, a launch failure, out of resources), or a transient one (a
 * timeout, a signal that did not come from the variant). */
enum { MT_FAILED_VARIANT = 1, MT_FAILED_TRANSIENT = 2 };
/* The same, and the stored median (NAN for a failed variant) and, in
 * *failed (may be NULL), 0 or the stored failure's kind. */
int mt_db_measurement_get(mt_db *db, int64_t device_id, int64_t problem_id, int64_t M, int64_t config_id,
                          const char *kernel_hash, const char *timing_policy, double *median_us, int *failed);
/* The same for a point of any family: point[0] in M, point[1] in p2 (0
 * for a family of one point field). */
/* The kernel hash of the newest verified row of (device, problem): for an
 * engine's kernel, whose id (engine and Triton versions) is whatever the
 * last sweep measured; MT_ENOTFOUND when none. like and not_like (SQL LIKE
 * patterns, NULL: any) narrow the hashes looked at: an engine's rows of
 * SGLang's separately tuned down GEMM carry a hash of their own. */
int mt_db_latest_kernel_hash(mt_db *db, int64_t dev, int64_t prob, const char *like, const char *not_like, char *out,
                             size_t n);
/* The other problems with verified rows on the device that the engine's file
 * name cannot tell from prob (same kernel, dtype, E, N and block shape;
 * another K, top-k or renormalisation; int4 with and without zero points
 * count as one dtype, as in both engines' names; with same_fp8_name, fp8 per
 * channel and per tensor too, as in vLLM's; a block shape with a 0, the
 * weight-only schemes' [0, group], names no block, so their groups count as
 * one): up to max of them (id, dtype, K, top-k and block shape filled in);
 * returns how many there are, or -1 on a database error. */
int mt_db_name_twins(mt_db *db, int64_t dev, int64_t prob, int same_fp8_name, mt_problem *twins, int max);
int mt_db_point_get(mt_db *db, int64_t device_id, int64_t problem_id, const int64_t point[2], int64_t config_id,
                    const char *kernel_hash, const char *timing_policy, double *median_us, int *failed);
/* Insert and commit (unless inside mt_db_begin). */
int mt_db_measurement_insert(mt_db *db, const mt_measurement *m);
/* Store a new outcome over a failed row of the same key (a variant measured
 * again); MT_ENOTFOUND when there is no failed row to replace. */
int mt_db_measurement_retry(mt_db *db, const mt_measurement *m);

/* A row of a result listing. Strings point into the statement and are valid
 * during the callback only. */
typedef struct mt_result_row {
    int64_t device_id, problem_id, M, config_id, ord;
    int64_t p2; /* the point's second field (attention's context), 0 for fused MoE */
    const char *backend, *params, *status, *reason;
    double median_us, spread_us, rel_err, floor_us, efficiency;
    int reps, is_default;
} mt_result_row;
typedef int (*mt_result_cb)(const mt_result_row *r, void *user);

/* The (device, problem) pairs of fused MoE that have rows of the given
 * status ("ok" or "foreign"), device and problem filled. */
typedef int (*mt_pair_cb)(const mt_device_info *d, const mt_problem *p, void *user);
int mt_db_pairs(mt_db *db, const char *status, mt_pair_cb cb, void *user);
/* The same for the problems of one family ("fused_moe": mt_db_pairs). */
int mt_db_family_pairs(mt_db *db, const char *family, const char *status, mt_pair_cb cb, void *user);

/* Rows of (device, problem): status "ok" rows ordered by point (M, then
 * p2) then median (so the first row of each point is its best), or "foreign" rows by ord. Only rows
 * with the given kernel hash when kernel_hash is not NULL. */
int mt_db_results(mt_db *db, int64_t device_id, int64_t problem_id, const char *status,
                  const char *kernel_hash, mt_result_cb cb, void *user);

/* Counts for a (device, problem): ok and failed measurements. */
int mt_db_counts(mt_db *db, int64_t device_id, int64_t problem_id, const char *kernel_hash,
                 int64_t *ok, int64_t *failed);

/* Imported files: replace the foreign rows of (device, problem) and record
 * the file's top-level key order and extra (non-M) keys as JSON. */
int mt_db_import_begin(mt_db *db, int64_t device_id, int64_t problem_id, const char *file,
                       const char *key_order_json, const char *extra_json);
/* The stored key order and extras; strings are malloc'ed (free them). */
int mt_db_import_get(mt_db *db, int64_t device_id, int64_t problem_id, char **key_order_json, char **extra_json);

/* For warm starts, rows of the same family elsewhere (strings live during
 * the callback only): the verified rows of the same problem (family and
 * key) on other devices, and the rows imported for a problem of the family
 * with the same E and N (fused MoE; vLLM's files name only those), by
 * device, status, point, then time. */
typedef struct mt_related_row {
    const char *device, *dtype;
    int64_t point[2];
    const char *params, *status;
    double median_us;
} mt_related_row;
typedef int (*mt_related_cb)(const mt_related_row *r, void *user);
int mt_db_related(mt_db *db, const mt_problem *p, int64_t exclude_device_id, mt_related_cb cb, void *user);

/* Verified rows of the other problems of p's family and dtype on one
 * device, measured with one kernel source: by problem, point, then time.
 * For warm starts from neighbouring keys. */
typedef struct mt_shape_row {
    int64_t problem_id;
    const char *key; /* the problem's key, canonical JSON */
    int64_t point[2];
    const char *params;
    double median_us;
} mt_shape_row;
typedef int (*mt_shape_cb)(const mt_shape_row *r, void *user);
int mt_db_other_keys(mt_db *db, int64_t device_id, const mt_problem *p, const char *kernel_hash, mt_shape_cb cb,
                     void *user);

/* Finalists: a config measured again, side by side with the other best
 * few of its point, at the end of a sweep (median over `rounds` rounds). */
int mt_db_finalist_insert(mt_db *db, int64_t sweep_id, int64_t device_id, int64_t problem_id, const int64_t point[2],
                          int64_t config_id, double median_us, int rounds, const char *kernel_hash,
                          const char *timing_policy);
/* The finalists of the latest sweep that ran finalists for this point,
 * fastest first (params valid during the callback). */
typedef int (*mt_finalist_cb)(int64_t config_id, const char *params, double median_us, void *user);
int mt_db_finalists(mt_db *db, int64_t device_id, int64_t problem_id, const int64_t point[2], const char *kernel_hash,
                    mt_finalist_cb cb, void *user);

/* Number of rows in measurements (tests and progress). */
int64_t mt_db_count_measurements(mt_db *db);

#endif
