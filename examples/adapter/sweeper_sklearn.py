"""sweeper-sklearn: sweeper trials that train with scikit-learn (``framework: sklearn``).

An example of a third-party framework adapter. The spec names a training function, as for
``framework: python``, and may set how scikit-learn runs::

    framework: sklearn
    entrypoint: train.py:train
    sklearn: {threads: 2}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sweeper import SpecError, TrialError
from sweeper.frameworks.python import PythonAdapter

if TYPE_CHECKING:
    from sweeper import TrialContext

__all__ = ["MISSING_SKLEARN", "SklearnAdapter", "SklearnOptions"]

MISSING_SKLEARN = (
    'framework sklearn needs scikit-learn; install it with: pip install "sweeper-sklearn[sklearn]"'
)


class SklearnOptions(BaseModel):
    """``sklearn:`` in a spec: how each trial sets scikit-learn up."""

    model_config = ConfigDict(extra="forbid")

    threads: int = Field(1, ge=1)  # BLAS and OpenMP threads of the trial
    assume_finite: bool = False  # skip scikit-learn's checks for NaN and infinity


class SklearnAdapter(PythonAdapter):
    """Calls ``entrypoint(params, ctx)`` with scikit-learn set up for the trial."""

    name: ClassVar[str] = "sklearn"
    extra: ClassVar[str | None] = "sklearn"
    options: ClassVar[type[BaseModel] | None] = SklearnOptions

    def validate(self) -> None:
        super().validate()  # the entry point's file and function, read but not imported
        threads, cpus = self.spec.framework_options.threads, self.spec.resources.cpus
        if threads > cpus:
            raise SpecError(
                f"sklearn.threads must be at most resources.cpus ({cpus:g}), got {threads}",
                file=self.spec.label,
                field="sklearn.threads",
            )

    def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
        try:
            import numpy as np
            import sklearn
            from threadpoolctl import threadpool_limits
        except ImportError:
            raise TrialError(MISSING_SKLEARN) from None
        options = self.spec.framework_options
        np.random.seed(ctx.seed)  # the global generator scikit-learn falls back on
        # Context managers: the actor runs the next trial too, and nothing may outlive this one.
        with (
            sklearn.config_context(assume_finite=options.assume_finite),
            threadpool_limits(options.threads),
        ):
            super().run(params, ctx)
