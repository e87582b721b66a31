"""Rankings within a block: by score, ties by timeliness, then code; unassessable units last, unranked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rankable:
    unit_code: str
    assessable: bool
    score: float | None
    timeliness: float


def rank(rows: Sequence[Rankable]) -> list[tuple[int, Rankable]]:
    """Return (rank, row) pairs: 1..n for assessable units in order, 0 for the rest (by code)."""
    ranked = sorted(
        (r for r in rows if r.assessable and r.score is not None),
        key=lambda r: (-(r.score or 0.0), -r.timeliness, r.unit_code),
    )
    unranked = sorted((r for r in rows if not (r.assessable and r.score is not None)), key=lambda r: r.unit_code)
    return [(i + 1, r) for i, r in enumerate(ranked)] + [(0, r) for r in unranked]
