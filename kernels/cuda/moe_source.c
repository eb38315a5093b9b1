/* The fused-MoE kernel source and the headers it includes, as NVRTC gets
 * them (the arrays are generated from the files by CMakeLists.txt). */
#include "cuda_rt.h"

extern const char mt_cuda_moe_cu[], mt_cuda_attn_cu[], mt_gpu_portable_h[], mt_gpu_tile_h[], mt_gpu_tile_cuda_h[],
    mt_gpu_wgmma_cuda_h[];

static const char *const headers[] = {mt_gpu_portable_h, mt_gpu_tile_h, mt_gpu_tile_cuda_h, mt_gpu_wgmma_cuda_h};
static const char *const header_names[] = {"portable.h", "tile.h", "tile_cuda.h", "wgmma_cuda.h"};

const mt_cuda_source *mt_cuda_moe_source(void)
{
    static const mt_cuda_source src = {"moe.cu", mt_cuda_moe_cu, 4, headers, header_names};
    return &src;
}

const mt_cuda_source *mt_cuda_attn_source(void)
{
    static const mt_cuda_source src = {"attn.cu", mt_cuda_attn_cu, 4, headers, header_names};
    return &src;
}
