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
