/*
 * What tuning needs of a family, beside its descriptor (family.h): its
 * parameter space per backend, the space's context for a key and point,
 * the dtypes each backend's kernel takes, and one measurement of one config
 * (inputs drawn from the seed, output poisoned, checked against the
 * family's reference within the dtype's bound, then timed by the policy).
 * The worker, the sweep and the cross-backend check go through these, so
 * that no family has a measurement path of its own.
 */
#ifndef MT_FAMILY_TUNING_H
#define MT_FAMILY_TUNING_H

#include <stddef.h>
#include <stdint.h>

#include "family.h"
#include "family_space.h"

struct mt_cpu_bench;
struct mt_cuda_bench;
struct mt_policy;
struct mt_measure_result;

/* The bench of one device: the CPU's, or a GPU's (CUDA, or HIP through the
 * same host code). */
typedef struct mt_bench {
    const char *backend; /* "cpu", "cuda", "hip" */
    struct mt_cpu_bench *cpu;
    struct mt_cuda_bench *cuda;
    int cores; /* hardware threads, SMs or CUs */
    int smem_per_block;
} mt_bench;

/* A problem the cross-backend check (tests/test_backend_ops.c) runs: a key
 * without its dtype (each dtype the backend takes is run) and a point. */
typedef struct mt_family_check {
    const char *key; /* JSON, no dtype */
    int64_t point[MT_FAMILY_MAX_POINT];
} mt_family_check;

/* One option of the family's sweep, declared as data so that `sweep`
 * and `submit` parse it with no code of the family's: it sets a key field
 * (an integer in the field's range) or gives a point field's list
 * ("1,8,32"). def: the default's text, NULL where it must be given. */
typedef struct mt_family_option {
    const char *name; /* as --NAME */
    int key;          /* the key field it sets, or -1 */
    int point;        /* the point field it lists, or -1 */
    const char *def;
    const char *help;
} mt_family_option;

/* What compiling a family's GPU kernels ahead takes: the device's
 * architecture and shared memory, the problem, its points, the dtype. */
struct mt_precompile_stats;
typedef struct mt_family_precompile {
    const char *arch;
    int smem_limit, jobs;
    const mt_family_key *key;
    const int64_t (*points)[2];
    int npoints;
    const char *cache_dir;
} mt_family_precompile;

typedef struct mt_family_tuning {
    const mt_family *family;
    /* the name `sweep --kernel` takes besides the family's own
     * ("attention"), or NULL */
    const char *cli_name;
    /* the options of its sweep (fused MoE has its own command line: model
     * presets, Hugging Face configs, parallelism; none here) */
    int noptions;
    const mt_family_option *options;
    /* appended to the backend in the timing policy's name ("-attn"), so
     * that the policies of families never match each other's rows */
    const char *policy_suffix;
    /* compile every GPU binary the sweep may time before measuring, with
     * all cores (NULL: the worker compiles each as it measures it) */
    int (*precompile)(const mt_family_precompile *pc, struct mt_precompile_stats *st, char *err, size_t n);
    /* the space of the backend's kernel on a device of `cores` (threads,
     * SMs, CUs); MT_EUNSUPPORTED where the backend has no kernel of the
     * family */
    int (*space)(mt_space *sp, const char *backend, int cores);
    /* the space's context for k at point */
    void (*space_ctx)(const mt_family_key *k, const int64_t *point, int cores, int smem_per_block, mt_space_ctx *x);
    /* the dtypes the backend's kernel takes, comma-separated ("" none) */
    const char *(*dtypes)(const char *backend);
    /* one measurement of cfg (of sp) for k at point (renormalize: fused
     * MoE's routing renormalises the top-k weights; a property of the
     * problem that its files do not name, ignored by other families): MT_OK whether or not
     * the variant passed (res->ok says), MT_ECRASH when the device context
     * is no longer usable, another status when measuring was impossible
     * (MT_EUNSUPPORTED: the dtype or key on this backend). The compiler's
     * resource report (GPU) goes into resources as JSON. */
    int (*measure)(const mt_bench *b, const mt_family_key *k, int renormalize, const int64_t *point, const mt_space *sp,
                   const mt_config *cfg, uint64_t seed, const struct mt_policy *pol, struct mt_measure_result *res,
                   char *resources, size_t rlen);
    /* the roofline floor in microseconds of k at point on a device of
     * this bandwidth (GB/s) and peak (GFLOP/s); experts_hit is what the
     * measurement reported (fused MoE), or 0; NaN where it cannot be told */
    double (*floor_us)(const mt_family_key *k, const int64_t *point, double bandwidth_gbs, double peak_gflops,
                       int64_t experts_hit);
    /* the family's cases of the cross-backend check: small, odd shapes and
     * points that reach each of its kernel's paths */
    int nchecks;
    const mt_family_check *checks;
} mt_family_tuning;

/* The tuning parts of the registry's families, in its order. */
extern const mt_family_tuning *const mt_family_tunings[];
const mt_family_tuning *mt_family_tuning_of(const mt_family *f);

extern const mt_family_tuning mt_tuning_fused_moe;
extern const mt_family_tuning mt_tuning_attn_decode;

/* 1 when dtype is in the backend's list for the family */
int mt_family_takes_dtype(const mt_family_tuning *t, const char *backend, const char *dtype);

#endif
