"""Officials (cá nhân): upserted by the city's personnel system, read only by those who need them.

Personal data, handled as Vietnam's personal data protection rules (Decree 13/2023/NĐ-CP) expect of a
public body:
- only what the evaluation needs is stored: an id, the name, the positions held (unit, position, dates)
  and the quarters under review; no national id, birth date or contact details;
- reading an official, their evaluation or a recommendation about them needs `personal.read` (committee,
  admin; a reporter for the officials of the units in its scope), which readers and policy staff lack;
- every such read is recorded in the audit log with the reader (action `read_personal`, the method and the
  officials read);
- an official who was evaluated or leads an assignment is deactivated, never deleted; one entered by
  mistake may be deleted until then.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from civicscore.auth.caller import current_caller
from civicscore.auth.policy import CITY_WIDE_ROLES, Permission, roles_granting
from civicscore.domain.model import RecommendationStatus, UpsertCounts
from civicscore.domain.officials import Appointment, Official, Position
from civicscore.domain.periods import InvalidPeriod, Quarter
from civicscore.errors import FailedPrecondition, InvalidInput, NotFound, PermissionDenied, Violation, shown
from civicscore.idempotency import claim_key
from civicscore.ingest import BatchResult, _counts, _reject_or_continue, _replay, _validated, review_periods
from civicscore.store import Store
from civicscore.store.base import NewAuditEvent, OfficialEvaluationRecord, Page, RecommendationRecord
from civicscore.store.officials import OfficialInUse
from civicscore.validation import Checker, check_batch_size, check_idempotency_key, enum_value

OFFICIAL_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
OFFICIAL_ID_HINT = "1-64 characters of letters, digits and ._:-"
MAX_APPOINTMENTS = 50
READ_ACTION = "read_personal"
LIST_FILTER_FIELDS = frozenset({"unit", "active"})


@dataclass(frozen=True)
class AppointmentInput:
    unit: str
    position: str  # a Position value, "" when unspecified, "?N" for an unknown enum number
    start_on: str
    end_on: str


@dataclass(frozen=True)
class OfficialInput:
    official_id: str
    display_name: str
    appointments: tuple[AppointmentInput, ...]
    under_review_periods: tuple[str, ...]
    activity: str = ""  # "active" or "inactive" when said, "" when not


def official_name(official_id: str) -> str:
    return f"officials/{official_id}"


def parse_official_name(value: str, field: str = "name") -> str:
    """The id from `officials/{official_id}` (INVALID_ARGUMENT naming the field otherwise)."""
    official_id = value.removeprefix("officials/")
    if not value.startswith("officials/") or not OFFICIAL_ID_PATTERN.match(official_id):
        what = f"{field} is required" if not value else f"{field} {shown(value)} is not an official's name"
        raise InvalidInput([Violation(field, f"{what}: write officials/{{official_id}}, e.g. officials/CB-00123",
                                      "REQUIRED" if not value else "INVALID_NAME")])
    return official_id


# ---- who may read whom ---------------------------------------------------------------------------------


def readable_units() -> frozenset[str] | None:
    """The units whose people the caller may read: None for every unit (committee, admin, a reporter for
    all units, or a call without authentication), else the reporter's scope. The interceptor has already
    refused callers without `personal.read`."""
    caller = current_caller()
    if caller is None or caller.unrestricted or any(role in CITY_WIDE_ROLES for role in caller.roles):
        return None
    return caller.scope_units


def may_read(unit_codes: Sequence[str]) -> bool:
    """Whether the caller may read a person reached through (or appointed in) one of `unit_codes`."""
    units = readable_units()
    return units is None or any(code in units for code in unit_codes)


def audit_read(store: Store, *, method: str, target: str, officials: Sequence[str], now: dt.datetime,
               **detail: object) -> None:
    """Record a read of personal data in the audit log: the officials whose data the reply carries (none: no
    personal data was read, nothing is recorded; a refused call changes nothing)."""
    if not officials:
        return
    caller = current_caller()
    actor = caller.identity_id if caller is not None else ""
    store.append_audit([NewAuditEvent(at=now, actor=actor, action=READ_ACTION, target=target, outcome="done",
                                      detail={"method": method, "officials": sorted(set(officials)), **detail})])


# ---- upserts ---------------------------------------------------------------------------------------------


def upsert_officials(store: Store, items: Sequence[OfficialInput], *, idempotency_key: str, actor: str,
                     validate_only: bool = False) -> BatchResult:
    """Create or replace officials by id (atomic); with `validate_only`, only report what is wrong."""
    return _validated(lambda: _upsert_officials(store, items, idempotency_key=idempotency_key, actor=actor,
                                                validate_only=validate_only), validate_only=validate_only)


def _appointments(c: Checker, items: Sequence[AppointmentInput], units: set[str]) -> list[Appointment]:
    if not items:
        c.add("appointments", "REQUIRED", "appointments is required: at least the position the official holds "
              "(unit, position, start_on)")
    elif len(items) > MAX_APPOINTMENTS:
        c.add("appointments", "TOO_MANY", f"appointments has {len(items)} items; at most {MAX_APPOINTMENTS}")
        return []
    found: list[Appointment] = []
    for index, item in enumerate(items):
        name = f"appointments[{index}]"
        before = len(c.violations)
        unit_code = c.reference(f"{name}.unit", item.unit, "units")
        if unit_code is not None and unit_code not in units:
            c.add(f"{name}.unit", "UNKNOWN_UNIT", f"unit {shown(item.unit)} does not exist; create it with "
                  "UpsertUnits first")
        position = enum_value(c, f"{name}.position", item.position, frozenset(p.value for p in Position),
                              required=True)
        start_on = c.date(f"{name}.start_on", item.start_on)
        end_on = c.date(f"{name}.end_on", item.end_on, required=False)
        if start_on and end_on and end_on < start_on:
            c.add(f"{name}.end_on", "BEFORE_START", f"{name}.end_on {end_on} is before its start_on {start_on}")
        if len(c.violations) == before and unit_code and position and start_on:
            found.append(Appointment(unit_code, Position(position), start_on, end_on))
    for i, a in enumerate(found):
        for j in range(i):
            b = found[j]
            if a.unit_code == b.unit_code and a.overlaps(b.start_on, b.end_on or dt.date.max):
                c.add("appointments", "OVERLAPPING_APPOINTMENTS",
                      f"two appointments in units/{a.unit_code} overlap ({b.start_on} to {b.end_on or 'now'} and "
                      f"{a.start_on} to {a.end_on or 'now'}); a change of position ends one the day before the "
                      "next starts")
    return found


def _upsert_officials(store: Store, items: Sequence[OfficialInput], *, idempotency_key: str, actor: str,
                      validate_only: bool) -> UpsertCounts:
    _reject_or_continue(check_batch_size(len(items), "officials") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "UpsertOfficials", items, validate_only=validate_only)
    if replayed is not None:
        return _counts(replayed)
    wanted = sorted({a.unit.removeprefix("units/") for i in items for a in i.appointments[:MAX_APPOINTMENTS]
                     if a.unit.startswith("units/")})
    units = set(store.get_units(wanted))
    violations: list[Violation] = []
    result: list[Official] = []
    keep: set[str] = set()
    seen: set[str] = set()
    for index, item in enumerate(items):
        c = Checker(f"officials[{index}]", index)
        official_id = c.identifier("official_id", item.official_id, pattern=OFFICIAL_ID_PATTERN,
                                   hint=OFFICIAL_ID_HINT)
        if official_id in seen:
            c.add("official_id", "DUPLICATE_IN_BATCH", f"official {official_id} appears more than once in this batch")
        seen.add(official_id)
        name = c.text("display_name", item.display_name, max_len=200)
        if item.activity not in ("", "active", "inactive"):
            c.add("activity", "INVALID_ENUM", f"activity value {item.activity.lstrip('?')} is not known (one of: "
                  "OFFICIAL_ACTIVITY_ACTIVE, OFFICIAL_ACTIVITY_INACTIVE; unspecified keeps the stored one)")
        appointments = _appointments(c, item.appointments, units)
        periods = review_periods(c, item.under_review_periods)
        violations.extend(c.violations)
        if not c.violations:
            if not item.activity:
                keep.add(official_id)
            result.append(Official(official_id=official_id, name=name, appointments=tuple(appointments),
                                   active=item.activity != "inactive",
                                   under_review_periods=periods))
    _reject_or_continue(violations)
    if validate_only:
        return UpsertCounts()
    return store.upsert_officials(result, keep_activity=frozenset(keep), idempotency=claim, recorded_by=actor)


def delete_official(store: Store, name: str, *, actor: str, idempotency_key: str = "") -> None:
    """Delete an official entered by mistake; FAILED_PRECONDITION once they were evaluated or lead an
    assignment (deactivate them instead), NOT_FOUND when there is none (a retry with the same key replays)."""
    official_id = parse_official_name(name)
    if violations := check_idempotency_key(idempotency_key):
        raise InvalidInput(violations)
    claim, replayed = (claim_key(store, idempotency_key, "DeleteOfficial", official_id) if idempotency_key
                       else (None, None))
    if replayed is not None:
        return
    try:
        store.delete_official(official_id, actor=actor, idempotency=claim)
    except OfficialInUse as in_use:
        raise FailedPrecondition(str(in_use)) from None
    except LookupError:
        raise NotFound(name, f"{name} does not exist (ListOfficials lists them)") from None


# ---- reads (each audited) ---------------------------------------------------------------------------------


def _not_readable(name: str) -> NotFound:
    # A reporter learns nothing about the people of other units: the same answer as for nobody.
    return NotFound(name, f"{name} does not exist, or is not an official of your units")


def get_official(store: Store, name: str, *, now: dt.datetime) -> Official:
    official_id = parse_official_name(name)
    found = store.get_officials([official_id]).get(official_id)
    readable = found is not None and may_read([a.unit_code for a in found.appointments])
    audit_read(store, method="GetOfficial", target=name, officials=[official_id] if readable else [], now=now)
    if found is None or not readable:
        raise _not_readable(name)
    return found


def _units_wanted(unit: str | None) -> frozenset[str] | None:
    """The units a listing may show: the filter's unit within the caller's readable units."""
    readable = readable_units()
    if unit is None:
        return readable
    code = unit.removeprefix("units/")
    if readable is not None and code not in readable:
        return frozenset()
    return frozenset({code})


def list_officials(store: Store, *, unit: str | None, active: bool | None, after: str | None, limit: int,
                   now: dt.datetime, filter_text: str) -> Page[Official]:
    units = _units_wanted(unit)
    page = (store.list_officials(unit_codes=sorted(units) if units is not None else None, active=active,
                                 after=after, limit=limit)
            if units is None or units else Page(items=[], next_cursor=None))
    audit_read(store, method="ListOfficials", target="officials", officials=[o.official_id for o in page.items],
               now=now, filter=filter_text)
    return page


def official_evaluation_name(period: str, official_id: str) -> str:
    return f"periods/{period}/officialEvaluations/{official_id}"


def parse_official_evaluation_name(value: str) -> tuple[str, str]:
    """(quarter, official id) from `periods/{quarter}/officialEvaluations/{official_id}`."""
    parts = value.split("/")
    if (len(parts) == 4 and parts[0] == "periods" and parts[2] == "officialEvaluations"
            and OFFICIAL_ID_PATTERN.match(parts[3])):
        try:
            return str(Quarter.parse(parts[1])), parts[3]
        except InvalidPeriod:
            pass
    what = "name is required" if not value else f"name {shown(value)} is not an official's evaluation"
    raise InvalidInput([Violation("name", f"{what}: write periods/2026-Q3/officialEvaluations/CB-00123",
                                  "REQUIRED" if not value else "INVALID_NAME")])


def get_official_evaluation(store: Store, name: str, *, revision: int, now: dt.datetime
                            ) -> OfficialEvaluationRecord:
    period, official_id = parse_official_evaluation_name(name)
    found = store.get_official_evaluation(official_id=official_id, period=period, revision=revision)
    readable = found is not None and may_read([found.unit_code])
    audit_read(store, method="GetOfficialEvaluation", target=name, officials=[official_id] if readable else [],
               now=now)
    if found is None or not readable:
        raise NotFound(name, f"{name} does not exist{' in revision ' + str(revision) if revision else ''}, or is "
                       "not of an official of your units (EvaluatePeriod evaluates officials with their units)")
    return found


def list_official_evaluations(store: Store, *, period: str, unit: str | None, flagged: bool | None,
                              after: str | None, limit: int, now: dt.datetime, filter_text: str
                              ) -> Page[OfficialEvaluationRecord]:
    units = _units_wanted(unit)
    page = (store.list_official_evaluations(period=period, unit_codes=sorted(units) if units is not None else None,
                                            flagged=flagged, after=after, limit=limit)
            if units is None or units else Page(items=[], next_cursor=None))
    audit_read(store, method="ListOfficialEvaluations", target=f"periods/{period}",
               officials=[e.official_id for e in page.items], now=now, filter=filter_text)
    return page


def list_official_recommendations(store: Store, *, period: str, unit: str | None, official: str | None,
                                  kind: str | None, flag: str | None, status: RecommendationStatus | None,
                                  after: str | None, limit: int, now: dt.datetime, filter_text: str
                                  ) -> Page[RecommendationRecord]:
    units = _units_wanted(unit)
    official_id = parse_official_name(official, "filter") if official is not None else None
    page = (store.list_official_recommendations(
        period=period, kind=kind, flag=flag, status=status, unit_codes=sorted(units) if units is not None else None,
        official_id=official_id, after=after, limit=limit) if units is None or units
        else Page(items=[], next_cursor=None))
    audit_read(store, method="ListOfficialRecommendations", target=f"periods/{period}",
               officials=[r.official_id for r in page.items], now=now, filter=filter_text)
    return page


def check_recommendation_readable(record: RecommendationRecord, *, store: Store, method: str, now: dt.datetime
                                  ) -> None:
    """For a recommendation about an official: refuse (PERMISSION_DENIED naming `personal.read`) a caller who
    may not read the person, and audit the read. A unit's recommendation passes as it is."""
    if not record.official_id:
        return
    caller = current_caller()
    if caller is not None and Permission.PERSONAL not in caller.permissions:
        raise PermissionDenied(
            f"this recommendation is about an official; reading it needs the permission "
            f"{Permission.PERSONAL.value} (granted to: {', '.join(roles_granting(Permission.PERSONAL))})")
    if not may_read([record.unit_code]):
        raise PermissionDenied(f"this recommendation is about an official of units/{record.unit_code}, which is "
                               "outside your scope")
    audit_read(store, method=method, target=f"periods/{record.period}/recommendations/{record.unit_code}~"
               f"{record.flag}~{record.official_id}", officials=[record.official_id], now=now)
