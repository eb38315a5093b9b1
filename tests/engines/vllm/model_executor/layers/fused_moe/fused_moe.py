"""fused_experts with vLLM's signatures: 0.11's quant_config, or 0.10's
keyword flags with MOETUNE_DOUBLE_VLLM_API=flags."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), *[".."] * 4))
from moe_double import fused, override_config  # noqa: E402,F401

from vllm.model_executor.layers.fused_moe.config import FusedMoEQuantConfig  # noqa: E402


def _fused_experts_quant_config(
    hidden_states: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    inplace: bool = False,
    activation: str = "silu",
    apply_router_weight_on_input: bool = False,
    global_num_experts: int = -1,
    expert_map=None,
    quant_config: FusedMoEQuantConfig = None,
    allow_deep_gemm: bool = False,
    allow_cutlass_block_scaled_grouped_gemm: bool = False,
) -> torch.Tensor:
    q = quant_config or FusedMoEQuantConfig.make()
    fp8 = q.quant_dtype is not None and q.quant_dtype == getattr(torch, "float8_e4m3fn", "float8_e4m3fn")
    return fused(hidden_states, w1, w2, topk_weights, topk_ids, fp8=fp8, int8_w8a8=q.quant_dtype == torch.int8,
                 int8_w8a16=q.quant_dtype is None and q.weight_dtype == torch.int8, per_channel=q.per_act_token_quant,
                 w1_scale=q.w1_scale, w2_scale=q.w2_scale, a1_scale=q.a1_scale, a2_scale=q.a2_scale,
                 block_shape=q.block_shape, int4_w4a16=q.quant_dtype is None and q.weight_dtype == "int4",
                 w1_zp=q.w1_zp, w2_zp=q.w2_zp, clamp_k=True)


def _fused_experts_flags(
    hidden_states: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    inplace: bool = False,
    activation: str = "silu",
    apply_router_weight_on_input: bool = False,
    use_fp8_w8a8: bool = False,
    use_int8_w8a8: bool = False,
    use_int8_w8a16: bool = False,
    use_int4_w4a16: bool = False,
    use_mxfp4_w4a4: bool = False,
    per_channel_quant: bool = False,
    global_num_experts: int = -1,
    expert_map=None,
    w1_scale=None,
    w2_scale=None,
    w1_zp=None,
    w2_zp=None,
    a1_scale=None,
    a2_scale=None,
    block_shape=None,
    allow_deep_gemm: bool = False,
    allow_cutlass_block_scaled_grouped_gemm: bool = False,
) -> torch.Tensor:
    return fused(hidden_states, w1, w2, topk_weights, topk_ids, fp8=use_fp8_w8a8, int8_w8a8=use_int8_w8a8,
                 int8_w8a16=use_int8_w8a16, per_channel=per_channel_quant, w1_scale=w1_scale, w2_scale=w2_scale,
                 a1_scale=a1_scale, a2_scale=a2_scale, block_shape=block_shape, int4_w4a16=use_int4_w4a16,
                 w1_zp=w1_zp, w2_zp=w2_zp, clamp_k=True)


fused_experts = _fused_experts_flags if os.environ.get("MOETUNE_DOUBLE_VLLM_API") == "flags" else _fused_experts_quant_config
