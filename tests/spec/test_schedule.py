"""``schedule`` (population-based training): one exact message per rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.errors import SpecError
from sweeper.spec import LogUniform, load_spec

HEAD = "name: demo\nframework: python\nentrypoint: train.py:train\n"
GRID = "search: {method: grid, metric: score, mode: max}\n"
PARAMS = "parameters:\n  lr: {choice: [0.1, 0.01]}\n  momentum: 0.9\n"
PBT = (
    "schedule: {method: pbt, perturbation_interval: 4, "
    "mutations: {lr: {loguniform: [1.0e-4, 1]}}}\n"
)


@pytest.fixture
def project(in_tmp: Path) -> Path:
    (in_tmp / "train.py").write_text("def train(params, ctx):\n    pass\n", encoding="utf-8")
    return in_tmp


def load(project: Path, text: str):
    (project / "experiment.yml").write_text(text, encoding="utf-8")
    return load_spec("experiment.yml")


def error_of(project: Path, text: str) -> str:
    with pytest.raises(SpecError) as caught:
        load(project, text)
    return str(caught.value)


def test_a_pbt_schedule(project: Path) -> None:
    spec = load(project, HEAD + GRID + PARAMS + PBT)
    assert spec.mutations == {"lr": LogUniform(1.0e-4, 1.0)}
    assert spec.schedule is not None
    assert spec.schedule.describe() == (
        "pbt (every 4 steps, mutating lr, bottom/top 25%, resample_probability 0.25)"
    )


def test_a_constant_may_be_mutated(project: Path) -> None:
    text = PBT.replace("{lr: {loguniform: [1.0e-4, 1]}}", "{momentum: {uniform: [0.5, 0.99]}}")
    assert list(load(project, HEAD + GRID + PARAMS + text).mutations) == ["momentum"]


def test_a_mutation_must_name_a_parameter(project: Path) -> None:
    text = HEAD + GRID + PARAMS + PBT.replace("{lr:", "{lrr:")
    assert error_of(project, text) == (
        "schedule.mutations must name parameters of the spec, got 'lrr' (experiment.yml: "
        "schedule.mutations.lrr); did you mean 'lr'?"
    )


def test_a_mutation_must_be_a_dimension(project: Path) -> None:
    text = HEAD + GRID + PARAMS + PBT.replace("{loguniform: [1.0e-4, 1]}", "0.5")
    assert error_of(project, text) == (
        "schedule.mutations.lr must be a search dimension such as {loguniform: [...]}, got 0.5 "
        "(experiment.yml: schedule.mutations.lr); it says which values the mutation may take"
    )


def test_a_mutation_is_checked_like_a_parameter(project: Path) -> None:
    text = HEAD + GRID + PARAMS + PBT.replace("[1.0e-4, 1]", "[0, 1]")
    assert error_of(project, text) == (
        "schedule.mutations.lr.loguniform must have low > 0, got [0, 1] (experiment.yml: "
        "schedule.mutations.lr.loguniform); a log scale needs positive bounds; use uniform to "
        "include 0"
    )


def test_a_conditional_parameter_cannot_be_mutated(project: Path) -> None:
    params = PARAMS + "  opt: {choice: [a, b]}\n  beta: {choice: [1, 2], when: {opt: a}}\n"
    text = (
        HEAD
        + GRID
        + params
        + PBT.replace("{lr: {loguniform: [1.0e-4, 1]}}", "{beta: {int: [1, 4]}}")
    )
    assert error_of(project, text) == (
        "schedule.mutations.beta must be a parameter every trial has, got a conditional one "
        "(experiment.yml: schedule.mutations.beta); a mutated value must exist in the trial "
        "it is copied into"
    )


def test_pb2_needs_numeric_ranges(project: Path) -> None:
    text = PBT.replace("pbt", "pb2").replace("{loguniform: [1.0e-4, 1]}", "{choice: [0.1, 0.2]}")
    assert error_of(project, HEAD + GRID + PARAMS + text) == (
        "schedule.mutations.lr must be a numeric range for method pb2, got choice(0.1, 0.2) "
        "(experiment.yml: schedule.mutations.lr); pb2 models continuous bounds; use method "
        "pbt for a choice"
    )


def test_pb2_takes_no_resample_probability(project: Path) -> None:
    text = PBT.replace("pbt,", "pb2, resample_probability: 0.5,")
    assert error_of(project, HEAD + GRID + PARAMS + text) == (
        "schedule.resample_probability must not be set for method pb2, got 0.5 "
        "(experiment.yml: schedule.resample_probability); pb2 picks new values with its "
        "Gaussian-process bandit; resampling is pbt's"
    )


def test_a_schedule_is_not_early_stopping_too(project: Path) -> None:
    text = HEAD + GRID + PARAMS + PBT + "early_stopping: {method: median}\n"
    assert error_of(project, text) == (
        "schedule must not be set with early_stopping, got pbt and median (experiment.yml: "
        "schedule); pbt is itself Tune's scheduler: it stops nothing early; keep one"
    )


def test_a_schedule_needs_grid_or_random_points(project: Path) -> None:
    search = "search: {method: optuna, metric: score, mode: max, trials: 4}\n"
    assert error_of(project, HEAD + search + PARAMS + PBT) == (
        "search.method must be grid or random with schedule pbt, got optuna (experiment.yml: "
        "search.method); pbt's population starts from grid or random points; it then moves "
        "them itself"
    )


def test_a_schedule_ranks_by_one_objective(project: Path) -> None:
    search = "search: {method: grid, metrics: [{name: a, mode: max}, {name: b, mode: min}]}\n"
    assert error_of(project, HEAD + search + PARAMS + PBT) == (
        "schedule.metric must be set with several objectives, got nothing (search.metrics: "
        "a, b) (experiment.yml: schedule.metric); name the objective the population is "
        "ranked by, e.g. metric: a"
    )
    spec = load(project, HEAD + search + PARAMS + PBT.replace("pbt,", "pbt, metric: b,"))
    assert spec.stopping_objective.name == "b"


def test_a_schedule_needs_code_that_saves_through_ctx(project: Path) -> None:
    text = HEAD.replace("framework: python\nentrypoint: train.py:train", "framework: command")
    text += "command: python train.py\n" + GRID + PARAMS + PBT
    assert error_of(project, text) == (
        "framework must be python or pytorch with schedule pbt, got command (experiment.yml: "
        "schedule); population-based training copies checkpoints that training code saves "
        "with ctx.save; a program run in its own process cannot"
    )


def test_one_learner_per_trial(project: Path) -> None:
    text = HEAD + GRID + PARAMS + PBT + "resources: {learners: 2}\n"
    assert error_of(project, text).startswith(
        "resources.learners must be 1 with schedule pbt, got 2"
    )
