"""Object storage: staging a dataset for many trials, and uploading a trial's output.

Everything runs against a local S3-protocol server: moto's standalone server, started by this
script as its own process on 127.0.0.1 (a free port), stopped at the end. Credentials are dummy
values in the environment.

(1) staging: a dataset of ``--dataset-mb`` MB (shards of about 8 MB plus a few small files) is
    put under ``s3://bench/dataset/``; then ``--trials`` processes (default 20), started first
    and released together, each need it on local disk:

    (a) ``sweeper``: each calls ``sweeper.storage.stage_dataset(uri, cache, config)`` on one
        shared node cache (one process downloads, the others wait for it);
    (b) ``naive``: each downloads every object into a folder of its own with boto3's
        ``client.download_file`` (its default transfer settings), as a trial would by itself.

    Timed: from the release until the last process is done. Bytes: what the processes
    downloaded (their own count), and the GET requests the server logged.

(2) upload: a trial output of ``--upload-mb`` MB in mixed file sizes (checkpoints of ~200 MB,
    models of ~40 MB, ~2 MB arrays, ~100 KB logs and metrics) is uploaded by

    (a) ``sweeper``: ``sweeper.storage.upload_dir(folder, uri, config)``, in this process,
        verification of every object (sizes and ETags) included;
    (b) ``aws_cli``: ``aws --endpoint-url URL s3 cp --recursive --quiet folder uri`` (the
        whole command, its start included: its start alone is shown below the table).

    Each run starts from an emptied server; the two alternate ``--repeat`` times and the
    median run counts. Throughput: bytes / wall time.

Run from the repository root::

    python benchmarks/storage.py                                # ~300 MB and ~1 GB: ~5 min
    python benchmarks/storage.py --dataset-mb 40 --upload-mb 100 --repeat 1   # a quick look

Temporary data goes to a folder under ``$TMPDIR`` that is removed at the end. Exit status 0
unless a run failed; missed targets are reported, not errors.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import _common  # benchmarks/_common.py: the scripts run from this folder

MB = 1_000_000
MiB = 1024 * 1024
BUCKET = "bench"
UPLOAD_TARGET = 0.9  # sweeper's upload throughput at least this share of the aws CLI's
STAGING_TARGET = 1.0  # bytes downloaded per node: the dataset once
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# -- the server --------------------------------------------------------------------------------


class Server:
    """moto's standalone S3 server on 127.0.0.1; its access log counts the GETs."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "moto.log"
        # moto spills objects over a few MB to temporary files: keep them in our folder.
        env = {**os.environ, "TMPDIR": str(workdir)}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto server did not start: {self.log.read_text()}"
                    ) from None
                time.sleep(0.1)

    def reset(self) -> None:
        """Drop every bucket (and the temporary files holding their objects)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=60).close()
        client().create_bucket(Bucket=BUCKET)

    def gets(self, prefix: str) -> int:
        """GET requests for objects under ``prefix`` the server has answered so far."""
        time.sleep(0.3)  # its log line follows the response
        pattern = re.compile(rf'"GET /{BUCKET}/{re.escape(prefix)}\S* HTTP/1\.1" 20[06]')
        return len(pattern.findall(self.log.read_text(errors="replace")))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


_endpoint = ""


def client() -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=_endpoint, region_name="us-east-1")


def store(args: argparse.Namespace) -> Any:
    from sweeper.storage import StoreConfig

    return StoreConfig(endpoint_url=_endpoint, region="us-east-1", addressing_style="path")


# -- data --------------------------------------------------------------------------------------


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        left = size
        while left:
            block = min(left, 4 * MiB)
            handle.write(os.urandom(block))
            left -= block


def make_dataset(root: Path, megabytes: int) -> int:
    """Shards of ~8 MB and three small files; returns the total size."""
    total = megabytes * MB
    shard = 8 * MB
    write_random(root / "labels.csv", 200_000)
    write_random(root / "meta/index.json", 20_000)
    write_random(root / "meta/vocab.txt", 500_000)
    left, i = total - 720_000, 0
    while left > 0:
        write_random(root / f"train/shard-{i:04d}.tfrecord", min(shard, left))
        left -= shard
        i += 1
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def make_trial_output(root: Path, megabytes: int) -> tuple[int, int]:
    """A trial's output: 40% checkpoints, 30% models, 20% arrays, 10% logs and metrics."""
    total = megabytes * MB
    plan = [
        ("checkpoints/epoch-{:03d}.ckpt", 0.4, 200 * MB),
        ("output/model-{:03d}.pt", 0.3, 40 * MB),
        ("output/arrays/{:04d}.npy", 0.2, 2 * MB),
        ("logs/{:04d}.jsonl", 0.1, 100_000),
    ]
    count = 0
    for pattern, share, size in plan:
        left, i = int(total * share), 0
        while left > 0:
            write_random(root / pattern.format(i), min(size, left))
            left -= size
            i += 1
            count += 1
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()), count


def put_tree(root: Path, prefix: str) -> None:
    from boto3.s3.transfer import TransferConfig

    s3 = client()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(root).as_posix()}"
        s3.upload_file(str(path), BUCKET, key, Config=TransferConfig(max_concurrency=4))


# -- (1) staging: one process per trial --------------------------------------------------------


def _stage_worker(kind: str, endpoint: str, workdir: str, index: int, go: Any, out: Any) -> None:
    global _endpoint
    _endpoint = endpoint
    import boto3  # noqa: F401  (imports before the clock)

    from sweeper.storage import StoreConfig, stage_dataset

    go.wait()
    if kind == "sweeper":
        config = StoreConfig(endpoint_url=endpoint, region="us-east-1", addressing_style="path")
        result = stage_dataset(f"s3://{BUCKET}/dataset", Path(workdir) / "cache", config)
        downloaded = result.downloaded
    else:
        s3 = client()
        target = Path(workdir) / f"naive-{index:02d}"
        downloaded = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="dataset/"):
            for item in page.get("Contents", []):
                path = target / item["Key"][len("dataset/") :]
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(BUCKET, item["Key"], str(path))
                downloaded += item["Size"]
    out.put((index, downloaded, time.perf_counter()))


def bench_staging(
    kind: str, server: Server, trials: int, workdir: Path, dataset_bytes: int
) -> dict[str, Any]:
    context = mp.get_context("spawn")
    go, out = context.Event(), context.Queue()
    before = server.gets("dataset/")
    workers = [
        context.Process(
            target=_stage_worker, args=(kind, server.endpoint, str(workdir), i, go, out)
        )
        for i in range(trials)
    ]
    for worker in workers:
        worker.start()
    time.sleep(2.0 + 0.15 * trials)  # every process has imported boto3 and waits
    start = time.perf_counter()
    go.set()
    results = [out.get(timeout=1800) for _ in workers]
    wall = max(end for _, _, end in results) - start
    for worker in workers:
        worker.join()
    failed = [w.exitcode for w in workers if w.exitcode]
    if failed:
        raise RuntimeError(f"{kind} staging: {len(failed)} processes failed")
    downloaded = sum(d for _, d, _ in results)
    return {
        "wall_s": wall,
        "downloaded": downloaded,
        "per_dataset": downloaded / dataset_bytes,
        "gets": server.gets("dataset/") - before,
    }


# -- (2) upload ---------------------------------------------------------------------------------


def bench_upload_sweeper(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from sweeper.storage import upload_dir

    start = time.perf_counter()
    report = upload_dir(folder, f"s3://{BUCKET}/sweeper", store(args))
    wall = time.perf_counter() - start
    if not report.ok:
        raise RuntimeError(f"upload_dir failed: {report.summary()}")
    return {"wall_s": wall, "files": len(report.uploaded), "bytes": report.bytes}


def bench_upload_cli(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = ["aws", "--endpoint-url", _endpoint, "s3", "cp", "--recursive", "--quiet"]
    start = time.perf_counter()
    subprocess.run([*command, str(folder), f"s3://{BUCKET}/cli"], check=True)
    wall = time.perf_counter() - start
    return {"wall_s": wall}


def cli_start_seconds() -> float:
    """The aws CLI's own start: ``aws s3 ls`` of an empty bucket."""
    start = time.perf_counter()
    subprocess.run(
        ["aws", "--endpoint-url", _endpoint, "s3", "ls", f"s3://{BUCKET}/nothing/"],
        check=False,
        capture_output=True,
    )
    return time.perf_counter() - start


# -- report ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    global _endpoint
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset-mb", type=int, default=300, help="dataset size (300)")
    parser.add_argument("--trials", type=int, default=20, help="trials staging it (20)")
    parser.add_argument("--upload-mb", type=int, default=1000, help="trial output size (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="upload runs of each (3)")
    parser.add_argument("--only", choices=("staging", "upload"), help="run one part only")
    args = parser.parse_args(argv)
    if shutil.which("aws") is None and args.only != "staging":
        parser.error("the aws CLI must be installed (pip install awscli) for the upload part")
    os.environ.update(CREDENTIALS)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)

    workdir = Path(tempfile.mkdtemp(prefix="sweeper-storage-bench-"))
    os.environ["AWS_CONFIG_FILE"] = str(workdir / "no-aws-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(workdir / "no-aws-credentials")
    server = Server(workdir)
    _endpoint = server.endpoint
    print(f"storage benchmark: moto server at {server.endpoint}; {os.cpu_count()} cores here")
    print(_common.versions("boto3", "botocore", "s3transfer", "moto", "awscli"))
    rows: list[str] = []
    ratios: list[str] = []
    try:
        server.reset()
        if args.only != "upload":
            staging(server, workdir, args, rows, ratios)
        if args.only != "staging":
            server.reset()
            upload(server, workdir, args, rows, ratios)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("\n".join(rows))
    print()
    print("\n".join(ratios))
    return 0


def staging(
    server: Server, workdir: Path, args: argparse.Namespace, rows: list[str], ratios: list[str]
) -> None:
    source = workdir / "dataset"
    size = make_dataset(source, args.dataset_mb)
    put_tree(source, "dataset")
    shutil.rmtree(source)
    count = sum(1 for _ in client().list_objects_v2(Bucket=BUCKET, Prefix="dataset/")["Contents"])
    print(f"(1) staging: {count} objects, {size / MB:.1f} MB, {args.trials} trial processes")
    figures = {}
    for kind in ("sweeper", "naive"):
        print(f"  running {kind} ...", file=sys.stderr, flush=True)
        figures[kind] = bench_staging(kind, server, args.trials, workdir, size)
        for leftover in [workdir / "cache", *workdir.glob("naive-*")]:
            shutil.rmtree(leftover, ignore_errors=True)
    header = f"{'(1) staging':<28}{'wall s':>9}{'MB downloaded':>15}{'x dataset':>11}{'GETs':>7}"
    rows += [header, "-" * len(header)]
    for kind, label in (("sweeper", "(a) sweeper stage"), ("naive", "(b) naive per trial")):
        f = figures[kind]
        rows.append(
            f"{label:<28}{f['wall_s']:>9.2f}{f['downloaded'] / MB:>15.1f}"
            f"{f['per_dataset']:>11.2f}{f['gets']:>7d}"
        )
    rows.append("")
    ours, naive = figures["sweeper"], figures["naive"]
    verdict = "met" if ours["per_dataset"] <= STAGING_TARGET else "missed"
    ratios.append(
        f"staging bytes per node = {ours['per_dataset']:.2f}x the dataset "
        f"(target {STAGING_TARGET:.0f}x: {verdict}); naive = {naive['per_dataset']:.2f}x"
    )
    ratios.append(
        f"staging wall time sweeper/naive = {ours['wall_s'] / naive['wall_s']:.3f} "
        f"({naive['wall_s'] / ours['wall_s']:.1f}x faster)"
    )


def upload(
    server: Server, workdir: Path, args: argparse.Namespace, rows: list[str], ratios: list[str]
) -> None:
    folder = workdir / "trial-output"
    size, count = make_trial_output(folder, args.upload_mb)
    print(f"(2) upload: {count} files, {size / MB:.1f} MB, {args.repeat} runs each, alternating")
    runs: dict[str, list[float]] = {"sweeper": [], "aws_cli": []}
    for i in range(args.repeat):
        for kind, bench in (("sweeper", bench_upload_sweeper), ("aws_cli", bench_upload_cli)):
            server.reset()
            print(f"  run {i + 1}: {kind} ...", file=sys.stderr, flush=True)
            load = os.getloadavg()[0]
            wall = bench(folder, args)["wall_s"]
            print(f"  run {i + 1}: {kind} {wall:.2f} s (load {load:.1f})", file=sys.stderr)
            runs[kind].append(wall)
    server.reset()
    start = cli_start_seconds()
    header = f"{'(2) upload':<28}{'median s':>9}{'MB/s':>9}{'runs s':>30}"
    rows += [header, "-" * len(header)]
    for kind, label in (
        ("sweeper", "(a) sweeper upload_dir"),
        ("aws_cli", "(b) aws s3 cp --recursive"),
    ):
        wall = statistics.median(runs[kind])
        each = ", ".join(f"{w:.2f}" for w in runs[kind])
        rows.append(f"{label:<28}{wall:>9.2f}{size / MB / wall:>9.1f}{each:>30}")
    rows.append(f"    (aws CLI start alone, `aws s3 ls`: {start:.2f} s)")
    ratio = statistics.median(runs["aws_cli"]) / statistics.median(runs["sweeper"])
    verdict = "met" if ratio >= UPLOAD_TARGET else "missed"
    ratios.append(
        f"upload throughput sweeper/aws_cli = {ratio:.2f} (target >= {UPLOAD_TARGET}: {verdict}; "
        f"sweeper's includes verifying every object)"
    )
    ratios.append(json.dumps({"upload_runs_s": runs, "bytes": size, "files": count}))


if __name__ == "__main__":
    sys.exit(main())
