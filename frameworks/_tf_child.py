"""The process a ``tensorflow`` trial trains in: ``python -m sweeper.frameworks._tf_child JOB``.

``JOB`` is the JSON file :class:`~sweeper.frameworks.tensorflow.TensorFlowAdapter` writes.
This process sets TensorFlow up for the trial, calls the training function with a context whose
reports are printed as ``SWEEPER_METRICS {json}`` lines, and exits 0 when the function returns
or sweeper stopped it. An exception in the function is printed and exits 1.
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.frameworks._entrypoint import load_entrypoint
from sweeper.frameworks._process import METRICS_PREFIX
from sweeper.frameworks.context import TrialContext
from sweeper.frameworks.tensorflow import (
    EXIT_MISSING_TENSORFLOW,
    MISSING_TENSORFLOW,
    StopTrial,
    install_stop_handler,
)


@dataclass(frozen=True)
class _Entry:
    """What :func:`load_entrypoint` reads of a spec, rebuilt from the job file."""

    entrypoint: str
    base_dir: Path
    label: str | None = None

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()


def _emit(result: dict[str, Any]) -> None:
    # One write per line, flushed: the actor reads the lines as they come, and a single write
    # keeps TensorFlow's stderr (the same pipe) from landing inside the line.
    sys.stdout.write(f"{METRICS_PREFIX}{json.dumps(result)}\n")
    sys.stdout.flush()


def _set_up_tensorflow(job: dict[str, Any]) -> None:
    import numpy as np
    import tensorflow as tf

    cpus = int(job.get("cpus") or 1)
    # Must come before TensorFlow runs its first op; sizes the pools to the trial's CPUs.
    tf.config.threading.set_intra_op_parallelism_threads(cpus)
    tf.config.threading.set_inter_op_parallelism_threads(cpus)
    for gpu in tf.config.list_physical_devices("GPU"):
        # Trials may share a GPU (resources.gpus < 1): take memory as needed, not all of it.
        tf.config.experimental.set_memory_growth(gpu, True)
    seed = job.get("seed")
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        tf.random.set_seed(seed)
        try:
            import keras
        except ImportError:  # pragma: no cover - Keras comes with TensorFlow >= 2.16
            return
        keras.utils.set_random_seed(seed)  # also Keras 3's own global seed generator


def _train(job: dict[str, Any]) -> int:
    try:
        _set_up_tensorflow(job)
    except ImportError as exc:
        print(f"error: {MISSING_TENSORFLOW} ({exc})", file=sys.stderr, flush=True)
        return EXIT_MISSING_TENSORFLOW
    ctx = TrialContext(
        params=job["params"],
        trial=job["trial"],
        sweep=job["sweep"],
        trial_dir=Path(job["trial_dir"]),
        log_path=Path(job["log_path"]),
        output_dir=Path(job["output_dir"]),
        checkpoint_dir=Path(job["checkpoint_dir"]),
        data_dir=Path(job["data_dir"]) if job.get("data_dir") else None,
        dataset=job.get("dataset"),
        gpu_ids=job.get("gpu_ids") or [],
        seed=job.get("seed"),
        metric=job["metric"],
        reporter=_emit,
    )
    entry = _Entry(job["entrypoint"], Path(job["base_dir"]), job.get("label"))
    function = load_entrypoint(entry)  # type: ignore[arg-type]
    final = function(ctx.params, ctx)
    if isinstance(final, dict) and final:
        ctx.report(step=ctx.step + 1, **final)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the trial described by the job file ``argv[0]``; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sweeper.frameworks._tf_child JOB", file=sys.stderr)
        return 64
    # First, so that a stop that comes while TensorFlow is still being imported ends the trial.
    install_stop_handler()
    try:
        # The actor waits for this first line to resend a stop that came before the start.
        print(f"sweeper: TensorFlow trial process pid {os.getpid()} (parent {os.getppid()})")
        sys.stdout.flush()
        return _train(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    except StopTrial:
        print("sweeper: trial stopped on request")
        return 0


if __name__ == "__main__":
    sys.exit(main())
