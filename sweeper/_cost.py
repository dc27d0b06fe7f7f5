"""What planned trials will cost, from what earlier trials of the experiment took.

``sweeper plan`` prints it: GPU-hours and wall time of the trials a spec (or an extension)
will run, from the durations measured in earlier sweeps, with a spread (their 10th to 90th
percentile). Ray-free, and pandas-free: the journal's records hold the durations.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeper._journal import TrialRecord
    from sweeper.settings import Settings
    from sweeper.spec import Spec

__all__ = ["Estimate", "estimate", "local_concurrency"]


@dataclass(frozen=True)
class Estimate:
    """The expected cost of ``trials`` trials, each as long as the measured ones.

    Attributes:
        trials: How many trials are planned.
        measured: How many earlier trials the durations come from.
        seconds: Their median duration, and its 10th and 90th percentiles (``low``, ``high``).
        gpus: GPUs each trial holds (every learner's).
        concurrency: Trials that run at once.
    """

    trials: int
    measured: int
    seconds: float
    low: float
    high: float
    gpus: float
    concurrency: int

    def gpu_hours(self, each: float) -> float:
        return self.trials * each * self.gpus / 3600

    def wall_seconds(self, each: float) -> float:
        return math.ceil(self.trials / max(1, self.concurrency)) * each


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def estimate(
    spec: Spec, trials: int, records: Iterable[TrialRecord], concurrency: int
) -> Estimate | None:
    """The cost of ``trials`` trials of ``spec`` from earlier ``records`` (those that ended
    completed or stopped early), or ``None`` when none did."""
    durations = [
        r.held_seconds for r in records if r.state in ("completed", "stopped") and r.held_seconds
    ]
    if not durations:
        return None
    return Estimate(
        trials=trials,
        measured=len(durations),
        seconds=_percentile(durations, 0.5),
        low=_percentile(durations, 0.1),
        high=_percentile(durations, 0.9),
        gpus=float(spec.resources.trial_gpus),
        concurrency=concurrency,
    )


def local_concurrency(spec: Spec, settings: Settings) -> int:
    """Trials of ``spec`` that run at once on this machine's local Ray (or on a cluster, the
    spec's and settings' caps alone: its size is not known here)."""
    caps = [c for c in (spec.search.concurrency, settings.limits.max_concurrency) if c]
    res = spec.resources
    if not settings.ray.address:
        cpus = settings.ray.num_cpus or os.cpu_count() or 1
        if res.trial_cpus:
            caps.append(max(1, int(cpus // res.trial_cpus)))
        gpus = settings.ray.num_gpus
        if res.trial_gpus and gpus:
            caps.append(max(1, int(gpus // res.trial_gpus)))
    if settings.limits.max_gpus and res.trial_gpus:
        caps.append(max(1, int(settings.limits.max_gpus // res.trial_gpus)))
    return min(caps) if caps else 1
