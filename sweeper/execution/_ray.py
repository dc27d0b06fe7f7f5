"""Ray's lifecycle for a sweep, on the driver: starting a local Ray or joining a cluster, the
dashboard, actors pinned to the driver's node, and the environment Tune reads while it runs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sweeper._format import first_line
from sweeper.errors import SweepError
from sweeper.execution._placement import cluster_totals, live_nodes, why_unplaceable

if TYPE_CHECKING:
    from sweeper.settings import Settings

__all__ = ["address_origin", "check_token", "node_count", "on_node", "ray_session", "tune_settings"]


def on_node(actor: Any, node: str | None) -> Any:
    """``actor`` pinned to ``node`` (the driver's): a lost node must not take it with it."""
    if node is None:
        return actor
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))


def node_count() -> int:
    """How many live nodes the Ray cluster has."""
    import ray

    try:
        return sum(1 for node in ray.nodes() if node.get("Alive"))
    except Exception:
        return 1


def unplaceable(
    cpus: float, gpus: float, memory: int | None, learners: int = 1, pack: bool = True
) -> str | None:
    """Why the live nodes could never hold a trial that asks for this much (``None``: they can).

    Ray would keep such a trial pending, in silence, for as long as the sweep runs.
    """
    return why_unplaceable(live_nodes(), cpus, gpus, memory, learners, pack)


def _cluster_size() -> str:
    return cluster_totals(live_nodes())


@contextmanager
def ray_session(
    settings: Settings,
    address: str | None,
    runtime_env: Callable[[], dict[str, Any]] | None = None,
) -> Iterator[str]:
    """Connect to the configured cluster, start a local Ray, or reuse one already up.

    On a cluster, ``runtime_env()`` ships the sweep's code to the workers (Ray uploads the
    working folder and packages when it connects).
    """
    import ray

    from sweeper import _compat

    _compat.disable_ray_auto_connect()  # sweeper's Ray is the one below, never a stray one
    _compat.keep_credentials_out_of_trial_envs()
    if ray.is_initialized():
        yield "the Ray instance already running in this process"
        return
    origin = address_origin(settings, address)
    address = address or settings.ray.address or None
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    noise: list[str] = []  # what Ray printed while joining a cluster
    try:
        with _compat.keep_sigterm_handler():  # see _compat: Ray's would exit mid-start
            if address:
                env = runtime_env() if runtime_env is not None else {}
                # Ray's C++ core warns once a second while the cluster refuses it; what it
                # said is read below instead.
                with _stderr_kept(noise):
                    ray.init(address=address, runtime_env=env or None, **options)
                where = f"Ray cluster at {address} ({_cluster_size()})"
            else:
                # "local" always starts a fresh instance, never one found on the machine.
                local = {
                    "address": "local",
                    "num_cpus": settings.ray.num_cpus,
                    "num_gpus": settings.ray.num_gpus,
                    **options,
                }
                dashboard = settings.ray.dashboard
                where = "a local Ray"
                try:
                    context = ray.init(
                        include_dashboard=dashboard,
                        dashboard_host="127.0.0.1",  # never on other interfaces
                        dashboard_port=_dashboard_port(settings.ray.dashboard_port),
                        **local,
                    )
                except Exception:
                    if not dashboard:
                        raise
                    # The dashboard is a convenience: a sweep runs without it (a busy machine can
                    # make it miss Ray's start-up deadline).
                    ray.shutdown()
                    context = ray.init(include_dashboard=False, **local)
                    dashboard = False
                    where += " (the dashboard failed to start: see Ray's dashboard.log)"
                if dashboard:
                    url = getattr(context, "dashboard_url", None)
                    # Ray's token authentication (on unless RAY_AUTH_MODE=disabled) guards it.
                    token = os.environ.get("RAY_AUTH_MODE", "").lower() != "disabled"
                    login = ", token: ray get-auth-token" if token else ""
                    where += (
                        f" (dashboard: http://{url}{login})"
                        if url
                        else " (no dashboard: it needs pip install 'ray[default]')"
                    )
    except Exception as exc:
        first = first_line(exc)
        said = f"{type(exc).__name__} {first} {' '.join(noise)}"
        if "InvalidAuthToken" in said or "Unauthenticated" in said:
            raise SweepError(
                f"the Ray cluster must accept this process's token, got InvalidAuthToken "
                f"({origin} = {address!r})",
                hint=_TOKEN_HINT,
            ) from None
        raise SweepError(
            f"Ray must start or be reachable, got {type(exc).__name__}: {first} "
            + (f"({origin} = {address!r})" if address else "(a local Ray)"),
        ) from None
    try:
        yield where
    finally:
        ray.shutdown()


_TOKEN_HINT = (
    "set RAY_AUTH_TOKEN to the cluster's token (run ray get-auth-token on its head), or "
    "RAY_AUTH_TOKEN_PATH to a file holding it"
)
_TOKEN_VARIABLES = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def address_origin(settings: Settings, address: str | None) -> str:
    """Where the Ray address in use came from, as errors name it."""
    return "command line: --address" if address else settings.origin("ray", "address")


def check_token(address: str, origin: str) -> None:
    """Send the token the user gave, and fail fast where the cluster wants one and none is.

    Run on the driver before anything is written (``_sweep._check_cluster``), not in
    :func:`ray_session`: a refusal then leaves no sweep folder behind.

    Ray sends a token to an explicitly named cluster only under ``RAY_AUTH_MODE=token``; a
    token set in ``RAY_AUTH_TOKEN`` is meant for the cluster named, so sweeper turns the mode
    on for it (unless ``RAY_AUTH_MODE`` says otherwise). ``auto`` is Ray's own business: it
    reads the token ``ray start`` left on this machine.
    """
    from sweeper import _compat

    if address == "auto":
        return
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is None and any(os.environ.get(name) for name in _TOKEN_VARIABLES):
        _compat.enable_ray_token_auth()
        mode = "token"
    if (mode or "").lower() != "token" and _compat.gcs_requires_token(address):
        raise SweepError(
            f"the Ray cluster must be given its token, got none ({origin} = {address!r})",
            hint=_TOKEN_HINT,
        )


@contextmanager
def _stderr_kept(into: list[str]) -> Iterator[None]:
    """Send what this process writes to its stderr (fd 2, C++ included) to ``into`` instead.

    Only while joining a cluster: a local Ray's processes would inherit the redirection.
    """
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            into.extend(held.read().decode("utf-8", "replace").splitlines())


def _dashboard_port(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else a free port: Ray refuses to start when
    the dashboard's port is taken (another Ray, another sweep on the machine).

    The probe binds as a server does (``SO_REUSEADDR``): connections of a dashboard that just
    stopped linger in TIME_WAIT for a minute, and a plain bind would take the port for taken
    while a new server can listen on it. A port something listens on is still refused.
    """
    import socket

    for port in (preferred, 0):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    return 0


# Read by Tune on the driver when the Tuner is built and run.
_TUNE_ENVIRONMENT = {
    # Tune's default per-trial loggers write JSON, CSV and TensorBoard files for every result;
    # sweeper records results itself, so they only cost time.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # sweeper prints its own progress; Tune's new console output ignores verbose=0.
    "RAY_AIR_NEW_OUTPUT": "0",
    # Reports may hold other metrics before the sweep's first appears (see TrialContext).
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    # sweeper handles Ctrl-C itself: a halt by signal works like `sweeper stop`.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}


@contextmanager
def tune_settings() -> Iterator[None]:
    """Tune's settings for a sweep, restored afterwards so the calling process is left as it was.

    Tune's and Optuna's log lines are held back too: sweeper reports each trial itself, and
    Tune's end-of-run lines would repeat failures with tracebacks and warn about the per-trial
    result files turned off above.
    """
    import optuna

    saved_env = {name: os.environ.get(name) for name in _TUNE_ENVIRONMENT}
    os.environ.update(_TUNE_ENVIRONMENT)
    tune_logger = logging.getLogger("ray.tune")
    tune_level, optuna_level = tune_logger.level, optuna.logging.get_verbosity()
    tune_logger.setLevel(logging.CRITICAL)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        tune_logger.setLevel(tune_level)
        optuna.logging.set_verbosity(optuna_level)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
