"""FfDL/WML manifests: conversion, what cannot be honoured, secrets, and a real run."""

from __future__ import annotations

import json

import mlflow
import pytest
import yaml
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.errors import SpecError
from sweeper.execution._sweep import run
from sweeper.manifest import convert_manifest, is_manifest
from sweeper.spec import load_spec

SECRET = "s3cr3t-Pa55word-xyz"

MANIFEST = f"""\
name: tf_convolutional_network
description: Convolutional network model using tensorflow
version: "1.0"
gpus: 0
cpus: 0.5
memory: 1Gb
learners: 1
data_stores:
  - id: sl-internal-os
    type: mount_cos
    training_data:
      container: tf-training-data
    training_results:
      container: tf-trained-model
    connection:
      auth_url: http://127.0.0.1:9000
      user_name: ACCESSKEY123
      password: {SECRET}
framework:
  name: tensorflow
  version: "1.5.0-py3"
  command: >
    python3 convolutional_network.py --trainImagesFile ${{DATA_DIR}}/train-images-idx3-ubyte.gz
      --learningRate 0.001 --trainingIters 2000
evaluation_metrics:
  type: tensorboard
  in: "$JOB_STATE_DIR/logs/tb"
"""


def convert(text: str):
    return convert_manifest(yaml.safe_load(text), file="manifest.yml")


def test_a_manifest_is_told_apart_from_a_spec():
    assert is_manifest(yaml.safe_load(MANIFEST))
    assert not is_manifest({"name": "x", "framework": "pytorch"})


def test_conversion_keeps_resources_command_and_stores_without_secrets():
    spec, store, notes = convert(MANIFEST)
    assert spec["name"] == "tf_convolutional_network"
    assert spec["framework"] == "command"
    assert spec["command"] == [
        "bash",
        "-c",
        "python3 convolutional_network.py --trainImagesFile ${DATA_DIR}/train-images-idx3-ubyte.gz"
        " --learningRate 0.001 --trainingIters 2000",
        "manifest",
    ]
    assert spec["resources"] == {"gpus": 0, "cpus": 0.5, "memory": "1Gb"}
    assert spec["data"] == "s3://tf-training-data"
    assert spec["results"] == "s3://tf-trained-model"
    assert spec["search"] == {"method": "grid", "metric": "test_accuracy", "mode": "max"}
    assert store.endpoint_url == "http://127.0.0.1:9000"
    assert (store.access_key, store.secret_key) == ("ACCESSKEY123", SECRET)
    assert SECRET not in repr(store)
    assert SECRET not in json.dumps(spec)
    # FfDL's mounts of both buckets, its results layout, its TensorBoard folder.
    assert spec["mounts"] == {
        "/mnt/data/tf-training-data": "data",
        "/mnt/results/tf-trained-model": "results",
        "/job": "job",  # the volume FfDL's learners shared
    }
    assert spec["results_layout"] == "ffdl"
    assert spec["metrics"] == {"tensorboard": "$JOB_STATE_DIR/logs/tb"}
    assert notes == [
        "framework.version 1.5.0-py3 asks for tensorflow 1.5; this machine has "
        f"{tensorflow_distribution()}, which code written for 1.5 may not run on"
    ]


def tensorflow_distribution() -> str:
    from importlib import metadata

    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    raise AssertionError("the tests run with TensorFlow installed (the tensorflow extra)")


@pytest.mark.parametrize(
    ("version", "note"),
    [
        ("latest", None),  # no version: nothing to compare
        ("0925mpi", None),  # an image tag
        ("gpu-py3", None),
        ("99.1-py3", "framework.version 99.1-py3 asks for tensorflow 99.1; this machine has "),
    ],
)
def test_framework_version_is_noted_against_the_installed_one(version, note):
    _, _, notes = convert(MANIFEST.replace('version: "1.5.0-py3"', f"version: {version}"))
    assert [n for n in notes if n.startswith("framework.version")][:1] == ([] if note is None else [
        note + f"{tensorflow_distribution()}, which code written for 99.1 may not run on"
    ])  # fmt: skip


def test_a_framework_this_machine_lacks_is_noted_too():
    text = MANIFEST.replace("name: tensorflow", "name: mxnet").replace('"1.5.0-py3"', '"1.1"')
    _, _, notes = convert(text)
    assert notes == [
        "framework.version 1.1 asks for mxnet 1.1, which this machine does not have; the "
        "command runs with whatever it imports"
    ]


def test_a_host_mount_store_reads_folders_of_the_machine(tmp_path):
    text = MANIFEST.replace("type: mount_cos", "type: mount_volume").replace(
        "      auth_url: http://127.0.0.1:9000\n",
        f"      type: host_mount\n      path: {tmp_path}\n      auth_url: x\n",
    )
    spec, store, _ = convert(text)
    assert store is None
    assert (spec["data"], spec["results"]) == (
        f"{tmp_path}/tf-training-data",
        f"{tmp_path}/tf-trained-model",
    )
    assert spec["mounts"] == {"/job": "job"} and "results_layout" not in spec


@pytest.mark.parametrize(
    ("connection", "message"),
    [
        (
            "      type: nfs\n      path: /cosdata\n",
            "data_stores.0.connection.type must be host_mount for a mount_volume store, got "
            "'nfs' (manifest.yml: data_stores.0.connection.type)",
        ),
        (
            "      type: host_mount\n      path: cosdata\n",
            "data_stores.0.connection.path must be an absolute folder of this machine, got "
            "'cosdata' (manifest.yml: data_stores.0.connection.path); the host folder FfDL "
            "mounted; its containers are folders in it",
        ),
    ],
)
def test_a_host_mount_store_needs_its_type_and_an_absolute_path(connection, message):
    text = MANIFEST.replace("type: mount_cos", "type: mount_volume").replace(
        "      auth_url: http://127.0.0.1:9000\n", connection
    )
    with pytest.raises(SpecError) as caught:
        convert(text)
    assert str(caught.value) == message


def test_caffe_manifest_uses_the_caffe_adapter():
    text = MANIFEST.replace(
        "python3 convolutional_network.py --trainImagesFile ${DATA_DIR}/train-images-idx3-ubyte.gz",
        "caffe train -solver lenet_solver.prototxt -gpu all",
    ).replace("      --learningRate 0.001 --trainingIters 2000\n", "")
    spec, _, _ = convert(text)
    assert spec["framework"] == "caffe"
    assert spec["caffe"] == {"solver": "lenet_solver.prototxt"}


def _caffe_command(command: str):
    first = "python3 convolutional_network.py --trainImagesFile ${DATA_DIR}/"
    text = MANIFEST.replace(first + "train-images-idx3-ubyte.gz", command)
    return convert(text.replace("      --learningRate 0.001 --trainingIters 2000\n", ""))


@pytest.mark.parametrize(
    ("command", "block"),
    [
        ("caffe train -gpu all -solver lenet_solver.prototxt", {"solver": "lenet_solver.prototxt"}),
        ("caffe train --solver=s.prototxt -gpu 0,1", {"solver": "s.prototxt"}),
        ("/opt/caffe/build/tools/caffe train -solver s.prototxt", {"solver": "s.prototxt"}),
        (
            "caffe train -weights init.caffemodel -solver s.prototxt -sigint_effect snapshot",
            {"solver": "s.prototxt", "weights": "init.caffemodel"},
        ),
        (
            "caffe train -solver s.prototxt -snapshot s_iter_100.solverstate -iterations 50",
            {"solver": "s.prototxt", "snapshot": "s_iter_100.solverstate"},
        ),
    ],
)
def test_caffe_flags_in_any_order_use_the_caffe_adapter(command: str, block: dict) -> None:
    spec, _, notes = _caffe_command(command)
    assert spec["framework"] == "caffe"
    assert spec["caffe"] == block
    for flag in ("-gpu", "-sigint_effect", "-iterations"):
        if flag in command:
            assert any(note.startswith(f"framework.command {flag}:") for note in notes), notes


@pytest.mark.parametrize(
    "command",
    [
        "caffe train -gpu all",  # no solver
        "caffe train -solver s.prototxt -unknown 1",
        "caffe train -solver s.prototxt | tee log",
        "caffe test -model net.prototxt -weights w.caffemodel",
        "caffe train -solver",
        "caffe train -solver 's.prototxt",  # unbalanced quote
    ],
)
def test_other_caffe_command_lines_run_as_commands(command: str) -> None:
    spec, _, _ = _caffe_command(command)
    assert spec["framework"] == "command"


def test_wml_hyperparameters_become_a_sweep():
    text = MANIFEST + (
        "hyper_parameters_optimization:\n"
        "  method:\n"
        "    name: rbfopt\n"
        "    parameters:\n"
        "      - {name: objective, string_value: accuracy}\n"
        "      - {name: maximize_or_minimize, string_value: maximize}\n"
        "      - {name: num_optimizer_steps, int_value: 7}\n"
        "  hyper_parameters:\n"
        "    - {name: learning_rate, double_range: {min_value: 0.001, max_value: 0.01, "
        "step: 0.001}}\n"
        "    - {name: conv_filters, int_range: {min_value: 8, max_value: 32, step: 8}}\n"
        "    - {name: optimizer, string_values: [adam, sgd]}\n"
        "    - {name: batch, int_values: [32, 64]}\n"
    )
    spec, _, _ = convert(text)
    assert spec["search"] == {
        "method": "optuna", "sampler": "gp", "metric": "accuracy", "mode": "max", "trials": 7,
    }  # fmt: skip
    assert spec["parameters"] == {
        "learning_rate": {"uniform": [0.001, 0.01], "step": 0.001},
        "conv_filters": {"int": [8, 32], "step": 8},
        "optimizer": {"choice": ["adam", "sgd"]},
        "batch": {"choice": [32, 64]},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("learners: 1", "learners: 0"),
            "learners must be a whole number of at least 1, got 0 (manifest.yml: learners)",
        ),
        (
            ("learners: 1", "learners: two"),
            "learners must be a whole number of at least 1, got 'two' (manifest.yml: learners)",
        ),
        (
            ("learners: 1", "learners: 1\ngpu_type: nvidia-TeslaK80"),
            "gpu_type must be left out, got 'nvidia-TeslaK80' (manifest.yml: gpu_type); Ray gives "
            "trials any free GPU; choosing a GPU model is not supported",
        ),
        (
            ("learners: 1", "learner: 1"),
            "keys must be one of name, description, version, gpus, cpus, memory, gpu_type, "
            "learners, storage, data_stores, framework, evaluation_metrics, "
            "hyper_parameters_optimization, got 'learner' (manifest.yml: learner); "
            "did you mean 'learners'?",
        ),
        (
            ("type: mount_cos", "type: swift_datastore"),
            "data_stores.0.type must be one of s3_datastore, mount_cos, mount_volume, got "
            "'swift_datastore' (manifest.yml: data_stores.0.type)",
        ),
        (
            ("type: tensorboard", "type: regex_extractor"),
            "evaluation_metrics.type must be one of emetrics_file, tensorboard, logger, got "
            "'regex_extractor' (manifest.yml: evaluation_metrics.type); sweeper reads EMetrics "
            "($LOG_DIR/evaluation-metrics.txt), val_dict_list.json and TensorBoard event files; "
            "other extractors are not supported",
        ),
        (
            ("  command: >", "  comand: >"),
            "framework keys must be one of name, version, image_tag, command, got 'comand' "
            "(manifest.yml: framework.comand); did you mean 'command'?",
        ),
    ],
)
def test_what_sweeper_cannot_honour_is_a_clear_error(change, message):
    with pytest.raises(SpecError) as caught:
        convert(MANIFEST.replace(*change))
    assert str(caught.value) == message
    assert SECRET not in str(caught.value)


HYPERBAND = MANIFEST + (
    "hyper_parameters_optimization:\n"
    "  method:\n"
    "    name: hyperband\n"
    "    parameters:\n"
    "      - {name: objective, string_value: loss}\n"
    "      - {name: maximize_or_minimize, string_value: minimize}\n"
    "      - {name: num_optimizer_steps, int_value: 30}\n"
    "      - {name: max_resource, int_value: 27}\n"
    "  hyper_parameters:\n"
    "    - {name: learning_rate, double_range: {min_value: 0.001, max_value: 0.01}}\n"
)


def test_hyperband_becomes_a_random_search_with_hyperband_early_stopping():
    spec, _, notes = convert(HYPERBAND)
    assert spec["search"] == {"method": "random", "metric": "loss", "mode": "min", "trials": 30}
    assert spec["early_stopping"] == {"method": "hyperband", "max_steps": 27}
    assert spec["parameters"] == {"learning_rate": {"uniform": [0.001, 0.01]}}
    assert notes[-1] == (
        "method hyperband: a random search whose trials hyperband stops early, judged at the "
        "steps their metrics report, up to max_resource 27 steps"
    )


def test_hyperband_reads_min_resource_and_reduction_factor():
    text = HYPERBAND.replace(
        "      - {name: max_resource, int_value: 27}\n",
        "      - {name: max_resource, double_value: 81.0}\n"
        "      - {name: min_resource, int_value: 3}\n"
        "      - {name: reduction_factor, double_value: 2.5}\n",
    )
    spec, _, _ = convert(text)
    assert spec["early_stopping"] == {
        "method": "hyperband", "max_steps": 81, "grace_period": 3, "reduction_factor": 2.5,
    }  # fmt: skip


def test_other_methods_have_no_early_stopping():
    spec, _, notes = convert(HYPERBAND.replace("name: hyperband", "name: bandit"))
    assert "early_stopping" not in spec
    assert not any("hyperband" in note for note in notes)


def test_a_converted_hyperband_manifest_is_a_valid_spec(tmp_path):
    (tmp_path / "manifest.yml").write_text(HYPERBAND)
    spec = load_spec(tmp_path / "manifest.yml")
    assert spec.search.method == "random"
    assert spec.early_stopping.method == "hyperband"
    assert spec.early_stopping.effective_brackets == 4


def test_hyperband_needs_max_resource():
    text = HYPERBAND.replace("      - {name: max_resource, int_value: 27}\n", "")
    with pytest.raises(SpecError) as caught:
        convert(text)
    assert str(caught.value) == (
        "hyper_parameters_optimization.method.parameters must include max_resource for method "
        "hyperband, got nothing (manifest.yml: hyper_parameters_optimization.method.parameters); "
        "add {name: max_resource, int_value: N}, N the most steps (iterations or epochs) a trial "
        "reports; hyperband stops trials early against it"
    )
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "{name: max_resource, int_value: 0}",
            "hyper_parameters_optimization.method.parameters.3 (max_resource) must be an integer "
            ">= 1, got 0 (manifest.yml: hyper_parameters_optimization.method.parameters.3)",
        ),
        (
            "{name: max_resource, double_value: 2.5}",
            "hyper_parameters_optimization.method.parameters.3 (max_resource) must be an integer "
            ">= 1, got 2.5 (manifest.yml: hyper_parameters_optimization.method.parameters.3)",
        ),
        (
            "{name: max_resource, string_value: many}",
            "hyper_parameters_optimization.method.parameters.3 (max_resource) must be an integer "
            ">= 1, got 'many' (manifest.yml: hyper_parameters_optimization.method.parameters.3)",
        ),
        (
            "{name: max_resource, double_value: .inf}",
            "hyper_parameters_optimization.method.parameters.3 (max_resource) must be an integer "
            ">= 1, got inf (manifest.yml: hyper_parameters_optimization.method.parameters.3)",
        ),
        (
            "{name: max_resource, int_value: 1}",
            "hyper_parameters_optimization.method.parameters.3 (max_resource) must be greater "
            "than min_resource 1, got 1 (manifest.yml: "
            "hyper_parameters_optimization.method.parameters.3); trials run min_resource steps "
            "before hyperband may stop them",
        ),
        (
            "{name: max_resource, int_value: 9}\n      - {name: reduction_factor, int_value: 1}",
            "hyper_parameters_optimization.method.parameters.4 (reduction_factor) must be a "
            "number > 1, got 1 (manifest.yml: hyper_parameters_optimization.method.parameters.4)",
        ),
    ],
)
def test_bad_hyperband_parameters(option, message):
    text = HYPERBAND.replace("{name: max_resource, int_value: 27}", option)
    with pytest.raises(SpecError) as caught:
        convert(text)
    assert str(caught.value) == message


def test_unknown_optimizer_lists_hyperband():
    text = HYPERBAND.replace("name: hyperband", "name: bayes")
    with pytest.raises(SpecError) as caught:
        convert(text)
    assert str(caught.value) == (
        "hyper_parameters_optimization.method.name must be one of random, rbfopt, bandit, "
        "hyperband, got 'bayes' (manifest.yml: hyper_parameters_optimization.method.name)"
    )


def test_convert_writes_early_stopping_and_its_note(tmp_path, in_tmp):
    (tmp_path / "manifest.yml").write_text(HYPERBAND)
    result = CliRunner().invoke(main, ["convert", "manifest.yml", "-o", "experiment.yml"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "experiment.yml").read_text()
    assert yaml.safe_load(text)["early_stopping"] == {"method": "hyperband", "max_steps": 27}
    assert "# Note: method hyperband: a random search" in text
    assert SECRET not in text


def test_convert_writes_a_spec_without_the_credentials(tmp_path, in_tmp):
    (tmp_path / "manifest.yml").write_text(MANIFEST)
    result = CliRunner().invoke(main, ["convert", "manifest.yml", "-o", "experiment.yml"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "experiment.yml").read_text()
    assert SECRET not in text and "ACCESSKEY123" not in text
    assert "endpoint: http://127.0.0.1:9000" in text
    assert yaml.safe_load(text)["framework"] == "command"


TRAIN = """\
import json, os, sys
config = json.load(open("config.json"))
lr = config.get("learning_rate", 0.5)
log_dir = os.environ["LOG_DIR"]
for epoch in (1, 2, 3):
    accuracy = 1.0 - abs(lr - 0.3) / epoch
    record = {"meta": {"training_id": os.environ["TRAINING_ID"], "time": 0, "rindex": epoch,
                       "subid": os.environ["SUBID"]},
              "grouplabel": "test",
              "etimes": {"epoch": {"type": 2, "value": str(epoch)}},
              "values": {"accuracy": {"type": 3, "value": str(accuracy)}}}
    with open(os.path.join(log_dir, "evaluation-metrics.txt"), "a") as out:
        out.write(json.dumps(record) + "\\n")
history = [{"steps": 3, "accuracy": accuracy}]
json.dump(history, open(os.path.join(os.environ["RESULT_DIR"], "val_dict_list.json"), "w"))
open(os.path.join(os.environ["RESULT_DIR"], "model.txt"), "w").write(str(lr))
print("done with", sys.argv[1:2])
"""

COMMAND_MANIFEST = """\
name: hpo demo
description: a command manifest with a WML hyperparameter section
cpus: 1
memory: 512MiB
framework:
  name: custom
  command: python3 train.py && echo trained in $MODEL_DIR
evaluation_metrics:
  type: emetrics_file
hyper_parameters_optimization:
  method:
    name: random
    parameters:
      - {name: objective, string_value: accuracy}
      - {name: maximize_or_minimize, string_value: maximize}
      - {name: num_optimizer_steps, int_value: 3}
  hyper_parameters:
    - {name: learning_rate, double_values: [0.1, 0.3, 0.5]}
"""


@pytest.mark.usefixtures("ray_session")
def test_a_command_manifest_runs_unchanged(tmp_path, settings):
    folder = tmp_path / "model-definition"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    (folder / "manifest.yml").write_text(COMMAND_MANIFEST)
    spec = load_spec(folder / "manifest.yml")
    assert spec.from_manifest and spec.name == "hpo-demo"
    result = run(spec, settings, echo=None)
    frame = result.results
    assert len(frame) == 3 and set(frame["state"]) == {"completed"}
    # The objective comes from val_dict_list.json; EMetrics' test group arrives as test_*.
    best = result.best
    assert best["accuracy"] == pytest.approx(1.0 - abs(best["params.learning_rate"] - 0.3) / 3)
    client = mlflow.MlflowClient(result.tracking_uri)
    history = client.get_metric_history(best["mlflow_run_id"], "test_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3]
    for trial in frame["trial"]:
        trial_dir = result.sweep_dir / "trials" / trial
        assert (trial_dir / "output" / "model.txt").is_file()
        assert "trained in " + str(trial_dir / "work") in (trial_dir / "trial.log").read_text()
    # What the sweep recorded is the converted spec, not the manifest's text.
    assert "bash" in (result.sweep_dir / "spec.yml").read_text()


HPO = MANIFEST + (
    "hyper_parameters_optimization:\n"
    "  method:\n"
    "    name: random\n"
    "    parameters:\n"
    "      - {name: objective, string_value: accuracy}\n"
    "      - {name: maximize_or_minimize, string_value: maximize}\n"
    "      - {name: num_optimizer_steps, int_value: 7}\n"
    "  hyper_parameters:\n"
    "    - {name: lr, double_range: {min_value: 0.001, max_value: 0.01}}\n"
)
P = "hyper_parameters_optimization.method.parameters"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("    training_data:\n      container: tf-training-data\n", "    training_data: x\n"),
            "data_stores.0.training_data must be a mapping, got 'x' "
            "(manifest.yml: data_stores.0.training_data)",
        ),
        (
            ("  name: tensorflow", "  name: tensorflw"),
            "framework.name must be one of caffe, caffe2, custom, h2o3, horovod, keras, mxnet, "
            "pytorch, pytorchmpi, tensorflow, torch, got 'tensorflw' (manifest.yml: "
            "framework.name); did you mean 'tensorflow'?",
        ),
        (
            ("string_value: maximize", "string_value: sideways"),
            f"{P}.1 (maximize_or_minimize) must be maximize or minimize, got 'sideways' "
            f"(manifest.yml: {P}.1)",
        ),
        (
            ("int_value: 7", "int_value: many"),
            f"{P}.2 (num_optimizer_steps) must be an integer >= 1, got 'many' "
            f"(manifest.yml: {P}.2)",
        ),
        (
            ("{min_value: 0.001, max_value: 0.01}", "[0.001, 0.01]"),
            "hyper_parameters_optimization.hyper_parameters.0.double_range must be a mapping, "
            "got [0.001, 0.01] (manifest.yml: "
            "hyper_parameters_optimization.hyper_parameters.0.double_range)",
        ),
    ],
)
def test_values_of_the_wrong_kind_are_a_clear_error(change, message):
    text = HPO.replace(*change)
    with pytest.raises(SpecError) as caught:
        convert(text)
    assert str(caught.value) == message
    assert SECRET not in str(caught.value)


def test_data_stores_as_text_is_a_clear_error():
    data = yaml.safe_load(MANIFEST)
    data["data_stores"] = "s3"
    with pytest.raises(SpecError) as caught:
        convert_manifest(data, file="manifest.yml")
    assert str(caught.value) == (
        "data_stores must be a list of one store, got 's3' (manifest.yml: data_stores); "
        "- {id: ..., type: s3_datastore, training_data: {container: BUCKET}, ...}"
    )


def test_a_connection_as_text_is_a_clear_error():
    data = yaml.safe_load(MANIFEST)
    data["data_stores"][0]["connection"] = "http://x"
    with pytest.raises(SpecError) as caught:
        convert_manifest(data, file="manifest.yml")
    assert str(caught.value) == (
        "data_stores.0.connection must be a mapping, got 'http://x' "
        "(manifest.yml: data_stores.0.connection)"
    )


def test_an_error_in_the_converted_spec_names_the_manifests_field(tmp_path):
    (tmp_path / "manifest.yml").write_text(MANIFEST.replace("gpus: 0", "gpus: -1"))
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "manifest.yml")
    assert str(caught.value) == f"gpus must be >= 0, got -1 ({tmp_path / 'manifest.yml'}: gpus)"


def test_convert_refuses_what_validate_refuses(tmp_path, in_tmp):
    (tmp_path / "manifest.yml").write_text(HPO.replace("int_value: 7", "int_value: 1000000"))
    result = CliRunner().invoke(main, ["convert", "manifest.yml", "-o", "experiment.yml"])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {P}.2 must be <= 100000, got 1000000 (manifest.yml: {P}.2)\n")
    assert not (tmp_path / "experiment.yml").exists()


def test_a_parameter_placeholder_in_a_manifest_command_is_filled_in_quoted(tmp_path):
    from sweeper.frameworks.command import CommandAdapter

    text = HPO.replace("--learningRate 0.001", "--learningRate ${lr}")
    (tmp_path / "manifest.yml").write_text(text)
    spec = load_spec(tmp_path / "manifest.yml")
    argv = CommandAdapter(spec).argv({"lr": 0.005}, {})
    assert "--learningRate 0.005 " in argv[2] and "${DATA_DIR}" in argv[2]


def test_an_unknown_placeholder_in_a_manifest_command_is_an_error(tmp_path):
    text = HPO.replace("--learningRate 0.001", "--learningRate ${rate}")
    (tmp_path / "manifest.yml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "manifest.yml")
    assert str(caught.value) == (
        f"framework.command placeholders must name a parameter, got '${{rate}}' "
        f"({tmp_path / 'manifest.yml'}: framework.command); or write ${{args}}"
    )


def test_learners_become_the_specs_learners():
    spec, _, _ = convert(MANIFEST.replace("learners: 1", "learners: 2"))
    assert spec["resources"]["learners"] == 2
    assert "learners" not in convert(MANIFEST)[0]["resources"]  # 1, the default


@pytest.mark.parametrize(
    "change",
    [
        ("name: tensorflow", "name: horovod"),
        ("python3 convolutional_network.py", "horovodrun -np 2 python3 convolutional_network.py"),
        ("python3 convolutional_network.py", "mpirun -np 2 python3 convolutional_network.py"),
    ],
)
def test_horovod_is_refused_naming_torch_distributed(change):
    with pytest.raises(SpecError) as caught:
        convert(MANIFEST.replace("learners: 1", "learners: 2").replace(*change))
    message = str(caught.value)
    assert message.startswith("framework.command must not need Horovod or MPI, got ")
    assert message.endswith(
        "(manifest.yml: framework.command); Horovod (horovodrun, mpirun) is not supported; "
        "torch.distributed is: each learner gets NUM_LEARNERS, LEARNER_ID, MASTER_ADDR, "
        "MASTER_PORT, RANK and WORLD_SIZE (init_process_group('gloo' or 'nccl', "
        "init_method='env://'))"
    )


def test_a_caffe_manifest_of_several_learners_is_refused_in_its_own_terms(tmp_path):
    (tmp_path / "lenet_solver.prototxt").write_text('net: "lenet.prototxt"\nmax_iter: 10\n')
    text = (
        MANIFEST.replace("learners: 1", "learners: 2")
        .replace(
            "python3 convolutional_network.py --trainImagesFile "
            "${DATA_DIR}/train-images-idx3-ubyte.gz",
            "caffe train -solver lenet_solver.prototxt",
        )
        .replace("      --learningRate 0.001 --trainingIters 2000\n", "")
    )
    (tmp_path / "manifest.yml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "manifest.yml")
    assert str(caught.value) == (
        f"learners must be 1 for framework caffe, got 2 ({tmp_path / 'manifest.yml'}: "
        "learners); Caffe 1.0 trains on one machine only (it has no multi-node training); use "
        "resources.gpus for several GPUs of one machine"
    )
