"""Trials of several learners (``resources.learners``): a gang of Ray Train workers per trial.

Where it runs: :func:`run_gang` in the trial's Ray actor (Tune's trainable, on the trial's
thread); :func:`_learner` in each learner, a Ray Train worker; :class:`_Gang` is a small actor
beside the trial.

The trainer is built inside the Tune trial, as Ray's docs for Train V2 with Tune do it: Ray
Train's worker group is one placement group for all the trial's learners (``STRICT_PACK`` or
``SPREAD``), so a trial holds every learner or none and waits, whole, while the cluster is
short. ``TorchTrainer`` sets up torch.distributed's process group (gloo on CPUs, nccl on GPUs)
before the entry point runs; for a command, ``DataParallelTrainer`` starts the learners and
sweeper gives each program the variables ``torchrun`` and FfDL set. Train retries nothing
(``FailureConfig(max_failures=0)``): a learner that fails fails the trial, and the sweep's
``limits.max_failures`` restarts the whole gang through Tune.

Why not Ray's ``TuneReportCallback``: Train V2's ``ray.train.report`` is a collective every
learner must call, and ``ctx.report`` promises that only rank 0's reports count, whatever the
others do; and Tune stops a trial by raising ``SystemExit`` in the trial's thread, which must
reach the learners. So rank 0 hands its results to :class:`_Gang`, the trial's thread passes
them to ``tune.report``, and when that raises, the gang is told to stop: each learner's next
report raises ``SystemExit`` there, and learners still running after the grace (one may wait
in an all-reduce for a rank that already stopped) are killed, which ends Train's run and
frees its placement group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray

from sweeper._layout import CHECKPOINT_DIR, JOB_STATE_DIR, OUTPUT_DIR, learner_log
from sweeper.errors import TrialError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sweeper.execution._plan import TrialPlan

__all__ = ["GANG_STRATEGIES", "run_gang"]

# resources.placement -> Ray's placement group strategy.
GANG_STRATEGIES = {"pack": "STRICT_PACK", "spread": "SPREAD"}
# Of STOP_GRACE_S (the trial's whole allowance to end): how long stopped learners may take
# to end on their own before they are killed, and then how long the kill may take.
_STOP_WAIT_S = 8.0
_KILL_WAIT_S = 5.0
_TAKE_S = 0.5  # how long one wait for rank 0's results lasts


@ray.remote(num_cpus=0, max_restarts=0)
class _Gang:
    """Rank 0's results on their way to Tune, the stop flag, and the learners' processes."""

    def __init__(self) -> None:
        import asyncio

        self._results: list[dict[str, Any]] = []
        self._ready = asyncio.Event()
        self._stopping = False
        self._learners: dict[int, tuple[str, int, Any]] = {}

    async def put(self, result: dict[str, Any]) -> bool:
        self._results.append(result)
        self._ready.set()
        return self._stopping

    async def take(self, timeout: float) -> list[dict[str, Any]]:
        import asyncio

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        results, self._results = self._results, []
        return results

    async def join(self, rank: int, node: str, pid: int, actor: Any) -> bool:
        self._learners[rank] = (node, pid, actor)
        return self._stopping

    async def stopping(self) -> bool:
        return self._stopping

    async def stop(self) -> None:
        self._stopping = True

    async def learners(self) -> dict[int, tuple[str, int, Any]]:
        return self._learners


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every learner of one trial attempt gets (through Train's ``train_loop_config``)."""

    plan: TrialPlan
    name: str
    params: dict[str, Any]
    attempt: int
    seed: int | None
    board: Any
    gang: Any
    node: str  # the trial actor's node
    torch: bool  # TorchTrainer set up the process group (and MASTER_ADDR/PORT)


def run_gang(
    plan: TrialPlan,
    name: str,
    params: dict[str, Any],
    *,
    attempt: int,
    seed: int | None,
    board: Any,
    reporter: Callable[[dict[str, Any]], None],
) -> list[str] | None:
    """Train one trial attempt on its learners; on the trial's Ray actor.

    ``reporter`` is Tune's report (it raises ``SystemExit`` when Tune stops the trial).
    Returns ``None`` when the trial's folder is to be stored from here as usual; else learner
    1 ran on another node and stored it from there, and the list names the files of this
    node's learners still to upload (their logs).

    Raises:
        TrialError: When a learner failed, with its error.
        SystemExit: When the trial was stopped (the learners are stopped too).
    """
    spec = plan.spec
    node = ray.get_runtime_context().get_node_id()
    # FfDL's /job was new for each run: a file rendezvous (init_method file://) must not find
    # an earlier attempt's file.
    shutil.rmtree(plan.trial_dir(name) / JOB_STATE_DIR, ignore_errors=True)
    from sweeper.execution._ray import on_node

    gang = on_node(_Gang, node).remote()
    torch = spec.framework == "pytorch"
    job = _Job(plan, name, params, attempt, seed, board, gang, node, torch)
    storage = Path(tempfile.gettempdir(), "sweeper-train", plan.sweep)
    trainer = _trainer(plan, job, storage)
    failure: list[BaseException] = []
    done = threading.Event()

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=fit, name=f"sweeper-gang-{name}", daemon=True)
    from sweeper.execution._trial import restored_process

    # Train hands these to its controller and workers; the actor's own are put back after.
    with restored_process():
        os.environ.update(_TRAIN_ENVIRONMENT)
        try:
            thread.start()
            while True:
                finished = done.is_set()
                for result in ray.get(gang.take.remote(0 if finished else _TAKE_S)):
                    reporter(result)
                if finished:
                    break
        except BaseException:
            _stop(gang, thread)
            raise
        finally:
            shutil.rmtree(storage / _run_name(plan, name, attempt), ignore_errors=True)
    learners = _learners(gang)
    with contextlib.suppress(Exception):
        ray.kill(gang)
    if failure:
        raise TrialError(_failure_text(failure[0])) from None
    first = learners.get(0)
    if not (first and first[0] != node and plan.store and plan.store.results_uri):
        return None
    # Learner 1 stored the trial's folder from its node; the learners here left their logs.
    return [learner_log(rank + 1) for rank, where in learners.items() if where[0] == node]


# Read by Ray Train where the trainer is built, and passed on to its controller and workers.
_TRAIN_ENVIRONMENT = {
    # Train would send the learners' print() to its own logger; sweeper sends their output,
    # at file-descriptor level, to each learner's log.
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
    # Learners keep their process's working directory, where Ray put the spec's code on a
    # cluster (runtime_env working_dir), instead of Train's run folder.
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    # Two helper actors (processes) a trial would start for nothing here: Train's metrics for
    # Prometheus (sweeper records the trial's own), and a watcher of spot-instance reclaim
    # notices (a trial whose node is lost fails, and limits.max_failures retries it).
    "RAY_TRAIN_METRICS_ENABLED": "0",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
}


def _run_name(plan: TrialPlan, name: str, attempt: int) -> str:
    return f"{plan.sweep}-{name}-{attempt}"


def _trainer(plan: TrialPlan, job: _Job, storage: Path) -> Any:
    """Ray Train's trainer for one attempt: TorchTrainer for PyTorch, else the generic one."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig

    res = plan.spec.resources
    per_learner: dict[str, float] = {"CPU": res.cpus}
    if res.gpus:
        per_learner["GPU"] = res.gpus
    if res.memory_bytes:
        per_learner["memory"] = res.memory_bytes
    options: dict[str, Any] = {
        "train_loop_config": {"job": job},
        "scaling_config": ScalingConfig(
            num_workers=res.learners,
            use_gpu=bool(res.gpus),
            resources_per_worker=per_learner,
            placement_strategy=GANG_STRATEGIES[res.placement],
        ),
        "run_config": RunConfig(
            name=_run_name(plan, job.name, job.attempt),
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=0),
        ),
    }
    if job.torch:
        import torch
        from ray.train.torch import TorchConfig, TorchTrainer

        # nccl needs a CUDA (or ROCm) build of PyTorch; a CPU build, also on GPUs Ray was only
        # told about, trains with gloo.
        gpu_build = bool(torch.version.cuda or getattr(torch.version, "hip", None))
        backend = "nccl" if res.gpus and gpu_build else "gloo"
        return TorchTrainer(_learner, torch_config=TorchConfig(backend=backend), **options)
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    return DataParallelTrainer(_learner, **options)


def _learners(gang: Any) -> dict[int, tuple[str, int, Any]]:
    try:
        return dict(ray.get(gang.learners.remote(), timeout=10))
    except Exception:
        return {}


def _stop(gang: Any, thread: threading.Thread) -> None:
    """Stop every learner: at its next report, or killed after the grace. The trial ends once
    the learners on this node have exited (Ray ends a worker's process a moment after its
    actor), so a halted sweep leaves no learner behind."""
    learners = _learners(gang)
    with contextlib.suppress(Exception):
        ray.get(gang.stop.remote(), timeout=5)
    thread.join(_STOP_WAIT_S)
    if thread.is_alive():
        for _node, _pid, actor in learners.values():
            with contextlib.suppress(Exception):
                ray.kill(actor)
        thread.join(_KILL_WAIT_S)
    with contextlib.suppress(Exception):
        ray.kill(gang)
    here = ray.get_runtime_context().get_node_id()
    _wait_gone([pid for node, pid, _ in learners.values() if node == here], _KILL_WAIT_S)


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Wait up to ``timeout`` seconds for the processes ``pids`` to exit."""
    import time

    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _running(pid)]
        if pids:
            time.sleep(0.1)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def _failure_text(exc: BaseException) -> str:
    """A learner's own error, not Train's wrapping of it: the console shows one line."""
    from ray.train import TrainingFailedError

    if isinstance(exc, TrainingFailedError):
        errors = getattr(exc, "worker_failures", None) or {}
        for rank in sorted(errors):
            cause = errors[rank]
            text = str(cause).strip().splitlines()
            last = next((line for line in reversed(text) if line.strip()), "")
            return f"learner {rank + 1} of the trial failed: {last or type(cause).__name__}"
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _address_and_port() -> tuple[str, int]:
    """Rank 0's node address and a free port there, for torch.distributed's env:// rendezvous."""
    import socket

    address = ray.util.get_node_ip_address()
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = int(probe.getsockname()[1])
    return address, port


def _learner(config: dict[str, Any]) -> None:
    """One learner of a trial; in a Ray Train worker."""
    import ray.train
    from ray.train.collective import broadcast_from_rank_zero

    from sweeper.execution._phases import mark_phase
    from sweeper.execution._trial import (
        CheckpointSync,
        context_for,
        data_dir_for,
        localize,
        log_to,
        restore,
        restored_process,
        view_dir,
    )

    job: _Job = config["job"]
    context = ray.train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    local_rank, local_size = context.get_local_rank(), context.get_local_world_size()
    runtime = ray.get_runtime_context()
    node = runtime.get_node_id()
    if not job.torch:
        # What TorchTrainer sets for its own process group, for the program's.
        address, port = broadcast_from_rank_zero(_address_and_port() if rank == 0 else None)
        os.environ.update({"MASTER_ADDR": address, "MASTER_PORT": str(port)})
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(size),
            "LOCAL_RANK": str(local_rank),
            "LOCAL_WORLD_SIZE": str(local_size),
        }
    )
    ray.get(job.gang.join.remote(rank, node, os.getpid(), runtime.current_actor))
    plan = localize(job.plan, node)
    spec, name = plan.spec, job.name
    trial_dir = plan.trial_dir(name)
    remote = node != job.node
    if remote:
        restore(plan, name)  # checkpoints an earlier attempt left in the results store
    output_dir, checkpoint_dir = trial_dir / OUTPUT_DIR, trial_dir / CHECKPOINT_DIR
    for directory in (output_dir, checkpoint_dir):
        directory.mkdir(parents=True, exist_ok=True)
    learner = rank + 1
    log_path = trial_dir / learner_log(learner)
    view = name if learner == 1 else f"{name}-learner-{learner}"
    stopped = False

    def push(result: dict[str, Any]) -> None:
        nonlocal stopped
        if ray.get(job.gang.put.remote(result)):
            stopped = True
            raise SystemExit("the trial was stopped")

    def check(result: dict[str, Any]) -> None:  # another rank's report: dropped
        nonlocal stopped
        if ray.get(job.gang.stopping.remote()):
            stopped = True
            raise SystemExit("the trial was stopped")

    try:
        with log_to(log_path):
            try:
                # The phases rank 0 reports; ``gang`` tells the driver the trial's GPUs are
                # held from now (the trial's actor waited for its learners until then).
                if rank == 0 and spec.data:
                    mark_phase(job.board, name, "staging", gang=size)
                data_dir = data_dir_for(plan, name, job.params, view)
                if rank == 0:
                    mark_phase(job.board, name, "running", node=node, pid=os.getpid(), gang=size)
                ctx = context_for(
                    plan,
                    name,
                    job.params,
                    log_path=log_path,
                    data_dir=data_dir,
                    seed=job.seed,
                    reporter=CheckpointSync(plan, name, push) if rank == 0 else check,
                    attempt=job.attempt,
                    rank=rank,
                    world_size=size,
                    local_rank=local_rank,
                    local_world_size=local_size,
                )
                assert plan.adapter is not None
                with restored_process():
                    plan.adapter(spec).run(ctx.params, ctx)
            except SystemExit:
                if not stopped:
                    raise
                print(f"sweeper: {name} learner {learner} stopped by sweeper", flush=True)
            except BaseException:
                import traceback

                traceback.print_exc()
                raise
    finally:
        shutil.rmtree(view_dir(plan, view), ignore_errors=True)
        if remote and plan.store is not None and plan.store.results_uri:
            # This node's part of the trial's folder goes to the store from here.
            try:
                if rank == 0:
                    plan.store.sync_trial(plan.sweep_dir, plan.sweep, name)
                else:
                    files = [learner_log(learner)]
                    plan.store.upload_trial_files(plan.sweep_dir, plan.sweep, name, files)
            except Exception as exc:  # the learner's own end decides the trial's
                print(f"sweeper: {name} learner {learner}: not uploaded: {exc}", flush=True)
