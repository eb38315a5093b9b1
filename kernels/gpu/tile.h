/*
 * The tile primitives a kernel calls, from the one header that suits the
 * compiler: tile_cuda.h (PTX: cp.async, ldmatrix, mma.sync) under nvcc and
 * NVRTC, tile_hip.h under hipcc and hipRTC. The two define the same
 * functions with the same fragment layouts, so a kernel exists once.
 */
#ifndef MT_GPU_TILE_H
#define MT_GPU_TILE_H
#if defined(__HIPCC__) || defined(__HIP__)
#include "tile_hip.h"
#else
#include "tile_cuda.h"
#endif
#endif
