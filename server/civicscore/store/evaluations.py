"""Evaluation revisions and the recommendations they raise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.engine import Connection

from civicscore.domain.model import RecommendationStatus
from civicscore.store import rows
from civicscore.store.aggregates import latest_revisions
from civicscore.store.base import (
    EvaluationRecord,
    MissingReferences,
    NewEvaluation,
    Page,
    RecommendationRecord,
    SaveEvaluationsResult,
)
from civicscore.store.cursors import Key, page_of, paginate
from civicscore.store.driver import BulkColumn, Driver, arrays, one_of, timestamp_from, unnest
from civicscore.store.reviews import RAISED, log_changes, recommendation_query, recommendation_record
from civicscore.store.reviews import SUPERSEDED as CHANGE_SUPERSEDED
from civicscore.store.tables import evaluations, recommendations, units

PROPOSED = RecommendationStatus.PROPOSED.value
SUPERSEDED = RecommendationStatus.SUPERSEDED.value
DEFERRED = RecommendationStatus.DEFERRED.value


def _check_batch(batch: Sequence[NewEvaluation], period: str) -> None:
    """Programming errors of the caller, not bad client input: one period, each unit once."""
    seen: set[str] = set()
    for evaluation in batch:
        if evaluation.period != period:
            raise ValueError(f"evaluation of {evaluation.unit_code} is for {evaluation.period}, not {period}")
        if evaluation.unit_code in seen:
            raise ValueError(f"unit {evaluation.unit_code} is evaluated twice in one save")
        seen.add(evaluation.unit_code)
        for recommendation in evaluation.recommendations:
            if (recommendation.unit_code, recommendation.period) != (evaluation.unit_code, period):
                raise ValueError(
                    f"recommendation {recommendation.flag} of {recommendation.unit_code} "
                    f"{recommendation.period} is attached to {evaluation.unit_code} {period}"
                )


# Columns of the driver-level inserts below, with their PostgreSQL types.
_EVALUATION_COLUMNS: tuple[BulkColumn, ...] = (
    ("period", "text"), ("unit_code", "text"), ("revision", "int4"), ("result_json", "text"),
    ("result_digest", "text"), ("ruleset_version", "text"), ("ruleset_digest", "text"), ("inputs_digest", "text"),
    ("created_at", "timestamp"), ("block", "text"), ("unit_name_vi", "text"), ("assessable", "bool"),
    ("score", "float8"), ("grade", "text"), ("timeliness", "float8"), ("flags_json", "text"), ("recorded_by", "text"),
    ("reply_format", "int4"), ("reply_pb", "bytea"), ("reply_of", "text"),
)
_RECOMMENDATION_COLUMNS: tuple[BulkColumn, ...] = (
    ("id", "int8"), ("period", "text"), ("unit_code", "text"), ("flag", "text"), ("kind", "text"),
    ("level", "int4"), ("label_vi", "text"), ("label_en", "text"), ("evaluation_revision", "int4"),
    ("status", "text"), ("created_at", "timestamp"), ("superseded_by", "int8"),
)
_REASON_COLUMNS: tuple[BulkColumn, ...] = (("recommendation_id", "int8"), ("reasons_json", "text"))
_SUPERSEDE = "UPDATE recommendations SET status = ?, superseded_by = ? WHERE id = ?"
_SUPERSEDE_POSTGRES = (
    f"UPDATE recommendations AS r SET status = ?, superseded_by = v.successor FROM {unnest(['int8', 'int8'])} "
    "AS v(id, successor) WHERE r.id = v.id"
)


def save_evaluations(
    connection: Connection, batch: Sequence[NewEvaluation], *, period: str, now: dt.datetime, recorded_by: str = "",
) -> SaveEvaluationsResult:
    """See `Store.save_evaluations`; new recommendations are stored PROPOSED with the new revision.
    `recommendations_in_force` is left 0: the caller counts it once, when every chunk is written
    (`recommendations_in_force`).

    A fixed number of statements whatever the batch size: one lookup of the
    units, one of the latest digests, then one bulk write per table, with
    values already in stored form (see `driver`).
    """
    _check_batch(batch, period)
    codes = sorted(evaluation.unit_code for evaluation in batch)
    if not codes:
        return SaveEvaluationsResult(units_evaluated=0, new_revisions=0, unchanged=0, not_assessable=0,
                                     recommendations_in_force=0)
    # Locking the unit rows serialises PostgreSQL replicas saving the same units.
    query = (
        select(units.c.code, units.c.block, units.c.name_vi)
        .where(one_of(connection, units.c.code, codes))
        .order_by(units.c.code)
        .with_for_update()
    )
    unit_rows: dict[str, Any] = {row.code: row for row in connection.execute(query).all()}
    missing = [(i, e.unit_code) for i, e in enumerate(batch) if e.unit_code not in unit_rows]
    if missing:
        raise MissingReferences("unit_code", missing)

    # Each unit's latest revision and its digest, in one statement (max per unit from the primary key).
    later = evaluations.alias("later")
    query = select(evaluations.c.unit_code, evaluations.c.revision, evaluations.c.result_digest).where(
        evaluations.c.period == period,
        one_of(connection, evaluations.c.unit_code, codes),
        evaluations.c.revision == (
            select(func.max(later.c.revision))
            .where(later.c.period == evaluations.c.period, later.c.unit_code == evaluations.c.unit_code)
            .scalar_subquery()
        ),
    )
    previous: dict[str, tuple[int, str]] = {
        row.unit_code: (row.revision, row.result_digest) for row in connection.execute(query).all()
    }

    driver = Driver(connection)
    created_at = driver.timestamp(now)
    new_evaluations: list[tuple[Any, ...]] = []
    new_recommendations: list[tuple[NewEvaluation, int, RecommendationRecord]] = []
    for evaluation in batch:
        revision, digest = previous.get(evaluation.unit_code, (0, ""))
        if digest == evaluation.result_digest:
            continue
        unit = unit_rows[evaluation.unit_code]
        new_evaluations.append((
            period, evaluation.unit_code, revision + 1, evaluation.result_json, evaluation.result_digest,
            evaluation.ruleset_version, evaluation.ruleset_digest, evaluation.inputs_digest, created_at,
            unit.block, unit.name_vi, bool(evaluation.assessable), evaluation.score, evaluation.grade,
            evaluation.timeliness, rows.json_list(evaluation.flags), recorded_by,
            evaluation.reply_format, evaluation.reply or None, evaluation.result_digest if evaluation.reply else "",
        ))
        new_recommendations.extend((evaluation, revision + 1, r) for r in evaluation.recommendations)

    driver.insert_many("evaluations", _EVALUATION_COLUMNS, new_evaluations, large_text=True)
    revised = sorted({evaluation[1] for evaluation in new_evaluations})
    _supersede_and_insert(driver, period, revised, new_recommendations, now)
    return SaveEvaluationsResult(
        units_evaluated=len(batch),
        new_revisions=len(new_evaluations),
        unchanged=len(batch) - len(new_evaluations),
        not_assessable=sum(1 for evaluation in batch if not evaluation.assessable),
        recommendations_in_force=0,
    )


def recommendations_in_force(connection: Connection, period: str) -> int:
    """Recommendations about units of the period that are not superseded."""
    in_force = connection.scalar(
        select(func.count()).select_from(recommendations)
        .where(recommendations.c.period == period, recommendations.c.status != SUPERSEDED,
               recommendations.c.official_id == "")
    )
    return int(in_force or 0)


def _supersede_and_insert(
    driver: Driver, period: str, revised: list[str],
    new_recommendations: list[tuple[NewEvaluation, int, RecommendationRecord]], now: dt.datetime,
) -> None:
    """Proposed recommendations of revised units become superseded, linked to a successor of the same flag.

    New ids are drawn up front (`Driver.next_serials`) so the insert is one plain
    bulk insert: with RETURNING in parameter order SQLAlchemy falls back to one
    INSERT per row on SQLite.
    """
    connection = driver.connection
    old_proposed: list[tuple[int, str, str, str]] = []
    if revised:
        # Open recommendations (proposed, or deferred by the committee) are superseded; approved and
        # rejected ones are final. A decision on a superseded one stays in `recommendation_reviews`.
        query = select(recommendations.c.id, recommendations.c.unit_code, recommendations.c.flag,
                       recommendations.c.kind).where(
            recommendations.c.period == period,
            recommendations.c.status.in_([PROPOSED, DEFERRED]),
            recommendations.c.official_id == "",  # an official's are superseded by their own evaluation
            one_of(connection, recommendations.c.unit_code, revised),
        ).with_for_update()  # a concurrent review (which locks the row) finishes first and is seen
        old_proposed = [(row.id, row.unit_code, row.flag, row.kind) for row in connection.execute(query).all()]

    successor: dict[tuple[str, str], int] = {}
    successor_of_kind: dict[tuple[str, str], int] = {}
    inserted: list[tuple[Any, ...]] = []
    reasons: list[tuple[int, str]] = []
    ids = driver.next_serials("recommendations", "id", len(new_recommendations))
    for (evaluation, revision, r), new_id in zip(new_recommendations, ids, strict=True):
        inserted.append((
            new_id, period, evaluation.unit_code, r.flag, r.kind, r.level, r.label_vi, r.label_en, revision,
            PROPOSED, driver.timestamp(r.created_at), None,
        ))
        reasons.append((new_id, r.reasons_json))
        successor.setdefault((evaluation.unit_code, r.flag), new_id)
        successor_of_kind.setdefault((evaluation.unit_code, r.kind), new_id)
    driver.insert_many("recommendations", _RECOMMENDATION_COLUMNS, inserted)
    driver.insert_many("recommendation_reasons", _REASON_COLUMNS, reasons, large_text=True)
    # The successor: the new recommendation of the same flag, else of the same kind (the flag changed).
    superseded = [
        (old_id, successor.get((unit_code, flag), successor_of_kind.get((unit_code, kind))))
        for old_id, unit_code, flag, kind in sorted(old_proposed)
    ]
    if superseded and driver.postgres:  # the unit locks serialise savers of a unit
        driver.run(_SUPERSEDE_POSTGRES, (SUPERSEDED, *arrays(superseded)))
    elif superseded:
        driver.run_many(_SUPERSEDE, [(SUPERSEDED, successor_id, old_id) for old_id, successor_id in superseded])
    # The change log (watchers' cursor), in the same transaction as the change; after the row
    # updates, so that, like a review (row lock, then log lock), locks are always taken in that order.
    log_changes(connection, [(new_id, RAISED) for new_id in ids]
                + [(old_id, CHANGE_SUPERSEDED) for old_id, _ in superseded], now)


# GetEvaluation's two statements, built once (no per-call construction or cache-key walk).
# Both are one search of the primary key (period, unit_code, revision): SQLite's plan is
# "SEARCH evaluations USING INDEX sqlite_autoindex_evaluations_1 (period=? AND unit_code=?)",
# with no sort for the latest revision.
_ONE_UNIT = and_(evaluations.c.period == bindparam("period"), evaluations.c.unit_code == bindparam("unit_code"))
_LATEST_EVALUATION = select(evaluations).where(_ONE_UNIT).order_by(evaluations.c.revision.desc()).limit(1)
_EVALUATION_REVISION = select(evaluations).where(_ONE_UNIT, evaluations.c.revision == bindparam("revision"))


# GetEvaluation's read at the driver level (`Database.read_row`): the row of `_LATEST_EVALUATION` or
# `_EVALUATION_REVISION`, with `result_json` only where the stored reply body is not in the format asked for or
# not made from the stored result. Parameters (body_format, period, unit_code[, revision]); columns in
# `reply_record`'s order.
_REPLY_SELECT = (
    "SELECT unit_code, period, revision, CASE WHEN reply_format = ? AND reply_of = result_digest THEN '' "
    "ELSE result_json END, result_digest, ruleset_version, ruleset_digest, inputs_digest, created_at, block, "
    "unit_name_vi, assessable, score, grade, timeliness, flags_json, recorded_by, reply_format, reply_pb, reply_of "
    "FROM evaluations WHERE period = ? AND unit_code = ?"
)
LATEST_REPLY_SQL = _REPLY_SELECT + " ORDER BY revision DESC LIMIT 1"
REPLY_REVISION_SQL = _REPLY_SELECT + " AND revision = ?"


def reply_record(row: tuple[Any, ...]) -> EvaluationRecord:
    """The EvaluationRecord of a row of LATEST_REPLY_SQL or REPLY_REVISION_SQL (stored representations)."""
    (unit_code, period, revision, result_json, result_digest, ruleset_version, ruleset_digest, inputs_digest,
     created_at, block, unit_name_vi, assessable, score, grade, timeliness, flags_json, recorded_by, reply_format,
     reply, reply_of) = row
    return EvaluationRecord(
        unit_code=unit_code, period=period, revision=revision, result_json=result_json, result_digest=result_digest,
        ruleset_version=ruleset_version, ruleset_digest=ruleset_digest, inputs_digest=inputs_digest,
        created_at=timestamp_from(created_at), block=block, unit_name_vi=unit_name_vi, assessable=bool(assessable),
        score=score, grade=grade, timeliness=timeliness, flags=rows.tuple_of(flags_json), recorded_by=recorded_by,
        reply_format=reply_format, reply=bytes(reply) if reply else b"", reply_of=reply_of)


def get_evaluation(connection: Connection, *, unit_code: str, period: str, revision: int) -> EvaluationRecord | None:
    """The given revision, or the latest when `revision` is 0 (GetEvaluation reads LATEST_REPLY_SQL instead)."""
    parameters: dict[str, Any] = {"period": period, "unit_code": unit_code}
    if revision > 0:
        parameters["revision"] = revision
        query = _EVALUATION_REVISION
    else:
        query = _LATEST_EVALUATION
    row = connection.execute(query, parameters).one_or_none()
    return None if row is None else rows.evaluation_from(row)


def list_evaluations(
    connection: Connection, *, period: str, block: str | None, grade: str | None,
    unit_code: str | None, after: str | None, limit: int,
) -> Page[EvaluationRecord]:
    """The latest revision of each unit's evaluation, in unit code order."""
    latest = latest_revisions(period)
    query = select(evaluations).join(latest, and_(
        evaluations.c.unit_code == latest.c.unit_code, evaluations.c.revision == latest.c.revision,
    )).where(evaluations.c.period == period)
    if block is not None:
        query = query.where(evaluations.c.block == block)
    if grade is not None:
        query = query.where(evaluations.c.grade == grade)
    if unit_code is not None:
        query = query.where(evaluations.c.unit_code == unit_code)
    query = paginate(query, [evaluations.c.unit_code], listing="evaluations", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.unit_code,) for row in found]
    return page_of([rows.evaluation_from(row) for row in found], keys, listing="evaluations", limit=limit)


def list_recommendations(
    connection: Connection, *, period: str, kind: str | None, flag: str | None,
    status: RecommendationStatus | None, unit_code: str | None, after: str | None, limit: int,
    officials: bool = False, official_id: str | None = None,
) -> Page[RecommendationRecord]:
    """Recommendations of a period in (unit code, creation) order, with the unit's Vietnamese name, the
    successor of a superseded one and the last decision taken on each: those about units, or with
    `officials` those about officials (`official_id`: about one of them)."""
    query = recommendation_query().where(recommendations.c.period == period)
    if not officials:
        query = query.where(recommendations.c.official_id == "")
    elif official_id is not None:
        query = query.where(recommendations.c.official_id == official_id)
    else:
        query = query.where(recommendations.c.official_id != "")
    if kind is not None:
        query = query.where(recommendations.c.kind == kind)
    if flag is not None:
        query = query.where(recommendations.c.flag == flag)
    if status is not None:
        query = query.where(recommendations.c.status == RecommendationStatus(status).value)
    if unit_code is not None:
        query = query.where(recommendations.c.unit_code == unit_code)
    columns = [recommendations.c.unit_code, recommendations.c.id]
    query = paginate(query, columns, listing="recommendations", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.unit_code, row.id) for row in found]
    items = [recommendation_record(row) for row in found]
    return page_of(items, keys, listing="recommendations", limit=limit)
