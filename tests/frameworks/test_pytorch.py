"""The PyTorch adapter: the digits example sweep end to end through the CLI, and its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from frameworks.context import TrialContext
from frameworks.pytorch import PyTorchAdapter
from sweeper.errors import SweeperError
from sweeper.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "configs/digits-pytorch.yml"


def make_ctx(folder: Path, seed: int | None = None, reporter=lambda result: None) -> TrialContext:
    """A trial context for calling an adapter directly, outside Ray."""
    return TrialContext(
        params={},
        trial="trial-0001",
        sweep="t",
        output_dir=folder,
        checkpoint_dir=folder,
        data_dir=None,
        gpu_ids=[],
        seed=seed,
        metric="acc",
        reporter=reporter,
    )


@pytest.mark.slow
def test_example_sweep_trains_real_models_and_mlflow_has_parent_and_children(tmp_path: Path):
    env = {
        **os.environ,
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
        "SWEEPER_RAY_NUM_CPUS": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "run", EXAMPLE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "best trials:" in done.stdout
    assert "Traceback" not in done.stderr

    spec = load_spec(ROOT / EXAMPLE)
    trials = spec.trial_count()
    epochs = spec.constants["epochs"]
    (sweep_dir,) = (tmp_path / "results").iterdir()
    results = pd.read_csv(sweep_dir / "results.csv")
    assert len(results) == trials
    assert set(results["state"]) == {"completed"}
    assert results["val_accuracy"].max() >= 0.95
    for trial in results["trial"]:
        assert (sweep_dir / "trials" / trial / "output" / "model.pt").stat().st_size > 0

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[spec.name])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1
    parent_id = parents["run_id"].iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == parent_id]
    assert len(children) == trials
    assert set(children["status"]) == {"FINISHED"}
    for name in ("lr", "hidden", "dropout", "epochs"):
        assert children[f"params.{name}"].notna().all()
    assert children["metrics.val_accuracy"].max() >= 0.95
    client = mlflow.MlflowClient()
    history = client.get_metric_history(children["run_id"].iloc[0], "val_accuracy")
    assert sorted(m.step for m in history) == list(range(1, epochs + 1))
    best = client.get_run(parent_id).data.metrics["best_val_accuracy"]
    assert best == pytest.approx(results["val_accuracy"].max())


def test_missing_torch_names_the_extra_to_install(tmp_path, monkeypatch, write_spec, in_tmp):
    (tmp_path / "train.py").write_text("def train(params, ctx):\n    pass\n")
    spec = load_spec(
        write_spec(
            "name: t\nframework: pytorch\nentrypoint: train.py:train\n"
            "search: {method: grid, metric: acc, mode: max}\n"
        )
    )
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(SweeperError) as caught:
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
