"""The one place where table rows become domain records and back."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Row

from civicscore.domain.model import (
    Area,
    Assignment,
    Measurement,
    Outcome,
    OutcomeStatus,
    Priority,
    Quality,
    Target,
    Unit,
    UnitKind,
)
from civicscore.store.base import EvaluationRecord

Values = dict[str, Any]


def json_list(items: tuple[str, ...] | list[str]) -> str:
    """A list of strings as compact JSON, non-ASCII kept (Vietnamese stays readable in the table)."""
    return json.dumps(list(items), ensure_ascii=False, separators=(",", ":"))


def tuple_of(text: str) -> tuple[str, ...]:
    return tuple(str(item) for item in json.loads(text))


def utc(moment: dt.datetime) -> dt.datetime:
    """The same instant in UTC; a naive value is taken as UTC (what the domain promises)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def unit_values(unit: Unit) -> Values:
    return {
        "code": unit.code,
        "name_vi": unit.name_vi,
        "name_en": unit.name_en,
        "kind": UnitKind(unit.kind).value,
        "block": unit.block,
        "parent_code": unit.parent_code,
        "active": bool(unit.active),
        "under_review_json": json_list(unit.under_review_periods),
    }


def unit_from(row: Row[Any]) -> Unit:
    return Unit(
        code=row.code,
        name_vi=row.name_vi,
        name_en=row.name_en,
        kind=UnitKind(row.kind),
        block=row.block,
        parent_code=row.parent_code,
        active=bool(row.active),
        under_review_periods=tuple_of(row.under_review_json),
    )


def assignment_values(assignment: Assignment) -> Values:
    return {
        "assignment_id": assignment.assignment_id,
        "unit_code": assignment.unit_code,
        "title": assignment.title,
        "area": Area(assignment.area).value,
        "assigned_on": assignment.assigned_on,
        "due_on": assignment.due_on,
        "source_document": assignment.source_document,
        "priority": Priority(assignment.priority).value,
        "lead_official": assignment.lead_official,
    }


def assignment_from(row: Row[Any]) -> Assignment:
    return Assignment(
        assignment_id=row.assignment_id,
        unit_code=row.unit_code,
        title=row.title,
        area=Area(row.area),
        assigned_on=row.assigned_on,
        due_on=row.due_on,
        source_document=row.source_document,
        priority=Priority(row.priority),
        lead_official=row.lead_official,
    )


def outcome_values(outcome: Outcome) -> Values:
    return {
        "outcome_id": outcome.outcome_id,
        "assignment_id": outcome.assignment_id,
        "status": OutcomeStatus(outcome.status).value,
        "completed_on": outcome.completed_on,
        "quality": None if outcome.quality is None else Quality(outcome.quality).value,
        "reminders": outcome.reminders,
        "reported_at": utc(outcome.reported_at),
        "reporting_system": outcome.reporting_system,
        "note": outcome.note,
    }


def outcome_from(row: Row[Any]) -> Outcome:
    return Outcome(
        outcome_id=row.outcome_id,
        assignment_id=row.assignment_id,
        status=OutcomeStatus(row.status),
        reported_at=row.reported_at,
        reporting_system=row.reporting_system,
        completed_on=row.completed_on,
        quality=None if row.quality is None else Quality(row.quality),
        reminders=row.reminders,
        note=row.note,
    )


def measurement_values(measurement: Measurement) -> Values:
    return {
        "period": measurement.period,
        "unit_code": measurement.unit_code,
        "indicator": measurement.indicator,
        "numerator": float(measurement.numerator),
        "denominator": float(measurement.denominator),
        "reported_at": utc(measurement.reported_at),
        "reporting_system": measurement.reporting_system,
    }


def measurement_from(row: Row[Any]) -> Measurement:
    return Measurement(
        unit_code=row.unit_code,
        period=row.period,
        indicator=row.indicator,
        numerator=row.numerator,
        denominator=row.denominator,
        reported_at=row.reported_at,
        reporting_system=row.reporting_system,
    )


def target_scope(target: Target) -> tuple[str, str]:
    """('unit', code) or ('kind', kind): the stored form of "exactly one of unit_code, unit_kind"."""
    if (target.unit_code is None) == (target.unit_kind is None):
        raise ValueError(
            f"target {target.indicator} {target.period}: set exactly one of unit_code and unit_kind"
        )
    if target.unit_code is not None:
        return ("unit", target.unit_code)
    assert target.unit_kind is not None
    return ("kind", UnitKind(target.unit_kind).value)


def target_values(target: Target) -> Values:
    scope_type, scope_code = target_scope(target)
    return {
        "period": target.period,
        "indicator": target.indicator,
        "scope_type": scope_type,
        "scope_code": scope_code,
        "value": float(target.value),
    }


def target_from(row: Row[Any]) -> Target:
    if row.scope_type == "unit":
        return Target(indicator=row.indicator, period=row.period, value=row.value, unit_code=row.scope_code)
    return Target(
        indicator=row.indicator, period=row.period, value=row.value, unit_kind=UnitKind(row.scope_code)
    )


def evaluation_from(row: Row[Any]) -> EvaluationRecord:
    return EvaluationRecord(
        unit_code=row.unit_code,
        period=row.period,
        revision=row.revision,
        result_json=row.result_json,
        result_digest=row.result_digest,
        ruleset_version=row.ruleset_version,
        ruleset_digest=row.ruleset_digest,
        inputs_digest=row.inputs_digest,
        created_at=row.created_at,
        block=row.block,
        unit_name_vi=row.unit_name_vi,
        assessable=bool(row.assessable),
        score=row.score,
        grade=row.grade,
        timeliness=row.timeliness,
        flags=tuple_of(row.flags_json),
        recorded_by=row.recorded_by,
        reply_format=row.reply_format,
        reply=row.reply_pb or b"",
        reply_of=row.reply_of,
    )
