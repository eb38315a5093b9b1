/* The engines whose own fused-MoE kernel moetune tunes (vLLM's and SGLang's
 * Triton kernels), through the engine worker: a Python process that imports
 * the user's installed engine and speaks the worker protocol
 * (python/moetune_engine, docs/engines.md). */
#ifndef MT_ENGINE_H
#define MT_ENGINE_H

#include <stddef.h>

/* 1 for "vllm" and "sglang" */
int mt_engine_known(const char *name);

/* The engine worker's command for a device ("cpu", "cuda:N", "hip:N"):
 * $MOETUNE_PYTHON (else python3 on PATH), the worker script
 * ($MOETUNE_ENGINE_WORKER, else the installed one, else the source tree's
 * from a build tree that was never installed), --engine, --device. The
 * words point into buf. MT_ENOTFOUND with err saying where it looked. */
int mt_engine_worker_argv(const char *engine, const char *device, const char *argv[8], char *buf, size_t n, char *err,
                          size_t err_len);

#endif
