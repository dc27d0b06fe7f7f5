"""Every accessor of ``sweeper/_compat.py`` against the installed Ray and Optuna, and those
versions against the ranges ``pyproject.toml`` pins.

These fail first when Ray or Optuna moves a private API sweeper reaches into: run them on a new
version before raising a bound in ``pyproject.toml`` and ``_compat.CHECKED``.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from sweeper import _compat

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, Requirement]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    return {req.name: req for req in map(Requirement, dependencies)}


# --- versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_compat.CHECKED))
def test_the_installed_version_is_in_the_pinned_range(name: str) -> None:
    pin = _pins()[name].specifier
    installed = importlib.metadata.version(name)
    assert pin.contains(installed, prereleases=True), f"{name} {installed} is outside {pin}"


@pytest.mark.parametrize("name", sorted(_compat.CHECKED))
def test_the_checked_version_is_in_the_pinned_range(name: str) -> None:
    pin = _pins()[name].specifier
    assert pin.contains(_compat.CHECKED[name]), f"CHECKED {name} is outside {pin}"


# --- Ray, on the driver -----------------------------------------------------------------------


def test_job_config_env_var_names_rays_variable() -> None:
    # tests/execution/test_cluster.py sets it by this name, as `ray job submit` does.
    assert _compat.job_config_env_var() == "RAY_JOB_CONFIG_JSON_ENV_VAR"


def test_actor_id_of_a_trial_without_an_actor_is_none() -> None:
    from ray.tune.experiment import Trial

    assert _compat.actor_id(Trial("sweeper", stub=True)) is None


def test_function_trainable_is_a_tune_trainable_with_the_hooks_sweeper_overrides() -> None:
    from ray import tune

    def train(config: dict[str, Any]) -> None:
        pass

    cls = _compat.function_trainable(train)
    assert isinstance(cls, type) and issubclass(cls, tune.Trainable)
    for name in ("reset_config", "cleanup"):
        assert callable(getattr(cls, name)), name


def test_outside_a_trial_there_is_no_training_thread_to_wait_for() -> None:
    assert _compat.training_thread() is None
    _compat.wait_for_training(0.1)  # returns at once


def test_the_train_session_waits_with_a_timeout() -> None:
    from ray.train._internal.session import _TrainSession

    assert "timeout" in inspect.signature(_TrainSession.finish).parameters


def test_in_a_real_trial_the_actor_and_thread_are_the_trials(ray_session, tmp_path: Path) -> None:
    """One trial on the session's Ray: ``function_trainable`` runs in Tune, ``training_thread``
    is the thread running the training function, and ``actor_id`` (read on the driver) is the
    id the actor's runtime context gives."""
    import ray
    from ray import tune

    # Defined here, so Ray ships it by value (workers need not import this test module).
    def report_actor_and_thread(config: dict[str, Any]) -> None:
        tune.report(
            {
                "actor": ray.get_runtime_context().get_actor_id(),
                "own_thread": _compat.training_thread() is threading.current_thread(),
            }
        )

    seen: list[tuple[str | None, dict[str, Any]]] = []

    class Record(tune.Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict) -> None:
            seen.append((_compat.actor_id(trial), result))

    tuner = tune.Tuner(
        _compat.function_trainable(report_actor_and_thread),
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(
            name="compat", storage_path=str(tmp_path), callbacks=[Record()], verbose=0
        ),
    )
    (result,) = tuner.fit()
    assert result.error is None
    ((actor, reported),) = seen
    assert reported["own_thread"] is True
    assert actor is not None and actor == reported["actor"]


# --- Optuna through Ray's OptunaSearch --------------------------------------------------------


def _searcher() -> Any:
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(space={"x": tune.uniform(0.0, 1.0)}, metric="score", mode="max", seed=1)


def test_searcher_trials_study_and_completed_follow_suggest_and_complete() -> None:
    import optuna
    from optuna.trial import TrialState

    searcher = _searcher()
    config = searcher.suggest("t1")
    trials = _compat.searcher_trials(searcher)
    study = _compat.searcher_study(searcher)
    completed = _compat.searcher_completed(searcher)
    assert set(trials) == {"t1"} and isinstance(trials["t1"], optuna.trial.Trial)
    assert isinstance(study, optuna.Study) and trials["t1"].study is study
    assert trials["t1"].params == config
    assert completed == set()
    searcher.on_trial_complete("t1", {"score": 0.5})
    # The same set, live: sweeper adds to it the trials it has told the study about itself.
    assert completed == {"t1"} and _compat.searcher_completed(searcher) is completed
    (frozen,) = study.get_trials(deepcopy=False)
    assert (frozen.state, frozen.value) == (TrialState.COMPLETE, 0.5)


def test_optuna_trial_id_closes_a_trial_read_back_from_a_journal(tmp_path: Path) -> None:
    """As ``open_study`` does after a driver died: fail a trial left running, by its id."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    def journal() -> JournalStorage:
        return JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))

    study = optuna.create_study(study_name="s", storage=journal())
    study.tell(study.ask(), 1.0)
    study.ask()  # the driver dies with this trial running
    storage = journal()
    reread = optuna.load_study(study_name="s", storage=storage).get_trials(deepcopy=False)
    running = reread[1]
    assert running.state == TrialState.RUNNING
    trial_id = _compat.optuna_trial_id(running)
    assert isinstance(trial_id, int) and storage.get_trial(trial_id).number == running.number
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
    states = [t.state for t in optuna.load_study(study_name="s", storage=journal()).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]


def test_without_auto_connect_a_ray_call_raises_instead_of_starting_ray() -> None:
    """After sweeper's Ray is shut down, a stray call must not start or join another one."""
    code = (
        "import ray\n"
        "from sweeper import _compat\n"
        "_compat.disable_ray_auto_connect()\n"
        "try:\n"
        "    ray.put(1)\n"
        "except Exception as exc:\n"
        "    print('raised', type(exc).__name__)\n"
        "print('initialized', ray.is_initialized())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.splitlines()[-1] == "initialized False", done.stdout + done.stderr
    assert done.stdout.startswith("raised ")


def test_ray_init_keeps_the_drivers_sigterm_handler_inside_keep_sigterm_handler() -> None:
    code = (
        "import signal, ray\n"
        "from sweeper import _compat\n"
        "def mine(signum, frame):\n"
        "    pass\n"
        "signal.signal(signal.SIGTERM, mine)\n"
        "with _compat.keep_sigterm_handler():\n"
        "    ray.init(address='local', num_cpus=1, include_dashboard=False)\n"
        "print('kept', signal.getsignal(signal.SIGTERM) is mine)\n"
        "ray.shutdown()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=False
    )
    assert "kept True" in done.stdout, done.stdout + done.stderr[-2000:]


def test_gcs_requires_token_reaches_rays_grpc_stubs() -> None:
    # What it imports must exist: an ImportError would make it answer False for every cluster.
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    assert callable(init_grpc_channel)
    assert hasattr(gcs_service_pb2, "GetClusterIdRequest")
    assert hasattr(gcs_service_pb2_grpc, "NodeInfoGcsServiceStub")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there: no refusal to report (the cluster scenarios check a refusal).
    assert _compat.gcs_requires_token(f"127.0.0.1:{port}", timeout=2) is False


def test_enable_ray_token_auth_turns_rays_token_mode_on() -> None:
    code = (
        "import os; from sweeper import _compat; _compat.enable_ray_token_auth(); "
        "from ray._raylet import AuthenticationMode, get_authentication_mode; "
        "print(os.environ['RAY_AUTH_MODE'], get_authentication_mode() == AuthenticationMode.TOKEN)"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.stdout.split() == ["token", "True"], done.stdout + done.stderr


def test_local_gpu_count_counts_as_ray_does(monkeypatch: pytest.MonkeyPatch) -> None:
    count = _compat.local_gpu_count()
    assert isinstance(count, int) and count >= 0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no device visible to this process
    assert _compat.local_gpu_count() == 0
