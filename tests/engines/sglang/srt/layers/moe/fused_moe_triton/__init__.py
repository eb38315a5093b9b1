from sglang.srt.layers.moe.fused_moe_triton.fused_moe import override_config  # noqa: F401
