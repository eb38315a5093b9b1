from vllm.model_executor.layers.fused_moe.fused_moe import fused_experts, override_config  # noqa: F401
