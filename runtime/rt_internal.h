/* Shared inside moetune, not part of the public API. */
#ifndef MT_RT_INTERNAL_H
#define MT_RT_INTERNAL_H

#include <stdint.h>

/* vLLM's default heuristic for bf16/fp16 and fp8 per-tensor
 * (VLLM-FORMAT.md): BLOCK_SIZE_M, N, K, GROUP_SIZE_M, num_warps,
 * num_stages into out[0..5]. */
void mt_vllm_default_config(int64_t M, int64_t E, int rocm, int out[6]);

/* The kernel source hash of a backend in this build ("cpu", "cuda"), or
 * NULL: configs measured with another are stale. */
const char *mt_kernel_hash(const char *backend);

#endif
