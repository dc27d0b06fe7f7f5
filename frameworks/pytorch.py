"""The ``pytorch`` adapter: a Python training function that uses PyTorch."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar

from sweeper.errors import TrialError
from sweeper.frameworks.python import PythonAdapter

if TYPE_CHECKING:
    from sweeper.frameworks.context import TrialContext

__all__ = ["PyTorchAdapter"]


class PyTorchAdapter(PythonAdapter):
    """Calls ``entrypoint(params, ctx)`` after seeding PyTorch and sizing its thread pool.

    The trial's GPUs are the ones in ``CUDA_VISIBLE_DEVICES`` (Ray sets it), so
    ``torch.device("cuda")`` is the trial's first GPU.

    With ``resources.learners > 1`` the entry point runs in every learner, through Ray Train's
    ``TorchTrainer``: torch.distributed's default process group is already initialised (gloo
    on CPUs, nccl on GPUs), so ``torch.nn.parallel.DistributedDataParallel(model)`` works as
    it is, and ``ctx.rank`` / ``ctx.world_size`` shard the data. Each learner's thread pool is
    sized to its own ``resources.cpus``.
    """

    name: ClassVar[str] = "pytorch"
    extra: ClassVar[str | None] = "pytorch"

    def prepare(self, ctx: TrialContext) -> None:
        """Seed PyTorch and size its thread pool to the trial's CPUs.

        Raises:
            TrialError: If PyTorch is not installed (naming the extra).
        """
        try:
            import torch
        except ImportError:
            raise TrialError(
                'framework pytorch needs PyTorch; install it with: pip install "sweeper[pytorch]"'
            ) from None
        # Ray reuses a trial's process for the next trial: reset what PyTorch keeps globally.
        cpus = int(self.spec.resources.cpus) or 1
        torch.set_num_threads(max(1, cpus))
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpus)))
        if ctx.seed is not None:
            torch.manual_seed(ctx.seed)
