"""WatchRecommendations across servers, through the real processes: an idle watch gets heartbeats with
its cursor; a watch whose server is killed (SIGKILL) or shut down (SIGTERM) is resumed by the SDK and by
the CLI from the last cursor received, on another server sharing the database, and sees every change
exactly once, in order; a client error (a cursor past the newest change) is never resumed.

Two servers share one database (one PostgreSQL schema; one SQLite file, which two processes may share:
SQLite's locks are the file's) behind a stand-in for the load balancer: a TCP forwarder that sends each
new connection to the first server that accepts it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from civicscore_api.v1 import reviews_pb2, reviews_pb2_grpc, units_pb2
from civicscore_client import CivicscoreError, Client, InvalidArgument, OutOfRange
from civicscore_client._errors import error_from_rpc
from tests.postgres_support import BACKENDS, database_url
from tests.scenario import PERIOD, every_cursor, load_quarter
from tests.serverproc import ServerProcess, hanoi_units
from tests.waiting import eventually

pytestmark = pytest.mark.slow

STP = f"periods/{PERIOD}/recommendations/STP~criticism"
ENDINGS = ["killed", "shut-down"]


class FirstLiveServer:
    """Listens on 127.0.0.1 and forwards each connection to the first of `upstreams` that accepts it,
    closing the client's side when the server's side closes (as a load balancer drops the connections
    of a replica that died)."""

    def __init__(self, upstreams: list[str]) -> None:
        self._upstreams = [(host, int(port)) for host, port in (u.rsplit(":", 1) for u in upstreams)]
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="first-live-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = None
            for upstream in self._upstreams:
                with contextlib.suppress(OSError):
                    server = socket.create_connection(upstream, timeout=10)
                    break
            if server is None:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one database (the first made the administrator), with the 2026-Q3 scenario evaluated."""
    with database_url(str(request.param), tmp_path) as url:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        first = ServerProcess(tmp_path / "a", database_url=url).start()
        second = ServerProcess(tmp_path / "b", database_url=url)
        try:
            second.start()
            second.token = first.token  # one database: the first server's administrator
            first.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
            load_quarter(first)
            with first.client() as admin:
                admin.evaluate_period(PERIOD)
            yield first, second
        finally:
            second.stop()
            first.stop()


def end_server(server: ServerProcess, how: str) -> None:
    """SIGKILL the server, or SIGTERM it: its watches end at once (UNAVAILABLE), not after its grace."""
    if how == "killed":
        server.kill()
    else:
        assert server.stop() == 0, "the shut-down server exited cleanly, its watch not holding it"


def review(server: ServerProcess, count: int, start: int) -> None:
    """`count` committee decisions (each one change), made on `server`."""
    with server.client() as committee:
        for n in range(start, start + count):
            committee.review_recommendation(STP, "defer", f"Hoãn lần {n}")


def test_an_idle_watch_gets_heartbeats_with_its_cursor(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, extra_args=("--watch-heartbeat", "0.2")).start()
    try:
        with server.client() as reader:
            watch = reader.watch_recommendations()
            messages = iter(watch)
            caught_up = next(messages)
            assert caught_up.caught_up and not caught_up.HasField("change")
            heartbeats = [next(messages) for _ in range(3)]
            watch.cancel()
        assert all(h.heartbeat and not h.caught_up and not h.HasField("change") for h in heartbeats)
        assert {h.cursor for h in heartbeats} == {caught_up.cursor}
    finally:
        server.stop()


@pytest.mark.parametrize("how", ENDINGS)
def test_the_sdk_resumes_a_watch_on_another_server_and_sees_every_change_once(
        pair: tuple[ServerProcess, ServerProcess], how: str) -> None:
    first, second = pair
    balancer = FirstLiveServer([first.address, second.address])
    received: list[str] = []
    broken: list[CivicscoreError] = []
    try:
        with Client(balancer.address, token=first.token, initial_backoff=0.05, max_backoff=0.5) as reader:
            watch = reader.watch_recommendations(on_resume=lambda error, pause: broken.append(error))

            def read() -> None:
                for message in watch:
                    if message.HasField("change"):
                        received.append(message.cursor)

            reading = threading.Thread(target=read)
            reading.start()
            review(second, 5, start=1)
            before = every_cursor(second)
            assert eventually(lambda: len(received) >= len(before))  # through the first server
            end_server(first, how)
            review(second, 5, start=6)  # while the watch is broken or coming back
            every = every_cursor(second)
            assert eventually(lambda: len(received) >= len(every)), (received, every)
            watch.cancel()
            reading.join(timeout=60)
        assert received == every  # every change, once, in order, across the resume
        assert watch.resumes >= 1 and broken and all(e.code.name == "UNAVAILABLE" for e in broken)
    finally:
        balancer.close()


@pytest.mark.parametrize("how", ENDINGS)
def test_the_cli_resumes_a_watch_on_another_server_and_prints_every_change_once(
        pair: tuple[ServerProcess, ServerProcess], how: str, tmp_path: Path) -> None:
    first, second = pair
    balancer = FirstLiveServer([first.address, second.address])
    lines: list[str] = []
    cli = subprocess.Popen(
        [sys.executable, "-m", "civicscore_client.cli", "--server", balancer.address, "--json", "watch", "--from", "0"],
        stdout=subprocess.PIPE, stderr=(tmp_path / "cli.err").open("w"), text=True,
        env={**ServerProcess._env(), "CIVICSCORE_TOKEN": first.token})

    def read() -> None:
        assert cli.stdout is not None
        lines.extend(iter(cli.stdout.readline, ""))

    reading = threading.Thread(target=read)
    reading.start()
    try:
        review(second, 5, start=1)
        before = every_cursor(second)
        assert eventually(lambda: len(lines) >= len(before)), (tmp_path / "cli.err").read_text()
        end_server(first, how)
        review(second, 5, start=6)
        every = every_cursor(second)
        assert eventually(lambda: len(lines) >= len(every)), (tmp_path / "cli.err").read_text()
    finally:
        cli.send_signal(signal.SIGINT)  # Ctrl-C: the CLI's way out of a watch
        cli.wait(timeout=60)
        reading.join(timeout=60)
        balancer.close()
    assert cli.returncode == 0, (tmp_path / "cli.err").read_text()
    assert [json.loads(line)["cursor"] for line in lines] == every
    assert "resuming after cursor" in " ".join((tmp_path / "cli.err").read_text().split())  # wrapped to COLUMNS


def test_a_cursor_past_the_head_is_refused_and_not_resumed(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    broken: list[CivicscoreError] = []
    try:
        with server.client() as reader:
            watch = reader.watch_recommendations("999999", on_resume=lambda error, pause: broken.append(error))
            with pytest.raises(OutOfRange):
                next(iter(watch))
        assert not broken and watch.resumes == 0
    finally:
        server.stop()


def test_a_watch_from_the_newest_change_sends_no_backlog_and_then_every_new_change(
        pair: tuple[ServerProcess, ServerProcess]) -> None:
    first, second = pair
    head = every_cursor(first)[-1]
    with first.client() as reader:
        watch = reader.watch_recommendations(from_newest=True, resume=False)
        messages = iter(watch)
        caught_up = next(messages)
        assert caught_up.caught_up and not caught_up.HasField("change") and caught_up.cursor == head
        review(second, 2, start=1)  # made on the other server: one database, one change log
        new = [next(messages) for _ in range(2)]
        watch.cancel()
    assert [m.cursor for m in new] == every_cursor(first)[-2:]
    assert all(int(m.cursor) > int(head) and m.change.recommendation.name == STP for m in new)
    # Both at once, as only a client of its own can send them (the SDK sends from_newest until it has a cursor):
    request = reviews_pb2.WatchRecommendationsRequest(cursor="1", from_newest=True)
    with pytest.raises(grpc.RpcError) as refused:
        next(iter(reviews_pb2_grpc.ReviewServiceStub(first.channel()).WatchRecommendations(request, timeout=30)))
    error = error_from_rpc(refused.value)
    assert isinstance(error, InvalidArgument) and [v.field for v in error.violations] == ["from_newest"]
    assert "give one or the other" in error.message
