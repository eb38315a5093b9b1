/*
 * Paged attention decode: one query token per sequence against its KV
 * cache, which lives in fixed-size pages found through a block table, as
 * vLLM keeps it. Grouped-query attention: query head h reads KV head
 * h / (num_heads / num_kv_heads).
 *
 * Layouts (row-major):
 *   q        [B, H, D]                       dtype
 *   k_cache  [num_pages, page_size, Hkv, D]  dtype
 *   v_cache  [num_pages, page_size, Hkv, D]  dtype
 *   block_table [B, max_pages]  int32: page of the sequence's i-th page_size tokens
 *   context_lens [B]            int32: tokens in the sequence's cache (>= 1)
 *   out      [B, H, D]                       dtype
 * dtype is MT_DTYPE_BF16 or MT_DTYPE_FP16 (uint16 bit patterns), or
 * MT_DTYPE_FP32. out = softmax(q . K^T * scale) . V over the context.
 *
 * The kernels split the context flash-decoding style: partitions of
 * `partition` tokens, each reduced to its maximum, its sum of exponentials
 * and its unnormalised output, merged in a second pass by their
 * log-sum-exp.
 */
#ifndef MT_ATTN_H
#define MT_ATTN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dtype.h"
#include "pool.h"

typedef struct mt_attn_shape {
    int64_t num_heads, num_kv_heads, head_dim, page_size;
    int dtype;
} mt_attn_shape;

/* One batch: the caches and tables the kernels read. */
typedef struct mt_attn_batch {
    int64_t B, max_pages, num_pages;
    const void *q, *k_cache, *v_cache;
    const int32_t *block_table, *context_lens;
    float scale; /* 0: 1/sqrt(head_dim) */
} mt_attn_batch;

/* The CPU kernel's tunables. */
typedef struct mt_attn_cpu_params {
    int partition;       /* tokens per partition, a multiple of page_size; 0: the whole context at once */
    int pages_per_iter;  /* pages whose scores are computed before their values are read */
    int threads;         /* workers over (sequence, KV head, partition) */
} mt_attn_cpu_params;

static inline float mt_f16_to_f32(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, u;
    if (e == 0) {
        if (!m) u = s;
        else { /* subnormal: normalise */
            e = 113;
            while (!(m & 1024)) m <<= 1, e--;
            u = s | (e << 23) | ((m & 1023) << 13);
        }
    } else if (e == 31) {
        u = s | 0x7f800000u | (m << 13);
    } else {
        u = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t mt_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t s = (u >> 16) & 0x8000, e = (u >> 23) & 255, m = u & 0x7fffff;
    if (e == 255) return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
    int ee = (int)e - 112;
    if (ee >= 31) return (uint16_t)(s | 0x7c00);
    if (ee <= 0) {
        if (ee < -10) return (uint16_t)s;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - ee), r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(s | r);
    }
    uint32_t r = ((uint32_t)ee << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++; /* to nearest even; a carry moves the exponent up */
    return (uint16_t)(s | r);
}

static inline float mt_load_elem(const void *p, int dtype, size_t i)
{
    if (dtype == MT_DTYPE_FP32) return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    return dtype == MT_DTYPE_BF16 ? mt_bf16_to_f32(h) : mt_f16_to_f32(h);
}

static inline void mt_store_elem(void *p, int dtype, size_t i, float v)
{
    if (dtype == MT_DTYPE_FP32) ((float *)p)[i] = v;
    else ((uint16_t *)p)[i] = dtype == MT_DTYPE_BF16 ? mt_f32_to_bf16(v) : mt_f32_to_f16(v);
}

/* The reference, in double, one output element at a time (out [B, H, D]
 * in double): plain and slow, exact enough to judge any kernel. */
int mt_attn_reference(const mt_attn_shape *s, const mt_attn_batch *b, double *out);

/* MT_OK, or MT_EINVAL for a shape, batch or params the kernel cannot take
 * (why, when not NULL, says what). */
int mt_attn_check(const mt_attn_shape *s, const mt_attn_batch *b, const mt_attn_cpu_params *p, int max_threads,
                  char *why, size_t n);
/* Scratch bytes the CPU kernel needs for this batch. */
size_t mt_attn_cpu_workspace(const mt_attn_shape *s, const mt_attn_batch *b, const mt_attn_cpu_params *p);
/* The split-KV kernel on the CPU; out in s->dtype. */
int mt_attn_cpu_forward(mt_pool *pool, const mt_attn_shape *s, const mt_attn_batch *b, const mt_attn_cpu_params *p,
                        void *workspace, void *out);

#endif
