"""What a training function sees of its trial: parameters, directories and ``report``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TrialContext"]

# Result key listing the metrics this report really holds: Tune adds keys of its own, and the
# objective may be carried forward from an earlier report.
REPORTED_KEY = "_sweeper_reported"
# Result key naming the folder of a state ctx.save wrote since the last report: the trial's
# actor reports it to Tune as the trial's checkpoint (see sweeper.execution._actor).
CHECKPOINT_KEY = "_sweeper_checkpoint"


def _without_float32_noise(value: float) -> float:
    """A value computed in float32 (a torch or TensorFlow metric) as float32 prints it:
    0.98 rather than 0.9800000190734863, the same float32. A float64 value is kept."""
    import numpy as np

    if not math.isfinite(value) or abs(value) > float(np.finfo(np.float32).max):
        return value
    single = np.float32(value)
    # numpy prints a float32 as the shortest decimal that reads back as the same float32.
    return float(str(single)) if float(single) == value else value


class TrialContext:
    """The handle a training function gets as its second argument.

    Attributes:
        params: The trial's parameters: sampled values and the spec's constants.
        trial: The trial's name, e.g. ``trial-0007``; MLflow's child run carries it too.
        sweep: The sweep's id, e.g. ``digits-mlp-20261122-101500``.
        trial_dir: The trial's folder; ``output_dir``, ``checkpoint_dir`` and ``log_path`` are
            in it, and a training program may keep working files there.
        log_path: The trial's log (``trial.log``). The trial's stdout and stderr already go
            there; a child program's output belongs there too.
        data_dir: Where the trial's input data is, or ``None`` when the spec names none.
        dataset: The spec's name for that data (its folder or ``s3://`` URI); with
            ``data: {choice: [...]}``, the one this trial uses. ``None`` without data.
        output_dir: Where to write models, logs and anything else worth keeping.
        checkpoint_dir: Where to write checkpoints.
        gpu_ids: The GPUs Ray assigned to this trial (also in ``CUDA_VISIBLE_DEVICES``).
        seed: A seed for this trial, derived from ``search.seed``, or ``None``.
        attempt: 1 for the trial's first run; more when it runs again after a failure
            (``limits.max_failures``) or in a resumed sweep. ``checkpoint_dir`` keeps what
            earlier attempts saved, so a training function can continue from there.
        rank: This learner's rank among the trial's learners, 0 to ``world_size - 1``
            (``resources.learners``; 0 when there is one). Only rank 0's reports reach the
            sweep; the others' are accepted and dropped (they still end the learner when the
            trial is stopped). ``output_dir`` and ``checkpoint_dir`` are rank 0's: write there
            from rank 0; every learner may read them and ``data_dir``.
        world_size: How many learners train the trial together.
        local_rank: This learner's rank among the trial's learners on its node.
        local_world_size: How many of the trial's learners are on this node.
    """

    def __init__(
        self,
        *,
        params: Mapping[str, Any],
        trial: str,
        sweep: str,
        trial_dir: Path,
        log_path: Path,
        output_dir: Path,
        checkpoint_dir: Path,
        data_dir: Path | None,
        gpu_ids: list[str],
        seed: int | None,
        metric: str | Sequence[str],
        reporter: Callable[[dict[str, Any]], None],
        attempt: int = 1,
        rank: int = 0,
        world_size: int = 1,
        local_rank: int = 0,
        local_world_size: int = 1,
        dataset: str | None = None,
    ) -> None:
        self.params = dict(params)
        self.trial = trial
        self.sweep = sweep
        self.trial_dir = trial_dir
        self.log_path = log_path
        self.output_dir = output_dir
        self.checkpoint_dir = checkpoint_dir
        self.data_dir = data_dir
        self.dataset = dataset
        self.gpu_ids = list(gpu_ids)
        self.seed = seed
        self.attempt = attempt
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.local_world_size = local_world_size
        # The metrics Tune's schedulers and searchers read from every result (the objectives,
        # and what the constraints name): carried forward from the last report that had them.
        self._carried = (metric,) if isinstance(metric, str) else tuple(metric)
        self._reporter = reporter
        self._step = 0
        self._last: dict[str, float] = {}
        self._saved = False

    @property
    def step(self) -> int:
        """The step of the last report (0 before the first)."""
        return self._step

    @property
    def carried(self) -> dict[str, float]:
        """The last reported value of each metric the sweep reads (its objectives and the
        constraints' metrics) that the trial reported so far."""
        return dict(self._last)

    def report(self, step: int | None = None, **metrics: Any) -> None:
        """Record metrics for one step (an epoch, an iteration).

        Args:
            step: The step these metrics belong to; defaults to the previous step plus one.
            **metrics: Metric names and numbers, e.g. ``val_accuracy=0.97``.

        Raises:
            TypeError: If a metric value is not a real number.
        """
        if step is None:
            step = self._step + 1
        if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < 0:
            raise TypeError(f"report() step must be a non-negative integer, got {step!r}")
        result: dict[str, Any] = {}
        for name, value in metrics.items():
            result[name] = self._number(name, value)
        self._step = int(step)
        result[REPORTED_KEY] = list(result)
        for name in self._carried:
            if name in result:
                self._last[name] = result[name]
            elif name in self._last:
                # Tune's schedulers and searchers read the sweep's metrics from every result;
                # carry the last value forward rather than drop reports that hold other ones.
                result[name] = self._last[name]
        result["step"] = self._step
        if self._saved:
            # The state goes with this report: it is this step's (load continues after it).
            (self._state_dir / "step.json").write_text(f"{self._step}\n", encoding="utf-8")
            result[CHECKPOINT_KEY] = str(self._state_dir)
            self._saved = False
        self._reporter(result)

    @property
    def _state_dir(self) -> Path:
        from sweeper._layout import SAVED_DIR

        return self.checkpoint_dir / SAVED_DIR

    def save(self, state: Any) -> None:
        """Save the trial's training state as its checkpoint; it goes with the next report.

        ``state`` is any picklable object, e.g. ``{"model": model.state_dict(), "epoch": 7}``.
        With a population-based ``schedule``, a trial that copies this one continues from it
        (:meth:`load` returns it there); a retried or resumed trial continues from its own.
        Call it before the :meth:`report` of the same step.
        """
        import pickle

        from sweeper._layout import SAVED_FILE

        folder = self._state_dir
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / (SAVED_FILE + ".partial")
        with open(partial, "wb") as out:
            pickle.dump(state, out)
        partial.replace(folder / SAVED_FILE)  # a crash never leaves half a state
        self._saved = True

    def load(self) -> Any:
        """The state the trial should continue from, or ``None`` to start afresh.

        That is the last :meth:`save` of the trial it copied (after a population-based
        exploit), or its own (a retry, a resumed sweep). The step moves on from the saved
        one: a report without ``step`` continues the count.
        """
        import pickle

        from sweeper._layout import SAVED_FILE

        path = self._state_dir / SAVED_FILE
        if not path.is_file():
            return None
        with open(path, "rb") as source:
            state = pickle.load(source)  # the trial's own folder: written by ctx.save
        try:
            saved_at = int((path.parent / "step.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved_at = 0  # saved, never reported
        self._step = max(self._step, saved_at)
        return state

    @staticmethod
    def _number(name: str, value: Any) -> float:
        if hasattr(value, "item") and callable(value.item):
            value = value.item()  # numpy and torch scalars
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"report() metric {name!r} must be a real number, got {value!r}")
        return _without_float32_noise(float(value))
