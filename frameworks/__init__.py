"""Framework adapters: how sweeper runs PyTorch, TensorFlow, Caffe, commands and Python code.

:class:`FrameworkAdapter` states the contract a plug-in adapter fulfils, and
:mod:`sweeper.frameworks.testing` holds the tests that check it.
"""

from sweeper.frameworks.base import STOP_GRACE_S, FrameworkAdapter
from sweeper.frameworks.context import TrialContext
from sweeper.frameworks.registry import available, get_adapter_class, register

__all__ = [
    "STOP_GRACE_S",
    "FrameworkAdapter",
    "TrialContext",
    "available",
    "get_adapter_class",
    "register",
]
