"""SubmitOutcomes in one pass: from the wire's Outcome messages straight to the domain outcomes.

The ingest hot path. A batch normally passes three loops over its items: the
request-check interceptor's domain walk, the decoding into OutcomeInput, and
the use case's lean validation into Outcome. `prepared_outcomes` does all three
in one loop that reads each field once and builds each Outcome directly, with
every value that batches repeat (times, dates, system names, notes) checked
and converted once per batch.

It only ever says "valid" or "not sure": it is at least as strict as the
domain walk (`api/domains.py`, the options in outcomes.proto) followed by the
lean pass (`ingest_outcomes._fast_outcomes`) without the checks that need the
stored assignments, which `ingest_outcomes.submit_prepared_outcomes` makes in
the write transaction. On anything else it returns None, and the request goes
the long way (walked, decoded, validated with a message per violation), so
every error a caller sees is the one the long way gives. A property test feeds
both ways the same random batches.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from civicscore.api.convert import QUALITIES, STATUSES
from civicscore.domain.model import Outcome, OutcomeStatus
from civicscore.ingest_outcomes import MAX_REMINDERS
from civicscore.validation import (
    FIRST_INSTANT,
    FORBIDDEN_TEXT,
    FUTURE_TOLERANCE,
    LAST_INSTANT,
    MAX_BATCH,
    hanoi_today,
    nfc,
    parse_date,
)
from civicscore_api.v1 import outcomes_pb2

_PREFIX = "assignments/"
# A batch's outcome ids, and its assignment names, each followed by a line break: one match a batch (`_all_match`).
# An id is as validation.ID_PATTERN says.
_IDS = re.compile(r"(?:[A-Za-z0-9._:-]{1,128}\n)*")
_ASSIGNMENTS = re.compile(r"(?:assignments/[A-Za-z0-9._:-]{1,128}\n)*")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TO_HANOI = dt.timedelta(hours=7)
_FIRST_SECOND = int(FIRST_INSTANT.timestamp())
_END_SECOND = int(LAST_INSTANT.timestamp())  # exclusive
assert _FIRST_SECOND > 0, "an unset Timestamp, (0, 0), must be outside the domain: it is not tested for apart"
_SYSTEM_CHARS, _NOTE_CHARS, _KEY_CHARS = 100, 4000, 128
_COMPLETED = OutcomeStatus.COMPLETED


def _text(raw: str, limit: int, *, required: bool) -> str | None:
    """`raw` in NFC when both it and its NFC form are within `limit` characters with no forbidden character
    (and, if `required`, not blank); else None."""
    if len(raw) > limit or FORBIDDEN_TEXT.search(raw) is not None:
        return None
    text = nfc(raw)
    if not text or text.isspace():
        return None if required else text
    if len(text) > limit or FORBIDDEN_TEXT.search(text) is not None:
        return None
    return text


def _instant(key: tuple[int, int], latest: dt.datetime) -> tuple[dt.datetime, dt.date] | None:
    """A Timestamp's (seconds, nanos) as (the instant, its day in Hanoi) when within its domain and not after
    `latest`; else None."""
    seconds, nanos = key
    if not (0 <= nanos <= 999_999_999 and _FIRST_SECOND <= seconds < _END_SECOND):
        return None
    instant = _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    return (instant, (instant + _TO_HANOI).date()) if instant <= latest else None


def key_within_domain(key: str) -> bool:
    """The request's idempotency key passes its domain (text of at most 128 characters)."""
    return len(key) <= _KEY_CHARS and FORBIDDEN_TEXT.search(key) is None


def prepared_outcomes(messages: Sequence[outcomes_pb2.Outcome], now: dt.datetime) -> list[Outcome] | None:
    """The batch's domain outcomes when every item is certainly valid but for the checks against the stored
    assignments; None when not sure (see the module's docstring)."""
    if not 0 < len(messages) <= MAX_BATCH:
        return None
    today = hanoi_today(now)
    latest = now + FUTURE_TOLERANCE
    times: dict[tuple[int, int], tuple[dt.datetime, dt.date] | None] = {}
    systems: dict[str, str | None] = {}
    notes: dict[str, str | None] = {}
    out: list[Outcome] = []
    append = out.append
    ids: list[str] = []
    references: list[str] = []
    for m in messages:
        outcome_id = m.outcome_id
        reference = m.assignment
        ids.append(outcome_id)
        references.append(reference)
        status = STATUSES.get(m.status)
        reminders = m.reminders
        if status is None or not 0 <= reminders <= MAX_REMINDERS:
            return None
        stamp = m.reported_at
        key = (stamp.seconds, stamp.nanos)
        when = times[key] if key in times else times.setdefault(key, _instant(key, latest))
        if when is None:
            return None
        reported_at, reported_on = when
        completed_text, quality_number = m.completed_on, m.quality
        if status is _COMPLETED:
            completed_on = parse_date(completed_text)
            if completed_on is None or completed_on > today or completed_on > reported_on:
                return None
            quality = QUALITIES.get(quality_number)
            if quality is None and quality_number:
                return None
        elif completed_text or quality_number:
            return None
        else:
            completed_on = quality = None
        raw_system, raw_note = m.reporting_system, m.note
        system = systems[raw_system] if raw_system in systems else systems.setdefault(
            raw_system, _text(raw_system, _SYSTEM_CHARS, required=True))
        note = notes[raw_note] if raw_note in notes else notes.setdefault(
            raw_note, _text(raw_note, _NOTE_CHARS, required=False))
        if system is None or note is None:
            return None
        append(Outcome(outcome_id, reference[len(_PREFIX):], status, reported_at, system, completed_on, quality,
                       reminders, note))
    return out if _all_match(_IDS, ids) and _all_match(_ASSIGNMENTS, references) else None


def _all_match(items: re.Pattern[str], values: list[str]) -> bool:
    """Whether `items` (a pattern of items, each ending with a line break) matches `values` one for one: one
    regular-expression pass over them all, a line break after each; a value holding a line break fails the count."""
    joined = "\n".join(values) + "\n"
    return joined.count("\n") == len(values) and items.fullmatch(joined) is not None
