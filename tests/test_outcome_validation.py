"""The two outcome validation passes agree: the lean one accepts exactly what the detailed one finds no fault in."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata

import pytest

from civicscore.ingest_outcomes import OutcomeInput, _check_outcome, _fast_outcomes
from civicscore.validation import HANOI, Checker

NOW = dt.datetime(2026, 11, 26, 4, 0, tzinfo=dt.UTC)
ASSIGNED = {"A1": dt.date(2026, 7, 1), "A2": dt.date(2026, 9, 15), "A3": dt.date(2026, 11, 26)}

GOOD = OutcomeInput("O-1", "assignments/A1", "completed", "2026-08-01", "accepted", 2,
                    dt.datetime(2026, 8, 2, 1, 0, tzinfo=dt.UTC), "tracker", "Đã xong")

# Each mutation replaces one field with a value that may or may not be valid.
MUTATIONS: dict[str, list[object]] = {
    "outcome_id": ["", "x" * 128, "x" * 129, "ok.id:1-2_3", "bad id", "bad\n", "Đ"],
    "assignment": ["", "assignments/", "assignments/A2", "assignments/A3", "assignments/NOPE", "A1", "units/A1"],
    "status": ["", "?9", "completed", "in_progress", "cancelled"],
    "completed_on": ["", "2026-08-01", "2026-06-30", "2026-13-01", "2026-8-1", "1999-12-31", "2026-11-27",
                     "2026-11-26", "2026-09-15", "2026-09-14"],
    "quality": ["", "?7", "accepted", "returned_for_rework"],
    "reminders": [-1, 0, 3, 1000, 1001],
    "reported_at": [None, dt.datetime(2026, 8, 2, 1, 0, tzinfo=dt.UTC),
                    dt.datetime(2026, 6, 30, 16, 59, tzinfo=dt.UTC),  # 2026-06-30 23:59 in Hanoi
                    dt.datetime(2026, 6, 30, 17, 0, tzinfo=dt.UTC),  # 2026-07-01 00:00 in Hanoi
                    NOW + dt.timedelta(minutes=4), NOW + dt.timedelta(minutes=6),
                    dt.datetime(2026, 7, 31, 23, 0, tzinfo=HANOI)],
    "reporting_system": ["", "   ", "s" * 100, "s" * 101, "hệ thống", "bad\x07", unicodedata.normalize("NFD", "hệ")],
    "note": ["", "n" * 4000, "n" * 4001, "line\nbreak\ttab", "bell\x07", unicodedata.normalize("NFD", "Đã xong")],
}


def _detailed_violations(items: list[OutcomeInput]) -> int:
    count = 0
    for index, item in enumerate(items):
        checker = Checker(f"outcomes[{index}]", index)
        _check_outcome(checker, item, ASSIGNED, NOW)
        count += len(checker.violations)
    return count


def test_the_good_outcome_is_valid() -> None:
    assert _detailed_violations([GOOD]) == 0
    assert _fast_outcomes([GOOD], ASSIGNED, NOW) is not None


@pytest.mark.parametrize("seed", range(6))
def test_lean_and_detailed_passes_agree_on_random_batches(seed: int) -> None:
    rng = random.Random(seed)
    accepted = rejected = 0
    for _ in range(800):
        item = GOOD
        for name in rng.sample(sorted(MUTATIONS), rng.randint(1, 3)):
            item = item._replace(**{name: rng.choice(MUTATIONS[name])})
        batch = [GOOD, item] if rng.random() < 0.5 else [item]
        lean = _fast_outcomes(batch, ASSIGNED, NOW)
        faults = _detailed_violations(batch)
        assert (lean is None) == (faults > 0), (item, faults)
        if lean is None:
            rejected += 1
        else:
            accepted += 1
            assert lean[-1].note == unicodedata.normalize("NFC", item.note)
    assert accepted > 50 and rejected > 50  # both sides of the property were exercised


# ---- the one-pass decoding of SubmitOutcomes (api/outcome_wire.py) agrees with the long way ----------------

WIRE_MUTATIONS: dict[str, list[object]] = {
    "outcome_id": ["", "x" * 128, "x" * 129, "ok.id:1-2_3", "bad id", "Đ", "two\nlines", "end\n", "\n"],
    "assignment": ["", "assignments/", "assignments/A2", "assignments/A3", "assignments/NOPE", "A1", "units/A1",
                   "assignments/a b", "assignments/" + "y" * 129, "assignments/A1\nassignments/A2", "assignments/A1\n"],
    "status": [0, 1, 2, 3, 9],
    "completed_on": ["", "2026-08-01", "2026-06-30", "2026-13-01", "2026-8-1", "1999-12-31", "2101-01-01",
                     "2026-11-27", "2026-11-26", "2026-09-15", "2026-09-14"],
    "quality": [0, 1, 2, 7],
    "reminders": [-1, 0, 3, 1000, 1001],
    "reported_at": [None, (1785632400, 0), (1785632400, 999_999_999), (1785632400, 1_000_000_000),
                    (1785632400, -1), (1782838740, 0), (1782838800, 0), (946659599, 0), (4133955600, 0),
                    (int(NOW.timestamp()) + 240, 0), (int(NOW.timestamp()) + 360, 0), (-62135596801, 0)],
    "reporting_system": ["", "   ", "s" * 100, "s" * 101, "hệ thống", "bad\x07", "rtl\u202e",
                         unicodedata.normalize("NFD", "hệ")],
    "note": ["", "   ", "n" * 4000, "n" * 4001, "line\nbreak\ttab", "bell\x07", "zero\u200bwidth",
             unicodedata.normalize("NFD", "Đã xong")],
    "name": ["", "outcomes/whatever"],
}


def _wire_outcome(rng: random.Random) -> object:
    from civicscore_api.v1 import outcomes_pb2

    fields: dict[str, object] = {"outcome_id": "O-1", "assignment": "assignments/A1", "status": 1,
                                 "completed_on": "2026-08-01", "quality": 1, "reminders": 2,
                                 "reported_at": (1785632400, 0), "reporting_system": "tracker", "note": "Đã xong"}
    for name in rng.sample(sorted(WIRE_MUTATIONS), rng.randint(1, 3)):
        fields[name] = rng.choice(WIRE_MUTATIONS[name])
    stamp = fields.pop("reported_at")
    message = outcomes_pb2.Outcome(**fields)  # type: ignore[arg-type]
    if stamp is not None:
        message.reported_at.seconds, message.reported_at.nanos = stamp  # type: ignore[misc]
    return message


@pytest.mark.parametrize("seed", range(4))
def test_the_one_pass_decoding_agrees_with_the_long_way(seed: int) -> None:
    from civicscore.api import domains
    from civicscore.api.convert import outcome_input
    from civicscore.api.outcome_wire import prepared_outcomes
    from civicscore.ingest_outcomes import _against_assignments
    from civicscore_api.v1 import outcomes_pb2

    good = _wire_outcome(random.Random(-1))
    good.ClearField("name")  # type: ignore[attr-defined]
    rng = random.Random(seed)
    early = {name: dt.date(2000, 1, 1)
             for name in ("A1", "A2", "A3", "NOPE", "a b", "y" * 129, "A1\nassignments/A2", "A1\n")}
    counts = {"accepted": 0, "refused": 0}
    for _ in range(600):
        batch = [good, _wire_outcome(rng)] if rng.random() < 0.5 else [_wire_outcome(rng)]
        request = outcomes_pb2.SubmitOutcomesRequest(outcomes=batch)  # type: ignore[arg-type]
        walked = domains.check_message(request)
        wire = prepared_outcomes(request.outcomes, NOW)
        for assigned in (early, ASSIGNED):
            lean = None if walked else _fast_outcomes([outcome_input(m) for m in request.outcomes], assigned, NOW)
            accepted = wire is not None and _against_assignments(wire, assigned)
            assert accepted == (lean is not None), (batch[-1], walked)
            if accepted:
                assert wire == lean
        counts["accepted" if wire is not None else "refused"] += 1
    assert min(counts.values()) > 50, counts  # both sides of the property were exercised
