"""Limits through the real server: deadlines stop the work, oversized messages and too many
concurrent calls get RESOURCE_EXHAUSTED instead of a hang.

A slow engine is provoked with the hidden `--engine-fault-delay` option (workers sleep that long
per unit). Nothing here asserts how long anything takes: the slow engine only makes sure that the
work is still running when the client goes away. The server-wide limit on calls in progress is set
low with `--max-concurrent-rpcs` (and `--max-in-flight` above it, so that the per-identity limit
does not answer first); the per-identity limit is tested at its default.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from civicscore.__main__ import main as server_main
from civicscore_api.v1 import evaluations_pb2, evaluations_pb2_grpc, outcomes_pb2, rulesets_pb2, units_pb2
from civicscore_client import ResourceExhausted
from tests.http2 import SETTINGS_MAX_CONCURRENT_STREAMS, server_settings
from tests.scenario import PERIOD, load_quarter
from tests.serverproc import RULES, ServerProcess, hanoi_units
from tests.waiting import eventually

MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # ServerConfig.max_message_bytes
FAULT_DELAY_S = "0.05"  # 141 units: about 7 s of engine work per evaluation; a chunk of 64 units 3.2 s
EVALUATE = evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{PERIOD}")
STOPPED = f"the evaluation of {PERIOD} stopped"
T = TypeVar("T")


def stored_evaluations(server: ServerProcess) -> list[evaluations_pb2.Evaluation]:
    out: list[evaluations_pb2.Evaluation] = []
    token = ""
    while True:
        page = server.stubs().evaluations.ListEvaluations(evaluations_pb2.ListEvaluationsRequest(
            parent=f"periods/{PERIOD}", page_size=100, page_token=token), timeout=30)
        out.extend(page.evaluations)
        token = page.next_page_token
        if not token:
            return out


def start_slow_server(workdir: Path, *extra_args: str) -> ServerProcess:
    """A server whose single engine worker sleeps per unit, with Hanoi's units and the test quarter."""
    server = ServerProcess(workdir, extra_args=("--engine-fault-delay", FAULT_DELAY_S, *extra_args)).start()
    try:
        server.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        load_quarter(server)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_slow_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def when_admitted(call: Callable[[], T]) -> T:
    """`call()`, retried while the server answers RESOURCE_EXHAUSTED (as a client following RetryInfo
    would): right after a burst of cancelled calls their slots may not all be free yet."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


# ---- deadlines: work stops when the client has gone -------------------------------------------


def test_a_deadline_that_passes_stops_the_evaluation_and_nothing_is_stored(slow_server: ServerProcess) -> None:
    stubs = slow_server.stubs()
    with pytest.raises(grpc.RpcError) as raised:
        stubs.evaluations.EvaluatePeriod(EVALUATE, timeout=1.0)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server notices, drops the chunks not yet in the worker and saves nothing.
    assert eventually(lambda: STOPPED in slow_server.log()), slow_server.log()[-3000:]
    line = next(line for line in slow_server.log().splitlines() if STOPPED in line)
    assert "the client cancelled the call or its deadline passed; nothing was saved" in line
    assert stored_evaluations(slow_server) == []
    # The next call works normally, on the same (healthy) worker.
    reply = stubs.evaluations.EvaluatePeriod(EVALUATE, timeout=300)
    assert (reply.units_evaluated, reply.new_revisions) == (141, 141)
    stored = stored_evaluations(slow_server)
    assert len(stored) == 141 and {e.revision for e in stored} == {1}


def test_a_simulation_whose_deadline_passes_stops_too(slow_server: ServerProcess) -> None:
    files = [rulesets_pb2.RuleFile(path=path.name, content=path.read_text("utf-8"))
             for path in sorted(RULES.glob("*.yaml"))]
    request = rulesets_pb2.SimulateRulesetRequest(period=f"periods/{PERIOD}", files=files)
    with pytest.raises(grpc.RpcError) as raised:
        slow_server.stubs().rulesets.SimulateRuleset(request, timeout=2.0)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    stopped = f"the simulation of {PERIOD} stopped"
    assert eventually(lambda: stopped in slow_server.log()), slow_server.log()[-3000:]
    assert len(slow_server.stubs().units.ListUnits(units_pb2.ListUnitsRequest(page_size=10), timeout=30).units) == 10


# ---- message size -------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _with_unknown_field(message: bytes, size: int) -> bytes:
    """`message` plus a length-delimited field number 999 (unknown to the schema) of `size` bytes."""
    return message + _varint(999 << 3 | 2) + _varint(size) + b"\0" * size


def test_a_request_above_the_maximum_message_size_is_refused_with_resource_exhausted(server: ServerProcess) -> None:
    channel = server.channel()
    submit = channel.unary_unary("/civicscore.v1.OutcomeService/SubmitOutcomes")
    small = outcomes_pb2.SubmitOutcomesRequest(idempotency_key="too-big").SerializeToString()
    with pytest.raises(grpc.RpcError) as raised:
        submit(_with_unknown_field(small, 33 * 1024 * 1024), timeout=120)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # A request just under the limit is read (the limit is 32 MiB, not gRPC's default 4 MiB) ...
    list_units = channel.unary_unary("/civicscore.v1.UnitService/ListUnits",
                                     response_deserializer=units_pb2.ListUnitsResponse.FromString)
    under = _with_unknown_field(units_pb2.ListUnitsRequest(page_size=5).SerializeToString(), MAX_MESSAGE_BYTES - 1024)
    assert list_units(under, timeout=120).units == []
    # ... and the server carries on.
    assert server.stubs().units.ListUnits(units_pb2.ListUnitsRequest(), timeout=30).units == []


# ---- concurrent calls ---------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "admitted", "refusal"), [
    # the server's limit on calls in progress in all (gRPC's maximum_concurrent_rpcs), set low here
    (("--max-concurrent-rpcs", "4", "--max-in-flight", "64"), 4, "Concurrent RPC limit exceeded"),
    # the default limit on one identity's calls in progress (here the administrator's), below the server's
    ((), 8, ""),
], ids=["server-limit", "per-identity-limit"])
def test_more_concurrent_calls_than_allowed_get_resource_exhausted_not_a_hang(
    tmp_path: Path, flags: tuple[str, ...], admitted: int, refusal: str
) -> None:
    """The calls come over four connections: on one, a client may not open more streams than one
    identity may run (see the next test), so only several connections can go over the limits."""
    server = start_slow_server(tmp_path, *flags)
    connections = [server.own_channel() for _ in range(4)]
    try:
        extra = 4
        calls = [evaluations_pb2_grpc.EvaluationServiceStub(connections[n % 4]).EvaluatePeriod.future(
            EVALUATE, timeout=600) for n in range(admitted + extra)]
        try:
            # The calls over the limit are answered at once; the others are still evaluating (slowly).
            assert eventually(lambda: sum(call.done() for call in calls) >= extra, timeout_s=120)
            refused = [call for call in calls if call.done()]
            assert {call.code() for call in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}, [
                (call.code(), call.details()) for call in refused]
            assert all(refusal in (call.details() or "") for call in refused)
        finally:
            for call in calls:
                call.cancel()
        # Every admitted call was cancelled by its client: the server drops their work and stores nothing.
        assert eventually(lambda: STOPPED in server.log()), server.log()[-3000:]
        assert when_admitted(lambda: stored_evaluations(server)) == []
        evaluate = server.stubs().evaluations.EvaluatePeriod
        reply = when_admitted(lambda: evaluate(EVALUATE, timeout=600))
        assert (reply.units_evaluated, reply.new_revisions) == (141, 141)
    finally:
        for connection in connections:
            connection.close()
        server.stop()


def test_a_connection_may_open_as_many_streams_as_one_identity_may_run_calls(tmp_path: Path) -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS is the per-identity in-flight limit: a client asking for more
    calls at once on one connection waits in its own transport (each call within its deadline) instead
    of making the server refuse it as fast as it can ask."""
    for flags, streams in (((), 8), (("--max-in-flight", "3"), 3)):
        server = ServerProcess(tmp_path / str(streams), extra_args=flags)
        (tmp_path / str(streams)).mkdir()
        server.start()
        try:
            assert server_settings(server.address).get(SETTINGS_MAX_CONCURRENT_STREAMS) == streams
        finally:
            server.stop()


# ---- the per-identity rate limit ---------------------------------------------------------------


def test_an_identity_over_its_rate_limit_is_told_to_wait_and_others_are_not(tmp_path: Path) -> None:
    """A refusal is held back up to the time the caller should wait, but never past its deadline: with
    a token every 100 s and holds of up to 30 s, a call with a 5 s deadline still gets its answer, held
    4.5 s (a tenth of the time left is kept as margin), and is told to retry after the rest of the wait."""
    server = ServerProcess(tmp_path, extra_args=("--rate-limit", "0.01", "--rate-burst", "3",
                                                 "--rate-limit-hold", "30")).start()
    try:
        with server.client() as admin:
            admin.create_identity("dvc-portal", "Cổng dịch vụ công", roles=["reader"])
            token = admin.issue_token("dvc-portal", valid_days=1).token
        with server.client(token, max_attempts=1) as portal:
            for _ in range(3):  # the burst
                portal.whoami()
            with pytest.raises(ResourceExhausted) as refused:
                portal.whoami(timeout=5)
            assert refused.value.reason == "RATE_LIMITED"
            assert refused.value.retry_after is not None and 90 < refused.value.retry_after < 100
            assert "dvc-portal is over its rate limit" in refused.value.message
        with server.client() as admin:  # another identity (its third call): its own bucket, admitted
            assert admin.whoami().identity.identity_id != "dvc-portal"
    finally:
        server.stop()
    assert token not in server.log()


@pytest.mark.parametrize(("flags", "message"), [
    (("--rate-limit", "0"), "--rate-limit must be greater than 0, not 0.0"),
    (("--rate-burst", "0"), "--rate-burst must be at least 1, not 0"),
    (("--rate-limit-hold", "-1"), "--rate-limit-hold must be at least 0, not -1.0"),
    (("--max-in-flight", "0"), "--max-in-flight must be at least 1, not 0"),
    (("--max-concurrent-rpcs", "0"), "--max-concurrent-rpcs must be at least 1, not 0"),
])
def test_a_limit_flag_out_of_range_stops_the_server_naming_the_flag(
    flags: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        server_main(["--database", "sqlite:///unused.db", *flags])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
