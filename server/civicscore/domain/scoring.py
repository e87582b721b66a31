"""The score arithmetic of the default ruleset, with every number a parameter.

The rule files decide which contributions count (which DX indicators, which
overdue assignments cost points); this module only does the sums, so the
numbers live in `rules/*.yaml` and the formulas are tested in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from civicscore.domain.model import TaskCounts
from civicscore.domain.text import round_half_away


@dataclass(frozen=True)
class ScoringParameters:
    """Weights and limits read from the rule files (DEFAULT-RULES.md gives the defaults)."""

    completion_weight: float
    timeliness_weight: float
    quality_weight: float
    late_credit: float
    rework_penalty: float
    task_points: float
    dx_points: float
    penalty_cap: float

    @property
    def max_score(self) -> float:
        """Points a unit can reach: task and DX points together."""
        return self.task_points + self.dx_points


@dataclass(frozen=True)
class TaskRates:
    """Task-result components of one unit, each between 0 and 1."""

    completion: float
    timeliness: float
    quality: float
    on_time_rate: float
    task_result: float


@dataclass(frozen=True)
class ScoreBreakdown:
    """How a score was reached; `score` is unrounded (grades and flags use it)."""

    task_result: float
    dx_result: float | None
    task_points: float
    dx_points: float
    penalty: float
    score: float


def task_rates(counts: TaskCounts, params: ScoringParameters) -> TaskRates | None:
    """Completion, timeliness, quality and their weighted task result; None when nothing was due."""
    if counts.due <= 0:
        return None
    completion = counts.completed / counts.due
    timeliness = (counts.on_time + params.late_credit * counts.late) / counts.due
    quality = max(0.0, 1.0 - params.rework_penalty * counts.reworked / max(counts.completed, 1))
    task_result = (
        params.completion_weight * completion + params.timeliness_weight * timeliness + params.quality_weight * quality
    )
    return TaskRates(completion, timeliness, quality, counts.on_time / counts.due, task_result)


def attainment(value: float, target: float) -> float:
    """How far a value reaches its target, capped at 1 (target must be positive)."""
    return min(1.0, value / target)


def dx_result(contributions: Iterable[tuple[float, float]]) -> float | None:
    """Weighted mean of (weight, attainment) pairs of the counted indicators; None without any."""
    pairs = list(contributions)
    total_weight = sum(weight for weight, _ in pairs)
    if not pairs or total_weight <= 0:
        return None
    return sum(weight * att for weight, att in pairs) / total_weight


def overdue_penalty(points: Iterable[float], params: ScoringParameters) -> float:
    """Sum of the per-assignment penalties, at most `penalty_cap`."""
    return float(min(params.penalty_cap, sum(points)))


def combine(rates: TaskRates, dx: float | None, penalty: float, params: ScoringParameters) -> ScoreBreakdown:
    """Task points plus DX points (all points to tasks without DX), minus penalty, floored at 0."""
    if dx is None:
        task_points = params.max_score * rates.task_result
        dx_points = 0.0
    else:
        task_points = params.task_points * rates.task_result
        dx_points = params.dx_points * dx
    score = max(0.0, task_points + dx_points - penalty)
    return ScoreBreakdown(rates.task_result, dx, task_points, dx_points, penalty, score)


def display_score(score: float) -> float:
    """The score as shown to people: 2 decimals, half away from zero. Only for display: evaluations
    store, rank on and return the unrounded score."""
    return round_half_away(score, 2)
