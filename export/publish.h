/*
 * Publishing tuned configs to a shared bucket, and pulling them back.
 *
 * Layout: PREFIX/DEVICE/FILE for every exported file (vLLM's and moetune's
 * formats, DEVICE as vLLM spells it in file names) and PREFIX/DEVICE/
 * manifest.json, written last:
 *   {"format": "moetune-manifest", "version": 1, "device": DEVICE,
 *    "moetune_version": "...", "time": "...",
 *    "files": [{"name": FILE, "sha256": HEX, "size": BYTES}, ...]}
 * so that a reader never sees a manifest that names a file that is not
 * there. One folder and one manifest per device: publishers with different
 * devices never touch each other's. Publishing again uploads only what
 * changed, and keeps the entries of files it did not write.
 */
#ifndef MT_PUBLISH_H
#define MT_PUBLISH_H

#include "bucket.h"
#include "db.h"

typedef struct mt_publish_stats {
    int devices, uploaded, unchanged;
    int skipped;             /* exported files whose names cannot be bucket keys, left out */
    char first_skipped[256]; /* the first of them */
    int sglang;              /* of the files, SGLang's (in triton_X_Y_Z folders) */
    int sglang_skipped;      /* folders named triton_* that are not triton_X_Y_Z, left out */
} mt_publish_stats;

/* Export the database's best configs and publish them. progress (may be
 * NULL) is called once per file. */
typedef void (*mt_publish_progress)(const char *what, const char *name, int i, int n, void *user);
int mt_publish(mt_db *db, mt_bucket *b, mt_publish_progress progress, void *user, mt_publish_stats *st, char *err,
               size_t n);

typedef struct mt_pull_stats {
    int devices, fetched, unchanged;
    char **new_files; /* paths in the cache of the files fetched now (free with mt_pull_stats_free) */
    int n_new;
} mt_pull_stats;

/* Pull the manifests of the given devices (all the bucket lists when
 * n_devices is 0) into cache_dir: only files whose sha256 differs from the
 * cached copy are fetched; each is checked against the manifest (sha256 and
 * size) and the names checked (no '..', no '/', nothing outside the cache).
 * A device's files are replaced together, or not at all when any of them
 * is missing or does not match (MT_EINTEGRITY, MT_ENOTFOUND). */
int mt_pull(mt_bucket *b, const char *const *devices, int n_devices, const char *cache_dir,
            mt_publish_progress progress, void *user, mt_pull_stats *st, char *err, size_t n);
void mt_pull_stats_free(mt_pull_stats *st);

/* Whether a file name from a manifest is safe to write in the cache. */
int mt_bucket_name_ok(const char *name);

#endif
