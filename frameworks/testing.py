"""The conformance kit for framework adapters: the contract of
:class:`~sweeper.frameworks.FrameworkAdapter`, as tests that run real trials on a local Ray.

A plug-in's whole test is a subclass of :class:`AdapterTestSuite` that provides two fixtures,
both class-scoped (the kit runs one sweep per class and shares it between its tests)::

    import pytest
    from sweeper.frameworks.testing import AdapterTestSuite, Project

    from sweeper_mxnet import MXNetAdapter


    class TestMXNetAdapter(AdapterTestSuite):
        framework_module = "mxnet"  # what the missing-framework test hides

        @pytest.fixture(scope="class")
        def adapter_class(self):
            return MXNetAdapter

        @pytest.fixture(scope="class")
        def project(self, tmp_path_factory):
            return Project.python_trainer(tmp_path_factory.mktemp("mxnet"))

**The training code.** The project's training code plays the scenario named by its parameter
``scenario`` (:data:`SCENARIOS`). :meth:`Project.python_trainer` writes one (a copy of
``sweeper/frameworks/_kit_train.py``) for adapters that call ``entrypoint(params, ctx)``, and
:meth:`Project.python_program` the same file as a program that prints metrics lines, for
adapters that run one; an adapter that runs something else writes its own and, where a
scenario is played through another value of ``scenario`` (a solver setting, say), overrides
:meth:`AdapterTestSuite.scenario`. A scenario its framework cannot play goes in
:attr:`AdapterTestSuite.unsupported`, with the reason; its tests are skipped.

**What is checked.** On the driver, without Ray: the adapter is found by name, ``validate()``
does not import the framework, a missing framework fails the trial with a
:class:`~sweeper.TrialError` naming the extra, a ``SystemExit`` from ``ctx.report`` ends
``run()`` within :data:`~sweeper.frameworks.STOP_GRACE_S`, and its options block is validated.
In one real sweep of one trial per scenario, one at a time: reports reach the results, output
reaches the trial's log, an error fails its trial with its message in ``error.txt`` and the
results, the next trial on a reused actor sees nothing the previous one left (environment
variables, working directory), and a trial stopped by ``sweeper stop`` ends within the grace.
Those tests are marked ``slow``.

**Ray.** The kit starts a local Ray (2 CPUs, no dashboard) unless one is running already; to
share your test session's own, override the ``ray_cluster`` fixture with one that starts it.
MLflow and the results stay in the class's temporary folder.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from sweeper._layout import ERROR_FILE, STOP_FILE
from sweeper.errors import TrialError
from sweeper.frameworks import _kit_train
from sweeper.frameworks._kit_train import (
    FAILURE,
    LEFTOVER_FILE,
    LEFTOVER_VARIABLE,
    STDERR_LINE,
    STDOUT_LINE,
)
from sweeper.frameworks.base import STOP_GRACE_S
from sweeper.frameworks.context import TrialContext
from sweeper.frameworks.registry import available, get_adapter_class

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.execution import SweepResult
    from sweeper.frameworks.base import FrameworkAdapter
    from sweeper.spec import Spec

__all__ = [
    "FAILURE",
    "LEFTOVER_FILE",
    "LEFTOVER_VARIABLE",
    "SCENARIOS",
    "STDERR_LINE",
    "STDOUT_LINE",
    "AdapterTestSuite",
    "KitSweep",
    "Project",
    "trial_context",
]

# What each value of the parameter ``scenario`` makes the training code do, in the kit sweep's
# order (one trial each, one after another).
SCENARIOS: Mapping[str, str] = {
    "dirty": "set the environment variable LEFTOVER_VARIABLE, write the file LEFTOVER_FILE "
    "into ctx.output_dir and make that the working directory; report the metric once",
    "check": "report the metric, and leftover_env / leftover_cwd: 1.0 if that variable is set "
    "/ that file is in the working directory, else 0.0",
    "report": "print STDOUT_LINE to stdout and STDERR_LINE to stderr, report the metric at "
    "steps 1, 2 and 3, and return",
    "fail": "report the metric once, then fail with FAILURE in the error (its log tail counts)",
    "run": "report the metric every 0.1 s for two minutes (only a stop ends it in time)",
}
_WAIT_FOR_RUN_S = 180.0  # for the "run" trial's first report, before the kit gives up


@dataclass(frozen=True)
class Project:
    """The training code the kit's trials run, and the spec keys that run it.

    Attributes:
        folder: Where the code is; the spec's relative paths resolve against it.
        keys: The spec's keys that select the code: ``entrypoint``, ``command``, the adapter's
            options block, ``resources``...
        parameters: Constants the code needs besides ``scenario`` (they must be constants).
    """

    folder: Path
    keys: Mapping[str, Any]
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def python_trainer(cls, folder: Path, **keys: Any) -> Project:
        """Write the kit's training function into ``folder`` as ``kit_train.py``: the project
        of an adapter that calls ``entrypoint(params, ctx)``; ``keys`` are more spec keys."""
        _write_kit_train(folder)
        return cls(folder, {"entrypoint": "kit_train.py:train", **keys})

    @classmethod
    def python_program(cls, folder: Path, **keys: Any) -> Project:
        """Write the kit's training code into ``folder`` as the program ``kit_train.py``, for
        adapters that run a program: ``python kit_train.py`` reads the parameters from
        ``config.json`` in its working directory (it ignores its arguments), writes to
        ``$RESULT_DIR``, prints ``SWEEPER_METRICS {json}`` lines and exits 1 on failure.
        ``keys`` are the spec keys that run it (``command: [python, kit_train.py]``)."""
        _write_kit_train(folder)
        return cls(folder, dict(keys))


def _write_kit_train(folder: Path) -> None:
    source = Path(_kit_train.__file__).read_text(encoding="utf-8")
    (folder / "kit_train.py").write_text(source, encoding="utf-8")


def trial_context(
    folder: Path,
    *,
    params: Mapping[str, Any] | None = None,
    reporter: Callable[[dict[str, Any]], None] = lambda result: None,
    metric: str = "score",
    seed: int | None = None,
    gpu_ids: Sequence[str] = (),
    trial: str = "trial-0001",
) -> TrialContext:
    """A :class:`TrialContext` outside Ray, laid out as sweeper lays a trial out.

    ``folder/<trial>/`` holds ``output/``, ``checkpoints/`` and ``trial.log`` (which nothing
    redirects to here: the output goes where the test's goes). Every report goes to
    ``reporter``, as Tune's ``report`` would get it.
    """
    trial_dir = folder / trial
    output_dir = trial_dir / "output"
    checkpoint_dir = trial_dir / "checkpoints"
    for directory in (output_dir, checkpoint_dir):
        directory.mkdir(parents=True, exist_ok=True)
    return TrialContext(
        params=dict(params or {}),
        trial=trial,
        sweep="kit",
        trial_dir=trial_dir,
        log_path=trial_dir / "trial.log",
        output_dir=output_dir,
        checkpoint_dir=checkpoint_dir,
        data_dir=None,
        gpu_ids=list(gpu_ids),
        seed=seed,
        metric=metric,
        reporter=reporter,
    )


@dataclass
class KitSweep:
    """The kit's sweep, run to its end: one trial per scenario.

    Attributes:
        result: What ``sweeper.run`` returned.
        trials: The trial of each scenario, by scenario.
        stop_requested: When the kit asked the sweep to stop (``time.time()``), once the
            ``run`` trial reported; ``None`` if it never did.
    """

    result: SweepResult
    trials: dict[str, str]
    stop_requested: float | None

    def row(self, scenario: str) -> pd.Series:
        """The results row of the scenario's trial."""
        frame = self.result.results.set_index("trial")
        return frame.loc[self.trials[scenario]]

    def log(self, scenario: str) -> str:
        """The scenario's trial's ``trial.log``."""
        from sweeper.history import load

        return load(self.result.sweep_dir).log_path(self.trials[scenario]).read_text("utf-8")


def _stop_when_running(
    results: Path, value: Any, done: threading.Event, requested: list[float]
) -> None:
    """Ask the sweep under ``results`` to stop, as ``sweeper stop`` does, once the trial whose
    ``scenario`` is ``value`` has reported."""
    from sweeper.history import load

    deadline = time.monotonic() + _WAIT_FOR_RUN_S
    while not done.wait(0.2):
        folders = [path.parent for path in results.glob("*/state.json")]
        if time.monotonic() > deadline:
            for folder in folders:  # it never ran: end the sweep all the same
                (folder / STOP_FILE).write_text(f"{time.time()}\n", encoding="utf-8")
            return
        if not folders:
            continue
        try:
            frame = load(folders[0]).results
        except Exception:  # not written yet, or being written
            continue
        if "params.scenario" not in frame:
            continue
        running = frame[frame["params.scenario"] == value]
        if not running.empty and running["steps"].iloc[0] >= 1:
            requested.append(time.time())
            (folders[0] / STOP_FILE).write_text(f"{requested[0]}\n", encoding="utf-8")
            return


class AdapterTestSuite:
    """The tests every framework adapter passes; subclass it and provide two fixtures.

    The fixtures, class-scoped: ``adapter_class`` (the adapter, registered or installed so that
    ``framework:`` finds it) and ``project`` (a :class:`Project` whose training code plays
    :data:`SCENARIOS`). The class attributes below describe what the project's code does.
    """

    #: The module the adapter imports for its framework, hidden by the missing-framework test
    #: (``None``: the framework is not a Python module, and that test is skipped).
    framework_module: ClassVar[str | None] = None
    #: The metric the training code reports; the kit's sweeps maximize it.
    metric: ClassVar[str] = "score"
    #: Text the error of the ``fail`` scenario's trial holds.
    failure: ClassVar[str] = FAILURE
    #: Lines the ``report`` scenario's output has, which must reach the trial's log.
    output: ClassVar[tuple[str, ...]] = (STDOUT_LINE, STDERR_LINE)
    #: Scenarios the training code cannot play, with the reason (their tests are skipped).
    unsupported: ClassVar[Mapping[str, str]] = {}

    def scenario(self, name: str) -> Any:
        """The value of the parameter ``scenario`` that plays ``name`` (by default ``name``)."""
        return name

    # -- fixtures ----------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    def adapter_class(self) -> type[FrameworkAdapter]:
        """The adapter under test: override this fixture."""
        raise NotImplementedError("an AdapterTestSuite subclass must provide adapter_class")

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory: pytest.TempPathFactory) -> Project:
        """Its training code: override this fixture."""
        raise NotImplementedError("an AdapterTestSuite subclass must provide project")

    @pytest.fixture(scope="session")
    def ray_cluster(self) -> Iterator[None]:
        """A local Ray for the kit's sweeps (one already running is used as it is)."""
        import ray

        if ray.is_initialized():
            yield
            return
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()

    @pytest.fixture(scope="class")
    def kit_sweep(
        self,
        ray_cluster: None,
        adapter_class: type[FrameworkAdapter],
        project: Project,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> KitSweep:
        """One sweep of a trial per supported scenario, concurrency 1, halted by ``sweeper
        stop`` once the ``run`` trial reports."""
        from sweeper.execution import run
        from sweeper.settings import load_settings

        scenarios = [name for name in SCENARIOS if name not in self.unsupported]
        spec = self.spec_for(adapter_class, project, scenarios)
        folder = tmp_path_factory.mktemp(f"kit-{adapter_class.name}")
        (folder / "sweeper.toml").write_text("", encoding="utf-8")  # not the caller's settings
        settings = load_settings(
            folder / "sweeper.toml",
            environ={
                "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
                "SWEEPER_MLFLOW_LOG_ARTIFACTS": "false",
                "SWEEPER_RESULTS_DIR": str(folder / "results"),
            },
        )
        done, requested = threading.Event(), list[float]()
        stopper = threading.Thread(
            target=_stop_when_running,
            args=(folder / "results", self.scenario("run"), done, requested),
            daemon=True,
        )
        if "run" in scenarios:
            stopper.start()
        try:
            result = run(spec, settings, echo=None)
        finally:
            done.set()
        frame = result.results
        trials = {}
        for name in scenarios:
            rows = frame[frame["params.scenario"] == self.scenario(name)]
            if not rows.empty:
                trials[name] = str(rows["trial"].iloc[0])
        return KitSweep(result, trials, requested[0] if requested else None)

    # -- helpers -----------------------------------------------------------------------------

    def spec_for(
        self, adapter_class: type[FrameworkAdapter], project: Project, scenarios: Sequence[str]
    ) -> Spec:
        """The spec of a grid sweep with a trial per scenario, in order, one at a time."""
        from sweeper.spec import parse_spec

        data = {
            "name": f"kit-{adapter_class.name}",
            "framework": adapter_class.name,
            **project.keys,
            "parameters": {
                **project.parameters,
                "scenario": {"choice": [self.scenario(name) for name in scenarios]},
            },
            "search": {"method": "grid", "metric": self.metric, "mode": "max", "concurrency": 1},
        }
        return parse_spec(data, file="kit spec", base_dir=project.folder)

    def run_here(
        self,
        adapter_class: type[FrameworkAdapter],
        project: Project,
        scenario: str,
        folder: Path,
        reporter: Callable[[dict[str, Any]], None] = lambda result: None,
    ) -> None:
        """Run one trial of ``scenario`` in this process, as a trial's actor would."""
        spec = self.spec_for(adapter_class, project, [scenario])
        params = {**spec.constants, "scenario": self.scenario(scenario)}
        ctx = trial_context(folder, params=params, reporter=reporter, metric=self.metric)
        adapter_class(spec).run(params, ctx)

    def _needs(self, *scenarios: str) -> None:
        for name in scenarios:
            if name in self.unsupported:
                pytest.skip(f"the project does not play {name}: {self.unsupported[name]}")

    # -- on the driver -----------------------------------------------------------------------

    def test_is_discoverable_by_name(self, adapter_class: type[FrameworkAdapter]) -> None:
        assert adapter_class.name in available()
        assert get_adapter_class(adapter_class.name) is adapter_class

    def test_validate_does_not_import_the_framework(
        self,
        adapter_class: type[FrameworkAdapter],
        project: Project,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        module = self.framework_module
        imported = module is not None and module in sys.modules
        spec = self.spec_for(adapter_class, project, ["report"])  # validate() runs in there
        if module is not None and not imported:
            assert module not in sys.modules, f"validating the spec imported {module}"
        if module is not None:
            monkeypatch.setitem(sys.modules, module, None)  # `import <module>` now fails
        adapter_class(spec).validate()

    def test_a_missing_framework_fails_the_trial_naming_the_extra(
        self,
        adapter_class: type[FrameworkAdapter],
        project: Project,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        if self.framework_module is None:
            pytest.skip("the adapter names no framework_module")
        assert adapter_class.extra, "an adapter whose framework can be missing names its extra"
        monkeypatch.setitem(sys.modules, self.framework_module, None)
        with pytest.raises(TrialError) as caught:
            self.run_here(adapter_class, project, "report", tmp_path)
        assert adapter_class.extra in str(caught.value)

    def test_systemexit_from_report_ends_the_run_within_the_grace(
        self, adapter_class: type[FrameworkAdapter], project: Project, tmp_path: Path
    ) -> None:
        self._needs("run")
        raised: list[float] = []

        def reporter(result: dict[str, Any]) -> None:
            if raised or result["step"] < 2:
                return
            raised.append(time.monotonic())
            raise SystemExit(0)  # what Tune's report does in a trial it stops

        with pytest.raises(SystemExit):
            self.run_here(adapter_class, project, "run", tmp_path, reporter)
        assert raised, "the run scenario never reported step 2"
        assert time.monotonic() - raised[0] < STOP_GRACE_S

    def test_its_options_block_is_validated(
        self, adapter_class: type[FrameworkAdapter], project: Project
    ) -> None:
        from sweeper.spec import Spec

        key = adapter_class.block_key()
        if key is None:
            pytest.skip("the adapter has no options block")
        assert key not in Spec.model_fields, f"{key} is a key of every spec"
        spec = self.spec_for(adapter_class, project, ["report"])
        assert isinstance(spec.framework_options, adapter_class.options)  # type: ignore[arg-type]

    # -- real trials -------------------------------------------------------------------------

    @pytest.mark.slow
    def test_reports_reach_the_results(self, kit_sweep: KitSweep) -> None:
        from sweeper.history import load

        row = kit_sweep.row("report")
        assert row["state"] == "completed", row["error"]
        assert row["steps"] >= 2
        assert not math.isnan(float(row[self.metric]))
        again = load(kit_sweep.result.sweep_dir).results.set_index("trial")
        assert again.loc[row.name, self.metric] == row[self.metric]

    @pytest.mark.slow
    def test_output_goes_to_the_trial_log(self, kit_sweep: KitSweep) -> None:
        log = kit_sweep.log("report")
        for line in self.output:
            assert line in log

    @pytest.mark.slow
    def test_a_raised_error_fails_the_trial_with_its_message(self, kit_sweep: KitSweep) -> None:
        from sweeper.history import load

        row = kit_sweep.row("fail")
        assert row["state"] == "failed"
        assert self.failure in row["error"]
        error_file = load(kit_sweep.result.sweep_dir).trial_dir(row.name) / ERROR_FILE
        assert self.failure in error_file.read_text(encoding="utf-8")

    @pytest.mark.slow
    def test_a_reused_actor_starts_clean(self, kit_sweep: KitSweep) -> None:
        self._needs("dirty", "check")
        dirty, check = kit_sweep.row("dirty"), kit_sweep.row("check")
        assert dirty["state"] == check["state"] == "completed", check["error"]
        assert dirty["actor_id"] == check["actor_id"], "the actor was not reused"
        assert check["metrics.leftover_env"] == 0.0, f"{LEFTOVER_VARIABLE} was left set"
        assert check["metrics.leftover_cwd"] == 0.0, "the working directory was left changed"

    @pytest.mark.slow
    def test_a_stopped_trial_ends_within_the_grace(self, kit_sweep: KitSweep) -> None:
        self._needs("run")
        assert kit_sweep.stop_requested is not None, "the run trial never reported"
        row = kit_sweep.row("run")
        assert row["state"] == "halted"
        assert f"sweeper: {row.name} stopped by sweeper" in kit_sweep.log("run")
        ended = datetime.fromisoformat(row["storing_at"]).timestamp()
        assert ended - kit_sweep.stop_requested < STOP_GRACE_S
