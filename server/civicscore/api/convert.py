"""Protobuf <-> domain, in one place."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from google.protobuf import timestamp_pb2

from civicscore.api import evaluation_wire
from civicscore.domain.model import (
    Area,
    Assignment,
    ExtendedTask,
    ExtensionStatus,
    Measurement,
    Outcome,
    OutcomeStatus,
    Priority,
    Quality,
    RecommendationStatus,
    Target,
    Unit,
    UnitKind,
)
from civicscore.errors import Violation
from civicscore.ingest import AssignmentInput, MeasurementInput, OutcomeInput, TargetInput, UnitInput
from civicscore.store import EvaluationRecord, RecommendationRecord
from civicscore.store.base import ExtensionRecord
from civicscore_api.v1 import (
    assignments_pb2,
    common_pb2,
    evaluations_pb2,
    extensions_pb2,
    measurements_pb2,
    outcomes_pb2,
    units_pb2,
)

UNIT_KINDS = {
    units_pb2.UNIT_KIND_DEPARTMENT: UnitKind.DEPARTMENT,
    units_pb2.UNIT_KIND_WARD: UnitKind.WARD,
    units_pb2.UNIT_KIND_COMMUNE: UnitKind.COMMUNE,
    units_pb2.UNIT_KIND_DISTRICT: UnitKind.DISTRICT,
}
AREAS = {assignments_pb2.AREA_PAR: Area.PAR, assignments_pb2.AREA_DX: Area.DX}
PRIORITIES = {
    assignments_pb2.PRIORITY_LOW: Priority.LOW,
    assignments_pb2.PRIORITY_NORMAL: Priority.NORMAL,
    assignments_pb2.PRIORITY_HIGH: Priority.HIGH,
    assignments_pb2.PRIORITY_URGENT: Priority.URGENT,
}
STATUSES = {
    outcomes_pb2.OUTCOME_STATUS_COMPLETED: OutcomeStatus.COMPLETED,
    outcomes_pb2.OUTCOME_STATUS_IN_PROGRESS: OutcomeStatus.IN_PROGRESS,
    outcomes_pb2.OUTCOME_STATUS_CANCELLED: OutcomeStatus.CANCELLED,
}
QUALITIES = {
    outcomes_pb2.QUALITY_ACCEPTED: Quality.ACCEPTED,
    outcomes_pb2.QUALITY_RETURNED_FOR_REWORK: Quality.RETURNED_FOR_REWORK,
}
RECOMMENDATION_STATUSES = {
    RecommendationStatus.PROPOSED: evaluations_pb2.RECOMMENDATION_STATUS_PROPOSED,
    RecommendationStatus.APPROVED: evaluations_pb2.RECOMMENDATION_STATUS_APPROVED,
    RecommendationStatus.REJECTED: evaluations_pb2.RECOMMENDATION_STATUS_REJECTED,
    RecommendationStatus.DEFERRED: evaluations_pb2.RECOMMENDATION_STATUS_DEFERRED,
    RecommendationStatus.SUPERSEDED: evaluations_pb2.RECOMMENDATION_STATUS_SUPERSEDED,
}
RECOMMENDATION_KINDS = {
    "commendation": evaluations_pb2.RECOMMENDATION_KIND_COMMENDATION,
    "criticism": evaluations_pb2.RECOMMENDATION_KIND_CRITICISM,
    "escalation": evaluations_pb2.RECOMMENDATION_KIND_ESCALATION,
}


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _enum_text(value: int, mapping: dict[Any, Any]) -> str:
    """'' for unspecified (0), the domain value when known, '?N' for a number this server does not know."""
    if value == 0:
        return ""
    known = mapping.get(value)
    return str(known.value) if known is not None else f"?{value}"


def _back(value: Any, mapping: dict[Any, Any]) -> Any:
    return next((k for k, v in mapping.items() if v == value), 0)


def timestamp_in(ts: timestamp_pb2.Timestamp, present: bool) -> dt.datetime | None:
    """An aware UTC datetime (microseconds, as Timestamp.ToDatetime), None when the field is unset.

    Plain arithmetic instead of ToDatetime: this runs once per outcome on the ingest hot path.
    """
    if not present:
        return None
    return _EPOCH + dt.timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def timestamp_out(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


# ---- requests -> use case inputs ----------------------------------------------------


_ACTIVITY_TEXT = {units_pb2.UNIT_ACTIVITY_ACTIVE: "active", units_pb2.UNIT_ACTIVITY_INACTIVE: "inactive"}


def unit_input(m: units_pb2.Unit) -> UnitInput:
    return UnitInput(code=m.code, name_vi=m.display_name_vi, name_en=m.display_name_en,
                     kind=_enum_text(m.kind, UNIT_KINDS), block=m.block, parent=m.parent, active=m.active,
                     under_review_periods=tuple(m.under_review_periods), activity=_ACTIVITY_TEXT.get(m.activity, ""))


def assignment_input(m: assignments_pb2.Assignment) -> AssignmentInput:
    return AssignmentInput(assignment_id=m.assignment_id, unit=m.unit, title=m.title,
                           area=_enum_text(m.area, AREAS), source_document=m.source_document,
                           assigned_on=m.assigned_on, due_on=m.due_on, priority=_enum_text(m.priority, PRIORITIES),
                           lead_official=m.lead_official)


_STATUS_TEXT = {number: status.value for number, status in STATUSES.items()}
_QUALITY_TEXT = {number: quality.value for number, quality in QUALITIES.items()}


def outcome_input(m: outcomes_pb2.Outcome) -> OutcomeInput:
    """The hot path of ingest: plain field reads and dict lookups, no generic helpers."""
    status, quality = m.status, m.quality
    reported_at = timestamp_in(m.reported_at, m.HasField("reported_at"))
    return OutcomeInput(
        m.outcome_id, m.assignment,
        _STATUS_TEXT.get(status) or (f"?{status}" if status else ""),
        m.completed_on,
        _QUALITY_TEXT.get(quality) or (f"?{quality}" if quality else ""),
        m.reminders, reported_at, m.reporting_system, m.note)


def request_digest(message: Any) -> str:
    """SHA-256 of a request's deterministic encoding: what "the same request" means for idempotency."""
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()


def measurement_input(m: measurements_pb2.Measurement) -> MeasurementInput:
    return MeasurementInput(unit=m.unit, period=m.period, indicator=m.indicator, numerator=m.numerator,
                            denominator=m.denominator,
                            reported_at=timestamp_in(m.reported_at, m.HasField("reported_at")),
                            reporting_system=m.reporting_system)


def target_input(m: measurements_pb2.Target) -> TargetInput:
    return TargetInput(indicator=m.indicator, period=m.period, unit=m.unit,
                       unit_kind=_enum_text(m.unit_kind, UNIT_KINDS), value=m.value)


def violation_out(v: Violation) -> common_pb2.FieldViolation:
    return common_pb2.FieldViolation(field=v.field, description=v.description, index=v.index, reason=v.reason)


# ---- domain -> responses ----------------------------------------------------------------


def unit_out(u: Unit) -> units_pb2.Unit:
    return units_pb2.Unit(name=f"units/{u.code}", code=u.code, display_name_vi=u.name_vi, display_name_en=u.name_en,
                          kind=_back(u.kind, UNIT_KINDS), block=u.block,
                          parent=f"units/{u.parent_code}" if u.parent_code else "", active=u.active,
                          under_review_periods=list(u.under_review_periods),
                          activity=units_pb2.UNIT_ACTIVITY_ACTIVE if u.active else units_pb2.UNIT_ACTIVITY_INACTIVE)


def assignment_out(a: Assignment, *, personal: bool = False) -> assignments_pb2.Assignment:
    """An assignment as the API shows it; its lead official only to callers who may read personal data."""
    return assignments_pb2.Assignment(
        name=f"assignments/{a.assignment_id}", assignment_id=a.assignment_id, unit=f"units/{a.unit_code}",
        title=a.title, area=_back(a.area, AREAS), source_document=a.source_document,
        assigned_on=a.assigned_on.isoformat(), due_on=a.due_on.isoformat(), priority=_back(a.priority, PRIORITIES),
        lead_official=f"officials/{a.lead_official}" if personal and a.lead_official else "")


def outcome_out(o: Outcome) -> outcomes_pb2.Outcome:
    return outcomes_pb2.Outcome(
        name=f"outcomes/{o.outcome_id}", outcome_id=o.outcome_id, assignment=f"assignments/{o.assignment_id}",
        status=_back(o.status, STATUSES), completed_on=o.completed_on.isoformat() if o.completed_on else "",
        quality=_back(o.quality, QUALITIES) if o.quality else outcomes_pb2.QUALITY_UNSPECIFIED, reminders=o.reminders,
        reported_at=timestamp_out(o.reported_at), reporting_system=o.reporting_system, note=o.note)


def measurement_out(m: Measurement) -> measurements_pb2.Measurement:
    return measurements_pb2.Measurement(
        name=f"units/{m.unit_code}/periods/{m.period}/measurements/{m.indicator}", unit=f"units/{m.unit_code}",
        period=m.period, indicator=m.indicator, numerator=m.numerator, denominator=m.denominator,
        reported_at=timestamp_out(m.reported_at), reporting_system=m.reporting_system)


def target_out(t: Target) -> measurements_pb2.Target:
    scope = f"units/{t.unit_code}" if t.unit_code else f"kinds/{t.unit_kind}"
    return measurements_pb2.Target(
        name=f"periods/{t.period}/targets/{t.indicator}/{scope}", indicator=t.indicator, period=t.period,
        unit=f"units/{t.unit_code}" if t.unit_code else "",
        unit_kind=_back(t.unit_kind, UNIT_KINDS) if t.unit_kind else units_pb2.UNIT_KIND_UNSPECIFIED, value=t.value)


def evaluation_envelope(record: EvaluationRecord) -> evaluations_pb2.Evaluation:
    """The fields of an Evaluation that belong to the stored revision (see `evaluation_wire`)."""
    return evaluations_pb2.Evaluation(
        name=f"periods/{record.period}/evaluations/{record.unit_code}", unit=f"units/{record.unit_code}",
        period=record.period, revision=record.revision, ruleset_version=record.ruleset_version,
        ruleset_digest=record.ruleset_digest, inputs_digest=record.inputs_digest,
        create_time=timestamp_out(record.created_at), block=record.block, unit_display_name_vi=record.unit_name_vi,
        evaluated_by=record.recorded_by)


def evaluation_out(record: EvaluationRecord) -> evaluations_pb2.Evaluation:
    evaluation = evaluation_wire.body(json.loads(record.result_json))
    evaluation.MergeFrom(evaluation_envelope(record))
    return evaluation


def get_evaluation_reply(record: EvaluationRecord) -> bytes:
    """GetEvaluationResponse's bytes: the envelope and the body stored with the revision, when its format is
    the current one and it was made from the stored result; else the body made again from the canonical result."""
    if record.reply_format == evaluation_wire.BODY_FORMAT and record.reply_of == record.result_digest:
        return evaluation_wire.reply_bytes(evaluation_envelope(record), record.reply)
    return evaluations_pb2.GetEvaluationResponse(evaluation=evaluation_out(record)).SerializeToString()


def recommendation_out(r: RecommendationRecord) -> evaluations_pb2.Recommendation:
    reasons = [
        evaluations_pb2.Reason(rule_id=x["rule_id"], source=x["source"], text_vi=x["reason_vi"],
                               text_en=x["reason_en"])
        for x in json.loads(r.reasons_json)
    ]
    about = f"~{r.official_id}" if r.official_id else ""
    return evaluations_pb2.Recommendation(
        name=f"periods/{r.period}/recommendations/{r.unit_code}~{r.flag}{about}", unit=f"units/{r.unit_code}",
        period=r.period, flag=r.flag,
        kind=RECOMMENDATION_KINDS.get(r.kind, evaluations_pb2.RECOMMENDATION_KIND_UNSPECIFIED), level=r.level,
        label_vi=r.label_vi, label_en=r.label_en, reasons=reasons,
        evaluation=f"periods/{r.period}/evaluations/{r.unit_code}", evaluation_revision=r.evaluation_revision,
        status=RECOMMENDATION_STATUSES[r.status], create_time=timestamp_out(r.created_at),
        unit_display_name_vi=r.unit_name_vi, recommendation_id=r.recommendation_id,
        successor=(f"periods/{r.period}/recommendations/{r.unit_code}~{r.successor_flag}{about}"
                   if r.successor_flag else ""),
        successor_id=r.superseded_by or 0, last_decision=r.last_decision, last_reviewer=r.last_reviewer,
        last_decision_reason=r.last_decision_reason,
        last_decision_time=timestamp_out(r.last_decision_at) if r.last_decision_at is not None else None,
        official=f"officials/{r.official_id}" if r.official_id else "", official_display_name=r.official_name)


EXTENSION_STATUSES = {
    ExtensionStatus.PENDING: extensions_pb2.EXTENSION_STATUS_PENDING,
    ExtensionStatus.APPROVED: extensions_pb2.EXTENSION_STATUS_APPROVED,
    ExtensionStatus.REFUSED: extensions_pb2.EXTENSION_STATUS_REFUSED,
    ExtensionStatus.SUPERSEDED: extensions_pb2.EXTENSION_STATUS_SUPERSEDED,
}


def extension_out(r: ExtensionRecord) -> extensions_pb2.Extension:
    message = extensions_pb2.Extension(
        name=f"assignments/{r.assignment_id}/extensions/{r.extension_id}", extension_id=r.extension_id,
        assignment=f"assignments/{r.assignment_id}", unit=f"units/{r.unit_code}", assignment_title=r.assignment_title,
        original_due_on=r.original_due_on.isoformat(), due_on_at_request=r.due_on_at_request.isoformat(),
        requested_due_on=r.requested_due_on.isoformat(), reason=r.reason, requested_by=r.requested_by,
        request_time=timestamp_out(r.requested_at), status=EXTENSION_STATUSES[r.status],
        decision_reason=r.decision_reason, decided_by=r.decided_by,
        superseded_by=(f"assignments/{r.assignment_id}/extensions/{r.superseded_by}"
                       if r.superseded_by is not None else ""),
        effective_due_on=r.effective_due_on.isoformat())
    if r.decided_at is not None:
        message.decision_time.CopyFrom(timestamp_out(r.decided_at))
    return message


def extended_out(task: ExtendedTask) -> extensions_pb2.ExtendedAssignment:
    """An assignment whose effective due date is not its own, as an explanation lists it."""
    return extensions_pb2.ExtendedAssignment(
        assignment=f"assignments/{task.assignment_id}", original_due_on=task.original_due_on.isoformat(),
        effective_due_on=task.due_on.isoformat(),
        extension=f"assignments/{task.assignment_id}/extensions/{task.extension_id}")
