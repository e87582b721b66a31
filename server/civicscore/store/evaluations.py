"""Evaluation revisions and the recommendations they raise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
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
from civicscore.store.tables import evaluations, recommendations, units
from civicscore.store.writes import LOOKUP_CHUNK, chunked

PROPOSED = RecommendationStatus.PROPOSED.value
SUPERSEDED = RecommendationStatus.SUPERSEDED.value


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


def save_evaluations(
    connection: Connection, batch: Sequence[NewEvaluation], *, period: str, now: dt.datetime
) -> SaveEvaluationsResult:
    """See `Store.save_evaluations`; new recommendations are stored PROPOSED with the new revision."""
    _check_batch(batch, period)
    codes = sorted(evaluation.unit_code for evaluation in batch)
    # Locking the unit rows serialises PostgreSQL replicas saving the same units.
    unit_rows: dict[str, Any] = {}
    for chunk in chunked(codes, LOOKUP_CHUNK):
        query = select(units.c.code, units.c.block, units.c.name_vi).where(units.c.code.in_(chunk))
        for row in connection.execute(query.order_by(units.c.code).with_for_update()):
            unit_rows[row.code] = row
    missing = [(i, e.unit_code) for i, e in enumerate(batch) if e.unit_code not in unit_rows]
    if missing:
        raise MissingReferences("unit_code", missing)

    latest = latest_revisions(period)
    previous: dict[str, tuple[int, str]] = {}
    for chunk in chunked(codes, LOOKUP_CHUNK):
        query = (
            select(evaluations.c.unit_code, evaluations.c.revision, evaluations.c.result_digest)
            .join(latest, and_(evaluations.c.unit_code == latest.c.unit_code,
                               evaluations.c.revision == latest.c.revision))
            .where(evaluations.c.period == period, evaluations.c.unit_code.in_(chunk))
        )
        for row in connection.execute(query):
            previous[row.unit_code] = (row.revision, row.result_digest)

    new_evaluations: list[dict[str, Any]] = []
    new_recommendations: list[dict[str, Any]] = []
    for evaluation in batch:
        revision, digest = previous.get(evaluation.unit_code, (0, ""))
        if digest == evaluation.result_digest:
            continue
        unit = unit_rows[evaluation.unit_code]
        new_evaluations.append({
            "period": period, "unit_code": evaluation.unit_code, "revision": revision + 1,
            "result_json": evaluation.result_json, "result_digest": evaluation.result_digest,
            "ruleset_version": evaluation.ruleset_version, "ruleset_digest": evaluation.ruleset_digest,
            "inputs_digest": evaluation.inputs_digest, "created_at": now,
            "block": unit.block, "unit_name_vi": unit.name_vi,
            "assessable": evaluation.assessable, "score": evaluation.score, "grade": evaluation.grade,
            "timeliness": evaluation.timeliness, "flags_json": rows.json_list(evaluation.flags),
        })
        new_recommendations.extend(
            {
                "period": period, "unit_code": evaluation.unit_code, "flag": r.flag, "kind": r.kind,
                "level": r.level, "label_vi": r.label_vi, "label_en": r.label_en,
                "reasons_json": r.reasons_json, "evaluation_revision": revision + 1,
                "status": PROPOSED, "created_at": r.created_at, "superseded_by": None,
            }
            for r in evaluation.recommendations
        )

    revised = sorted({values["unit_code"] for values in new_evaluations})
    if new_evaluations:
        connection.execute(insert(evaluations), new_evaluations)
    _supersede_and_insert(connection, period, revised, new_recommendations)

    in_force = connection.scalar(
        select(func.count()).select_from(recommendations)
        .where(recommendations.c.period == period, recommendations.c.status != SUPERSEDED)
    )
    return SaveEvaluationsResult(
        units_evaluated=len(batch),
        new_revisions=len(new_evaluations),
        unchanged=len(batch) - len(new_evaluations),
        not_assessable=sum(1 for evaluation in batch if not evaluation.assessable),
        recommendations_in_force=int(in_force or 0),
    )


def _supersede_and_insert(
    connection: Connection, period: str, revised: list[str], new_recommendations: list[dict[str, Any]]
) -> None:
    """Proposed recommendations of revised units become superseded, linked to a successor of the same flag."""
    old_proposed: list[tuple[int, str, str]] = []
    for chunk in chunked(revised, LOOKUP_CHUNK):
        query = select(recommendations.c.id, recommendations.c.unit_code, recommendations.c.flag).where(
            recommendations.c.period == period,
            recommendations.c.status == PROPOSED,
            recommendations.c.unit_code.in_(chunk),
        )
        old_proposed.extend((row.id, row.unit_code, row.flag) for row in connection.execute(query))

    successor: dict[tuple[str, str], int] = {}
    if new_recommendations:
        inserted = connection.execute(
            insert(recommendations).returning(recommendations.c.id, sort_by_parameter_order=True),
            new_recommendations,
        )
        for values, new_id in zip(new_recommendations, inserted.scalars(), strict=True):
            successor.setdefault((values["unit_code"], values["flag"]), new_id)

    if old_proposed:
        statement = (
            update(recommendations)
            .where(recommendations.c.id == bindparam("old_id"))
            .values(status=SUPERSEDED, superseded_by=bindparam("successor_id"))
        )
        connection.execute(
            statement,
            [{"old_id": old_id, "successor_id": successor.get((unit_code, flag))}
             for old_id, unit_code, flag in old_proposed],
        )


def get_evaluation(
    connection: Connection, *, unit_code: str, period: str, revision: int
) -> EvaluationRecord | None:
    query = select(evaluations).where(evaluations.c.unit_code == unit_code, evaluations.c.period == period)
    if revision > 0:
        query = query.where(evaluations.c.revision == revision)
    row = connection.execute(query.order_by(evaluations.c.revision.desc()).limit(1)).one_or_none()
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
) -> Page[RecommendationRecord]:
    """Recommendations of a period in (unit code, creation) order, with the unit's Vietnamese name."""
    query = (
        select(recommendations, units.c.name_vi.label("unit_name_vi"))
        .select_from(recommendations.outerjoin(units, units.c.code == recommendations.c.unit_code))
        .where(recommendations.c.period == period)
    )
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
    items = [rows.recommendation_from(row) for row in found]
    return page_of(items, keys, listing="recommendations", limit=limit)
