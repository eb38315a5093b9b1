/* fp8 e4m3 (the "fn" variant Hopper's tensor cores and the engines use: no
 * infinities, one NaN code per sign, largest finite 448) and the scaled
 * quantisations of fp8 MoE checkpoints. The rounding is to nearest, ties to
 * even, saturating at +-448, as torch's float8_e4m3fn cast and the engines'
 * quantisers do; python/moetune_engine/quant.py has the same rule, written
 * out for the engine worker's reference.
 *
 * Scale layouts (row-major, float32), the engines' own:
 *   per tensor:  one scale;
 *   per row:     one scale per row (activations per token, weights per
 *                output channel);
 *   groups:      rows x ceil(cols / group), one scale per row and group of
 *                columns (activations per 1 x 128, DeepSeek-V3's scheme);
 *   blocks:      ceil(rows / bn) x ceil(cols / bk), one per bn x bk block
 *                (weights per 128 x 128).
 * A scale is the absolute maximum it covers over 448 (1e-10 at least), and
 * q = round(x / scale), so that x ~= q * scale. Thread-safe, no state. */
#ifndef MT_FP8_H
#define MT_FP8_H

#include <stddef.h>
#include <stdint.h>

#define MT_E4M3_MAX 448.0f

float mt_e4m3_to_f32(uint8_t q);
/* NaN gives the positive NaN code 0x7f */
uint8_t mt_f32_to_e4m3(float x);

/* the scale for an absolute maximum: amax / 448, amax at least 1e-10 */
float mt_fp8_scale_of(float amax);
/* x quantised with scale and back: e4m3(x / scale) * scale */
float mt_fp8_qdq(float x, float scale);

/* one scale over n values */
void mt_fp8_quant_tensor(const float *x, size_t n, uint8_t *q, float *scale);
/* rows x cols, a scale per row and group of `group` columns (group >= cols:
 * one per row); scales rows x ceil(cols / group) */
void mt_fp8_quant_groups(const float *x, size_t rows, size_t cols, size_t group, uint8_t *q, float *scales);
/* rows x cols, a scale per bn x bk block; scales ceil(rows/bn) x ceil(cols/bk) */
void mt_fp8_quant_blocks(const float *x, size_t rows, size_t cols, size_t bn, size_t bk, uint8_t *q, float *scales);

#endif
