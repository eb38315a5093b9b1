"""moetune's engine worker: measures vLLM's or SGLang's fused-MoE Triton
kernel, from the user's own installation, for `moetune sweep --engine`."""
