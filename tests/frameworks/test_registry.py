"""Adapter lookup: built-ins, explicit registration (in the driver, and in the trials of a real
sweep) and the ``sweeper.frameworks`` entry points."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import sweeper.frameworks.registry as registry
from sweeper.errors import SpecError
from sweeper.execution import run
from sweeper.frameworks import FrameworkAdapter, available, get_adapter_class, register
from sweeper.frameworks.python import PythonAdapter
from sweeper.frameworks.pytorch import PyTorchAdapter
from sweeper.spec import parse_spec

TRAIN = "def train(params, ctx):\n    ctx.report(step=1, score=float(params['x']))\n"


class Registered(PythonAdapter):
    """An adapter only this test module knows; its trials say which adapter ran them."""

    name = "registered-here"

    def prepare(self, ctx) -> None:
        (ctx.output_dir / "adapter").write_text(f"{type(self).__module__}.{type(self).__name__}")


def test_builtins_are_listed_without_importing_their_framework():
    assert {"python", "pytorch"} <= set(available())
    assert get_adapter_class("python") is PythonAdapter
    assert get_adapter_class("pytorch") is PyTorchAdapter


def test_unknown_framework_names_the_field_and_suggests():
    with pytest.raises(SpecError) as caught:
        get_adapter_class("pytorh", file="experiment.yml")
    assert str(caught.value).startswith("framework must be one of ")
    assert str(caught.value).endswith(
        ", got 'pytorh' (experiment.yml: framework); did you mean 'pytorch'?"
    )


def test_register_adds_an_adapter(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTERED", {})

    @register
    class Jax(FrameworkAdapter):
        name = "jax"

        def validate(self) -> None: ...

        def run(self, params, ctx) -> None: ...

    assert "jax" in available()
    assert get_adapter_class("jax") is Jax


def test_third_party_adapter_is_found_through_its_entry_point(tmp_path: Path, monkeypatch):
    """An installed distribution that declares ``[sweeper.frameworks]`` is picked up."""
    (tmp_path / "sweeper_mxnet.py").write_text(
        "from sweeper.frameworks.python import PythonAdapter\n"
        "class MXNetAdapter(PythonAdapter):\n"
        "    name = 'mxnet'\n"
    )
    dist = tmp_path / "sweeper_mxnet-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sweeper-mxnet\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[sweeper.frameworks]\nmxnet = sweeper_mxnet:MXNetAdapter\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sweeper_mxnet", raising=False)
    assert "mxnet" in available()
    assert get_adapter_class("mxnet").__name__ == "MXNetAdapter"


def sweep_with(adapter: type[FrameworkAdapter], folder: Path, settings) -> list[str]:
    """Run a two-trial sweep of ``adapter`` (registered first); what its trials' adapters were."""
    (folder / "train.py").write_text(TRAIN)
    register(adapter)
    spec = parse_spec(
        {
            "name": "registered",
            "framework": adapter.name,
            "entrypoint": "train.py:train",
            "parameters": {"x": {"choice": [1, 2]}},
            "search": {"method": "grid", "metric": "score", "mode": "max"},
        },
        base_dir=folder,
    )
    result = run(spec, settings, echo=None)
    assert list(result.results["state"]) == ["completed", "completed"], result.results["error"]
    return [
        (result.sweep_dir / "trials" / trial / "output" / "adapter").read_text()
        for trial in result.results["trial"]
    ]


@pytest.mark.usefixtures("ray_session")
def test_a_registered_adapter_runs_the_trials_of_a_real_sweep(tmp_path, settings, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTERED", {})
    ran = sweep_with(Registered, tmp_path, settings)
    assert ran == [f"{Registered.__module__}.Registered"] * 2


@pytest.mark.usefixtures("ray_session")
def test_an_adapter_from_a_module_workers_cannot_import_runs_too(tmp_path, settings, monkeypatch):
    # As from a notebook or a script's helper module: registered here, importable nowhere else.
    source = tmp_path / "elsewhere" / "only_here.py"
    source.parent.mkdir()
    source.write_text(
        "from sweeper.frameworks.python import PythonAdapter\n"
        "class OnlyHere(PythonAdapter):\n"
        "    name = 'only-here'\n"
        "    def prepare(self, ctx):\n"
        "        (ctx.output_dir / 'adapter').write_text(type(self).__name__)\n"
    )
    loader = importlib.util.spec_from_file_location("only_here", source)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    monkeypatch.setitem(sys.modules, "only_here", module)
    loader.loader.exec_module(module)
    monkeypatch.setattr(registry, "_REGISTERED", {})
    assert sweep_with(module.OnlyHere, tmp_path, settings) == ["OnlyHere"] * 2
