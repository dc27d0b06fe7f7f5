"""A process-style plug-in written as a stranger would, from sweeper's public API alone: it runs a
Python program of the spec's in a child process with ``sweeper.frameworks.TrialProcess``, reads
its metrics lines, and passes the conformance kit."""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

import sweeper.frameworks.registry as registry
from sweeper import FrameworkAdapter, SpecError, TrialContext, TrialError
from sweeper.frameworks import (
    TrialProcess,
    child_environment,
    parse_metrics_line,
    register,
)
from sweeper.frameworks.testing import FAILURE, AdapterTestSuite, Project


class ChildOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program: str


class ChildProgramAdapter(FrameworkAdapter):
    """``framework: childprog``: ``childprog: {program: train.py}`` runs in a process of its own,
    with the trial's parameters in ``config.json`` and metrics as metrics lines."""

    name: ClassVar[str] = "childprog"
    uses: ClassVar[frozenset[str]] = frozenset()
    requires: ClassVar[frozenset[str]] = frozenset()
    options: ClassVar[type[BaseModel] | None] = ChildOptions

    def program(self) -> Path:
        return self.spec.base_dir / self.spec.framework_options.program

    def validate(self) -> None:
        if not self.program().is_file():
            raise SpecError(
                f"childprog.program must be a file, got {self.spec.framework_options.program!r}",
                file=self.spec.label,
                field="childprog.program",
            )

    def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
        work = ctx.trial_dir / "work"
        work.mkdir(exist_ok=True)
        (work / "config.json").write_text(json.dumps(params), encoding="utf-8")
        env = child_environment({"RESULT_DIR": str(ctx.output_dir)})

        def on_line(line: str) -> None:
            metrics = parse_metrics_line(line)
            if metrics is not None:
                ctx.report(**metrics)  # SystemExit here stops the program

        process = TrialProcess(
            [sys.executable, str(self.program())], cwd=work, env=env, log_path=ctx.log_path
        )
        status = process.run(on_line)
        if status != 0:
            raise TrialError(f"childprog exited with status {status}")


class TestChildProgramAdapter(AdapterTestSuite):
    failure = "childprog exited with status 1"

    @pytest.fixture(scope="class")
    def adapter_class(self) -> Iterator[type[ChildProgramAdapter]]:
        yield register(ChildProgramAdapter)
        # Registered for this class only: the tests of other modules list the frameworks.
        registry._REGISTERED.pop(ChildProgramAdapter.name, None)

    @pytest.mark.slow
    def test_a_raised_error_fails_the_trial_with_its_message(self, kit_sweep) -> None:
        super().test_a_raised_error_fails_the_trial_with_its_message(kit_sweep)
        assert FAILURE in kit_sweep.row("fail")["error"]  # the log's last lines come with it

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory: pytest.TempPathFactory) -> Project:
        folder = tmp_path_factory.mktemp("childprog")
        return Project.python_program(folder, childprog={"program": "kit_train.py"})

    @pytest.fixture(scope="session")
    def ray_cluster(self, ray_session: object) -> None:
        """The test session's Ray (tests/conftest.py)."""

    def test_a_missing_program_is_a_spec_error(self, adapter_class, project) -> None:
        missing = Project(project.folder, {"childprog": {"program": "gone.py"}})
        with pytest.raises(SpecError) as caught:
            self.spec_for(adapter_class, missing, ["report"])
        assert str(caught.value) == (
            "childprog.program must be a file, got 'gone.py' (kit spec: childprog.program)"
        )


def test_the_plugin_imports_only_public_names_of_sweeper() -> None:
    """What this module imports from sweeper is public: no ``_private`` module or name."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    imported = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sweeper")
        for alias in node.names
    ]
    assert imported
    for module, name in imported:
        assert not any(part.startswith("_") for part in (module or "").split(".")), module
        assert not name.startswith("_"), name
