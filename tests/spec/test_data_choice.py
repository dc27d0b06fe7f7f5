"""``data: {choice: [...]}``: data as a search dimension named ``data``; one message per rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.errors import SpecError
from sweeper.spec import Choice, load_spec

HEAD = "name: demo\nframework: python\nentrypoint: train.py:train\n"
GRID = "search: {method: grid, metric: loss, mode: min}\n"
PARAMS = "parameters:\n  lr: {choice: [0.1, 0.01]}\n"


@pytest.fixture
def project(in_tmp: Path) -> Path:
    (in_tmp / "train.py").write_text("def train(params, ctx):\n    pass\n", encoding="utf-8")
    (in_tmp / "v3").mkdir()
    return in_tmp


def load(project: Path, text: str):
    (project / "experiment.yml").write_text(text, encoding="utf-8")
    return load_spec("experiment.yml")


def error_of(project: Path, text: str) -> str:
    with pytest.raises(SpecError) as caught:
        load(project, text)
    return str(caught.value)


def test_a_data_choice_is_the_first_dimension(project: Path) -> None:
    text = HEAD + GRID + PARAMS + "data: {choice: [s3://bkt/v1/, s3://bkt/v2/, ./v3]}\n"
    spec = load(project, text)
    assert list(spec.dimensions) == ["data", "lr"]
    assert spec.dimensions["data"] == Choice(("s3://bkt/v1/", "s3://bkt/v2/", "./v3"))
    assert spec.trial_count() == 6 and spec.datasets == ["s3://bkt/v1/", "s3://bkt/v2/", "./v3"]
    assert spec.dataset_for({"data": "./v3", "lr": 0.1}) == "./v3"
    assert spec.training_params({"data": "./v3", "lr": 0.1}) == {"lr": 0.1}


def test_parameters_may_depend_on_the_dataset(project: Path) -> None:
    text = HEAD + GRID + PARAMS + "  crop: {choice: [8, 16], when: {data: s3://bkt/v2/}}\n"
    spec = load(project, text + "data: {choice: [s3://bkt/v1/, s3://bkt/v2/]}\n")
    assert spec.trial_count() == 2 + 2 * 2


def test_a_data_choice_needs_choice(project: Path) -> None:
    assert error_of(project, HEAD + GRID + PARAMS + "data: {options: [a, b]}\n") == (
        "data must be a folder, an s3:// URI or {choice: [...]} of them, got keys options "
        "(experiment.yml: data); write e.g. data: {choice: [s3://bucket/v1/, s3://bucket/v2/]}"
    )


def test_a_data_choice_must_not_be_empty(project: Path) -> None:
    assert error_of(project, HEAD + GRID + PARAMS + "data: {choice: []}\n") == (
        "data.choice must be a non-empty list of folders or s3:// URIs, got [] "
        "(experiment.yml: data.choice)"
    )


def test_each_dataset_once(project: Path) -> None:
    text = HEAD + GRID + PARAMS + "data: {choice: [s3://bkt/v1/, s3://bkt/v1/]}\n"
    assert error_of(project, text) == (
        "data.choice must list each dataset once, got 's3://bkt/v1/' twice "
        "(experiment.yml: data.choice.1)"
    )


def test_a_local_choice_must_exist(project: Path) -> None:
    text = HEAD + GRID + PARAMS + "data: {choice: [./v3, ./v4]}\n"
    assert error_of(project, text) == (
        "data.choice[1] must be an existing path, got './v4' (experiment.yml: "
        f"data.choice.1); relative paths are relative to {project}"
    )


def test_a_choice_must_be_a_path_or_an_s3_uri(project: Path) -> None:
    text = HEAD + GRID + PARAMS + "data: {choice: ['gs://b/v1/']}\n"
    assert error_of(project, text).startswith(
        "data.choice[0] must be a local path or an s3:// URI, got 'gs://b/v1/' "
        "(experiment.yml: data.choice.0)"
    )


def test_no_parameter_may_be_named_data_beside_a_choice(project: Path) -> None:
    text = HEAD + GRID + PARAMS + "  data: 3\ndata: {choice: [./v3]}\n"
    assert error_of(project, text) == (
        "parameters.data must not be set when data is a choice, got 3 (experiment.yml: "
        "parameters.data); the data choice is the data dimension; rename the parameter"
    )
