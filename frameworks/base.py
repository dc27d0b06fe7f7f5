"""The contract between sweeper and a framework adapter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sweeper.frameworks.context import TrialContext
    from sweeper.spec import Spec

__all__ = ["FrameworkAdapter"]


class FrameworkAdapter(ABC):
    """Runs a spec's training code inside one trial.

    Subclass contract:

    - Set ``name``, the value of ``framework:`` in a spec that selects the adapter, and ``extra``,
      the pip extra that installs the framework (``pip install "sweeper[<extra>]"``).
    - Set ``uses`` to the framework-specific spec keys the adapter reads (``entrypoint``,
      ``command``, ``metrics``, ``caffe``) and ``requires`` to those that must be set; the
      loader rejects the others.
    - ``__init__(spec)`` only stores the validated spec; it must not import the framework.
    - :meth:`validate` runs on the driver when the spec is loaded, before Ray, MLflow or object
      storage is touched. It checks what only this adapter understands (the entry point, files
      the spec names) and raises :class:`sweeper.SpecError` naming the spec's field.
    - :meth:`run` runs in the trial's Ray actor. It imports the framework (raising
      :class:`sweeper.SweeperError` that names the extra when it is missing), trains with
      ``params``, reports metrics through ``ctx.report`` and returns when training ends. An
      exception fails the trial.

    Built-in adapters are registered in :mod:`sweeper.frameworks.registry`; third-party ones
    through the entry-point group ``sweeper.frameworks``.
    """

    name: ClassVar[str]
    extra: ClassVar[str | None] = None
    uses: ClassVar[frozenset[str]] = frozenset({"entrypoint"})
    requires: ClassVar[frozenset[str]] = frozenset({"entrypoint"})

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    @abstractmethod
    def validate(self) -> None:
        """Check the spec's framework-specific fields without importing the framework."""

    @abstractmethod
    def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
        """Train one trial with ``params``, reporting through ``ctx``."""
