/*
 * A family's kernels on one GPU backend, behind one table (as curl's TLS
 * backends are): what a config builds to, building it (NVRTC, or hipRTC
 * through the same host code), the workspace a launch needs, the launch
 * itself and the release. The runtime's variant cache and launches go
 * through it for every family, so that a family's GPU kernel is wired in
 * one place: its folder.
 *
 * The tables are immutable; the functions take the caller's device handle
 * and are as thread-safe as it is (the runtime serialises them).
 */
#ifndef MT_FAMILY_BACKEND_H
#define MT_FAMILY_BACKEND_H

#include <stddef.h>

#include "family.h"

struct mt_cuda;

typedef struct mt_family_backend {
    const mt_family *family;
    const char *backend; /* "cuda": CUDA and HIP */
    /* the launcher's config (a family's own struct, compared bytewise, so
     * zero-filled before it is set) and a built variant */
    size_t cfg_size, variant_size;
    /* MT_OK; MT_EINVAL: a config the kernel cannot take; MT_EPARSE: it did
     * not compile; MT_EUNSUPPORTED: it cannot launch on this device; why
     * says which */
    int (*build)(struct mt_cuda *c, const void *cfg, const char *cache_dir, void *variant, char *why, size_t n);
    void (*release)(struct mt_cuda *c, void *variant);
    /* device bytes of workspace the launch of args needs */
    size_t (*workspace)(const void *variant, const void *args);
    /* enqueue on stream (NULL: the handle's own); args is the family's
     * launch struct with its workspace set; nothing is synchronised */
    int (*enqueue)(struct mt_cuda *c, const void *variant, const void *args, void *stream);
} mt_family_backend;

/* The table of a family on a backend ("cuda"; "hip" takes CUDA's), or NULL. */
const mt_family_backend *mt_family_backend_find(const mt_family *f, const char *backend);

extern const mt_family_backend mt_backend_fused_moe_cuda;
extern const mt_family_backend mt_backend_attn_decode_cuda;

#endif
