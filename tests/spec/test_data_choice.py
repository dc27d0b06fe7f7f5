"""``data: {choice: [...]}``: data as a search dimension named ``data``; one message per rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.spec import Choice

HEAD = "name: demo\nframework: python\nentrypoint: train.py:train\n"
GRID = "search: {method: grid, metric: loss, mode: min}\n"
PARAMS = "parameters:\n  lr: {choice: [0.1, 0.01]}\n"


@pytest.fixture(autouse=True)
def local_dataset(project: Path) -> None:
    (project / "v3").mkdir()


def test_a_data_choice_is_the_first_dimension(spec_file) -> None:
    text = HEAD + GRID + PARAMS + "data: {choice: [s3://bkt/v1/, s3://bkt/v2/, ./v3]}\n"
    spec = spec_file.load(text)
    assert list(spec.dimensions) == ["data", "lr"]
    assert spec.dimensions["data"] == Choice(("s3://bkt/v1/", "s3://bkt/v2/", "./v3"))
    assert spec.trial_count() == 6 and spec.datasets == ["s3://bkt/v1/", "s3://bkt/v2/", "./v3"]
    assert spec.dataset_for({"data": "./v3", "lr": 0.1}) == "./v3"
    assert spec.training_params({"data": "./v3", "lr": 0.1}) == {"lr": 0.1}


def test_parameters_may_depend_on_the_dataset(spec_file) -> None:
    text = HEAD + GRID + PARAMS + "  crop: {choice: [8, 16], when: {data: s3://bkt/v2/}}\n"
    spec = spec_file.load(text + "data: {choice: [s3://bkt/v1/, s3://bkt/v2/]}\n")
    assert spec.trial_count() == 2 + 2 * 2


def test_a_data_choice_needs_choice(spec_file) -> None:
    assert spec_file.error(HEAD + GRID + PARAMS + "data: {options: [a, b]}\n") == (
        "data must be a folder, an s3:// URI or {choice: [...]} of them, got keys options "
        "(experiment.yml: data); write e.g. data: {choice: [s3://bucket/v1/, s3://bucket/v2/]}"
    )


def test_a_data_choice_must_not_be_empty(spec_file) -> None:
    assert spec_file.error(HEAD + GRID + PARAMS + "data: {choice: []}\n") == (
        "data.choice must be a non-empty list of folders or s3:// URIs, got [] "
        "(experiment.yml: data.choice)"
    )


def test_each_dataset_once(spec_file) -> None:
    text = HEAD + GRID + PARAMS + "data: {choice: [s3://bkt/v1/, s3://bkt/v1/]}\n"
    assert spec_file.error(text) == (
        "data.choice must list each dataset once, got 's3://bkt/v1/' twice "
        "(experiment.yml: data.choice.1)"
    )


def test_a_local_choice_must_exist(spec_file) -> None:
    text = HEAD + GRID + PARAMS + "data: {choice: [./v3, ./v4]}\n"
    assert spec_file.error(text) == (
        "data.choice[1] must be an existing path, got './v4' (experiment.yml: "
        f"data.choice.1); relative paths are relative to {spec_file.folder}"
    )


def test_a_choice_must_be_a_path_or_an_s3_uri(spec_file) -> None:
    text = HEAD + GRID + PARAMS + "data: {choice: ['gs://b/v1/']}\n"
    assert spec_file.error(text).startswith(
        "data.choice[0] must be a local path or an s3:// URI, got 'gs://b/v1/' "
        "(experiment.yml: data.choice.0)"
    )


def test_no_parameter_may_be_named_data_beside_a_choice(spec_file) -> None:
    text = HEAD + GRID + PARAMS + "  data: 3\ndata: {choice: [./v3]}\n"
    assert spec_file.error(text) == (
        "parameters.data must not be set when data is a choice, got 3 (experiment.yml: "
        "parameters.data); the data choice is the data dimension; rename the parameter"
    )
