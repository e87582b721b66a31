"""OfficialService: officials and their person-level results (personal data: reads audited, see `officials`)."""

from __future__ import annotations

import json

import grpc

from civicscore import officials, queries
from civicscore.api import convert, evaluation_wire
from civicscore.api.errors import handle_errors
from civicscore.api.filters import parse_filter
from civicscore.api.identity import caller
from civicscore.api.paging import decode_token, encode_token, page_size
from civicscore.domain.officials import Official, Position
from civicscore.errors import InvalidInput, Violation, shown
from civicscore.evaluate import parse_period
from civicscore.officials import AppointmentInput, OfficialInput
from civicscore.runtime import Runtime
from civicscore.store.base import OfficialEvaluationRecord
from civicscore_api.v1 import evaluations_pb2, officials_pb2, officials_pb2_grpc

POSITIONS = {
    officials_pb2.OFFICIAL_POSITION_HEAD: Position.HEAD,
    officials_pb2.OFFICIAL_POSITION_DEPUTY: Position.DEPUTY,
    officials_pb2.OFFICIAL_POSITION_OFFICER: Position.OFFICER,
}
_POSITION_NUMBERS = {position: number for number, position in POSITIONS.items()}
_ACTIVITY = {officials_pb2.OFFICIAL_ACTIVITY_ACTIVE: "active", officials_pb2.OFFICIAL_ACTIVITY_INACTIVE: "inactive"}


def official_input(m: officials_pb2.Official) -> OfficialInput:
    return OfficialInput(
        official_id=m.official_id, display_name=m.display_name,
        appointments=tuple(
            AppointmentInput(unit=a.unit, position=(POSITIONS[a.position].value if a.position in POSITIONS
                                                    else (f"?{a.position}" if a.position else "")),
                             start_on=a.start_on, end_on=a.end_on)
            for a in m.appointments),
        under_review_periods=tuple(m.under_review_periods),
        activity=_ACTIVITY.get(m.activity) or (f"?{m.activity}" if m.activity else ""))


def official_out(o: Official) -> officials_pb2.Official:
    return officials_pb2.Official(
        name=officials.official_name(o.official_id), official_id=o.official_id, display_name=o.name,
        appointments=[officials_pb2.Appointment(unit=f"units/{a.unit_code}", position=_POSITION_NUMBERS[a.position],
                                                start_on=a.start_on.isoformat(),
                                                end_on=a.end_on.isoformat() if a.end_on else "")
                      for a in o.appointments],
        under_review_periods=list(o.under_review_periods),
        activity=officials_pb2.OFFICIAL_ACTIVITY_ACTIVE if o.active else officials_pb2.OFFICIAL_ACTIVITY_INACTIVE)


def official_evaluation_out(r: OfficialEvaluationRecord) -> officials_pb2.OfficialEvaluation:
    data = json.loads(r.result_json)
    led = data["led"]
    return officials_pb2.OfficialEvaluation(
        name=officials.official_evaluation_name(r.period, r.official_id),
        official=officials.official_name(r.official_id), display_name=r.official_name, period=r.period,
        unit=f"units/{r.unit_code}",
        position=(_POSITION_NUMBERS[Position(data["position"])] if data["position"]
                  else officials_pb2.OFFICIAL_POSITION_UNSPECIFIED),
        under_review=bool(data["under_review"]),
        led=evaluations_pb2.TaskCounts(due=led["due"], completed=led["completed"], on_time=led["on_time"],
                                       late=led["late"], reworked=led["reworked"],
                                       open_overdue=data["led_open_overdue"]),
        headed_units=[f"units/{code}" for code in data["headed_units"]],
        fired_rules=[evaluation_wire.fired_rule_out(rule) for rule in data["fired_rules"]],
        flags=evaluation_wire.flag_labels_out(data["flags"]), ruleset_version=r.ruleset_version,
        ruleset_digest=r.ruleset_digest, revision=r.revision, create_time=convert.timestamp_out(r.created_at))


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise InvalidInput([Violation("filter", f"expected true or false, got {shown(value)}", "INVALID_FILTER")])
    return value == "true"


class OfficialServicer(officials_pb2_grpc.OfficialServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def UpsertOfficials(self, request: officials_pb2.UpsertOfficialsRequest, context: grpc.ServicerContext
                        ) -> officials_pb2.UpsertOfficialsResponse:
        result = officials.upsert_officials(self.rt.store, [official_input(o) for o in request.officials],
                                            idempotency_key=request.idempotency_key, actor=caller(context),
                                            validate_only=request.validate_only)
        return officials_pb2.UpsertOfficialsResponse(
            created=result.created, updated=result.updated, unchanged=result.unchanged,
            violations=[convert.violation_out(v) for v in result.violations])

    @handle_errors
    def GetOfficial(self, request: officials_pb2.GetOfficialRequest, context: grpc.ServicerContext
                    ) -> officials_pb2.GetOfficialResponse:
        found = officials.get_official(self.rt.store, request.name, now=self.rt.clock())
        return officials_pb2.GetOfficialResponse(official=official_out(found))

    @handle_errors
    def ListOfficials(self, request: officials_pb2.ListOfficialsRequest, context: grpc.ServicerContext
                      ) -> officials_pb2.ListOfficialsResponse:
        terms = parse_filter(request.filter, officials.LIST_FILTER_FIELDS)
        page = officials.list_officials(
            self.rt.store, unit=terms.get("unit"), active=_bool(terms["active"]) if "active" in terms else None,
            after=decode_token(request.page_token, request.filter), limit=page_size(request.page_size),
            now=self.rt.clock(), filter_text=request.filter)
        return officials_pb2.ListOfficialsResponse(officials=[official_out(o) for o in page.items],
                                                   next_page_token=encode_token(page.next_cursor, request.filter))

    @handle_errors
    def DeleteOfficial(self, request: officials_pb2.DeleteOfficialRequest, context: grpc.ServicerContext
                       ) -> officials_pb2.DeleteOfficialResponse:
        officials.delete_official(self.rt.store, request.name, actor=caller(context),
                                  idempotency_key=request.idempotency_key)
        return officials_pb2.DeleteOfficialResponse()

    @handle_errors
    def GetOfficialEvaluation(self, request: officials_pb2.GetOfficialEvaluationRequest,
                              context: grpc.ServicerContext) -> officials_pb2.GetOfficialEvaluationResponse:
        found = officials.get_official_evaluation(self.rt.store, request.name, revision=request.revision,
                                                  now=self.rt.clock())
        return officials_pb2.GetOfficialEvaluationResponse(evaluation=official_evaluation_out(found))

    @handle_errors
    def ListOfficialEvaluations(self, request: officials_pb2.ListOfficialEvaluationsRequest,
                                context: grpc.ServicerContext) -> officials_pb2.ListOfficialEvaluationsResponse:
        quarter = parse_period(request.parent, "parent")
        terms = parse_filter(request.filter, {"unit", "flagged"})
        scope = f"{quarter}|{request.filter}"
        page = officials.list_official_evaluations(
            self.rt.store, period=str(quarter), unit=terms.get("unit"),
            flagged=_bool(terms["flagged"]) if "flagged" in terms else None,
            after=decode_token(request.page_token, scope), limit=page_size(request.page_size), now=self.rt.clock(),
            filter_text=request.filter)
        return officials_pb2.ListOfficialEvaluationsResponse(
            evaluations=[official_evaluation_out(r) for r in page.items],
            next_page_token=encode_token(page.next_cursor, scope))

    @handle_errors
    def ListOfficialRecommendations(self, request: officials_pb2.ListOfficialRecommendationsRequest,
                                    context: grpc.ServicerContext
                                    ) -> officials_pb2.ListOfficialRecommendationsResponse:
        quarter = parse_period(request.parent, "parent")
        terms = parse_filter(request.filter, {"kind", "flag", "status", "unit", "official"})
        kind = terms.get("kind")
        if kind is not None and kind not in convert.RECOMMENDATION_KINDS:
            raise InvalidInput([Violation("filter", f"kind {shown(kind)} is not commendation, criticism or "
                                          "escalation", "INVALID_FILTER")])
        scope = f"officials|{quarter}|{request.filter}"
        page = officials.list_official_recommendations(
            self.rt.store, period=str(quarter), unit=terms.get("unit"), official=terms.get("official"), kind=kind,
            flag=terms.get("flag"),
            status=queries.recommendation_status(terms["status"]) if "status" in terms else None,
            after=decode_token(request.page_token, scope), limit=page_size(request.page_size), now=self.rt.clock(),
            filter_text=request.filter)
        return officials_pb2.ListOfficialRecommendationsResponse(
            recommendations=[convert.recommendation_out(r) for r in page.items],
            next_page_token=encode_token(page.next_cursor, scope))
