"""Earlier trials in a new space, Ray-free: which carry over, the points of a sweep that grows,
and the Optuna study they seed (with what a crash leaves in it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from sweeper._journal import TrialRecord
from sweeper.search import carry, grown_points, seed_study, study_name, sweep_points
from sweeper.search._optuna import INITIAL_ATTR, SEED_ATTR, open_study, space_key
from sweeper.search._seeds import point_key
from sweeper.search._space import random_points
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]


def spec(method: str = "optuna", parameters: dict[str, Any] | None = None, **search: Any):
    data = {
        "name": "seeds",
        "framework": "python",
        "entrypoint": "tests/_code/trainables.py:quadratic",
        "parameters": parameters or {"x": {"uniform": [0.0, 4.0]}, "k": {"choice": [1, 2]}},
        "search": {"method": method, "metric": "score", "mode": "max", **search},
    }
    if method != "grid":
        data["search"].setdefault("trials", 4)
    return parse_spec(data, base_dir=ROOT)


def record(name: str, state: str, x: float, k: int = 1, **metrics: float) -> TrialRecord:
    return TrialRecord(name, {"x": x, "k": k}, state=state, metrics=dict(metrics), steps=3)


RECORDS = [
    record("trial-0001", "completed", 1.0, score=-1.0),
    record("trial-0002", "stopped", 2.0, score=-3.0),
    record("trial-0003", "failed", 3.0),
    record("trial-0004", "completed", 9.0, score=-0.5),  # outside [0, 4]
    record("trial-0005", "completed", 1.5),  # reported no score
    record("trial-0006", "halted", 0.5, score=-2.0),
]


def test_carry_takes_ended_trials_that_fit_with_their_values():
    carried, left_out = carry(spec(), RECORDS, "old")
    assert [(c.source, c.state, c.values, c.last) for c in carried] == [
        ("old/trial-0001", "completed", [-1.0], -1.0),
        ("old/trial-0002", "stopped", None, -3.0),
    ]
    assert left_out == 2  # outside the space, and without a score
    assert all(c.name is None for c in carried)


def test_carry_keeps_the_names_of_a_sweeps_own_trials():
    carried, _ = carry(spec(), RECORDS, "old", own=True)
    assert [c.name for c in carried] == ["trial-0001", "trial-0002"]


def test_several_objectives_carry_completed_trials_with_every_value():
    several = parse_spec(
        {
            "name": "seeds",
            "framework": "python",
            "entrypoint": "tests/_code/trainables.py:quadratic",
            "parameters": {"x": {"uniform": [0.0, 4.0]}, "k": {"choice": [1, 2]}},
            "search": {
                "method": "optuna",
                "trials": 2,
                "metrics": [{"name": "score", "mode": "max"}, {"name": "cost", "mode": "min"}],
            },
        },
        base_dir=ROOT,
    )
    records = [
        record("trial-0001", "completed", 1.0, score=-1.0, cost=2.0),
        record("trial-0002", "completed", 1.0, score=-1.0),  # no cost
        record("trial-0003", "stopped", 1.0, score=-1.0, cost=2.0),  # no Pareto value
    ]
    carried, left_out = carry(several, records, "old")
    assert [c.values for c in carried] == [[-1.0, 2.0]] and left_out == 2


def test_a_point_is_the_same_with_ints_or_floats():
    assert point_key({"x": 1, "k": "a"}) == point_key({"k": "a", "x": 1.0})
    assert point_key({"x": True}) != point_key({"x": 1})


def test_a_random_sweep_grows_into_the_points_of_a_longer_one():
    short = random_points(spec("random", trials=3, seed=4))
    longer = spec("random", trials=7, seed=4)
    assert grown_points(longer, short, []) == random_points(longer)


def test_a_random_sweep_grows_with_its_new_initial_points_first():
    short = random_points(spec("random", trials=2, seed=4))
    longer = spec("random", trials=4, seed=4)
    grown = grown_points(longer, short, [{"x": 3.5}])
    assert grown[:2] == short and grown[2]["x"] == 3.5 and len(grown) == 4


def test_a_grid_grows_by_the_points_it_lacked():
    old = sweep_points(spec("grid", {"x": {"choice": [1.0, 2.0]}, "k": {"choice": [1, 2]}}))
    new = spec("grid", {"x": {"choice": [1.0, 2.0, 3.0]}, "k": {"choice": [1, 2]}})
    assert grown_points(new, old, []) == [*old, {"x": 3.0, "k": 1}, {"x": 3.0, "k": 2}]


def test_initial_points_come_first_in_every_method():
    points = [{"x": 3.0, "k": 2}, {"k": 1}]
    drawn = sweep_points(spec("random", trials=4, seed=0, initial_points=points))
    assert drawn[0] == {"x": 3.0, "k": 2} and drawn[1]["k"] == 1 and len(drawn) == 4
    grid = {"x": {"choice": [1.0, 3.0]}, "k": {"choice": [1, 2]}}
    ordered = sweep_points(spec("grid", grid, initial_points=[{"x": 3.0, "k": 2}, {"k": 1}]))
    assert ordered == [
        {"x": 3.0, "k": 2},
        {"x": 1.0, "k": 1},
        {"x": 3.0, "k": 1},
        {"x": 1.0, "k": 2},
    ]


def test_skip_evaluated_leaves_out_known_points():
    grid = {"x": {"choice": [1.0, 2.0]}, "k": {"choice": [1, 2]}}
    known = [{"x": 1, "k": 1}, {"x": 2.0, "k": 2}]
    assert sweep_points(spec("grid", grid), known) == sweep_points(spec("grid", grid))
    assert sweep_points(spec("grid", grid, skip_evaluated=True), known) == [
        {"x": 1.0, "k": 2},
        {"x": 2.0, "k": 1},
    ]
    # A random search over two points draws until it has its trials of unseen ones, or stops.
    few = {"x": {"choice": [1.0, 2.0]}, "k": {"choice": [1]}}
    drawn = sweep_points(spec("random", few, trials=3, seed=0, skip_evaluated=True), [known[0]])
    assert drawn == [{"x": 2.0, "k": 1}]


def study(sweep_dir: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep_dir / "optuna.journal"))
    )
    return optuna.load_study(study_name=name, storage=storage)


def test_seed_study_tells_carried_trials_and_queues_initial_points(tmp_path: Path):
    carried, _ = carry(spec(), RECORDS, "old")
    assert seed_study(tmp_path, "new", spec(), carried, [{"x": 0.25}]) == 2
    trials = study(tmp_path, "new").trials
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "PRUNED", "WAITING"]
    assert trials[0].value == -1.0 and trials[0].user_attrs[SEED_ATTR] == "old/trial-0001"
    assert trials[1].intermediate_values == {3: -3.0}
    assert trials[2].user_attrs[INITIAL_ATTR] is True
    assert trials[0].distributions["x"] == optuna.distributions.FloatDistribution(0.0, 4.0)


def test_open_study_keeps_queued_initial_points_and_numbers_after_every_name(tmp_path: Path):
    carried, _ = carry(spec(), RECORDS, "old", own=True)
    seed_study(tmp_path, "s", spec(), carried, [{"x": 0.25}])
    # trial-0004 did not fit this space, but its name is taken.
    taken = {"trial-0001", "trial-0002", "trial-0004"}
    _, first, told = open_study(tmp_path, "s", {}, taken)
    assert (first, told) == (5, 3)
    waiting = [t for t in study(tmp_path, "s").trials if t.state.name == "WAITING"]
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"x": 0.25}]


def test_an_initial_point_asked_but_never_named_is_queued_again(tmp_path: Path):
    seed_study(tmp_path, "s", spec(), [], [{"x": 0.25}])
    trial = study(tmp_path, "s").ask()  # the driver died before naming it
    assert trial.params == {} and trial.number == 0
    open_study(tmp_path, "s", {}, set())
    trials = study(tmp_path, "s").trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[1].system_attrs["fixed_params"] == {"x": 0.25}


@pytest.mark.parametrize("changed", [False, True])
def test_the_study_of_a_changed_space_has_a_name_of_its_own(tmp_path: Path, changed):
    old = spec()
    seed_study(tmp_path, "sweep", old, [])
    wider = spec(parameters={"x": {"uniform": [0.0, 8.0]}, "k": {"choice": [1, 2]}})
    assert space_key(wider) != space_key(old)
    if changed:
        seed_study(tmp_path, f"sweep.{space_key(wider)}", wider, [])
    assert study_name(tmp_path, "sweep", old) == "sweep"
    assert study_name(tmp_path, "sweep", wider) == (
        f"sweep.{space_key(wider)}" if changed else "sweep"
    )
