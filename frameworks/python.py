"""The ``python`` adapter: any Python function, no framework set-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sweeper.frameworks._entrypoint import check_entrypoint, load_entrypoint
from sweeper.frameworks.base import FrameworkAdapter

if TYPE_CHECKING:
    from sweeper.frameworks.context import TrialContext

__all__ = ["PythonAdapter"]


class PythonAdapter(FrameworkAdapter):
    """Calls ``entrypoint(params, ctx)``; a returned mapping of numbers is a last report.

    The base of adapters for frameworks that run inside the trial's actor: a subclass
    overrides :meth:`prepare` to import its framework and reset what it keeps globally (the
    actor runs the next trial too), as :class:`~sweeper.frameworks.pytorch.PyTorchAdapter`
    does. The entry point is imported once per actor process (again when its file changes).
    """

    name: ClassVar[str] = "python"
    distributed: ClassVar[bool] = True

    def validate(self) -> None:
        check_entrypoint(self.spec)

    def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
        self.prepare(ctx)
        function = load_entrypoint(self.spec)
        final = function(params, ctx)
        if isinstance(final, dict) and final:
            ctx.report(step=ctx.step + 1, **final)

    def prepare(self, ctx: TrialContext) -> None:
        """Set the framework up for this trial before the training function runs.

        Raises:
            TrialError: If the framework is not installed (naming the extra).
        """
