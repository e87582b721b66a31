"""Difficulties and obstacles (khó khăn, vướng mắc): a unit reports what blocks an assignment, the
committee office assigns who resolves it and closes it with a resolution.

Report: by a reporter for an assignment of a unit in its scope (the committee and administrators: any
unit): what blocks it (`description`, required), what the unit asks for (`request`, required) and from
whom (`requested_of`, optional). An assignment already completed or cancelled has nothing left to block.

Moves (committee): open -> assigned (a resolver: a unit, or an official: `officials/{id}` of the city's
personnel system, which must exist, or in words someone outside it); assigned -> assigned again
(reassigned); open or assigned -> resolved, with a resolution. Assigning first is not required: the office
may answer an obstacle itself. Resolved is final.

Every write takes an idempotency key and is audited. Obstacles change no score; one still open at a
quarter's end and reported more than the rule files' threshold of days before it raises
`obstacle_unresolved` (an escalation for the committee, not a criticism of the unit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from civicscore.auth.caller import current_caller
from civicscore.domain.canonical import digest_of, record_from_json
from civicscore.domain.obstacles import NewObstacle, ObstacleRecord, ObstacleResolved, ObstacleStatus, ObstacleTarget
from civicscore.domain.periods import HANOI
from civicscore.errors import FailedPrecondition, InvalidInput, NotFound, PermissionDenied, Violation, shown
from civicscore.extensions import instants_of, parse_assignment_name
from civicscore.idempotency import claim_key
from civicscore.store import Store
from civicscore.validation import hanoi_today, required_text

MAX_TEXT = 4000
MAX_NAME = 500
FILTER_FIELDS = ("unit", "status", "reported_in", "resolved_in")
_AGE_OPERATORS = (">=", "<=", ">", "<", "=")


def obstacle_name(record: ObstacleRecord) -> str:
    return f"assignments/{record.assignment_id}/obstacles/{record.obstacle_id}"


def parse_obstacle_name(value: str, field: str = "name") -> tuple[str, int]:
    """(assignment id, obstacle id) from `assignments/{assignment_id}/obstacles/{obstacle_id}`."""
    parts = value.split("/")
    if (len(parts) != 4 or parts[0] != "assignments" or not parts[1] or parts[2] != "obstacles"
            or not (parts[3].isascii() and parts[3].isdigit()) or len(parts[3]) > 18 or int(parts[3]) == 0):
        what = f"{field} is required" if not value else f"{shown(value)} is not an obstacle name"
        raise InvalidInput([Violation(field, f"{what}: write assignments/QD818-17/obstacles/3",
                                      "REQUIRED" if not value else "INVALID_NAME")])
    return parts[1], int(parts[3])


def _out_of_scope(name: str) -> PermissionDenied:
    caller = current_caller()
    scope = ", ".join(f"units/{c}" for c in sorted(caller.scope_units)) if caller else ""
    return PermissionDenied(f"{name} is not an assignment of your units (or does not exist); nothing was "
                            f"recorded. Your scope is: {scope or 'none'}")


def _check_report(name: str) -> Callable[[ObstacleTarget | None], None]:
    """The check the store runs on the assignment, in the transaction that records the obstacle."""

    def check(target: ObstacleTarget | None) -> None:
        caller = current_caller()
        if target is None:
            if caller is not None and not caller.may_act_for(""):
                raise _out_of_scope(name)  # a reporter learns nothing of other units' assignments
            raise NotFound(name, f"{name} does not exist; check the id (ListAssignments lists them)")
        if caller is not None and not caller.may_act_for(target.unit_code):
            raise _out_of_scope(name)
        if target.status in ("completed", "cancelled"):
            raise FailedPrecondition(f"{name} is {target.status}: nothing is left to block; an obstacle is "
                                     "reported on an assignment still in progress")

    return check


def report_obstacle(store: Store, assignment: str, *, description: str, request: str, requested_of: str,
                    actor: str, now: dt.datetime, idempotency_key: str = "") -> ObstacleRecord:
    """Record an open obstacle; see the module docstring for who may and when."""
    assignment_id = parse_assignment_name(assignment, "assignment")
    what = required_text(description, "description", "say what blocks the assignment (khó khăn, vướng mắc)")
    asked = required_text(request, "request", "say what the unit asks for (đề xuất, kiến nghị)")
    asked_of = required_text(requested_of, "requested_of", "", required=False, limit=MAX_NAME)
    claim, replayed = claim_key(store, idempotency_key, "ReportObstacle",
                                digest_of([assignment_id, what, asked, asked_of, actor]))
    if replayed is not None:
        return record_from_json(ObstacleRecord, replayed)
    new = NewObstacle(assignment_id=assignment_id, description=what, request=asked, requested_of=asked_of,
                      reported_by=actor, reported_at=now)
    return store.report_obstacle(new, check=_check_report(f"assignments/{assignment_id}"), idempotency=claim)


def _refused(name: str, verb: str, refused: ObstacleResolved) -> FailedPrecondition:
    when = ""
    if refused.resolved_at is not None:
        when = f" on {refused.resolved_at.astimezone(HANOI).date()}"
    return FailedPrecondition(f"{name} is RESOLVED{when} (final); it cannot be {verb}. Report a new obstacle if "
                              "the assignment is blocked again. Allowed: OPEN -> ASSIGNED -> RESOLVED, "
                              "OPEN -> RESOLVED, ASSIGNED -> ASSIGNED (reassigned)")


def _resolver(resolver_unit: str, resolver_official: str) -> tuple[str, str]:
    unit = resolver_unit.strip()
    official = required_text(resolver_official, "resolver_official", "", required=False, limit=MAX_NAME)
    if unit and official:
        raise InvalidInput([Violation("resolver_official", "give either resolver_unit or resolver_official, not "
                                      "both: one resolver is accountable", "CONFLICTING")])
    if not unit and not official:
        raise InvalidInput([Violation("resolver_unit", "resolver_unit is required: the unit that resolves the "
                                      "obstacle (units/SNV), or name an official in resolver_official",
                                      "REQUIRED")])
    if unit:
        prefix, _, code = unit.partition("/")
        if prefix != "units" or not code or "/" in code:
            raise InvalidInput([Violation("resolver_unit", f"{shown(unit)} is not a unit name; write units/SNV",
                                          "INVALID_NAME")])
        return code, ""
    return "", official


def assign_obstacle(store: Store, name: str, *, resolver_unit: str, resolver_official: str, actor: str,
                    now: dt.datetime, idempotency_key: str = "") -> ObstacleRecord:
    """Name who resolves an open or assigned obstacle (committee)."""
    assignment_id, obstacle_id = parse_obstacle_name(name)
    unit, official = _resolver(resolver_unit, resolver_official)
    claim, replayed = claim_key(store, idempotency_key, "AssignObstacle",
                                digest_of([assignment_id, obstacle_id, unit, official, actor]))
    if replayed is not None:
        return record_from_json(ObstacleRecord, replayed)
    found = get_obstacle(store, name)
    if official.startswith("officials/"):
        # An official of the city's personnel system, by resource name: they must exist (free text names
        # someone outside it, e.g. an official of a ministry).
        official_id = official.removeprefix("officials/")
        if official_id not in store.get_officials([official_id]):
            raise InvalidInput([Violation("resolver_official", f"{shown(official)} does not exist; ListOfficials "
                                          "lists the officials (or name someone outside the city's personnel "
                                          "system in words)", "UNKNOWN_OFFICIAL")])

    def check(unit_exists: bool) -> None:
        if not unit_exists:
            raise InvalidInput([Violation("resolver_unit", f"units/{unit} does not exist; ListUnits lists the "
                                          "units", "UNKNOWN_UNIT")])

    try:
        return store.assign_obstacle(found.obstacle_id, resolver_unit=unit, resolver_official=official,
                                     assigned_by=actor, at=now, check=check, idempotency=claim)
    except ObstacleResolved as refused:
        raise _refused(name, "assigned", refused) from None


def resolve_obstacle(store: Store, name: str, *, resolution: str, actor: str, now: dt.datetime,
                     idempotency_key: str = "") -> ObstacleRecord:
    """Close an open or assigned obstacle with a resolution (committee)."""
    assignment_id, obstacle_id = parse_obstacle_name(name)
    text = required_text(resolution, "resolution", "say how the obstacle was resolved (kết quả xử lý)")
    claim, replayed = claim_key(store, idempotency_key, "ResolveObstacle",
                                digest_of([assignment_id, obstacle_id, text, actor]))
    if replayed is not None:
        return record_from_json(ObstacleRecord, replayed)
    found = get_obstacle(store, name)
    try:
        return store.resolve_obstacle(found.obstacle_id, resolution=text, resolved_by=actor, at=now,
                                      idempotency=claim)
    except ObstacleResolved as refused:
        raise _refused(name, "resolved again", refused) from None


def get_obstacle(store: Store, name: str) -> ObstacleRecord:
    assignment_id, obstacle_id = parse_obstacle_name(name)
    found = store.get_obstacle(obstacle_id)
    if found is None or found.assignment_id != assignment_id:
        raise NotFound(name, f"{name} does not exist; ListObstacles lists the obstacles of an assignment")
    return found


@dataclass(frozen=True)
class ObstacleFilter:
    """What a ListObstacles filter asks for: the store's arguments."""

    unit_code: str | None = None
    statuses: tuple[ObstacleStatus, ...] | None = None
    reported_from: dt.datetime | None = None
    reported_before: dt.datetime | None = None
    resolved: tuple[dt.datetime, dt.datetime] | None = None


def split_age(text: str) -> tuple[str, list[tuple[str, int]]]:
    """The filter without its `age` terms (`age>30`, `age>=30`, `age<30`, `age<=30`, `age=30`), and those."""
    rest: list[str] = []
    ages: list[tuple[str, int]] = []
    for term in text.split(" AND ") if text.strip() else []:
        stripped = term.strip()
        if not stripped.startswith("age") or stripped[3:4] not in (">", "<", "="):
            rest.append(term)
            continue
        operator = next(op for op in _AGE_OPERATORS if stripped[3:].startswith(op))
        value = stripped[3 + len(operator):].strip()
        if not (value.isascii() and value.isdigit()) or len(value) > 6:
            raise InvalidInput([Violation("filter", f"{shown(stripped)}: age is a whole number of days, e.g. "
                                          "age>30", "INVALID_FILTER")])
        ages.append((operator, int(value)))
    return " AND ".join(rest), ages


def _day_starts(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), HANOI)


def _age_bounds(operator: str, days: int, today: dt.date) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[from, before) of the report's instant for `age{operator}{days}` counted to `today` (Hanoi dates)."""
    def day(n: int) -> dt.datetime:
        return _day_starts(today - dt.timedelta(days=n))

    if operator == ">":
        return None, day(days)
    if operator == ">=":
        return None, day(days - 1)
    if operator == "<":
        return day(days - 1), None
    if operator == "<=":
        return day(days), None
    return day(days), day(days - 1)


def obstacle_filter(terms: dict[str, str], ages: list[tuple[str, int]], now: dt.datetime) -> ObstacleFilter:
    """The store's arguments for parsed filter terms. `status=unresolved` means open or assigned; `age` is
    counted in Hanoi days from the report's date to today (`age>30`: reported more than 30 days ago)."""
    statuses: tuple[ObstacleStatus, ...] | None = None
    if "status" in terms:
        value = terms["status"]
        if value == "unresolved":
            statuses = (ObstacleStatus.OPEN, ObstacleStatus.ASSIGNED)
        else:
            try:
                statuses = (ObstacleStatus(value),)
            except ValueError:
                allowed = ", ".join([s.value for s in ObstacleStatus] + ["unresolved"])
                raise InvalidInput([Violation("filter", f"status {shown(value)} is not known (one of: "
                                              f"{allowed})", "INVALID_FILTER")]) from None
    low: dt.datetime | None = None
    high: dt.datetime | None = None
    if "reported_in" in terms:
        low, high = instants_of(terms["reported_in"], "reported_in")
    today = hanoi_today(now)
    for operator, days in ages:
        start, before = _age_bounds(operator, days, today)
        if start is not None and (low is None or start > low):
            low = start
        if before is not None and (high is None or before < high):
            high = before
    resolved = instants_of(terms["resolved_in"], "resolved_in") if "resolved_in" in terms else None
    unit = terms["unit"].removeprefix("units/") if "unit" in terms else None
    return ObstacleFilter(unit_code=unit, statuses=statuses, reported_from=low, reported_before=high,
                          resolved=resolved)
