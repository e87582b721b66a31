"""The server as infrastructure sees it: health, reflection, graceful stop, bad configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.serverproc import ROOT, ServerProcess

CIVICSCORE_SERVICES = {
    "civicscore.v1.UnitService", "civicscore.v1.AssignmentService", "civicscore.v1.OutcomeService",
    "civicscore.v1.MeasurementService", "civicscore.v1.PeriodService", "civicscore.v1.EvaluationService",
    "civicscore.v1.RulesetService",
}


def test_health_answers_serving_for_every_service(server: ServerProcess) -> None:
    health = health_pb2_grpc.HealthStub(server.channel())
    for name in ("", *sorted(CIVICSCORE_SERVICES)):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


def test_reflection_lists_and_describes_the_services(server: ServerProcess) -> None:
    database = ProtoReflectionDescriptorDatabase(server.channel())
    services = set(database.get_services())
    assert services >= CIVICSCORE_SERVICES | {"grpc.health.v1.Health"}
    from google.protobuf.descriptor_pool import DescriptorPool

    pool = DescriptorPool(database)
    method = pool.FindServiceByName("civicscore.v1.OutcomeService").methods_by_name["SubmitOutcomes"]
    assert method.input_type.full_name == "civicscore.v1.SubmitOutcomesRequest"


def test_sigterm_stops_cleanly(server: ServerProcess) -> None:
    assert server.stop() == 0
    assert "civicscore stopped" in server.log()


def test_broken_rules_folder_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in (ROOT / "rules").glob("*.yaml"):
        (rules / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    broken = next(iter(sorted(rules.glob("*.yaml"))))
    broken.write_text(broken.read_text(encoding="utf-8") + "\nthis is: [not valid yaml\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "civicscore", "--listen", "127.0.0.1:0", "--database",
         f"sqlite:///{tmp_path / 'x.db'}", "--rules", str(rules)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert broken.name in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_method_is_unimplemented_and_server_keeps_serving(server: ServerProcess) -> None:
    call = server.channel().unary_unary("/civicscore.v1.UnitService/DeleteEverything")
    with pytest.raises(grpc.RpcError) as err:
        call(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    health = health_pb2_grpc.HealthStub(server.channel())
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING


def test_demo_data_loads_hanoi_units_and_a_synthetic_history(tmp_path: Path) -> None:
    from civicscore_api.v1 import (
        evaluations_pb2,
        extensions_pb2,
        officials_pb2,
        outcomes_pb2,
        periods_pb2,
        units_pb2,
    )

    server = ServerProcess(tmp_path, extra_args=("--demo-data",)).start(timeout=120)
    try:
        stubs = server.stubs()
        units = stubs.units.ListUnits(units_pb2.ListUnitsRequest(page_size=1000), timeout=10).units
        assert len(units) == 141
        assert {"Sở Nội vụ", "Phường Hoàn Kiếm"} <= {u.display_name_vi for u in units}
        periods = stubs.periods.ListPeriods(periods_pb2.ListPeriodsRequest(), timeout=10).periods
        quarters = [p for p in periods if p.kind == periods_pb2.PERIOD_KIND_QUARTER]
        assert len(quarters) == 2 and all(p.units_evaluated == 141 for p in quarters)
        # the half-year(s) and the year those quarters belong to are listed, not evaluated by the demo
        longer = [p for p in periods if p.kind != periods_pb2.PERIOD_KIND_QUARTER]
        assert longer and all(p.units_evaluated == 0 for p in longer)
        latest = quarters[0].period_id
        ranking = stubs.evaluations.ListRankings(evaluations_pb2.ListRankingsRequest(
            parent=f"periods/{latest}", block="departments"), timeout=10).entries
        assert len(ranking) == 15 and ranking[0].rank == 1
        outcome = stubs.outcomes.ListOutcomes(outcomes_pb2.ListOutcomesRequest(page_size=1), timeout=10).outcomes[0]
        assert outcome.reporting_system == "demo-synthetic" and outcome.outcome_id.startswith("DEMO-")
        with server.client() as client:
            extensions = list(client.list_extensions())
        assert 100 <= len(extensions) <= 1000, len(extensions)  # a plausible share of the ~3,700 tasks
        assert {e.status for e in extensions} == {extensions_pb2.EXTENSION_STATUS_APPROVED,
                                                  extensions_pb2.EXTENSION_STATUS_REFUSED,
                                                  extensions_pb2.EXTENSION_STATUS_PENDING}
        assert all(e.reason.startswith("[Mô phỏng]") and e.requested_by == "demo-synthetic" for e in extensions)
        assert all(e.assignment.startswith("assignments/DEMO-") for e in extensions)
        with server.client() as client:
            obstacles = list(client.list_obstacles())
            long_open = list(client.list_obstacles(status="unresolved", age=">30"))
            escalated = list(client.list_recommendations(latest, kind="escalation"))
        assert 20 <= len(obstacles) <= 600, len(obstacles)
        assert len({o.status for o in obstacles}) == 3 and long_open and escalated
        assert all(o.description.startswith("[Mô phỏng]") and o.reported_by == "demo-synthetic" for o in obstacles)
        with server.client() as client:
            people = list(client.list_officials())
            heads = [o for o in people if any(a.position == officials_pb2.OFFICIAL_POSITION_HEAD
                                              for a in o.appointments)]
            praised = list(client.list_official_recommendations(latest, flag="individual_praise"))
            accountable = list(client.list_official_recommendations(latest, flag="head_accountability"))
            reminded = list(client.list_official_recommendations(latest, flag="individual_reminder"))
            led = [a for a in client.list_assignments() if a.lead_official]
            report = client.get_quarterly_report(latest).content.decode("utf-8")
        assert len(heads) >= 141 and all(o.display_name.endswith("(mô phỏng)") for o in people)
        assert all(o.official_id.startswith("DEMO-CB-") for o in people)
        assert praised and accountable and len(led) > 1000
        # the quarterly report shows them, with the demo's extensions and obstacles, all marked synthetic
        individuals = report[report.index('<section id="individuals">'):report.index('<section id="extensions">')]
        assert individuals.count('class="individual"') == len(praised) + len(accountable) + len(reminded)
        assert "(mô phỏng)" in individuals and "Trách nhiệm người đứng đầu" in individuals
        assert "[Mô phỏng]" in report[report.index('<section id="extensions">'):]
    finally:
        server.stop()
    # a second start on the same database does not load the demo again
    again = ServerProcess(tmp_path, extra_args=("--demo-data",)).start(timeout=120)
    try:
        assert "demo data not loaded" in again.log()
    finally:
        again.stop()


def test_a_second_server_on_a_busy_port_refuses_to_start(server: ServerProcess, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "civicscore", "--listen", server.address, "--database",
         f"sqlite:///{other / 'x.db'}", "--rules", str(ROOT / "rules"), "--workers", "1"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on {server.address}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "died while idle" not in result.stderr  # its engine workers were closed, not left to exit's SIGTERM
    health = health_pb2_grpc.HealthStub(server.channel())
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
