"""sweeper-sklearn's test: sweeper's conformance kit, and the check only this adapter makes.

Run it with the package installed (``pip install -e .``): ``pytest test_adapter.py``.
"""

from __future__ import annotations

import pytest
from sweeper_sklearn import SklearnAdapter

from sweeper import SpecError
from sweeper.frameworks.testing import AdapterTestSuite, Project


class TestSklearnAdapter(AdapterTestSuite):
    framework_module = "sklearn"

    @pytest.fixture(scope="class")
    def adapter_class(self) -> type[SklearnAdapter]:
        return SklearnAdapter

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory: pytest.TempPathFactory) -> Project:
        folder = tmp_path_factory.mktemp("sklearn")
        return Project.python_trainer(folder, sklearn={"threads": 1})

    def test_threads_must_fit_the_trial(self, adapter_class, project) -> None:
        many = Project(project.folder, {**project.keys, "sklearn": {"threads": 4}})
        with pytest.raises(SpecError) as caught:
            self.spec_for(adapter_class, many, ["report"])
        assert str(caught.value) == (
            "sklearn.threads must be at most resources.cpus (1), got 4 (kit spec: sklearn.threads)"
        )
