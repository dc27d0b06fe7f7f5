"""What the driver decides for every trial of a sweep: the plan shipped to the trials' actors,
and the trials' names.

Both are made on the driver (:mod:`._session`); a :class:`TrialPlan` is then read in each
trial's Ray actor (:mod:`._actor`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeper import _layout
from sweeper._layout import NAME_KEY, POINT_KEY, trial_name

if TYPE_CHECKING:
    from pathlib import Path

    from sweeper.frameworks.base import FrameworkAdapter
    from sweeper.spec import Spec
    from sweeper.storage._sweep import SweepStore

__all__ = ["TrialNamer", "TrialPlan"]


class TrialNamer:
    """Names Tune's trials ``trial-0001``, ``trial-0002``, ...: after their grid or random point,
    or the name the Optuna searcher gave them, so a trial keeps its name when a resumed sweep
    runs it again. Tune deep-copies this object per trial, so it holds no state.
    """

    def __call__(self, trial: Any) -> str:
        config = trial.config
        if NAME_KEY in config:
            return str(config[NAME_KEY])
        return trial_name(int(config[POINT_KEY]))


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a sweep shares; shipped to the actors once through Ray.

    ``adapter`` is the spec's adapter class, resolved on the driver when the plan is made: the
    actors get the class itself, so that an adapter given to ``register`` in the driver's
    process runs there too (see :func:`sweeper.frameworks.registry.for_workers`).
    """

    spec: Spec
    sweep: str
    sweep_dir: Path
    points: list[dict[str, Any]] | None = None
    store: SweepStore | None = None
    # Set once Ray is up (Session._placed): the driver's Ray node; the driver's folder of the
    # spec's code when Ray shipped it to the workers (runtime_env working_dir); seconds between
    # uploads of a running trial's checkpoints to an s3:// results store.
    driver_node: str | None = None
    code_dir: str | None = None
    checkpoint_interval: float = 30.0
    scratch: bool = False  # sweep_dir is node-local scratch space (see localize)
    adapter: type[FrameworkAdapter] | None = None

    def __post_init__(self) -> None:
        if self.adapter is None:
            from sweeper.frameworks.registry import for_workers, get_adapter_class

            adapter = get_adapter_class(self.spec.framework, file=self.spec.label)
            object.__setattr__(self, "adapter", for_workers(adapter))

    def trial_dir(self, name: str) -> Path:
        return _layout.trial_dir(self.sweep_dir, name)

    def params(self, config: dict[str, Any]) -> dict[str, Any]:
        """The parameters of the trial Tune configured with ``config``."""
        from sweeper.search import trial_params

        return trial_params(self.spec, config, self.points)
