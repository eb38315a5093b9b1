"""Test double of vLLM (tests/engines/README.md)."""
import os

__version__ = os.environ.get("MOETUNE_DOUBLE_VLLM_VERSION", "0.11.0")
