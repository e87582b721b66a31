"""Write-side servicers: decode, call the ingest use case, encode. Nothing else."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc

from civicscore import ingest, officials
from civicscore.api import convert, outcome_wire, scope
from civicscore.api.errors import DomainsUnchecked, domains_walked, handle_errors
from civicscore.api.filters import parse_filter
from civicscore.api.identity import caller
from civicscore.api.paging import decode_token, encode_token, page_size
from civicscore.auth.caller import current_caller
from civicscore.auth.policy import Permission
from civicscore.domain.model import Assignment, UnitKind
from civicscore.errors import InvalidInput, NotFound, Violation, shown
from civicscore.runtime import Runtime
from civicscore.validation import MAX_BATCH, MAX_STREAM
from civicscore_api.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    common_pb2,
    measurements_pb2,
    measurements_pb2_grpc,
    outcomes_pb2,
    outcomes_pb2_grpc,
    units_pb2,
    units_pb2_grpc,
)


def _bool(value: str, field: str = "filter") -> bool:
    if value not in ("true", "false"):
        raise InvalidInput([Violation(field, f"expected true or false, got {shown(value)}", "INVALID_FILTER")])
    return value == "true"


def _kind(value: str) -> UnitKind:
    try:
        return UnitKind(value)
    except ValueError:
        raise InvalidInput([Violation("filter", f"kind {shown(value)} is not one of "
                                      f"{', '.join(k.value for k in UnitKind)}", "INVALID_FILTER")]) from None


def _violations(result: ingest.BatchResult) -> list[common_pb2.FieldViolation]:
    return [convert.violation_out(v) for v in result.violations]


class UnitServicer(units_pb2_grpc.UnitServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def UpsertUnits(self, request: units_pb2.UpsertUnitsRequest, context: grpc.ServicerContext
                    ) -> units_pb2.UpsertUnitsResponse:
        counts = ingest.upsert_units(self.rt.store, [convert.unit_input(u) for u in request.units],
                                     idempotency_key=request.idempotency_key, actor=caller(context),
                                     validate_only=request.validate_only)
        return units_pb2.UpsertUnitsResponse(created=counts.created, updated=counts.updated,
                                             unchanged=counts.unchanged, violations=_violations(counts))

    @handle_errors
    def GetUnit(self, request: units_pb2.GetUnitRequest, context: grpc.ServicerContext) -> units_pb2.GetUnitResponse:
        code = request.name.removeprefix("units/")
        unit = self.rt.store.get_units([code]).get(code) if request.name.startswith("units/") else None
        if unit is None:
            raise NotFound(request.name or "(empty name)", f"unit {shown(request.name)} does not exist "
                           "(names look like units/SNV)")
        return units_pb2.GetUnitResponse(unit=convert.unit_out(unit))

    @handle_errors
    def ListUnits(self, request: units_pb2.ListUnitsRequest, context: grpc.ServicerContext
                  ) -> units_pb2.ListUnitsResponse:
        terms = parse_filter(request.filter, {"kind", "block", "active", "parent"})
        page = self.rt.store.list_units(
            kind=_kind(terms["kind"]) if "kind" in terms else None, block=terms.get("block"),
            active=_bool(terms["active"]) if "active" in terms else None,
            parent_code=terms["parent"].removeprefix("units/") if "parent" in terms else None,
            after=decode_token(request.page_token, request.filter), limit=page_size(request.page_size))
        return units_pb2.ListUnitsResponse(units=[convert.unit_out(u) for u in page.items],
                                           next_page_token=encode_token(page.next_cursor, request.filter))


class AssignmentServicer(assignments_pb2_grpc.AssignmentServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def UpsertAssignments(self, request: assignments_pb2.UpsertAssignmentsRequest, context: grpc.ServicerContext
                          ) -> assignments_pb2.UpsertAssignmentsResponse:
        counts = ingest.upsert_assignments(self.rt.store, [convert.assignment_input(a) for a in request.assignments],
                                           idempotency_key=request.idempotency_key, actor=caller(context),
                                           validate_only=request.validate_only)
        return assignments_pb2.UpsertAssignmentsResponse(created=counts.created, updated=counts.updated,
                                                         unchanged=counts.unchanged, violations=_violations(counts))

    @handle_errors
    def GetAssignment(self, request: assignments_pb2.GetAssignmentRequest, context: grpc.ServicerContext
                      ) -> assignments_pb2.GetAssignmentResponse:
        assignment_id = request.name.removeprefix("assignments/")
        found = self.rt.store.get_assignments([assignment_id]).get(assignment_id)
        if found is None or not request.name.startswith("assignments/"):
            raise NotFound(request.name or "(empty name)", f"assignment {shown(request.name)} does not exist "
                           "(names look like assignments/{assignment_id})")
        shown_leads = _shows_leads(self.rt, [found], f"assignments/{assignment_id}", "GetAssignment")
        return assignments_pb2.GetAssignmentResponse(
            assignment=convert.assignment_out(found, personal=found.assignment_id in shown_leads))

    @handle_errors
    def ListAssignments(self, request: assignments_pb2.ListAssignmentsRequest, context: grpc.ServicerContext
                        ) -> assignments_pb2.ListAssignmentsResponse:
        from civicscore.evaluate import parse_period

        terms = parse_filter(request.filter, {"unit", "area", "due_in"})
        quarter = parse_period(terms["due_in"], "filter") if "due_in" in terms else None
        area = terms.get("area")
        if area is not None and area not in ("par", "dx"):
            raise InvalidInput([Violation("filter", f"area {shown(area)} is not par or dx", "INVALID_FILTER")])
        page = self.rt.store.list_assignments(
            unit_code=terms["unit"].removeprefix("units/") if "unit" in terms else None, area=area,
            due_from=quarter.start if quarter else None, due_to=quarter.end if quarter else None,
            after=decode_token(request.page_token, request.filter), limit=page_size(request.page_size))
        shown_leads = _shows_leads(self.rt, page.items, "assignments", "ListAssignments")
        return assignments_pb2.ListAssignmentsResponse(
            assignments=[convert.assignment_out(a, personal=a.assignment_id in shown_leads) for a in page.items],
            next_page_token=encode_token(page.next_cursor, request.filter))


def _shows_leads(rt: Runtime, found: Sequence[Assignment], target: str, method: str) -> set[str]:
    """The assignments whose lead official the caller sees (personal data: `personal.read`, and for a
    reporter only in its units); when some are shown, the read is audited."""
    caller = current_caller()
    if caller is not None and Permission.PERSONAL not in caller.permissions:
        return set()
    shown_to = [a for a in found if a.lead_official and officials.may_read([a.unit_code])]
    if shown_to:
        officials.audit_read(rt.store, method=method, target=target,
                             officials=[a.lead_official or "" for a in shown_to], now=rt.clock())
    return {a.assignment_id for a in shown_to}


class OutcomeServicer(outcomes_pb2_grpc.OutcomeServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def SubmitOutcomes(self, request: outcomes_pb2.SubmitOutcomesRequest, context: grpc.ServicerContext
                       ) -> outcomes_pb2.SubmitOutcomesResponse:
        # One pass from the wire to the outcomes, field domains included (request_checks.SELF_CHECKED); when it
        # is not sure, the long way: the interceptor walks the request, and the items are decoded and validated
        # with a message for every violation.
        now = self.rt.clock()
        outcomes = (None if request.validate_only or not outcome_wire.key_within_domain(request.idempotency_key)
                    else outcome_wire.prepared_outcomes(request.outcomes, now))
        if outcomes is None and not domains_walked():
            raise DomainsUnchecked
        scope.check_outcomes(self.rt.store, (o.assignment for o in request.outcomes))
        if outcomes is not None:
            result = ingest.submit_prepared_outcomes(
                self.rt.store, ingest.PreparedOutcomes(outcomes, lambda: [convert.outcome_input(o)
                                                                          for o in request.outcomes]),
                now=now, idempotency_key=request.idempotency_key, actor=caller(context),
                request_digest=convert.request_digest(request) if request.idempotency_key else "")
            return outcomes_pb2.SubmitOutcomesResponse(accepted=result.accepted, duplicates=result.duplicates)
        result = ingest.submit_outcomes(
            self.rt.store, [convert.outcome_input(o) for o in request.outcomes], now=now,
            idempotency_key=request.idempotency_key, validate_only=request.validate_only, actor=caller(context),
            request_digest=convert.request_digest(request) if request.idempotency_key else None)
        return outcomes_pb2.SubmitOutcomesResponse(
            accepted=result.accepted, duplicates=result.duplicates,
            violations=[convert.violation_out(v) for v in result.violations])

    @handle_errors
    def StreamOutcomes(self, request_iterator: Iterator[outcomes_pb2.StreamOutcomesRequest],
                       context: grpc.ServicerContext) -> outcomes_pb2.StreamOutcomesResponse:
        items: list[ingest.OutcomeInput] = []
        commit: outcomes_pb2.StreamCommit | None = None
        for message in request_iterator:
            if commit is not None:
                raise InvalidInput([Violation("commit", "messages arrived after the commit marker; "
                                              "the commit must be the last message. Nothing was stored.",
                                              "AFTER_COMMIT")])
            if message.HasField("commit"):
                commit = message.commit
                continue
            if len(message.chunk.outcomes) > MAX_BATCH:
                raise InvalidInput([Violation("chunk.outcomes", f"a chunk holds at most {MAX_BATCH:,} outcomes",
                                              "TOO_MANY_ITEMS")])
            if len(items) + len(message.chunk.outcomes) > MAX_STREAM:
                raise InvalidInput([Violation("chunk.outcomes", f"a stream carries at most {MAX_STREAM:,} outcomes; "
                                              "split the submission", "TOO_MANY_ITEMS")])
            items.extend(convert.outcome_input(o) for o in message.chunk.outcomes)
        if commit is None:
            raise InvalidInput([Violation("commit", "the stream ended without a commit marker, so it may be "
                                          "incomplete; nothing was stored. End the stream with a commit "
                                          "message carrying the outcome count.", "MISSING_COMMIT")])
        if commit.outcome_count != len(items):
            raise InvalidInput([Violation("commit.outcome_count", f"the commit says {commit.outcome_count} "
                                          f"outcomes but {len(items)} arrived; nothing was stored",
                                          "COUNT_MISMATCH")])
        scope.check_outcomes(self.rt.store, [item.assignment for item in items])
        result = ingest.submit_outcomes(self.rt.store, items, now=self.rt.clock(),
                                        idempotency_key=commit.idempotency_key, limit=MAX_STREAM,
                                        actor=caller(context))
        return outcomes_pb2.StreamOutcomesResponse(accepted=result.accepted, duplicates=result.duplicates)

    @handle_errors
    def ListOutcomes(self, request: outcomes_pb2.ListOutcomesRequest, context: grpc.ServicerContext
                     ) -> outcomes_pb2.ListOutcomesResponse:
        terms = parse_filter(request.filter, {"assignment", "unit"})
        page = self.rt.store.list_outcomes(
            assignment_id=terms["assignment"].removeprefix("assignments/") if "assignment" in terms else None,
            unit_code=terms["unit"].removeprefix("units/") if "unit" in terms else None,
            after=decode_token(request.page_token, request.filter), limit=page_size(request.page_size))
        return outcomes_pb2.ListOutcomesResponse(outcomes=[convert.outcome_out(o) for o in page.items],
                                                 next_page_token=encode_token(page.next_cursor, request.filter))


class MeasurementServicer(measurements_pb2_grpc.MeasurementServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def SubmitMeasurements(self, request: measurements_pb2.SubmitMeasurementsRequest, context: grpc.ServicerContext
                           ) -> measurements_pb2.SubmitMeasurementsResponse:
        scope.check_measurements([m.unit for m in request.measurements])
        counts = ingest.submit_measurements(
            self.rt.store, [convert.measurement_input(m) for m in request.measurements], now=self.rt.clock(),
            indicators=self.rt.indicators_for, idempotency_key=request.idempotency_key, actor=caller(context),
            validate_only=request.validate_only)
        return measurements_pb2.SubmitMeasurementsResponse(created=counts.created, updated=counts.updated,
                                                           unchanged=counts.unchanged, violations=_violations(counts))

    @handle_errors
    def ListMeasurements(self, request: measurements_pb2.ListMeasurementsRequest, context: grpc.ServicerContext
                         ) -> measurements_pb2.ListMeasurementsResponse:
        terms = parse_filter(request.filter, {"unit", "period", "indicator"})
        page = self.rt.store.list_measurements(
            unit_code=terms["unit"].removeprefix("units/") if "unit" in terms else None,
            period=terms.get("period", "").removeprefix("periods/") or None, indicator=terms.get("indicator"),
            after=decode_token(request.page_token, request.filter), limit=page_size(request.page_size))
        return measurements_pb2.ListMeasurementsResponse(
            measurements=[convert.measurement_out(m) for m in page.items],
            next_page_token=encode_token(page.next_cursor, request.filter))

    @handle_errors
    def UpsertTargets(self, request: measurements_pb2.UpsertTargetsRequest, context: grpc.ServicerContext
                      ) -> measurements_pb2.UpsertTargetsResponse:
        counts = ingest.upsert_targets(self.rt.store, [convert.target_input(t) for t in request.targets],
                                       indicators=self.rt.indicators_for,
                                       idempotency_key=request.idempotency_key, actor=caller(context),
                                       validate_only=request.validate_only)
        return measurements_pb2.UpsertTargetsResponse(created=counts.created, updated=counts.updated,
                                                      unchanged=counts.unchanged, violations=_violations(counts))

    @handle_errors
    def ListTargets(self, request: measurements_pb2.ListTargetsRequest, context: grpc.ServicerContext
                    ) -> measurements_pb2.ListTargetsResponse:
        terms = parse_filter(request.filter, {"period", "indicator", "unit"})
        page = self.rt.store.list_targets(
            period=terms.get("period", "").removeprefix("periods/") or None, indicator=terms.get("indicator"),
            unit_code=terms["unit"].removeprefix("units/") if "unit" in terms else None,
            after=decode_token(request.page_token, request.filter), limit=page_size(request.page_size))
        return measurements_pb2.ListTargetsResponse(targets=[convert.target_out(t) for t in page.items],
                                                    next_page_token=encode_token(page.next_cursor, request.filter))
