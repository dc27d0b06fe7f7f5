"""The python adapter: the conformance kit, a returned mapping as the last report, and a
spec folder with a package of its own named ``frameworks``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sweeper.errors import SpecError
from sweeper.execution import run
from sweeper.frameworks.python import PythonAdapter
from sweeper.frameworks.testing import AdapterTestSuite, Project, trial_context
from sweeper.spec import parse_spec


class TestPythonAdapter(AdapterTestSuite):
    @pytest.fixture(scope="class")
    def adapter_class(self) -> type[PythonAdapter]:
        return PythonAdapter

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory: pytest.TempPathFactory) -> Project:
        return Project.python_trainer(tmp_path_factory.mktemp("python"))

    @pytest.fixture(scope="session")
    def ray_cluster(self, ray_session: object) -> None:
        """The test session's Ray (tests/conftest.py)."""


def test_a_returned_mapping_is_the_last_report(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "def train(params, ctx):\n    ctx.report(step=4, loss=1.0)\n    return {'score': 0.5}\n"
    )
    spec = parse_spec(
        {
            "name": "t",
            "framework": "python",
            "entrypoint": "train.py:train",
            "search": {"method": "grid", "metric": "score", "mode": "max"},
        },
        base_dir=tmp_path,
    )
    reports: list[dict] = []
    PythonAdapter(spec).run({}, trial_context(tmp_path, reporter=reports.append))
    assert [(r["step"], r.get("score")) for r in reports] == [(4, None), (5, 0.5)]


# A user's package named like sweeper's adapters once were: `frameworks`.
OWN_FRAMEWORKS = {
    "frameworks/__init__.py": "",
    "frameworks/mymodel.py": (
        "def train(params, ctx):\n    ctx.report(step=1, score=float(params['x']))\n"
    ),
}


def own_frameworks_spec(folder: Path, entrypoint: str = "frameworks.mymodel:train") -> object:
    for name, text in OWN_FRAMEWORKS.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    return parse_spec(
        {
            "name": "own-frameworks",
            "framework": "python",
            "entrypoint": entrypoint,
            "parameters": {"x": {"choice": [1, 2]}},
            "search": {"method": "grid", "metric": "score", "mode": "max"},
        },
        file="experiment.yml",
        base_dir=folder,
    )


def test_an_own_frameworks_package_is_found_whatever_this_process_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sweeper.frameworks

    # Another package of that name already imported here: the trial imports the spec's own.
    monkeypatch.setitem(sys.modules, "frameworks", sweeper.frameworks)
    with pytest.raises(SpecError) as caught:
        own_frameworks_spec(tmp_path, "frameworks.mymodel:trian")
    assert str(caught.value) == (
        "entrypoint function must be defined in frameworks.mymodel, got 'trian' "
        "(experiment.yml: entrypoint); did you mean 'train'?"
    )


@pytest.mark.usefixtures("ray_session")
def test_an_own_frameworks_package_runs_in_a_real_sweep(tmp_path: Path, settings) -> None:
    result = run(own_frameworks_spec(tmp_path), settings, echo=None)
    frame = result.results.set_index("params.x")
    assert list(frame["state"]) == ["completed", "completed"], frame["error"]
    assert frame.loc[2, "score"] == 2.0
