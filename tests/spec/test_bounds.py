"""The bounds a spec's values must keep: numbers that are finite and not booleans, the ranges
Optuna and Ray accept, text without control characters, grids and schedulers of a size a sweep
can run, and YAML without duplicate keys or runaway aliases: one exact message per rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.errors import SpecError
from sweeper.spec import grid_count, grid_value, grid_values, load_spec, parse_spec
from sweeper.spec._parameters import IntRange, Uniform

HEAD = "name: demo\nframework: python\nentrypoint: train.py:train\n"
RANDOM = "search: {method: random, metric: loss, mode: min, trials: 3}\n"
PARAMS = "parameters:\n  lr: {loguniform: [1.0e-4, 1.0e-1]}\n"


@pytest.fixture
def project(in_tmp: Path) -> Path:
    (in_tmp / "train.py").write_text("def train(params, ctx):\n    pass\n", encoding="utf-8")
    return in_tmp


def error_of(project: Path, text: str) -> str:
    (project / "experiment.yml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec("experiment.yml")
    return str(caught.value)


def test_gpus_must_not_be_a_boolean(project: Path) -> None:
    text = HEAD + RANDOM + PARAMS + "resources: {gpus: true}\n"
    assert error_of(project, text) == (
        "resources.gpus must be a number, got true (experiment.yml: resources.gpus)"
    )


def test_trials_must_not_be_a_boolean(project: Path) -> None:
    text = HEAD + "search: {method: random, metric: loss, mode: min, trials: true}\n" + PARAMS
    assert error_of(project, text) == (
        "search.trials must be an integer, got true (experiment.yml: search.trials)"
    )


def test_cpus_must_be_finite(project: Path) -> None:
    text = HEAD + RANDOM + PARAMS + "resources: {cpus: .inf}\n"
    assert error_of(project, text) == (
        "resources.cpus must be a finite number, got inf (experiment.yml: resources.cpus)"
    )


def test_gpus_must_be_at_most_what_a_cluster_has(project: Path) -> None:
    text = HEAD + RANDOM + PARAMS + "resources: {gpus: 1000000}\n"
    assert error_of(project, text) == (
        "resources.gpus must be <= 10000, got 1000000 (experiment.yml: resources.gpus)"
    )


def test_memory_must_be_at_most_a_pebibyte(project: Path) -> None:
    text = HEAD + RANDOM + PARAMS + "resources: {memory: 99999999999999TiB}\n"
    assert error_of(project, text) == (
        "resources.memory must be a size from 1 byte to 1PiB such as 2GiB or 512MB, got "
        "'99999999999999TiB' (experiment.yml: resources.memory)"
    )


@pytest.mark.parametrize(("seed", "bound"), [(-1, ">= 0"), (2**32, "<= 4294967295")])
def test_seed_must_be_one_optuna_takes(project: Path, seed: int, bound: str) -> None:
    text = HEAD + f"search: {{method: random, metric: loss, mode: min, trials: 3, seed: {seed}}}\n"
    assert error_of(project, text + PARAMS) == (
        f"search.seed must be {bound}, got {seed} (experiment.yml: search.seed)"
    )


def test_trials_must_be_at_most_the_cap(project: Path) -> None:
    text = HEAD + "search: {method: random, metric: loss, mode: min, trials: 1000000000}\n"
    assert error_of(project, text + PARAMS) == (
        "search.trials must be <= 100000, got 1000000000 (experiment.yml: search.trials)"
    )


def test_name_must_not_end_in_a_newline(project: Path) -> None:
    text = 'name: "demo\\n"\nframework: python\nentrypoint: train.py:train\n' + RANDOM + PARAMS
    assert error_of(project, text) == (
        "name must be 1-64 letters, digits, '.', '_' or '-', got 'demo\\n' "
        "(experiment.yml: name); it names the sweep's folder and MLflow experiment"
    )


def test_parameter_names_must_not_end_in_a_newline(project: Path) -> None:
    text = HEAD + RANDOM + 'parameters:\n  "lr\\n": {loguniform: [1.0e-4, 1.0e-1]}\n'
    assert error_of(project, text) == (
        "parameter names must be identifiers (letters, digits, _), got 'lr\\n' "
        "(experiment.yml: parameters.lr\n); they become flags, environment variables and "
        "MLflow params"
    )


def test_text_must_not_hold_control_characters(project: Path) -> None:
    text = HEAD + 'description: "a\\x1b[2Jb"\n' + RANDOM + PARAMS
    assert error_of(project, text) == (
        "description must not hold control characters, got 'a\\x1b[2Jb' "
        "(experiment.yml: description)"
    )


def test_metric_must_not_hold_a_line_break(project: Path) -> None:
    text = HEAD + 'search: {method: random, metric: "loss\\n", mode: min, trials: 3}\n' + PARAMS
    assert error_of(project, text) == (
        "search.metric must be a metric name without surrounding blanks or line breaks, got "
        "'loss\\n' (experiment.yml: search.metric); it is the key training code reports: "
        "ctx.report(loss=...)"
    )


def test_a_grid_must_have_at_most_the_cap_of_points(project: Path) -> None:
    text = HEAD + "search: {method: grid, metric: loss, mode: min}\nparameters:\n"
    text += "".join(f"  p{i}: {{int: [1, 1000]}}\n" for i in range(3))
    assert error_of(project, text) == (
        "the grid must have at most 100000 points for method grid, got 1000000000 "
        "(1000 x 1000 x 1000) (experiment.yml: parameters); use fewer values or a larger step, "
        "or method random or optuna with trials"
    )


def test_a_grid_step_of_1e_12_is_counted_not_listed(project: Path) -> None:
    text = HEAD + "search: {method: grid, metric: loss, mode: min}\nparameters:\n"
    text += "  x: {uniform: [0, 1], step: 1.0e-12}\n"
    assert error_of(project, text) == (
        "the grid must have at most 100000 points for method grid, got 1000000000001 "
        "(1000000000001) (experiment.yml: parameters); use fewer values or a larger step, "
        "or method random or optuna with trials"
    )


def test_a_reduction_factor_barely_above_one_is_an_error(project: Path) -> None:
    text = HEAD + RANDOM + PARAMS
    text += "early_stopping: {method: hyperband, max_steps: 1000, reduction_factor: 1.0000000001}\n"
    assert error_of(project, text) == (
        "early_stopping.reduction_factor must give at most 64 rungs between grace_period and "
        "max_steps, got 1.0000000001 (69077547077 rungs) "
        "(experiment.yml: early_stopping.reduction_factor); 2 to 4 is usual: each rung keeps "
        "1/reduction_factor of the trials"
    )


def test_a_duplicate_key_is_an_error(project: Path) -> None:
    text = HEAD + RANDOM + PARAMS + "  lr: 0.5\n"
    assert error_of(project, text) == (
        "spec must be valid YAML, got a duplicate key 'lr' (first at line 6) at line 7, "
        "column 3 (experiment.yml)"
    )


def test_aliases_that_expand_beyond_the_cap_are_an_error(project: Path) -> None:
    laughs = "laughs:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for prev, here in zip("abcdefgh", "bcdefghi", strict=True):
        laughs += f"  {here}: &{here} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    text = HEAD + RANDOM + laughs + "parameters:\n  x: {choice: *i}\n"
    assert error_of(project, text) == (
        "spec must stand for at most 100000 values once its aliases are expanded, got more "
        "(experiment.yml); write the values out, or use fewer nested aliases (*name)"
    )


def test_a_nul_byte_is_an_error(project: Path) -> None:
    assert error_of(project, HEAD + "description: a\x00\n") == (
        "spec must be valid YAML, got the character U+0000 at position 70 (experiment.yml); "
        "YAML allows no control characters but tab and line breaks"
    )


def test_merge_keys_may_be_overridden(project: Path) -> None:
    """YAML's merge key brings keys in that the mapping may then set: no duplicate."""
    text = HEAD + RANDOM + "parameters:\n  a: &a {choice: [1, 2]}\n  b:\n    <<: *a\n"
    (project / "experiment.yml").write_text(text + "    choice: [3]\n", encoding="utf-8")
    spec = load_spec(project / "experiment.yml")
    assert grid_values(spec.space["b"]) == [3]


def test_grid_values_are_counted_and_drawn_without_listing() -> None:
    huge = IntRange(0, 10**30, 7)
    assert grid_count(huge) == 10**30 // 7 + 1
    assert grid_value(huge, 3) == 21
    fine = Uniform(0.0, 1.0, 1.0e-12)
    assert grid_count(fine) == 10**12 + 1
    assert grid_value(fine, 5) == 5.0e-12


def test_random_search_over_a_huge_stepped_range_draws_in_it() -> None:
    from sweeper.search._space import random_points

    spec = parse_spec(
        {
            "name": "huge",
            "framework": "python",
            "entrypoint": "json:loads",
            "search": {"method": "random", "metric": "m", "mode": "max", "trials": 20, "seed": 0},
            "parameters": {
                "n": {"int": [0, 10**15], "step": 3},
                "x": {"uniform": [0, 1], "step": 1e-9},
            },
        }
    )
    for point in random_points(spec):
        assert point["n"] % 3 == 0 and 0 <= point["n"] <= 10**15
        assert 0.0 <= point["x"] <= 1.0


def test_an_entrypoint_with_a_nul_byte_is_named(project: Path) -> None:
    (project / "train.py").write_bytes(b"def train(params, ctx):\n    pass\x00\n")
    message = error_of(project, HEAD + RANDOM + PARAMS)
    assert message.startswith("entrypoint file must be valid Python, got ")
    assert "None" not in message and message.endswith("(experiment.yml: entrypoint)")


def test_a_package_entrypoint_is_checked_without_running_the_package(project: Path) -> None:
    package = project / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("open('imported', 'w').close()\n", encoding="utf-8")
    (package / "train.py").write_text("def train(params, ctx):\n    pass\n", encoding="utf-8")
    text = HEAD.replace("train.py:train", "mypkg.train:train") + RANDOM + PARAMS
    (project / "experiment.yml").write_text(text, encoding="utf-8")
    load_spec("experiment.yml")
    assert not (project / "imported").exists()


def test_a_union_field_names_itself_not_pydantics_members(project: Path) -> None:
    text = HEAD.replace("framework: python\nentrypoint: train.py:train\n", "framework: command\n")
    assert error_of(project, text + "command: 5\n" + RANDOM + PARAMS) == (
        "command must be a string or a list, got 5 (experiment.yml: command)"
    )
    assert error_of(project, HEAD + "requirements: [5]\n" + RANDOM + PARAMS) == (
        "requirements.0 must be a string, got 5 (experiment.yml: requirements.0)"
    )


def test_an_optional_blocks_keys_are_listed(project: Path) -> None:
    text = HEAD + RANDOM + PARAMS + "early_stopping: {method: asha, max_steps: 9, patience: 3}\n"
    assert error_of(project, text) == (
        "early_stopping keys must be one of method, metric, max_steps, grace_period, "
        "reduction_factor, brackets, min_trials, got 'patience' (experiment.yml: "
        "early_stopping.patience); remove it"
    )
