"""Half-years and years (sơ kết, tổng kết): EvaluatePeriod of `2026-H1`, `2026-H2` or `2026`.

A unit's result over such a period is summed up from its STORED quarterly evaluations (the latest
revision of each, made under the ruleset in force for that quarter); no quarter is evaluated again. The
ruleset in force for the period's last quarter gives the numbers (`assessment.long_periods`: the share
of quarters that must be assessable; the grade bands) and the flag rules on `fact: rollup` facts (the
annual commendation candidate in the default rules). See DEFAULT-RULES.md, "Half-year and year".

What is refused, with FAILED_PRECONDITION naming what to do first:
- a quarter of the period with no evaluation at all (evaluate it first): a half-year or year result is a
  summing-up of quarters the committee has already seen, so it is never made from part of them;
- a quarter whose evaluations were made under a ruleset no longer in force for it (evaluate it again);
- a ruleset in force for the last quarter that does not say how to sum up long periods.

Within an evaluated quarter, a unit without an evaluation of its own (it was inactive then, or did not
exist yet) has that quarter counted as not assessable and named in the result's `missing` quarters.

Results are stored like quarterly evaluations: a new revision only when the result changed (the inputs
digest is made of the quarterly evaluations used and the ruleset), and recommendations that go through
the same review, right of reply and audit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from civicscore.domain.canonical import digest_of
from civicscore.domain.model import QuarterResult, RollupFacts, TaskCounts, Unit
from civicscore.domain.periods import InvalidPeriod, Period, Quarter, Rollup, parse_any_period, rollups_of
from civicscore.engine.port import EngineError, RulesEngine, evaluation_from_json
from civicscore.errors import EvaluationFailed, FailedPrecondition, InvalidInput, NotFound, Violation
from civicscore.evaluate import (
    SAVE_ATTEMPTS,
    PeriodEvaluation,
    _period_evaluation,
    _stop_if_cancelled,
    active_units,
    stops_when_cancelled,
    to_new_evaluation,
)
from civicscore.explain import Contribution, Explanation
from civicscore.idempotency import claim_key
from civicscore.ruleset import Ruleset
from civicscore.rulesets import NoRulesetInForce, RulesetChanged, RulesetRefused, Rulesets
from civicscore.store import EvaluationRecord, SaveEvaluationsResult, Store
from civicscore.store.base import ActivationRecord
from civicscore.validation import check_idempotency_key

log = logging.getLogger("civicscore.evaluate")
_PAGE = 1000


def parse_evaluation_period(value: str, field: str = "period") -> Period:
    """Accept a quarter, a half-year or a year, with or without `periods/` in front."""
    try:
        return parse_any_period(value.removeprefix("periods/"))
    except InvalidPeriod as exc:
        raise InvalidInput([Violation(field, str(exc), "INVALID_PERIOD")]) from None


def is_rollup(period: str) -> bool:
    """Whether `period` (with or without `periods/`) names a half-year or a year."""
    try:
        return isinstance(parse_any_period(period.removeprefix("periods/")), Rollup)
    except InvalidPeriod:
        return False


def latest_evaluations(store: Store, period: str) -> list[EvaluationRecord]:
    """The latest revision of every unit's evaluation for `period`, by unit code."""
    found: list[EvaluationRecord] = []
    cursor: str | None = None
    while True:
        page = store.list_evaluations(period=period, after=cursor, limit=_PAGE)
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def quarter_result(record: EvaluationRecord) -> QuarterResult:
    """What a half-year or year uses of one stored quarterly evaluation."""
    data = json.loads(record.result_json)
    return QuarterResult(
        period=record.period, revision=record.revision, assessable=record.assessable, score=data["score"],
        grade=record.grade, grade_vi=data["grade_vi"], grade_en=data["grade_en"], timeliness=record.timeliness,
        flags=tuple(flag["flag"] for flag in data["flags"]),
        criticism_flags=tuple(flag["flag"] for flag in data["flags"] if flag["kind"] == "criticism"),
        counts=TaskCounts(**{k: v for k, v in data["counts"].items() if k != "open_overdue"}),
        open_overdue=data["open_overdue"], ruleset_version=record.ruleset_version,
        ruleset_digest=record.ruleset_digest, result_digest=record.result_digest)


def rollup_facts(rollup: Rollup, units: Sequence[Unit],
                 quarters: dict[str, dict[str, EvaluationRecord]]) -> list[RollupFacts]:
    """Each unit's facts over `rollup` from the latest stored evaluations of its quarters (by quarter, by unit)."""
    periods = tuple(str(q) for q in rollup.quarters)
    return [
        RollupFacts(
            unit_code=unit.code, unit_kind=unit.kind, block=unit.block, period=str(rollup), span=rollup.kind,
            quarters=periods,
            results=tuple(quarter_result(quarters[q][unit.code]) for q in periods if unit.code in quarters[q]),
            under_review=str(rollup.last) in unit.under_review_periods,
        )
        for unit in units
    ]


def gather_rollup_facts(store: Store, rollup: Rollup, units: Sequence[Unit]) -> list[RollupFacts]:
    """`rollup_facts` read from the store."""
    quarters = {str(q): {r.unit_code: r for r in latest_evaluations(store, str(q))} for q in rollup.quarters}
    return rollup_facts(rollup, units, quarters)


def check_quarters(rollup: Rollup, quarters: dict[str, dict[str, EvaluationRecord]], units: Sequence[Unit],
                   in_force: Callable[[Quarter], ActivationRecord | None]) -> None:
    """Refuse (FailedPrecondition) a period with a quarter never evaluated, or evaluated under a ruleset that
    is no longer the one in force for it, naming each such quarter and what to do."""
    missing = [str(q) for q in rollup.quarters if not quarters[str(q)]]
    if missing:
        first = missing[0]
        raise FailedPrecondition(
            f"{rollup} is summed up from the evaluations of its quarters, and {_and(missing)} "
            f"{'has' if len(missing) == 1 else 'have'} none yet: evaluate {_and(missing)} first "
            f"(EvaluatePeriod periods/{first}, `civicscore evaluate {first}`), then {rollup}")
    active = {unit.code for unit in units}
    stale = []
    for quarter in rollup.quarters:
        activation = in_force(quarter)
        used = {(r.ruleset_version, r.ruleset_digest) for code, r in quarters[str(quarter)].items() if code in active}
        if activation is not None and any(digest != activation.digest for _, digest in used):
            old = ", ".join(f"{version} ({digest[:12]})" for version, digest in sorted(used)
                            if digest != activation.digest)
            stale.append(f"{quarter} was evaluated under ruleset {old} but {activation.version} "
                         f"({activation.digest[:12]}) is in force for it now")
    if stale:
        raise FailedPrecondition(
            f"{'; '.join(stale)}: evaluate {'that quarter' if len(stale) == 1 else 'those quarters'} again first "
            f"(each under the ruleset in force for it), then {rollup}")


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def evaluate_rollup(store: Store, rulesets: Rulesets, rollup: Rollup, *, now: dt.datetime,
                    idempotency_key: str, actor: str, cancelled: threading.Event | None = None) -> PeriodEvaluation:
    """Evaluate every active unit over a half-year or a year from its stored quarters, with the ruleset in
    force for the period's last quarter, and store new revisions where results changed (as
    `evaluate.evaluate_period` does for a quarter, including the check at saving that the ruleset used is
    still in force)."""
    if violations := check_idempotency_key(idempotency_key):
        raise InvalidInput(violations)
    for attempt in range(1, SAVE_ATTEMPTS + 1):
        try:
            rulesets.reconcile()
            with rulesets.lease(rollup.last) as (ruleset, engine):
                if ruleset.long_periods is None:
                    raise FailedPrecondition(
                        f"ruleset {ruleset.version} ({ruleset.digest[:12]}), in force for {rollup.last}, does not say "
                        f"how to sum up half-years and years, so {rollup} cannot be evaluated with it: add "
                        "`long_periods` under `assessment` in grades.yaml (rules/README.md) and activate the rules")
                return _evaluate_with(store, rulesets, engine, rollup, now=now, idempotency_key=idempotency_key,
                                      actor=actor, cancelled=cancelled,
                                      in_force=rulesets.verify_in_force(rollup.last, ruleset.digest))
        except RulesetChanged as changed:
            if attempt == SAVE_ATTEMPTS:
                raise EvaluationFailed(f"{changed}; the rulesets kept changing, so {rollup} was not evaluated: "
                                       "try again once they settle") from None
            log.info("%s; evaluating %s again (attempt %d)", changed, rollup, attempt + 1)
        except NoRulesetInForce as missing:
            raise FailedPrecondition(str(missing)) from None
        except (RulesetRefused, EngineError) as failed:
            raise EvaluationFailed(f"the rules engine for {rollup} could not start: {failed}") from failed
    raise AssertionError("unreachable")


def _evaluate_with(store: Store, rulesets: Rulesets, engine: RulesEngine, rollup: Rollup, *, now: dt.datetime,
                   idempotency_key: str, actor: str, cancelled: threading.Event | None,
                   in_force: Callable[[list[ActivationRecord]], None]) -> PeriodEvaluation:
    claim, replayed = claim_key(store, idempotency_key, "EvaluatePeriod",
                                digest_of([str(rollup), engine.ruleset_digest]))
    if replayed is not None:
        return _period_evaluation(SaveEvaluationsResult(**json.loads(replayed)), engine)
    units = list(active_units(store))
    quarters = {str(q): {r.unit_code: r for r in latest_evaluations(store, str(q))} for q in rollup.quarters}
    check_quarters(rollup, quarters, units, rulesets.activation_for)
    facts = rollup_facts(rollup, units, quarters)
    by_code = {u.code: u for u in units}
    what = f"the evaluation of {rollup}"
    log.info("evaluating %s from its quarters: %d active unit(s), ruleset %s", rollup, len(facts),
             engine.ruleset_version)
    _stop_if_cancelled(cancelled, what, "before the rules engine ran")
    try:
        with stops_when_cancelled(what, cancelled):
            results = engine.evaluate_encoded(facts, cancelled=cancelled)
    except EngineError as exc:
        raise EvaluationFailed(f"the rules engine could not evaluate {rollup}: {exc}") from exc
    new = []
    for result in results:
        summary = result.evaluation().rollup
        timeliness = summary.timeliness if summary is not None and summary.timeliness is not None else 0.0
        new.append(dataclasses.replace(to_new_evaluation(result, by_code[result.unit_code], now),
                                       timeliness=timeliness))
    _stop_if_cancelled(cancelled, what, "before saving")
    saved = store.save_evaluations(new, period=str(rollup), idempotency=claim, recorded_by=actor, in_force=in_force)
    return _period_evaluation(saved, engine)


def rollups_with_evaluations(quarters: Iterable[str]) -> list[Rollup]:
    """The half-years and years that have a quarter among `quarters` (quarters with evaluations)."""
    found: set[Rollup] = set()
    for text in quarters:
        try:
            found.update(rollups_of(Quarter.parse(text)))
        except InvalidPeriod:
            continue
    return sorted(found)


def explain_rollup(store: Store, rulesets: Rulesets, record: EvaluationRecord) -> Explanation:
    """Explain a stored half-year or year result: its quarters (each assessable one's share of the score), the
    rules that fired (in the evaluation), the next grade up, and whether its quarters changed since (a quarter
    evaluated again, or evaluated for the first time for the unit). Margins are not searched for long periods:
    what would change them is a change of a quarter, explained there."""
    evaluation = evaluation_from_json(record.result_json)
    rollup = Rollup.parse(record.period)
    unit = store.get_units([record.unit_code]).get(record.unit_code)
    if unit is None:
        raise NotFound(f"units/{record.unit_code}")
    facts = gather_rollup_facts(store, rollup, [unit])[0]
    inputs_changed = digest_of({"quarters": facts, "ruleset_digest": record.ruleset_digest}) != record.inputs_digest
    try:
        ruleset: Ruleset | None = rulesets.ruleset(record.ruleset_digest)
    except KeyError:
        ruleset = rulesets.ruleset_for(rollup.last)
    summary = evaluation.rollup
    counted = [r for r in (summary.results if summary else ()) if r.assessable and r.score is not None]
    max_score = ruleset.scoring.max_score if ruleset is not None else 100.0
    total = sum(r.score or 0.0 for r in counted)
    contributions = tuple(
        Contribution(indicator=f"quarter:{r.period}", name_vi=f"Quý {r.period}", name_en=f"Quarter {r.period}",
                     points=(r.score or 0.0) / len(counted), max_points=max_score / len(counted),
                     share=(r.score or 0.0) / total if total > 0 else 0.0)
        for r in sorted(counted, key=lambda r: -(r.score or 0.0))
    )
    bands = [g for g in (ruleset.grades if ruleset is not None else ()) if g.min_score is not None]
    codes = [g.grade for g in bands]
    better = None
    if evaluation.assessable and evaluation.grade in codes and codes.index(evaluation.grade) > 0:
        better = bands[codes.index(evaluation.grade) - 1]
    return Explanation(evaluation=evaluation, contributions=contributions, penalty=0.0, margins=(),
                       inputs_changed=inputs_changed, next_grade=better.grade if better else "",
                       next_grade_min_score=better.min_score if better else None)
