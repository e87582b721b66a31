"""EvaluatePeriod: gather a quarter's facts (aggregated in SQL), run the engine, store the results.

A call may pass `cancelled`, a threading.Event that the servicer sets when the
RPC ends (see `cancellation_event`): once the client has gone (cancelled, or
its deadline passed) the engine drops the work not yet started and nothing is
saved; the use case raises Cancelled (gRPC CANCELLED) and logs it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from civicscore.domain.canonical import digest_of
from civicscore.domain.model import RecommendationStatus, TaskCounts, Unit, UnitEvaluation, UnitFacts
from civicscore.domain.officials import Official, OfficialEvaluation, Position
from civicscore.domain.periods import InvalidPeriod, Quarter, QuarterToDate, Rollup
from civicscore.engine.people import build_official_facts
from civicscore.engine.port import (
    EncodedEvaluation,
    EncodedOfficialEvaluation,
    EngineError,
    EvaluationCancelled,
    RulesEngine,
    encode_official_evaluation,
)
from civicscore.errors import Cancelled, EvaluationFailed, FailedPrecondition, InvalidInput, Violation
from civicscore.idempotency import claim_key
from civicscore.rulesets import NoRulesetInForce, RulesetChanged, RulesetRefused, Rulesets
from civicscore.shutdown import Shutdown
from civicscore.store import RecommendationRecord, SaveEvaluationsResult, Store
from civicscore.store.base import ActivationRecord, NewEvaluation, NewOfficialEvaluation
from civicscore.validation import check_idempotency_key, hanoi_today

log = logging.getLogger("civicscore.evaluate")


@dataclass(frozen=True)
class PeriodEvaluation:
    units_evaluated: int
    new_revisions: int
    unchanged: int
    not_assessable: int
    recommendations: int
    ruleset_version: str
    ruleset_digest: str
    officials_evaluated: int = 0
    official_revisions: int = 0


class CallEnded(threading.Event):
    """Set when the RPC ends (see `cancellation_event`); `by_shutdown` tells whether the server's
    shutdown ended it (its grace passed with the call still running) rather than the client."""

    def __init__(self, shutdown: Shutdown | None = None) -> None:
        super().__init__()
        self._shutdown = shutdown
        self.by_shutdown = False

    def end(self) -> None:
        self.by_shutdown = self._shutdown is not None and self._shutdown.grace_over.is_set()
        self.set()


def cancellation_event(add_callback: Callable[[Callable[[], None]], bool], *,
                       shutdown: Shutdown | None = None) -> CallEnded:
    """An Event set when the RPC ends; pass the servicer's `context.add_callback`, and the runtime's
    `shutdown` so that a call cut by the server's shutdown is not blamed on its client.

    gRPC runs the callback when the call terminates for any reason: the client
    cancelled, its deadline passed, the connection dropped, the server's shutdown
    grace passed, or the reply was sent (by then nobody looks at the event). If the
    call has already ended, the event is set at once.
    """
    event = CallEnded(shutdown)
    if not add_callback(event.end):
        event.end()
    return event


def _cancelled(what: str, when: str, cancelled: threading.Event | None = None) -> Cancelled:
    if isinstance(cancelled, CallEnded) and cancelled.by_shutdown:
        log.warning("%s stopped %s: cancelled by the server's shutdown (the call was still running when the "
                    "shutdown grace ended), not by the client; nothing was saved, and the client, told UNAVAILABLE, "
                    "may retry on another replica", what, when)
        return Cancelled(f"{what} was cancelled by the server's shutdown; nothing was saved: retry the call")
    log.info("%s stopped %s: the client cancelled the call or its deadline passed; nothing was saved", what, when)
    return Cancelled(f"{what} was cancelled (the client cancelled the call or its deadline passed); "
                     "nothing was saved")


def _stop_if_cancelled(cancelled: threading.Event | None, what: str, when: str) -> None:
    if cancelled is not None and cancelled.is_set():
        raise _cancelled(what, when, cancelled)


@contextmanager
def stops_when_cancelled(what: str, cancelled: threading.Event | None = None) -> Iterator[None]:
    """Turn the engine's EvaluationCancelled inside the block into Cancelled (gRPC CANCELLED), logged
    (as the shutdown's doing when `cancelled`, from `cancellation_event`, says so).

    For servicers that run the engine themselves (SimulateRuleset): put it inside
    any `except EngineError` so that a cancellation is not reported as a failure.
    """
    try:
        yield
    except EvaluationCancelled:
        raise _cancelled(what, "in the rules engine", cancelled) from None


def parse_period(value: str, field: str = "period") -> Quarter:
    """Accept `periods/2026-Q3` or `2026-Q3`."""
    try:
        return Quarter.parse(value.removeprefix("periods/"))
    except InvalidPeriod as exc:
        raise InvalidInput([Violation(field, str(exc), "INVALID_PERIOD")]) from None


def active_units(store: Store) -> Iterator[Unit]:
    cursor: str | None = None
    while True:
        page = store.list_units(active=True, after=cursor, limit=1000)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def gather_facts(store: Store, quarter: Quarter | QuarterToDate, units: list[Unit]) -> list[UnitFacts]:
    """Build each active unit's facts for a quarter: counts and overdue tasks from SQL, plus history.

    Due dates are the effective ones as of the quarter's end (Hanoi time); the assignments whose effective
    date is not their own are listed in the facts, so that an approval changes the inputs digest; so are
    the obstacles each unit reported that are still open at the quarter's end (Hanoi time)."""
    return [unit for group in gather_fact_groups(store, quarter, units, sizes=(len(units),)) for unit in group]


# How many units `_evaluate_with` gathers at a time: first two chunks' worth (one for each of two workers,
# engine.pool.MAX_CHUNK), then four at a time.
GATHERING_SIZES = (128, 256)


def gather_fact_groups(store: Store, quarter: Quarter | QuarterToDate, units: list[Unit], *,
                       sizes: Sequence[int] = GATHERING_SIZES) -> Iterator[list[UnitFacts]]:
    """`gather_facts` a group of units at a time, each group as soon as it is read: `sizes[0]` units first,
    then `sizes[-1]` at a time (the last group takes what remains). The engine can start on a group while the
    next is read.

    The two aggregates that read every assignment (counts, open overdue) read a group's units (a range of the
    state table, whose key starts with the unit: `driver.around`); the small ones (extensions, obstacles,
    measurements, the previous quarter) are read once, for all the units, before the first group."""
    if not units:
        return
    period = str(quarter)
    whole = len(units) <= sizes[0]
    extended = store.extended_tasks(start=quarter.start, end=quarter.end)
    obstacles = store.open_obstacles(end=quarter.end, closes_at=quarter.closes_at)
    measurements = store.measurement_facts(period=period)
    prior = store.prior_quarters(period=str(quarter.previous()))
    # The two aggregates run at once, on two connections (the drivers release the GIL while the database
    # works): on two cores a group's facts are ready in about the time of the larger.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="facts") as beside:
        first = 0
        for size in itertools.chain(sizes[:1], itertools.repeat(sizes[-1])):
            group = units[first : first + size]
            first += size
            if first >= len(units) - size // 4:  # no small group left over at the end
                group, first = units[first - size :], len(units)
            codes = None if whole else [unit.code for unit in group]
            counting = beside.submit(store.task_counts, start=quarter.start, end=quarter.end, unit_codes=codes)
            overdue = store.open_overdue(end=quarter.end, unit_codes=codes)
            counts = counting.result()
            yield [
                UnitFacts(
                    unit_code=unit.code,
                    unit_kind=unit.kind,
                    block=unit.block,
                    period=period,
                    counts=counts.get(unit.code, TaskCounts()),
                    overdue=tuple(sorted(overdue.get(unit.code, []), key=lambda t: t.assignment_id)),
                    measurements=tuple(sorted(measurements.get(unit.code, []), key=lambda m: m.indicator)),
                    under_review=period in unit.under_review_periods,
                    previous=prior.get(unit.code),
                    extended=tuple(extended.get(unit.code, ())),
                    obstacles=obstacles.get(unit.code, ()),
                )
                for unit in group
            ]
            if first >= len(units):
                return


def timeliness_of(result: EncodedEvaluation | UnitEvaluation) -> float:
    """The rules' timeliness (late completions count in part); 0 when nothing was due."""
    return next((i.value for i in result.indicators if i.indicator == "task.timeliness"), 0.0)


def to_new_evaluation(result: EncodedEvaluation, unit: Unit, now: dt.datetime) -> NewEvaluation:
    """What the store saves for one result; the engine has already serialised it canonically."""
    recommendations = tuple(
        RecommendationRecord(
            unit_code=result.unit_code,
            period=result.period,
            flag=flag.flag,
            kind=flag.kind,
            level=flag.level,
            label_vi=flag.label_vi,
            label_en=flag.label_en,
            reasons_json=flag.reasons_json,
            evaluation_revision=0,  # set by the store to the revision it writes
            status=RecommendationStatus.PROPOSED,
            created_at=now,
            unit_name_vi=unit.name_vi,
        )
        for flag in result.flags
    )
    return NewEvaluation(
        unit_code=result.unit_code,
        period=result.period,
        result_json=result.result_json,
        result_digest=result.result_digest,
        ruleset_version=result.ruleset_version,
        ruleset_digest=result.ruleset_digest,
        inputs_digest=result.inputs_digest,
        assessable=result.assessable,
        score=result.score,
        grade=result.grade,
        timeliness=timeliness_of(result),
        flags=tuple(f.flag for f in result.flags),
        recommendations=recommendations,
        reply_format=result.reply_format,
        reply=result.reply,
    )


SAVE_ATTEMPTS = 3  # evaluations redone when another replica changes the ruleset in force meanwhile


def evaluate_period(store: Store, rulesets: Rulesets, period: str, *, now: dt.datetime,
                    idempotency_key: str, actor: str, cancelled: threading.Event | None = None) -> PeriodEvaluation:
    """Evaluate every active unit for a quarter with the ruleset in force for that quarter, and store
    new revisions where results changed.

    The ruleset in force is read from the database when the call starts, its engine is leased for
    the whole evaluation, and the save checks, in its own transaction, that it is still the one in
    force: when another replica activated or rolled back a ruleset meanwhile, nothing is saved and
    the quarter is evaluated again with the ruleset now in force. No replica, however far behind,
    ever saves an evaluation made with a ruleset no longer in force.

    When `cancelled` is set before the results are saved, the engine's remaining work is dropped,
    nothing is saved (the save is one transaction: all or nothing) and Cancelled is raised.

    A half-year (`2026-H1`) or a year (`2026`) is summed up from its stored quarters: `rollups`."""
    from civicscore import rollups  # it builds on this module

    if isinstance(target := rollups.parse_evaluation_period(period), Rollup):
        return rollups.evaluate_rollup(store, rulesets, target, now=now, idempotency_key=idempotency_key,
                                       actor=actor, cancelled=cancelled)
    quarter = parse_period(period)
    if violations := check_idempotency_key(idempotency_key):
        raise InvalidInput(violations)
    if quarter.start > hanoi_today(now):
        raise FailedPrecondition(f"quarter {quarter} has not started yet; nothing to evaluate")
    for attempt in range(1, SAVE_ATTEMPTS + 1):
        try:
            rulesets.reconcile()
            with rulesets.lease(quarter) as (ruleset, engine):
                return _evaluate_with(store, engine, quarter, now=now, idempotency_key=idempotency_key,
                                      actor=actor, cancelled=cancelled,
                                      in_force=rulesets.verify_in_force(quarter, ruleset.digest))
        except RulesetChanged as changed:
            if attempt == SAVE_ATTEMPTS:
                raise EvaluationFailed(f"{changed}; the rulesets kept changing, so {quarter} was not evaluated: "
                                       "try again once they settle") from None
            log.info("%s; evaluating %s again (attempt %d)", changed, quarter, attempt + 1)
        except NoRulesetInForce as missing:
            raise FailedPrecondition(str(missing)) from None
        except (RulesetRefused, EngineError) as failed:
            raise EvaluationFailed(f"the rules engine for {quarter} could not start: {failed}") from failed
    raise AssertionError("unreachable")


def _evaluate_with(store: Store, engine: RulesEngine, quarter: Quarter, *, now: dt.datetime,
                   idempotency_key: str, actor: str, cancelled: threading.Event | None,
                   in_force: Callable[[list[ActivationRecord]], None]) -> PeriodEvaluation:
    claim, replayed = claim_key(store, idempotency_key, "EvaluatePeriod",
                                digest_of([str(quarter), engine.ruleset_digest]))
    if replayed is not None:
        return _period_evaluation(SaveEvaluationsResult(**json.loads(replayed)), engine)
    unit_list = list(active_units(store))
    units = {u.code: u for u in unit_list}
    what = f"the evaluation of {quarter}"
    # Says when the long part begins (operators, and the shutdown tests, watch for it).
    log.info("evaluating %s: %d active unit(s), ruleset %s", quarter, len(unit_list), engine.ruleset_version)
    _stop_if_cancelled(cancelled, what, "before the rules engine ran")
    # A pipeline: the workers start on the first group of units while the next is gathered; each chunk of
    # results is written as soon as the workers finish it, while they go on with the next; the officials'
    # results follow, then the check that the ruleset is still in force, then one commit. Cancelled, failed or
    # refused anywhere, the transaction saves nothing.
    facts: list[UnitFacts] = []
    results: list[EncodedEvaluation] = []

    def gathered() -> Iterator[list[UnitFacts]]:
        for group in gather_fact_groups(store, quarter, unit_list):
            facts.extend(group)
            yield group

    with _engine_errors(quarter, what, cancelled):
        stream = engine.evaluate_encoded_groups(gathered(), total=len(unit_list), cancelled=cancelled)
    inputs = official_inputs(store, quarter)  # read now: the save's transaction reads nothing on the side

    def chunks() -> Iterator[list[NewEvaluation]]:
        with _engine_errors(quarter, what, cancelled):
            for chunk in stream:
                results.extend(chunk)
                yield [to_new_evaluation(r, units[r.unit_code], now) for r in chunk]
        _stop_if_cancelled(cancelled, what, "before saving")

    def officials() -> list[NewOfficialEvaluation]:
        people = evaluate_officials(store, engine, quarter, units=units, facts=facts, results=results, now=now,
                                    cancelled=cancelled, inputs=inputs)
        _stop_if_cancelled(cancelled, what, "before saving")
        return people

    saved = store.save_evaluation_stream(chunks(), period=str(quarter), idempotency=claim, recorded_by=actor,
                                         in_force=in_force, officials=officials)
    return _period_evaluation(saved, engine)


@contextmanager
def _engine_errors(quarter: Quarter, what: str, cancelled: threading.Event | None) -> Iterator[None]:
    """The engine's cancellation as Cancelled, its failures as EvaluationFailed."""
    try:
        with stops_when_cancelled(what, cancelled):
            yield
    except EngineError as exc:
        raise EvaluationFailed(f"the rules engine could not evaluate {quarter}: {exc}") from exc


@dataclass(frozen=True)
class OfficialInputs:
    """What the officials' evaluation reads from the store (`official_inputs`), read before the units' results
    are saved: the save's transaction then holds the only connection it needs."""

    people: list[Official]
    leads: dict[str, str]
    led: dict[str, TaskCounts]


def official_inputs(store: Store, quarter: Quarter | QuarterToDate) -> OfficialInputs:
    """The officials holding a position during the quarter, who leads each assignment, and the counts of the
    assignments each leads (for `evaluate_officials`)."""
    people = store.officials_in_force(start=quarter.start, end=quarter.end)
    if not people:
        return OfficialInputs([], {}, {})
    return OfficialInputs(people, store.lead_officials(), store.led_task_counts(start=quarter.start, end=quarter.end))


def evaluate_officials(store: Store, engine: RulesEngine, quarter: Quarter | QuarterToDate, *,
                       units: dict[str, Unit],
                       facts: list[UnitFacts], results: list[EncodedEvaluation], now: dt.datetime,
                       cancelled: threading.Event | None = None,
                       inputs: OfficialInputs | None = None) -> list[NewOfficialEvaluation]:
    """The officials' results for a quarter (DEFAULT-RULES.md "Individuals"), from the units' results just
    made: every active official holding a position during the quarter, with the assignments they lead (due
    in it, and open overdue at its end, with effective due dates) and the units they head at its end. The
    store is read here unless `inputs` (from `official_inputs`) are given."""
    inputs = inputs if inputs is not None else official_inputs(store, quarter)
    people = inputs.people
    if not people:
        return []
    leads = inputs.leads
    led_overdue: dict[str, list[int]] = {}
    for unit in facts:
        for task in unit.overdue:
            if (lead := leads.get(task.assignment_id)) is not None:
                led_overdue.setdefault(lead, []).append(task.days_overdue)
    for days in led_overdue.values():
        days.sort(reverse=True)
    headed = {a.unit_code for person in people for a in person.appointments
              if a.position is Position.HEAD and a.held_on(quarter.end)}
    unit_results = {r.unit_code: r.evaluation() for r in results if r.unit_code in headed}
    official_facts = build_official_facts(quarter, people, units=units, unit_results=unit_results,
                                          led=inputs.led,
                                          led_overdue=led_overdue)
    if not official_facts:
        return []
    try:
        with stops_when_cancelled(f"the evaluation of {quarter}'s officials", cancelled):
            evaluated = engine.evaluate_encoded(official_facts, cancelled=cancelled)
    except EngineError as exc:
        raise EvaluationFailed(f"the rules engine could not evaluate the officials of {quarter}: {exc}") from exc
    return [to_new_official_evaluation(result, now) for result in evaluated]


def to_new_official_evaluation(result: object, now: dt.datetime) -> NewOfficialEvaluation:
    """What the store saves for one official's result (serialised by the engine, or here)."""
    encoded = result if isinstance(result, EncodedOfficialEvaluation) else encode_official_evaluation(
        cast(OfficialEvaluation, result))
    return NewOfficialEvaluation(
        official_id=encoded.official_id, unit_code=encoded.unit_code, period=encoded.period,
        result_json=encoded.result_json, result_digest=encoded.result_digest,
        ruleset_version=encoded.ruleset_version, ruleset_digest=encoded.ruleset_digest,
        inputs_digest=encoded.inputs_digest, flags=tuple(f.flag for f in encoded.flags),
        recommendations=tuple(
            RecommendationRecord(
                unit_code=encoded.unit_code, period=encoded.period, flag=flag.flag, kind=flag.kind, level=flag.level,
                label_vi=flag.label_vi, label_en=flag.label_en, reasons_json=flag.reasons_json,
                evaluation_revision=0, status=RecommendationStatus.PROPOSED, created_at=now,
                official_id=encoded.official_id)
            for flag in encoded.flags))


def _period_evaluation(saved: SaveEvaluationsResult, engine: RulesEngine) -> PeriodEvaluation:
    return PeriodEvaluation(
        units_evaluated=saved.units_evaluated,
        new_revisions=saved.new_revisions,
        unchanged=saved.unchanged,
        not_assessable=saved.not_assessable,
        recommendations=saved.recommendations_in_force,
        ruleset_version=engine.ruleset_version,
        ruleset_digest=engine.ruleset_digest,
        officials_evaluated=saved.officials_evaluated,
        official_revisions=saved.official_revisions,
    )
