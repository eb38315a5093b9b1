/* The kernel sources as hipRTC gets them: the CUDA sources, with the HIP
 * tile header in place of the PTX one (the arrays are generated from the
 * files by CMakeLists.txt, as for NVRTC). */
#include "hip_rt.h"

extern const char mt_cuda_moe_cu[], mt_cuda_attn_cu[], mt_gpu_portable_h[], mt_gpu_tile_h[], mt_gpu_tile_hip_h[];

static const char *const headers[] = {mt_gpu_portable_h, mt_gpu_tile_h, mt_gpu_tile_hip_h};
static const char *const header_names[] = {"portable.h", "tile.h", "tile_hip.h"};

const mt_cuda_source *mt_hip_moe_source(void)
{
    static const mt_cuda_source src = {"moe.cu", mt_cuda_moe_cu, 3, headers, header_names};
    return &src;
}

const mt_cuda_source *mt_hip_attn_source(void)
{
    static const mt_cuda_source src = {"attn.cu", mt_cuda_attn_cu, 3, headers, header_names};
    return &src;
}
