"""s3:// URIs and object keys that cannot escape their prefix."""

from __future__ import annotations

import random

import pytest

from sweeper.errors import SpecError
from sweeper.storage import (
    S3Uri,
    UnsafeKeyError,
    is_s3_uri,
    parse_s3_uri,
    relative_path,
    safe_key,
)


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my.bucket-1/data/train/", "my.bucket-1", "data/train"),
        ("s3://abc/a//./b", "abc", "a/b"),
        ("S3://abc/x", "abc", "x"),
        ("s3://abc/r\u00e9sultats/\u65e5\u672c", "abc", "r\u00e9sultats/\u65e5\u672c"),
    ],
)
def test_parse_valid(uri: str, bucket: str, prefix: str) -> None:
    parsed = parse_s3_uri(uri)
    assert parsed == S3Uri(bucket, prefix)
    assert is_s3_uri(uri)


@pytest.mark.parametrize(
    "bucket",
    ["ab", "-abc", "abc-", "_abc", "abc_", "a..b", "192.168.1.1", "a" * 256, "", "a b", "a%b"],
)
def test_parse_rejects_bad_bucket_names(bucket: str) -> None:
    with pytest.raises(SpecError, match="bucket must be a valid S3 bucket name") as caught:
        parse_s3_uri(f"s3://{bucket}/x", file="experiment.yml", field="data")
    assert "(experiment.yml: data)" in str(caught.value)


@pytest.mark.parametrize(
    "bucket", ["tf_training_data", "Upper", "MixedCase_1", "a" * 64, "b" * 255]
)
def test_legacy_bucket_names_are_accepted_and_marked(bucket: str) -> None:
    """The names AWS once allowed in us-east-1 and FfDL's stores, IBM COS and MinIO serve."""
    parsed = parse_s3_uri(f"s3://{bucket}/x")
    assert parsed == S3Uri(bucket, "x")
    assert parsed.legacy


def test_dns_bucket_names_are_not_legacy() -> None:
    assert not parse_s3_uri("s3://my.bucket-1/x").legacy


@pytest.mark.parametrize("uri", ["/data/train", "http://host/b", "s3:/b/x", "", "gs://bucket"])
def test_parse_rejects_other_schemes(uri: str) -> None:
    with pytest.raises(SpecError, match="must start with s3://"):
        parse_s3_uri(uri)
    assert not is_s3_uri(uri)


@pytest.mark.parametrize("prefix", ["a/../b", "..", "a\\b", "a\x00b", "a\nb", "x/\u2028"])
def test_parse_rejects_escaping_prefixes(prefix: str) -> None:
    with pytest.raises(SpecError, match="prefix of"):
        parse_s3_uri(f"s3://bucket/{prefix}")


@pytest.mark.parametrize(
    ("prefix", "parts", "key"),
    [
        ("results", ("sweep-1", "trial-0001"), "results/sweep-1/trial-0001"),
        ("", ("a/b.txt",), "a/b.txt"),
        ("p/", ("a//./b", "c"), "p/a/b/c"),
        ("p", ("output/model.pt",), "p/output/model.pt"),
        ("p", ("...", "a..b", ".hidden"), "p/.../a..b/.hidden"),
        ("p", ("r\u00e9sum\u00e9 (1).txt",), "p/r\u00e9sum\u00e9 (1).txt"),
        ("a/b", (), "a/b"),
    ],
)
def test_safe_key_joins_under_the_prefix(prefix: str, parts: tuple[str, ...], key: str) -> None:
    assert safe_key(prefix, *parts) == key


@pytest.mark.parametrize(
    "part",
    [
        "..",
        "a/../../etc",
        "a/..",
        "/etc/passwd",
        "//server/share",
        "..\\..\\windows",
        "a\\b",
        "a\x00b",
        "line\nbreak",
        "tab\there",
        "bell\x07",
        "del\x7f",
        "c1\x85",
        "sep\u2028",
        "lone\udcff",
        "",
        ".",
        "././/",
        "x" * 1100,
    ],
)
def test_safe_key_refuses_escaping_or_odd_parts(part: str) -> None:
    with pytest.raises(UnsafeKeyError):
        safe_key("results/sweep", part)


def test_safe_key_refuses_a_bad_prefix_and_non_strings() -> None:
    with pytest.raises(UnsafeKeyError):
        safe_key("a/../b", "x")
    with pytest.raises(UnsafeKeyError):
        safe_key("p", 3)  # type: ignore[arg-type]


def test_safe_key_fuzz_never_escapes() -> None:
    alphabet = ["a", "b", ".", "..", "/", "\\", "\x00", "\n", " ", "%2e", "~", "\u00e9", ":"]
    rng = random.Random(0)
    for _ in range(3000):
        part = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        try:
            key = safe_key("base/dir", part)
        except UnsafeKeyError:
            continue
        segments = key.split("/")
        assert key.startswith("base/dir/")
        assert ".." not in segments and "" not in segments and "." not in segments
        assert "\\" not in key and "\x00" not in key and "\n" not in key


def test_uri_helpers() -> None:
    uri = parse_s3_uri("s3://bucket/results")
    assert str(uri) == "s3://bucket/results"
    assert uri.dir_prefix == "results/"
    assert uri.key("sweep", "trial-0001") == "results/sweep/trial-0001"
    assert uri.child("sweep") == S3Uri("bucket", "results/sweep")
    assert str(S3Uri("bucket")) == "s3://bucket" and S3Uri("bucket").dir_prefix == ""
    with pytest.raises(UnsafeKeyError):
        uri.child("..")


def test_relative_path() -> None:
    assert relative_path("data/a/b.bin", "data").as_posix() == "a/b.bin"
    assert relative_path("a/b.bin", "").as_posix() == "a/b.bin"
    assert relative_path("data//x", "data/").as_posix() == "x"
    for key, prefix in [
        ("other/x", "data"),
        ("data/../x", "data"),
        ("data/a/../../x", "data"),
        ("data/a\\..\\x", "data"),
        ("data/", "data"),
        ("datax/y", "data"),
    ]:
        with pytest.raises(UnsafeKeyError):
            relative_path(key, prefix)
