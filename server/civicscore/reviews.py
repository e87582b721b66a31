"""The committee's side: review decisions, a unit's right of reply (contests), and the change log.

Review: proposed -> approved / rejected / deferred; deferred -> approved / rejected / deferred
(with a new reason); approved, rejected and superseded are final. Every decision
needs a reason and is kept in its own table, so a re-evaluation that supersedes
the recommendation does not erase it.

Contest: the unit (a reporter whose scope covers it) replies with a text and
corrected outcomes; the corrections go through normal ingest, the quarter is
re-evaluated, and the evaluation before and after is kept with the contest. A recommendation of a
half-year or year is contested with a text only, kept with the period's result as it stands (nothing
changes its quarters, so it is not evaluated again): corrected outcomes belong to the contest of a
quarter.

Both take an idempotency key: a retry of the same request with the same key (say, after the
reply was lost) is answered with the first reply and records nothing more.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from civicscore import evaluate, officials
from civicscore.auth.caller import current_caller
from civicscore.domain.canonical import canonical_json, digest_of, record_from_json
from civicscore.errors import (
    FailedPrecondition,
    InvalidInput,
    NotFound,
    OutOfRange,
    PermissionDenied,
    Violation,
    shown,
)
from civicscore.idempotency import claim_key
from civicscore.ingest_outcomes import OutcomeInput, submit_outcomes
from civicscore.rollups import is_rollup, parse_evaluation_period
from civicscore.rulesets import Rulesets
from civicscore.store import Store
from civicscore.store.base import (
    ChangeRecord,
    ContestRecord,
    EvaluationRecord,
    InvalidTransition,
    NewContest,
    RecommendationRecord,
    ReviewRecord,
    review_result_from_json,
)
from civicscore.store.reviews import CursorPastHead
from civicscore.validation import required_text

MAX_TEXT = 4000
MAX_CURSOR_DIGITS = 1000  # far past any sequence number (19 digits), well under int()'s limit
DECISIONS = ("approved", "rejected", "deferred")
_VERB = {"approved": "approved", "rejected": "rejected", "deferred": "deferred"}


def parse_recommendation_name(name: str, field: str = "name") -> tuple[str, str, str, str]:
    """(period, unit code, flag, official id) from `periods/{period}/recommendations/{code}~{flag}` (a unit's;
    the official id is then empty) or `.../{code}~{flag}~{official_id}` (about an official)."""
    parts = name.split("/")
    pieces = parts[3].split("~") if len(parts) == 4 else []
    if (len(parts) != 4 or parts[0] != "periods" or parts[2] != "recommendations" or len(pieces) not in (2, 3)
            or not all(pieces)):
        raise InvalidInput([Violation(field, f"{shown(name)} is not a recommendation name; write "
                                      "periods/2026-Q3/recommendations/STP~criticism (about a unit) or "
                                      "periods/2026-Q3/recommendations/STP~head_accountability~CB-00123 (about an "
                                      "official)", "INVALID_NAME")])
    period = str(parse_evaluation_period(parts[1], field))
    return period, pieces[0], pieces[1], pieces[2] if len(pieces) == 3 else ""


def recommendation_name(r: RecommendationRecord) -> str:
    about = f"~{r.official_id}" if r.official_id else ""
    return f"periods/{r.period}/recommendations/{r.unit_code}~{r.flag}{about}"


def find(store: Store, name: str, recommendation_id: int = 0, *, method: str, now: dt.datetime
         ) -> RecommendationRecord:
    """The recommendation `name` names (the given id among them); one about an official only for a caller who
    may read them (`officials.check_recommendation_readable`: PERMISSION_DENIED otherwise, the read audited)."""
    period, code, flag, official_id = parse_recommendation_name(name)
    found = store.find_recommendation(period=period, unit_code=code, flag=flag, recommendation_id=recommendation_id,
                                      official_id=official_id)
    if found is None:
        raise NotFound(name, f"{name} does not exist" + (f" with id {recommendation_id}" if recommendation_id else ""))
    officials.check_recommendation_readable(found, store=store, method=method, now=now)
    return found


def review(store: Store, name: str, *, recommendation_id: int = 0, decision: str, reason: str, actor: str,
           now: dt.datetime, idempotency_key: str = "") -> tuple[RecommendationRecord, ReviewRecord]:
    """Record a committee decision; FailedPrecondition names the current status when it is refused."""
    if decision not in DECISIONS:
        raise InvalidInput([Violation("decision", "decision is required: approve, reject or defer", "REQUIRED")])
    text = required_text(reason, "reason")
    claim, replayed = claim_key(store, idempotency_key, "ReviewRecommendation",
                                digest_of([name, recommendation_id, decision, text, actor]))
    if replayed is not None:
        return review_result_from_json(replayed)
    target = find(store, name, recommendation_id, method="ReviewRecommendation", now=now)
    try:
        return store.review_recommendation(target.recommendation_id, decision=decision, reason=text,
                                           reviewer=actor, at=now, idempotency=claim)
    except InvalidTransition as refused:
        final = "final" if refused.current in ("approved", "rejected", "superseded") else "not open"
        raise FailedPrecondition(
            f"{name} (id {target.recommendation_id}) is {refused.current.upper()} ({final}); "
            f"it cannot be {_VERB[decision]}. Allowed: PROPOSED or DEFERRED -> APPROVED, REJECTED or DEFERRED"
        ) from None


def list_reviews(store: Store, name: str, *, now: dt.datetime) -> list[ReviewRecord]:
    period, code, flag, official_id = parse_recommendation_name(name)
    if official_id:  # the decisions on a person are person-level data: the same check and audit as reading them
        find(store, name, method="ListRecommendationReviews", now=now)
    return store.list_reviews(period=period, unit_code=code, flag=flag, official_id=official_id)


def snapshot(record: EvaluationRecord | None) -> dict[str, object]:
    """What the contest keeps of an evaluation: revision, score, grade, flags."""
    if record is None:
        return {"revision": 0, "assessable": False, "score": 0.0, "grade": "", "flags": []}
    return {"revision": record.revision, "assessable": record.assessable,
            "score": record.score if record.score is not None else 0.0, "grade": record.grade,
            "flags": list(record.flags)}


def contest(store: Store, rulesets: Rulesets, name: str, *, recommendation_id: int = 0, text: str,
            outcomes: Sequence[OutcomeInput], corrections_json: str, actor: str, now: dt.datetime,
            idempotency_key: str = "") -> ContestRecord:
    """A unit's reply: store the corrections through ingest, re-evaluate the quarter, keep before/after.

    The caller's scope must cover the unit of the recommendation; the corrections must be
    outcomes of that unit's assignments (the api layer also runs the usual ingest scope check).
    A replayed key returns the first contest before anything is stored or evaluated again.
    """
    reply = required_text(text, "text")
    claim, replayed = claim_key(store, idempotency_key, "ContestRecommendation",
                                digest_of([name, recommendation_id, reply, corrections_json, actor]))
    if replayed is not None:
        return record_from_json(ContestRecord, replayed)
    target = find(store, name, recommendation_id, method="ContestRecommendation", now=now)
    caller = current_caller()
    if caller is not None and not caller.may_submit_for(target.unit_code):
        scope = ", ".join(f"units/{c}" for c in sorted(caller.scope_units)) or "none"
        raise PermissionDenied(f"only units/{target.unit_code} (or the committee) may contest {name}; "
                               f"your scope is: {scope}")
    if target.status.value == "superseded":
        raise FailedPrecondition(f"{name} (id {target.recommendation_id}) is SUPERSEDED; contest its successor")
    if outcomes and is_rollup(target.period):
        raise InvalidInput([Violation(
            "outcomes", f"{name} is a result of {target.period}, summed up from the stored evaluations of its "
            "quarters, so corrected outcomes cannot change it directly: send them with a contest of the "
            "recommendation of the quarter they change (or submit them and evaluate that quarter again), then "
            f"evaluate {target.period} again; a reply to this recommendation carries its text only",
            "CORRECTIONS_BELONG_TO_A_QUARTER")])
    ids = sorted({o.assignment.removeprefix("assignments/") for o in outcomes})
    owners = {aid: a.unit_code for aid, a in store.get_assignments(ids).items()}
    wrong = [Violation(f"outcomes[{i}].assignment", f"{o.assignment} is not an assignment of "
                       f"units/{target.unit_code}", "NOT_THE_UNITS_ASSIGNMENT", i)
             for i, o in enumerate(outcomes)
             if owners.get(o.assignment.removeprefix("assignments/")) not in (None, target.unit_code)]
    if wrong:
        raise InvalidInput(wrong)
    before = snapshot(store.get_evaluation(unit_code=target.unit_code, period=target.period))
    accepted = duplicates = 0
    if outcomes:
        stored = submit_outcomes(store, outcomes, now=now, idempotency_key="", actor=actor)
        accepted, duplicates = stored.accepted, stored.duplicates
    if not is_rollup(target.period):  # a half-year's or year's reply is a text: its quarters are unchanged
        evaluate.evaluate_period(store, rulesets, target.period, now=now, idempotency_key="", actor=actor)
    after = snapshot(store.get_evaluation(unit_code=target.unit_code, period=target.period))
    return store.record_contest(NewContest(
        recommendation_id=target.recommendation_id, period=target.period, unit_code=target.unit_code, text=reply,
        corrections_json=corrections_json, accepted=accepted, duplicates=duplicates,
        before_json=canonical_json(before), after_json=canonical_json(after), contested_by=actor, created_at=now),
        idempotency=claim)


def get_contest(store: Store, name: str, *, now: dt.datetime) -> ContestRecord:
    prefix, _, number = name.partition("/")
    if prefix != "contests" or not number.isdigit():
        raise InvalidInput([Violation("name", f"{name!r} is not a contest name; write contests/12", "INVALID_NAME")])
    found = store.get_contest(int(number))
    if found is None:
        raise NotFound(name)
    about = store.get_recommendation(found.recommendation_id)
    if about is not None:  # the reply of an official: read like the recommendation about them
        officials.check_recommendation_readable(about, store=store, method="GetContest", now=now)
    return found


def readable_contests(store: Store, found: Sequence[ContestRecord], *, now: dt.datetime) -> list[ContestRecord]:
    """The contests of a page the caller may read: replies about officials only with `personal.read` (and in a
    reporter's scope), each such read audited; the others are left out of the page."""
    shown_contests = []
    for contest_record in found:
        about = store.get_recommendation(contest_record.recommendation_id)
        if about is None or not about.official_id:
            shown_contests.append(contest_record)
            continue
        try:
            officials.check_recommendation_readable(about, store=store, method="ListContests", now=now)
        except PermissionDenied:
            continue
        shown_contests.append(contest_record)
    return shown_contests


def parse_cursor(cursor: str) -> int:
    """A watch cursor: the decimal sequence number of the last change received ("" = from the start).

    Any number is accepted here, however large; one past the newest change is refused when the log
    is read (`changes_after`), naming the newest change."""
    if not cursor:
        return 0
    # isdigit alone accepts "²" and other non-ASCII digits; int() refuses more than 4,300 digits.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > MAX_CURSOR_DIGITS:
        raise InvalidInput([Violation("cursor", f"{shown(cursor)} is not a cursor from WatchRecommendations: "
                                      "a cursor is the decimal number sent with each change; leave it empty "
                                      "to start from the first change", "INVALID_CURSOR")])
    return int(cursor)


def start_position(store: Store, cursor: str, *, from_newest: bool) -> int:
    """Where a watch starts: after `cursor`, or after the newest change with `from_newest` (not both)."""
    position = parse_cursor(cursor)
    if not from_newest:
        return position
    if position:
        raise InvalidInput([Violation("from_newest", f"from_newest starts at the newest change, and cursor "
                                      f"{shown(cursor)} after that cursor: give one or the other",
                                      "CURSOR_AND_FROM_NEWEST")])
    return store.recommendation_change_head()


def changes_after(store: Store, position: int, *, limit: int = 500) -> list[ChangeRecord]:
    """The changes after a watch position, oldest first. A position past the newest change is
    OutOfRange naming it: waiting there would silently miss every change up to that position."""
    try:
        return store.recommendation_changes(after_seq=position, limit=limit)
    except CursorPastHead as past:
        text = str(past.cursor)
        cursor = text if len(text) <= 40 else f"{text[:20]}... ({len(text):,} digits)"
        if past.head:
            newest = f"the newest change is cursor {past.head}"
            resume = f"Resume from a cursor of at most {past.head}, or from 0 (an empty cursor) to replay every change"
        else:
            newest = "no change has been recorded yet (the head is 0)"
            resume = "Resume from 0 (an empty cursor)"
        raise OutOfRange(f"cursor {cursor} is past the head of the change log: {newest}, so this server never "
                         f"sent it (it may come from another database, or from before a restore). {resume}"
                         ) from None


def decode_json(text: str) -> object:
    return json.loads(text)
