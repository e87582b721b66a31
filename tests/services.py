"""Services that tests talk to for real (Redis, ...): reachable, or a LOUD skip, or in CI a failure.

A test that needs a service calls its helper here. When the service is missing the test is skipped
with a reason in capitals (shown by `pytest -ra`), unless CIVICSCORE_REQUIRE_SERVICES=1 (set by
.ci/run): then the skip is a failure, so CI can never go green by skipping them.

    url = redis_url()                 # the shared Redis (CIVICSCORE_TEST_REDIS_URL, default 127.0.0.1:6379/0)
    prefix = redis_prefix()           # a key prefix of its own for one test; drop_keys(url, prefix) after
    with PrivateRedis() as redis: ... # a redis-server of the test's own, to stop and start again
    url = require_postgres()          # CIVICSCORE_TEST_POSTGRES_URL (each test makes its own schema or database)
    nginx = require_nginx()           # the path of an nginx that proxies gRPC (`make cluster-deps`)
    require_service("NAME", "why")   # for another service: skip loudly, or fail under the variable
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Self

import pytest

REQUIRE_ENV = "CIVICSCORE_REQUIRE_SERVICES"
REDIS_ENV = "CIVICSCORE_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def services_required() -> bool:
    """Whether a missing service fails the test instead of skipping it (CI)."""
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


def require_service(name: str, reason: str) -> NoReturn:
    """Skip the calling test loudly; under CIVICSCORE_REQUIRE_SERVICES=1 fail it instead."""
    if services_required():
        pytest.fail(f"{name} is required ({REQUIRE_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(f"{name.upper()} TESTS SKIPPED: {reason} (set {REQUIRE_ENV}=1 to make this a failure)")


def _answers_ping(host: str, port: int, timeout_s: float = 2.0) -> str | None:
    """None when a Redis at host:port answers PING; else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = conn.recv(64)
    except OSError as error:
        return f"nothing answers at {host}:{port} ({error})"
    return None if reply.startswith(b"+PONG") else f"{host}:{port} answered {reply[:40]!r}, not PONG"


def redis_url() -> str:
    """The URL of the Redis for tests, checked to answer; skips (or fails) the test otherwise."""
    url = os.environ.get(REDIS_ENV, "").strip() or DEFAULT_REDIS_URL
    parts = urllib.parse.urlsplit(url)
    problem = _answers_ping(parts.hostname or "127.0.0.1", parts.port or 6379)
    if problem is not None:
        require_service("Redis", f"{problem}; start Redis there or set {REDIS_ENV}")
    return url


def redis_prefix() -> str:
    """A key prefix no other test uses (tests running side by side share one Redis)."""
    return f"civicscore-test-{uuid.uuid4().hex[:12]}:"


def drop_keys(url: str, prefix: str) -> None:
    """Delete every key under `prefix` (a test's leftovers)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateRedis:
    """A redis-server of one test's own on a free loopback port, that the test may stop and start
    again (on the same port), as an outage would. Nothing is saved to disk."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            require_service("redis-server", "the redis-server program is not installed (apt-get install redis-server)")
        self._binary = binary
        self._workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> Self:
        log = (self._workdir / f"redis-{self.port}.log").open("ab")
        self._proc = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self._workdir)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while _answers_ping("127.0.0.1", self.port, 0.5) is not None:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}: see {log.name}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop it at once (SIGKILL: a crash, nothing flushed); its port is then refused."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(30)
        self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


POSTGRES_ENV = "CIVICSCORE_TEST_POSTGRES_URL"


def require_postgres() -> str:
    """The URL of the PostgreSQL for tests (CIVICSCORE_TEST_POSTGRES_URL); skips (or fails) the test without it."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        require_service("PostgreSQL", f"{POSTGRES_ENV} is not set: set it to "
                                      "postgresql+psycopg://postgres@127.0.0.1:5432/test to run these tests")
    return url


def require_nginx() -> str:
    """The path of an nginx that proxies gRPC (HTTP/2 and grpc_pass); skips (or fails) the test without one."""
    from civicscore.cluster.nginx import NginxMissing, find_nginx

    try:
        return find_nginx()
    except NginxMissing as missing:
        require_service("nginx", str(missing))
