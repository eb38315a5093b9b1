"""Test double of SGLang (tests/engines/README.md)."""
import os

__version__ = os.environ.get("MOETUNE_DOUBLE_SGLANG_VERSION", "0.5.3")
