"""Prometheus metrics (`--metrics-listen`): a real server is called, then its endpoint is scraped and
the series are checked by name, labels and count. The hooks that the engine pool and the rulesets
call are checked in-process against a real endpoint too.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from civicscore import metrics
from civicscore_api.v1 import (
    evaluations_pb2,
    identities_pb2,
    identities_pb2_grpc,
    outcomes_pb2,
    units_pb2,
)
from tests.scenario import PERIOD, completed, load_quarter
from tests.serverproc import ServerProcess, hanoi_units
from tests.services import drop_keys, free_port, redis_prefix, redis_url
from tests.waiting import eventually

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
WHOAMI = "/civicscore.v1.IdentityService/WhoAmI"


def scrape(address: str) -> Samples:
    """Every sample of the endpoint at `address`: (name, labels) -> value."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def metrics_address(server: ServerProcess) -> str:
    """The address the server's log says its metrics are served on (it was asked for port 0)."""
    pattern = re.compile(r"metrics served on http://(\S+)/metrics")
    assert eventually(lambda: pattern.search(server.log()) is not None, timeout_s=30), server.log()[-2000:]
    found = pattern.search(server.log())
    assert found is not None
    return found.group(1)


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with metrics on, a token every 100 s per identity and a burst of 60."""
    server = ServerProcess(tmp_path, extra_args=("--metrics-listen", "127.0.0.1:0", "--rate-limit", "0.01",
                                                 "--rate-burst", "60", "--rate-limit-hold", "0")).start()
    try:
        yield server
    finally:
        server.stop()


def test_calls_evaluations_ingest_and_refusals_are_counted(metered: ServerProcess) -> None:
    server = metered
    stubs = server.stubs()
    stubs.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)  # call 1
    load_quarter(server)  # calls 2-4: 22 outcomes accepted
    again = stubs.outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(  # call 5: one duplicate
        outcomes=[completed("SNV-0", "2026-08-05")]), timeout=30)
    assert (again.accepted, again.duplicates) == (0, 1)
    evaluated = stubs.evaluations.EvaluatePeriod(  # call 6
        evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{PERIOD}"), timeout=300)
    whoami = identities_pb2_grpc.IdentityServiceStub(server.channel()).WhoAmI
    anonymous = server.anonymous_channel()
    try:
        with pytest.raises(grpc.RpcError) as refused:
            identities_pb2_grpc.IdentityServiceStub(anonymous).WhoAmI(identities_pb2.WhoAmIRequest(), timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        anonymous.close()
    admitted = 0
    while True:  # the rest of the burst of 60, then one refusal
        try:
            whoami(identities_pb2.WhoAmIRequest(), timeout=30)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            break
        admitted += 1
    assert admitted == 60 - 6

    samples = scrape(metrics_address(server))
    calls = "civicscore_rpc_calls_total"
    assert value(samples, calls, method=WHOAMI, code="OK") == admitted
    assert value(samples, calls, method=WHOAMI, code="RESOURCE_EXHAUSTED") == 1
    assert value(samples, calls, method=WHOAMI, code="UNAUTHENTICATED") == 1
    assert value(samples, calls, method="/civicscore.v1.EvaluationService/EvaluatePeriod", code="OK") == 1
    assert value(samples, calls, method="/civicscore.v1.OutcomeService/SubmitOutcomes", code="OK") == 2
    assert (value(samples, calls, method="/grpc.health.v1.Health/Check", code="OK") or 0) >= 1  # open methods too
    assert value(samples, "civicscore_rpc_duration_seconds_count", method=WHOAMI) == admitted + 2
    assert value(samples, "civicscore_rpc_duration_seconds_bucket", method=WHOAMI, le="+Inf") == admitted + 2
    assert value(samples, "civicscore_limit_refusals_total", reason="RATE_LIMITED") == 1
    assert value(samples, "civicscore_limit_refusals_total", reason="TOO_MANY_IN_FLIGHT") == 0
    assert value(samples, "civicscore_evaluation_units_total") == evaluated.units_evaluated > 0
    assert value(samples, "civicscore_evaluation_new_revisions_total") == evaluated.new_revisions > 0
    assert value(samples, "civicscore_ingest_outcomes_total", result="accepted") == 22
    assert value(samples, "civicscore_ingest_outcomes_total", result="duplicate") == 1
    # Without --redis the limits are local by choice: not shared, and not a fallback.
    assert value(samples, "civicscore_limits_shared") == 0
    assert value(samples, "civicscore_limits_redis_fallback") == 0
    assert value(samples, "civicscore_engine_workers_alive") is not None


def test_the_redis_fallback_shows_in_the_metrics(tmp_path: Path) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    server = ServerProcess(tmp_path, extra_args=("--metrics-listen", "127.0.0.1:0", "--redis", closed)).start()
    try:
        samples = scrape(metrics_address(server))
        assert value(samples, "civicscore_limits_redis_fallback") == 1
        assert value(samples, "civicscore_limits_shared") == 0
        assert (value(samples, "civicscore_limits_redis_errors_total") or 0) >= 1
    finally:
        server.stop()


def test_limits_shared_through_redis_show_in_the_metrics(tmp_path: Path) -> None:
    url, prefix = redis_url(), redis_prefix()
    server = ServerProcess(tmp_path, extra_args=("--metrics-listen", "127.0.0.1:0", "--redis", url,
                                                 "--redis-prefix", prefix, "--redis-timeout", "2")).start()
    try:
        samples = scrape(metrics_address(server))
        assert value(samples, "civicscore_limits_shared") == 1
        assert value(samples, "civicscore_limits_redis_fallback") == 0
    finally:
        server.stop()
        drop_keys(url, prefix)


def test_the_engine_and_ruleset_hooks_are_no_ops_while_off_and_series_while_on() -> None:
    metrics.engine_workers(alive=3)  # off: nothing happens, nothing fails
    metrics.ruleset_applied(1, "a" * 64)
    served = metrics.serve(f"127.0.0.1:{free_port()}")
    try:
        metrics.engine_workers(alive=2)
        metrics.engine_worker_restarted("SIGKILL")
        metrics.engine_worker_restarted("SIGKILL")
        metrics.ruleset_applied(3, "abc")
        metrics.ruleset_applied(4, "def")
        samples = scrape(served.address)
        assert value(samples, "civicscore_engine_workers_alive") == 2
        assert value(samples, "civicscore_engine_worker_restarts_total", reason="SIGKILL") == 2
        assert value(samples, "civicscore_ruleset_applied_sequence") == 4
        assert value(samples, "civicscore_ruleset_applied_info", digest="def") == 1
        assert value(samples, "civicscore_ruleset_applied_info", digest="abc") is None  # only the one applied
    finally:
        served.close()
    metrics.engine_worker_restarted("crashed")  # off again


def test_a_metrics_address_that_is_taken_stops_the_server_saying_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(tmp_path, extra_args=("--metrics-listen", f"127.0.0.1:{port}"))
        with pytest.raises(RuntimeError, match="exited with 2"):
            server.start()
    assert f"cannot serve metrics on 127.0.0.1:{port}" in server.log()
