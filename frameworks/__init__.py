"""Framework adapters: how sweeper runs PyTorch, Python and (later) other training code."""

from frameworks.base import FrameworkAdapter
from frameworks.context import TrialContext
from frameworks.registry import available, get_adapter_class, register

__all__ = ["FrameworkAdapter", "TrialContext", "available", "get_adapter_class", "register"]
