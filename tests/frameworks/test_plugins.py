"""Third-party adapters: a plug-in installed with an entry point, its own spec block, and the
conformance kit run on it as its author would (pytest in a process of its own); and the worked
example of README, ``examples/adapter``, installed with pip and its own test run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sweeper.errors import SpecError
from sweeper.frameworks import available, get_adapter_class
from sweeper.frameworks.testing import AdapterTestSuite
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "adapter"
KIT_TESTS = sum(name.startswith("test_") for name in dir(AdapterTestSuite))

TOY_FRAMEWORK = '''\
"""A stand-in for a framework: one global setting, as real frameworks have."""

greeting = "hello"
'''
TOY_ADAPTER = '''\
"""sweeper-toyfw: ``framework: toyfw``, with a ``toyfw: {greeting: ...}`` block."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from sweeper import TrialError
from sweeper.frameworks.python import PythonAdapter


class ToyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str = "hello"


class ToyAdapter(PythonAdapter):
    name: ClassVar[str] = "toyfw"
    extra: ClassVar[str | None] = "toyfw"
    options: ClassVar[type[BaseModel] | None] = ToyOptions

    def prepare(self, ctx):
        try:
            import toyfw
        except ImportError:
            raise TrialError('framework toyfw needs toyfw: pip install "sweeper-toyfw[toyfw]"')
        toyfw.greeting = self.spec.framework_options.greeting
        print(f"toyfw says {toyfw.greeting}", flush=True)
'''
TOY_TEST = """\
import pytest

from sweeper.frameworks.testing import STDOUT_LINE, AdapterTestSuite, Project
from sweeper_toyfw import ToyAdapter


class TestToyAdapter(AdapterTestSuite):
    framework_module = "toyfw"
    output = (STDOUT_LINE, "toyfw says hi")

    @pytest.fixture(scope="class")
    def adapter_class(self):
        return ToyAdapter

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory):
        return Project.python_trainer(tmp_path_factory.mktemp("toy"), toyfw={"greeting": "hi"})
"""


def install_toy(site: Path) -> Path:
    """``sweeper-toyfw`` as pip would install it into ``site``: modules and dist-info."""
    package = site / "sweeper_toyfw"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(TOY_ADAPTER)
    (site / "toyfw.py").write_text(TOY_FRAMEWORK)
    dist = site / "sweeper_toyfw-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sweeper-toyfw\nVersion: 1.0\n")
    entry_point = "[sweeper.frameworks]\ntoyfw = sweeper_toyfw:ToyAdapter\n"
    (dist / "entry_points.txt").write_text(entry_point)
    return site


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy plug-in installed for this process; returns its site folder."""
    site = install_toy(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    for module in ("sweeper_toyfw", "toyfw"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    return site


def toy_spec(tmp_path: Path, **keys: object) -> object:
    (tmp_path / "train.py").write_text("def train(params, ctx):\n    pass\n")
    data = {
        "name": "toy",
        "framework": "toyfw",
        "entrypoint": "train.py:train",
        "search": {"method": "grid", "metric": "score", "mode": "max"},
        **keys,
    }
    return parse_spec(data, file="experiment.yml", base_dir=tmp_path)


def test_a_plugin_is_listed_and_found_through_its_entry_point(toy: Path) -> None:
    assert "toyfw" in available()
    assert get_adapter_class("toyfw").__module__ == "sweeper_toyfw"


def test_a_plugin_block_is_validated_with_its_model(toy: Path, tmp_path: Path) -> None:
    spec = toy_spec(tmp_path, toyfw={"greeting": "hi"})
    assert spec.framework_options.greeting == "hi"
    assert spec.model_dump()["toyfw"] == {"greeting": "hi"}  # spec.yml keeps it


def test_a_plugin_block_may_be_left_out_when_its_model_has_defaults(toy, tmp_path) -> None:
    assert toy_spec(tmp_path).framework_options.greeting == "hello"


def test_an_unknown_key_in_a_plugin_block_is_an_error(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        toy_spec(tmp_path, toyfw={"greting": "hi"})
    assert str(caught.value) == (
        "toyfw keys must be one of greeting, got 'greting' (experiment.yml: toyfw.greting); "
        "did you mean 'greeting'?"
    )


def test_a_wrongly_typed_plugin_option_is_an_error(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        toy_spec(tmp_path, toyfw={"greeting": 3})
    assert str(caught.value) == (
        "toyfw.greeting must be a string, got 3 (experiment.yml: toyfw.greeting)"
    )


def test_a_plugin_block_under_another_framework_is_an_error(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        toy_spec(tmp_path, framework="python", toyfw={"greeting": "hi"})
    assert str(caught.value) == (
        "toyfw must not be set for framework python, got 'a toyfw block' "
        "(experiment.yml: toyfw); toyfw belongs to framework toyfw"
    )


def test_a_plugin_block_is_listed_among_the_keys_a_spec_may_have(toy, tmp_path) -> None:
    with pytest.raises(SpecError) as caught:
        toy_spec(tmp_path, toyf={"greeting": "hi"})
    message = str(caught.value)
    assert ", metrics, caffe, toyfw, parameters, " in message
    assert message.endswith("got 'toyf' (experiment.yml: toyf); did you mean 'toyfw'?")


def kit_run(test_file: Path, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """pytest on ``test_file`` in a process of its own, with ``site`` on its path (and its Ray
    workers'), as the plug-in's author runs it; the kit starts its own local Ray."""
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip


@pytest.mark.slow
def test_a_plugin_installed_through_an_entry_point_passes_the_kit(tmp_path: Path) -> None:
    site = install_toy(tmp_path / "site")
    project = tmp_path / "plugin"
    project.mkdir()
    (project / "test_toyfw.py").write_text(TOY_TEST)
    done = kit_run(project / "test_toyfw.py", site, project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(rf"^{KIT_TESTS} passed", done.stdout, re.M), done.stdout  # none skipped


@pytest.mark.slow
def test_the_example_adapter_installs_and_passes_its_own_test(tmp_path: Path) -> None:
    # A copy: building writes build/ and *.egg-info beside the sources.
    source = shutil.copytree(EXAMPLE, tmp_path / "adapter")
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    entry_points = next(site.glob("sweeper_sklearn-*.dist-info")) / "entry_points.txt"
    assert "sklearn = sweeper_sklearn:SklearnAdapter" in entry_points.read_text()
    done = kit_run(source / "test_adapter.py", site, source)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The kit's tests, none skipped, and its own.
    assert re.search(rf"^{KIT_TESTS + 1} passed", done.stdout, re.M), done.stdout
