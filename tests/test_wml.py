"""Watson Machine Learning training definitions: read as the FfDL manifests they describe."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.errors import SpecError
from sweeper.manifest import convert_manifest, is_manifest

KEY, SECRET = "AKIDWML0001", "wml-Secret-0001"
DEFINITION = f"""\
model_definition:
  name: digits-wml
  author: {{name: A. Tester, email: tester@example.org}}
  description: a WML-shaped definition of the project's own
  framework:
    name: pytorch
    version: "latest"
    runtimes: {{name: python, version: "3.11"}}
  execution:
    command: python3 fit.py --epochs 2
    compute_configuration: {{name: p100x2, nodes: 1}}
training_data_reference:
  name: wml-store
  type: s3
  connection:
    endpoint_url: http://127.0.0.1:9000
    access_key_id: {KEY}
    secret_access_key: {SECRET}
  source: {{bucket: wml_digits_data}}
training_results_reference:
  name: wml-store-results
  type: s3
  connection:
    endpoint_url: http://127.0.0.1:9000
    access_key_id: {KEY}
    secret_access_key: {SECRET}
  target: {{bucket: wml-digits-results}}
"""


def convert(text: str):
    return convert_manifest(yaml.safe_load(text), file="definition.yml")


def test_a_definition_is_a_manifest_not_a_spec():
    assert is_manifest(yaml.safe_load(DEFINITION))


def test_a_definition_becomes_the_spec_its_manifest_would():
    spec, store, _ = convert(DEFINITION)
    assert spec["name"] == "digits-wml"
    assert spec["command"] == ["bash", "-c", "python3 fit.py --epochs 2", "manifest"]
    assert spec["resources"] == {"gpus": 2}  # p100x2
    assert (spec["data"], spec["results"]) == ("s3://wml_digits_data", "s3://wml-digits-results")
    assert spec["results_layout"] == "ffdl"
    assert spec["mounts"] == {
        "/mnt/data/wml_digits_data": "data",
        "/mnt/results/wml-digits-results": "results",
        "/job": "job",
    }
    assert store.endpoint_url == "http://127.0.0.1:9000"
    assert (store.access_key, store.secret_key) == (KEY, SECRET)
    assert SECRET not in yaml.safe_dump(spec)


def test_a_one_gpu_configuration_and_no_references():
    text = DEFINITION.split("training_data_reference:")[0].replace("p100x2", "k80")
    spec, store, _ = convert(text)
    assert spec["resources"] == {"gpus": 1}
    assert store is None and "data" not in spec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("name: p100x2", "name: a100"),
            "model_definition.execution.compute_configuration.name must be a WML compute "
            "configuration such as k80, k80x2, p100, v100x2, got 'a100' (definition.yml: "
            "model_definition.execution.compute_configuration.name); the name sets the GPU "
            "count (x2: two); Ray gives trials any free GPU",
        ),
        (
            ("  execution:", "  executon:"),
            "model_definition keys must be one of name, author, description, framework, "
            "execution, got 'executon' (definition.yml: model_definition.executon); did you "
            "mean 'execution'?",
        ),
        (
            ("nodes: 1", "nodes: 0"),
            "model_definition.execution.compute_configuration.nodes must be a whole number of "
            "at least 1, got 0 (definition.yml: "
            "model_definition.execution.compute_configuration.nodes)",
        ),
        (
            ("name: pytorch", "name: theano"),
            "model_definition.framework.name must be one of caffe, caffe2, custom, h2o3, "
            "horovod, keras, mxnet, pytorch, pytorchmpi, tensorflow, torch, got 'theano' "
            "(definition.yml: model_definition.framework.name); custom runs any command",
        ),
        (
            ("  type: s3\n  connection:", "  type: swift\n  connection:"),
            "training_data_reference.type must be s3, got 'swift' (definition.yml: "
            "training_data_reference.type); sweeper reads training data from S3-compatible "
            "stores",
        ),
    ],
)
def test_errors_name_the_definitions_own_fields(change, message):
    with pytest.raises(SpecError) as caught:
        convert(DEFINITION.replace(*change, 1))
    assert str(caught.value) == message


def test_data_and_results_in_two_stores_are_refused():
    head, _, tail = DEFINITION.rpartition("127.0.0.1:9000")  # the results' endpoint
    text = head + "127.0.0.1:9100" + tail
    with pytest.raises(SpecError) as caught:
        convert(text)
    assert str(caught.value) == (
        "training_results_reference.connection must be the training data's connection, got "
        "another one (definition.yml: training_results_reference.connection); sweeper reaches "
        "one object store per sweep; copy the data there"
    )


def test_validate_and_convert_take_a_definition(tmp_path):
    (tmp_path / "fit.py").write_text("print('fit')\n")
    path = tmp_path / "definition.yml"
    path.write_text(DEFINITION)
    runner = CliRunner()
    done = runner.invoke(main, ["validate", str(path)])
    assert done.exit_code == 0, done.output
    assert done.stdout == f"{path}: valid (1 trials, command)\n"
    converted = runner.invoke(main, ["convert", str(path)])
    assert converted.exit_code == 0, converted.output
    assert SECRET not in converted.output and KEY not in converted.output
    assert yaml.safe_load(converted.stdout)["resources"] == {"gpus": 2}


def test_convert_refuses_a_document_that_is_neither_format(tmp_path):
    path = tmp_path / "experiment.yml"
    path.write_text("name: x\nframework: command\ncommand: 'true'\n")
    done = CliRunner().invoke(main, ["convert", str(path)])
    assert done.exit_code == 2
    assert done.stderr == (
        "error: manifest must have a framework mapping (an FfDL manifest) or a model_definition "
        f"(a Watson ML training definition), got neither ({path}: framework); this looks like a "
        "sweeper spec already\n"
    )
