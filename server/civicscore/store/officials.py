"""Officials: upserts, reads, deletion of those never evaluated, and what the evaluation needs of them.

An official's positions are stored twice in one transaction: as the canonical JSON that was sent
(`officials.appointments_json`, what reads return) and as `official_appointments` rows (the reference
to units, the lookup by unit). A person who was evaluated or leads an assignment is never deleted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, insert, select
from sqlalchemy.engine import Connection

from civicscore.domain.model import Quality, RecommendationStatus, TaskCounts, UpsertCounts
from civicscore.domain.officials import Appointment, Official, Position
from civicscore.store.aggregates import COMPLETED, _count, _extended_ids, _not_cancelled, effective_due_dates
from civicscore.store.base import NewOfficialEvaluation, OfficialEvaluationRecord, Page, RecommendationRecord
from civicscore.store.cursors import Key, page_of, paginate
from civicscore.store.driver import BulkColumn, Driver, one_of
from civicscore.store.reviews import RAISED, log_changes, recommendation_query, recommendation_record
from civicscore.store.reviews import SUPERSEDED as CHANGE_SUPERSEDED
from civicscore.store.rows import json_list, tuple_of
from civicscore.store.tables import (
    assignment_states,
    assignments,
    official_appointments,
    official_evaluations,
    officials,
    recommendations,
    units,
)
from civicscore.store.writes import _load_for_update, require_references, upsert


class OfficialInUse(Exception):
    """An official who was evaluated, or leads an assignment, cannot be deleted: deactivate them instead."""


def _appointments_json(appointments: Sequence[Appointment]) -> str:
    return json.dumps([
        {"unit": a.unit_code, "position": a.position.value, "start_on": a.start_on.isoformat(),
         "end_on": a.end_on.isoformat() if a.end_on else None}
        for a in appointments
    ], ensure_ascii=False, separators=(",", ":"))


def _appointments_from(text: str) -> tuple[Appointment, ...]:
    return tuple(
        Appointment(unit_code=item["unit"], position=Position(item["position"]),
                    start_on=dt.date.fromisoformat(item["start_on"]),
                    end_on=dt.date.fromisoformat(item["end_on"]) if item["end_on"] else None)
        for item in json.loads(text)
    )


def official_values(official: Official) -> dict[str, Any]:
    return {
        "official_id": official.official_id,
        "display_name": official.name,
        "appointments_json": _appointments_json(official.appointments),
        "active": official.active,
        "under_review_json": json_list(official.under_review_periods),
    }


def official_from(row: Any) -> Official:
    return Official(official_id=row.official_id, name=row.display_name,
                    appointments=_appointments_from(row.appointments_json), active=bool(row.active),
                    under_review_periods=tuple_of(row.under_review_json))


def upsert_officials(connection: Connection, batch: Sequence[Official], recorded_by: str = "", *,
                     keep_activity: frozenset[str] = frozenset()) -> UpsertCounts:
    """Create or replace officials by id; those in `keep_activity` (activity not said) keep the stored one
    (a new one is active). Units of appointments must exist (MissingReferences)."""
    refs = [(index, a.unit_code) for index, o in enumerate(batch) for a in o.appointments]
    require_references(connection, "appointments.unit", units.c.code, refs)
    stored = _load_for_update(connection, officials, ["official_id"], [(o.official_id,) for o in batch])
    items = []
    for official in batch:
        values = official_values(official)
        old = stored.get((official.official_id,))
        if official.official_id in keep_activity and old is not None:
            values["active"] = bool(old["active"])
        items.append(values)
    done = upsert(connection, officials, ["official_id"], items, recorded_by=recorded_by)
    changed = sorted({row["official_id"] for row in (*done.inserted, *done.updated)})
    if changed:
        connection.execute(delete(official_appointments).where(
            one_of(connection, official_appointments.c.official_id, changed)))
        by_id = {o.official_id: o for o in batch}  # the last of an id wins, as in `upsert`
        appointment_rows = [
            {"official_id": official_id, "ordinal": ordinal, "unit_code": a.unit_code, "position": a.position.value,
             "start_on": a.start_on, "end_on": a.end_on}
            for official_id in changed for ordinal, a in enumerate(by_id[official_id].appointments)
        ]
        if appointment_rows:
            connection.execute(insert(official_appointments), appointment_rows)
    return done.counts


def get_officials(connection: Connection, official_ids: Sequence[str]) -> dict[str, Official]:
    wanted = sorted(set(official_ids))
    if not wanted:
        return {}
    query = select(officials).where(one_of(connection, officials.c.official_id, wanted))
    return {row.official_id: official_from(row) for row in connection.execute(query)}


def _in_units(unit_codes: Sequence[str]) -> ColumnElement[bool]:
    """Officials with an appointment, at any time, in one of `unit_codes`."""
    return exists(select(official_appointments.c.official_id).where(
        official_appointments.c.official_id == officials.c.official_id,
        official_appointments.c.unit_code.in_(sorted(unit_codes))))


def list_officials(connection: Connection, *, unit_codes: Sequence[str] | None, active: bool | None,
                   after: str | None, limit: int) -> Page[Official]:
    """Officials by id; `unit_codes`: only those with an appointment (at any time) in one of them."""
    query = select(officials)
    if unit_codes is not None:
        query = query.where(_in_units(unit_codes))
    if active is not None:
        query = query.where(officials.c.active == active)
    query = paginate(query, [officials.c.official_id], listing="officials", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.official_id,) for row in found]
    return page_of([official_from(row) for row in found], keys, listing="officials", limit=limit)


def officials_in_force(connection: Connection, *, start: dt.date, end: dt.date) -> list[Official]:
    """Active officials with an appointment overlapping [start, end], by id (those an evaluation looks at)."""
    held = exists(select(official_appointments.c.official_id).where(
        official_appointments.c.official_id == officials.c.official_id,
        official_appointments.c.start_on <= end,
        (official_appointments.c.end_on.is_(None)) | (official_appointments.c.end_on >= start)))
    query = select(officials).where(officials.c.active.is_(True), held).order_by(officials.c.official_id)
    return [official_from(row) for row in connection.execute(query)]


def delete_official(connection: Connection, official_id: str) -> bool:
    """Delete an official never evaluated and leading no assignment (with their appointments); False when
    there is no such official; OfficialInUse (nothing deleted) when they were evaluated or lead one."""
    found = connection.execute(select(officials.c.official_id).where(officials.c.official_id == official_id)
                               .with_for_update()).first()
    if found is None:
        return False
    evaluated = connection.scalar(select(func.count()).select_from(official_evaluations)
                                  .where(official_evaluations.c.official_id == official_id))
    leading = connection.scalar(select(func.count()).select_from(assignments)
                                .where(assignments.c.lead_official == official_id))
    if evaluated or leading:
        what = " and ".join(part for part in (
            f"was evaluated in {evaluated} quarter revision(s)" if evaluated else "",
            f"leads {leading} assignment(s)" if leading else "") if part)
        raise OfficialInUse(f"officials/{official_id} {what}: an evaluated or leading official is kept; "
                            "deactivate them instead (UpsertOfficials with activity OFFICIAL_ACTIVITY_INACTIVE)")
    connection.execute(delete(official_appointments).where(official_appointments.c.official_id == official_id))
    connection.execute(delete(officials).where(officials.c.official_id == official_id))
    return True


# ---- what the evaluation needs ------------------------------------------------------------------------

state = assignment_states.c


def led_task_counts(connection: Connection, *, start: dt.date, end: dt.date) -> dict[str, TaskCounts]:
    """Per lead official, the counts of the assignments they lead that are due in [start, end] (effective due
    dates, as `aggregates.task_counts` counts them per unit); officials leading none are absent."""
    completed = and_(state.status == COMPLETED, state.completed_on <= end)

    def counts(due_on: ColumnElement[dt.date]) -> Select[Any]:
        return (
            select(
                assignments.c.lead_official,
                func.count().label("due"),
                _count(completed).label("completed"),
                _count(and_(completed, state.completed_on <= due_on)).label("on_time"),
                _count(and_(completed, state.quality == Quality.RETURNED_FOR_REWORK.value)).label("reworked"),
            )
            .join_from(assignment_states, assignments, assignments.c.assignment_id == state.assignment_id)
            .where(assignments.c.lead_official.is_not(None))
            .group_by(assignments.c.lead_official)
        )

    effective = effective_due_dates(end)
    own = counts(state.due_on).where(state.due_on.between(start, end), _not_cancelled(),
                                     state.assignment_id.not_in(_extended_ids(end)))
    moved = (counts(effective.c.due_on).join(effective, effective.c.assignment_id == state.assignment_id)
             .where(effective.c.due_on.between(start, end), _not_cancelled()))
    totals: dict[str, list[int]] = {}
    for query in (own, moved):
        for row in connection.execute(query):
            added = totals.setdefault(row.lead_official, [0, 0, 0, 0])
            for index, value in enumerate((row.due, row.completed, row.on_time, row.reworked)):
                added[index] += int(value)
    return {
        official_id: TaskCounts(due=due, completed=done, on_time=on_time, late=done - on_time, reworked=reworked)
        for official_id, (due, done, on_time, reworked) in totals.items()
    }


def lead_officials(connection: Connection) -> dict[str, str]:
    """The lead official of every assignment that names one (ix_assignments_lead_official)."""
    query = select(assignments.c.assignment_id, assignments.c.lead_official).where(
        assignments.c.lead_official.is_not(None))
    return {row.assignment_id: row.lead_official for row in connection.execute(query)}


# ---- officials' evaluations -----------------------------------------------------------------------------

_PROPOSED = RecommendationStatus.PROPOSED.value
_DEFERRED = RecommendationStatus.DEFERRED.value
_SUPERSEDED = RecommendationStatus.SUPERSEDED.value
_EVALUATION_COLUMNS: tuple[BulkColumn, ...] = (
    ("period", "text"), ("official_id", "text"), ("revision", "int4"), ("unit_code", "text"),
    ("result_json", "text"), ("result_digest", "text"), ("ruleset_version", "text"), ("ruleset_digest", "text"),
    ("inputs_digest", "text"), ("flags_json", "text"), ("created_at", "timestamp"), ("recorded_by", "text"),
)
_RECOMMENDATION_COLUMNS: tuple[BulkColumn, ...] = (
    ("id", "int8"), ("period", "text"), ("unit_code", "text"), ("flag", "text"), ("kind", "text"),
    ("level", "int4"), ("label_vi", "text"), ("label_en", "text"), ("evaluation_revision", "int4"),
    ("status", "text"), ("created_at", "timestamp"), ("superseded_by", "int8"), ("official_id", "text"),
)
_REASON_COLUMNS: tuple[BulkColumn, ...] = (("recommendation_id", "int8"), ("reasons_json", "text"))


def _latest_of(period: str) -> ColumnElement[bool]:
    """The rows of each official's latest revision for `period` (the maximum from the primary key)."""
    later = official_evaluations.alias("later")
    return and_(official_evaluations.c.period == period, official_evaluations.c.revision == (
        select(func.max(later.c.revision))
        .where(later.c.period == official_evaluations.c.period,
               later.c.official_id == official_evaluations.c.official_id)
        .scalar_subquery()))


def save_official_evaluations(connection: Connection, batch: Sequence[NewOfficialEvaluation], *, period: str,
                              now: dt.datetime, recorded_by: str = "") -> int:
    """Store a new revision of each official's result that changed, with its recommendations (PROPOSED);
    the open ones (proposed, deferred) of a revised official are superseded, linked to the new one of the
    same flag, else of the same kind. Officials with open recommendations for the period who are not in
    the batch any more (deactivated, or no longer holding a position in it) have them superseded with no
    successor. Returns the number of new revisions. Runs in the caller's transaction (the quarter's save)."""
    ids = sorted({e.official_id for e in batch})
    if len(ids) != len(batch) or any(e.period != period for e in batch):
        raise ValueError("each official once, all of the period saved")
    if ids:  # serialises PostgreSQL replicas saving the same officials
        list(connection.execute(select(officials.c.official_id).where(one_of(connection, officials.c.official_id, ids))
                                .order_by(officials.c.official_id).with_for_update()))
    latest = select(official_evaluations.c.official_id, official_evaluations.c.revision,
                    official_evaluations.c.result_digest).where(_latest_of(period))
    previous = {row.official_id: (row.revision, row.result_digest) for row in connection.execute(latest)}
    driver = Driver(connection)
    created_at = driver.timestamp(now)
    rows_out: list[tuple[Any, ...]] = []
    raised: list[tuple[NewOfficialEvaluation, int, RecommendationRecord]] = []
    for evaluation in batch:
        revision, digest = previous.get(evaluation.official_id, (0, ""))
        if digest == evaluation.result_digest:
            continue
        rows_out.append((period, evaluation.official_id, revision + 1, evaluation.unit_code, evaluation.result_json,
                         evaluation.result_digest, evaluation.ruleset_version, evaluation.ruleset_digest,
                         evaluation.inputs_digest, json_list(evaluation.flags), created_at, recorded_by))
        raised.extend((evaluation, revision + 1, r) for r in evaluation.recommendations)
    driver.insert_many("official_evaluations", _EVALUATION_COLUMNS, rows_out, large_text=True)
    revised = {row[1] for row in rows_out}
    open_query = select(recommendations.c.id, recommendations.c.official_id, recommendations.c.flag,
                        recommendations.c.kind).where(
        recommendations.c.period == period, recommendations.c.official_id != "",
        recommendations.c.status.in_([_PROPOSED, _DEFERRED])).with_for_update()
    in_batch = set(ids)
    old_open = [(row.id, row.official_id, row.flag, row.kind) for row in connection.execute(open_query)
                if row.official_id in revised or row.official_id not in in_batch]
    new_ids = driver.next_serials("recommendations", "id", len(raised))
    successor: dict[tuple[str, str], int] = {}
    successor_of_kind: dict[tuple[str, str], int] = {}
    inserted, reasons = [], []
    for (evaluation, revision, r), new_id in zip(raised, new_ids, strict=True):
        inserted.append((new_id, period, evaluation.unit_code, r.flag, r.kind, r.level, r.label_vi, r.label_en,
                         revision, _PROPOSED, driver.timestamp(r.created_at), None, evaluation.official_id))
        reasons.append((new_id, r.reasons_json))
        successor.setdefault((evaluation.official_id, r.flag), new_id)
        successor_of_kind.setdefault((evaluation.official_id, r.kind), new_id)
    driver.insert_many("recommendations", _RECOMMENDATION_COLUMNS, inserted)
    driver.insert_many("recommendation_reasons", _REASON_COLUMNS, reasons, large_text=True)
    superseded = [(old_id, successor.get((official_id, flag), successor_of_kind.get((official_id, kind))))
                  for old_id, official_id, flag, kind in sorted(old_open)]
    for old_id, successor_id in superseded:
        connection.execute(recommendations.update().where(recommendations.c.id == old_id)
                           .values(status=_SUPERSEDED, superseded_by=successor_id))
    log_changes(connection, [(new_id, RAISED) for new_id in new_ids]
                + [(old_id, CHANGE_SUPERSEDED) for old_id, _ in superseded], now)
    return len(rows_out)


def _evaluation_record(row: Any) -> OfficialEvaluationRecord:
    return OfficialEvaluationRecord(
        official_id=row.official_id, period=row.period, revision=row.revision, unit_code=row.unit_code,
        result_json=row.result_json, result_digest=row.result_digest, ruleset_version=row.ruleset_version,
        ruleset_digest=row.ruleset_digest, inputs_digest=row.inputs_digest, flags=tuple_of(row.flags_json),
        created_at=row.created_at, official_name=row.display_name or "")


def _with_name() -> Select[Any]:
    return select(official_evaluations, officials.c.display_name).join(
        officials, officials.c.official_id == official_evaluations.c.official_id)


def get_official_evaluation(connection: Connection, *, official_id: str, period: str, revision: int
                            ) -> OfficialEvaluationRecord | None:
    """The given revision, or the latest when `revision` is 0."""
    query = _with_name().where(official_evaluations.c.period == period,
                               official_evaluations.c.official_id == official_id)
    if revision > 0:
        query = query.where(official_evaluations.c.revision == revision)
    row = connection.execute(query.order_by(official_evaluations.c.revision.desc()).limit(1)).first()
    return None if row is None else _evaluation_record(row)


def list_official_evaluations(connection: Connection, *, period: str, unit_codes: Sequence[str] | None,
                              flagged: bool | None, after: str | None, limit: int
                              ) -> Page[OfficialEvaluationRecord]:
    """The latest revision of each official's result for `period`, by official id; `unit_codes`: those reached
    through one of these units."""
    query = _with_name().where(_latest_of(period))
    if unit_codes is not None:
        query = query.where(official_evaluations.c.unit_code.in_(sorted(unit_codes)))
    if flagged is not None:
        query = query.where((official_evaluations.c.flags_json != "[]") if flagged
                            else (official_evaluations.c.flags_json == "[]"))
    query = paginate(query, [official_evaluations.c.official_id], listing="official_evaluations", after=after,
                     limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.official_id,) for row in found]
    return page_of([_evaluation_record(row) for row in found], keys, listing="official_evaluations", limit=limit)


def list_official_recommendations(
    connection: Connection, *, period: str, kind: str | None, flag: str | None,
    status: RecommendationStatus | None, unit_codes: Sequence[str] | None, official_id: str | None,
    after: str | None, limit: int,
) -> Page[RecommendationRecord]:
    """Recommendations about officials of a period in (unit code, id) order; without a `status`, those not
    superseded."""
    query = recommendation_query().where(recommendations.c.period == period, recommendations.c.official_id != "")
    if official_id is not None:
        query = query.where(recommendations.c.official_id == official_id)
    if unit_codes is not None:
        query = query.where(recommendations.c.unit_code.in_(sorted(unit_codes)))
    if kind is not None:
        query = query.where(recommendations.c.kind == kind)
    if flag is not None:
        query = query.where(recommendations.c.flag == flag)
    if status is not None:
        query = query.where(recommendations.c.status == RecommendationStatus(status).value)
    else:
        query = query.where(recommendations.c.status != _SUPERSEDED)
    columns = [recommendations.c.unit_code, recommendations.c.id]
    query = paginate(query, columns, listing="official_recommendations", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.unit_code, row.id) for row in found]
    return page_of([recommendation_record(row) for row in found], keys, listing="official_recommendations",
                   limit=limit)
