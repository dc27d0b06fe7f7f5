"""A real S3-protocol server for the storage tests: moto's standalone server, in its own process.

``s3_server`` (one per session) listens on a free port of 127.0.0.1. ``s3_proxy`` puts a small
forwarding proxy, started in this process, in front of it: the proxy records every request the
server receives (method, key, range, status, bytes sent back), so tests can count downloads; it
can also slow requests down, or go away (its port refusing connections, as a stopped store's
does) after a number of uploads. ``moto_server`` starts a server of the test's own, for tests
that stop and restart it.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

HOST = "127.0.0.1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1, started and stopped on demand (same port)."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.log_path = workdir / f"moto-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint} in {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port (moto keeps its objects in memory: all gone)."""
        self.stop()
        self.start()


@dataclass(frozen=True)
class Request:
    """One request the proxy forwarded."""

    method: str
    bucket: str
    key: str
    query: str
    range: str | None
    status: int
    sent: int  # body bytes sent back to the client


_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"}
_HOP |= {"upgrade", "expect", "content-length"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        if proxy.down.is_set():
            self.close_connection = True  # the store went away mid-request
            return
        if proxy.delay and self.command == "GET":
            time.sleep(proxy.delay)
        upstream = http.client.HTTPConnection(HOST, proxy.upstream_port, timeout=120)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP:
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        record = Request(
            self.command,
            bucket,
            key,
            url.query,
            self.headers.get("Range"),
            response.status,
            0 if self.command == "HEAD" else len(data),
        )
        proxy.record(record)
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP and name.lower() not in ("server", "date"):
                self.send_header(name, value)
        length = response.getheader("Content-Length", "0") if self.command == "HEAD" else len(data)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: CountingProxy


class CountingProxy:
    """A forwarding proxy on 127.0.0.1 that records what the server behind it was asked.

    Attributes:
        delay: Seconds to hold each GET before forwarding it.
        down_after_puts: After this many PUTs, stop listening (connections are refused, as a
            stopped store's are) until :meth:`start` is called again.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = _free_port()
        self.delay = 0.0
        self.down_after_puts: int | None = None
        self.down = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)
            puts = sum(1 for r in self._requests if r.method == "PUT")
        if self.down_after_puts is not None and puts >= self.down_after_puts:
            self.down_after_puts = None
            threading.Thread(target=self.stop, daemon=True).start()

    def gets(self, key: str | None = None) -> list[Request]:
        """The GET requests for object ``key`` (any object: ``None``) answered with data."""
        return [
            r
            for r in self.requests
            if r.method == "GET" and r.key and (key is None or r.key == key) and r.status < 300
        ]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> None:
        self.down.clear()
        self._server = _Server((HOST, self.port), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: new connections are refused, requests in flight get no answer."""
        self.down.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials for moto, and no user AWS configuration (also for child processes)."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """moto's S3 server for the whole session, on a free port of 127.0.0.1."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def moto_server(tmp_path: Path):
    """A moto server of this test's own (for tests that stop and restart it)."""
    server = MotoServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_proxy(s3_server: MotoServer):
    """A counting proxy in front of the session's server."""
    proxy = CountingProxy(s3_server.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def store_for():
    """``store_for(endpoint, **fields)``: a StoreConfig that gives up fast (tests, not outages)."""
    from sweeper.storage import StoreConfig

    def make(endpoint: str, **fields: object) -> StoreConfig:
        options: dict[str, object] = {
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "addressing_style": "path",
            "max_attempts": 2,
            "connect_timeout": 2.0,
            "read_timeout": 30.0,
            "upload_attempts": 2,
            "backoff_base": 0.05,
        }
        options.update(fields)
        return StoreConfig(**options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def bucket(s3_server: MotoServer) -> str:
    """A new, empty bucket on the session's server."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1").create_bucket(
        Bucket=name
    )
    return name


@pytest.fixture
def write_tree():
    """``write_tree(root, {relative path: bytes})``: create the files."""

    def write(root: Path, files: dict[str, bytes]) -> Path:
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root

    return write


@pytest.fixture
def put_objects(s3_server: MotoServer):
    """``put_objects(bucket, {key: bytes})`` straight on the server (not through a proxy)."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")

    def put(bucket: str, objects: dict[str, bytes]) -> None:
        for key, data in objects.items():
            client.put_object(Bucket=bucket, Key=key, Body=data)

    return put


@pytest.fixture
def read_tree():
    """``read_tree(root)``: {relative POSIX path: bytes} of every file under ``root``."""

    def read(root: Path) -> dict[str, bytes]:
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }

    return read
