"""GetEvaluation's reply from the body stored with each revision (api/evaluation_wire.py), through the real
server on both backends: the same message as the long way (the canonical result parsed and encoded again,
which ListEvaluations still takes), for every unit, for a year summed up from its quarters, and the long way
for revisions stored without a body (written before migration 0015), with a body in a format this server does
not know, or whose result was rewritten in place after the body was made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from civicscore_api.v1 import evaluations_pb2
from tests.postgres_support import BACKENDS, database_url
from tests.scenario import PERIOD, load_quarter
from tests.serverproc import ServerProcess, hanoi_units
from tests.test_rollups import QUARTERS, YEAR, load_year

# Every unit read one by one: far more calls a second than the default per-identity limit allows.
NO_RATE_LIMIT = ("--rate-limit", "100000", "--rate-burst", "100000")


@pytest.fixture(scope="module", params=BACKENDS)
def evaluated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose quarter (the scenario) is evaluated."""
    workdir = tmp_path_factory.mktemp(f"replies-{request.param}")
    with database_url(request.param, workdir) as url:
        server = ServerProcess(workdir, database_url=url, extra_args=NO_RATE_LIMIT).start()
        try:
            with server.client() as admin:
                admin.upsert_units(hanoi_units())
            load_quarter(server)
            server.stubs().evaluations.EvaluatePeriod(
                evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{PERIOD}"), timeout=120)
            yield server
        finally:
            server.stop()


def _listed(server: ServerProcess, period: str) -> dict[str, evaluations_pb2.Evaluation]:
    """Every unit's latest evaluation through ListEvaluations (the long way: the result parsed and encoded)."""
    with server.client() as admin:
        return {e.unit.removeprefix("units/"): e for e in admin.list_evaluations(period)}


def _got(server: ServerProcess, period: str, code: str, revision: int = 0) -> evaluations_pb2.Evaluation:
    reply = server.stubs().evaluations.GetEvaluation(evaluations_pb2.GetEvaluationRequest(
        name=f"periods/{period}/evaluations/{code}", revision=revision), timeout=10)
    return reply.evaluation


def _sql(server: ServerProcess, statement: str) -> Any:
    """Run one statement on the server's database; its first value (SELECT) or its row count."""
    engine = create_engine(server.database_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement))
            return result.scalar() if result.returns_rows else result.rowcount
    finally:
        engine.dispose()


def _forget_bodies(server: ServerProcess, where: str) -> int:
    """Mark stored bodies as none (`reply_format` 0), as rows written before migration 0015 are."""
    return int(_sql(server, f"UPDATE evaluations SET reply_format = 0, reply_pb = NULL WHERE {where}"))


def test_every_stored_body_gives_the_message_the_result_gives(evaluated: ServerProcess) -> None:
    listed = _listed(evaluated, PERIOD)
    assert len(listed) == 141
    # The engine workers stored each revision's body (the reads below are served from it).
    assert _sql(evaluated, "SELECT count(*) FROM evaluations WHERE reply_format = 1 AND reply_pb IS NOT NULL") == 141
    for code, expected in listed.items():
        got = _got(evaluated, PERIOD, code)
        assert got == expected, code
    # Not vacuous: the scenario's units differ (scores, flags, fired rules in Vietnamese and English).
    assert {e.grade for e in listed.values()} >= {"excellent", "good", "not_assessable"}
    stp = _got(evaluated, PERIOD, "STP")
    assert stp.fired_rules and all(r.reason_vi and r.reason_en for r in stp.fired_rules)
    assert stp.unit_display_name_vi == "Sở Tư pháp" and stp.name == f"periods/{PERIOD}/evaluations/STP"
    assert stp.revision == 1 and stp.create_time.seconds > 0 and stp.evaluated_by


def test_a_revision_stored_without_a_body_is_read_the_long_way(evaluated: ServerProcess) -> None:
    before = {code: _got(evaluated, PERIOD, code) for code in ("SNV", "STP", "SCT")}
    assert _forget_bodies(evaluated, "unit_code IN ('SNV', 'STP', 'SCT')") == 3
    for code, expected in before.items():
        assert _got(evaluated, PERIOD, code) == expected, code
        assert _got(evaluated, PERIOD, code, revision=1) == expected, code


def test_a_body_in_a_format_the_server_does_not_know_is_not_served(evaluated: ServerProcess) -> None:
    expected = _got(evaluated, PERIOD, "SXD")
    assert expected.grade != _got(evaluated, PERIOD, "SNV").grade
    # Another unit's body, in a format this server does not know: served, it would show SNV's grade.
    assert _sql(evaluated, "UPDATE evaluations SET reply_format = 99, reply_pb = (SELECT e.reply_pb FROM evaluations "
                           "AS e WHERE e.unit_code = 'SNV' AND e.revision = 1) WHERE unit_code = 'SXD'") == 1
    assert _got(evaluated, PERIOD, "SXD") == expected


def test_a_result_rewritten_in_place_is_not_served_a_stale_body(evaluated: ServerProcess) -> None:
    """A data repair that rewrites a stored result (and its digest) in place: the body made from the old
    result no longer answers; the reply is the new result's."""
    snv = _got(evaluated, PERIOD, "SNV")
    assert _got(evaluated, PERIOD, "STC").grade != snv.grade
    snv_row = "FROM evaluations AS e WHERE e.unit_code = 'SNV' AND e.revision = 1"
    assert _sql(evaluated, f"UPDATE evaluations SET result_json = (SELECT e.result_json {snv_row}), "
                           f"result_digest = (SELECT e.result_digest {snv_row}) WHERE unit_code = 'STC'") == 1
    stc = _got(evaluated, PERIOD, "STC")
    assert (stc.grade, stc.score, list(stc.flags)) == (snv.grade, snv.score, list(snv.flags))
    assert stc.name == f"periods/{PERIOD}/evaluations/STC"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_year_summed_up_from_its_quarters_reads_the_same_both_ways(backend: str, tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as url:
        server = ServerProcess(tmp_path, database_url=url, extra_args=NO_RATE_LIMIT).start()
        try:
            with server.client() as admin:
                admin.upsert_units(hanoi_units())
                load_year(admin)
                for quarter in QUARTERS:
                    admin.evaluate_period(quarter)
                admin.evaluate_period(YEAR)
            listed: dict[str, Any] = _listed(server, YEAR)
            assert listed["STP"].rollup.quarters and listed["STP"].rollup.results
            for code in ("SNV", "STP", "STC", "SCT", "SXD"):
                assert _got(server, YEAR, code) == listed[code], code
        finally:
            server.stop()


def test_a_service_generated_without_registration_by_name_is_refused_at_start() -> None:
    """Generated code from an older grpcio-tools registers only generic handlers: GetEvaluation's stored bytes
    would then be serialized again, so the server refuses to start and says what to do."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from civicscore.app import RawReplies
    from civicscore_api.v1 import evaluations_pb2_grpc

    def old_generated(servicer: object, server: grpc.Server) -> None:
        handlers = {"GetEvaluation": grpc.unary_unary_rpc_method_handler(lambda request, context: b"")}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "civicscore.v1.EvaluationService", handlers),))

    with ThreadPoolExecutor(1) as pool:
        server = grpc.server(pool)
        with pytest.raises(RuntimeError, match=r"not registered by name: regenerate the gRPC code \(make gen\)"):
            RawReplies.register(server, old_generated, object(), {"GetEvaluation"})
        # The generated code of this checkout registers by name.
        RawReplies.register(server, evaluations_pb2_grpc.add_EvaluationServiceServicer_to_server,
                            evaluations_pb2_grpc.EvaluationServiceServicer(), {"GetEvaluation"})
        server.stop(None)
