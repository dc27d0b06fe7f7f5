"""Framework adapters: how sweeper runs PyTorch, TensorFlow, Caffe, commands and Python code.

:class:`FrameworkAdapter` states the contract a plug-in adapter fulfils, and
:mod:`sweeper.frameworks.testing` holds the tests that check it. An adapter that trains in a
program of its own starts it with :class:`TrialProcess` (its output to the trial's log, a line
callback for metrics, stopped within the grace), in :func:`child_environment`.
"""

from sweeper.frameworks._process import (
    METRICS_PREFIX,
    TrialProcess,
    child_environment,
    parse_metrics_line,
)
from sweeper.frameworks.base import STOP_GRACE_S, FrameworkAdapter
from sweeper.frameworks.context import TrialContext
from sweeper.frameworks.registry import available, get_adapter_class, register

__all__ = [
    "METRICS_PREFIX",
    "STOP_GRACE_S",
    "FrameworkAdapter",
    "TrialContext",
    "TrialProcess",
    "available",
    "child_environment",
    "get_adapter_class",
    "parse_metrics_line",
    "register",
]
