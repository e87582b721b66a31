"""SQL for the committee's review, units' contests and the recommendation change log.

Decisions live in `recommendation_reviews` (append-only), so superseding a
recommendation never erases one. Every change to a recommendation (raised,
superseded, reviewed, contested) appends a row to `recommendation_changes` in
the transaction that makes it; writers of that log take turns (an advisory
lock on PostgreSQL, the database's single write lock on SQLite), so sequence
order is commit order and a watcher reading `seq > cursor` never skips a row
that commits later with a smaller sequence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from civicscore.domain.model import RecommendationStatus
from civicscore.store.base import (
    ChangeRecord,
    ContestRecord,
    InvalidTransition,
    NewAuditEvent,
    NewContest,
    Page,
    RecommendationRecord,
    ReviewRecord,
)
from civicscore.store.cursors import Key, page_of, paginate
from civicscore.store.driver import Driver
from civicscore.store.identities import append_audit
from civicscore.store.tables import (
    officials,
    recommendation_changes,
    recommendation_contests,
    recommendation_reasons,
    recommendation_reviews,
    recommendations,
    units,
)

# Any 64-bit constant: PostgreSQL writers of the change log take this advisory lock in turn.
_CHANGES_LOCK = 0x63697663_63686e67

RAISED, SUPERSEDED, REVIEWED, CONTESTED = "raised", "superseded", "reviewed", "contested"
_LOG_CHANGE = "INSERT INTO recommendation_changes (recommendation_id, change, changed_at) VALUES (?, ?, ?)"
DECISIONS = {"approved", "rejected", "deferred"}
# Which statuses each decision may follow: approved and rejected are final, deferred may be deferred again.
_ALLOWED_FROM = {
    "approved": {RecommendationStatus.PROPOSED.value, RecommendationStatus.DEFERRED.value},
    "rejected": {RecommendationStatus.PROPOSED.value, RecommendationStatus.DEFERRED.value},
    "deferred": {RecommendationStatus.PROPOSED.value, RecommendationStatus.DEFERRED.value},
}


def log_changes(connection: Connection, changes: Sequence[tuple[int, str]], at: dt.datetime) -> None:
    """Append (recommendation id, change) rows to the change log, in order, in the caller's transaction."""
    if not changes:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHANGES_LOCK})
        connection.execute(recommendation_changes.insert(), [
            {"recommendation_id": rid, "change": change, "changed_at": at} for rid, change in changes
        ])
        return
    # SQLite: one executemany of stored values (an evaluation logs thousands; Core would convert each time).
    driver = Driver(connection)
    stamp = driver.timestamp(at)
    driver.run_many(_LOG_CHANGE, [(rid, change, stamp) for rid, change in changes])


def recommendation_query() -> Any:
    """Recommendations with their reasons, unit name, successor and last decision (one row each)."""
    successor = recommendations.alias("successor")
    earlier = recommendation_reviews.alias("earlier")
    last = (
        select(func.max(earlier.c.seq))
        .where(earlier.c.recommendation_id == recommendations.c.id)
        .correlate(recommendations)
        .scalar_subquery()
    )
    return (
        select(
            recommendations,
            func.coalesce(recommendation_reasons.c.reasons_json, "[]").label("reasons_json"),
            units.c.name_vi.label("unit_name_vi"),
            successor.c.flag.label("successor_flag"),
            recommendation_reviews.c.decision.label("last_decision"),
            recommendation_reviews.c.reviewer.label("last_reviewer"),
            recommendation_reviews.c.reason.label("last_reason"),
            recommendation_reviews.c.decided_at.label("last_decided_at"),
            officials.c.display_name.label("official_name"),
        )
        .select_from(
            recommendations
            .outerjoin(recommendation_reasons, recommendation_reasons.c.recommendation_id == recommendations.c.id)
            .outerjoin(units, units.c.code == recommendations.c.unit_code)
            .outerjoin(successor, successor.c.id == recommendations.c.superseded_by)
            .outerjoin(recommendation_reviews, recommendation_reviews.c.seq == last)
            .outerjoin(officials, officials.c.official_id == recommendations.c.official_id)
        )
    )


def recommendation_record(row: Any) -> RecommendationRecord:
    return RecommendationRecord(
        unit_code=row.unit_code, period=row.period, flag=row.flag, kind=row.kind, level=row.level,
        label_vi=row.label_vi, label_en=row.label_en, reasons_json=row.reasons_json,
        evaluation_revision=row.evaluation_revision, status=RecommendationStatus(row.status),
        created_at=row.created_at, unit_name_vi=row.unit_name_vi or "", recommendation_id=int(row.id),
        superseded_by=None if row.superseded_by is None else int(row.superseded_by),
        successor_flag=row.successor_flag or "", last_decision=row.last_decision or "",
        last_reviewer=row.last_reviewer or "", last_decision_reason=row.last_reason or "",
        last_decision_at=row.last_decided_at, official_id=row.official_id or "",
        official_name=row.official_name or "",
    )


def get_recommendation(connection: Connection, recommendation_id: int) -> RecommendationRecord | None:
    row = connection.execute(recommendation_query().where(recommendations.c.id == recommendation_id)).first()
    return None if row is None else recommendation_record(row)


def _recommendations(connection: Connection, ids: Sequence[int]) -> dict[int, RecommendationRecord]:
    if not ids:
        return {}
    found = connection.execute(recommendation_query().where(recommendations.c.id.in_(sorted(set(ids)))))
    return {int(row.id): recommendation_record(row) for row in found}


def find_recommendation(connection: Connection, *, period: str, unit_code: str, flag: str,
                        recommendation_id: int, official_id: str = "") -> RecommendationRecord | None:
    """The latest recommendation of a flag on a unit (`official_id` empty) or on an official reached
    through the unit, or the one with `recommendation_id` among them."""
    query = recommendation_query().where(
        recommendations.c.period == period, recommendations.c.unit_code == unit_code,
        recommendations.c.flag == flag, recommendations.c.official_id == official_id)
    if recommendation_id:
        query = query.where(recommendations.c.id == recommendation_id)
    row = connection.execute(query.order_by(recommendations.c.id.desc()).limit(1)).first()
    return None if row is None else recommendation_record(row)


def review_recommendation(connection: Connection, recommendation_id: int, *, decision: str, reason: str,
                          reviewer: str, at: dt.datetime) -> tuple[RecommendationRecord, ReviewRecord]:
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}")
    row = connection.execute(
        select(recommendations.c.id, recommendations.c.status, recommendations.c.period,
               recommendations.c.unit_code, recommendations.c.flag, recommendations.c.official_id)
        .where(recommendations.c.id == recommendation_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise LookupError(recommendation_id)
    if row.status not in _ALLOWED_FROM[decision]:
        raise InvalidTransition(row.status, decision)
    connection.execute(recommendations.update().where(recommendations.c.id == recommendation_id)
                       .values(status=decision))
    seq = connection.execute(recommendation_reviews.insert().values(
        recommendation_id=recommendation_id, decision=decision, previous_status=row.status, reason=reason,
        reviewer=reviewer, decided_at=at).returning(recommendation_reviews.c.seq)).scalar_one()
    log_changes(connection, [(recommendation_id, REVIEWED)], at)
    about = f"~{row.official_id}" if row.official_id else ""
    target = f"periods/{row.period}/recommendations/{row.unit_code}~{row.flag}{about}"
    append_audit(connection, [NewAuditEvent(
        at=at, actor=reviewer, action="review_recommendation", target=target, outcome="done",
        detail={"recommendation_id": recommendation_id, "decision": decision, "previous_status": row.status,
                "reason": reason})])
    record = get_recommendation(connection, recommendation_id)
    assert record is not None
    review = ReviewRecord(seq=int(seq), recommendation_id=recommendation_id, decision=decision,
                          previous_status=row.status, reason=reason, reviewer=reviewer, decided_at=at,
                          period=row.period, unit_code=row.unit_code, flag=row.flag)
    return record, review


def list_reviews(connection: Connection, *, period: str, unit_code: str, flag: str, official_id: str = ""
                 ) -> list[ReviewRecord]:
    query = (
        select(recommendation_reviews, recommendations.c.period, recommendations.c.unit_code, recommendations.c.flag)
        .join_from(recommendation_reviews, recommendations,
                   recommendations.c.id == recommendation_reviews.c.recommendation_id)
        .where(recommendations.c.period == period, recommendations.c.unit_code == unit_code,
               recommendations.c.flag == flag, recommendations.c.official_id == official_id)
        .order_by(recommendation_reviews.c.seq)
    )
    return [
        ReviewRecord(seq=int(r.seq), recommendation_id=int(r.recommendation_id), decision=r.decision,
                     previous_status=r.previous_status, reason=r.reason, reviewer=r.reviewer,
                     decided_at=r.decided_at, period=r.period, unit_code=r.unit_code, flag=r.flag)
        for r in connection.execute(query)
    ]


def _contest(row: Any) -> ContestRecord:
    return ContestRecord(
        contest_id=int(row.id), recommendation_id=int(row.recommendation_id), period=row.period,
        unit_code=row.unit_code, text=row.text, corrections_json=row.corrections_json, accepted=row.accepted,
        duplicates=row.duplicates, before_json=row.before_json, after_json=row.after_json,
        contested_by=row.contested_by, created_at=row.created_at, flag=row.flag or "")


def _contest_query() -> Any:
    return select(recommendation_contests, recommendations.c.flag).join_from(
        recommendation_contests, recommendations, recommendations.c.id == recommendation_contests.c.recommendation_id)


def record_contest(connection: Connection, contest: NewContest) -> ContestRecord:
    contest_id = connection.execute(recommendation_contests.insert().values(
        recommendation_id=contest.recommendation_id, period=contest.period, unit_code=contest.unit_code,
        text=contest.text, corrections_json=contest.corrections_json, accepted=contest.accepted,
        duplicates=contest.duplicates, before_json=contest.before_json, after_json=contest.after_json,
        contested_by=contest.contested_by, created_at=contest.created_at,
    ).returning(recommendation_contests.c.id)).scalar_one()
    log_changes(connection, [(contest.recommendation_id, CONTESTED)], contest.created_at)
    append_audit(connection, [NewAuditEvent(
        at=contest.created_at, actor=contest.contested_by, action="contest_recommendation",
        target=f"contests/{contest_id}", outcome="done",
        detail={"recommendation_id": contest.recommendation_id, "unit": contest.unit_code,
                "period": contest.period, "text": contest.text, "accepted": contest.accepted,
                "duplicates": contest.duplicates})])
    found = get_contest(connection, int(contest_id))
    assert found is not None
    return found


def get_contest(connection: Connection, contest_id: int) -> ContestRecord | None:
    row = connection.execute(_contest_query().where(recommendation_contests.c.id == contest_id)).first()
    return None if row is None else _contest(row)


def list_contests(connection: Connection, *, period: str, after: str | None, limit: int) -> Page[ContestRecord]:
    query = _contest_query().where(recommendation_contests.c.period == period)
    query = paginate(query, [recommendation_contests.c.id], listing="contests", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(int(row.id),) for row in found]
    return page_of([_contest(row) for row in found], keys, listing="contests", limit=limit)


# Sequence numbers are 64-bit signed integers (PostgreSQL bigserial, SQLite INTEGER): no cursor beyond
# this was ever given out, and a larger number cannot even be bound as a SQL parameter.
MAX_SEQ = 2**63 - 1


class CursorPastHead(Exception):
    """A watch cursor beyond the newest change in the log: the log never reached it, so it came from
    another database (or this one was restored from an older copy). Waiting on it would skip every
    change up to it, so it is refused; `head` is the newest change's sequence number (0: none yet)."""

    def __init__(self, cursor: int, head: int) -> None:
        super().__init__(f"cursor {cursor} is past the head of the change log ({head})")
        self.cursor = cursor
        self.head = head


def change_log_head(connection: Connection) -> int:
    """The sequence number of the newest change, 0 when there is none."""
    return int(connection.scalar(select(func.max(recommendation_changes.c.seq))) or 0)


def recommendation_changes_after(connection: Connection, *, after_seq: int, limit: int) -> list[ChangeRecord]:
    """Changes with a sequence number above `after_seq`, oldest first; CursorPastHead when `after_seq`
    is beyond the newest change (checked only when nothing is found, so a live watch pays one extra
    lookup per idle poll, and also notices a database that went back to an older copy)."""
    if after_seq > MAX_SEQ:
        raise CursorPastHead(after_seq, change_log_head(connection))
    found = list(connection.execute(
        select(recommendation_changes).where(recommendation_changes.c.seq > after_seq)
        .order_by(recommendation_changes.c.seq).limit(limit)))
    if not found and after_seq > 0:
        head = change_log_head(connection)
        if after_seq > head:
            raise CursorPastHead(after_seq, head)
    current = _recommendations(connection, [int(row.recommendation_id) for row in found])
    return [ChangeRecord(seq=int(row.seq), change=row.change, changed_at=row.changed_at,
                         recommendation=current[int(row.recommendation_id)]) for row in found]
