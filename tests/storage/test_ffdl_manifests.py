"""Manifests in the shapes of the original service's own examples, run unchanged against a real
S3-protocol server: legacy bucket names, FfDL's /mnt/data and /mnt/results paths, ``caffe train
-gpu all -solver``, and FfDL's results layout (``<results bucket>/training-<id>/``).

The files are the project's own, written in the shapes FfDL's examples have (IBM/FfDL's
``etc/examples/caffe-model``): nothing is copied from them.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import boto3
import mlflow
import numpy as np
import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.execution._sweep import run
from sweeper.spec import load_spec

pytestmark = [pytest.mark.s3, pytest.mark.usefixtures("ray_session")]

CAFFE_MANIFEST = """\
name: digits-caffe-ffdl
version: "1.0"
gpus: 0
cpus: 1
memory: 500MiB
learners: 1
data_stores:
  - id: object-store
    type: mount_cos
    training_data: {{container: {data}}}
    training_results: {{container: {results}}}
    connection: {{auth_url: {endpoint}, user_name: ffdluser, password: ffdlpass}}
framework:
  name: caffe
  version: "cpu"
  command: >
    caffe train -gpu all -solver digits_solver.prototxt
"""
SOLVER = """\
net: "./digits_net.prototxt"
test_iter: 1
test_interval: 30
base_lr: 0.1
lr_policy: "fixed"
momentum: 0.9
display: 30
max_iter: 60
snapshot: 30
snapshot_prefix: "./digits"
solver_mode: CPU
"""
# An LMDB per split, named by FfDL's mount path of the data bucket.
NET = """\
name: "digits_lmdb"
layer {{
  name: "digits" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ scale: 0.0625 }}
  data_param {{ source: "/mnt/data/{data}/train/" batch_size: 64 backend: LMDB }}
}}
layer {{
  name: "digits" type: "Data" top: "data" top: "label" include {{ phase: TEST }}
  transform_param {{ scale: 0.0625 }}
  data_param {{ source: "/mnt/data/{data}/test/" batch_size: 297 backend: LMDB }}
}}
layer {{
  name: "hidden" type: "InnerProduct" bottom: "data" top: "hidden"
  inner_product_param {{ num_output: 64 weight_filler {{ type: "xavier" }} }}
}}
layer {{ name: "relu" type: "ReLU" bottom: "hidden" top: "hidden" }}
layer {{
  name: "out" type: "InnerProduct" bottom: "hidden" top: "out"
  inner_product_param {{ num_output: 10 weight_filler {{ type: "xavier" }} }}
}}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "out" bottom: "label" top: "loss" }}
layer {{
  name: "accuracy" type: "Accuracy" bottom: "out" bottom: "label" top: "accuracy"
  include {{ phase: TEST }}
}}
"""


def s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def keys(endpoint: str, bucket: str) -> list[str]:
    pages = s3(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def legacy_buckets(endpoint: str, tag: str) -> tuple[str, str]:
    """Two new buckets with FfDL-style names (underscores: not DNS names)."""
    data, results = f"digits_training_data_{tag}", f"digits_trained_model_{tag}"
    for name in (data, results):
        s3(endpoint).create_bucket(Bucket=name)
    return data, results


def idx_files(folder: Path) -> dict[str, Path]:
    """scikit-learn's digits in MNIST's idx format (8x8, values 0-16), train and test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images.astype(np.uint8), digits.target.astype(np.uint8)
    files = {}
    for split, part in (("train", slice(0, 1500)), ("test", slice(1500, None))):
        x, y = images[part], labels[part]
        files[f"{split}-images"] = folder / f"{split}-images-idx3-ubyte"
        files[f"{split}-images"].write_bytes(struct.pack(">IIII", 2051, len(x), 8, 8) + x.tobytes())
        files[f"{split}-labels"] = folder / f"{split}-labels-idx1-ubyte"
        files[f"{split}-labels"].write_bytes(struct.pack(">II", 2049, len(y)) + y.tobytes())
    return files


@pytest.fixture(scope="module")
def lmdb_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits as two LMDBs, ``train/`` and ``test/``, made with Caffe's own tool."""
    folder = tmp_path_factory.mktemp("lmdb")
    files = idx_files(folder)
    (folder / "lmdb").mkdir()
    for split in ("train", "test"):
        subprocess.run(
            ["convert_mnist_data", files[f"{split}-images"], files[f"{split}-labels"],
             folder / "lmdb" / split, "--backend=lmdb"],
            check=True, capture_output=True,
        )  # fmt: skip
    return folder / "lmdb"


def upload(endpoint: str, bucket: str, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3(endpoint).upload_file(str(path), bucket, path.relative_to(root).as_posix())


@pytest.mark.caffe
def test_a_caffe_manifest_of_ffdls_shape_runs_unchanged(s3_server, lmdb_digits, settings, tmp_path):
    tag = tmp_path.name[-6:].replace("-", "_").lower()
    data, results = legacy_buckets(s3_server.endpoint, tag)
    upload(s3_server.endpoint, data, lmdb_digits)
    model = tmp_path / "caffe-model"
    model.mkdir()
    (model / "manifest.yml").write_text(
        CAFFE_MANIFEST.format(data=data, results=results, endpoint=s3_server.endpoint)
    )
    (model / "digits_solver.prototxt").write_text(SOLVER)
    (model / "digits_net.prototxt").write_text(NET.format(data=data))
    before = {p: p.read_bytes() for p in model.iterdir()}

    done = CliRunner().invoke(main, ["validate", str(model / "manifest.yml")])
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines() == [
        "note: framework.command -gpu: the trial's GPUs are those Ray assigns it "
        "(resources.gpus) (gpu all left out)",
        "note: paths mapped for each trial, without touching the machine: "
        f"/mnt/data/{data} is the trial's data folder ($DATA_DIR) (named in digits_net.prototxt)",
        f"note: bucket {data!r} has a legacy name (not a DNS name): it is reached with "
        "path-style addressing",
        f"note: bucket {results!r} has a legacy name (not a DNS name): it is reached with "
        "path-style addressing",
    ]

    settings.s3.cache_dir = str(tmp_path / "cache")
    spec = load_spec(model / "manifest.yml")
    assert spec.framework == "caffe"
    result = run(spec, settings, echo=None)
    assert list(result.results["state"]) == ["completed"]
    assert result.best["test_accuracy"] > 0.8
    client = mlflow.MlflowClient(result.tracking_uri)
    history = client.get_metric_history(result.best["mlflow_run_id"], "test_accuracy")
    assert [m.step for m in history] == [0, 30, 60]
    # The trial's results in FfDL's layout: snapshots at the top of training-<id>/, the log in
    # learner-1/; sweeper's own records of the trial under <sweep>/trial-0001/.
    training = f"training-{result.sweep}"
    stored = keys(s3_server.endpoint, results)
    for iteration in (30, 60):
        for kind in ("caffemodel", "solverstate"):
            assert f"{training}/digits_iter_{iteration}.{kind}" in stored
    assert f"{training}/learner-1/trial.log" in stored
    assert f"{result.sweep}/trial-0001/trial.log" in stored
    assert not [k for k in stored if k.startswith(f"{result.sweep}/trial-0001/output/")]
    # The rendered net reads the staged data; the user's files are as they were.
    rendered = (result.sweep_dir / "trials" / "trial-0001" / "output" / "net.prototxt").read_text()
    # (the trial's view of the staged data: gone with the trial)
    sources = re.findall(r'source: "([^"]+)"', rendered)
    assert len(sources) == 2 and not [s for s in sources if s.startswith("/mnt/")]
    assert [Path(s).name for s in sources] == ["train", "test"]
    assert {p: p.read_bytes() for p in before} == before


# A training program in the shape of FfDL's TensorFlow examples: its settings file names FfDL's
# data mount, its command line the results mount, and it writes TensorBoard event files where
# the manifest's evaluation_metrics says. It lives in a model folder apart from the manifest.
FIT = """\
import json, os, sys
from pathlib import Path
from tensorboardX import SummaryWriter

settings = json.loads(Path("digits-fit/settings.json").read_text())
rows = Path(settings["train"]).read_text().split()
out = Path(sys.argv[sys.argv.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
writer = SummaryWriter(os.path.join(os.environ["JOB_STATE_DIR"], "logs", "tb", "test"))
for epoch in (1, 2, 3):
    writer.add_scalar("accuracy", len(rows) * epoch / 10.0, epoch)
writer.close()
(out / "model.txt").write_text(os.environ["TRAINING_ID"] + "\\n")
"""
FIT_MANIFEST = """\
name: digits-fit-tb
version: "1.0"
gpus: 0
cpus: 1
data_stores:
  - id: object-store
    type: s3_datastore
    training_data: {{container: {data}}}
    training_results: {{container: {results}}}
    connection: {{auth_url: {endpoint}, user_name: ffdluser, password: ffdlpass}}
framework:
  name: tensorflow
  version: "latest"
  command: python3 digits-fit/fit.py --out /mnt/results/{results}/model
evaluation_metrics:
  type: tensorboard
  in: "$JOB_STATE_DIR/logs/tb"
"""
FIT_DEFINITION = """\
model_definition:
  name: digits-fit-tb
  framework: {{name: tensorflow, version: "latest"}}
  execution:
    command: python3 digits-fit/fit.py --out /mnt/results/{results}/model
    compute_configuration: {{name: k80, nodes: 1}}
training_data_reference:
  type: s3
  connection: {{endpoint_url: {endpoint}, access_key_id: wmluser, secret_access_key: wmlpass}}
  source: {{bucket: {data}}}
training_results_reference:
  type: s3
  connection: {{endpoint_url: {endpoint}, access_key_id: wmluser, secret_access_key: wmlpass}}
  target: {{bucket: {results}}}
"""


@pytest.mark.parametrize("shape", ["manifest", "definition"])
def test_a_command_manifest_with_a_model_folder_and_tensorboard_runs_unchanged(
    s3_server, settings, tmp_path, shape
):
    tag = tmp_path.name[-6:].replace("-", "_").lower()
    data, results = legacy_buckets(s3_server.endpoint, tag)
    s3(s3_server.endpoint).put_object(Bucket=data, Key="train.csv", Body=b"1\n2\n3\n4\n")
    manifests, model = tmp_path / "manifests", tmp_path / "model-definition"
    (model / "digits-fit").mkdir(parents=True)
    manifests.mkdir()
    (model / "digits-fit" / "fit.py").write_text(FIT)
    settings_json = json.dumps({"train": f"/mnt/data/{data}/train.csv"})
    (model / "digits-fit" / "settings.json").write_text(settings_json)
    template = FIT_MANIFEST if shape == "manifest" else FIT_DEFINITION
    (manifests / "job.yml").write_text(
        template.format(data=data, results=results, endpoint=s3_server.endpoint)
    )
    if shape == "definition":
        # WML's format has no gpus: 0; its k80 asks for one. This machine has none.
        settings.ray.num_gpus = 1

    done = CliRunner().invoke(main, ["validate", str(manifests / "job.yml"), str(model)])
    assert done.exit_code == 0, done.output
    assert (
        "note: paths mapped for each trial, without touching the machine: "
        f"/mnt/data/{data} is the trial's data folder ($DATA_DIR) (named in "
        f"digits-fit/settings.json); /mnt/results/{results} is the trial's results folder "
        "($RESULT_DIR) (named in the command)"
    ) in done.stderr.splitlines()

    settings.s3.cache_dir = str(tmp_path / "cache")
    spec = load_spec(manifests / "job.yml", model_dir=model)
    result = run(spec, settings, echo=None)
    assert list(result.results["state"]) == ["completed"], result.results.get("error")
    client = mlflow.MlflowClient(result.tracking_uri)
    run_id = result.results["mlflow_run_id"][0]
    history = client.get_metric_history(run_id, "test_accuracy")
    if shape == "manifest":
        assert spec.metrics is not None and spec.metrics.tensorboard == "$JOB_STATE_DIR/logs/tb"
        assert [(m.step, m.value) for m in history] == [(1, 0.4), (2, 0.8), (3, 1.2)]
    else:  # WML's format names no metrics extractor: EMetrics and val_dict_list.json only
        assert spec.metrics is None and history == []
    training = f"training-{result.sweep}"
    stored = keys(s3_server.endpoint, results)
    assert f"{training}/model/model.txt" in stored
    assert f"{training}/learner-1/trial.log" in stored
    body = s3(s3_server.endpoint).get_object(Bucket=results, Key=f"{training}/model/model.txt")
    assert body["Body"].read() == f"{training}\n".encode()  # $TRAINING_ID names the folder
    # The user's settings file still names FfDL's path; the trial read a rewritten copy.
    assert (model / "digits-fit" / "settings.json").read_text() == settings_json
    work = result.sweep_dir / "trials" / "trial-0001" / "work"
    assert (work / "digits-fit" / "fit.py").is_symlink()
    assert f"/mnt/data/{data}" not in (work / "digits-fit" / "settings.json").read_text()
