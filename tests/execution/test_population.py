"""Population-based training (``schedule: {method: pbt}``) through real sweeps on the
session's Ray: exploits copy a better trial's checkpoint and parameters, the step count goes
on, MLflow shows each trial's parameter history, and a halted sweep resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pytest

from sweeper.execution._sweep import resume, run
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
CODE = "tests/_code/trainables.py"
STEPS = 12

pytestmark = pytest.mark.usefixtures("ray_session")


def make_spec(method: str = "pbt", **constants: Any):
    mutations = {"lr": {"loguniform": [0.01, 3.0]}}
    return parse_spec(
        {
            "name": "population",
            "framework": "python",
            "entrypoint": f"{CODE}:population",
            "search": {"method": "grid", "metric": "score", "mode": "max", "concurrency": 4},
            "parameters": {"lr": {"choice": [0.1, 0.2, 1.0, 2.0]}, "steps": STEPS, **constants},
            "schedule": {"method": method, "perturbation_interval": 3, "mutations": mutations},
        },
        base_dir=ROOT,
    )


def history(result, trial: str) -> list[list[Any]]:
    """[trial whose state it was, step, lr] for every step the trial's final state ran."""
    path = result.sweep_dir / "trials" / trial / "output" / "history.json"
    return json.loads(path.read_text())


def journal_lineage(result, trial: str) -> list[dict[str, Any]]:
    lines = (result.sweep_dir / "trials.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    return [e for e in entries if e["name"] == trial][-1]["lineage"]


def check_exploits(result) -> list[str]:
    frame = result.results
    assert set(frame["state"]) == {"completed"}, frame["error"].tolist()
    exploited = []
    mlflow.set_tracking_uri(result.tracking_uri)
    client = mlflow.MlflowClient()
    for row in frame.to_dict("records"):
        steps = history(result, row["trial"])
        # Every step from 1 to the end ran exactly once in the state the trial ended with,
        # whoever ran the earlier ones: the count went on across exploits.
        assert [s for _, s, _ in steps] == list(range(1, STEPS + 1)), row["trial"]
        assert row["steps"] == STEPS and row["attempts"] == 1  # a pause is not a retry
        lineage = journal_lineage(result, row["trial"])
        lrs = [lr for _, _, lr in steps]
        assert all(0.01 <= lr <= 3.0 for lr in lrs)  # mutations stay in their bounds
        if not lineage:
            assert {owner for owner, _, _ in steps} == {row["trial"]}
            continue
        exploited.append(row["trial"])
        last = lineage[-1]
        assert row["params.lr"] == pytest.approx(last["params"]["lr"])
        run = client.get_run(row["mlflow_run_id"])
        assert run.data.tags["sweeper.pbt.copied_from"] == last["from"]
        assert run.data.tags["sweeper.pbt.exploits"] == str(len(lineage))
        assert json.loads(run.data.tags["sweeper.pbt.history"]) == lineage
        # MLflow's metric pbt.lr: the new lr at each exploit's step.
        changes = client.get_metric_history(row["mlflow_run_id"], "pbt.lr")
        logged = {(m.step, round(m.value, 9)) for m in changes}
        assert changes and logged <= {(e["step"], round(e["params"]["lr"], 9)) for e in lineage}
        # The steps after the last exploit ran with the new lr, in this trial.
        after = [entry for entry in steps if entry[1] > last["step"]]
        assert all(lr == pytest.approx(last["params"]["lr"]) for _, _, lr in after)
        assert all(owner == row["trial"] for owner, _, _ in after)
        # Up to the exploit, the state was another trial's: the checkpoint was copied.
        assert any(owner != row["trial"] for owner, step, _ in steps if step <= last["step"])
    return exploited


def test_pbt_copies_better_trials_and_their_step_count_goes_on(settings):
    result = run(make_spec(), settings, echo=None)
    assert check_exploits(result)  # at least one exploit happened


def test_a_halted_pbt_sweep_resumes_from_each_trials_own_state(settings):
    halted = run(make_spec(halt_at=7, sleep=0.3), settings, echo=None)
    assert halted.status == "halted"
    frame = halted.results.set_index("trial")
    stopped = list(frame.index[frame["state"] == "halted"])
    assert stopped

    def starts(trial: str) -> list[dict[str, Any]]:
        # Each run of the trial's function: its attempt, the step it started from, its lr.
        path = halted.sweep_dir / "trials" / trial / "output" / "starts.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    runs_before = {trial: len(starts(trial)) for trial in stopped}
    done = resume(halted.sweep_dir, settings, echo=None)
    assert done.status == "completed"
    for trial in stopped:
        steps = history(done, trial)
        assert [s for _, s, _ in steps] == list(range(1, STEPS + 1)), trial
        # The resumed run started from the trial's own last saved state (at the step it was
        # halted at, or the one it saved as the halt came), with its latest parameters (its
        # last exploit's, if any: the results row's).
        resumed = starts(trial)[runs_before[trial]]
        assert resumed["step"] >= frame.loc[trial, "steps"] > 0
        assert resumed["lr"] == pytest.approx(frame.loc[trial, "params.lr"])


@pytest.mark.pbt
def test_pb2_picks_new_values_within_the_bounds(settings):
    result = run(make_spec("pb2"), settings, echo=None)
    assert check_exploits(result)
