"""What the spec tests share: a project folder with a training file, and a spec file written
there, loaded as ``sweeper run`` loads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.errors import SpecError
from sweeper.spec import Spec, load_spec


class SpecFile:
    """``experiment.yml`` in the project folder: :meth:`load` it, or the :meth:`error` it
    gives."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load(self, text: str) -> Spec:
        (self.folder / "experiment.yml").write_text(text, encoding="utf-8")
        return load_spec("experiment.yml")

    def error(self, text: str) -> str:
        with pytest.raises(SpecError) as caught:
            self.load(text)
        return str(caught.value)


@pytest.fixture
def project(in_tmp: Path) -> Path:
    """The working directory, with ``train.py:train``."""
    (in_tmp / "train.py").write_text("def train(params, ctx):\n    pass\n", encoding="utf-8")
    return in_tmp


@pytest.fixture
def spec_file(project: Path) -> SpecFile:
    return SpecFile(project)
