"""``load_spec``: good specs, and one exact one-line message for every rule a spec can break."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.errors import SpecError, SweeperError
from sweeper.frameworks.registry import available
from sweeper.spec import (
    Choice,
    Constant,
    EarlyStopping,
    IntRange,
    Limits,
    LogUniform,
    Resources,
    Uniform,
    load_spec,
    parse_duration,
    parse_spec,
)

TRAIN = "def train(params, ctx):\n    return {'loss': params['lr']}\n\n\ndef helper():\n    pass\n"

# The example of the README: an Optuna (TPE) sweep of a Python function.
README = """\
name: digits-demo
description: MLP on the 8x8 digits, 12 Optuna trials
framework: python
entrypoint: train.py:train
resources: {gpus: 0, cpus: 1}
search: {method: optuna, sampler: tpe, metric: val_accuracy, mode: max, trials: 12,
         concurrency: 2, seed: 0}
parameters:
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  hidden: {choice: [32, 64, 128]}
  dropout: {uniform: [0.0, 0.5]}
  epochs: 10
"""

HEAD = """\
name: demo
framework: python
entrypoint: train.py:train
"""
OPTUNA = (
    HEAD
    + """\
search: {method: optuna, metric: loss, mode: min, trials: 5}
parameters:
  lr: {loguniform: [1.0e-4, 1.0e-1]}
"""
)
GRID = (
    HEAD
    + """\
search: {method: grid, metric: loss, mode: min}
parameters:
  lr: {choice: [0.1, 0.01, 0.001]}
  layers: {int: [1, 4]}
  dropout: {uniform: [0.0, 0.5], step: 0.1}
  epochs: 10
  optimizer: {value: {name: adam}}
"""
)


@pytest.fixture
def project(in_tmp: Path) -> Path:
    """A temporary project folder (the cwd) with ``train.py`` defining ``train``."""
    (in_tmp / "train.py").write_text(TRAIN, encoding="utf-8")
    return in_tmp


def spec_error(write_spec, text: str) -> tuple[SpecError, str]:
    """Load ``text`` as a spec file; return the :class:`SpecError` and the file's path."""
    path = write_spec(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value, str(path)


# --- Good specs --------------------------------------------------------------------------------


def test_readme_example(project: Path, write_spec) -> None:
    path = write_spec(README)
    spec = load_spec(path)
    assert spec.name == "digits-demo"
    assert spec.description == "MLP on the 8x8 digits, 12 Optuna trials"
    assert spec.framework == "python"
    assert spec.entrypoint == "train.py:train"
    assert spec.search.method == "optuna"
    assert spec.sampler == "tpe"
    assert spec.search.metric == "val_accuracy"
    assert spec.search.mode == "max"
    assert spec.search.trials == 12
    assert spec.search.concurrency == 2
    assert spec.search.seed == 0
    assert spec.trial_count() == 12
    assert spec.grid_size() is None
    assert spec.resources == Resources(gpus=0, cpus=1)
    assert spec.resources.memory_bytes is None
    assert spec.space == {
        "lr": LogUniform(1.0e-4, 1.0e-1),
        "hidden": Choice((32, 64, 128)),
        "dropout": Uniform(0.0, 0.5),
        "epochs": Constant(10),
    }
    assert list(spec.dimensions) == ["lr", "hidden", "dropout"]
    assert spec.constants == {"epochs": 10}
    assert spec.source == path.resolve()
    assert spec.base_dir == project.resolve()
    assert spec.data is None and spec.results is None


def test_optuna_sampler_defaults_to_tpe(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(OPTUNA))
    assert spec.search.sampler is None
    assert spec.sampler == "tpe"


@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "random", "gp", "qmc"])
def test_every_optuna_sampler(project: Path, write_spec, sampler: str) -> None:
    text = OPTUNA.replace("method: optuna", f"method: optuna, sampler: {sampler}")
    assert load_spec(write_spec(text)).sampler == sampler


def test_random(project: Path, write_spec) -> None:
    text = (
        HEAD
        + """\
search: {method: random, metric: acc, mode: max, trials: 7, seed: 3}
parameters:
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  layers: {int: [1, 4], step: 1}
  batch: {int: [16, 256], log: true}
"""
    )
    spec = load_spec(write_spec(text))
    assert spec.search.method == "random"
    assert spec.sampler is None
    assert spec.trial_count() == 7
    assert spec.grid_size() is None
    assert spec.space["batch"] == IntRange(16, 256, 1, True)


def test_grid(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(GRID))
    assert spec.search.method == "grid"
    assert spec.sampler is None
    # 3 learning rates x 4 layer counts x 6 dropouts; constants are not dimensions.
    assert spec.grid_size() == 3 * 4 * 6
    assert spec.trial_count() == 72
    assert list(spec.dimensions) == ["lr", "layers", "dropout"]
    assert spec.constants == {"epochs": 10, "optimizer": {"name": "adam"}}
    assert spec.space["dropout"] == Uniform(0.0, 0.5, 0.1)


def test_grid_with_trials_equal_to_its_size(project: Path, write_spec) -> None:
    text = GRID.replace("method: grid", "method: grid, trials: 72")
    assert load_spec(write_spec(text)).trial_count() == 72


def test_grid_of_constants_only_is_one_trial(project: Path, write_spec) -> None:
    text = HEAD + "search: {method: grid, metric: loss, mode: min}\nparameters: {epochs: 3}\n"
    spec = load_spec(write_spec(text))
    assert spec.dimensions == {}
    assert spec.trial_count() == 1


def test_empty_parameters_block(project: Path, write_spec) -> None:
    text = HEAD + "search: {method: random, metric: loss, mode: min, trials: 2}\nparameters:\n"
    spec = load_spec(write_spec(text))
    assert spec.parameters == {}
    assert spec.space == {}


def test_optional_blocks(project: Path, write_spec) -> None:
    (project / "data").mkdir()
    text = OPTUNA + (
        "resources: {gpus: 0.5, cpus: 2, memory: 2GiB}\ndata: data\nresults: out/results\n"
    )
    spec = load_spec(write_spec(text))
    assert spec.resources.gpus == 0.5
    assert spec.resources.cpus == 2
    assert spec.resources.memory_bytes == 2 * 1024**3
    assert spec.resolve(spec.data) == (project / "data").resolve()
    assert spec.resolve("out/results") == (project / "out" / "results").resolve()
    assert spec.resolve("/abs/path") == Path("/abs/path")


@pytest.mark.parametrize("gpus", [0, 0.25, 1, 2, 4.0])
def test_gpus_fraction_or_whole(project: Path, write_spec, gpus: float) -> None:
    spec = load_spec(write_spec(OPTUNA + f"resources: {{gpus: {gpus}}}\n"))
    assert spec.resources.gpus == gpus


def test_module_entrypoint(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(OPTUNA.replace("train.py:train", "train:train")))
    assert spec.entrypoint == "train:train"


def test_entrypoint_in_a_subfolder(project: Path, write_spec) -> None:
    (project / "src").mkdir()
    (project / "src" / "model.py").write_text("from x import fit as run\n", encoding="utf-8")
    spec = load_spec(write_spec(OPTUNA.replace("train.py:train", "src/model.py:run")))
    assert spec.entrypoint == "src/model.py:run"


def test_base_dir_resolves_paths(tmp_path: Path, write_spec) -> None:
    """Relative paths resolve against ``base_dir`` rather than the cwd when it is given."""
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    spec = load_spec(write_spec(OPTUNA), base_dir=tmp_path)
    assert spec.base_dir == tmp_path.resolve()


def test_name_of_64_characters(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(OPTUNA.replace("name: demo", "name: " + "a" * 64)))
    assert spec.name == "a" * 64


# --- Errors: the error type --------------------------------------------------------------------


def test_spec_error_type(project: Path, write_spec) -> None:
    error, _ = spec_error(write_spec, OPTUNA.replace("mode: min", "mode: up"))
    assert isinstance(error, ValueError)
    assert isinstance(error, SweeperError)
    assert error.exit_code == 2
    assert SpecError.exit_code == 2


def test_spec_error_format() -> None:
    error = SpecError("x must be y, got 1", file="a.yml", field="x", hint="try 2")
    assert str(error) == "x must be y, got 1 (a.yml: x); try 2"
    assert str(SpecError("x must be y, got 1")) == "x must be y, got 1"
    assert str(SpecError("x must be y, got 1", field="x")) == "x must be y, got 1 (x)"
    assert str(SpecError("m", file="a.yml", hint="h")) == "m (a.yml); h"


# --- Errors: unknown and missing keys ----------------------------------------------------------

TOP_KEYS = (
    "name, description, framework, entrypoint, command, metrics, caffe, parameters, search, "
    "resources, data, results, storage, early_stopping, schedule, limits, requirements, mounts, "
    "results_layout"
)


def test_unknown_top_level_key(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "descripton: hello\n")
    assert str(error) == (
        f"keys must be one of {TOP_KEYS}, got 'descripton' ({file}: descripton); "
        "did you mean 'description'?"
    )
    assert error.field == "descripton"
    assert error.hint == "did you mean 'description'?"


def test_unknown_top_level_key_without_close_match(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "zzz: 1\n")
    assert str(error) == f"keys must be one of {TOP_KEYS}, got 'zzz' ({file}: zzz); remove it"


def test_misspelt_search_suggests_search(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("search:", "serach:"))
    assert str(error) == (
        f"keys must be one of {TOP_KEYS}, got 'serach' ({file}: serach); did you mean 'search'?"
    )


def test_unknown_key_inside_search(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("trials: 5", "trials: 5, trails: 3"))
    assert str(error) == (
        "search keys must be one of method, sampler, metrics, metric, mode, constraints, trials, "
        "concurrency, seed, warm_start, skip_evaluated, initial_points, got 'trails' "
        f"({file}: search.trails); did you mean 'trials'?"
    )
    assert error.field == "search.trails"


def test_unknown_key_inside_resources(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "resources: {gpu: 1}\n")
    assert str(error) == (
        "resources keys must be one of gpus, cpus, memory, learners, placement, got 'gpu' "
        f"({file}: resources.gpu); "
        "did you mean 'gpus'?"
    )


def test_unknown_framework(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("framework: python", "framework: pyton"))
    names = available()
    assert "python" in names and "pytorch" in names
    assert str(error) == (
        f"framework must be one of {', '.join(names)}, got 'pyton' ({file}: framework); "
        "did you mean 'python'?"
    )
    assert error.field == "framework"


def test_unknown_framework_without_close_match(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("framework: python", "framework: zzz"))
    assert str(error) == (
        f"framework must be one of {', '.join(available())}, got 'zzz' ({file}: framework)"
    )
    assert error.hint is None


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("name: demo\n", "", "name"),
        ("framework: python\n", "", "framework"),
        ("metric: loss, ", "", "search.metric"),
        ("method: optuna, ", "", "search.method"),
        ("mode: min, ", "", "search.mode"),
    ],
)
def test_missing_required_field(project: Path, write_spec, old: str, new: str, field: str) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace(old, new))
    assert str(error) == f"{field} must be set, got nothing ({file}: {field})"
    assert error.field == field


def test_missing_entrypoint_names_the_framework(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("entrypoint: train.py:train\n", ""))
    assert str(error) == (
        f"entrypoint must be set for framework python, got nothing ({file}: entrypoint)"
    )


def test_a_key_of_another_framework_is_rejected(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "command: python train.py\n")
    assert str(error) == (
        f"command must not be set for framework python, got 'python train.py' "
        f"({file}: command); command belongs to framework command"
    )


def test_missing_search_block(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, HEAD)
    assert str(error) == f"search must be set, got nothing ({file}: search)"


# --- Errors: values ----------------------------------------------------------------------------


def test_bad_method(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("method: optuna", "method: bayes"))
    assert str(error) == (
        f"search.method must be one of grid, random, optuna, got 'bayes' ({file}: search.method)"
    )


def test_bad_method_suggests_a_close_one(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("method: optuna", "method: gird"))
    assert str(error) == (
        f"search.method must be one of grid, random, optuna, got 'gird' ({file}: search.method); "
        "did you mean 'grid'?"
    )


def test_bad_mode(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("mode: min", "mode: minimize"))
    assert (
        str(error) == f"search.mode must be one of min, max, got 'minimize' ({file}: search.mode)"
    )


def test_bad_sampler(project: Path, write_spec) -> None:
    error, file = spec_error(
        write_spec, OPTUNA.replace("method: optuna", "method: optuna, sampler: tps")
    )
    assert str(error) == (
        f"search.sampler must be one of tpe, cmaes, random, gp, qmc, nsgaii, nsgaiii, got 'tps' "
        f"({file}: search.sampler); did you mean 'tpe'?"
    )


def test_sampler_with_method_random(project: Path, write_spec) -> None:
    text = OPTUNA.replace("method: optuna", "method: random, sampler: tpe")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"search.sampler must not be set for method random, got 'tpe' ({file}: search.sampler); "
        "samplers belong to method: optuna"
    )
    assert error.field == "search.sampler"
    assert error.hint == "samplers belong to method: optuna"


def test_sampler_with_method_grid(project: Path, write_spec) -> None:
    text = GRID.replace("method: grid", "method: grid, sampler: cmaes")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"search.sampler must not be set for method grid, got 'cmaes' ({file}: search.sampler); "
        "samplers belong to method: optuna"
    )


@pytest.mark.parametrize("method", ["random", "optuna"])
def test_trials_required(project: Path, write_spec, method: str) -> None:
    text = OPTUNA.replace("method: optuna", f"method: {method}").replace(", trials: 5", "")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"search.trials must be set for method {method}, got nothing ({file}: search.trials); "
        "add e.g. trials: 20"
    )
    assert error.field == "search.trials"


@pytest.mark.parametrize(
    ("trials", "message"),
    [
        ("0", "must be >= 1, got 0"),
        ("many", "must be an integer, got 'many'"),
        ("2.5", "must be an integer, got 2.5"),
    ],
)
def test_bad_trials(project: Path, write_spec, trials: str, message: str) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("trials: 5", f"trials: {trials}"))
    assert str(error) == f"search.trials {message} ({file}: search.trials)"


def test_concurrency_zero(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("trials: 5", "trials: 5, concurrency: 0"))
    assert str(error) == f"search.concurrency must be >= 1, got 0 ({file}: search.concurrency)"


def test_empty_metric(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("metric: loss", "metric: ''"))
    assert str(error) == f"search.metric must not be empty, got '' ({file}: search.metric)"


def test_search_must_be_a_mapping(project: Path, write_spec) -> None:
    text = HEAD + "search: [grid]\n"
    error, file = spec_error(write_spec, text)
    assert str(error) == f"search must be a mapping, got ['grid'] ({file}: search)"


def test_parameters_must_be_a_mapping(project: Path, write_spec) -> None:
    text = HEAD + "search: {method: grid, metric: loss, mode: min}\nparameters: [1, 2]\n"
    error, file = spec_error(write_spec, text)
    assert str(error) == f"parameters must be a mapping, got [1, 2] ({file}: parameters)"


def test_grid_over_continuous_dimension(project: Path, write_spec) -> None:
    text = GRID.replace(
        "dropout: {uniform: [0.0, 0.5], step: 0.1}", "dropout: {uniform: [0.0, 0.5]}"
    )
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        "parameters.dropout must have grid values for method grid, got uniform(0, 0.5) "
        f"({file}: parameters.dropout); list them with {{choice: [...]}} or add a step"
    )
    assert "choice" in error.hint and "step" in error.hint


def test_grid_over_loguniform(project: Path, write_spec) -> None:
    text = OPTUNA.replace("method: optuna", "method: grid").replace(", trials: 5", "")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        "parameters.lr must have grid values for method grid, got loguniform(0.0001, 0.1) "
        f"({file}: parameters.lr); list them with {{choice: [...]}} or add a step"
    )


def test_grid_trials_must_equal_grid_size(project: Path, write_spec) -> None:
    text = GRID.replace("method: grid", "method: grid, trials: 10")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        "search.trials must equal the grid's size 72 for method grid, got 10 "
        f"({file}: search.trials); leave trials out for a grid"
    )


def test_optuna_with_constants_only(project: Path, write_spec) -> None:
    text = OPTUNA.replace("lr: {loguniform: [1.0e-4, 1.0e-1]}", "lr: 0.1")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        "parameters must include a search dimension for method optuna, got constants only "
        f"({file}: parameters); add e.g. lr: {{loguniform: [1.0e-4, 1.0e-1]}}"
    )


def test_optuna_without_parameters(project: Path, write_spec) -> None:
    text = HEAD + "search: {method: optuna, metric: loss, mode: min, trials: 5}\n"
    error, _ = spec_error(write_spec, text)
    assert error.field == "parameters"
    assert error.message.endswith("got constants only")


@pytest.mark.parametrize("name", ["my sweep", "-demo", "a" * 65, "démo", "a/b"])
def test_bad_name(project: Path, write_spec, name: str) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("name: demo", f"name: '{name}'"))
    assert str(error) == (
        f"name must be 1-64 letters, digits, '.', '_' or '-', got {name!r} ({file}: name); "
        "it names the sweep's folder and MLflow experiment"
    )


def test_name_must_be_a_string(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("name: demo", "name: 42"))
    assert str(error) == f"name must be a string, got 42 ({file}: name)"


@pytest.mark.parametrize("name", ["learning-rate", "1x", "a.b"])
def test_bad_parameter_name(project: Path, write_spec, name: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"  {name}: 3\n")
    assert str(error) == (
        f"parameter names must be identifiers (letters, digits, _), got {name!r} "
        f"({file}: parameters.{name}); they become flags, environment variables and MLflow params"
    )


def test_bad_parameter_is_reported_with_the_file(project: Path, write_spec) -> None:
    """A :class:`ParameterError` reaches the user as a SpecError naming file and field."""
    text = OPTUNA.replace("{loguniform: [1.0e-4, 1.0e-1]}", "{loguniform: [0, 1]}")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"parameters.lr.loguniform must have low > 0, got [0, 1] ({file}: parameters.lr.loguniform)"
        "; a log scale needs positive bounds; use uniform to include 0"
    )


def test_misspelt_dimension_kind(project: Path, write_spec) -> None:
    text = OPTUNA.replace("{loguniform:", "{loguniform:").replace("loguniform", "loguniformm")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        "parameters.lr key must be one of choice, uniform, loguniform, int, value, step, log, "
        "when, default, got 'loguniformm' "
        f"({file}: parameters.lr.loguniformm); did you mean 'loguniform'?"
    )


# --- Errors: resources -------------------------------------------------------------------------


def test_fractional_gpus_above_one(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "resources: {gpus: 1.5}\n")
    assert str(error) == (
        f"resources.gpus must be a fraction up to 1 or a whole number, got 1.5 "
        f"({file}: resources.gpus); Ray shares a GPU between trials only below 1 GPU each"
    )
    assert error.field == "resources.gpus"


def test_negative_gpus(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "resources: {gpus: -1}\n")
    assert str(error) == f"resources.gpus must be >= 0, got -1 ({file}: resources.gpus)"


def test_gpus_not_a_number(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "resources: {gpus: one}\n")
    assert str(error) == f"resources.gpus must be a number, got 'one' ({file}: resources.gpus)"


@pytest.mark.parametrize("memory", ["lots", "0GiB", "-1GiB", "1XB", "''", "0"])
def test_bad_memory(project: Path, write_spec, memory: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"resources: {{memory: {memory}}}\n")
    shown = {"''": "''", "0": "0"}.get(memory, repr(memory))
    assert str(error) == (
        f"resources.memory must be a size from 1 byte to 1PiB such as 2GiB or 512MB, got {shown} "
        f"({file}: resources.memory)"
    )


@pytest.mark.parametrize("cpus", ["0", "-2"])
def test_cpus_must_be_positive(project: Path, write_spec, cpus: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"resources: {{cpus: {cpus}}}\n")
    assert str(error) == f"resources.cpus must be > 0, got {cpus} ({file}: resources.cpus)"


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ("2GiB", 2 * 1024**3),
        ("512MB", 512 * 10**6),
        ("1Gb", 10**9),
        ("1gb", 10**9),
        ("2 GiB", 2 * 1024**3),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("1KiB", 1024),
        ("1k", 1000),
        ("1m", 10**6),
        ("1TiB", 1024**4),
        ("1T", 10**12),
        ("3b", 3),
        ("100", 100),
        (1024, 1024),
        (2**40, 2**40),
        (None, None),
    ],
)
def test_memory_bytes(memory: str | int | None, expected: int | None) -> None:
    assert Resources(memory=memory).memory_bytes == expected


def test_memory_bytes_from_a_spec(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(OPTUNA + "resources: {memory: 512MB}\n"))
    assert spec.resources.memory == "512MB"
    assert spec.resources.memory_bytes == 512_000_000


def test_resources_defaults() -> None:
    resources = Resources()
    assert (resources.gpus, resources.cpus, resources.memory) == (0, 1, None)


def test_memory_below_one_byte_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"resources\.memory must be a size"):
        Resources(memory="0.5")


def test_memory_true_is_rejected(project: Path, write_spec) -> None:
    spec_error(write_spec, OPTUNA + "resources: {memory: true}\n")


def test_fractional_memory_names_the_memory_field(project: Path, write_spec) -> None:
    error, _ = spec_error(write_spec, OPTUNA + "resources: {memory: 1.5}\n")
    assert error.field == "resources.memory"


# --- Errors: entrypoint ------------------------------------------------------------------------

FORMS = "'path/to/file.py:function' or 'package.module:function'"


@pytest.mark.parametrize("entrypoint", ["train.py", "train.py:", ":train", "train.py:1fn"])
def test_entrypoint_form(project: Path, write_spec, entrypoint: str) -> None:
    text = OPTUNA.replace("entrypoint: train.py:train", f"entrypoint: '{entrypoint}'")
    error, file = spec_error(write_spec, text)
    assert str(error) == (f"entrypoint must be {FORMS}, got {entrypoint!r} ({file}: entrypoint)")
    assert error.field == "entrypoint"


def test_entrypoint_empty(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("train.py:train", "''"))
    assert str(error) == f"entrypoint must not be empty, got '' ({file}: entrypoint)"


def test_entrypoint_file_missing(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("train.py:train", "missing.py:train"))
    base = project.resolve()
    assert str(error) == (
        f"entrypoint file must exist, got 'missing.py' ({base / 'missing.py'} is missing) "
        f"({file}: entrypoint); relative paths are relative to {base}"
    )


def test_entrypoint_function_missing(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("train.py:train", "train.py:trian"))
    assert str(error) == (
        f"entrypoint function must be defined in train.py, got 'trian' ({file}: entrypoint); "
        "did you mean 'train'?"
    )
    assert error.hint == "did you mean 'train'?"


def test_entrypoint_function_missing_without_close_match(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA.replace("train.py:train", "train.py:zzz"))
    assert str(error) == (
        f"entrypoint function must be defined in train.py, got 'zzz' ({file}: entrypoint)"
    )


def test_entrypoint_syntax_error(project: Path, write_spec) -> None:
    (project / "broken.py").write_text("import os\n\ndef train(:\n    pass\n", encoding="utf-8")
    error, file = spec_error(write_spec, OPTUNA.replace("train.py:train", "broken.py:train"))
    assert str(error) == (
        f"entrypoint file must be valid Python, got a syntax error at line 3 ({file}: entrypoint)"
    )


def test_entrypoint_file_is_not_imported(project: Path, write_spec) -> None:
    """Validation reads the file: code that would fail at import time is not run."""
    (project / "heavy.py").write_text(
        "import no_such_framework_xyz\nraise SystemExit(3)\n\ndef train(params, ctx):\n    pass\n",
        encoding="utf-8",
    )
    spec = load_spec(write_spec(OPTUNA.replace("train.py:train", "heavy.py:train")))
    assert spec.entrypoint == "heavy.py:train"


@pytest.mark.parametrize(
    "source",
    [
        "train = make()\n",
        "from lib import train\n",
        "import train\n",
        "class train:\n    pass\n",
        "async def train(params, ctx):\n    pass\n",
    ],
)
def test_entrypoint_names_defined_other_ways(project: Path, write_spec, source: str) -> None:
    (project / "alt.py").write_text(source, encoding="utf-8")
    load_spec(write_spec(OPTUNA.replace("train.py:train", "alt.py:train")))


def test_entrypoint_defined_by_annotated_assignment(project: Path, write_spec) -> None:
    (project / "alt.py").write_text("train: object = object()\n", encoding="utf-8")
    load_spec(write_spec(OPTUNA.replace("train.py:train", "alt.py:train")))


def test_module_entrypoint_not_importable(project: Path, write_spec) -> None:
    text = OPTUNA.replace("train.py:train", "no_such_pkg_xyz.mod:train")
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"entrypoint module must be importable, got 'no_such_pkg_xyz.mod' ({file}: entrypoint); "
        f"check the name or install the package; a file is written as {FORMS}"
    )


def test_module_entrypoint_function_missing(project: Path, write_spec) -> None:
    spec_error(write_spec, OPTUNA.replace("train.py:train", "train:nope"))


def test_entrypoint_error_names_the_file_like_other_errors(project: Path, write_spec) -> None:
    write_spec(OPTUNA.replace("train.py:train", "train.py:trian"))
    with pytest.raises(SpecError) as entry:
        load_spec("experiment.yml")
    write_spec(OPTUNA.replace("mode: min", "mode: up"))
    with pytest.raises(SpecError) as schema:
        load_spec("experiment.yml")
    assert schema.value.file == "experiment.yml"
    assert entry.value.file == schema.value.file


# --- Errors: data and results ------------------------------------------------------------------


def test_data_path_missing(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "data: nowhere/\n")
    assert str(error) == (
        f"data must be an existing path, got 'nowhere/' ({file}: data); "
        f"relative paths are relative to {project.resolve()}"
    )


def test_data_file_exists(project: Path, write_spec) -> None:
    (project / "data.csv").write_text("a,b\n", encoding="utf-8")
    assert load_spec(write_spec(OPTUNA + "data: data.csv\n")).data == "data.csv"


@pytest.mark.parametrize("key", ["data", "results"])
def test_s3_uris_are_accepted_for_data_and_results(project: Path, write_spec, key: str) -> None:
    spec = load_spec(write_spec(OPTUNA + f"{key}: s3://my-bucket/prefix\n"))
    assert getattr(spec, key) == "s3://my-bucket/prefix"


@pytest.mark.parametrize("key", ["data", "results"])
def test_an_invalid_bucket_name_is_a_spec_error(project: Path, write_spec, key: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"{key}: s3://Bad_Bucket_/prefix\n")
    assert str(error) == (
        f"bucket must be a valid S3 bucket name, got 'Bad_Bucket_' in 's3://Bad_Bucket_/prefix' "
        f"({file}: {key}); 3-63 lowercase letters, digits, '.' and '-', starting and ending with "
        "a letter or digit (or a legacy name: up to 255, with '_' and capitals too)"
    )
    assert error.field == key


@pytest.mark.parametrize("key", ["data", "results"])
def test_a_legacy_bucket_name_is_accepted_with_a_note(project: Path, write_spec, key: str) -> None:
    spec = load_spec(write_spec(OPTUNA + f"{key}: s3://tf_training_data/prefix\n"))
    assert spec.uses_legacy_bucket
    assert spec.notes == [
        "bucket 'tf_training_data' has a legacy name (not a DNS name): it is reached with "
        "path-style addressing"
    ]


@pytest.mark.parametrize("key", ["data", "results"])
def test_other_url_schemes_are_rejected(project: Path, write_spec, key: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"{key}: gs://bucket/prefix\n")
    assert str(error) == (
        f"{key} must be a local path or an s3:// URI, got 'gs://bucket/prefix' ({file}: {key}); "
        "S3-compatible stores (MinIO, IBM COS) use s3:// with storage.endpoint_url"
    )


def test_storage_block_sets_the_endpoint(project: Path, write_spec) -> None:
    text = OPTUNA + "results: s3://runs-bucket\nstorage: {endpoint_url: 'http://minio:9000'}\n"
    assert load_spec(write_spec(text)).storage.endpoint_url == "http://minio:9000"


def test_results_need_not_exist(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(OPTUNA + "results: out/new\n"))
    assert spec.results == "out/new"
    assert not (project / "out").exists()


# --- Errors: the file itself -------------------------------------------------------------------


def test_yaml_syntax_error(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, "name: demo\n  framework: python\n")
    assert str(error) == (
        "spec must be valid YAML, got mapping values are not allowed here at line 2, column 12 "
        f"({file})"
    )
    assert error.field is None


def test_yaml_unclosed_flow_mapping(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, "name: demo\nsearch: {method: grid\n")
    assert str(error) == (
        "spec must be valid YAML, got expected ',' or '}', but got '<stream end>' "
        f"at line 3, column 1 ({file})"
    )


def test_top_level_list(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, "- name: demo\n- framework: python\n")
    assert str(error) == (
        f"the spec must be a mapping of keys, got list ({file}); start with e.g. 'name: my-sweep'"
    )


def test_empty_file(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, "")
    assert error.message.startswith("the spec must be a mapping of keys, got ")
    assert error.file == file


def test_spec_file_missing(project: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec("nope.yml")
    assert str(info.value) == "spec file must exist, got 'nope.yml'"
    assert info.value.exit_code == 2


def test_spec_file_not_utf8(project: Path) -> None:
    path = project / "experiment.yml"
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == (
        "spec file must be readable UTF-8 text, got 'utf-8' codec can't decode byte 0xff in "
        f"position 6: invalid start byte ({path})"
    )


def test_spec_path_is_a_directory(project: Path) -> None:
    with pytest.raises(SpecError, match=r"^spec file must be readable UTF-8 text, got "):
        load_spec(project)


def test_parse_spec_without_a_file(project: Path) -> None:
    """``parse_spec`` validates a mapping; its errors then name only the field."""
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "demo", "framework": "python", "entrypoint": "train.py:train"})
    assert str(info.value) == "search must be set, got nothing (search)"
    assert info.value.file is None


# --- early_stopping ----------------------------------------------------------------------------


def stopping(project: Path, write_spec, block: str) -> EarlyStopping:
    """The ``early_stopping`` of the OPTUNA spec with ``block`` (a flow mapping) added."""
    spec = load_spec(write_spec(OPTUNA + f"early_stopping: {block}\n"))
    assert spec.early_stopping is not None
    return spec.early_stopping


def test_early_stopping_is_off_by_default(project: Path, write_spec) -> None:
    assert load_spec(write_spec(OPTUNA)).early_stopping is None


def test_asha_defaults(project: Path, write_spec) -> None:
    rule = stopping(project, write_spec, "{method: asha, max_steps: 27}")
    assert (rule.method, rule.max_steps, rule.grace_period) == ("asha", 27, 1)
    assert (rule.reduction_factor, rule.brackets, rule.min_trials) == (None, None, None)
    assert rule.effective_reduction_factor == 3.0
    assert isinstance(rule.effective_reduction_factor, float)
    assert rule.effective_brackets == 1
    assert rule.describe() == "asha (max_steps 27, grace_period 1, reduction_factor 3)"


def test_asha_with_every_key(project: Path, write_spec) -> None:
    block = "{method: asha, max_steps: 100, grace_period: 5, reduction_factor: 2.5, brackets: 2}"
    rule = stopping(project, write_spec, block)
    assert rule.effective_reduction_factor == 2.5
    assert rule.effective_brackets == 2
    assert rule.describe() == (
        "asha (max_steps 100, grace_period 5, reduction_factor 2.5, brackets 2)"
    )


@pytest.mark.parametrize(
    ("max_steps", "grace_period", "reduction_factor", "brackets"),
    [
        (27, 1, 3, 4),
        (81, 1, 3, 5),
        (10, 1, 3, 3),
        (26, 1, 3, 3),
        (9, 3, 3, 2),
        (100, 1, 2, 7),
        (8, 2, 4, 2),
        (2, 1, 3, 1),
        (1000, 1, 10, 4),
        (9, 4, 1.5, 3),
    ],
)
def test_hyperband_brackets_are_computed(
    project: Path,
    write_spec,
    max_steps: int,
    grace_period: int,
    reduction_factor: float,
    brackets: int,
) -> None:
    block = (
        f"{{method: hyperband, max_steps: {max_steps}, grace_period: {grace_period}, "
        f"reduction_factor: {reduction_factor}}}"
    )
    assert stopping(project, write_spec, block).effective_brackets == brackets


def test_hyperband_defaults(project: Path, write_spec) -> None:
    rule = stopping(project, write_spec, "{method: hyperband, max_steps: 27}")
    assert rule.effective_reduction_factor == 3.0
    assert rule.effective_brackets == 4
    assert rule.describe() == (
        "hyperband (max_steps 27, grace_period 1, reduction_factor 3, brackets 4)"
    )


def test_median_defaults(project: Path, write_spec) -> None:
    rule = stopping(project, write_spec, "{method: median}")
    assert rule.max_steps is None
    assert rule.grace_period == 1
    assert rule.effective_min_trials == 3
    assert rule.effective_brackets == 1
    assert rule.describe() == "median (grace_period 1, min_trials 3)"


def test_median_with_its_keys(project: Path, write_spec) -> None:
    rule = stopping(project, write_spec, "{method: median, grace_period: 4, min_trials: 5}")
    assert (rule.grace_period, rule.effective_min_trials) == (4, 5)


def test_early_stopping_round_trips_through_a_dump(project: Path, write_spec) -> None:
    """What the sweep writes as spec.yml (a dump without unset keys) loads again unchanged."""
    for block in ("{method: median}", "{method: hyperband, max_steps: 9}"):
        spec = load_spec(write_spec(OPTUNA + f"early_stopping: {block}\n"))
        dumped = spec.model_dump(mode="json", exclude_none=True)
        again = parse_spec(dumped, base_dir=project)
        assert again.early_stopping == spec.early_stopping
        assert again.limits == spec.limits


@pytest.mark.parametrize("method", ["asha", "hyperband"])
def test_max_steps_required(project: Path, write_spec, method: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"early_stopping: {{method: {method}}}\n")
    assert str(error) == (
        f"early_stopping.max_steps must be set for method {method}, got nothing "
        f"({file}: early_stopping.max_steps); set it to the number of steps (epochs) a trial "
        "reports"
    )
    assert error.field == "early_stopping.max_steps"


def test_max_steps_not_for_median(project: Path, write_spec) -> None:
    text = OPTUNA + "early_stopping: {method: median, max_steps: 27}\n"
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"early_stopping.max_steps must not be set for method median, got 27 "
        f"({file}: early_stopping.max_steps); median compares trials at the same step; it needs "
        "no training length"
    )


def test_reduction_factor_not_for_median(project: Path, write_spec) -> None:
    text = OPTUNA + "early_stopping: {method: median, reduction_factor: 3}\n"
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"early_stopping.reduction_factor must not be set for method median, got 3 "
        f"({file}: early_stopping.reduction_factor); reduction_factor belongs to methods asha "
        "and hyperband"
    )


def test_brackets_not_for_hyperband(project: Path, write_spec) -> None:
    text = OPTUNA + "early_stopping: {method: hyperband, max_steps: 27, brackets: 2}\n"
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"early_stopping.brackets must not be set for method hyperband, got 2 "
        f"({file}: early_stopping.brackets); sweeper computes hyperband's brackets from "
        "max_steps, grace_period and reduction_factor; use method asha to choose them"
    )


def test_brackets_not_for_median(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "early_stopping: {method: median, brackets: 1}\n")
    assert str(error) == (
        f"early_stopping.brackets must not be set for method median, got 1 "
        f"({file}: early_stopping.brackets); brackets belong to method asha"
    )


@pytest.mark.parametrize("method", ["asha", "hyperband"])
def test_min_trials_only_for_median(project: Path, write_spec, method: str) -> None:
    text = OPTUNA + f"early_stopping: {{method: {method}, max_steps: 27, min_trials: 3}}\n"
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"early_stopping.min_trials must not be set for method {method}, got 3 "
        f"({file}: early_stopping.min_trials); min_trials belongs to method median"
    )


@pytest.mark.parametrize("grace_period", [10, 12])
def test_grace_period_below_max_steps(project: Path, write_spec, grace_period: int) -> None:
    text = (
        OPTUNA + f"early_stopping: {{method: asha, max_steps: 10, grace_period: {grace_period}}}\n"
    )
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"early_stopping.grace_period must be less than max_steps 10, got {grace_period} "
        f"({file}: early_stopping.grace_period); trials run grace_period steps before they may "
        "be stopped; leave room below max_steps"
    )


def test_max_steps_above_the_default_grace_period(project: Path, write_spec) -> None:
    text = OPTUNA + "early_stopping: {method: hyperband, max_steps: 1}\n"
    error, file = spec_error(write_spec, text)
    assert str(error) == (
        f"early_stopping.max_steps must be greater than grace_period 1, got 1 "
        f"({file}: early_stopping.max_steps); trials run grace_period steps (default 1) before "
        "they may be stopped"
    )


def test_bad_early_stopping_method(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "early_stopping: {method: ahsa, max_steps: 9}\n")
    assert str(error) == (
        f"early_stopping.method must be one of asha, hyperband, median, got 'ahsa' "
        f"({file}: early_stopping.method); did you mean 'asha'?"
    )


def test_early_stopping_method_required(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "early_stopping: {max_steps: 9}\n")
    assert str(error) == (
        f"early_stopping.method must be set, got nothing ({file}: early_stopping.method)"
    )


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("max_steps: 0", "early_stopping.max_steps must be >= 1, got 0"),
        ("max_steps: 2.5", "early_stopping.max_steps must be an integer, got 2.5"),
        ("max_steps: 9, grace_period: 0", "early_stopping.grace_period must be >= 1, got 0"),
        (
            "max_steps: 9, reduction_factor: 1",
            "early_stopping.reduction_factor must be > 1, got 1",
        ),
        ("max_steps: 9, brackets: 0", "early_stopping.brackets must be >= 1, got 0"),
    ],
)
def test_early_stopping_bounds(project: Path, write_spec, block: str, message: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"early_stopping: {{method: asha, {block}}}\n")
    field = message.split(" ", 1)[0]
    assert str(error) == f"{message} ({file}: {field})"


def test_min_trials_bound(project: Path, write_spec) -> None:
    error, file = spec_error(
        write_spec, OPTUNA + "early_stopping: {method: median, min_trials: 0}\n"
    )
    assert str(error) == (
        f"early_stopping.min_trials must be >= 1, got 0 ({file}: early_stopping.min_trials)"
    )


def test_early_stopping_unknown_key(project: Path, write_spec) -> None:
    text = OPTUNA + "early_stopping: {method: asha, max_step: 9}\n"
    error, _ = spec_error(write_spec, text)
    assert error.field == "early_stopping.max_step"
    assert error.message.startswith("early_stopping keys must be one of ")


# --- limits ------------------------------------------------------------------------------------


def test_limits_defaults(project: Path, write_spec) -> None:
    limits = load_spec(write_spec(OPTUNA)).limits
    assert limits == Limits()
    assert limits.max_failures == 0
    assert limits.max_failed_trials is None
    assert limits.max_duration is None and limits.max_duration_s is None
    assert limits.max_gpu_hours is None
    assert limits.describe() == "none"


def test_limits_every_key(project: Path, write_spec) -> None:
    text = OPTUNA + (
        "limits: {max_failures: 2, max_failed_trials: 5, max_duration: 2h, max_gpu_hours: 10}\n"
    )
    limits = load_spec(write_spec(text)).limits
    assert (limits.max_failures, limits.max_failed_trials) == (2, 5)
    assert limits.max_duration == "2h"  # as written, so that spec.yml round-trips
    assert limits.max_duration_s == 7200.0
    assert limits.max_gpu_hours == 10.0
    assert limits.describe() == (
        "max_failures 2, max_failed_trials 5, max_duration 2h, max_gpu_hours 10"
    )


def test_zero_failed_trials_is_a_limit(project: Path, write_spec) -> None:
    limits = load_spec(write_spec(OPTUNA + "limits: {max_failed_trials: 0}\n")).limits
    assert limits.max_failed_trials == 0


def test_limits_round_trip_through_a_dump(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(OPTUNA + "limits: {max_duration: 1h30m, max_gpu_hours: 0.5}\n"))
    dumped = spec.model_dump(mode="json", exclude_none=True)
    assert dumped["limits"] == {"max_failures": 0, "max_duration": "1h30m", "max_gpu_hours": 0.5}
    assert parse_spec(dumped, base_dir=project).limits == spec.limits


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1d 2h 3m 4s", 93784),
        ("1.5h", 5400),
        ("2H", 7200),
        ("90", 90),
        (90, 90),
        (0.5, 0.5),
    ],
)
def test_max_duration_forms(duration: str | float, seconds: float) -> None:
    assert Limits(max_duration=duration).max_duration_s == seconds
    assert parse_duration(duration) == seconds


def test_max_duration_from_a_spec_in_seconds(project: Path, write_spec) -> None:
    limits = load_spec(write_spec(OPTUNA + "limits: {max_duration: 3600}\n")).limits
    assert (limits.max_duration, limits.max_duration_s) == (3600, 3600.0)


@pytest.mark.parametrize(
    "duration", ["soon", "0s", "1m1h", "90ms", "1h30", "2 hours", "''", "true"]
)
def test_bad_max_duration(project: Path, write_spec, duration: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"limits: {{max_duration: {duration}}}\n")
    shown = {"''": "''", "true": "True"}.get(duration, repr(duration))
    assert str(error) == (
        f"limits.max_duration must be seconds or a duration such as 90s, 30m, 2h, got {shown} "
        f"({file}: limits.max_duration); combine d, h, m and s, e.g. 1h30m"
    )


@pytest.mark.parametrize("duration", ["0", "-5", ".inf"])
def test_max_duration_must_be_positive(project: Path, write_spec, duration: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"limits: {{max_duration: {duration}}}\n")
    shown = {"0": "0", "-5": "-5", ".inf": "inf"}[duration]
    assert str(error) == (
        f"limits.max_duration must be > 0 seconds, got {shown} ({file}: limits.max_duration)"
    )


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("max_failures: -1", "limits.max_failures must be >= 0, got -1"),
        ("max_failures: 1.5", "limits.max_failures must be an integer, got 1.5"),
        ("max_failed_trials: -1", "limits.max_failed_trials must be >= 0, got -1"),
        ("max_gpu_hours: 0", "limits.max_gpu_hours must be > 0, got 0"),
        ("max_gpu_hours: lots", "limits.max_gpu_hours must be a number, got 'lots'"),
    ],
)
def test_limits_bounds(project: Path, write_spec, block: str, message: str) -> None:
    error, file = spec_error(write_spec, OPTUNA + f"limits: {{{block}}}\n")
    field = message.split(" ", 1)[0]
    assert str(error) == f"{message} ({file}: {field})"


def test_limits_unknown_key(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "limits: {max_failure: 1}\n")
    assert str(error) == (
        "limits keys must be one of max_failures, max_failed_trials, max_duration, max_gpu_hours, "
        f"got 'max_failure' ({file}: limits.max_failure); did you mean 'max_failures'?"
    )


# --- requirements (pip packages the trials need) ---------------------------------------------


def test_requirements_list(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(OPTUNA + "requirements: [scikit-learn==1.5.2, 'numpy>=1.26']\n"))
    assert spec.pip_requirements() == ["scikit-learn==1.5.2", "numpy>=1.26"]


def test_requirements_file(project: Path, write_spec) -> None:
    (project / "requirements.txt").write_text(
        "# the trials' packages\n--index-url https://pypi.org/simple\nsix==1.16.0  # pinned\n\n"
    )
    spec = load_spec(write_spec(OPTUNA + "requirements: requirements.txt\n"))
    assert spec.pip_requirements() == ["--index-url https://pypi.org/simple", "six==1.16.0"]


def test_requirements_entry_must_be_a_requirement(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "requirements: [six==1.16.0, 'torch >= ']\n")
    assert str(error).startswith(
        "requirements[1] must be a pip requirement such as 'pkg==1.0', got 'torch >= ' ("
    )
    assert error.field == "requirements.1"
    assert error.file == file


def test_requirements_file_must_exist(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "requirements: missing.txt\n")
    assert str(error) == (
        f"requirements file must be a readable file, got 'missing.txt' ({file}: requirements); "
        f"relative paths are relative to {project.resolve()}"
    )


def test_requirements_file_lines_must_be_requirements(project: Path, write_spec) -> None:
    (project / "requirements.txt").write_text("six==1.16.0\nnot a requirement!\n")
    error, _ = spec_error(write_spec, OPTUNA + "requirements: requirements.txt\n")
    assert str(error).startswith(
        "requirements file lines must be pip requirements such as 'pkg==1.0', "
        "got 'not a requirement!' ("
    )


def test_requirements_file_must_not_include_files(project: Path, write_spec) -> None:
    (project / "requirements.txt").write_text("-r other.txt\n")
    error, _ = spec_error(write_spec, OPTUNA + "requirements: requirements.txt\n")
    assert (
        error.message == "requirements file lines must not include other files, got '-r other.txt'"
    )


def test_requirements_must_not_be_empty_text(project: Path, write_spec) -> None:
    error, _ = spec_error(write_spec, OPTUNA + "requirements: ''\n")
    assert error.message == (
        "requirements must be a list of pip requirements or a requirements file, got ''"
    )


def test_requirements_must_be_a_list_or_a_file(project: Path, write_spec) -> None:
    error, _ = spec_error(write_spec, OPTUNA + "requirements: {six: 1}\n")
    assert error.field.startswith("requirements")


# --- mounts and results_layout ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "mounts: {mnt/data/x: results}\n",
            "mounts keys must be absolute paths below /, got 'mnt/data/x' ({file}: "
            "mounts.mnt/data/x); e.g. mounts: {{/mnt/data/my_bucket: data}}",
        ),
        (
            "mounts: {/mnt/../etc: results}\n",
            "mounts keys must be absolute paths below /, got '/mnt/../etc' ({file}: "
            "mounts./mnt/../etc); e.g. mounts: {{/mnt/data/my_bucket: data}}",
        ),
        (
            "mounts: {/mnt/data/x: model}\n",
            "mounts./mnt/data/x must be one of data, results, job, got 'model' ({file}: "
            "mounts./mnt/data/x)",
        ),
        (
            "mounts: {/mnt/data/x: data}\n",
            "mounts./mnt/data/x must map to a folder the spec has, got data, and the spec has "
            "no data ({file}: mounts./mnt/data/x); set data: (a folder or s3:// URI), or map "
            "the path to results",
        ),
        (
            "results_layout: ffdl\n",
            "results_layout ffdl must come with s3:// results, got None ({file}: "
            "results_layout); set results: s3://BUCKET, or leave results_layout out",
        ),
    ],
)
def test_mounts_and_results_layout_rules(project: Path, write_spec, extra: str, message: str):
    error, file = spec_error(write_spec, OPTUNA + extra)
    assert str(error) == message.format(file=file)


def test_a_mount_path_is_kept_without_its_trailing_slash(project: Path, write_spec):
    spec = load_spec(write_spec(OPTUNA + "mounts: {/mnt/results/out/: results}\n"))
    assert spec.mounts == {"/mnt/results/out": "results"}
    assert spec.notes == []  # named nowhere in the code folder: nothing to say


# --- Learners (resources.learners) -------------------------------------------------------------


def test_learners_and_placement_default_to_one_learner_packed(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(OPTUNA + "resources: {gpus: 1, cpus: 2, learners: 3}\n"))
    res = spec.resources
    assert (res.learners, res.placement) == (3, "pack")
    assert (res.trial_gpus, res.trial_cpus) == (3, 6)  # every learner's
    assert load_spec(write_spec(OPTUNA)).resources.learners == 1


def test_learners_must_be_a_positive_whole_number(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "resources: {learners: 0}\n")
    assert str(error) == (f"resources.learners must be >= 1, got 0 ({file}: resources.learners)")


def test_placement_must_be_pack_or_spread(project: Path, write_spec) -> None:
    error, file = spec_error(write_spec, OPTUNA + "resources: {learners: 2, placement: ring}\n")
    assert str(error) == (
        f"resources.placement must be one of pack, spread, got 'ring' ({file}: resources.placement)"
    )


@pytest.mark.parametrize(
    ("framework", "hint"),
    [
        (
            "caffe",
            "Caffe 1.0 trains on one machine only (it has no multi-node training); use "
            "resources.gpus for several GPUs of one machine",
        ),
        (
            "tensorflow",
            "run a tf.distribute program as framework: command (each learner gets RANK, "
            "WORLD_SIZE, MASTER_ADDR...), or use framework pytorch",
        ),
    ],
)
def test_frameworks_of_one_learner_refuse_several(
    project: Path, write_spec, framework: str, hint: str
) -> None:
    text = OPTUNA.replace("framework: python", f"framework: {framework}")
    if framework == "caffe":
        text = text.replace("entrypoint: train.py:train\n", "caffe: {solver: solver.prototxt}\n")
    error, file = spec_error(write_spec, text + "resources: {learners: 2}\n")
    assert str(error) == (
        f"resources.learners must be 1 for framework {framework}, got 2 ({file}: "
        f"resources.learners); {hint}"
    )
