"""The contract between sweeper and a framework adapter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Final

if TYPE_CHECKING:
    from pydantic import BaseModel

    from sweeper.frameworks.context import TrialContext
    from sweeper.spec import Spec

__all__ = ["STOP_GRACE_S", "FrameworkAdapter"]

# How long a stopped trial may take to end, from the moment ctx.report raised SystemExit until
# run() is left. sweeper's trainable waits this long before it reuses or tears down the actor;
# TrialProcess kills a child program that has not ended 5 s before it runs out.
STOP_GRACE_S: Final[float] = 15.0


class FrameworkAdapter(ABC):
    """Runs a spec's training code inside one trial.

    **Class attributes.**

    - ``name``: the value of ``framework:`` that selects the adapter.
    - ``extra``: the pip extra that installs the framework (for the built-ins
      ``pip install "sweeper[<extra>]"``; for a plug-in, an extra of its own distribution), or
      ``None`` when there is nothing to pip-install.
    - ``uses`` / ``requires``: the core spec keys the adapter reads / needs (``entrypoint``,
      ``command``, ``metrics``); the loader rejects the others, naming the frameworks that
      read them.
    - ``distributed``: whether :meth:`run` may run on several learners of one trial
      (``resources.learners > 1``): sweeper then calls it once in each learner, a Ray Train
      worker, with ``ctx.rank``, ``ctx.world_size`` and ``ctx.local_rank`` set and
      ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
      ``LOCAL_WORLD_SIZE`` in the environment (for ``pytorch``, torch.distributed's process
      group is up). Only rank 0's reports reach the sweep. ``False`` (the default): the
      loader refuses ``learners > 1`` for the framework.
    - ``options`` / ``options_key``: the adapter's own spec block. ``options`` is a pydantic
      model (give it ``model_config = ConfigDict(extra="forbid")``) and ``options_key`` the
      top-level key it is read from, by default ``name``. The loader validates the block with
      the model (errors read ``<key>.<field> must be ...``), rejects it under any other
      framework, requires it when the model has required fields, and puts the instance in
      ``spec.framework_options``.

    **Methods.**

    - ``__init__(spec)`` stores the validated spec and nothing more; it must not import the
      framework.
    - :meth:`validate` runs on the driver when the spec is loaded, before Ray, MLflow or object
      storage is touched. It checks what only this adapter understands (the entry point, files
      the spec names) without importing the framework, and raises :class:`sweeper.SpecError`
      naming the spec's field (``field="caffe.solver"``).
    - :meth:`run` runs in the trial's Ray actor. It imports the framework, trains with
      ``params``, reports metrics through ``ctx.report`` and returns when training ends.

    **Failing.** Any exception fails the trial; its message, with the last lines of the trial's
    log, goes to the trial's ``error.txt`` and the results. Failures the adapter itself detects
    (the framework is not installed: name the extra; a child program's exit status) raise
    :class:`sweeper.TrialError`.

    **Stopping.** sweeper stops a trial (early stopping, ``limits``, ``sweeper stop``) by
    raising ``SystemExit`` from inside ``ctx.report``. Let it propagate (``finally`` blocks and
    ``with`` statements are fine; ``except BaseException`` without re-raising is not), and leave
    :meth:`run` within :data:`STOP_GRACE_S` seconds; after that the actor, and any child
    process, is killed. A stop takes effect at the trial's next report, so report often. A
    child program started through :class:`sweeper.frameworks.TrialProcess` is asked to end
    (SIGTERM, or the signal it is given) and killed 10 s later when it has not.

    **Reused processes.** A new adapter instance runs each trial, but Ray reuses the actor
    process for the next trial of the sweep. sweeper restores the actor's environment variables
    and working directory after each trial; everything else a framework keeps in the process
    (seeds, thread pools, default graphs, GPU memory) is the adapter's to reset at the start of
    :meth:`run`, or to keep out of the actor by training in a child process, as the
    ``tensorflow``, ``caffe`` and ``command`` adapters do. Modules the training code imports
    stay imported, their globals included.

    **Output.** The trial's stdout and stderr, at file-descriptor level, already go to
    ``ctx.log_path`` (``trial.log`` in ``ctx.trial_dir``); send a child program's output there.

    **Registering.** Built-ins are listed in :mod:`sweeper.frameworks.registry`; a plug-in
    declares an entry point in the group ``sweeper.frameworks``, or its code calls
    :func:`sweeper.frameworks.register` before the spec is loaded (the class is then shipped to
    the trials by value). :class:`sweeper.frameworks.testing.AdapterTestSuite` checks all of
    the above against real trials.

    Example: ``framework: sklearn`` runs the spec's ``entrypoint(params, ctx)`` with
    scikit-learn set up per trial, and reads ``sklearn: {threads: 2}`` from the spec (this is
    ``examples/adapter``, a package with its entry point and its ``AdapterTestSuite`` test)::

        from typing import Any, ClassVar

        from pydantic import BaseModel, ConfigDict, Field

        from sweeper import SpecError, TrialContext, TrialError
        from sweeper.frameworks.python import PythonAdapter


        class SklearnOptions(BaseModel):
            model_config = ConfigDict(extra="forbid")
            threads: int = Field(1, ge=1)


        class SklearnAdapter(PythonAdapter):  # validate() and run() handle the entry point
            name: ClassVar[str] = "sklearn"
            extra: ClassVar[str | None] = "sklearn"
            options: ClassVar[type[BaseModel] | None] = SklearnOptions

            def validate(self) -> None:
                super().validate()
                threads = self.spec.framework_options.threads
                if threads > self.spec.resources.cpus:
                    raise SpecError(
                        f"sklearn.threads must be at most resources.cpus, got {threads}",
                        file=self.spec.label,
                        field="sklearn.threads",
                    )

            def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
                try:
                    import sklearn
                    from threadpoolctl import threadpool_limits
                except ImportError:
                    raise TrialError('... pip install "sweeper-sklearn[sklearn]"') from None
                threads = self.spec.framework_options.threads
                # Context managers: nothing this trial sets outlives it in the reused actor.
                with sklearn.config_context(), threadpool_limits(threads):
                    super().run(params, ctx)  # calls entrypoint(params, ctx)
    """

    name: ClassVar[str]
    extra: ClassVar[str | None] = None
    uses: ClassVar[frozenset[str]] = frozenset({"entrypoint"})
    requires: ClassVar[frozenset[str]] = frozenset({"entrypoint"})
    options: ClassVar[type[BaseModel] | None] = None
    options_key: ClassVar[str | None] = None
    distributed: ClassVar[bool] = False

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    @classmethod
    def block_key(cls) -> str | None:
        """The top-level spec key of the adapter's own block, or ``None`` when it has none."""
        if cls.options is None:
            return None
        return cls.options_key or cls.name

    @abstractmethod
    def validate(self) -> None:
        """Check the spec's framework-specific fields without importing the framework.

        Raises:
            SpecError: Naming the spec's field.
        """

    @abstractmethod
    def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
        """Train one trial with ``params``, reporting through ``ctx``.

        Raises:
            TrialError: When the adapter finds the trial failed (the framework is missing, a
                child program exited with an error).
        """
