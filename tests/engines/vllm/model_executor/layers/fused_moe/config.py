"""FusedMoEQuantConfig with the signature of vLLM 0.11's make()."""
from dataclasses import dataclass
from typing import Optional, Union

import torch


@dataclass
class FusedMoEQuantConfig:
    quant_dtype: Union[torch.dtype, str, None] = None
    weight_dtype: Union[torch.dtype, str, None] = None
    per_act_token_quant: bool = False
    per_out_ch_quant: bool = False
    block_shape: Optional[list] = None
    w1_scale: Optional[torch.Tensor] = None
    w2_scale: Optional[torch.Tensor] = None
    a1_scale: Optional[torch.Tensor] = None
    a2_scale: Optional[torch.Tensor] = None
    w1_zp: Optional[torch.Tensor] = None
    w2_zp: Optional[torch.Tensor] = None

    @staticmethod
    def make(
        quant_dtype=None,
        per_act_token_quant=False,
        per_out_ch_quant=False,
        block_shape=None,
        w1_scale=None,
        w2_scale=None,
        a1_scale=None,
        a2_scale=None,
        g1_alphas=None,
        g2_alphas=None,
        a1_gscale=None,
        a2_gscale=None,
        w1_bias=None,
        w2_bias=None,
        w1_zp=None,
        w2_zp=None,
        weight_dtype=None,
        is_scale_swizzled=True,
        gemm1_alpha=None,
        gemm1_beta=None,
        gemm1_clamp_limit=None,
    ) -> "FusedMoEQuantConfig":
        assert not per_act_token_quant or block_shape is None, "illegal quantization"
        return FusedMoEQuantConfig(quant_dtype, weight_dtype if weight_dtype is not None else quant_dtype,
                                   per_act_token_quant, per_out_ch_quant, block_shape, w1_scale, w2_scale, a1_scale,
                                   a2_scale, w1_zp, w2_zp)


FUSED_MOE_UNQUANTIZED_CONFIG = FusedMoEQuantConfig.make()
