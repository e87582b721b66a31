"""Explain one evaluation: each indicator's share of the score and the margins that would flip it.

Pure: no I/O and no gRPC; the rules engine is passed in. What an explanation holds:

- **contributions**: the evaluation's counted indicators (the three task components and the
  DX indicators), each with its points, the most it could give under the ruleset's weights
  for this unit, and its share of the score before penalties; largest first.
- **margins**: for the grade (next grade up, next grade down) and for every flag of the
  ruleset (raised: what would remove it; not raised: what would raise it), the smallest
  change of the unit's facts that flips it.

Margins come from the rules themselves: nothing here re-implements a rule. A *lever* is a
family of changes to the facts indexed by an integer k (always consistent facts, see
`check_facts`); the perturbed facts are evaluated by the engine in a few batch calls and
the smallest k that flips each subject is kept. The levers, in the order that breaks ties:

    for the better (raise the grade, remove a criticism flag, earn a commendation flag)
      tasks_due_on_time  k more assignments due and completed on time; only for units that
                         are not assessable (too few due), where it is the way to a grade
      tasks_on_time      k more due tasks completed on time: late completions first, then
                         tasks not completed (those open and overdue since this quarter
                         leave the overdue list, the most recently due first)
      overdue_closed     k open overdue assignments completed (late): they leave the
                         overdue list and, if due this quarter, count as completed late.
                         One lever per order of closing: most reminders first, then for
                         each flag raised by overdue rules, the assignments that raised it
      rework_avoided     k fewer completions returned for rework
    for the worse (lower the grade, raise a criticism flag, lose a commendation flag)
      tasks_late         k tasks completed late instead of on time
      tasks_reworked     k more completions returned for rework
      reminders_added    k more reminders on the open overdue assignment with the most
                         (bounded by the reminder thresholds the ruleset's rules compare to)
    both ways, one per measured DX indicator (`indicator:<code>`)
      the value raised (or lowered) in steps of one (a count, when the numerator and a
      denominator of at most 1,000 are whole numbers) or of 0.1 percentage point.

Task levers and indicator levers are not measured in the same unit (tasks against a value),
so a subject gets at most one margin of each group: the task lever with the smallest k and
the indicator whose value needs the smallest change (ties: the lever listed first).

Search: a k-ary search, batched over every lever and subject. The first engine call holds,
for each lever, up to GRID (32) values of k spread over 1..limit, the limit always among
them (fewer, down to MIN_GRID, for units with many open overdue assignments and measurements,
whose evaluations cost more); each later call looks between the last k that did not flip
and the first that did, until they are adjacent. A margin of amount k therefore always flips its subject at k and does
not at k - 1 (for an indicator: one step below). It is the smallest k when the subject
flips monotonically with k, which holds for the default rules (all levers move the score
and the rates one way). Limits: the number of tasks the lever can move, the indicator's
steps to 0% or 100% (at most 1,000). A unit with 200 due tasks needs one to three calls
(0.1-0.3 s on two workers; with 100 open overdue assignments and seven indicators, ~0.8 s).

Units that are not assessable have a grade margin only through `tasks_due_on_time`
(direction `improve_grade`, from `not_assessable` to the grade it would then get); the
other margins are searched as for any unit (open overdue rules still apply to them).

When the facts given differ from those the evaluation was made with (`inputs_changed`),
the margins are those of the facts given; the caller says so.

`extended` lists the facts' assignments whose due date an approved extension moved (as of the
quarter's end): their original and effective dates, which the counts and overdue list used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from civicscore.domain.canonical import digest_of
from civicscore.domain.model import (
    ExtendedTask,
    MeasurementFact,
    OverdueTask,
    TaskCounts,
    UnitEvaluation,
    UnitFacts,
)
from civicscore.domain.periods import Quarter
from civicscore.domain.text import Language, format_percent
from civicscore.engine.port import RulesEngine
from civicscore.ruleset import FlagDefinition, GradeDefinition, Ruleset
from civicscore.ruleset.fields import OVERDUE, UNIT

# Values of k per lever per engine call: GRID, down to MIN_GRID for units with many facts (open overdue
# assignments, measurements), so that a call asserts about ROUND_BUDGET facts in the engine.
GRID = 32
MIN_GRID = 8
ROUND_BUDGET = 4000
# Steps of an indicator's value between 0% and 100% when it is not a count.
INDICATOR_STEPS = 1000
# A count-valued indicator is moved one by one up to this denominator.
MAX_COUNT_STEPS = 1000
# Safety bound on the refining calls (ceil(log_32(limit)) is enough).
MAX_ROUNDS = 8

IMPROVE_GRADE = "improve_grade"
LOWER_GRADE = "lower_grade"
LOSE_FLAG = "lose_flag"
GAIN_FLAG = "gain_flag"
RAISED = "raised"
NOT_RAISED = "not_raised"
GRADE_SUBJECT = "grade"
INDICATOR_LEVER_PREFIX = "indicator:"

Sense = Literal["better", "worse"]


@dataclass(frozen=True)
class Contribution:
    """How much one counted indicator adds to the score; `share` is of the score before penalties."""

    indicator: str
    name_vi: str
    name_en: str
    points: float
    max_points: float
    share: float


@dataclass(frozen=True)
class Margin:
    """The smallest change found that flips a subject (the grade or a flag).

    `lever` names the change (`tasks_on_time`, `indicator:dx.satisfaction`, ...); `amount` is
    a number of tasks or reminders, or the indicator's new value (a fraction). `assignments`
    lists the open overdue assignments the change acts on, when it acts on named ones.
    """

    subject: str
    direction: str
    current: str
    would_become: str
    lever: str
    amount: float
    summary_vi: str
    summary_en: str
    assignments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """An evaluation with its contributions and margins; see the module docstring."""

    evaluation: UnitEvaluation
    contributions: tuple[Contribution, ...]
    penalty: float
    margins: tuple[Margin, ...]
    inputs_changed: bool
    next_grade: str  # the next grade up from the evaluation's grade, "" when none
    next_grade_min_score: float | None
    extended: tuple[ExtendedTask, ...] = ()  # assignments whose effective due date is not their own


def explain(ruleset: Ruleset, engine: RulesEngine, facts: UnitFacts, evaluation: UnitEvaluation) -> Explanation:
    """Explain `evaluation` (of `facts`' unit and quarter); the margins are those of `facts`.

    Raises ValueError when the facts are of another unit or quarter; engine errors pass through.
    """
    if (facts.unit_code, facts.period) != (evaluation.unit_code, evaluation.period):
        raise ValueError(
            f"facts of {facts.unit_code} {facts.period} cannot explain the evaluation of "
            f"{evaluation.unit_code} {evaluation.period}"
        )
    inputs_changed = digest_of(facts) != evaluation.inputs_digest
    if inputs_changed or evaluation.ruleset_digest != engine.ruleset_digest:
        baseline = engine.evaluate([facts])[0]
    else:  # the engine gives this very evaluation for these facts
        baseline = evaluation
    next_grade = _next_better(ruleset, evaluation)
    return Explanation(
        evaluation=evaluation,
        contributions=contributions(ruleset, evaluation),
        penalty=evaluation.penalty,
        margins=_margins(ruleset, engine, facts, baseline),
        inputs_changed=inputs_changed,
        next_grade=next_grade.grade if next_grade else "",
        next_grade_min_score=next_grade.min_score if next_grade else None,
        extended=facts.extended,
    )


# ---- contributions ----------------------------------------------------------


def contributions(ruleset: Ruleset, evaluation: UnitEvaluation) -> tuple[Contribution, ...]:
    """The counted indicators' points, largest first; the points add up to the score before penalties."""
    dx_codes = ruleset.indicator_codes
    counted = [i for i in evaluation.indicators if i.counted]
    dx_weight = sum(i.weight for i in counted if i.indicator in dx_codes)
    params = ruleset.scoring
    task_max = params.task_points if dx_weight > 0 else params.max_score
    total = sum(i.points for i in counted)
    items = [
        Contribution(
            indicator=i.indicator,
            name_vi=i.name_vi,
            name_en=i.name_en,
            points=i.points,
            max_points=params.dx_points * i.weight / dx_weight if i.indicator in dx_codes else task_max * i.weight,
            share=i.points / total if total > 0 else 0.0,
        )
        for i in counted
    ]
    return tuple(sorted(items, key=lambda c: -c.points))


def _score_bands(ruleset: Ruleset) -> list[GradeDefinition]:
    return [g for g in ruleset.grades if g.min_score is not None]


def _next_better(ruleset: Ruleset, evaluation: UnitEvaluation) -> GradeDefinition | None:
    bands = _score_bands(ruleset)
    codes = [g.grade for g in bands]
    if not evaluation.assessable or evaluation.grade not in codes:
        return None
    rank = codes.index(evaluation.grade)
    return bands[rank - 1] if rank > 0 else None


# ---- levers -----------------------------------------------------------------


@dataclass(frozen=True)
class _Lever:
    """A family of consistent changes of the facts, indexed by k = 1..limit."""

    code: str
    sense: Sense
    indicator: bool  # amounts are an indicator's values, not counts
    limit: int
    perturb: Callable[[int], UnitFacts]
    amount: Callable[[int], float]
    phrase: Callable[[int, Language], str]
    assignments: Callable[[int], tuple[str, ...]] = lambda _k: ()


def _plural(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def _ids_text(ids: Sequence[str], lang: Language) -> str:
    shown = ", ".join(ids[:5])
    if len(ids) > 5:
        shown += f" và {len(ids) - 5} nhiệm vụ khác" if lang == "vi" else f" and {len(ids) - 5} more"
    return shown


def _with_counts(facts: UnitFacts, **changes: int) -> TaskCounts:
    return dataclasses.replace(facts.counts, **changes)


def _thresholds(ruleset: Ruleset, fact: str, field: str) -> list[float]:
    """The numbers the ruleset's rules on `fact` facts compare `field` with."""
    return [
        float(test.value)
        for rule in ruleset.rules
        if rule.fact == fact
        for branch in rule.branches
        for test in branch
        if test.field == field and isinstance(test.value, (int, float)) and not isinstance(test.value, bool)
    ]


def _by_escalation(task: OverdueTask) -> tuple[int, int, str]:
    """Most reminders first, then longest overdue, then id."""
    return (-task.reminders, -task.days_overdue, task.assignment_id)


def _levers(ruleset: Ruleset, facts: UnitFacts, baseline: UnitEvaluation) -> list[_Lever]:
    """Every lever that applies to these facts, in tie-breaking order."""
    quarter_start = Quarter.parse(facts.period).start
    levers: list[_Lever] = []
    if not baseline.assessable:
        levers.extend(_due_levers(ruleset, facts))
    levers.extend(_on_time_levers(facts, quarter_start))
    levers.extend(_overdue_levers(ruleset, facts, baseline, quarter_start))
    levers.extend(_rework_levers(facts))
    levers.extend(_reminder_levers(ruleset, facts))
    levers.extend(_indicator_levers(ruleset, facts))
    return levers


def _due_levers(ruleset: Ruleset, facts: UnitFacts) -> list[_Lever]:
    c = facts.counts
    wanted = max([float(ruleset.min_due), *_thresholds(ruleset, UNIT, "due")])
    limit = max(1, math.floor(wanted) + 1 - c.due)

    def perturb(k: int) -> UnitFacts:
        counts = _with_counts(facts, due=c.due + k, completed=c.completed + k, on_time=c.on_time + k)
        return dataclasses.replace(facts, counts=counts)

    def phrase(k: int, lang: Language) -> str:
        if lang == "vi":
            return f"Thêm {k} nhiệm vụ đến hạn trong quý và hoàn thành đúng hạn"
        return f"{_plural(k, 'more assignment', 'more assignments')} due in the quarter and completed on time"

    return [_Lever("tasks_due_on_time", "better", False, limit, perturb, float, phrase)]


def _on_time_levers(facts: UnitFacts, quarter_start: dt.date) -> list[_Lever]:
    c = facts.counts
    levers: list[_Lever] = []
    # Open tasks of this quarter completed on time are no longer overdue: the most recently due first.
    closable = sorted(
        (t for t in facts.overdue if t.due_on >= quarter_start),
        key=lambda t: (t.days_overdue, t.reminders, t.assignment_id),
    )
    open_due = c.due - c.completed
    if c.late + open_due > 0:

        def closed(k: int) -> tuple[str, ...]:
            from_open = max(0, k - c.late)
            return tuple(t.assignment_id for t in closable[:from_open])

        def perturb(k: int) -> UnitFacts:
            from_late = min(k, c.late)
            from_open = k - from_late
            gone = set(closed(k))
            counts = _with_counts(facts, completed=c.completed + from_open, on_time=c.on_time + k,
                                  late=c.late - from_late)
            overdue = tuple(t for t in facts.overdue if t.assignment_id not in gone)
            return dataclasses.replace(facts, counts=counts, overdue=overdue)

        def phrase(k: int, lang: Language) -> str:
            ids = closed(k)
            if lang == "vi":
                among = f" (trong đó có {len(ids)} nhiệm vụ đang quá hạn: {_ids_text(ids, lang)})" if ids else ""
                return f"Thêm {k} nhiệm vụ hoàn thành đúng hạn{among}"
            among = f" (including {len(ids)} open overdue: {_ids_text(ids, lang)})" if ids else ""
            return f"{_plural(k, 'more task', 'more tasks')} completed on time{among}"

        levers.append(_Lever("tasks_on_time", "better", False, c.late + open_due, perturb, float, phrase, closed))
    if c.on_time > 0:

        def perturb_late(k: int) -> UnitFacts:
            return dataclasses.replace(facts, counts=_with_counts(facts, on_time=c.on_time - k, late=c.late + k))

        def phrase_late(k: int, lang: Language) -> str:
            if lang == "vi":
                return f"Có thêm {k} nhiệm vụ hoàn thành trễ hạn thay vì đúng hạn"
            return f"{_plural(k, 'task', 'tasks')} completed late instead of on time"

        levers.append(_Lever("tasks_late", "worse", False, c.on_time, perturb_late, float, phrase_late))
    return levers


def _overdue_levers(
    ruleset: Ruleset, facts: UnitFacts, baseline: UnitEvaluation, quarter_start: dt.date
) -> list[_Lever]:
    if not facts.overdue:
        return []
    default = sorted(facts.overdue, key=_by_escalation)
    orders = [default]
    present = {t.assignment_id for t in facts.overdue}
    for flag in ruleset.flags:  # the assignments whose rules raised the flag, first
        raising = {
            r.fact.removeprefix("assignment ")
            for r in baseline.fired_rules
            if r.flag == flag.flag and r.fact.startswith("assignment ")
        } & present
        order = sorted(default, key=lambda t: t.assignment_id not in raising)  # stable: escalation order kept
        if raising and order not in orders:
            orders.append(order)
    c = facts.counts
    return [_closing_lever(facts, order, c, quarter_start) for order in orders]


def _closing_lever(facts: UnitFacts, order: list[OverdueTask], c: TaskCounts, quarter_start: dt.date) -> _Lever:
    def closed(k: int) -> tuple[str, ...]:
        return tuple(t.assignment_id for t in order[:k])

    def perturb(k: int) -> UnitFacts:
        gone = set(closed(k))
        this_quarter = sum(1 for t in order[:k] if t.due_on >= quarter_start)
        late = min(this_quarter, c.due - c.completed)
        counts = _with_counts(facts, completed=c.completed + late, late=c.late + late)
        overdue = tuple(t for t in facts.overdue if t.assignment_id not in gone)
        return dataclasses.replace(facts, counts=counts, overdue=overdue)

    def phrase(k: int, lang: Language) -> str:
        ids = _ids_text(closed(k), lang)
        if lang == "vi":
            return f"Hoàn thành {k} nhiệm vụ đang quá hạn ({ids})"
        return f"Completing {_plural(k, 'open overdue assignment', 'open overdue assignments')} ({ids})"

    return _Lever("overdue_closed", "better", False, len(order), perturb, float, phrase, closed)


def _rework_levers(facts: UnitFacts) -> list[_Lever]:
    c = facts.counts
    levers: list[_Lever] = []
    if c.reworked > 0:

        def perturb(k: int) -> UnitFacts:
            return dataclasses.replace(facts, counts=_with_counts(facts, reworked=c.reworked - k))

        def phrase(k: int, lang: Language) -> str:
            if lang == "vi":
                return f"Bớt {k} nhiệm vụ bị trả lại để làm lại"
            return f"{_plural(k, 'fewer completion', 'fewer completions')} returned for rework"

        levers.append(_Lever("rework_avoided", "better", False, c.reworked, perturb, float, phrase))
    if c.completed > c.reworked:

        def perturb_more(k: int) -> UnitFacts:
            return dataclasses.replace(facts, counts=_with_counts(facts, reworked=c.reworked + k))

        def phrase_more(k: int, lang: Language) -> str:
            if lang == "vi":
                return f"Có thêm {k} nhiệm vụ bị trả lại để làm lại"
            return f"{_plural(k, 'more completion', 'more completions')} returned for rework"

        levers.append(_Lever("tasks_reworked", "worse", False, c.completed - c.reworked, perturb_more, float,
                             phrase_more))
    return levers


def _reminder_levers(ruleset: Ruleset, facts: UnitFacts) -> list[_Lever]:
    thresholds = _thresholds(ruleset, OVERDUE, "reminders")
    if not facts.overdue or not thresholds:
        return []
    task = min(facts.overdue, key=_by_escalation)
    limit = math.floor(max(thresholds)) + 1 - task.reminders
    if limit <= 0:
        return []

    def perturb(k: int) -> UnitFacts:
        overdue = tuple(
            dataclasses.replace(t, reminders=t.reminders + k) if t.assignment_id == task.assignment_id else t
            for t in facts.overdue
        )
        return dataclasses.replace(facts, overdue=overdue)

    def phrase(k: int, lang: Language) -> str:
        if lang == "vi":
            return f"Thêm {k} lần đôn đốc nhiệm vụ quá hạn {task.assignment_id}"
        return f"{_plural(k, 'more reminder', 'more reminders')} on overdue assignment {task.assignment_id}"

    return [_Lever("reminders_added", "worse", False, limit, perturb, float, phrase,
                   lambda _k: (task.assignment_id,))]


def indicator_step(m: MeasurementFact) -> float:
    """How far the indicator levers move a measurement's numerator per step: one for counts
    (whole numerator, whole denominator of at most MAX_COUNT_STEPS), else 0.1 percentage point."""
    whole = m.numerator.is_integer() and m.denominator.is_integer()
    if whole and m.denominator <= MAX_COUNT_STEPS:
        return 1.0
    return m.denominator / INDICATOR_STEPS


def _indicator_levers(ruleset: Ruleset, facts: UnitFacts) -> list[_Lever]:
    order = [i.code for i in ruleset.indicators]
    measured = sorted(
        (m for m in facts.measurements if m.indicator in order and m.denominator > 0),
        key=lambda m: order.index(m.indicator),
    )
    raising: list[_Lever] = []
    lowering: list[_Lever] = []
    for m in measured:
        indicator = ruleset.indicator(m.indicator)
        assert indicator is not None
        step = indicator_step(m)
        if m.numerator < m.denominator:
            limit = math.ceil((m.denominator - m.numerator) / step - 1e-9)
            raising.append(_value_lever(facts, m, indicator.name_vi, indicator.name_en, step, limit, +1))
        if m.numerator > 0:
            limit = math.ceil(m.numerator / step - 1e-9)
            lowering.append(_value_lever(facts, m, indicator.name_vi, indicator.name_en, step, limit, -1))
    return raising + lowering


def _value_lever(
    facts: UnitFacts, m: MeasurementFact, name_vi: str, name_en: str, step: float, limit: int, sign: int
) -> _Lever:
    def numerator(k: int) -> float:
        moved = m.numerator + sign * k * step
        return min(m.denominator, moved) if sign > 0 else max(0.0, moved)

    def perturb(k: int) -> UnitFacts:
        changed = dataclasses.replace(m, numerator=numerator(k))
        measurements = tuple(changed if x.indicator == m.indicator else x for x in facts.measurements)
        return dataclasses.replace(facts, measurements=measurements)

    def amount(k: int) -> float:
        return numerator(k) / m.denominator

    def phrase(k: int, lang: Language) -> str:
        before, after = format_percent(m.numerator / m.denominator, lang), format_percent(amount(k), lang)
        if lang == "vi":
            return f"“{name_vi}” {'tăng' if sign > 0 else 'giảm'} từ {before} {'lên' if sign > 0 else 'xuống'} {after}"
        return f"“{name_en}” {'rising' if sign > 0 else 'falling'} from {before} to {after}"

    sense: Sense = "better" if sign > 0 else "worse"
    return _Lever(INDICATOR_LEVER_PREFIX + m.indicator, sense, True, limit, perturb, amount, phrase)


# ---- subjects ---------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    """The grade in one direction, or one flag; `flips` tells whether a result differs from now."""

    subject: str
    direction: str
    current: str
    sense: Sense
    flips: Callable[[UnitEvaluation], bool]
    becomes: Callable[[UnitEvaluation], str]
    outcome: Callable[[UnitEvaluation, Language], str]


def _grade_label(result: UnitEvaluation, lang: Language) -> str:
    return result.grade_vi if lang == "vi" else result.grade_en


def _subjects(ruleset: Ruleset, baseline: UnitEvaluation) -> list[_Subject]:
    subjects: list[_Subject] = []
    codes = [g.grade for g in _score_bands(ruleset)]
    rank = {code: index for index, code in enumerate(codes)}

    def grade_of(result: UnitEvaluation) -> str:
        return result.grade

    if baseline.assessable and baseline.grade in rank:
        now = rank[baseline.grade]
        if now > 0:
            subjects.append(_Subject(
                GRADE_SUBJECT, IMPROVE_GRADE, baseline.grade, "better",
                lambda r: r.assessable and rank.get(r.grade, len(codes)) < now, grade_of,
                lambda r, lang: (f"sẽ nâng xếp loại lên “{r.grade_vi}”" if lang == "vi"
                                 else f"would lift the grade to “{r.grade_en}”")))
        if now < len(codes) - 1:
            subjects.append(_Subject(
                GRADE_SUBJECT, LOWER_GRADE, baseline.grade, "worse",
                lambda r: r.assessable and rank.get(r.grade, -1) > now, grade_of,
                lambda r, lang: (f"sẽ hạ xếp loại xuống “{r.grade_vi}”" if lang == "vi"
                                 else f"would lower the grade to “{r.grade_en}”")))
    elif not baseline.assessable:
        subjects.append(_Subject(
            GRADE_SUBJECT, IMPROVE_GRADE, baseline.grade, "better", lambda r: r.assessable, grade_of,
            lambda r, lang: (f"sẽ đủ điều kiện xếp loại, đạt “{r.grade_vi}”" if lang == "vi"
                             else f"would make the unit assessable, graded “{r.grade_en}”")))
    raised = {f.flag for f in baseline.flags}
    subjects.extend(_flag_subject(flag, flag.flag in raised) for flag in ruleset.flags)
    return subjects


def _flag_subject(flag: FlagDefinition, raised: bool) -> _Subject:
    commendation = flag.kind == "commendation"
    # Removing a criticism or earning a commendation is for the better.
    sense: Sense = "better" if raised != commendation else "worse"
    if raised:
        vi = f"sẽ mất cờ “{flag.label_vi}”" if commendation else f"sẽ được gỡ cờ “{flag.label_vi}”"
    else:
        vi = f"sẽ được gắn cờ “{flag.label_vi}”" if commendation else f"sẽ bị gắn cờ “{flag.label_vi}”"
    en = f"would remove the “{flag.label_en}” flag" if raised else f"would raise the “{flag.label_en}” flag"

    def has_flag(result: UnitEvaluation) -> bool:
        return any(f.flag == flag.flag for f in result.flags)

    return _Subject(
        flag.flag,
        LOSE_FLAG if raised else GAIN_FLAG,
        RAISED if raised else NOT_RAISED,
        sense,
        lambda r: has_flag(r) != raised,
        lambda r: RAISED if has_flag(r) else NOT_RAISED,
        lambda _r, lang: vi if lang == "vi" else en,
    )


# ---- search -----------------------------------------------------------------


def _grid(low: int, high: int, size: int) -> list[int]:
    """Up to `size` values strictly between `low` and `high`, evenly spread, `high - 1` included."""
    span = high - 1 - low
    if span <= 0:
        return []
    if span <= size:
        return list(range(low + 1, high))
    return sorted({low + math.ceil(i * span / size) for i in range(1, size + 1)})


class _Search:
    """Evaluated perturbations per lever (k = 0 is the unchanged facts), filled batch by batch."""

    def __init__(self, engine: RulesEngine, levers: list[_Lever], baseline: UnitEvaluation, size: int) -> None:
        self.engine = engine
        self.levers = levers
        self.size = size
        self.results: list[dict[int, UnitEvaluation]] = [{0: baseline} for _ in levers]

    def run(self, wanted: dict[int, set[int]]) -> None:
        """Evaluate the wanted (lever, k) perturbations in one engine call; identical facts once."""
        batch = [(li, k) for li in sorted(wanted) for k in sorted(wanted[li]) if k not in self.results[li]]
        if not batch:
            return
        unique: dict[UnitFacts, int] = {}
        keys = [unique.setdefault(self.levers[li].perturb(k), len(unique)) for li, k in batch]
        evaluated = self.engine.evaluate(list(unique))
        for (li, k), key in zip(batch, keys, strict=True):
            self.results[li][k] = evaluated[key]

    def grid(self, low: int, high: int) -> list[int]:
        return _grid(low, high, self.size)

    def state(self, li: int, subject: _Subject) -> int | list[int] | None:
        """The smallest k found that flips `subject` (adjacent to a k that does not), the k still to
        evaluate to find it, or None when nothing up to the lever's limit flips it."""
        results = self.results[li]
        flipped = sorted(k for k, r in results.items() if k > 0 and subject.flips(r))
        if not flipped:
            return None if self.levers[li].limit in results else self.grid(max(results), self.levers[li].limit + 1)
        first = flipped[0]
        below = max(k for k in results if k < first)
        return first if first - below == 1 else self.grid(below, first)


def _margins(ruleset: Ruleset, engine: RulesEngine, facts: UnitFacts, baseline: UnitEvaluation) -> tuple[Margin, ...]:
    levers = [lever for lever in _levers(ruleset, facts, baseline) if lever.limit > 0]
    subjects = _subjects(ruleset, baseline)
    pairs = [(s, li) for s in range(len(subjects)) for li, lever in enumerate(levers)
             if lever.sense == subjects[s].sense]
    used = {li for _, li in pairs}
    weight = 1 + len(facts.overdue) + len(facts.measurements)  # engine facts per evaluation
    size = max(MIN_GRID, min(GRID, ROUND_BUDGET // max(1, len(used) * weight)))
    search = _Search(engine, levers, baseline, size)
    search.run({li: set(search.grid(0, levers[li].limit + 1)) for li in used})
    found: dict[tuple[int, int], int] = {}
    for round_ in range(MAX_ROUNDS + 1):
        wanted: dict[int, set[int]] = {}
        for s, li in pairs:
            if (s, li) in found:
                continue
            state = search.state(li, subjects[s])
            if isinstance(state, int):
                found[(s, li)] = state
            elif state:
                wanted.setdefault(li, set()).update(state)
        if not wanted or round_ == MAX_ROUNDS:
            break
        search.run(wanted)
    margins: list[Margin] = []
    for s, subject in enumerate(subjects):
        for indicator_group in (False, True):
            options = [(li, k) for (t, li), k in found.items()
                       if t == s and levers[li].indicator is indicator_group]
            if not options:
                continue
            if indicator_group:
                start = {li: levers[li].amount(0) for li, _ in options}
                li, k = min(options, key=lambda o: (abs(levers[o[0]].amount(o[1]) - start[o[0]]), o[0]))
            else:
                li, k = min(options, key=lambda o: (o[1], o[0]))
            margins.append(_margin(subject, levers[li], k, search.results[li][k]))
    return tuple(margins)


def _margin(subject: _Subject, lever: _Lever, k: int, result: UnitEvaluation) -> Margin:
    return Margin(
        subject=subject.subject,
        direction=subject.direction,
        current=subject.current,
        would_become=subject.becomes(result),
        lever=lever.code,
        amount=lever.amount(k),
        summary_vi=f"{lever.phrase(k, 'vi')} {subject.outcome(result, 'vi')}",
        summary_en=f"{lever.phrase(k, 'en')} {subject.outcome(result, 'en')}",
        assignments=lever.assignments(k),
    )
