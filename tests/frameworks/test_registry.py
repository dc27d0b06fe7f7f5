"""Adapter lookup: built-ins, explicit registration and the ``sweeper.frameworks`` entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sweeper.errors import SpecError
from sweeper.frameworks import FrameworkAdapter, available, get_adapter_class, register
from sweeper.frameworks.python import PythonAdapter
from sweeper.frameworks.pytorch import PyTorchAdapter


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
    import sweeper.frameworks.registry as registry

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
