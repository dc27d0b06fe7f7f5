"""Staging: one download per node and data version, counted at a real S3 server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sweeper.errors import StorageError
from sweeper.storage import stage, stage_dataset

CHILD = Path(__file__).with_name("_stage_child.py")
MiB = 1024 * 1024

pytestmark = pytest.mark.s3


def dataset() -> dict[str, bytes]:
    """A small dataset: nested files, an empty one, and one big enough for ranged GETs."""
    files = {f"shards/part-{i:02d}.bin": os.urandom(100_000 + i) for i in range(5)}
    files["labels.csv"] = b"id,label\n1,cat\n2,dog\n"
    files["deep/er/empty.txt"] = b""
    files["big.bin"] = os.urandom(12 * MiB + 123)  # 8 MiB threshold: two ranged GETs
    return files


def objects(files: dict[str, bytes], prefix: str = "data") -> dict[str, bytes]:
    return {f"{prefix}/{rel}": data for rel, data in files.items()}


def assert_one_download(proxy, files: dict[str, bytes], prefix: str = "data") -> None:
    """Every object was fetched exactly once: its GETs' bytes add up to its size, no more."""
    for rel, data in files.items():
        gets = proxy.gets(f"{prefix}/{rel}")
        assert sum(g.sent for g in gets) == len(data), (rel, gets)
        if len(data) < 8 * MiB:
            assert len(gets) == (1 if data else 0), (rel, gets)


def test_stage_mirrors_the_prefix_and_reuses_the_copy(
    s3_proxy, bucket, put_objects, store_for, read_tree, tmp_path: Path
) -> None:
    files = dataset()
    put_objects(bucket, objects(files))
    put_objects(bucket, {"other/x.bin": b"not part of it", "data2/y": b"neither"})
    config = store_for(s3_proxy.endpoint)

    first = stage_dataset(f"s3://{bucket}/data", tmp_path / "cache", config)
    assert first.path.parent == tmp_path / "cache" / bucket
    assert read_tree(first.path) == files
    assert first.downloaded == sum(map(len, files.values())) and first.reused == 0
    assert_one_download(s3_proxy, files)

    # Found complete: a listing, no GET.
    s3_proxy.clear()
    assert stage(f"s3://{bucket}/data/", tmp_path / "cache", config) == first.path
    assert s3_proxy.gets() == []
    # Nothing but the version's folder, its listing and its lock is left in the cache.
    names = sorted(p.name for p in first.path.parent.iterdir())
    assert names == sorted([first.version, f"{first.version}.json", f".{first.version}.lock"])


def test_concurrent_processes_download_once(
    s3_proxy, bucket, put_objects, read_tree, tmp_path: Path
) -> None:
    files = dataset()
    put_objects(bucket, objects(files))
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                f"s3://{bucket}/data",
                str(tmp_path / "cache"),
                s3_proxy.endpoint,
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    s3_proxy.delay = 0.1  # make the download last long enough for the others to queue
    go.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["path"] for r in results}) == 1
    assert sorted(r["downloaded"] > 0 for r in results) == [False, False, False, True]
    assert read_tree(Path(results[0]["path"])) == files
    assert_one_download(s3_proxy, files)


def test_concurrent_threads_download_once(
    s3_proxy, bucket, put_objects, store_for, tmp_path: Path
) -> None:
    files = dataset()
    put_objects(bucket, objects(files))
    config = store_for(s3_proxy.endpoint)
    s3_proxy.delay = 0.05
    paths: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: paths.append(stage(f"s3://{bucket}/data", tmp_path / "c", config))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(paths) == 4 and len(set(paths)) == 1
    assert_one_download(s3_proxy, files)


def test_a_changed_object_is_fetched_again(
    s3_proxy, bucket, put_objects, store_for, read_tree, tmp_path: Path
) -> None:
    files = dataset()
    put_objects(bucket, objects(files))
    config = store_for(s3_proxy.endpoint)
    old = stage(f"s3://{bucket}/data", tmp_path / "cache", config)

    changed = dict(files, **{"labels.csv": b"id,label\n1,cat\n2,dog\n3,owl\n"})
    put_objects(bucket, {"data/labels.csv": changed["labels.csv"]})
    s3_proxy.clear()
    new = stage_dataset(f"s3://{bucket}/data", tmp_path / "cache", config)

    assert new.path != old and new.path.parent == old.parent
    assert read_tree(new.path) == changed
    assert read_tree(old) == files  # the old version stays whole for trials still using it
    # Only the changed object was downloaded; the others were linked from the old copy.
    assert [g.key for g in s3_proxy.gets()] == ["data/labels.csv"]
    assert new.downloaded == len(changed["labels.csv"])
    assert new.reused == sum(map(len, files.values())) - len(files["labels.csv"])


def test_a_crash_mid_download_leaves_no_complete_copy(
    s3_proxy, bucket, put_objects, store_for, read_tree, tmp_path: Path
) -> None:
    files = dataset()
    put_objects(bucket, objects(files))
    cache = tmp_path / "cache"
    go = tmp_path / "go"
    go.touch()
    s3_proxy.delay = 1.0
    child = subprocess.Popen(
        [sys.executable, str(CHILD), f"s3://{bucket}/data", str(cache), s3_proxy.endpoint, str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    partials: list[Path] = []
    while not partials and time.monotonic() < deadline:
        partials = list((cache / bucket).glob(".*.partial-*")) if (cache / bucket).is_dir() else []
        time.sleep(0.02)
    assert partials, "the child never started downloading"
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    # What the crash left: a partial folder, nothing that looks like a complete copy.
    entries = [p for p in (cache / bucket).iterdir() if not p.name.startswith(".")]
    assert entries == []
    assert list((cache / bucket).glob(".*.partial-*"))

    s3_proxy.delay = 0.0
    path = stage(f"s3://{bucket}/data", cache, store_for(s3_proxy.endpoint))
    assert read_tree(path) == files
    assert not list((cache / bucket).glob(".*.partial-*"))  # cleaned up


def test_a_single_object_uri(s3_server, bucket, put_objects, store_for, tmp_path: Path) -> None:
    put_objects(bucket, {"csv/train.csv": b"a,b\n1,2\n", "csv/train.csv.bak": b"old"})
    path = stage(f"s3://{bucket}/csv/train.csv", tmp_path, store_for(s3_server.endpoint))
    assert [p.name for p in path.iterdir()] == ["train.csv"]


def test_nothing_there_or_unsafe_keys(
    s3_server, bucket, put_objects, store_for, tmp_path: Path
) -> None:
    config = store_for(s3_server.endpoint)
    with pytest.raises(StorageError, match="must name at least one object, got none"):
        stage(f"s3://{bucket}/missing", tmp_path, config)
    put_objects(bucket, {"evil/ok.txt": b"x", "evil/a\\b": b"y"})
    with pytest.raises(StorageError, match="safe to copy to disk"):
        stage(f"s3://{bucket}/evil", tmp_path, config)
    put_objects(bucket, {"clash/a": b"file", "clash/a/b": b"and folder"})
    with pytest.raises(StorageError, match="both a file and a folder"):
        stage(f"s3://{bucket}/clash", tmp_path, config)
    assert not list(tmp_path.rglob("*.partial-*"))


def test_unreachable_store(store_for, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = store_for(f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(StorageError, match=r"data must be readable at s3://bucket/x, got"):
        stage("s3://bucket/x", tmp_path, config)


def test_an_object_changed_mid_download_is_never_mixed_in(
    s3_proxy, bucket, put_objects, store_for, read_tree, tmp_path: Path
) -> None:
    files = dataset()
    del files["big.bin"]
    put_objects(bucket, objects(files))
    s3_proxy.delay = 1.0  # GETs wait; the object changes meanwhile
    result: list[Path] = []
    config = store_for(s3_proxy.endpoint)
    thread = threading.Thread(
        target=lambda: result.append(stage(f"s3://{bucket}/data", tmp_path, config))
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not any(r.method == "GET" and not r.key for r in s3_proxy.requests):
        assert time.monotonic() < deadline, "no listing"
        time.sleep(0.01)
    changed = dict(files, **{"labels.csv": b"changed while staging"})
    put_objects(bucket, {"data/labels.csv": changed["labels.csv"]})
    s3_proxy.delay = 0.0
    thread.join(60)
    # The old ETag no longer matched (412): listed again, and the copy is the new version.
    assert any(r.status == 412 for r in s3_proxy.requests)
    assert read_tree(result[0]) == changed
    assert [p.name for p in (tmp_path / bucket).iterdir() if p.is_dir()] == [result[0].name]


@pytest.mark.parametrize("change", ["append", "extra file", "remove"])
def test_a_copy_a_trial_changed_is_staged_again(
    s3_server, bucket, put_objects, store_for, read_tree, tmp_path: Path, change: str
) -> None:
    files = {"train.csv.gz": b"\x1f\x8b not really gzip", "labels.csv": b"id\n1\n"}
    put_objects(bucket, objects(files))
    config = store_for(s3_server.endpoint)
    path = stage(f"s3://{bucket}/data", tmp_path / "cache", config)
    assert not os.access(path / "labels.csv", os.W_OK) or os.geteuid() == 0
    assert (path / "labels.csv").stat().st_mode & 0o222 == 0  # read-only for everyone
    if change == "append":
        (path / "labels.csv").chmod(0o644)
        with open(path / "labels.csv", "ab") as handle:
            handle.write(b"2\n")
    elif change == "extra file":
        (path / "train.csv").write_bytes(b"unpacked by a trial")
    else:
        (path / "labels.csv").unlink()
    again = stage(f"s3://{bucket}/data", tmp_path / "cache", config)
    assert again == path
    assert read_tree(again) == files
