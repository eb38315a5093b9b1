"""Test double of Triton: only its version, which names SGLang's config folder."""
import os

__version__ = os.environ.get("MOETUNE_DOUBLE_TRITON_VERSION", "3.6.0")
