"""Sweeps with s3:// data and results against a real S3-protocol server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import mlflow
import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.execution._sweep import run
from sweeper.spec import load_spec, parse_spec
from sweeper.storage import pending_uploads

ROOT = Path(__file__).resolve().parents[2]
CODE = "tests/_code/trainables.py"
DATASET = {"train.csv": b"1,2,3\n" * 5000, "nested/labels.txt": b"a\nb\n", "x.bin": bytes(300_000)}

pytestmark = [pytest.mark.s3, pytest.mark.usefixtures("ray_session")]


def s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def sweep_spec(
    endpoint: str, bucket: str, parameters: dict, concurrency: int = 4, data: bool = True
):
    return parse_spec(
        {
            "name": "storage-test",
            "framework": "python",
            "entrypoint": f"{CODE}:reads_data",
            "search": {
                "method": "grid",
                "metric": "score",
                "mode": "max",
                "concurrency": concurrency,
            },
            "parameters": parameters,
            **({"data": f"s3://{bucket}/datasets/digits"} if data else {}),
            "results": f"s3://{bucket}/runs",
            "storage": {
                "endpoint_url": endpoint,
                "addressing_style": "path",
                "region": "us-east-1",
            },
            "resources": {"cpus": 1},
        },
        base_dir=ROOT,
    )


def objects(endpoint: str, bucket: str, prefix: str) -> dict[str, bytes]:
    client = s3(endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_a_sweep_stages_once_per_node_and_syncs_every_trial(
    s3_server, s3_proxy, bucket, put_objects, settings, tmp_path, monkeypatch
):
    put_objects(bucket, {f"datasets/digits/{k}": v for k, v in DATASET.items()})
    monkeypatch.setenv("SWEEPER_S3_CACHE_DIR", str(tmp_path / "cache"))
    from sweeper.settings import load_settings

    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": settings.mlflow.tracking_uri,
            "SWEEPER_RESULTS_DIR": settings.results.dir,
            "SWEEPER_S3_CACHE_DIR": str(tmp_path / "cache"),
        }
    )
    s3_proxy.clear()
    # Four trials start together on this node: one download of the dataset between them.
    spec = sweep_spec(s3_proxy.endpoint, bucket, {"x": {"choice": [1, 2, 3, 4]}})
    result = run(spec, settings, echo=None)
    assert set(result.results["state"]) == {"completed"}, result.results["error"].tolist()
    assert result.unsynced == []
    for key in DATASET:
        assert len(s3_proxy.gets(f"datasets/digits/{key}")) == 1, key

    stored = objects(s3_server.endpoint, bucket, f"runs/{result.sweep}/")
    for trial in result.results["trial"]:
        local = result.sweep_dir / "trials" / trial
        seen = json.loads((local / "output" / "seen.json").read_text())
        assert seen["files"] == sorted(DATASET)
        for path in local.rglob("*"):
            if path.is_file():
                key = f"runs/{result.sweep}/{trial}/{path.relative_to(local).as_posix()}"
                assert stored[key] == path.read_bytes(), key
    for name in ("results.csv", "spec.yml", "sweep.json"):
        assert stored[f"runs/{result.sweep}/{name}"] == (result.sweep_dir / name).read_bytes()

    # The aws CLI, another client of the same store, sees the same objects.
    listing = subprocess.run(
        ["aws", "--endpoint-url", s3_server.endpoint, "s3", "ls", "--recursive",
         f"s3://{bucket}/runs/{result.sweep}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"runs/{result.sweep}/trial-0004/output/model.bin" in listing

    runs = mlflow.MlflowClient(result.tracking_uri)
    child = runs.get_run(result.results["mlflow_run_id"].iloc[0])
    assert child.data.tags["sweeper.artifacts"] == (
        f"s3://{bucket}/runs/{result.sweep}/{result.results['trial'].iloc[0]}"
    )


def test_results_wait_out_an_outage_and_sweeper_sync_finishes_them(moto_server, settings):
    s3(moto_server.endpoint).create_bucket(Bucket="outage-test")
    spec = sweep_spec(
        moto_server.endpoint,
        "outage-test",
        {"x": {"choice": [1, 2]}, "kill_pid": moto_server.process.pid, "size": 50_000},
        concurrency=1,
        data=False,
    )
    # Give up fast once the store is gone (the defaults wait out a longer outage).
    settings.s3.max_attempts = settings.s3.upload_attempts = 1
    # The first trial stops the store; every upload fails and stays pending.
    result = run(spec, settings, echo=None)
    assert set(result.results["state"]) == {"completed"}
    pending = {entry.local for entry in pending_uploads(result.sweep_dir)}
    assert {"trials/trial-0001", "trials/trial-0002"} <= pending
    assert len(result.unsynced) == len(pending)
    for trial in ("trial-0001", "trial-0002"):
        assert (result.sweep_dir / "trials" / trial / "output" / "model.bin").is_file()

    moto_server.start()  # back, on the same port (and empty: moto keeps objects in memory)
    s3(moto_server.endpoint).create_bucket(Bucket="outage-test")
    done = CliRunner().invoke(main, ["sync", str(result.sweep_dir)])
    assert done.exit_code == 0, done.output
    assert pending_uploads(result.sweep_dir) == []
    stored = objects(moto_server.endpoint, "outage-test", f"runs/{result.sweep}/")
    for trial in ("trial-0001", "trial-0002"):
        local = result.sweep_dir / "trials" / trial
        for path in (p for p in local.rglob("*") if p.is_file()):
            key = f"runs/{result.sweep}/{trial}/{path.relative_to(local).as_posix()}"
            assert stored[key] == path.read_bytes(), key


SECRET = "Sup3r-s3cret-Value-42"

MANIFEST = """\
name: secret-manifest
cpus: 1
data_stores:
  - id: cos
    type: s3_datastore
    training_data: {{container: {bucket}}}
    training_results: {{container: {bucket}}}
    connection:
      auth_url: {endpoint}
      user_name: AKIDSECRETUSER99
      password: {secret}
framework:
  name: custom
  command: python3 train.py
"""

TRAIN = """\
import json, os
files = sorted(os.listdir(os.environ["DATA_DIR"]))
json.dump(files, open(os.path.join(os.environ["RESULT_DIR"], "files.json"), "w"))
print("env has", [k for k in os.environ if k.startswith("AWS")])
"""


def test_a_manifest_uses_its_credentials_and_they_appear_nowhere(
    s3_server, bucket, put_objects, settings, tmp_path, capsys
):
    put_objects(bucket, {"input.csv": b"1,2\n"})
    folder = tmp_path / "definition"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    (folder / "manifest.yml").write_text(
        MANIFEST.format(bucket=bucket, endpoint=s3_server.endpoint, secret=SECRET)
    )
    settings.s3.cache_dir = str(tmp_path / "cache")
    settings.s3.addressing_style = "path"
    result = run(load_spec(folder / "manifest.yml"), settings)
    assert set(result.results["state"]) == {"completed"}
    trial_dir = result.sweep_dir / "trials" / "trial-0001"
    assert json.loads((trial_dir / "output" / "files.json").read_text()) == ["input.csv"]
    assert objects(s3_server.endpoint, bucket, f"training-{result.sweep}/files.json")  # FfDL's

    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    for path in [
        *result.sweep_dir.rglob("*"),
        Path(result.tracking_uri.removeprefix("sqlite:///")),
    ]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
            assert b"AKIDSECRETUSER99" not in path.read_bytes(), path
    for key, body in objects(s3_server.endpoint, bucket, result.sweep).items():
        assert SECRET.encode() not in body, key


def test_a_trial_whose_process_died_is_still_synced(s3_server, bucket, settings):
    spec = parse_spec(
        {
            "name": "storage-test",
            "framework": "python",
            "entrypoint": f"{CODE}:dies",
            "search": {"method": "grid", "metric": "score", "mode": "max"},
            "results": f"s3://{bucket}/runs",
            "storage": {"endpoint_url": s3_server.endpoint, "addressing_style": "path"},
        },
        base_dir=ROOT,
    )
    result = run(spec, settings, echo=None)
    assert list(result.results["state"]) == ["failed"]
    stored = objects(s3_server.endpoint, bucket, f"runs/{result.sweep}/trial-0001/")
    key = f"runs/{result.sweep}/trial-0001/output/partial.txt"
    assert stored[key] == b"written before the process died"
    assert result.unsynced == []


ENV_KEY_ID = "AKIAENVKEYID7777"
ENV_SECRET = "env-Secret-Value-9x9x9"


def test_credentials_in_the_environment_reach_trials_but_no_file(
    s3_server, bucket, put_objects, settings, tmp_path, monkeypatch, ray_session
):
    """The route `sweeper convert`'s header recommends: keys in the environment. Ray Tune would
    copy them into every trial actor's runtime environment, which Ray logs in clear; sweeper
    hands them over through Ray's object store instead."""
    import ray

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    put_objects(bucket, {"data/input.csv": b"1,2\n"})
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(
        "import os\n"
        "def train(params, ctx):\n"
        "    ctx.report(step=1, n=float(len(os.listdir(ctx.data_dir))))\n"
    )
    spec = parse_spec(
        {
            "name": "env-keys",
            "framework": "python",
            "entrypoint": "train.py:train",
            "data": f"s3://{bucket}/data",
            "results": f"s3://{bucket}/runs",
            "storage": {"endpoint_url": s3_server.endpoint, "addressing_style": "path"},
            "search": {"method": "grid", "metric": "n", "mode": "max"},
            "parameters": {"x": {"choice": [1, 2]}},
        },
        base_dir=folder,
    )
    settings.s3.cache_dir = str(tmp_path / "cache")
    result = run(spec, settings, echo=None)
    assert set(result.results["state"]) == {"completed"}
    assert list(result.results["n"]) == [1.0, 1.0]  # the trials read the data with the keys
    session_dir = Path(ray._private.worker._global_node.get_session_dir_path())
    places = [*result.sweep_dir.rglob("*"), *session_dir.rglob("*"), tmp_path / "mlflow.db"]
    for path in places:
        if path.is_file() and not path.is_symlink():
            body = path.read_bytes()
            assert ENV_SECRET.encode() not in body and ENV_KEY_ID.encode() not in body, path
    for key, body in objects(s3_server.endpoint, bucket, "runs/").items():
        assert ENV_SECRET.encode() not in body, key


def test_what_a_trial_writes_into_its_data_stays_its_own(
    s3_server, bucket, put_objects, settings, tmp_path, ray_session
):
    """IBM's examples unpack archives into $DATA_DIR: each trial does it in a view of its own,
    never in the node's shared copy that other trials and later sweeps read."""
    put_objects(bucket, {"data/train.gz": b"packed"})
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(
        "import os\n"
        "def train(params, ctx):\n"
        "    seen = os.path.exists(ctx.data_dir / 'train')\n"
        "    (ctx.data_dir / 'train').write_text('unpacked')\n"
        "    ctx.report(step=1, seen=float(seen), n=float(len(os.listdir(ctx.data_dir))))\n"
    )
    spec = parse_spec(
        {
            "name": "unpacks",
            "framework": "python",
            "entrypoint": "train.py:train",
            "data": f"s3://{bucket}/data",
            "storage": {"endpoint_url": s3_server.endpoint, "addressing_style": "path"},
            "search": {"method": "grid", "metric": "n", "mode": "max", "concurrency": 1},
            "parameters": {"x": {"choice": [1, 2, 3]}},
        },
        base_dir=folder,
    )
    settings.s3.cache_dir = str(tmp_path / "cache")
    result = run(spec, settings, echo=None)
    assert list(result.results["metrics.seen"]) == [0.0, 0.0, 0.0]  # nobody saw another's file
    assert list(result.results["n"]) == [2.0, 2.0, 2.0]
    (copy,) = [p for p in (tmp_path / "cache" / bucket).iterdir() if p.is_dir()]
    assert sorted(p.name for p in copy.iterdir()) == ["train.gz"]


LEGACY_MANIFEST = """\
name: legacy-buckets
cpus: 1
data_stores:
  - id: store
    type: mount_cos
    training_data: {{container: {data}}}
    training_results: {{container: {results}}}
    connection: {{auth_url: {endpoint}, user_name: legacyuser, password: legacypass}}
framework:
  name: custom
  command: python3 train.py
"""


def test_legacy_bucket_names_are_reached_path_style_with_one_note(
    s3_server, put_objects, settings, tmp_path, capsys
):
    """FfDL's own names (``tf_training_data``): underscores, not DNS names, path-style only;
    even where sweeper.toml asks for virtual-hosted requests."""
    tag = tmp_path.name[-6:].replace("-", "_").lower()
    data, results = f"ffdl_training_data_{tag}", f"FFDL_Trained_Model_{tag}"
    client = s3(s3_server.endpoint)
    for name in (data, results):
        client.create_bucket(Bucket=name)
    put_objects(data, {"input.csv": b"1,2\n"})
    folder = tmp_path / "definition"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    (folder / "manifest.yml").write_text(
        LEGACY_MANIFEST.format(data=data, results=results, endpoint=s3_server.endpoint)
    )
    done = CliRunner().invoke(main, ["validate", str(folder / "manifest.yml")])
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines() == [
        f"note: bucket {name!r} has a legacy name (not a DNS name): it is reached with "
        "path-style addressing"
        for name in (data, results)
    ]
    settings.s3.cache_dir = str(tmp_path / "cache")
    settings.s3.addressing_style = "virtual"
    result = run(load_spec(folder / "manifest.yml"), settings, echo=None)
    assert set(result.results["state"]) == {"completed"}
    trial_dir = result.sweep_dir / "trials" / "trial-0001"
    assert json.loads((trial_dir / "output" / "files.json").read_text()) == ["input.csv"]
    # A manifest's trial in FfDL's layout: its $RESULT_DIR at the top of training-<id>/.
    stored = objects(s3_server.endpoint, results, "")
    assert f"training-{result.sweep}/files.json" in stored
    assert f"{result.sweep}/trial-0001/trial.log" in stored


def test_a_data_choice_stages_each_dataset_once_and_records_which_one(
    s3_server, s3_proxy, bucket, put_objects, settings, tmp_path
):
    for version in ("1", "2"):
        put_objects(
            bucket,
            {
                f"digits-v{version}/version.txt": version.encode(),
                f"digits-v{version}/train.csv": b"1,2\n" * (1000 * int(version)),
            },
        )
    local = tmp_path / "local-v3"
    local.mkdir()
    (local / "version.txt").write_text("3")
    from sweeper.settings import load_settings

    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": settings.mlflow.tracking_uri,
            "SWEEPER_RESULTS_DIR": settings.results.dir,
            "SWEEPER_S3_CACHE_DIR": str(tmp_path / "cache"),
        }
    )
    datasets = [f"s3://{bucket}/digits-v1/", f"s3://{bucket}/digits-v2/", str(local)]
    spec = parse_spec(
        {
            "name": "storage-test",
            "framework": "python",
            "entrypoint": f"{CODE}:which_data",
            "search": {"method": "grid", "metric": "score", "mode": "max", "concurrency": 3},
            "parameters": {"x": {"choice": [1, 2, 3]}},
            "data": {"choice": datasets},
            "storage": {"endpoint_url": s3_proxy.endpoint, "addressing_style": "path"},
        },
        base_dir=ROOT,
    )
    assert spec.trial_count() == 9
    s3_proxy.clear()
    result = run(spec, settings, echo=None)
    frame = result.results
    assert set(frame["state"]) == {"completed"}, frame["error"].tolist()
    # Each s3:// dataset was downloaded once, though three trials of it ran at once.
    for version in ("1", "2"):
        for key in ("version.txt", "train.csv"):
            assert len(s3_proxy.gets(f"digits-v{version}/{key}")) == 1, (version, key)
    # The grid runs one dataset's trials before the next one's; each trial got its own.
    assert list(frame["params.data"]) == [d for d in datasets for _ in range(3)]
    for row in frame.to_dict("records"):
        note = json.loads(
            (result.sweep_dir / "trials" / row["trial"] / "output" / "seen.json").read_text()
        )
        assert note["dataset"] == row["params.data"]
        assert note["version"] == str(datasets.index(row["params.data"]) + 1)
        assert note["params"] == ["x"]  # training code reads ctx.data_dir, not a data param
    assert result.best["params.data"] == str(local)
    # MLflow's child runs say which dataset each trial used.
    mlflow.set_tracking_uri(result.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["storage-test"])
    children = runs[runs["tags.mlflow.parentRunId"] == result.parent_run_id]
    assert sorted(children["params.data"]) == sorted(frame["params.data"])
    # So do the plots: the dataset is a dimension of the parallel coordinates.
    from sweeper.plots import plot_sweep

    plot_sweep(result.sweep_dir, log_to_mlflow=False, echo=None)
    html = (result.sweep_dir / "plots" / "parallel_coordinate.html").read_text()
    assert all(name in html for name in ("digits-v1", "digits-v2", "local-v3"))
