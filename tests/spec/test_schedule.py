"""``schedule`` (population-based training): one exact message per rule."""

from __future__ import annotations

from sweeper.spec import LogUniform

HEAD = "name: demo\nframework: python\nentrypoint: train.py:train\n"
GRID = "search: {method: grid, metric: score, mode: max}\n"
PARAMS = "parameters:\n  lr: {choice: [0.1, 0.01]}\n  momentum: 0.9\n"
PBT = (
    "schedule: {method: pbt, perturbation_interval: 4, "
    "mutations: {lr: {loguniform: [1.0e-4, 1]}}}\n"
)


def test_a_pbt_schedule(spec_file) -> None:
    spec = spec_file.load(HEAD + GRID + PARAMS + PBT)
    assert spec.mutations == {"lr": LogUniform(1.0e-4, 1.0)}
    assert spec.schedule is not None
    assert spec.schedule.describe() == (
        "pbt (every 4 steps, mutating lr, bottom/top 25%, resample_probability 0.25)"
    )


def test_a_constant_may_be_mutated(spec_file) -> None:
    text = PBT.replace("{lr: {loguniform: [1.0e-4, 1]}}", "{momentum: {uniform: [0.5, 0.99]}}")
    assert list(spec_file.load(HEAD + GRID + PARAMS + text).mutations) == ["momentum"]


def test_a_mutation_must_name_a_parameter(spec_file) -> None:
    text = HEAD + GRID + PARAMS + PBT.replace("{lr:", "{lrr:")
    assert spec_file.error(text) == (
        "schedule.mutations must name parameters of the spec, got 'lrr' (experiment.yml: "
        "schedule.mutations.lrr); did you mean 'lr'?"
    )


def test_a_mutation_must_be_a_dimension(spec_file) -> None:
    text = HEAD + GRID + PARAMS + PBT.replace("{loguniform: [1.0e-4, 1]}", "0.5")
    assert spec_file.error(text) == (
        "schedule.mutations.lr must be a search dimension such as {loguniform: [...]}, got 0.5 "
        "(experiment.yml: schedule.mutations.lr); it says which values the mutation may take"
    )


def test_a_mutation_is_checked_like_a_parameter(spec_file) -> None:
    text = HEAD + GRID + PARAMS + PBT.replace("[1.0e-4, 1]", "[0, 1]")
    assert spec_file.error(text) == (
        "schedule.mutations.lr.loguniform must have low > 0, got [0, 1] (experiment.yml: "
        "schedule.mutations.lr.loguniform); a log scale needs positive bounds; use uniform to "
        "include 0"
    )


def test_a_conditional_parameter_cannot_be_mutated(spec_file) -> None:
    params = PARAMS + "  opt: {choice: [a, b]}\n  beta: {choice: [1, 2], when: {opt: a}}\n"
    text = (
        HEAD
        + GRID
        + params
        + PBT.replace("{lr: {loguniform: [1.0e-4, 1]}}", "{beta: {int: [1, 4]}}")
    )
    assert spec_file.error(text) == (
        "schedule.mutations.beta must be a parameter every trial has, got a conditional one "
        "(experiment.yml: schedule.mutations.beta); a mutated value must exist in the trial "
        "it is copied into"
    )


def test_pb2_needs_numeric_ranges(spec_file) -> None:
    text = PBT.replace("pbt", "pb2").replace("{loguniform: [1.0e-4, 1]}", "{choice: [0.1, 0.2]}")
    assert spec_file.error(HEAD + GRID + PARAMS + text) == (
        "schedule.mutations.lr must be a numeric range for method pb2, got choice(0.1, 0.2) "
        "(experiment.yml: schedule.mutations.lr); pb2 models continuous bounds; use method "
        "pbt for a choice"
    )


def test_pb2_takes_no_resample_probability(spec_file) -> None:
    text = PBT.replace("pbt,", "pb2, resample_probability: 0.5,")
    assert spec_file.error(HEAD + GRID + PARAMS + text) == (
        "schedule.resample_probability must not be set for method pb2, got 0.5 "
        "(experiment.yml: schedule.resample_probability); pb2 picks new values with its "
        "Gaussian-process bandit; resampling is pbt's"
    )


def test_a_schedule_is_not_early_stopping_too(spec_file) -> None:
    text = HEAD + GRID + PARAMS + PBT + "early_stopping: {method: median}\n"
    assert spec_file.error(text) == (
        "schedule must not be set with early_stopping, got pbt and median (experiment.yml: "
        "schedule); pbt is itself Tune's scheduler: it stops nothing early; keep one"
    )


def test_a_schedule_needs_grid_or_random_points(spec_file) -> None:
    search = "search: {method: optuna, metric: score, mode: max, trials: 4}\n"
    assert spec_file.error(HEAD + search + PARAMS + PBT) == (
        "search.method must be grid or random with schedule pbt, got optuna (experiment.yml: "
        "search.method); pbt's population starts from grid or random points; it then moves "
        "them itself"
    )


def test_a_schedule_ranks_by_one_objective(spec_file) -> None:
    search = "search: {method: grid, metrics: [{name: a, mode: max}, {name: b, mode: min}]}\n"
    assert spec_file.error(HEAD + search + PARAMS + PBT) == (
        "schedule.metric must be set with several objectives, got nothing (search.metrics: "
        "a, b) (experiment.yml: schedule.metric); name the objective the population is "
        "ranked by, e.g. metric: a"
    )
    spec = spec_file.load(HEAD + search + PARAMS + PBT.replace("pbt,", "pbt, metric: b,"))
    assert spec.stopping_objective.name == "b"


def test_a_schedule_needs_code_that_saves_through_ctx(spec_file) -> None:
    text = HEAD.replace("framework: python\nentrypoint: train.py:train", "framework: command")
    text += "command: python train.py\n" + GRID + PARAMS + PBT
    assert spec_file.error(text) == (
        "framework must be python or pytorch with schedule pbt, got command (experiment.yml: "
        "schedule); population-based training copies checkpoints that training code saves "
        "with ctx.save; a program run in its own process cannot"
    )


def test_one_learner_per_trial(spec_file) -> None:
    text = HEAD + GRID + PARAMS + PBT + "resources: {learners: 2}\n"
    assert spec_file.error(text).startswith("resources.learners must be 1 with schedule pbt, got 2")
