/* One documented debug variable for A/B measurements of the CUDA kernels'
 * launch-side choices (docs/debug.md): MOETUNE_DEBUG_CUDA, a comma-separated
 * list of
 *   no-wgmma          Hopper's tiles on mma.sync instead of warpgroup MMA
 *   no-splitk         no split-K of the GEMMs at small batch sizes
 *   no-pdl            no programmatic dependent launch (overlapped kernels)
 *   no-gemv-prefetch  the GEMV path without its weight prefetch
 *   align-one=N       one alignment block up to N pairs (0: never)
 * Unset or empty: every choice as shipped. It is read where a kernel variant
 * is built or a device opened, never per launch. Not for production: each
 * switch only makes the kernels slower or equal; it exists so that a bench
 * can measure what a choice is worth in the same run. */
#ifndef MT_SWITCHES_H
#define MT_SWITCHES_H

#include <stddef.h>

typedef struct mt_cuda_switches {
    int wgmma, splitk, pdl, gemv_prefetch; /* 1: on (the default) */
    int align_one;                         /* pairs up to which one block aligns (default 4096) */
} mt_cuda_switches;

/* The switches text (NULL: the defaults) into s. MT_EPARSE, with the word
 * that is not a switch in why, where the text holds one; s then has the
 * defaults for it and the other words applied. */
int mt_cuda_switches_parse(const char *text, mt_cuda_switches *s, char *why, size_t n);
/* The switches of MOETUNE_DEBUG_CUDA now; a word that is not one is
 * reported once through the log and ignored. */
void mt_cuda_switches_get(mt_cuda_switches *s);

#endif
