/* The attention decode family's own helpers, for the runtime's CUDA entry
 * point (its fallbacks when a file's config does not build). */
#ifndef MT_ATTN_DECODE_H
#define MT_ATTN_DECODE_H

#include "family.h"

/* the parameters, in the family's order */
enum {
    MT_ATTN_P_PARTITION, MT_ATTN_P_WARPS, MT_ATTN_P_PAGES, MT_ATTN_P_THREADS, MT_ATTN_P_MMA, MT_ATTN_P_STAGE,
    MT_ATTN_P_QSPLIT, MT_ATTN_NPARAMS
};

/* the CUDA kernel's plainest variant: two passes, FMA, 4 warps; it builds
 * for every head_dim and group the kernel takes, so it is the last resort */
void mt_attn_decode_fma_default(int64_t page_size, int *values);
/* the CUDA default for (batch, ctx): the ring sized by the batch's streams
 * where the kernel has it (mt_cuda_attn_default), else the FMA variant */
void mt_attn_decode_cuda_default(const mt_family_key *k, int64_t batch, int64_t ctx, int *values);

#endif
