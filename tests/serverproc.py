"""Start the real civicscore server as a subprocess on a free port, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from civicscore_api.v1 import (
    assignments_pb2_grpc,
    evaluations_pb2_grpc,
    identities_pb2_grpc,
    measurements_pb2_grpc,
    outcomes_pb2_grpc,
    periods_pb2_grpc,
    rulesets_pb2_grpc,
    units_pb2,
    units_pb2_grpc,
)
from civicscore_client import Client

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
UNITS_CSV = ROOT / "server" / "civicscore" / "demo_data" / "hanoi-units.csv"
KINDS = {"department": units_pb2.UNIT_KIND_DEPARTMENT, "ward": units_pb2.UNIT_KIND_WARD,
         "commune": units_pb2.UNIT_KIND_COMMUNE, "district": units_pb2.UNIT_KIND_DISTRICT}


_TOKENS: dict[str, str] = {}  # address -> bootstrap admin token of the server started there


def token_for(address: str) -> str:
    """The bootstrap administrator's token of the test server at `address` (for CLI runs and clients
    that only know the address)."""
    return _TOKENS.get(address, "")


def admin_client(address: str, **options: Any) -> Client:
    """An SDK client for the test server at `address`, authenticated as its bootstrap administrator."""
    return Client(address, token=token_for(address) or None, **options)


class BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor,
                  grpc.UnaryStreamClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call of a channel."""

    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._metadata]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, details: Any, metadata: list[tuple[str, str]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class ServerProcess:
    """One `python -m civicscore` process with its own database file and log."""

    def __init__(self, workdir: Path, *, database_url: str | None = None, rules: Path = RULES,
                 extra_args: tuple[str, ...] = (), module: str = "civicscore", workers: int = 1,
                 watch_rules: bool = False) -> None:
        """`watch_rules` off by default: most servers read the repository's rules/, which an
        engineer may be editing while tests run; tests of the watcher use their own copy."""
        self.workdir = workdir
        self.database_url = database_url or f"sqlite:///{workdir / 'civicscore.db'}"
        self.rules = rules
        self.extra_args = extra_args
        self.module = module
        self.workers = workers
        self.watch_rules = watch_rules
        self.port_file = workdir / "port"
        self.token_file = workdir / "admin.token"  # the bootstrap administrator's token (every role)
        self.token = ""
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""
        self._channel: grpc.Channel | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.port_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--listen", "127.0.0.1:0", "--database", self.database_url,
             "--rules", str(self.rules), "--port-file", str(self.port_file), "--workers", str(self.workers),
             "--bootstrap-admin-token-file", str(self.token_file),
             *(() if self.watch_rules else ("--no-watch-rules",)), *self.extra_args],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=self._env(),
        )
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not start within {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{self.port_file.read_text().strip()}"
        self.token = self.token_file.read_text().strip() if self.token_file.exists() else ""
        _TOKENS[self.address] = self.token
        self._channel = None
        health = health_pb2_grpc.HealthStub(self.channel())
        serving = health_pb2.HealthCheckResponse.SERVING
        while health.Check(health_pb2.HealthCheckRequest(), timeout=10).status != serving:
            time.sleep(0.05)
        return self

    @staticmethod
    def _env() -> dict[str, str]:
        # the repo root on the path, so `-m bench.echo_server` resolves from any working directory
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def channel(self) -> grpc.Channel:
        """A channel whose calls carry the bootstrap administrator's token."""
        if self._channel is None:
            raw = grpc.insecure_channel(self.address, options=[("grpc.max_metadata_size", 1 << 20)])
            self._channel = grpc.intercept_channel(raw, BearerToken(self.token)) if self.token else raw
        return self._channel

    def own_channel(self) -> grpc.Channel:
        """A channel like `channel()` on a TCP connection of its own: gRPC otherwise shares one connection
        between channels to the same address (close it when done)."""
        raw = grpc.insecure_channel(self.address, options=[("grpc.use_local_subchannel_pool", 1)])
        return grpc.intercept_channel(raw, BearerToken(self.token))

    def anonymous_channel(self) -> grpc.Channel:
        """A channel without credentials (close it when done)."""
        return grpc.insecure_channel(self.address)

    def client(self, token: str | None = None, **options: Any) -> Client:
        """An SDK client, authenticated as the bootstrap administrator unless another token is given."""
        return Client(self.address, token=(token if token is not None else self.token) or None, **options)

    def stubs(self) -> SimpleNamespace:
        return stubs_on(self.channel())

    def child_pids(self) -> list[int]:
        """PIDs of the server's child processes (engine workers and multiprocessing helpers)."""
        assert self.proc is not None
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self, timeout: float = 30.0) -> int | None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the server: no shutdown code runs. Its engine workers are killed too."""
        assert self.proc is not None
        children = self.child_pids()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def stubs_on(ch: grpc.Channel) -> SimpleNamespace:
    """A stub of each service the tests call, on channel `ch`."""
    return SimpleNamespace(
        units=units_pb2_grpc.UnitServiceStub(ch),
        assignments=assignments_pb2_grpc.AssignmentServiceStub(ch),
        outcomes=outcomes_pb2_grpc.OutcomeServiceStub(ch),
        measurements=measurements_pb2_grpc.MeasurementServiceStub(ch),
        periods=periods_pb2_grpc.PeriodServiceStub(ch),
        evaluations=evaluations_pb2_grpc.EvaluationServiceStub(ch),
        rulesets=rulesets_pb2_grpc.RulesetServiceStub(ch),
        identities=identities_pb2_grpc.IdentityServiceStub(ch),
    )


def hanoi_units() -> list[units_pb2.Unit]:
    with UNITS_CSV.open(encoding="utf-8") as f:
        return [units_pb2.Unit(code=row["code"], display_name_vi=row["name_vi"], display_name_en=row["name_en"],
                               kind=KINDS[row["kind"]], block=row["block"], active=True)
                for row in csv.DictReader(f)]


def timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts
