/* What a fused-MoE sweep holds in memory, estimated before it starts, so
 * that a problem too large for the machine is refused with the numbers
 * instead of failing variant by variant. */
#ifndef MT_MEMORY_H
#define MT_MEMORY_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_mem_need {
    double weights; /* the experts' w1 and w2, bytes */
    double buffers; /* inputs, outputs, workspace and cache flush at the largest batch size, bytes */
} mt_mem_need;

/* The need of one problem: E experts of intermediate N and hidden K, top-k,
 * elements of esz bytes, the largest batch size max_m; gpu: on the device
 * (tokens per pipeline run bounded by max_tokens), else on the host. */
void mt_moe_mem_need(int64_t E, int64_t N, int64_t K, int64_t topk, int64_t max_m, size_t esz, int gpu,
                     int64_t max_tokens, mt_mem_need *out);

/* The host's available memory (MemAvailable), bytes; -1 when unknown.
 * MOETUNE_HOST_MEMORY (bytes) overrides it, for tests. */
double mt_host_memory_available(void);

/* "--tp 4" or "--ep 8" (both, or none: "") that would bring the need under
 * avail for a model of `experts` experts and intermediate `inter`, now at
 * tp and ep; into out. */
void mt_moe_mem_hint(char *out, size_t n, int64_t experts, int64_t inter, int64_t K, int64_t topk, int64_t max_m,
                     size_t esz, int gpu, int64_t max_tokens, int tp, int ep, double avail);

/* "22.5 GB" */
void mt_bytes_text(char *out, size_t n, double bytes);

#endif
