"""The sweep's points (drawn without Ray, as Tune's domains draw them), ``tune_space`` and
``searcher_for``: the spec's space as Tune and Optuna see it."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from ray.tune.search import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.variant_generator import generate_variants

from sweeper._layout import POINT_KEY, trial_name
from sweeper.search._searcher import searcher_for
from sweeper.search._space import (
    grid_points,
    random_points,
    sweep_points,
    trial_params,
    tune_space,
)
from sweeper.spec import (
    Choice,
    IntRange,
    LogUniform,
    Parameter,
    Spec,
    Uniform,
    grid_values,
    parse_spec,
)

# QMCSampler is "experimental" in Optuna; its warning is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

SPACE = {
    "lr": {"loguniform": [1.0e-4, 1.0e-1]},
    "hidden": {"choice": [32, 64, 128]},
    "dropout": {"uniform": [0.0, 0.5]},
    "dropout_q": {"uniform": [0.0, 0.5], "step": 0.1},
    "layers": {"int": [1, 4]},
    "batch": {"int": [16, 256], "log": True},
    "width": {"int": [16, 128], "step": 16},
    "epochs": 10,
    "optimizer": {"value": {"name": "adam"}},
}


def make_spec(
    method: str, parameters: dict[str, Any], *, sampler: str | None = None, **search: Any
) -> Spec:
    """A validated spec (no file; the entry point is a module that always exists)."""
    block: dict[str, Any] = {"method": method, "metric": "loss", "mode": "min", **search}
    if method != "grid":
        block.setdefault("trials", 4)
    if sampler:
        block["sampler"] = sampler
    return parse_spec(
        {
            "name": "space",
            "framework": "python",
            "entrypoint": "json:loads",
            "search": block,
            "parameters": parameters,
        }
    )


# --- random_points: each kind of dimension ------------------------------------------------------


def draws(parameters: dict[str, Any], trials: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    return random_points(make_spec("random", parameters, trials=trials, seed=seed))


def values_of(name: str, param: dict[str, Any], trials: int = 2000) -> list[Any]:
    return [point[name] for point in draws({name: param}, trials)]


def test_random_points_have_only_the_dimensions() -> None:
    point = draws(SPACE, trials=1)[0]
    assert list(point) == ["lr", "hidden", "dropout", "dropout_q", "layers", "batch", "width"]


def test_choice_draws_every_declared_value() -> None:
    assert set(values_of("hidden", {"choice": [32, 64, 128]})) == {32, 64, 128}


def test_choice_keeps_each_values_type() -> None:
    """An index is drawn, not a value: numpy would make ``[1, "two"]`` two strings."""
    values = values_of("mixed", {"choice": [1, "two", 3.5, [4, 5], None]}, trials=300)
    assert {repr(v) for v in values} == {"1", "'two'", "3.5", "[4, 5]", "None"}


def test_uniform_draws_within_its_bounds() -> None:
    values = values_of("x", {"uniform": [0.0, 0.5]})
    assert all(type(v) is float and 0.0 <= v <= 0.5 for v in values)
    assert len(set(values)) == len(values)


def test_loguniform_is_uniform_in_the_log() -> None:
    values = values_of("lr", {"loguniform": [1.0e-4, 1.0e-1]})
    assert all(1.0e-4 <= v <= 1.0e-1 for v in values)
    # A third of the draws in each decade, give or take: a uniform draw would put 90% in the last.
    last_decade = sum(v >= 1.0e-2 for v in values) / len(values)
    assert 0.28 < last_decade < 0.39


def test_int_upper_bound_is_inclusive() -> None:
    """``int: [1, 4]`` includes 4 (Tune's randint, which excludes it, gets 5)."""
    values = values_of("layers", {"int": [1, 4]}, trials=400)
    assert set(values) == {1, 2, 3, 4}
    assert all(type(v) is int for v in values)


def test_int_log_reaches_both_bounds() -> None:
    assert set(values_of("n", {"int": [1, 3], "log": True}, trials=500)) == {1, 2, 3}


def test_int_log_stays_within_its_bounds() -> None:
    values = values_of("batch", {"int": [16, 256], "log": True})
    assert min(values) >= 16 and max(values) <= 256


def test_int_step_draws_the_declared_values() -> None:
    assert set(values_of("width", {"int": [16, 128], "step": 16})) == {
        16,
        32,
        48,
        64,
        80,
        96,
        112,
        128,
    }


def test_int_step_with_offset_low_draws_the_declared_values() -> None:
    """Tune's quantized domains round from 0, not from ``low``: sweeper draws from the grid."""
    spec = make_spec("random", {"n": {"int": [1, 9], "step": 2}}, trials=2000, seed=0)
    assert {p["n"] for p in random_points(spec)} == set(grid_values(spec.space["n"]))


def test_uniform_step_draws_the_declared_values() -> None:
    spec = make_spec("random", {"x": {"uniform": [0.1, 0.9], "step": 0.2}}, trials=500, seed=0)
    assert {p["x"] for p in random_points(spec)} == set(grid_values(spec.space["x"]))


def test_uniform_step_not_dividing_the_range_draws_its_grid() -> None:
    spec = make_spec("random", {"x": {"uniform": [0, 1], "step": 0.3}}, trials=500, seed=0)
    assert {p["x"] for p in random_points(spec)} == set(grid_values(spec.space["x"]))


# --- random_points: the draws Ray Tune's domains make ---------------------------------------------
# sweeper draws without Ray (``sweeper plan`` prints the points without importing it); these hold
# its draws equal to those of the Tune domains a user would write for the same spec.

EVERY_KIND: dict[str, Any] = {
    "opt": {"choice": ["adam", "sgd", "rmsprop"]},
    "mixed": {"choice": [1, "two", 3.5, [4, 5], {"six": 6}, True, None]},
    "x": {"uniform": [-1.5, 3.0]},
    "dropout": {"uniform": [0.1, 0.5], "step": 0.1},
    "lr": {"loguniform": [1.0e-5, 1.0]},
    "layers": {"int": [-3, 7]},
    "width": {"int": [8, 64], "step": 8},
    "batch": {"int": [1, 1024], "log": True},
    "epochs": 5,
}


def tune_domain(param: Parameter) -> Any:
    """The Tune domain for one dimension (a reference, written from Tune's documentation)."""
    from ray import tune

    if isinstance(param, Choice):
        return tune.choice(list(param.values))
    if isinstance(param, Uniform):
        return (
            tune.choice(grid_values(param)) if param.step else tune.uniform(param.low, param.high)
        )
    if isinstance(param, LogUniform):
        return tune.loguniform(param.low, param.high)
    assert isinstance(param, IntRange)
    if param.log:
        return tune.lograndint(param.low, param.high + 1)  # Tune's upper bound is exclusive
    if param.step != 1:
        return tune.choice(grid_values(param))
    return tune.randint(param.low, param.high + 1)


def tune_draws(spec: Spec) -> list[dict[str, Any]]:
    rng = np.random.default_rng(spec.search.seed)
    domains = {name: tune_domain(param) for name, param in spec.dimensions.items()}
    plain = [
        {name: domain.sample(random_state=rng) for name, domain in domains.items()}
        for _ in range(spec.trial_count())
    ]
    return [{k: v.item() if hasattr(v, "item") else v for k, v in p.items()} for p in plain]


@pytest.mark.parametrize("seed", [0, 1, 4, 12345])
def test_random_points_are_tunes_draws(seed: int) -> None:
    spec = make_spec("random", EVERY_KIND, trials=60, seed=seed)
    points = random_points(spec)
    expected = tune_draws(spec)
    assert points == expected
    # The same Python types too: they go to points.json, the trials and MLflow.
    assert [[type(v) for v in p.values()] for p in points] == [
        [type(v) for v in p.values()] for p in expected
    ]
    assert len(points) == 60 and list(points[0]) == list(spec.dimensions)


@pytest.mark.parametrize("name", [k for k, v in EVERY_KIND.items() if isinstance(v, dict)])
def test_each_kind_alone_is_tunes_draw(name: str) -> None:
    spec = make_spec("random", {name: EVERY_KIND[name]}, trials=25, seed=7)
    assert random_points(spec) == tune_draws(spec)


# --- tune_space: grid and optuna ---------------------------------------------------------------

GRID = {
    "lr": {"choice": [0.1, 0.01, 0.001]},
    "layers": {"int": [1, 4]},
    "dropout": {"uniform": [0.0, 0.5], "step": 0.1},
    "width": {"int": [16, 64], "step": 16},
    "epochs": 10,
    "optimizer": {"value": {"name": "adam"}},
}


@pytest.fixture(scope="module")
def grid_spec() -> Spec:
    return make_spec("grid", GRID)


def test_grid_space_is_one_dimension_over_the_grid_points(grid_spec: Spec) -> None:
    """sweeper owns the grid's order: Tune only walks the indexes of ``grid_points``."""
    assert tune_space(grid_spec) == {
        POINT_KEY: {"grid_search": list(range(grid_spec.trial_count()))}
    }


def test_random_space_is_one_dimension_over_the_random_points() -> None:
    assert tune_space(make_spec("random", SPACE)) == {POINT_KEY: {"grid_search": [0, 1, 2, 3]}}


def test_a_resumed_sweep_walks_only_the_missing_points(grid_spec: Spec) -> None:
    assert tune_space(grid_spec, [2, 5, 7]) == {POINT_KEY: {"grid_search": [2, 5, 7]}}


def test_optuna_space_is_left_to_the_searcher() -> None:
    assert tune_space(make_spec("optuna", SPACE)) == {}


# --- grid_points -------------------------------------------------------------------------------


def test_grid_points_count(grid_spec: Spec) -> None:
    points = grid_points(grid_spec)
    assert len(points) == grid_spec.trial_count() == 3 * 4 * 6 * 4


def test_grid_points_cover_every_combination_once(grid_spec: Spec) -> None:
    points = grid_points(grid_spec)
    names = ["lr", "layers", "dropout", "width"]
    assert all(set(p) == set(names) for p in points)  # constants are not in the points
    seen = [tuple(p[n] for n in names) for p in points]
    expected = itertools.product(
        [0.1, 0.01, 0.001], [1, 2, 3, 4], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [16, 32, 48, 64]
    )
    assert len(set(seen)) == len(seen)
    assert set(seen) == set(expected)


def test_grid_points_are_nested_loops_in_declared_order() -> None:
    """The last-declared parameter varies fastest, as in nested for-loops."""
    spec = make_spec("grid", {"lr": {"choice": [0.1, 0.01]}, "layers": {"int": [1, 3]}})
    assert grid_points(spec) == [
        {"lr": 0.1, "layers": 1},
        {"lr": 0.1, "layers": 2},
        {"lr": 0.1, "layers": 3},
        {"lr": 0.01, "layers": 1},
        {"lr": 0.01, "layers": 2},
        {"lr": 0.01, "layers": 3},
    ]


def test_tune_walks_the_grid_indexes_in_order(grid_spec: Spec) -> None:
    """Tune's i-th grid trial is index i, so trial-0001 is ``grid_points(spec)[0]``."""
    indexes = [config[POINT_KEY] for _, config in generate_variants(tune_space(grid_spec))]
    assert indexes == list(range(grid_spec.trial_count()))


def test_trial_params_map_a_grid_index_to_its_point_with_constants(grid_spec: Spec) -> None:
    points = grid_points(grid_spec)
    params = trial_params(grid_spec, {POINT_KEY: 5}, points)
    assert params == {**grid_spec.constants, **points[5]}


def test_grid_points_of_constants_only() -> None:
    spec = make_spec("grid", {"epochs": 3})
    assert grid_points(spec) == [{}]
    assert spec.trial_count() == 1


# --- searcher_for ------------------------------------------------------------------------------

SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
}


@pytest.fixture(scope="module")
def optuna_search() -> OptunaSearch:
    return searcher_for(make_spec("optuna", SPACE, seed=7))


def test_optuna_searcher(optuna_search: OptunaSearch) -> None:
    assert isinstance(optuna_search, OptunaSearch)
    assert optuna_search._metric == "loss"
    assert optuna_search._mode == "min"


def _suggested_distributions(searcher: OptunaSearch) -> dict[str, Any]:
    # The space is define-by-run: the distributions are those of a suggested trial.
    from sweeper import _compat

    trial_id = f"probe-{len(_compat.searcher_trials(searcher))}"
    searcher.suggest(trial_id)
    return dict(_compat.searcher_trials(searcher)[trial_id].distributions)


def test_optuna_distributions(optuna_search: OptunaSearch) -> None:
    assert _suggested_distributions(optuna_search) == {
        "lr": FloatDistribution(1.0e-4, 1.0e-1, log=True),
        "hidden": CategoricalDistribution([32, 64, 128]),
        "dropout": FloatDistribution(0.0, 0.5),
        "dropout_q": FloatDistribution(0.0, 0.5, step=0.1),
        "layers": IntDistribution(1, 4),
        "batch": IntDistribution(16, 256, log=True),
        "width": IntDistribution(16, 128, step=16),
    }


def test_optuna_int_bounds_are_inclusive(optuna_search: OptunaSearch) -> None:
    layers = _suggested_distributions(optuna_search)["layers"]
    assert (layers.low, layers.high, layers.step, layers.log) == (1, 4, 1, False)


def test_optuna_mode_max() -> None:
    searcher = searcher_for(make_spec("optuna", SPACE, mode="max"))
    assert searcher._mode == "max"


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_optuna_sampler_class(name: str) -> None:
    searcher = searcher_for(make_spec("optuna", SPACE, sampler=name, seed=1))
    assert type(searcher._sampler) is SAMPLERS[name]


def test_optuna_default_sampler_is_tpe() -> None:
    searcher = searcher_for(make_spec("optuna", SPACE))
    assert type(searcher._sampler) is optuna.samplers.TPESampler


def first_suggestion(searcher: OptunaSearch) -> float:
    study = optuna.create_study(sampler=searcher._sampler)
    return study.ask().suggest_float("x", 0.0, 1.0)


@pytest.mark.parametrize("name", ["random", "tpe"])
def test_optuna_sampler_is_seeded(name: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    first = first_suggestion(searcher_for(make_spec("optuna", SPACE, sampler=name, seed=3)))
    again = first_suggestion(searcher_for(make_spec("optuna", SPACE, sampler=name, seed=3)))
    other = first_suggestion(searcher_for(make_spec("optuna", SPACE, sampler=name, seed=4)))
    assert first == again
    assert first != other


def test_qmc_sampler_seed() -> None:
    searcher = searcher_for(make_spec("optuna", SPACE, sampler="qmc", seed=11))
    assert searcher._sampler._seed == 11


@pytest.mark.parametrize("method", ["grid", "random"])
def test_grid_and_random_use_tunes_generator(method: str) -> None:
    parameters = GRID if method == "grid" else SPACE
    searcher = searcher_for(make_spec(method, parameters, seed=5))
    assert isinstance(searcher, BasicVariantGenerator)


def test_random_points_are_drawn_with_the_seed() -> None:
    def draw(seed: int | None) -> list[dict[str, Any]]:
        return random_points(make_spec("random", SPACE, seed=seed, trials=5))

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)
    assert draw(None) != draw(None)


def test_random_points_hold_every_dimension_within_bounds() -> None:
    spec = make_spec("random", SPACE, seed=1, trials=50)
    points = random_points(spec)
    assert len(points) == 50
    for point in points:
        assert set(point) == set(spec.dimensions)
        assert 1.0e-4 <= point["lr"] <= 1.0e-1
        assert point["hidden"] in (32, 64, 128)
        assert type(point["layers"]) is int and 1 <= point["layers"] <= 4
        assert point["width"] in grid_values(spec.space["width"])


def test_sweep_points_by_method(grid_spec: Spec) -> None:
    assert sweep_points(grid_spec) == grid_points(grid_spec)
    assert len(sweep_points(make_spec("random", SPACE, trials=7)) or []) == 7
    assert sweep_points(make_spec("optuna", SPACE)) is None


def test_point_names_count_from_one() -> None:
    assert [trial_name(i) for i in (0, 9, 1234)] == ["trial-0001", "trial-0010", "trial-1235"]


@pytest.mark.parametrize(("concurrency", "expected"), [(None, 0), (3, 3)])
def test_generator_gets_the_concurrency_cap(concurrency: int | None, expected: int) -> None:
    """Tune applies ``max_concurrent_trials`` to searchers only, so its generator gets the cap."""
    searcher = searcher_for(make_spec("random", SPACE), concurrency)
    assert searcher.max_concurrent == expected
