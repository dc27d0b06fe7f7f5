"""Sweeps on an existing Ray cluster, with a remote MLflow server and S3 as shared storage.

Run by ``tests/execution/test_cluster.py`` in a network namespace of its own, which has only a
loopback interface: Ray's GCS, raylets and workers listen on every interface (Ray has no setting
to keep them on 127.0.0.1), so there they can be reached from this machine's loopback only. Not
collected by a plain ``pytest`` run (its name does not start with ``test_``).

The tests start, on 127.0.0.1 with free ports: moto's S3 server, ``mlflow server`` (SQLite
backend, artifacts proxied to the S3 server), a Ray head and a second Ray node (``ray start``,
each in a process group of its own, with one fake GPU each). Sweeps run with
``sweeper run --address``; the trials' code reaches the workers only through Ray's runtime
environment. Everything is stopped at the end, also on failure.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


# --- a real cluster -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"no answer from {url} in {timeout} s: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a server started in a session of its own, with everything it started."""
    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            time.sleep(0.5)  # let the group's other processes go too
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
        return


@dataclass
class Cluster:
    """The servers of one test module: S3, MLflow and two Ray nodes."""

    folder: Path
    s3_endpoint: str
    bucket: str
    mlflow_uri: str
    address: str
    head_env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]

    def start_node(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"{name}.log"
        ports = [
            *("--node-manager-port", str(_free_port())),
            *("--object-manager-port", str(_free_port())),
            *("--dashboard-agent-listen-port", str(_free_port())),
            *("--dashboard-agent-grpc-port", str(_free_port())),
            *("--runtime-env-agent-port", str(_free_port())),
            *("--metrics-export-port", str(_free_port())),
        ]
        command = [
            shutil.which("ray") or "ray", "start", "--block", "--disable-usage-stats",
            "--node-ip-address", HOST, "--num-cpus", "2", "--num-gpus", "1", *ports, *args,
        ]  # fmt: skip
        with open(log, "ab") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.head_env,
                start_new_session=True,
            )  # fmt: skip
        self.processes[name] = process
        return process

    def nodes(self) -> list[dict]:
        """The live Ray nodes, from the cluster's GCS: ``node_id`` and ``is_head_node``."""
        done = subprocess.run(
            [sys.executable, "-c", _NODES, self.address],
            capture_output=True, text=True, env=self.head_env, timeout=60,
        )  # fmt: skip
        return json.loads(done.stdout) if done.returncode == 0 else []


_NODES = """  # asks the GCS, in a process with the cluster's token, for its live nodes
import json, sys
from ray._raylet import GcsClient
infos = GcsClient(address=sys.argv[1]).get_all_node_info(timeout=10)
print(json.dumps([{"node_id": k.hex(), "is_head_node": v.is_head_node}
                  for k, v in infos.items() if v.state == 0]))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    import boto3

    folder = tmp_path_factory.mktemp("cluster")
    # Ray's socket paths must stay short: its own short temp folder.
    temp_dir = tempfile.mkdtemp(prefix="swr", dir="/tmp")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAY_ADDRESS"))}
    env = {
        **clean,
        **CREDENTIALS,
        "AWS_CONFIG_FILE": str(folder / "none"),
        # Ray's token authentication, with a token of this cluster's own for every process.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    node_ids: list[str] = []
    box = Cluster(folder, "", "", "", "", env, processes)
    try:
        port = _free_port()
        with open(folder / "moto.log", "ab") as out:
            processes["moto"] = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        box.s3_endpoint = f"http://{HOST}:{port}"
        _wait_http(
            f"{box.s3_endpoint}/moto-api/data.json", processes["moto"], folder / "moto.log", 30
        )
        box.bucket = f"cluster-{uuid.uuid4().hex[:8]}"
        s3 = boto3.client("s3", endpoint_url=box.s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket=box.bucket)

        port = _free_port()
        server_env = {**env, "MLFLOW_S3_ENDPOINT_URL": box.s3_endpoint}
        with open(folder / "mlflow.log", "ab") as out:
            processes["mlflow"] = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server",
                 "--backend-store-uri", f"sqlite:///{folder / 'server.sqlite'}",
                 "--artifacts-destination", f"s3://{box.bucket}/mlflow",
                 "--host", HOST, "--port", str(port), "--workers", "1"],
                stdout=out, stderr=subprocess.STDOUT, env=server_env, start_new_session=True,
            )  # fmt: skip
        box.mlflow_uri = f"http://{HOST}:{port}"
        _wait_http(f"{box.mlflow_uri}/health", processes["mlflow"], folder / "mlflow.log", 90)

        gcs = _free_port()
        box.address = f"{HOST}:{gcs}"
        # A lost node is noticed within a few seconds rather than the default ~30.
        box.head_env = {
            **env,
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
            "RAY_health_check_initial_delay_ms": "1000",
        }
        box.start_node(
            "head", "--head", "--port", str(gcs), "--temp-dir", temp_dir,
            "--ray-client-server-port", str(_free_port()), "--include-dashboard", "false",
        )  # fmt: skip
        box.start_node("worker", "--address", box.address)
        deadline = time.monotonic() + 120
        while len(box.nodes()) < 2:
            for name in ("head", "worker"):
                if processes[name].poll() is not None:
                    log = (folder / f"{name}.log").read_text()[-3000:]
                    raise RuntimeError(f"ray {name} exited: {log}")
            if time.monotonic() > deadline:
                raise RuntimeError("the two Ray nodes did not come up")
            time.sleep(1)
        node_ids = [node["node_id"] for node in box.nodes()]
        yield box
    finally:
        for name in ("worker", "head", "mlflow", "moto"):
            _stop(processes.get(name))
        shutil.rmtree(temp_dir, ignore_errors=True)
        for node in (
            node_ids
        ):  # the nodes' scratch copies of trials (see sweeper.execution._trial.localize)
            shutil.rmtree(Path(tempfile.gettempdir(), "sweeper-trials", node[:16]), True)


def _project(folder: Path, cluster: Cluster, name: str, grid: list[int], steps: int) -> Path:
    """A project folder like a user's: the spec, its code and its data, relative paths only."""
    (folder / "code").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "_code" / "cluster_trainer.py", folder / "code" / "trainer.py")
    (folder / "data").mkdir()
    (folder / "data" / "hello.txt").write_text("shipped with the code\n")
    (folder / "experiment.yml").write_text(
        f"name: {name}\n"
        "framework: python\n"
        "entrypoint: code/trainer.py:train\n"
        "data: data\n"
        f"results: s3://{cluster.bucket}/results\n"
        f"storage: {{endpoint_url: '{cluster.s3_endpoint}', region: us-east-1, "
        "addressing_style: path}\n"
        "resources: {gpus: 1, cpus: 1}\n"
        "search: {method: grid, metric: score, mode: max}\n"
        "limits: {max_failures: 2}\n"
        f"parameters: {{x: {{choice: {grid}}}, steps: {steps}, sleep: 0.4}}\n",
        encoding="utf-8",
    )
    return folder


def _sweeper(
    cluster: Cluster, folder: Path, *args: str, interval: str = "5"
) -> subprocess.Popen[str]:
    env = {
        **cluster.head_env,
        "SWEEPER_MLFLOW_TRACKING_URI": cluster.mlflow_uri,
        "SWEEPER_RESULTS_DIR": str(folder / "results"),
        "SWEEPER_S3_CHECKPOINT_INTERVAL": "0",
        "SWEEPER_CONSOLE_PROGRESS_INTERVAL": interval,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "sweeper", "run", "experiment.yml", "--address", cluster.address,
         *args],
        cwd=folder, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _finish(driver: subprocess.Popen[str], timeout: float = 240) -> str:
    try:
        out, err = driver.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        driver.kill()
        out, err = driver.communicate()
        raise AssertionError(f"the sweep did not end:\n{out}\n{err}") from None
    assert driver.returncode == 0, out + err
    assert "Traceback" not in err, err
    return out


def _objects(cluster: Cluster, prefix: str) -> dict[str, bytes]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=cluster.s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=cluster.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=cluster.bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = body
    return found


def _sweep_of(folder: Path) -> Path:
    return next((folder / "results").iterdir())


@pytest.mark.slow
def test_sweep_on_two_nodes_with_remote_mlflow_and_s3(cluster: Cluster, tmp_path: Path) -> None:
    import mlflow
    import pandas as pd

    name = f"on-cluster-{uuid.uuid4().hex[:6]}"
    folder = _project(tmp_path / "project", cluster, name, [1, 2, 3, 4], steps=3)
    out = _finish(_sweeper(cluster, folder))
    assert f"on Ray cluster at {cluster.address} (2 nodes" in out
    sweep_dir = _sweep_of(folder)
    sweep = sweep_dir.name
    results = pd.read_csv(sweep_dir / "results.csv")
    assert set(results["state"]) == {"completed"} and len(results) == 4
    node_ids = {n["node_id"] for n in cluster.nodes()}
    # One GPU per node and per trial: two trials at a time, one on each node.
    assert len(node_ids) == 2

    stored = _objects(cluster, f"results/{sweep}/")
    assert f"results/{sweep}/results.csv" in stored
    notes = {}
    for trial in results["trial"]:
        note = json.loads(stored[f"results/{sweep}/{trial}/output/attempt-1.json"])
        notes[trial] = note
        assert note["data"] == "shipped with the code"
        # Relative paths of the spec resolved in the workers' copy of the project, not here.
        assert not note["data_dir"].startswith(str(folder))
        assert note["cuda"] == "0"
        assert f"results/{sweep}/{trial}/trial.log" in stored
        assert f"results/{sweep}/{trial}/checkpoints/step.json" in stored
    assert {n["node"] for n in notes.values()} == node_ids
    # results.csv names the node each trial ran on.
    assert dict(zip(results["trial"], results["node"], strict=True)) == {
        trial: note["node"] for trial, note in notes.items()
    }
    # Each node's GPU held one trial at a time.
    for node in node_ids:
        spans = sorted((n["started"], n["ended"]) for n in notes.values() if n["node"] == node)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    # The driver's folder holds only the trials that ran on the driver's (the head's) node.
    local = (
        {p.name for p in (sweep_dir / "trials").iterdir()}
        if (sweep_dir / "trials").is_dir()
        else set()
    )
    assert local and local != set(results["trial"])
    # The other node's scratch copies went once the store had them.
    scratch = os.path.join(tempfile.gettempdir(), "sweeper-trials", "*", sweep, "trials", "*")
    assert glob.glob(os.path.join(scratch, "*")) == []

    client = mlflow.MlflowClient(cluster.mlflow_uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["sweeper.trial"] for r in children) == sorted(results["trial"])
    mlflow_objects = _objects(cluster, "mlflow/")
    by_trial = results.set_index("trial")
    for run in children:
        assert run.info.status == "FINISHED"
        trial = run.data.tags["sweeper.trial"]
        assert run.data.metrics["score"] == pytest.approx(by_trial.loc[trial, "score"])
        history = client.get_metric_history(run.info.run_id, "score")
        assert [m.step for m in history] == [1, 2, 3]
        top = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"params.json", "trial.log", "output"} <= top
        outputs = {a.path for a in client.list_artifacts(run.info.run_id, "output")}
        assert outputs == {"output/attempt-1.json"}
        # The server keeps them in S3.
        assert any(
            key.endswith(f"{run.info.run_id}/artifacts/output/attempt-1.json")
            for key in mlflow_objects
        )
        assert (
            run.data.tags["sweeper.artifacts"] == f"s3://{cluster.bucket}/results/{sweep}/{trial}"
        )


@pytest.mark.slow
def test_a_trial_of_two_learners_spread_has_one_on_each_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    name = f"gang-{uuid.uuid4().hex[:6]}"
    folder = tmp_path / "project"
    (folder / "code").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "_code" / "cluster_trainer.py", folder / "code" / "trainer.py")
    # One fake GPU a node, one a learner: the trial's 2 learners can only be on both nodes.
    (folder / "experiment.yml").write_text(
        f"name: {name}\n"
        "framework: python\n"
        "entrypoint: code/trainer.py:learners\n"
        f"results: s3://{cluster.bucket}/results\n"
        f"storage: {{endpoint_url: '{cluster.s3_endpoint}', region: us-east-1, "
        "addressing_style: path}\n"
        "resources: {gpus: 1, cpus: 1, learners: 2, placement: spread}\n"
        "search: {method: grid, metric: score, mode: max}\n"
        "parameters: {x: 1, steps: 2, sleep: 0.3}\n",
        encoding="utf-8",
    )
    _finish(_sweeper(cluster, folder))
    sweep = _sweep_of(folder).name
    stored = _objects(cluster, f"results/{sweep}/trial-0001/")
    said = {}
    for log, rank in (("trial.log", "0"), ("learner-2.log", "1")):
        text = stored[f"results/{sweep}/trial-0001/{log}"].decode()
        (line,) = re.findall(rf"learner {rank} of 2 on node (\w+) cuda (\S+)", text)
        said[rank] = line
    assert {node for node, _ in said.values()} == {n["node_id"] for n in cluster.nodes()}
    assert {cuda for _, cuda in said.values()} == {"0"}  # each learner its node's one GPU


# How the driver holds Ray's token: none at all (HOME without ray start's token file), a wrong
# one, or the right one in RAY_AUTH_TOKEN without RAY_AUTH_MODE (Ray itself would send none).
TOKENS = {
    "none": ({"RAY_AUTH_MODE": None, "RAY_AUTH_TOKEN": None}, "must be given its token, got none"),
    "wrong": (
        {"RAY_AUTH_TOKEN": "0" * 64},
        "must accept this process's token, got InvalidAuthToken",
    ),
    "token-only": ({"RAY_AUTH_MODE": None}, None),
}


@pytest.mark.slow
@pytest.mark.parametrize("held", sorted(TOKENS))
def test_joining_with_no_or_a_wrong_token_is_one_line(
    cluster: Cluster, tmp_path: Path, held: str
) -> None:
    change, expected = TOKENS[held]
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text("def train(params, ctx):\n    ctx.report(score=1.0)\n")
    (folder / "experiment.yml").write_text(
        f"name: token-{held}\nframework: python\nentrypoint: train.py:train\n"
        "search: {method: grid, metric: score, mode: max}\nparameters: {x: {choice: [1]}}\n"
    )
    env = {**cluster.head_env, "HOME": str(tmp_path), "SWEEPER_RESULTS_DIR": str(folder / "r")}
    for key, value in change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "run", "experiment.yml", "--address", cluster.address,
         "--no-dashboard"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    if expected is None:
        assert done.returncode == 0, done.stdout + done.stderr
        return
    assert done.returncode == 1, done.stdout + done.stderr
    # Ray's C++ core warns once a second while it is refused: none of that shows.
    assert "InvalidAuthToken: Authentication token" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: the Ray cluster {expected} (command line: --address = '{cluster.address}'); "
        "set RAY_AUTH_TOKEN to the cluster's token (run ray get-auth-token on its head), or "
        "RAY_AUTH_TOKEN_PATH to a file holding it"
    ), done.stderr


@pytest.mark.slow
def test_a_node_lost_mid_sweep_its_trials_retry_on_another(
    cluster: Cluster, tmp_path: Path
) -> None:
    import mlflow
    import pandas as pd

    name = f"node-lost-{uuid.uuid4().hex[:6]}"
    folder = _project(tmp_path / "project", cluster, name, [1, 2, 3], steps=12)
    driver = _sweeper(cluster, folder)
    worker = next(n["node_id"] for n in cluster.nodes() if not n.get("is_head_node"))
    # A trial on the second node keeps its folder in that node's scratch space; once it has
    # checkpointed a few steps (and uploaded them), the node goes away: raylet, workers, all.
    pattern = os.path.join(
        tempfile.gettempdir(), "sweeper-trials", worker[:16], f"{name}-*", "trials", "*",
        "checkpoints", "step.json",
    )  # fmt: skip
    deadline = time.monotonic() + 180
    lost = None
    while lost is None:
        for path in glob.glob(pattern):
            try:
                if json.loads(Path(path).read_text())["step"] >= 3:
                    lost = Path(path).parents[1].name
            except (OSError, ValueError):
                continue
        if driver.poll() is not None:
            raise AssertionError(f"the sweep ended first: {driver.communicate()}")
        assert time.monotonic() < deadline, "no trial checkpointed on the second node"
        time.sleep(0.2)
    # Lost, not drained: SIGKILL to the node's raylet, agents and workers at once.
    os.killpg(cluster.processes["worker"].pid, signal.SIGKILL)
    cluster.processes["worker"].wait(10)

    _finish(driver)
    sweep_dir = _sweep_of(folder)
    sweep = sweep_dir.name
    results = pd.read_csv(sweep_dir / "results.csv").set_index("trial")
    assert set(results["state"]) == {"completed"} and len(results) == 3
    assert results.loc[lost, "attempts"] >= 2
    head = next(n["node_id"] for n in cluster.nodes() if n.get("is_head_node"))
    stored = _objects(cluster, f"results/{sweep}/{lost}/")
    assert results.loc[lost, "node"] == head

    last_attempt = int(results.loc[lost, "attempts"])
    again = json.loads(stored[f"results/{sweep}/{lost}/output/attempt-{last_attempt}.json"])
    assert again["node"] == head
    # The retry continued from the checkpoints the lost node had uploaded as it went (its
    # other files were lost with it: they are uploaded when a trial ends).
    assert again["first_step"] > 3
    assert f"results/{sweep}/{lost}/output/attempt-1.json" not in stored
    assert json.loads(stored[f"results/{sweep}/{lost}/checkpoints/step.json"])["step"] == 12

    client = mlflow.MlflowClient(cluster.mlflow_uri)
    experiment = client.get_experiment_by_name(name)
    children = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in r.data.tags
    ]
    assert len(children) == 3
    assert {r.info.status for r in children} == {"FINISHED"}
    (run,) = [r for r in children if r.data.tags["sweeper.trial"] == lost]
    assert run.data.tags["sweeper.attempts"] == str(last_attempt)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "score")]
    assert max(steps) == 12
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "output")}
    assert f"output/attempt-{last_attempt}.json" in artifacts


class _Output:
    """A driver's output as it comes, each stream read on a thread of its own."""

    def __init__(self, driver: subprocess.Popen[str]) -> None:
        self.driver = driver
        self.lines: list[str] = []  # stdout
        self.errors: list[str] = []  # stderr
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((driver.stdout, self.lines), (driver.stderr, self.errors))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + "\n".join(self.errors[-60:])

    def wait_for(self, matches: Callable[[str], object], start: int, timeout: float) -> int:
        """The index of the first line from ``start`` on that ``matches``."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.lines)):
                if matches(self.lines[i]):
                    return i
            ended = self.driver.poll() is not None and not self._readers[0].is_alive()
            if ended or time.monotonic() > deadline:
                raise AssertionError(f"no such line (ended: {ended}):\n{self.text()}")
            time.sleep(0.2)

    def finish(self, timeout: float) -> None:
        self.driver.wait(timeout)
        for reader in self._readers:
            reader.join(30)


@pytest.mark.slow
def test_trials_no_node_can_hold_warn_until_a_node_that_fits_joins(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Two GPUs a trial, one a node: the sweep warns at its start and every progress interval,
    with the cluster's totals, until a node with two GPUs joins; then its trials run there."""
    import pandas as pd

    name = f"unplaceable-{uuid.uuid4().hex[:6]}"
    folder = _project(tmp_path / "project", cluster, name, [1, 2], steps=2)
    spec = folder / "experiment.yml"
    spec.write_text(spec.read_text().replace("{gpus: 1, cpus: 1}", "{gpus: 2, cpus: 1}"))
    before = {n["node_id"] for n in cluster.nodes()}
    count = len(before)  # the lost-node scenario leaves the head alone
    nodes = f"{count} node{'s' if count > 1 else ''}"
    warning = re.compile(
        rf"warning: 2 trials waiting: no node can hold a trial \(resources\.gpus: the largest "
        rf"of {count} node\(s\) has 1\); cluster has {nodes}, {2 * count} CPUs, {count} GPUs?, "
        r"[0-9.]+ GiB memory; add a node that has it or ask for less"
    )
    driver = _sweeper(cluster, folder, interval="2")
    output = _Output(driver)
    try:
        first = output.wait_for(warning.fullmatch, 0, 180)
        assert output.lines[0].startswith(f"sweep {name}-"), output.text()
        # At the start, then again after a status line.
        assert not any(line.startswith("[progress] ") for line in output.lines[:first])
        status = output.wait_for(lambda line: line.startswith("[progress] "), first, 60)
        again = output.wait_for(warning.fullmatch, status, 60)

        cluster.start_node("gpus", "--address", cluster.address, "--num-gpus", "2")
        joined = output.wait_for(
            lambda line: line.startswith("note: a node that can hold a trial has joined"),
            again,
            180,
        )
        assert re.search(
            rf"cluster has {count + 1} nodes, {2 * count + 2} CPUs, {count + 2} GPUs, ",
            output.lines[joined],
        ), output.text()
        output.finish(240)
        assert driver.returncode == 0, output.text()
        assert not any("Traceback" in line for line in output.errors), output.text()
        assert not any(warning.fullmatch(line) for line in output.lines[joined:]), output.text()
        results = pd.read_csv(_sweep_of(folder) / "results.csv")
        assert set(results["state"]) == {"completed"} and len(results) == 2
        (added,) = {n["node_id"] for n in cluster.nodes()} - before
        assert set(results["node"]) == {added}
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(30)
        added_ids = {n["node_id"] for n in cluster.nodes()} - before
        _stop(cluster.processes.pop("gpus", None))
        for node in added_ids:  # its scratch copies of trials (the fixture knows the others)
            shutil.rmtree(Path(tempfile.gettempdir(), "sweeper-trials", node[:16]), True)
