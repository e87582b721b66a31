"""Who may do what, through the real server: every RPC x every role, scopes, tokens, refusals.

The expected matrix below is written out by hand (it is the specification); the
server decides from its own table in `civicscore.auth.policy`, so a change to one
without the other fails here.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from grpc_status import rpc_status

import civicscore_api.v1
from civicscore.auth.policy import METHOD_ACCESS
from civicscore.store.sql import open_store
from civicscore_api.v1 import (
    assignments_pb2,
    measurements_pb2,
    outcomes_pb2,
    outcomes_pb2_grpc,
    periods_pb2,
    units_pb2,
)
from civicscore_client import PermissionDenied, Unauthenticated
from tests.scenario import PERIOD, REPORTED, completed, load_quarter
from tests.serverproc import ServerProcess, hanoi_units, timestamp

pytestmark = pytest.mark.slow

# Every generated module of the contract that defines a service: a new service is in the matrix at once.
MODULES = tuple(
    module for module in (importlib.import_module(f"civicscore_api.v1.{info.name}")
                          for info in pkgutil.iter_modules(civicscore_api.v1.__path__) if info.name.endswith("_pb2"))
    if module.DESCRIPTOR.services_by_name
)
ROLES = ("reporter", "reader", "policy", "committee", "admin")
READ = {"reader", "policy", "committee", "admin"}
PERSONAL = {"reporter", "committee", "admin"}  # personal.read: never reader or policy

# Who may call what (every role not listed gets PERMISSION_DENIED; no credentials: UNAUTHENTICATED).
EXPECTED: dict[str, set[str]] = {
    "UnitService/UpsertUnits": {"admin"},
    "UnitService/GetUnit": READ, "UnitService/ListUnits": READ,
    "AssignmentService/UpsertAssignments": {"committee"},
    "AssignmentService/GetAssignment": READ, "AssignmentService/ListAssignments": READ,
    "OutcomeService/SubmitOutcomes": {"reporter"}, "OutcomeService/StreamOutcomes": {"reporter"},
    "OutcomeService/ListOutcomes": READ,
    "MeasurementService/SubmitMeasurements": {"reporter"}, "MeasurementService/ListMeasurements": READ,
    "MeasurementService/UpsertTargets": {"policy"}, "MeasurementService/ListTargets": READ,
    "PeriodService/GetPeriod": READ, "PeriodService/ListPeriods": READ,
    "EvaluationService/EvaluatePeriod": {"committee"},
    "EvaluationService/GetEvaluation": READ, "EvaluationService/ListEvaluations": READ,
    "EvaluationService/ListRankings": READ, "EvaluationService/ListRecommendations": READ,
    "EvaluationService/ExplainEvaluation": READ,
    "RulesetService/GetActiveRuleset": READ, "RulesetService/GetRuleset": READ,
    "RulesetService/ListRulesetActivations": READ, "RulesetService/GetRulesetStatus": READ,
    "RulesetService/CheckRuleset": {"policy"}, "RulesetService/SimulateRuleset": {"policy"},
    "RulesetService/ActivateRuleset": {"policy"}, "RulesetService/RollbackRuleset": {"policy"},
    "IdentityService/CreateIdentity": {"admin"}, "IdentityService/IssueToken": {"admin"},
    "IdentityService/RegisterCertificate": {"admin"}, "IdentityService/ListIdentities": {"admin"},
    "IdentityService/ListCredentials": {"admin"}, "IdentityService/RevokeCredential": {"admin"},
    "IdentityService/RevokeIdentity": {"admin"}, "IdentityService/WhoAmI": set(ROLES),
    "IdentityService/SetPassword": set(ROLES), "IdentityService/SignIn": set(ROLES),
    # Any identity, for its own sign-in session (the tokens here were issued: FAILED_PRECONDITION, not a refusal).
    "IdentityService/SignOut": set(ROLES),
    "AuditService/ListAuditEvents": {"admin", "committee"}, "AuditService/VerifyAudit": {"admin", "committee"},
    "ReportService/GetQuarterlyReport": READ,
    "ReviewService/ReviewRecommendation": {"committee"}, "ReviewService/ListRecommendationReviews": READ,
    "ReviewService/ContestRecommendation": {"reporter"}, "ReviewService/GetContest": READ,
    "ReviewService/ListContests": READ, "ReviewService/WatchRecommendations": READ,
    "MaintenanceService/CheckStoredData": {"admin"},
    # A reporter for its own units' assignments (the use case checks the scope); committee and admin for any.
    "ExtensionService/RequestExtension": {"reporter", "committee", "admin"},
    "ExtensionService/DecideExtension": {"committee"},
    "ExtensionService/GetExtension": READ, "ExtensionService/ListExtensions": READ,
    # A reporter for its own units' assignments (the use case checks the scope); committee and admin for any.
    "ObstacleService/ReportObstacle": {"reporter", "committee", "admin"},
    "ObstacleService/AssignObstacle": {"committee"}, "ObstacleService/ResolveObstacle": {"committee"},
    "ObstacleService/GetObstacle": READ, "ObstacleService/ListObstacles": READ,
    # Personal data: committee and admin; a reporter for the officials of its units (the use case checks it).
    "OfficialService/UpsertOfficials": {"admin"}, "OfficialService/DeleteOfficial": {"admin"},
    "OfficialService/GetOfficial": PERSONAL, "OfficialService/ListOfficials": PERSONAL,
    "OfficialService/GetOfficialEvaluation": PERSONAL, "OfficialService/ListOfficialEvaluations": PERSONAL,
    "OfficialService/ListOfficialRecommendations": PERSONAL,
}
# Open without credentials too: how a person gets credentials in the first place.
OPEN_TO_ANYONE = {"IdentityService/SignIn"}


def all_methods() -> list[tuple[str, object]]:
    """(full method name, method descriptor) of every RPC of every civicscore service."""
    found = []
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append((f"/{service.full_name}/{method.name}", method))
    return found


def test_every_rpc_is_in_the_access_table_and_in_this_matrix() -> None:
    names = {name for name, _ in all_methods()}
    assert names <= set(METHOD_ACCESS), "an RPC missing from the access table is closed to everyone"
    assert {f"/civicscore.v1.{short}" for short in EXPECTED} == names


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """One server, Hanoi's units and the 2026-Q3 scenario, and a token per role (the reporter for SNV)."""
    proc = ServerProcess(tmp_path_factory.mktemp("access")).start()
    try:
        proc.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        load_quarter(proc)
        tokens = {}
        with proc.client() as admin:
            admin.evaluate_period(PERIOD)
            for role in ROLES:
                scope = ["SNV"] if role == "reporter" else []
                admin.create_identity(f"{role}-1", f"Thử nghiệm {role}", roles=[role], scope_units=scope)
                tokens[role] = admin.issue_token(f"{role}-1").token
        yield proc, tokens
    finally:
        proc.stop()


def _call(channel: grpc.Channel, name: str, method: object, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    request_class = message_factory.GetMessageClass(method.input_type)  # type: ignore[attr-defined]
    response_class = message_factory.GetMessageClass(method.output_type)  # type: ignore[attr-defined]
    kwargs = {"request_serializer": request_class.SerializeToString,
              "response_deserializer": response_class.FromString}
    try:
        if method.client_streaming:  # type: ignore[attr-defined]
            channel.stream_unary(name, **kwargs)(iter([request_class()]), timeout=30, metadata=metadata)
        elif method.server_streaming:  # type: ignore[attr-defined]  # a watch: its first message is enough
            stream = channel.unary_stream(name, **kwargs)(request_class(), timeout=30, metadata=metadata)
            next(stream, None)
            stream.cancel()
        else:
            channel.unary_unary(name, **kwargs)(request_class(), timeout=30, metadata=metadata)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.parametrize("who", [*ROLES, None])
def test_every_rpc_for_every_role(served: tuple[ServerProcess, dict[str, str]], who: str | None) -> None:
    proc, tokens = served
    metadata = (("authorization", f"Bearer {tokens[who]}"),) if who else ()
    channel = proc.anonymous_channel()
    wrong = []
    try:
        for name, method in all_methods():
            # The empty request of an allowed call fails validation (or succeeds): anything but a refusal.
            code = _call(channel, name, method, metadata)
            short = name.removeprefix("/civicscore.v1.")
            allowed = short in OPEN_TO_ANYONE or (who is not None and who in EXPECTED[short])
            expected_refusal = None if allowed else (
                grpc.StatusCode.UNAUTHENTICATED if who is None else grpc.StatusCode.PERMISSION_DENIED)
            refused = code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
            if (allowed and refused) or (not allowed and code != expected_refusal):
                wrong.append(f"{name}: {code.name}")
    finally:
        channel.close()
    assert wrong == []


def test_allowed_calls_succeed(served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    with proc.client(tokens["reader"]) as reader:
        assert reader.get_evaluation(PERIOD, "SNV").grade == "excellent"
        assert reader.explain_evaluation(PERIOD, "STP").evaluation.unit == "units/STP"
    with proc.client(tokens["reporter"]) as reporter:
        proc.stubs().assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=[
            assignments_pb2.Assignment(assignment_id="SNV-X", unit="units/SNV", title="Nhiệm vụ bổ sung",
                                       area=assignments_pb2.AREA_PAR, assigned_on="2026-07-01",
                                       due_on="2026-09-15")]), timeout=30)
        assert reporter.submit_outcomes([completed("SNV-X", "2026-09-10")]).accepted == 1
        assert reporter.whoami().identity.identity_id == "reporter-1"
    with sqlite3.connect(proc.database_url.removeprefix("sqlite:///")) as db:  # who did it, on the row
        assert db.execute("SELECT recorded_by FROM outcomes WHERE outcome_id = 'SNV-X-done'").fetchone() == (
            "reporter-1",)
        assert db.execute("SELECT recorded_by FROM assignments WHERE assignment_id = 'SNV-X'").fetchone() == (
            "bootstrap-admin",)
    with proc.client(tokens["policy"]) as policy:
        files = {f.path: f.content for f in policy.get_active_ruleset(include_files=True).files}
        assert policy.check_ruleset(files).valid
    with proc.client(tokens["committee"]) as committee:
        assert committee.evaluate_period(PERIOD).units_evaluated == 141
        # SNV's new outcome made a new revision: it carries who ran the evaluation
        assert committee.get_evaluation(PERIOD, "SNV").evaluated_by == "committee-1"
        assert committee.get_evaluation(PERIOD, "SNV", revision=1).evaluated_by == "bootstrap-admin"
    with proc.client(tokens["admin"]) as admin:
        assert [i.identity_id for i in admin.list_identities(role="reporter")] == ["bootstrap-admin", "reporter-1"]


def test_a_reporter_cannot_write_for_another_unit_even_inside_a_mixed_batch(
        served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    before = len(list(proc.client().list_outcomes()))
    mixed = [completed("SNV-1", "2026-08-05"), completed("STP-7", "2026-08-20"), completed("NOPE-1", "2026-08-20")]
    for outcome in mixed:
        outcome.outcome_id = f"{outcome.outcome_id}-again"
    with proc.client(tokens["reporter"], max_attempts=1) as reporter:
        with pytest.raises(PermissionDenied) as refused:
            reporter.submit_outcomes(mixed)
        message = refused.value.message
        assert "nothing was stored" in message and "units/SNV" in message
        assert "outcomes[1]: assignments/STP-7" in message and "outcomes[2]: assignments/NOPE-1" in message
        assert "STP" not in message.replace("assignments/STP-7", "")  # nothing about the other unit itself
        with pytest.raises(PermissionDenied):
            reporter.submit_measurements([measurements_pb2.Measurement(
                unit="units/STP", period=PERIOD, indicator="dx.online_applications", numerator=1, denominator=2,
                reported_at=timestamp(REPORTED), reporting_system="dvc")])
    # the same batch streamed
    chunk = outcomes_pb2.StreamOutcomesRequest(chunk=outcomes_pb2.OutcomeChunk(outcomes=mixed))
    commit = outcomes_pb2.StreamOutcomesRequest(commit=outcomes_pb2.StreamCommit(outcome_count=3))
    channel = proc.anonymous_channel()
    try:
        with pytest.raises(grpc.RpcError) as streamed:
            outcomes_pb2_grpc.OutcomeServiceStub(channel).StreamOutcomes(
                iter([chunk, commit]), timeout=30, metadata=(("authorization", f"Bearer {tokens['reporter']}"),))
    finally:
        channel.close()
    assert streamed.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert len(list(proc.client().list_outcomes())) == before


def test_refusals_say_what_is_missing(served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    with proc.client(tokens["reader"], max_attempts=1) as reader, pytest.raises(PermissionDenied) as refused:
        reader.activate_ruleset({"flags.yaml": "x"})
    assert refused.value.message == ("reader-1 may not call ActivateRuleset: it needs the permission "
                                     "`rules.activate` (roles: policy); ask an administrator")
    status = rpc_status.from_call(refused.value.__cause__)  # type: ignore[arg-type]
    assert status is not None and status.details
    cases = {
        "": "no credentials",
        "Bearer": "must be `Bearer <token>`",
        "Bearer nonsense": "malformed",
        "Bearer cs_0123456789ab_" + "A" * 43: "not valid here",
        "Basic dXNlcjpwYXNz": "must be `Bearer <token>`",
    }
    channel = proc.anonymous_channel()
    try:
        call = channel.unary_unary("/civicscore.v1.UnitService/ListUnits",
                                   request_serializer=units_pb2.ListUnitsRequest.SerializeToString,
                                   response_deserializer=units_pb2.ListUnitsResponse.FromString)
        for header, expected in cases.items():
            metadata = (("authorization", header),) if header else ()
            with pytest.raises(grpc.RpcError) as error:
                call(units_pb2.ListUnitsRequest(), timeout=10, metadata=metadata)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, header
            assert expected in (error.value.details() or ""), (header, error.value.details())
    finally:
        channel.close()


def test_revoked_and_expired_credentials_stop_working(served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, _ = served
    with proc.client() as admin:
        admin.create_identity("temp-reader", "Tạm thời", roles=["reader"])
        first = admin.issue_token("temp-reader")
        second = admin.issue_token("temp-reader")
        expiring = admin.issue_token("temp-reader")
    # expire the third in the database file, as time passing would (it was never used, so never cached)
    with sqlite3.connect(proc.database_url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE credentials SET expires_at = ? WHERE credential_id = ?",
                   ((dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).replace(tzinfo=None).isoformat(" "),
                    expiring.credential.name.rsplit("/", 1)[1]))
    with proc.client(expiring.token, max_attempts=1) as client, pytest.raises(Unauthenticated, match="expired"):
        client.list_periods().__next__()
    with proc.client(first.token) as client:
        assert client.whoami().identity.identity_id == "temp-reader"
    with proc.client() as admin:
        admin.revoke_credential(first.credential.name)
    with proc.client(first.token, max_attempts=1) as client, pytest.raises(Unauthenticated, match="revoked"):
        client.whoami()
    with proc.client(second.token) as client:
        assert client.whoami().identity.identity_id == "temp-reader"
    with proc.client() as admin:
        assert admin.revoke_identity("temp-reader").revoked
    with proc.client(second.token, max_attempts=1) as client, pytest.raises(Unauthenticated, match="revoked"):
        client.whoami()


def test_tokens_are_never_stored_or_logged_in_clear(served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    with proc.client() as admin:
        admin.create_identity("secret-check", "Kiểm tra bí mật", roles=["reader"])
        issued = admin.issue_token("secret-check")
    token = issued.token
    secret = token.split("_", 2)[2]  # cs_<key id>_<secret>; the secret itself may hold "_"
    with proc.client(token) as client:  # use it, successfully and in a refused call
        client.list_periods().__next__()
        with pytest.raises(PermissionDenied):
            client.evaluate_period(PERIOD)
    proc.stop()  # flush everything to the files
    try:
        database = Path(proc.database_url.removeprefix("sqlite:///"))
        files = [database, *database.parent.glob(database.name + "-*"), proc.log_path]
        for path in files:
            data = path.read_bytes()
            for value in (token, secret, *tokens.values()):
                assert value.encode() not in data, f"a token is in {path.name}"
        assert token.split("_")[1].encode() in database.read_bytes()  # the key id is, to find the hash
    finally:
        proc.start()


def test_refusals_are_audited_with_the_identity(served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    with proc.client(tokens["reporter"], max_attempts=1) as reporter, pytest.raises(PermissionDenied):
        reporter.list_ruleset_activations().__next__()
    channel = proc.anonymous_channel()
    try:
        with pytest.raises(grpc.RpcError):
            channel.unary_unary("/civicscore.v1.PeriodService/ListPeriods",
                                request_serializer=periods_pb2.ListPeriodsRequest.SerializeToString,
                                response_deserializer=periods_pb2.ListPeriodsResponse.FromString,
                                )(periods_pb2.ListPeriodsRequest(), timeout=10)
    finally:
        channel.close()
    proc.stop()  # the audit writer flushes on shutdown
    try:
        store = open_store(proc.database_url)
        try:
            refused = [e for e in store.audit_entries() if e.outcome == "refused"]
        finally:
            store.close()
        actions = {(e.actor, e.action) for e in refused}
        assert ("reporter-1", "/civicscore.v1.RulesetService/ListRulesetActivations") in actions
        assert any(actor.startswith("anonymous from") and action == "/civicscore.v1.PeriodService/ListPeriods"
                   for actor, action in actions)
        created = [e for e in store_entries(proc) if e.action == "CreateIdentity"]
        assert {e.actor for e in created} >= {"bootstrap-admin", "server-bootstrap"}
    finally:
        proc.start()


def store_entries(proc: ServerProcess) -> list[object]:
    store = open_store(proc.database_url)
    try:
        return list(store.audit_entries())
    finally:
        store.close()


def test_health_is_open_and_reflection_needs_an_identity(served: tuple[ServerProcess, dict[str, str]]) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    proc, tokens = served
    channel = proc.anonymous_channel()
    try:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        replies = list(stub.ServerReflectionInfo(iter([request]), timeout=10,
                                                 metadata=(("authorization", f"Bearer {tokens['reader']}"),)))
        services = {s.name for s in replies[0].list_services_response.service}
        assert "civicscore.v1.IdentityService" in services
    finally:
        channel.close()
