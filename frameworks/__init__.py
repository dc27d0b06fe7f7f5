"""Framework adapters: how sweeper runs PyTorch, Python and (later) other training code."""

from sweeper.frameworks.base import FrameworkAdapter
from sweeper.frameworks.context import TrialContext
from sweeper.frameworks.registry import available, get_adapter_class, register

__all__ = ["FrameworkAdapter", "TrialContext", "available", "get_adapter_class", "register"]
