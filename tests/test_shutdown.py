"""SIGTERM through the real server: health turns NOT_SERVING and new calls are refused with UNAVAILABLE at
once, a call in flight finishes within the grace (`--shutdown-grace`) and the process exits cleanly; a call
still running when the grace passes (or when a second signal cuts it short) is cancelled and logged as
cancelled by the shutdown, never blamed on its client.

The long call is an EvaluatePeriod whose single engine worker sleeps per unit (`--engine-fault-delay`);
the tests wait for the server's "evaluating" log line, so the signal always finds the call running.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from civicscore_api.v1 import units_pb2
from civicscore_client import Client, Unavailable
from tests.scenario import PERIOD
from tests.serverproc import ServerProcess, hanoi_units
from tests.waiting import eventually

pytestmark = pytest.mark.slow

UNITS = 8
FAULT_DELAY_S = "1.0"  # per unit, one worker: the evaluation takes at least UNITS seconds
EVALUATING = f"evaluating {PERIOD}:"
SHUTTING_DOWN = "shutting down: new calls are refused"
BY_SHUTDOWN = "cancelled by the server's shutdown"
BLAMES_CLIENT = "the client cancelled the call"


def slow_server(workdir: Path, grace: str) -> ServerProcess:
    server = ServerProcess(workdir, extra_args=("--engine-fault-delay", FAULT_DELAY_S, "--shutdown-grace", grace))
    server.start()
    server.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()[:UNITS]), timeout=30)
    return server


def sigterm(server: ServerProcess) -> None:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)


def exit_code(server: ServerProcess) -> int:
    assert server.proc is not None
    return server.proc.wait(timeout=120)


def stored_evaluations(server: ServerProcess) -> int:
    with sqlite3.connect(server.database_url.removeprefix("sqlite:///")) as db:
        return int(db.execute("SELECT count(*) FROM evaluations").fetchone()[0])


def test_a_call_in_flight_at_sigterm_finishes_within_the_grace(tmp_path: Path) -> None:
    server = slow_server(tmp_path, grace="300")
    health = grpc.insecure_channel(server.address)
    try:
        statuses = health_pb2_grpc.HealthStub(health).Watch(health_pb2.HealthCheckRequest(service=""))
        assert next(statuses).status == health_pb2.HealthCheckResponse.SERVING
        with server.client(timeout=300, max_attempts=1) as admin, ThreadPoolExecutor(1) as pool:
            evaluating = pool.submit(admin.evaluate_period, PERIOD)
            assert eventually(lambda: EVALUATING in server.log()), server.log()[-3000:]
            sigterm(server)
            assert next(statuses).status == health_pb2.HealthCheckResponse.NOT_SERVING
            statuses.cancel()  # a health watch is a call in flight too: it would hold the shutdown
            assert eventually(lambda: SHUTTING_DOWN in server.log()), server.log()[-3000:]
            with pytest.raises(Unavailable):  # a new call, on the connection of the one in flight
                admin.whoami()
            with Client(server.address, token=server.token, max_attempts=1) as other, pytest.raises(Unavailable):
                other.whoami()  # and on a new connection
            reply = evaluating.result(timeout=300)
        assert (reply.units_evaluated, reply.new_revisions) == (UNITS, UNITS)
        assert exit_code(server) == 0
    finally:
        health.close()
        server.stop()
    log = server.log()
    assert "civicscore stopped" in log
    assert BY_SHUTDOWN not in log and BLAMES_CLIENT not in log
    assert stored_evaluations(server) == UNITS


@pytest.mark.parametrize(("grace", "signals"), [("1", 1), ("600", 2)], ids=["grace-passed", "second-signal"])
def test_a_call_still_running_when_the_grace_ends_is_cancelled_by_the_shutdown(tmp_path: Path, grace: str,
                                                                                  signals: int) -> None:
    server = slow_server(tmp_path, grace=grace)
    try:
        with server.client(timeout=300, max_attempts=1) as admin, ThreadPoolExecutor(1) as pool:
            evaluating = pool.submit(admin.evaluate_period, PERIOD)
            assert eventually(lambda: EVALUATING in server.log()), server.log()[-3000:]
            sigterm(server)
            if signals == 2:
                assert eventually(lambda: SHUTTING_DOWN in server.log()), server.log()[-3000:]
                sigterm(server)
            with pytest.raises(Unavailable):  # the client may retry elsewhere: nothing was saved
                evaluating.result(timeout=300)
        assert exit_code(server) == 0
    finally:
        server.stop()
    log = server.log()
    assert BY_SHUTDOWN in log, log[-3000:]
    assert BLAMES_CLIENT not in log, log[-3000:]
    assert "with calls still running; cancelling them" in log
    assert ("a second signal cut the grace short" in log) == (signals == 2)
    assert stored_evaluations(server) == 0


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--shutdown-grace", "-1", "--shutdown-grace must be at least 0, not -1.0"),
    ("--watch-heartbeat", "0", "--watch-heartbeat must be greater than 0, not 0.0"),
])
def test_a_grace_or_heartbeat_out_of_range_is_refused_before_starting(flag: str, value: str, says: str) -> None:
    refused = subprocess.run([sys.executable, "-m", "civicscore", flag, value], capture_output=True, text=True,
                             env=ServerProcess._env(), timeout=120)
    assert refused.returncode == 2 and says in refused.stderr, refused.stderr
