"""fused_experts with SGLang's signatures: 0.5's (topk_output,
moe_runner_config), or 0.4's (topk_weights, topk_ids, inplace) with
MOETUNE_DOUBLE_SGLANG_API=topk_weights. Both GEMMs' configs come from the
module's try_get_optimal_moe_config, as in SGLang: from 0.5 with
return_down_config, the down GEMM's own config (a _down file) or none."""
import os
import sys
from typing import List, Optional

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), *[".."] * 5))
from moe_double import _config, fused, override_config  # noqa: E402,F401

from sglang.srt.layers.moe.moe_runner import MoeRunnerConfig  # noqa: E402
from sglang.srt.layers.moe.topk import StandardTopKOutput  # noqa: E402


_OLD_API = os.environ.get("MOETUNE_DOUBLE_SGLANG_API") == "topk_weights"


def _override():
    config = _config["value"]
    if not config:
        raise RuntimeError("the double has no config files: it runs only under override_config")
    return config


def _try_get_optimal_moe_config_05(
    w1_shape,
    w2_shape,
    top_k: int,
    dtype: Optional[str],
    M: int,
    is_marlin: bool = False,
    block_shape: Optional[List[int]] = None,
    per_channel_quant: bool = False,
    return_down_config: bool = False,
):
    config = _override()
    return (config, (None, None)) if return_down_config else config


def _try_get_optimal_moe_config_04(
    w1_shape,
    w2_shape,
    top_k: int,
    dtype: Optional[str],
    M: int,
    is_marlin: bool = False,
    block_shape: Optional[List[int]] = None,
):
    return _override()


try_get_optimal_moe_config = _try_get_optimal_moe_config_04 if _OLD_API else _try_get_optimal_moe_config_05


def _configs(hidden_states, w1, w2, topk_ids, block_shape, per_channel):
    """both GEMMs' configs, resolved through the module's function at call
    time as SGLang's _prepare_fused_moe_run does"""
    if _OLD_API:
        return try_get_optimal_moe_config(w1.shape, w2.shape, topk_ids.shape[1], None, hidden_states.shape[0],
                                          block_shape=block_shape), None
    config, (down, _) = try_get_optimal_moe_config(w1.shape, w2.shape, topk_ids.shape[1], None,
                                                   hidden_states.shape[0], block_shape=block_shape,
                                                   per_channel_quant=per_channel, return_down_config=True)
    if down is not None:
        assert config["BLOCK_SIZE_M"] == down["BLOCK_SIZE_M"]
        down = dict(down)
        down.pop("USE_TMA", None)
    return config, down


def _fused_experts_topk_output(
    hidden_states: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    topk_output: StandardTopKOutput,
    moe_runner_config: MoeRunnerConfig,
    b1: Optional[torch.Tensor] = None,
    b2: Optional[torch.Tensor] = None,
    use_fp8_w8a8: bool = False,
    use_int8_w8a8: bool = False,
    use_int8_w8a16: bool = False,
    use_int4_w4a16: bool = False,
    per_channel_quant: bool = False,
    w1_scale: Optional[torch.Tensor] = None,
    w2_scale: Optional[torch.Tensor] = None,
    w1_zp: Optional[torch.Tensor] = None,
    w2_zp: Optional[torch.Tensor] = None,
    a1_scale: Optional[torch.Tensor] = None,
    a2_scale: Optional[torch.Tensor] = None,
    block_shape: Optional[List[int]] = None,
):
    config, down = _configs(hidden_states, w1, w2, topk_output.topk_ids, block_shape, per_channel_quant)
    return fused(hidden_states, w1, w2, topk_output.topk_weights, topk_output.topk_ids, fp8=use_fp8_w8a8,
                 int8_w8a8=use_int8_w8a8, int8_w8a16=use_int8_w8a16, per_channel=per_channel_quant,
                 w1_scale=w1_scale, w2_scale=w2_scale, a1_scale=a1_scale, a2_scale=a2_scale, block_shape=block_shape,
                 int4_w4a16=use_int4_w4a16, w1_zp=w1_zp, w2_zp=w2_zp, config=config, down_config=down)


def _fused_experts_topk_weights(
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
    per_channel_quant: bool = False,
    w1_scale: Optional[torch.Tensor] = None,
    w2_scale: Optional[torch.Tensor] = None,
    w1_zp: Optional[torch.Tensor] = None,
    w2_zp: Optional[torch.Tensor] = None,
    a1_scale: Optional[torch.Tensor] = None,
    a2_scale: Optional[torch.Tensor] = None,
    block_shape: Optional[List[int]] = None,
    no_combine: bool = False,
    routed_scaling_factor: Optional[float] = None,
):
    config, _ = _configs(hidden_states, w1, w2, topk_ids, block_shape, per_channel_quant)
    return fused(hidden_states, w1, w2, topk_weights, topk_ids, fp8=use_fp8_w8a8, int8_w8a8=use_int8_w8a8,
                 int8_w8a16=use_int8_w8a16, per_channel=per_channel_quant, w1_scale=w1_scale, w2_scale=w2_scale,
                 a1_scale=a1_scale, a2_scale=a2_scale, block_shape=block_shape, int4_w4a16=use_int4_w4a16,
                 w1_zp=w1_zp, w2_zp=w2_zp, config=config)


fused_experts = (_fused_experts_topk_weights if os.environ.get("MOETUNE_DOUBLE_SGLANG_API") == "topk_weights"
                 else _fused_experts_topk_output)
