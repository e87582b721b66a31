"""A cluster for tests: a fresh PostgreSQL database, N real replicas and Debian's nginx in front.

    with running_cluster(tmp_path, replicas=3, extra_args=("--redis", url)) as cluster:
        with cluster.client() as client:           # the SDK through nginx, as the bootstrap administrator
            client.submit_outcomes(...)
        cluster.kill(1)                             # SIGKILL replica 1 (and its engine workers)
        with cluster.writes_held("outcomes"): ...   # outcome writes stay in flight until the block ends
        cluster.restart(1)                          # the same port, work dir and database
        cluster.drain(1); cluster.undrain()         # out of nginx's upstream and back (a reload)
        cluster.answers()                           # which replica answered each call, from nginx's log

Isolation: each cluster gets a DATABASE of its own (`CREATE DATABASE civicscore_cluster_<random>`
on the server of CIVICSCORE_TEST_POSTGRES_URL, dropped afterwards), not a schema, because advisory
locks and LISTEN/NOTIFY channels are database-wide; its own folder (each replica's work dir, log and
token file, nginx's configuration, pid, logs and temporary files); and its own ports, chosen below
the ephemeral range so that a restarted replica gets its port back.

Bootstrap: replica 0 starts alone on the new database, creates the administrator and writes the
token; the file is copied into the other replicas' work dirs before they start (their own bootstrap
then finds the administrator and writes nothing), so every replica's `channel()` and the cluster's
clients carry the same token. Nothing here depends on replicas starting at once being safe.

Without nginx or PostgreSQL a test using this is skipped loudly (failed under
CIVICSCORE_REQUIRE_SERVICES=1, as in CI): see tests/services.py.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from civicscore.cluster.database import create_fresh_database, drop_database
from civicscore.cluster.nginx import AccessEntry, Nginx
from civicscore.cluster.processes import free_port
from civicscore_client import Client
from tests.serverproc import RULES, BearerToken, ServerProcess, stubs_on
from tests.services import require_nginx, require_postgres
from tests.waiting import eventually

HOST = "127.0.0.1"
# Small pools: three replicas of several test clusters, and other tests, share one test PostgreSQL.
TEST_POOL_SIZE = 4
# Replicas starting together on two cores shared with other tests: generous, never a timing assertion.
START_TIMEOUT_S = 180.0


class Cluster:
    """Replicas on one database behind nginx; replica i is `replicas[i]`, listening on `ports[i]`."""

    def __init__(self, folder: Path, database_url: str, ports: Sequence[int], nginx: Nginx,
                 make_replica: Callable[[int], ServerProcess]) -> None:
        self.folder = folder
        self.database_url = database_url
        self.ports = list(ports)
        self.nginx = nginx
        self.replicas = [make_replica(index) for index in range(len(ports))]
        self.token = ""
        self._channel: grpc.Channel | None = None

    # -- where things are --------------------------------------------------------------------
    @property
    def address(self) -> str:
        """nginx's address: where clients of the cluster connect."""
        return self.nginx.listen

    def replica_address(self, index: int) -> str:
        return f"{HOST}:{self.ports[index]}"

    def index_of(self, address: str) -> int:
        """The replica listening on `address` (as nginx logs it)."""
        return self.ports.index(int(address.rsplit(":", 1)[1]))

    # -- starting and stopping replicas ------------------------------------------------------
    def start_replicas(self) -> None:
        """Replica 0 first (it bootstraps the administrator), then the others at once."""
        first = self.replicas[0].start(START_TIMEOUT_S)
        if not first.token:
            raise RuntimeError(f"replica 0 wrote no bootstrap token:\n{first.log()}")
        self.token = first.token
        for replica in self.replicas[1:]:
            shutil.copy2(first.token_file, replica.token_file)
        if len(self.replicas) > 1:
            with ThreadPoolExecutor(len(self.replicas) - 1) as starting:
                for started in [starting.submit(replica.start, START_TIMEOUT_S) for replica in self.replicas[1:]]:
                    started.result()

    def kill(self, index: int) -> None:
        """SIGKILL replica `index` and its engine workers: no shutdown code runs."""
        self.replicas[index].kill()

    def terminate(self, index: int, timeout_s: float = 120.0) -> int | None:
        """SIGTERM replica `index` and wait until it exits; its exit code."""
        replica = self.replicas[index]
        assert replica.proc is not None
        if replica.proc.poll() is None:
            replica.proc.send_signal(signal.SIGTERM)
        code = replica.proc.wait(timeout_s)
        replica.stop()  # closes the channel it kept
        return code

    def restart(self, index: int) -> ServerProcess:
        """Start replica `index` again: its port, work dir (token file included) and database as before."""
        replica = self.replicas[index]
        if replica.proc is not None and replica.proc.poll() is None:
            raise RuntimeError(f"replica {index} is still running (pid {replica.proc.pid})")
        return replica.start(START_TIMEOUT_S)

    def running(self, index: int) -> bool:
        proc = self.replicas[index].proc
        return proc is not None and proc.poll() is None

    # -- nginx --------------------------------------------------------------------------------
    def stop_nginx(self, *, graceful: bool = True) -> int | None:
        return self.nginx.stop(graceful=graceful)

    def drain(self, index: int) -> None:
        """Take replica `index` out of nginx's upstream (a reload, waited for): calls it holds finish, new
        calls go to the others. How an operator stops a replica without failing a call (README)."""
        self.nginx.reload([self.replica_address(i) for i in range(len(self.ports)) if i != index])

    def undrain(self) -> None:
        """Every replica in nginx's upstream again."""
        self.nginx.reload([self.replica_address(i) for i in range(len(self.ports))])

    def start_nginx(self) -> None:
        """Start nginx and wait until a health check through it reaches a replica."""
        self.nginx.start()
        self.close()  # a channel from before may be stuck in backoff after nginx refused it
        health = health_pb2_grpc.HealthStub(self.channel())
        serving = health_pb2.HealthCheckResponse.SERVING

        def through_nginx() -> bool:
            try:
                return health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == serving
            except grpc.RpcError:
                return False

        if not eventually(through_nginx, timeout_s=60):
            raise RuntimeError(f"no replica answers through nginx at {self.address}:\n{self.nginx.error_log_tail()}")

    # -- talking to the cluster through nginx ------------------------------------------------
    def channel(self) -> grpc.Channel:
        """A channel to nginx whose calls carry the bootstrap administrator's token (kept; closed at the end)."""
        if self._channel is None:
            raw = grpc.insecure_channel(self.address, options=[("grpc.max_metadata_size", 1 << 20)])
            self._channel = grpc.intercept_channel(raw, BearerToken(self.token))
        return self._channel

    def own_channel(self) -> grpc.Channel:
        """Like `channel()` on a TCP connection of its own (close it when done)."""
        raw = grpc.insecure_channel(self.address, options=[("grpc.use_local_subchannel_pool", 1),
                                                            ("grpc.max_metadata_size", 1 << 20)])
        return grpc.intercept_channel(raw, BearerToken(self.token))

    def client(self, token: str | None = None, **options: Any) -> Client:
        """An SDK client through nginx, as the bootstrap administrator unless another token is given."""
        return Client(self.address, token=(token if token is not None else self.token) or None, **options)

    def stubs(self) -> SimpleNamespace:
        return stubs_on(self.channel())

    # -- holding calls in flight -------------------------------------------------------------
    @contextlib.contextmanager
    def writes_held(self, table: str) -> Iterator[int]:
        """While the block runs, writers of `table` wait in the database (readers do not): a call that
        writes it stays in flight on its replica, so a test can kill or stop that replica mid-call. Gives
        the holding session's process id (the sessions it blocks have it among their `pg_blocking_pids`)."""
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                transaction = connection.begin()
                connection.execute(text(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE'))
                try:
                    yield int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
                finally:
                    transaction.rollback()
        finally:
            engine.dispose()

    def waiting_in_database(self) -> int:
        """How many of the cluster's database sessions wait for a lock now (e.g. held by `writes_held`)."""
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                return int(connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")).scalar_one())
        finally:
            engine.dispose()

    # -- what nginx saw --------------------------------------------------------------------------
    def calls(self) -> list[AccessEntry]:
        """Every call nginx has finished so far, oldest first, with the replicas it tried."""
        return self.nginx.access_entries()

    def logged_calls(self, count: int, *, after: int = 0) -> list[AccessEntry]:
        """The calls logged after the first `after`, once there are `count` of them (nginx writes a call's
        line just after its last byte, so a client can see its reply a moment before the line is there)."""
        if not eventually(lambda: len(self.calls()) >= after + count, timeout_s=30):
            raise AssertionError(f"nginx logged {len(self.calls()) - after} calls, not {count}")
        return self.calls()[after:]

    def answers(self, entries: Sequence[AccessEntry] | None = None) -> Counter[int]:
        """How many of `entries` (default: all calls so far) each replica answered."""
        return Counter(self.index_of(entry.answered_by)
                       for entry in (self.calls() if entries is None else entries) if entry.answered_by)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def _stop_all(cluster: Cluster) -> None:
    """nginx first (no new calls), then every replica at once (each may take its shutdown grace)."""
    cluster.close()
    with contextlib.suppress(Exception):
        cluster.nginx.stop(graceful=False)
    threads = [threading.Thread(target=replica.stop) for replica in cluster.replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@contextlib.contextmanager
def running_cluster(folder: Path, *, replicas: int = 3, extra_args: Sequence[str] = (),
                    replica_args: Callable[[int], Sequence[str]] | None = None, pool_size: int = TEST_POOL_SIZE,
                    workers: int = 1, rules: Path = RULES, start: bool = True) -> Iterator[Cluster]:
    """A cluster of `replicas` on a fresh database behind nginx, stopped and dropped on exit.

    `extra_args` go to every replica (e.g. `--redis URL`), `replica_args(i)` to replica i alone.
    With `start=False` nothing is started yet: the test calls `start_replicas()` and `start_nginx()`
    itself (or starts replicas its own way, e.g. all at the same moment).
    """
    if replicas < 1:
        raise ValueError("a cluster needs at least one replica")
    nginx_binary = require_nginx()
    base_url = require_postgres()
    database_url = create_fresh_database(base_url)
    try:
        ports = [free_port(HOST) for _ in range(replicas)]
        nginx = Nginx(folder / "nginx", listen=f"{HOST}:{free_port(HOST)}",
                      upstreams=[f"{HOST}:{port}" for port in ports], binary=nginx_binary)

        def make_replica(index: int) -> ServerProcess:
            # ServerProcess listens on port 0 by default; the later --listen wins (argparse keeps the last),
            # so a restarted replica is back on the port nginx's upstream names.
            args = ("--listen", f"{HOST}:{ports[index]}", "--db-pool-size", str(pool_size), *extra_args,
                    *(replica_args(index) if replica_args else ()))
            workdir = folder / f"replica-{index}"
            workdir.mkdir(parents=True, exist_ok=True)
            return ServerProcess(workdir, database_url=database_url, rules=rules, extra_args=args, workers=workers)

        cluster = Cluster(folder, database_url, ports, nginx, make_replica)
        try:
            if start:
                cluster.start_replicas()
                cluster.start_nginx()
            yield cluster
        finally:
            _stop_all(cluster)
    finally:
        drop_database(database_url)
