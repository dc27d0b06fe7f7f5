"""Shared fixtures (one Ray instance per test session, isolated MLflow stores and results),
and the markers that gate tests on optional backends.

A test that needs an optional backend carries its marker (registered in ``pyproject.toml``)::

    pytestmark = pytest.mark.tensorflow  # every test of the module
    @pytest.mark.caffe                   # one test

Where the backend is missing, the test is skipped with the reason and how to install it; under
``CI=true`` (``.ci/run`` sets it) it fails with that reason instead, so CI cannot pass by
skipping. The check runs when the test is set up, after its module was imported, so a marked
module must not import its framework at module level: import it inside the tests or a fixture,
or at module level only as ``tf = pytest.importorskip("tensorflow")``. A skip by
``importorskip`` of a backend's module, at collection or in a test, also fails under CI.

``SWEEPER_TESTS_WITHOUT="tensorflow caffe"`` treats the named backends as missing (and hides
their Python modules from the test process), to see what a machine without them runs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Ray can be told about GPUs it does not have: trials then get their own CUDA_VISIBLE_DEVICES.
FAKE_GPUS = 2
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray shared by every in-process sweep of the session (sweeper reuses it)."""
    import ray

    ray.init(
        address="local",
        num_cpus=4,
        num_gpus=FAKE_GPUS,
        include_dashboard=False,
        log_to_driver=False,
        # Trials reach the tests' S3 server (moto) with boto3's standard credential chain, as
        # on a real node: give the workers moto's dummy keys.
        runtime_env={"env_vars": {**MOTO_CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def settings(tmp_path: Path):
    """Settings that keep MLflow and results inside the test's temporary folder."""
    from sweeper.settings import load_settings

    return load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
        }
    )


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec (text) as ``tmp_path/experiment.yml`` and return its path."""

    def write(text: str, name: str = "experiment.yml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from ``tmp_path`` (relative paths in specs resolve there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name in HIDDEN & set(BACKENDS):
        for module in BACKENDS[name].modules:
            sys.modules[module] = None  # `import` now raises ModuleNotFoundError


# --- optional backends -------------------------------------------------------------------------

IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
HIDDEN = set(os.environ.get("SWEEPER_TESTS_WITHOUT", "").replace(",", " ").split())
CAFFE_VERSION = "caffe version 1.0.0"


@dataclass(frozen=True)
class Backend:
    """What a backend marker's tests need, besides sweeper's own dependencies."""

    install: str  # how to get it
    modules: tuple[str, ...] = ()  # Python modules it needs
    problem: Callable[[], str | None] = lambda: None  # why else it cannot run; None: it can


def _caffe_problem() -> str | None:
    try:
        done = subprocess.run(
            ["caffe", "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        return "the caffe command is not installed"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"caffe --version failed: {exc}"
    if done.stdout.strip() == CAFFE_VERSION:
        return None
    return f"caffe --version printed {(done.stdout + done.stderr).strip()[-300:]!r}"


@functools.cache
def network_namespace() -> list[str] | None:
    """The command prefix that runs a program in a new network namespace (loopback only): as
    root directly, else inside a user namespace of its own; ``None`` if neither works."""
    for prefix in (["unshare", "--net"], ["unshare", "--map-root-user", "--net"]):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return None


@functools.cache
def mount_namespace() -> list[str] | None:
    """The command prefix that runs a program in a new mount namespace, where it may mount a
    small tmpfs (a disk that fills) that vanishes with it: as root directly, else inside a
    user namespace of its own; ``None`` if neither works."""
    probe_script = 'd=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs "$d" && umount "$d"'
    for prefix in (["unshare", "--mount"], ["unshare", "--map-root-user", "--mount"]):
        try:
            probe = subprocess.run(
                [*prefix, "sh", "-c", probe_script], capture_output=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return None


def _mount_problem() -> str | None:
    if mount_namespace() is None:
        return "unshare --mount with a tmpfs mount fails, as root and in a user namespace"
    return None


def _aws_problem() -> str | None:
    return None if shutil.which("aws") else "the aws command is not installed"


def _namespace_problem() -> str | None:
    if network_namespace() is None:
        return "unshare --net fails, as root and in a user namespace of its own"
    return None


BACKENDS = {
    "tensorflow": Backend("pip install -e '.[tensorflow]'", ("tensorflow",)),
    "pytorch": Backend("pip install -e '.[pytorch]'", ("torch",)),
    # Ray Tune's PB2 models the population with GPy's Gaussian processes.
    "pbt": Backend("pip install -e '.[pbt]'", ("GPy", "sklearn")),
    "caffe": Backend("run bash .ci/install-caffe.sh as root", problem=_caffe_problem),
    # moto's server, and the aws CLI that some tests check sweeper's uploads with
    "s3": Backend(
        "pip install -e '.[dev]' (moto[server], awscli)",
        ("moto", "flask", "flask_cors"),
        _aws_problem,
    ),
    # Ray's servers listen on every interface: the cluster test runs them in a namespace whose
    # only interface is the loopback, so nothing it starts can be reached from elsewhere.
    "cluster": Backend(
        "run the test as root, or where unprivileged user namespaces are allowed",
        problem=_namespace_problem,
    ),
    # A filesystem that fills: a tmpfs of a few MB, mounted where only the test sees it.
    "smalldisk": Backend(
        "run the test as root, or where unprivileged user namespaces are allowed",
        problem=_mount_problem,
    ),
}
# The module names pytest.importorskip reports ("could not import 'tensorflow.keras'").
_IMPORT_SKIP = re.compile(r"could not import '([\w.]+)'")


@functools.cache
def backend_problem(name: str) -> str | None:
    """Why the tests marked ``name`` cannot run here (``None``: they can)."""
    backend = BACKENDS[name]
    if name in HIDDEN:
        return f"{name} is hidden by SWEEPER_TESTS_WITHOUT"
    for module in backend.modules:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed; {backend.install}"
    why = backend.problem()
    return f"{why}; {backend.install}" if why else None


def _ci_failure(name: str, why: str) -> str:
    return f"CI must run the {name} tests, but {why}"


@pytest.hookimpl(tryfirst=True)  # before fixtures: a skipped test starts no Ray
def pytest_runtest_setup(item: pytest.Item) -> None:
    names = sorted({mark.name for mark in item.iter_markers()} & set(BACKENDS))
    missing = {name: why for name in names if (why := backend_problem(name))}
    if missing and IN_CI:
        message = "; ".join(_ci_failure(name, why) for name, why in missing.items())
        pytest.fail(message, pytrace=False)
    if missing:
        pytest.skip("; ".join(f"needs {name}: {why}" for name, why in missing.items()))


def _fail_in_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    """Under CI, turn a skip by ``pytest.importorskip`` of a backend's module into a failure."""
    if not (IN_CI and report.skipped and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2])  # (path, line, "Skipped: could not import 'torch': ...")
    found = _IMPORT_SKIP.search(reason)
    top = found.group(1).partition(".")[0] if found else None
    for name, backend in BACKENDS.items():
        if top in backend.modules:
            report.outcome = "failed"
            report.longrepr = _ci_failure(name, reason)
            return


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_in_ci(report)
    return report


@pytest.fixture(scope="session")
def isolated_network() -> list[str]:
    """The prefix of :func:`network_namespace` (tests using it are marked ``cluster``)."""
    prefix = network_namespace()
    assert prefix is not None, "mark the test with pytest.mark.cluster"
    return prefix


@dataclass
class ExampleRun:
    """An example sweep run through the CLI, with what it left in results and MLflow."""

    spec: Any
    sweep_dir: Path
    results: Any  # the results.csv DataFrame
    children: Any  # mlflow.search_runs rows of the child runs
    parent_id: str
    client: Any  # an MlflowClient on the run's store
    stdout: str


@pytest.fixture
def run_example(tmp_path: Path):
    """``run_example(config, metric)``: ``sweeper run configs/<config>`` in a subprocess.

    Checks what every example must show: exit 0 without a traceback, every trial completed,
    the best ``metric`` at least 0.95, and in MLflow one parent with one finished child per
    trial and the parent's ``sweep/best_<metric>`` (with several objectives, its Pareto front).
    """
    import mlflow
    import pandas as pd

    from sweeper.spec import load_spec

    def run(config: str, metric: str) -> ExampleRun:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        env = {
            **os.environ,
            "SWEEPER_MLFLOW_TRACKING_URI": uri,
            "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
            "SWEEPER_RAY_NUM_CPUS": "2",
        }
        # Within pytest-timeout's limit (pyproject.toml), so this timeout is the one reported.
        done = subprocess.run(
            [sys.executable, "-m", "sweeper", "run", config],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        spec = load_spec(ROOT / config)
        several = spec.search.multi_objective
        assert ("Pareto front (" if several else "best trials:") in done.stdout
        assert "Traceback" not in done.stderr
        (sweep_dir,) = (tmp_path / "results").iterdir()
        results = pd.read_csv(sweep_dir / "results.csv")
        assert len(results) == spec.trial_count()
        assert set(results["state"]) == {"completed"}
        assert results[metric].max() >= 0.95
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(experiment_names=[spec.name])
        parents = runs[runs["tags.mlflow.parentRunId"].isna()]
        assert len(parents) == 1
        parent_id = parents["run_id"].iloc[0]
        children = runs[runs["tags.mlflow.parentRunId"] == parent_id]
        assert len(children) == spec.trial_count()
        assert set(children["status"]) == {"FINISHED"}
        assert children[f"metrics.{metric}"].max() >= 0.95
        client = mlflow.MlflowClient(uri)
        parent = client.get_run(parent_id).data
        if several:  # no single best: the parent names the Pareto front
            front = set(results.loc[results["pareto"], "trial"])
            assert set(parent.tags["sweeper.pareto_trials"].split(",")) == front
        else:
            assert parent.metrics[f"sweep/best_{metric}"] == pytest.approx(results[metric].max())
        return ExampleRun(spec, sweep_dir, results, children, parent_id, client, done.stdout)

    return run


TALKING_SPEC = f"""\
name: talking
framework: python
entrypoint: {ROOT / "tests" / "_code" / "talking.py"}:talks
parameters:
  x: {{choice: [1, 2, 3]}}
  epochs: 3
  sleep: 0.05
search: {{method: grid, metric: score, mode: max, concurrency: 2}}
"""


@dataclass
class FinishedSweep:
    """A real sweep that ran to its end: trial-0002 failed after a step, trial-0003 is best."""

    result: Any  # the SweepResult
    settings: Any
    folder: Path  # holds experiment.yml, mlflow.db and results/


@pytest.fixture(scope="session")
def talking_sweep(ray_session, tmp_path_factory) -> FinishedSweep:
    """One finished sweep shared by the tests that only read sweeps on disk."""
    from sweeper.execution._sweep import run
    from sweeper.settings import load_settings

    folder = tmp_path_factory.mktemp("talking")
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(folder / "results"),
        }
    )
    (folder / "experiment.yml").write_text(TALKING_SPEC, encoding="utf-8")
    result = run(folder / "experiment.yml", settings, echo=None)
    assert result.status == "completed"
    return FinishedSweep(result, settings, folder)


class SweeperCli:
    """Runs ``python -m sweeper ...`` in a test's folder, with its own MLflow store and results,
    as a user would in a terminal."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.uri = f"sqlite:///{folder / 'mlflow.db'}"
        self.env = {
            **os.environ,
            "SWEEPER_MLFLOW_TRACKING_URI": self.uri,
            "SWEEPER_RESULTS_DIR": str(folder / "results"),
            "SWEEPER_RAY_NUM_CPUS": "2",
        }

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start a command in the background (stdout and stderr piped)."""
        return subprocess.Popen(
            [sys.executable, "-m", "sweeper", *args],
            cwd=self.folder, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command to its end."""
        return subprocess.run(
            [sys.executable, "-m", "sweeper", *args],
            cwd=self.folder, env=self.env, text=True, capture_output=True, timeout=timeout,
        )  # fmt: skip

    def sweep_dir(self) -> Path:
        """The one sweep folder under ``results/``."""
        (folder,) = (self.folder / "results").iterdir()
        return folder

    def children(self, parent: str, experiment: str) -> Any:
        """The MLflow child runs of ``parent``."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        runs = mlflow.search_runs(experiment_names=[experiment])
        return runs[runs["tags.mlflow.parentRunId"] == parent]

    @staticmethod
    def wait_for(check: Any, driver: Any = None, timeout: float = 180) -> None:
        """Poll ``check()`` until it is true; fail after ``timeout`` seconds, or at once with
        its output if ``driver`` (a process from :meth:`start`) ended first."""
        import time

        deadline = time.time() + timeout
        while time.time() < deadline:
            if check():
                return
            if driver is not None and driver.poll() is not None:
                out, err = driver.communicate()
                raise AssertionError(f"sweeper exited {driver.returncode}:\n{out}\n{err}")
            time.sleep(0.1)
        raise AssertionError("timed out")


@pytest.fixture
def cli(tmp_path: Path) -> SweeperCli:
    """``sweeper`` run in subprocesses from the test's temporary folder."""
    return SweeperCli(tmp_path)
