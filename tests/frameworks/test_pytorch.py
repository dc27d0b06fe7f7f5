"""The PyTorch adapter: the conformance kit, the digits example sweep end to end through the
CLI, seeding, and its errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sweeper.errors import TrialError
from sweeper.frameworks.context import TrialContext
from sweeper.frameworks.pytorch import PyTorchAdapter
from sweeper.frameworks.testing import AdapterTestSuite, Project, trial_context
from sweeper.spec import load_spec

pytestmark = pytest.mark.pytorch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "configs/digits-pytorch.yml"


class TestPyTorchAdapter(AdapterTestSuite):
    framework_module = "torch"

    @pytest.fixture(scope="class")
    def adapter_class(self) -> type[PyTorchAdapter]:
        return PyTorchAdapter

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory: pytest.TempPathFactory) -> Project:
        return Project.python_trainer(tmp_path_factory.mktemp("pytorch"))

    @pytest.fixture(scope="session")
    def ray_cluster(self, ray_session: object) -> None:
        """The test session's Ray (tests/conftest.py)."""


def make_ctx(folder: Path, seed: int | None = None, reporter=lambda result: None) -> TrialContext:
    """A trial context for calling an adapter directly, outside Ray."""
    return trial_context(folder, seed=seed, metric="acc", reporter=reporter)


@pytest.mark.slow
def test_example_sweep_trains_real_models_and_mlflow_has_parent_and_children(run_example):
    example = run_example(EXAMPLE, "val_accuracy")
    epochs = example.spec.constants["epochs"]
    for trial in example.results["trial"]:
        assert (example.sweep_dir / "trials" / trial / "output" / "model.pt").stat().st_size > 0
    for name in ("lr", "hidden", "dropout", "epochs"):
        assert example.children[f"params.{name}"].notna().all()
    run_id = example.children["run_id"].iloc[0]
    history = example.client.get_metric_history(run_id, "val_accuracy")
    assert sorted(m.step for m in history) == list(range(1, epochs + 1))


@pytest.mark.slow
def test_the_pareto_example_has_a_conditional_optimizer_and_a_feasible_front(run_example):
    example = run_example("configs/digits-pytorch-pareto.yml", "val_accuracy")
    frame = example.results
    sgd = frame["params.optimizer"] == "sgd"
    assert sgd.any() and (~sgd).any()
    assert frame.loc[sgd, "params.momentum"].notna().all()
    assert frame.loc[~sgd, "params.momentum"].isna().all()  # never given to adam trials
    front = frame[frame["pareto"]]
    assert len(front) >= 1 and front["feasible"].all()
    assert (front["metrics.latency_ms"] < 50).all()


@pytest.mark.slow
def test_the_pbt_example_copies_models_between_trials(run_example):
    import json

    example = run_example("configs/digits-pytorch-pbt.yml", "val_accuracy")
    assert "copied trial-" in example.stdout
    lines = (example.sweep_dir / "trials.jsonl").read_text().splitlines()
    exploits = [json.loads(line) for line in lines if '"event": "exploit"' in line]
    assert exploits
    for entry in exploits:
        run = example.client.get_run(
            example.children.set_index("tags.sweeper.trial").loc[entry["name"], "run_id"]
        )
        assert run.data.tags["sweeper.pbt.copied_from"].startswith("trial-")
    assert set(example.results["steps"]) == {example.spec.constants["epochs"]}


def test_missing_torch_names_the_extra_to_install(tmp_path, monkeypatch, write_spec, in_tmp):
    (tmp_path / "train.py").write_text("def train(params, ctx):\n    pass\n")
    spec = load_spec(
        write_spec(
            "name: t\nframework: pytorch\nentrypoint: train.py:train\n"
            "search: {method: grid, metric: acc, mode: max}\n"
        )
    )
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(TrialError) as caught:
        PyTorchAdapter(spec).run({}, make_ctx(tmp_path))
    assert str(caught.value) == (
        'framework pytorch needs PyTorch; install it with: pip install "sweeper[pytorch]"'
    )


def test_trial_is_seeded_from_the_search_seed(tmp_path, write_spec, in_tmp):
    import torch

    (tmp_path / "train.py").write_text(
        "import torch\ndef train(params, ctx):\n    ctx.report(step=1, acc=float(torch.rand(1)))\n"
    )
    spec = load_spec(
        write_spec(
            "name: t\nframework: pytorch\nentrypoint: train.py:train\n"
            "search: {method: grid, metric: acc, mode: max, seed: 3}\n"
        )
    )
    reports: list[dict] = []
    PyTorchAdapter(spec).run({}, make_ctx(tmp_path, seed=4, reporter=reports.append))
    PyTorchAdapter(spec).run({}, make_ctx(tmp_path, seed=4, reporter=reports.append))
    assert reports[0]["acc"] == reports[1]["acc"]
    assert torch.get_num_threads() == 1


@pytest.mark.slow
def test_asha_stops_real_digits_trials_early_and_spends_far_fewer_epochs(tmp_path):
    import os
    import subprocess

    import mlflow
    import pandas as pd

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        **os.environ,
        "SWEEPER_MLFLOW_TRACKING_URI": uri,
        "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
        "SWEEPER_RAY_NUM_CPUS": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "run", "configs/digits-pytorch-asha.yml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (sweep_dir,) = (tmp_path / "results").iterdir()
    frame = pd.read_csv(sweep_dir / "results.csv")
    assert len(frame) == 27
    assert set(frame["state"]) == {"completed", "stopped"}
    stopped = frame[frame["state"] == "stopped"]
    assert len(stopped) >= 10
    # Running all 27 configurations for 27 epochs costs 729 epochs; ASHA far fewer.
    assert frame["steps"].sum() <= 0.5 * 27 * 27
    assert frame["val_accuracy"].max() >= 0.95
    best = frame.loc[frame["val_accuracy"].idxmax()]
    assert best["state"] == "completed" and best["steps"] == 27
    for trial in stopped["trial"]:
        log = (sweep_dir / "trials" / trial / "trial.log").read_text()
        assert f"sweeper: {trial} stopped by sweeper" in log  # its training loop ended there
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["digits-pytorch-asha"])
    children = runs[runs["tags.mlflow.parentRunId"].notna()].set_index("tags.mlflow.runName")
    assert set(children["status"]) == {"FINISHED"}
    assert set(children.loc[stopped["trial"], "tags.sweeper.state"]) == {"stopped"}
