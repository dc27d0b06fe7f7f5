"""Every private API of Ray and Optuna that sweeper touches, in one place.

Neither library offers a public way to do these things (each entry says what it is for). Each
was checked against the versions in :data:`CHECKED`, the upper ends of the ranges
``pyproject.toml`` pins; when Ray or Optuna moves, this module is the one to read and fix, and
``tests/test_compat.py`` fails first. Nothing is imported at module level: every accessor
imports what it reaches into, so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    import optuna
    from ray.tune.experiment import Trial
    from ray.tune.search.optuna import OptunaSearch

__all__ = [
    "CHECKED",
    "actor_id",
    "disable_ray_auto_connect",
    "enable_ray_token_auth",
    "function_trainable",
    "gcs_requires_token",
    "job_config_env_var",
    "keep_credentials_out_of_trial_envs",
    "keep_sigterm_handler",
    "local_gpu_count",
    "optuna_trial_id",
    "searcher_completed",
    "searcher_study",
    "searcher_trials",
    "training_thread",
    "wait_for_training",
]

# The versions every accessor below was read against.
CHECKED = {"ray": "2.60.0", "optuna": "5.0.0"}


# -- Ray (runs on the driver) ------------------------------------------------------------------


def job_config_env_var() -> str:
    """The variable ``ray job submit`` sets to the job's config (with its ``runtime_env``).

    Ray documents no API for a driver to read its own job's runtime environment.
    """
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    return str(RAY_JOB_CONFIG_JSON_ENV_VAR)


def disable_ray_auto_connect() -> None:
    """Make Ray's calls raise instead of calling ``ray.init()`` when Ray is not up.

    A bare ``ray.init()`` joins whatever ``/tmp/ray/ray_current_cluster`` names: after sweeper
    shut its Ray down, a stray ``.remote()`` would start or join another. Ray reads
    ``RAY_ENABLE_AUTO_CONNECT`` once, when it is imported; this sets what it read.
    """
    import os

    from ray._private import auto_init_hook

    os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"  # for processes this one starts
    auto_init_hook.enable_auto_connect = False


@contextlib.contextmanager
def keep_sigterm_handler() -> Iterator[None]:
    """Keep the driver's SIGTERM handler while ``ray.init`` runs.

    ``ray.init`` installs its own (``sys.exit(15)``, and for a local head node a handler that
    kills Ray's processes and exits), with no setting against it. Raised at an arbitrary point
    of the start-up, that exit can land in logging's fork handlers and hang the driver; sweeper's
    handler only records the request, and the session halts once Ray is up.
    """
    from ray._private import utils

    original = utils.set_sigterm_handler
    utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = original


# The variables Tune copies into every trial actor's runtime environment that hold secrets:
# Ray's runtime-env agent writes that environment to its log in clear.
_SECRET_VARIABLES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"}
)


def enable_ray_token_auth() -> None:
    """Make this process send its Ray token (``RAY_AUTH_TOKEN``) to the cluster it joins.

    Given an explicit address, ``ray.init`` sends a token only under ``RAY_AUTH_MODE=token``,
    and Ray caches its config: this is what Ray itself runs to switch the mode (env and cache).
    """
    from ray._private.authentication import authentication_token_setup

    authentication_token_setup._enable_token_auth()


def gcs_requires_token(address: str, timeout: float = 5.0) -> bool:
    """Whether the GCS at ``address`` (``HOST:PORT``) refuses a caller without a token.

    A refused ``ray.init`` retries for 20 s, printing a warning a second from Ray's C++ core,
    then says only "Failed to connect". One unauthenticated call of the GCS's own (the one
    ``ray.init`` starts with) answers in milliseconds. ``False`` when it cannot tell.
    """
    try:
        import grpc  # type: ignore[import-untyped]
        from ray._private.grpc_utils import init_grpc_channel
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:
        return False
    channel = init_grpc_channel(address)
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        request = gcs_service_pb2.GetClusterIdRequest()  # type: ignore[attr-defined]
        stub.GetClusterId(request, timeout=timeout)
    except grpc.RpcError as exc:
        return bool(exc.code() == grpc.StatusCode.UNAUTHENTICATED)
    except Exception:
        return False
    finally:
        channel.close()
    return False


def local_gpu_count() -> int:
    """The GPUs a local Ray started here would find, as Ray counts them (its NVIDIA
    accelerator manager, limited by ``CUDA_VISIBLE_DEVICES``), without starting Ray."""
    from ray._private.accelerators import get_accelerator_manager_for_resource

    manager = get_accelerator_manager_for_resource("GPU")
    if manager is None:
        return 0
    count = int(manager.get_current_node_num_accelerators())
    visible = manager.get_current_process_visible_accelerator_ids()
    return count if visible is None else min(count, len(visible))


def keep_credentials_out_of_trial_envs() -> None:
    """Stop Tune from copying the driver's AWS credentials into its trial actors' runtime env.

    Tune's actor-class cache (``ray.tune.execution.class_cache.ENV_VARS_TO_PROPAGATE``)
    propagates them with no setting to turn it off, and Ray logs each runtime environment
    (``session_*/logs/runtime_env_agent.log``). sweeper hands trials its credentials through
    Ray's object store instead (:class:`sweeper.storage._sweep.SweepStore`).
    """
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = set(class_cache.ENV_VARS_TO_PROPAGATE) - _SECRET_VARIABLES


def actor_id(trial: Trial) -> str | None:
    """The id of the Ray actor running ``trial`` (the dashboard's Actors page lists it).

    Tune keeps the actor handle in private trial state and names no public accessor.
    """
    actor = trial.temporary_state.ray_actor
    try:
        return None if actor is None else str(actor._actor_id.hex())
    except AttributeError:  # the private attribute moved
        return None


# -- Ray (runs in the trial's Ray actor) --------------------------------------------------------


def function_trainable(train_fn: Callable[..., Any]) -> type:
    """Tune's function-trainable class for ``train_fn``, to subclass.

    ``tune.Tuner`` wraps functions itself; sweeper needs the class to override ``reset_config``
    and ``cleanup`` (see :mod:`sweeper.execution._actor`).
    """
    from ray.tune.trainable.function_trainable import wrap_function

    return wrap_function(train_fn)


def wait_for_training(timeout: float) -> None:
    """Wait up to ``timeout`` seconds for this actor's training thread to end.

    Tune's reset waits ``TUNE_FUNCTION_THREAD_TIMEOUT_S`` (2 s) through the same call.
    """
    from ray.train._internal.session import get_session

    session = get_session()
    if session is not None:  # None: not in a trial's actor, no thread to wait for
        session.finish(timeout=timeout)


def training_thread() -> threading.Thread | None:
    """This actor's training thread, or ``None`` (Tune has no public handle on it)."""
    from ray.train._internal.session import get_session

    session = get_session()
    return session.training_thread if session is not None else None


# -- Optuna through Ray's OptunaSearch (runs on the driver) --------------------------------------


def searcher_trials(searcher: OptunaSearch) -> dict[str, optuna.trial.Trial]:
    """Tune trial id to the Optuna trial ``OptunaSearch`` asked for it."""
    return searcher._ot_trials


def searcher_study(searcher: OptunaSearch) -> optuna.Study:
    """The study ``OptunaSearch`` asks and tells."""
    # Declared None until OptunaSearch sets its search properties, before the first suggest.
    return cast("optuna.Study", searcher._ot_study)


def searcher_completed(searcher: OptunaSearch) -> set[str]:
    """Tune trial ids ``OptunaSearch`` has already told the study about."""
    return searcher._completed_trials


def optuna_trial_id(trial: optuna.trial.FrozenTrial) -> int:
    """The storage's id of ``trial``, which ``BaseStorage.set_trial_state_values`` takes.

    Optuna's public API closes trials only through ``Study.tell`` on a live trial, not one
    read back from a journal after the process that asked for it died.
    """
    return int(trial._trial_id)
