"""Real sweeps (the session's Ray, MLflow) over conditional spaces, several objectives and
constraints: what each trial sees, the ``pareto`` and ``feasible`` columns, MLflow's runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from sweeper.execution._sweep import run
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
CODE = "tests/_code/trainables.py"

pytestmark = pytest.mark.usefixtures("ray_session")

CONDITIONAL = {
    "optimizer": {"choice": ["adam", "sgd"]},
    "momentum": {"choice": [0.5, 0.9], "when": {"optimizer": "sgd"}},
    "nesterov": {"choice": [True, False], "when": {"momentum": 0.9}},
    "lr": {"choice": [0.1, 0.01]},
}


def make_spec(function: str, search: dict[str, Any], parameters: dict[str, Any], **extra: Any):
    data = {
        "name": "search-kinds",
        "framework": "python",
        "entrypoint": f"{CODE}:{function}",
        "search": search,
        "parameters": parameters,
        **extra,
    }
    return parse_spec(data, base_dir=ROOT)


def runs_of(result) -> pd.DataFrame:
    mlflow.set_tracking_uri(result.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["search-kinds"])
    return runs


def expected_keys(params: dict[str, Any]) -> list[str]:
    """The parameters active for a trial's values, by the rule the spec states."""
    keys = ["optimizer", "lr"]
    if params["optimizer"] == "sgd":
        keys.append("momentum")
        if params["momentum"] == 0.9:
            keys.append("nesterov")
    return sorted(keys)


def check_trials_saw_only_active_parameters(result) -> list[dict[str, Any]]:
    seen = []
    runs = runs_of(result)
    children = runs[runs["tags.mlflow.parentRunId"] == result.parent_run_id]
    for row in result.results.to_dict("records"):
        folder = result.sweep_dir / "trials" / row["trial"]
        params = json.loads((folder / "params.json").read_text())
        names = json.loads((folder / "output" / "seen.json").read_text())
        assert names == sorted(params) == expected_keys(params), row["trial"]
        # The results row and the MLflow child run lack the inactive ones (not None).
        for name in CONDITIONAL:
            assert pd.isna(row[f"params.{name}"]) == (name not in params)
        child = children[children["tags.sweeper.trial"] == row["trial"]].iloc[0]
        logged = {c.removeprefix("params.") for c in children if c.startswith("params.")}
        logged = {name for name in logged if isinstance(child[f"params.{name}"], str)}
        assert logged == set(params), row["trial"]
        seen.append(params)
    return seen


def test_a_conditional_grid_runs_each_valid_combination_once(settings):
    spec = make_spec(
        "conditional", {"method": "grid", "metric": "score", "mode": "max"}, CONDITIONAL
    )
    assert spec.trial_count() == 8  # adam x 2 lr; sgd x 0.5 x 2 lr; sgd x 0.9 x 2 x 2 lr
    result = run(spec, settings, echo=None)
    assert set(result.results["state"]) == {"completed"}
    seen = check_trials_saw_only_active_parameters(result)
    assert len({json.dumps(p, sort_keys=True) for p in seen}) == 8
    assert result.best["params.nesterov"] == True  # noqa: E712 (a numpy bool)


def test_a_conditional_optuna_sweep_never_shows_a_trial_an_inactive_parameter(settings):
    search = {"method": "optuna", "metric": "score", "mode": "max", "trials": 14, "seed": 3}
    spec = make_spec("conditional", {**search, "concurrency": 2}, CONDITIONAL)
    result = run(spec, settings, echo=None)
    assert set(result.results["state"]) == {"completed"}
    seen = check_trials_saw_only_active_parameters(result)
    assert {p["optimizer"] for p in seen} == {"adam", "sgd"}
    # Optuna's study holds only what was suggested: its trials' distributions are the
    # active parameters (define-by-run), not a flat space with ignored values.
    import optuna

    from sweeper.search._optuna import TRIAL_ATTR, _storage

    study = optuna.load_study(study_name=result.sweep, storage=_storage(result.sweep_dir))
    for trial in study.trials:
        assert sorted(trial.distributions) == expected_keys(trial.params)
        assert trial.user_attrs[TRIAL_ATTR] in set(result.results["trial"])


def test_a_conditional_random_search_draws_active_parameters_only(settings):
    search = {"method": "random", "metric": "score", "mode": "max", "trials": 10, "seed": 5}
    result = run(make_spec("conditional", search, CONDITIONAL), settings, echo=None)
    seen = check_trials_saw_only_active_parameters(result)
    assert any("nesterov" in p for p in seen) and any("momentum" not in p for p in seen)


def non_dominated(frame: pd.DataFrame) -> set[str]:
    """Brute force: completed trials no other completed trial beats on both (max accuracy,
    min size_m)."""
    rows = frame[frame["state"] == "completed"].to_dict("records")
    front = set()
    for a in rows:
        beaten = any(
            b["accuracy"] >= a["accuracy"]
            and b["size_m"] <= a["size_m"]
            and (b["accuracy"] > a["accuracy"] or b["size_m"] < a["size_m"])
            for b in rows
        )
        if not beaten:
            front.add(a["trial"])
    return front


TWO = {
    "method": "optuna",
    "sampler": "nsgaii",
    "metrics": [{"name": "accuracy", "mode": "max"}, {"name": "size_m", "mode": "min"}],
    "trials": 16,
    "seed": 11,
    "concurrency": 2,
}
XY = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}}


def test_a_two_objective_nsga2_sweep_marks_its_pareto_front(settings):
    said: list[str] = []
    result = run(make_spec("two_objectives", TWO, XY), settings, echo=said.append)
    lines = "\n".join(said).splitlines()
    frame = result.results
    assert set(frame["state"]) == {"completed"}
    # Each objective was carried to the trial's end, though reported at different steps.
    assert frame["accuracy"].notna().all() and frame["size_m"].notna().all()
    front = set(frame.loc[frame["pareto"], "trial"])
    assert front == non_dominated(frame) and len(front) >= 2
    assert set(result.pareto["trial"]) == front
    # results.csv has the column; the end-of-run summary lists the front, not one best.
    saved = pd.read_csv(result.sweep_dir / "results.csv")
    assert set(saved.loc[saved["pareto"], "trial"]) == front
    at = lines.index(next(line for line in lines if line.startswith("Pareto front")))
    assert lines[at] == f"Pareto front ({len(front)} trials; max accuracy, min size_m):"
    table = lines[at + 2 : at + 2 + len(front)]  # after the table's header
    assert {line.split()[0] for line in table} == front
    assert not any(line.startswith("best trials") for line in lines)
    # The parent run names the front; Optuna's study has both directions and every value.
    runs = runs_of(result)
    parent = runs[runs["run_id"] == result.parent_run_id].iloc[0]
    assert set(parent["tags.sweeper.pareto_trials"].split(",")) == front
    assert parent["tags.sweeper.objectives"] == "accuracy:max,size_m:min"
    assert parent["metrics.sweep/pareto_trials"] == len(front)
    import optuna

    from sweeper.search._optuna import TRIAL_ATTR, _storage

    study = optuna.load_study(study_name=result.sweep, storage=_storage(result.sweep_dir))
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    by_name = {t.user_attrs[TRIAL_ATTR]: t.values for t in study.trials}
    for row in frame.to_dict("records"):
        assert by_name[row["trial"]] == pytest.approx([row["accuracy"], row["size_m"]])
    assert {t.user_attrs[TRIAL_ATTR] for t in study.best_trials} == front

    # `sweeper show` lists the front, read back from the sweep's folder.
    from click.testing import CliRunner

    from sweeper.cli import main

    shown = CliRunner().invoke(main, ["show", str(result.sweep_dir), "--top", "50"])
    assert shown.exit_code == 0, shown.output
    out = shown.stdout.splitlines()
    assert out[0].endswith(", max accuracy, min size_m")
    assert f"Pareto front: {len(front)} of 16 trials, by accuracy:" in out
    listed = [line.split()[1] for line in out if line[:1].isdigit() and ". trial-" in line]
    assert set(listed) == front
    accuracies = [float(frame.set_index("trial").loc[name, "accuracy"]) for name in listed]
    assert accuracies == sorted(accuracies, reverse=True)

    # `sweeper list` gives the front's size where a single objective has its best.
    env = {"SWEEPER_RESULTS_DIR": str(settings.results.dir)}
    listed_sweeps = CliRunner().invoke(main, ["list"], env=env)
    assert listed_sweeps.exit_code == 0, listed_sweeps.output
    assert f"Pareto front of {len(front)}" in listed_sweeps.stdout

    # `sweeper plot` adds Optuna's Pareto-front plot.
    from sweeper.plots import plot_sweep

    written = plot_sweep(result.sweep_dir, log_to_mlflow=False, echo=None)
    assert {p.name for p in written} >= {"pareto_front.png", "pareto_front.html"}
    html = (result.sweep_dir / "plots" / "pareto_front.html").read_text()
    assert "size_m" in html and "accuracy" in html


def test_a_constrained_sweep_never_calls_an_infeasible_trial_best(settings):
    search = {
        "method": "optuna",
        "metric": "accuracy",
        "mode": "max",
        "trials": 16,
        "seed": 2,
        "constraints": ["size_m <= 6", "latency < 10"],
    }
    result = run(make_spec("two_objectives", search, XY), settings, echo=None)
    frame = result.results
    expected = (frame["metrics.size_m"] <= 6) & (frame["metrics.latency"] < 10)
    assert list(frame["feasible"]) == list(expected)
    assert expected.any() and not expected.all()  # both kinds happened
    best = result.best
    assert best["feasible"] and best["accuracy"] == frame.loc[expected, "accuracy"].max()
    # A better but infeasible trial exists and is passed over.
    assert frame.loc[~expected, "accuracy"].max() > best["accuracy"]
    runs = runs_of(result)
    children = runs[runs["tags.mlflow.parentRunId"] == result.parent_run_id]
    tags = dict(zip(children["tags.sweeper.trial"], children["tags.sweeper.feasible"], strict=True))
    assert tags == {t: str(f).lower() for t, f in zip(frame["trial"], expected, strict=True)}
    # Optuna's study holds each trial's constraint values, where its samplers read them.
    import optuna

    from sweeper.search._optuna import _storage

    study = optuna.load_study(study_name=result.sweep, storage=_storage(result.sweep_dir))
    for trial in study.trials:
        row = frame[frame["trial"] == trial.user_attrs["sweeper_trial"]].iloc[0]
        assert trial.constraints == pytest.approx(
            {"size_m <= 6": row["metrics.size_m"] - 6, "latency < 10": row["metrics.latency"] - 10}
        )


def test_a_trial_that_never_reports_a_constrained_metric_fails(settings):
    search = {
        "method": "random",
        "metric": "score",
        "mode": "max",
        "trials": 1,
        "constraints": ["memory_gb <= 4"],
    }
    result = run(
        make_spec("forgets_a_metric", search, {"x": {"uniform": [0, 1]}}), settings, echo=None
    )
    row = result.results.iloc[0]
    assert row["state"] == "failed"
    assert (
        "search.constraints needs metric 'memory_gb' ('memory_gb <= 4'), which trial-0001 never "
        "reported; report it with ctx.report(memory_gb=...) or fix the constraint"
    ) in row["error"]


def test_early_stopping_judges_the_objective_it_names(settings):
    search = {
        "method": "grid",
        "metrics": [{"name": "size", "mode": "min"}, {"name": "score", "mode": "max"}],
        "concurrency": 1,
    }
    # Each trial is worse on score than the one before it: ASHA, on score, stops the late ones
    # (on size, the first objective, it would stop none: each is better than the last).
    parameters = {"x": {"choice": [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]}}
    rule = {"method": "asha", "max_steps": 4, "grace_period": 1, "reduction_factor": 2}
    spec = make_spec("curves", search, parameters, early_stopping={**rule, "metric": "score"})
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("trial")
    stopped = list(frame.index[frame["state"] == "stopped"])
    assert stopped and frame.loc["trial-0001", "state"] == "completed"
    assert all(frame.loc[t, "steps"] < 4 for t in stopped)
    assert not frame.loc[stopped, "pareto"].any()  # a stopped trial is not on the front
