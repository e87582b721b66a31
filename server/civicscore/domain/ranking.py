"""Rankings within a block: by unrounded score, ties by timeliness, then code; unassessable units last, unranked.

The score is never rounded here: two units 0.002 apart are ordered by score even when both show
the same 2-decimal score; the tie-breaks only decide between equal scores."""

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
