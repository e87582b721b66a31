"""What-if: how a candidate ruleset would change a quarter's results, unit by unit and in total.

Pure (no I/O): the caller evaluates the same facts twice, once with the ruleset in force for the
quarter (`before`) and once with the candidate (`after`), and `compare` lines the results up.

A unit *changes* when its grade, its displayed score (2 decimals, as policy staff see it) or its
set of flags differs. Totals always count every unit evaluated; `changed_only` only trims the
per-unit list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from civicscore.domain.model import FlagResult, Unit, UnitEvaluation
from civicscore.domain.scoring import display_score

# Commendations first, then criticisms, then escalations; within a kind, the lower level first (praise before
# commendation_candidate, reminder before criticism before explanation_required).
_KIND_ORDER = {"commendation": 0, "criticism": 1, "escalation": 2}


@dataclass(frozen=True)
class UnitComparison:
    """One unit before and after the candidate; scores are display strings, "" when there is no score."""

    unit_code: str
    name_vi: str
    block: str
    score_before: str
    score_after: str
    grade_before: str
    grade_after: str
    flags_before: tuple[str, ...]
    flags_after: tuple[str, ...]
    flags_gained: tuple[str, ...]
    flags_lost: tuple[str, ...]
    score_delta: float  # after minus before, of the displayed scores; 0 when either has no score

    @property
    def grade_changed(self) -> bool:
        return self.grade_before != self.grade_after

    @property
    def score_changed(self) -> bool:
        """Whether the displayed score differs (including a score that appears or disappears)."""
        return self.score_before != self.score_after

    @property
    def flags_changed(self) -> bool:
        return bool(self.flags_gained or self.flags_lost)

    @property
    def changed(self) -> bool:
        return self.grade_changed or self.score_changed or self.flags_changed


@dataclass(frozen=True)
class FlagChange:
    """How many units gain and lose one flag."""

    flag: str
    added: int
    removed: int


@dataclass(frozen=True)
class GradeChange:
    """How many units move from one grade to another (only moves that happen are listed)."""

    grade_before: str
    grade_after: str
    units: int


@dataclass(frozen=True)
class Simulation:
    """The comparison of a whole quarter; `units` is ordered by unit code."""

    units_evaluated: int
    units_changing: int  # score, grade or flags change (counted whether or not `units` lists only those)
    units_changing_grade: int
    units_changing_score: int
    flags_added: int
    flags_removed: int
    flag_changes: tuple[FlagChange, ...]
    grade_changes: tuple[GradeChange, ...]
    units: tuple[UnitComparison, ...]


def compare(
    units: Mapping[str, Unit],
    before: Sequence[UnitEvaluation],
    after: Sequence[UnitEvaluation],
    *,
    changed_only: bool,
    grade_order: Sequence[str] = (),
) -> Simulation:
    """Compare two evaluations of the same units (same order): `before` with the rules in force, `after`
    with the candidate.

    `units` gives each unit's Vietnamese name and block (a unit missing from it is shown by code only).
    `grade_order` lists grade codes from the best down (e.g. the candidate's grade bands, then the
    baseline's); grade transitions are listed in that order. Without it the order is read from the
    results: grades of higher scores first, grades of units that cannot be assessed last.
    Raises ValueError when the two sequences do not hold the same units in the same order.
    """
    if len(before) != len(after):
        raise ValueError(f"before has {len(before)} results and after has {len(after)}; they must match")
    rows: list[UnitComparison] = []
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    moves: Counter[tuple[str, str]] = Counter()
    flag_rank: dict[str, tuple[int, int, str]] = {}
    for old, new in zip(before, after, strict=True):
        if old.unit_code != new.unit_code:
            raise ValueError(f"results out of step: {old.unit_code!r} before, {new.unit_code!r} after")
        for flag in (*old.flags, *new.flags):
            flag_rank.setdefault(flag.flag, _flag_key(flag))
        row = _unit_comparison(units.get(old.unit_code), old, new)
        added.update(row.flags_gained)
        removed.update(row.flags_lost)
        if row.grade_changed:
            moves[(row.grade_before, row.grade_after)] += 1
        rows.append(row)
    rows.sort(key=lambda row: row.unit_code)
    grade_rank = _grade_rank(grade_order, [*before, *after])
    return Simulation(
        units_evaluated=len(rows),
        units_changing=sum(row.changed for row in rows),
        units_changing_grade=sum(row.grade_changed for row in rows),
        units_changing_score=sum(row.score_changed for row in rows),
        flags_added=sum(added.values()),
        flags_removed=sum(removed.values()),
        flag_changes=tuple(
            FlagChange(flag, added[flag], removed[flag])
            for flag in sorted(set(added) | set(removed), key=lambda code: flag_rank[code])
        ),
        grade_changes=tuple(
            GradeChange(grade_before, grade_after, count)
            for (grade_before, grade_after), count in sorted(
                moves.items(), key=lambda item: (grade_rank(item[0][0]), grade_rank(item[0][1]))
            )
        ),
        units=tuple(row for row in rows if row.changed or not changed_only),
    )


def score_text(score: float | None) -> str:
    """The score as shown: 2 decimals, half away from zero; "" when there is no score."""
    return "" if score is None else f"{display_score(score):.2f}"


def _unit_comparison(unit: Unit | None, old: UnitEvaluation, new: UnitEvaluation) -> UnitComparison:
    flags_before = _flag_codes(old.flags)
    flags_after = _flag_codes(new.flags)
    delta = 0.0
    if old.score is not None and new.score is not None:
        delta = display_score(display_score(new.score) - display_score(old.score)) + 0.0  # never -0.0
    return UnitComparison(
        unit_code=old.unit_code,
        name_vi=unit.name_vi if unit else "",
        block=unit.block if unit else "",
        score_before=score_text(old.score),
        score_after=score_text(new.score),
        grade_before=old.grade,
        grade_after=new.grade,
        flags_before=flags_before,
        flags_after=flags_after,
        flags_gained=tuple(flag for flag in flags_after if flag not in flags_before),
        flags_lost=tuple(flag for flag in flags_before if flag not in flags_after),
        score_delta=delta,
    )


def _flag_codes(flags: Iterable[FlagResult]) -> tuple[str, ...]:
    """Flag codes in the engine's order, each once."""
    return tuple(dict.fromkeys(flag.flag for flag in flags))


def _flag_key(flag: FlagResult) -> tuple[int, int, str]:
    return (_KIND_ORDER.get(flag.kind, len(_KIND_ORDER)), flag.level, flag.flag)


def _grade_rank(order: Sequence[str], results: Iterable[UnitEvaluation]) -> _GradeRank:
    """A sort key for grade codes: the given order, else inferred from the scores that reached each grade."""
    best: dict[str, float] = {}
    unassessed: set[str] = set()
    for result in results:
        if result.assessable and result.score is not None:
            best[result.grade] = max(best.get(result.grade, result.score), result.score)
        else:
            unassessed.add(result.grade)
    return _GradeRank({code: index for index, code in enumerate(dict.fromkeys(order))}, best, unassessed)


@dataclass(frozen=True)
class _GradeRank:
    given: dict[str, int]
    best: dict[str, float]
    unassessed: set[str]

    def __call__(self, grade: str) -> tuple[int, float, str]:
        if grade in self.given:
            return (0, float(self.given[grade]), grade)
        if grade in self.best:  # grades of higher scores first
            return (1, -self.best[grade], grade)
        if grade in self.unassessed:
            return (2, 0.0, grade)
        return (3, 0.0, grade)
