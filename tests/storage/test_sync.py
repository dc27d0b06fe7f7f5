"""Result sync: verified uploads, outages, the pending record and secrets, on a real server."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
from pathlib import Path

import boto3
import pytest

from sweeper.errors import StorageError
from sweeper.storage import (
    PENDING_FILE,
    RedactingFilter,
    StoreConfig,
    local_etag,
    pending_uploads,
    redact,
    stage,
    sync_dir,
    sync_pending,
    upload_dir,
)

MiB = 1024 * 1024

pytestmark = pytest.mark.s3


def trial_files() -> dict[str, bytes]:
    """A trial's folder: a multipart-sized model, checkpoints, logs, odd-but-safe names."""
    return {
        "output/model.pt": os.urandom(11 * MiB + 7),  # two parts of 8 MiB
        "output/head.pt": os.urandom(8 * MiB),  # exactly the threshold: one part
        "output/metrics.jsonl": b'{"step": 1, "loss": 0.5}\n' * 100,
        "checkpoints/epoch-1.ckpt": os.urandom(300_000),
        "checkpoints/empty.marker": b"",
        "trial.log": b"epoch 1: loss=0.5\n",
        "params.json": b'{"lr": 0.01}\n',
        "output/r\u00e9sum\u00e9 (final).txt": "d\u00e9j\u00e0 vu\n".encode(),
    }


def download_prefix(endpoint: str, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix/`` with boto3, as {path relative to the prefix: bytes}."""
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"][len(prefix) :].lstrip("/")] = body
    return found


def aws_cli(endpoint: str, *args: str) -> None:
    subprocess.run(["aws", "--endpoint-url", endpoint, *args], check=True, capture_output=True)


def dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_upload_is_verified_and_byte_identical(
    s3_server, bucket, store_for, write_tree, read_tree, tmp_path: Path
) -> None:
    files = trial_files()
    trial = write_tree(tmp_path / "trial-0001", files)
    config = store_for(s3_server.endpoint)

    report = upload_dir(trial, f"s3://{bucket}/results/sweep-1/trial-0001", config)

    assert report.ok, report.failed
    assert sorted(report.uploaded) == sorted(f"results/sweep-1/trial-0001/{r}" for r in files)
    assert report.bytes == sum(map(len, files.values()))
    assert download_prefix(s3_server.endpoint, bucket, "results/sweep-1/trial-0001") == files
    # The ETags sweeper verified against are the server's own (one multipart, one single).
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    for rel in ("output/model.pt", "checkpoints/epoch-1.ckpt"):
        head = client.head_object(Bucket=bucket, Key=f"results/sweep-1/trial-0001/{rel}")
        etag = local_etag(trial / rel, config.multipart_threshold, config.multipart_chunksize)
        assert head["ETag"].strip('"') == etag
    assert local_etag(trial / "output/model.pt", 8 * MiB, 8 * MiB).endswith("-2")
    # Another client agrees: the aws CLI copies the prefix back byte for byte.
    aws_cli(
        s3_server.endpoint,
        "s3",
        "cp",
        "--recursive",
        "--quiet",
        f"s3://{bucket}/results/sweep-1/trial-0001",
        str(tmp_path / "via-cli"),
    )
    assert read_tree(tmp_path / "via-cli") == files


def test_data_uploaded_by_the_aws_cli_stages(
    s3_server, bucket, store_for, write_tree, read_tree, tmp_path: Path
) -> None:
    files = trial_files()
    write_tree(tmp_path / "src", files)
    aws_cli(
        s3_server.endpoint,
        "s3",
        "cp",
        "--recursive",
        "--quiet",
        str(tmp_path / "src"),
        f"s3://{bucket}/datasets/v1",
    )
    path = stage(f"s3://{bucket}/datasets/v1", tmp_path / "cache", store_for(s3_server.endpoint))
    assert read_tree(path) == files


def test_mismatch_and_bad_names_are_reported(
    s3_server, bucket, store_for, write_tree, monkeypatch, tmp_path: Path
) -> None:
    trial = write_tree(tmp_path / "t", {"ok.txt": b"fine", "bad\\name.txt": b"x", "n\nl": b"y"})
    config = store_for(s3_server.endpoint)
    report = upload_dir(trial, f"s3://{bucket}/r", config)
    assert sorted(report.failed) == ["bad\\name.txt", "n\nl"]
    assert "rename the file" in report.failed["bad\\name.txt"]
    assert report.uploaded == ["r/ok.txt"]

    # An object that does not match its file is not confirmed (and is uploaded again).
    import sweeper.storage._verify as verify

    monkeypatch.setattr(verify, "local_etag", lambda *args: "0" * 32)
    report = upload_dir(trial, f"s3://{bucket}/r2", config, files=["ok.txt"])
    assert not report.ok and "not verified" in report.failed["ok.txt"]
    assert trial.joinpath("ok.txt").read_bytes() == b"fine"  # nothing local is ever deleted


def make_sweep(root: Path, write_tree) -> Path:
    sweep = root / "sweep-1"
    for name in ("trial-0000", "trial-0001"):
        write_tree(sweep / "trials" / name, trial_files())
    write_tree(sweep, {"results.csv": b"trial,state\ntrial-0000,completed\n", "spec.yml": b"x\n"})
    return sweep


def test_server_down_then_restarted_sync_completes(
    moto_server, store_for, write_tree, read_tree, tmp_path: Path
) -> None:
    # (moto keeps objects in memory: the restarted server is empty, as a new store would be.)
    boto3.client("s3", endpoint_url=moto_server.endpoint).create_bucket(Bucket="results")
    sweep = make_sweep(tmp_path, write_tree)
    config = store_for(moto_server.endpoint)
    target = "s3://results/sweeps/sweep-1"

    ok = sync_dir(sweep, "trials/trial-0000", f"{target}/trial-0000", config)
    assert ok.ok and pending_uploads(sweep) == []

    moto_server.stop()
    before = read_tree(sweep)
    down = sync_dir(sweep, sweep / "trials/trial-0001", f"{target}/trial-0001", config)
    summary = sync_dir(sweep, ".", target, config, files=["results.csv", "spec.yml"])
    assert not down.ok and down.unreachable and not summary.ok
    assert "EndpointConnectionError" in next(iter(down.failed.values()))
    assert read_tree(sweep) == before | {PENDING_FILE: (sweep / PENDING_FILE).read_bytes()}
    entries = pending_uploads(sweep)
    assert [(e.local, e.target, e.files) for e in entries] == [
        ("trials/trial-0001", f"{target}/trial-0001", None),
        (".", target, ("results.csv", "spec.yml")),
    ]
    assert all(e.attempts == 1 and e.error for e in entries)

    # Still down: sync says so and keeps the record.
    again = sync_pending(sweep, config)
    assert again.unreachable and again.pending == ["trials/trial-0001", "."]
    assert [e.attempts for e in pending_uploads(sweep)] == [2, 1]

    moto_server.start()
    boto3.client("s3", endpoint_url=moto_server.endpoint).create_bucket(Bucket="results")
    done = sync_pending(sweep, config)
    assert done.ok and done.pending == [] and pending_uploads(sweep) == []
    assert not (sweep / PENDING_FILE).exists()
    stored = download_prefix(moto_server.endpoint, "results", "sweeps/sweep-1")
    expected = {f"trial-0001/{rel}": data for rel, data in trial_files_of(sweep, "trial-0001")}
    expected |= {"results.csv": before["results.csv"], "spec.yml": before["spec.yml"]}
    assert stored == expected


def trial_files_of(sweep: Path, trial: str) -> list[tuple[str, bytes]]:
    root = sweep / "trials" / trial
    return [
        (p.relative_to(root).as_posix(), p.read_bytes()) for p in root.rglob("*") if p.is_file()
    ]


def test_store_lost_mid_upload_then_back(
    s3_server, s3_proxy, bucket, store_for, write_tree, read_tree, tmp_path: Path
) -> None:
    files = {f"output/f{i:03d}.bin": os.urandom(20_000 + i) for i in range(60)}
    files["output/model.pt"] = os.urandom(10 * MiB)
    sweep = tmp_path / "sweep"
    write_tree(sweep / "trials" / "trial-0003", files)
    config = store_for(s3_proxy.endpoint, max_concurrency=4)
    s3_proxy.down_after_puts = 20  # the store goes away after 20 uploads

    report = sync_dir(sweep, "trials/trial-0003", f"s3://{bucket}/r/sweep/trial-0003", config)
    assert not report.ok and report.unreachable
    assert [e.local for e in pending_uploads(sweep)] == ["trials/trial-0003"]
    assert read_tree(sweep / "trials" / "trial-0003") == files
    sent = {r.key for r in s3_proxy.requests if r.method == "PUT" and r.status == 200}
    assert 0 < len(sent) < len(files)

    s3_proxy.start()  # back
    s3_proxy.clear()
    done = sync_pending(sweep, config)
    assert done.ok and pending_uploads(sweep) == []
    assert len(done.uploaded) == len(files)
    # The objects that had landed and match were verified, not sent again.
    resent = {r.key for r in s3_proxy.requests if r.method == "PUT"}
    assert resent and not resent & {k for k in sent if "model.pt" not in k}
    assert download_prefix(s3_server.endpoint, bucket, "r/sweep/trial-0003") == files
    aws_cli(
        s3_server.endpoint,
        "s3",
        "cp",
        "--recursive",
        "--quiet",
        f"s3://{bucket}/r/sweep/trial-0003",
        str(tmp_path / "via-cli"),
    )
    assert read_tree(tmp_path / "via-cli") == files


SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
ACCESS_KEY = "AKIALEAKCANARY12345"


def test_explicit_credentials_appear_nowhere(
    s3_server, bucket, put_objects, store_for, write_tree, caplog, capfd, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)  # botocore's debug lines included
    config = store_for(s3_server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    assert SECRET_KEY not in repr(config) and ACCESS_KEY not in repr(config)
    sweep = make_sweep(tmp_path, write_tree)
    # Works with them (moto accepts any credentials) ...
    assert sync_dir(sweep, "trials/trial-0000", f"s3://{bucket}/s/trial-0000", config).ok
    put_objects(bucket, {"d/a.bin": b"abc"})
    stage(f"s3://{bucket}/d", tmp_path / "cache", config)
    # ... and fails without showing them.
    dead = store_for(dead_endpoint(), access_key=ACCESS_KEY, secret_key=SECRET_KEY, max_attempts=1)
    report = sync_dir(sweep, "trials/trial-0001", "s3://bucket/s/trial-0001", dead)
    with pytest.raises(StorageError) as caught:
        stage("s3://bucket/d", tmp_path / "cache", dead)
    logging.getLogger("sweeper.test").warning("leaked? %s / %s", SECRET_KEY, ACCESS_KEY)

    texts = [
        caplog.text,
        *(r.getMessage() for r in caplog.records),
        str(caught.value),
        json.dumps(report.failed),
        (sweep / PENDING_FILE).read_text(),
        *capfd.readouterr(),
    ]
    texts += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    for text in texts:
        for secret in (SECRET_KEY, ACCESS_KEY, "wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYSECRETKEY"):
            assert secret not in text
    assert "leaked? *** / ***" in caplog.text
    assert "Credential=***/" in caplog.text  # botocore's signed request, key id redacted
    assert len(caplog.records) > 10  # botocore did log (its lines were checked)


def test_redact_and_filter() -> None:
    secrets = ["p@ss/word+1", "AKIA0000"]
    text = "a p@ss/word+1 b p%40ss%2Fword%2B1 c p%40ss%2Fword%2B1 AKIA0000"
    assert redact(text, secrets) == "a *** b *** c *** ***"
    assert redact("nothing", []) == "nothing"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key=%s", ("AKIA0000",), None)
    RedactingFilter(secrets).filter(record)
    assert record.getMessage() == "key=***"


def test_store_config_checks() -> None:
    from sweeper.errors import ConfigError

    with pytest.raises(ConfigError, match="addressing_style must be one of auto, path, virtual"):
        StoreConfig(addressing_style="sideways")
    with pytest.raises(ConfigError, match="endpoint_url must be an http"):
        StoreConfig(endpoint_url="minio:9000")
    with pytest.raises(ConfigError, match="both an access key and a secret key") as caught:
        StoreConfig(access_key="AKIAONLY")
    assert "AKIAONLY" not in str(caught.value)
    from sweeper.manifest import ManifestStore
    from sweeper.settings import S3Settings

    s3 = S3Settings(endpoint_url="http://minio:9000", addressing_style="path")
    config = StoreConfig.from_settings(s3)
    assert (config.endpoint_url, config.addressing_style, config.region) == (
        "http://minio:9000",
        "path",
        None,
    )
    store = ManifestStore("https://cos.example", access_key="AK", secret_key="SK", region="eu")
    config = StoreConfig.from_settings(s3, store, max_concurrency=4)
    assert config.endpoint_url == "https://cos.example" and config.secrets == ("AK", "SK")
    assert config.region == "eu" and config.max_concurrency == 4


def test_verification_reads_the_stores_answers(
    s3_proxy, bucket, store_for, write_tree, tmp_path: Path
) -> None:
    files = {f"logs/{i:02d}.txt": f"line {i}\n".encode() for i in range(30)}
    files["model.pt"] = os.urandom(9 * MiB)  # multipart: its answer is CompleteMultipartUpload's
    trial = write_tree(tmp_path / "t", files)
    report = upload_dir(trial, f"s3://{bucket}/v", store_for(s3_proxy.endpoint))
    assert report.ok and len(report.uploaded) == len(files)
    # Every ETag came with the upload's own answer: no listing, no HEAD.
    assert {r.method for r in s3_proxy.requests} == {"PUT", "POST"}

    # Already there and matching: a check of what is there (one listing), nothing sent again.
    s3_proxy.clear()
    again = upload_dir(trial, f"s3://{bucket}/v", store_for(s3_proxy.endpoint), skip_existing=True)
    assert again.ok and len(again.uploaded) == len(files)
    assert [r.method for r in s3_proxy.requests] == ["GET"]


def test_local_etag(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom(5 * MiB + 1)
    path = tmp_path / "f"
    path.write_bytes(data)
    parts = [hashlib.md5(data[: 5 * MiB]).digest(), hashlib.md5(data[5 * MiB :]).digest()]
    assert local_etag(path, 5 * MiB, 5 * MiB) == hashlib.md5(b"".join(parts)).hexdigest() + "-2"
    assert local_etag(path, 6 * MiB, 5 * MiB) == hashlib.md5(data).hexdigest()
    path.write_bytes(data[: 5 * MiB])  # exactly the threshold: one part, still multipart
    one = hashlib.md5(hashlib.md5(data[: 5 * MiB]).digest()).hexdigest() + "-1"
    assert local_etag(path, 5 * MiB, 5 * MiB) == one
    path.write_bytes(b"")
    assert local_etag(path, 5 * MiB, 5 * MiB) == hashlib.md5(b"").hexdigest()
