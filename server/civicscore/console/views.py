"""What the console's pages show, gathered through the SDK as the signed-in person (never from the database).

Each function makes the gRPC calls one page needs and shapes the replies for its template; the server's
access table decides what the person may read, exactly as for a city system.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from civicscore.console.words import Words
from civicscore.domain.periods import HANOI, InvalidPeriod, Rollup, period_label, period_title
from civicscore.domain.periods import Quarter as CalendarQuarter
from civicscore.report.charts import distribution_chart, trend_chart
from civicscore.report.data import KNOWN_BLOCKS, KNOWN_GRADES, GradeInfo
from civicscore_api.v1 import (
    evaluations_pb2,
    extensions_pb2,
    obstacles_pb2,
    officials_pb2,
    outcomes_pb2,
    reviews_pb2,
    units_pb2,
)
from civicscore_client import Client, InvalidArgument, NotFound
from civicscore_client._rulesets import read_rules_folder

PERIOD = re.compile(r"^(\d{4})(?:-Q([1-4])|-H([12]))?$")  # a quarter, a half-year or a year
QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
KINDS = ("commendation", "criticism", "escalation")
STATUSES = ("proposed", "approved", "rejected", "deferred", "superseded")
DECISIONS = ("approve", "reject", "defer")
_KIND_NAMES: dict[int, str] = {evaluations_pb2.RECOMMENDATION_KIND_COMMENDATION: "commendation",
               evaluations_pb2.RECOMMENDATION_KIND_CRITICISM: "criticism",
               evaluations_pb2.RECOMMENDATION_KIND_ESCALATION: "escalation"}
_STATUS_NAMES: dict[int, str] = {evaluations_pb2.RECOMMENDATION_STATUS_PROPOSED: "proposed",
                 evaluations_pb2.RECOMMENDATION_STATUS_APPROVED: "approved",
                 evaluations_pb2.RECOMMENDATION_STATUS_REJECTED: "rejected",
                 evaluations_pb2.RECOMMENDATION_STATUS_DEFERRED: "deferred",
                 evaluations_pb2.RECOMMENDATION_STATUS_SUPERSEDED: "superseded"}
_DECISION_NAMES: dict[int, str] = {reviews_pb2.REVIEW_DECISION_APPROVE: "approve",
                                   reviews_pb2.REVIEW_DECISION_REJECT: "reject",
                                   reviews_pb2.REVIEW_DECISION_DEFER: "defer"}


def kind_name(value: int) -> str:
    """`commendation`, `criticism` or `escalation` for a RecommendationKind value."""
    return _KIND_NAMES.get(value, "")


def status_name(value: int) -> str:
    return _STATUS_NAMES.get(value, "")


def decision_name(value: int) -> str:
    return _DECISION_NAMES.get(value, "")


def previous_period(period: str) -> str:
    """The period of the same kind before `period`: 2026-Q1 -> 2025-Q4, 2026-H1 -> 2025-H2, 2026 -> 2025."""
    match = PERIOD.match(period)
    if not match:
        return ""
    year = int(match[1])
    if match[2]:
        quarter = int(match[2])
        return f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}"
    if match[3]:
        return f"{year - 1}-H2" if match[3] == "1" else f"{year}-H1"
    return str(year - 1)


def period_heading(period: str, w: Words) -> str:
    """The quarter page's title: `Kết quả đánh giá quý 2026-Q3`, `Kết quả đánh giá năm 2026`,
    `Evaluation results, First half of 2026`."""
    if QUARTER.match(period):
        return w("quarter_title", period=period)
    rollup = Rollup.parse(period)
    label = period_label(rollup, w.lang) if w.lang == "vi" else period_title(rollup, w.lang)
    return w("rollup_title", period=label)


def short(name: str, collection: str) -> str:
    """`units/SNV` -> `SNV`; `periods/2026-Q3/recommendations/SNV~x` -> `SNV~x` (for `recommendations`)."""
    marker = f"{collection}/"
    return name.rsplit(marker, 1)[-1] if marker in name else name


@dataclass
class Units:
    """Every unit the person may read, by code: names in both languages and the block."""

    by_code: dict[str, units_pb2.Unit]

    @classmethod
    def load(cls, client: Client) -> Units:
        return cls({unit.code: unit for unit in client.list_units()})

    def name(self, code: str, w: Words, fallback: str = "") -> str:
        unit = self.by_code.get(code)
        if unit is None:
            return fallback or code
        return w.pick(unit.display_name_vi, unit.display_name_en) or code

    def block(self, code: str) -> str:
        unit = self.by_code.get(code)
        return unit.block if unit is not None else ""

    def blocks(self) -> list[str]:
        present = {unit.block for unit in self.by_code.values() if unit.block}
        known = [block for block in KNOWN_BLOCKS if block in present]
        return known + sorted(present - set(known))


def periods(client: Client) -> list[str]:
    """Period ids (quarters, half-years and years), newest first as the server lists them."""
    return [period.period_id for period in client.list_periods()]


def quarters(client: Client) -> list[str]:
    """Quarter ids, newest first (what a what-if can re-evaluate)."""
    return [period for period in periods(client) if QUARTER.match(period)]


def quarter_of(period: str, known: Iterable[str]) -> str:
    """`period` when it is a quarter, else the newest quarter of `known` (newest first), else "": where the
    individuals' queue is (officials are evaluated by quarter only)."""
    if period and QUARTER.match(period):
        return period
    return next((candidate for candidate in known if QUARTER.match(candidate)), "")


def default_period(client: Client) -> str:
    """The newest period with evaluations, else the newest period, else ""."""
    found = list(client.list_periods())
    evaluated = [period.period_id for period in found if period.units_evaluated]
    pool = evaluated or [period.period_id for period in found]
    return max(pool) if pool else ""


# ---- the quarter ----

@dataclass
class RankingRow:
    rank: int
    code: str
    name: str
    score: str
    grade: str
    grade_label: str
    timeliness: str
    flags: list[str]


@dataclass
class Block:
    block: str
    label: str
    rows: list[RankingRow]


@dataclass
class Quarter:
    period: str
    previous: str
    evaluated: int
    assessable: int
    average: str
    commendations: int
    criticisms: int
    escalations: int
    grades: list[tuple[str, str, int, int]]  # grade, label, this quarter, previous quarter
    distribution: Markup
    trend: Markup | None
    blocks: list[Block]


def _grade_infos(evaluations: Iterable[evaluations_pb2.Evaluation]) -> list[GradeInfo]:
    seen: dict[str, GradeInfo] = {}
    for evaluation in evaluations:
        if evaluation.grade and evaluation.grade not in seen:
            seen[evaluation.grade] = GradeInfo(evaluation.grade, evaluation.grade_label_vi, evaluation.grade_label_en)
    order = {grade: i for i, grade in enumerate(KNOWN_GRADES)}
    return sorted(seen.values(), key=lambda info: (order.get(info.grade, len(order)), info.grade))


def _evaluations_or_none(client: Client, period: str) -> list[evaluations_pb2.Evaluation]:
    if not period:
        return []
    try:
        return list(client.list_evaluations(period))
    except (NotFound, InvalidArgument):
        return []


def quarter(client: Client, period: str, w: Words) -> Quarter | None:
    evaluations = list(client.list_evaluations(period))
    if not evaluations:
        return None
    previous = previous_period(period)
    before = _evaluations_or_none(client, previous)
    grades = _grade_infos([*evaluations, *before])
    now_counts = Counter(e.grade for e in evaluations)
    before_counts = Counter(e.grade for e in before)
    scored = [e.score for e in evaluations if e.assessable and e.has_score]
    kinds = Counter(kind_name(r.kind) for r in client.list_recommendations(period)
                    if r.status != evaluations_pb2.RECOMMENDATION_STATUS_SUPERSEDED)
    units = Units.load(client)
    blocks = []
    for block in units.blocks():
        rows = [RankingRow(rank=entry.rank, code=short(entry.unit, "units"),
                           name=units.name(short(entry.unit, "units"), w, entry.unit_display_name_vi),
                           score=w.decimal_text(entry.score_display), grade=entry.grade,
                           grade_label=w.pick(entry.grade_label_vi, entry.grade_label_en),
                           timeliness=w.percent(entry.timeliness),
                           flags=[w.pick(label.label_vi, label.label_en) or label.flag
                                  for label in entry.flag_labels])
                for entry in client.list_rankings(period, block)]
        if rows:
            blocks.append(Block(block=block, label=w.block(block), rows=rows))
    distribution = distribution_chart(grades, now_counts, w, w("chart_distribution", period=period))
    trend = trend_chart(grades, now_counts, before_counts, w, w("chart_trend", period=period, previous=previous)) \
        if before else None
    return Quarter(
        period=period, previous=previous if before else "", evaluated=len(evaluations),
        assessable=sum(1 for e in evaluations if e.assessable),
        average=w.number(sum(scored) / len(scored)) if scored else "—",
        commendations=kinds["commendation"], criticisms=kinds["criticism"], escalations=kinds["escalation"],
        grades=[(g.grade, w.pick(g.label_vi, g.label_en), now_counts[g.grade], before_counts[g.grade])
                for g in grades],
        distribution=distribution, trend=trend, blocks=blocks)


# ---- the review queue ----

@dataclass
class QueueFilter:
    kind: str = ""
    status: str = ""  # "" = every recommendation still current (not superseded)
    block: str = ""

    @classmethod
    def parse(cls, query: Any) -> QueueFilter:
        kind = query.get("kind", "")
        status = query.get("status", "")
        block = query.get("block", "")
        return cls(kind=kind if kind in KINDS else "", status=status if status in STATUSES else "",
                   block=block if re.fullmatch(r"[a-z0-9_-]{1,60}", block or "") else "")

    def query(self) -> str:
        parts = [f"{key}={value}" for key, value in (("kind", self.kind), ("status", self.status),
                                                      ("block", self.block)) if value]
        return "?" + "&".join(parts) if parts else ""


@dataclass
class QueueRow:
    slug: str  # UNIT~FLAG, the recommendation's short name
    recommendation_id: int
    code: str
    unit: str
    block: str
    kind: str
    kind_label: str
    level: int
    flag_label: str
    reasons: list[str]
    status: str
    status_label: str
    decision: str
    reviewer: str
    decision_reason: str
    decision_time: str
    decision_time_iso: str


def _queue_order(row: QueueRow) -> tuple[int, int, int, str]:
    return (0 if row.status == "proposed" else 1, KINDS.index(row.kind) if row.kind in KINDS else 2,
            -row.level, row.unit.casefold())


def queue(client: Client, period: str, chosen: QueueFilter, w: Words) -> tuple[list[QueueRow], Units]:
    units = Units.load(client)
    rows = []
    for rec in client.list_recommendations(period, kind=chosen.kind or None, status=chosen.status or None):
        status = status_name(rec.status)
        if not chosen.status and status == "superseded":
            continue
        code = short(rec.unit, "units")
        if chosen.block and units.block(code) != chosen.block:
            continue
        kind = kind_name(rec.kind)
        rows.append(QueueRow(
            slug=short(rec.name, "recommendations"), recommendation_id=rec.recommendation_id, code=code,
            unit=units.name(code, w, rec.unit_display_name_vi), block=units.block(code), kind=kind,
            kind_label=w.kind(kind), level=rec.level, flag_label=w.pick(rec.label_vi, rec.label_en) or rec.flag,
            reasons=[w.pick(reason.text_vi, reason.text_en) for reason in rec.reasons],
            status=status, status_label=w.status(status), decision=rec.last_decision,
            reviewer=rec.last_reviewer, decision_reason=rec.last_decision_reason,
            decision_time=w.moment(rec.last_decision_time), decision_time_iso=w.iso(rec.last_decision_time)))
    rows.sort(key=_queue_order)
    return rows, units


# ---- one recommendation ----

@dataclass
class FiredGroup:
    rule_id: str
    reason: str
    sources: list[str]
    times: int
    values: list[str]
    flag: str


@dataclass
class Snapshot:
    score: str
    grade: str
    flags: list[str]


@dataclass
class ContestView:
    text: str
    by: str
    when: str
    corrections: list[str]
    before: Snapshot | None
    after: Snapshot | None


@dataclass
class Detail:
    period: str
    slug: str
    name: str
    recommendation: evaluations_pb2.Recommendation
    kind: str
    status: str
    unit: str
    code: str
    flag_label: str
    reasons: list[str]
    explanation: evaluations_pb2.ExplainEvaluationResponse
    fired: list[FiredGroup]
    margins: list[str]
    reviews: list[reviews_pb2.RecommendationReview]
    contests: list[ContestView] = field(default_factory=list)


def _values(values: Any, w: Words) -> list[str]:
    return [f"{key} = {w.number(value)}" for key, value in sorted(values.items())]


def fired_groups(evaluation: evaluations_pb2.Evaluation | officials_pb2.OfficialEvaluation, flag: str,
                 w: Words) -> list[FiredGroup]:
    """Fired rules grouped by rule (one line per rule, with how many facts it fired on), the flag's first."""
    groups: dict[str, FiredGroup] = {}
    for rule in evaluation.fired_rules:
        group = groups.get(rule.rule_id)
        if group is None:
            group = groups[rule.rule_id] = FiredGroup(
                rule_id=rule.rule_id, reason=w.pick(rule.reason_vi, rule.reason_en), sources=[], times=0, values=[],
                flag=rule.flag)
        group.times += 1
        if rule.source and rule.source not in group.sources:
            group.sources.append(rule.source)
        if len(group.values) < 6:
            group.values.extend(value for value in _values(rule.values, w) if value not in group.values)
    return sorted(groups.values(), key=lambda g: (g.flag != flag, not g.flag, g.rule_id))


def _snapshot(snapshot: reviews_pb2.EvaluationSnapshot, w: Words, labels: dict[str, str]) -> Snapshot | None:
    if not snapshot.revision:
        return None
    return Snapshot(score=w.number(snapshot.score) if snapshot.assessable else "—",
                    grade=labels.get(snapshot.grade, snapshot.grade), flags=list(snapshot.flags))


def find_recommendation(client: Client, period: str, slug: str, wanted_id: int = 0) -> evaluations_pb2.Recommendation:
    """The recommendation `UNIT~FLAG` of a period: the one with `wanted_id`, else the current one."""
    code, _, flag = slug.partition("~")
    if not code or not flag:
        raise NotFound(f"no recommendation {slug!r}: names look like UNIT~flag")
    found = list(client.list_recommendations(period, unit=code, flag=flag))
    if wanted_id:
        found = [rec for rec in found if rec.recommendation_id == wanted_id]
    if not found:
        raise NotFound(f"periods/{period}/recommendations/{slug} does not exist")
    current = [rec for rec in found if rec.status != evaluations_pb2.RECOMMENDATION_STATUS_SUPERSEDED]
    return max(current or found, key=lambda rec: rec.recommendation_id)


def detail(client: Client, period: str, slug: str, w: Words, wanted_id: int = 0) -> Detail:
    rec = find_recommendation(client, period, slug, wanted_id)
    code = short(rec.unit, "units")
    explanation = client.explain_evaluation(period, code)
    evaluation = explanation.evaluation
    grade_labels = {evaluation.grade: w.pick(evaluation.grade_label_vi, evaluation.grade_label_en)}
    units = {code: client.get_unit(code)}
    unit = units[code]
    contests = contests_about(client, period, rec.name, w, grade_labels)
    kind = kind_name(rec.kind)
    return Detail(
        period=period, slug=slug, name=rec.name, recommendation=rec, kind=kind, status=status_name(rec.status),
        unit=w.pick(unit.display_name_vi, unit.display_name_en) or code, code=code,
        flag_label=w.pick(rec.label_vi, rec.label_en) or rec.flag,
        reasons=[w.pick(reason.text_vi, reason.text_en) for reason in rec.reasons],
        explanation=explanation, fired=fired_groups(evaluation, rec.flag, w),
        margins=[w.pick(margin.summary_vi, margin.summary_en) for margin in explanation.margins],
        reviews=list(client.list_recommendation_reviews(rec.name)), contests=contests)


def contests_about(client: Client, period: str, name: str, w: Words, grade_labels: dict[str, str]
                   ) -> list[ContestView]:
    """The replies to the recommendation `name` (a unit's right of reply), oldest first."""
    return [ContestView(text=contest.text, by=contest.contested_by, when=w.moment(contest.create_time),
                        corrections=[_correction(outcome, w) for outcome in contest.corrections],
                        before=_snapshot(contest.before, w, grade_labels),
                        after=_snapshot(contest.after, w, grade_labels))
            for contest in client.list_contests(period) if contest.recommendation == name]


_OUTCOME_WORDS = {outcomes_pb2.OUTCOME_STATUS_COMPLETED: "outcome_completed",
                  outcomes_pb2.OUTCOME_STATUS_IN_PROGRESS: "outcome_in_progress",
                  outcomes_pb2.OUTCOME_STATUS_CANCELLED: "outcome_cancelled"}


def _correction(outcome: outcomes_pb2.Outcome, w: Words) -> str:
    """`QD818-17: hoàn thành ngày 10/09/2026` - the assignment, its new status and completion date."""
    status = w(_OUTCOME_WORDS[outcome.status]) if outcome.status in _OUTCOME_WORDS else ""
    text = f"{short(outcome.assignment, 'assignments')}: {status}"
    if outcome.completed_on:
        text += " " + w("completed_on", date=w.date(outcome.completed_on))
    return text


# ---- a unit across quarters ----

@dataclass
class UnitQuarter:
    period: str
    score: str
    grade: str
    grade_label: str
    flags: list[str]
    recommendations: list[tuple[str, str, str]]  # slug, label, status label


def unit_history(client: Client, code: str, w: Words) -> tuple[units_pb2.Unit, list[UnitQuarter]]:
    unit = client.get_unit(code)
    history = []
    for period in periods(client):
        evaluations = list(client.list_evaluations(period, unit=code))
        if not evaluations:
            continue
        evaluation = evaluations[0]
        recommendations = [(short(rec.name, "recommendations"), w.pick(rec.label_vi, rec.label_en) or rec.flag,
                            w.status(status_name(rec.status)))
                           for rec in client.list_recommendations(period, unit=code)
                           if rec.status != evaluations_pb2.RECOMMENDATION_STATUS_SUPERSEDED]
        history.append(UnitQuarter(
            period=period, score=w.decimal_text(evaluation.score_display) if evaluation.assessable else "—",
            grade=evaluation.grade, grade_label=w.pick(evaluation.grade_label_vi, evaluation.grade_label_en),
            flags=[label for _, label, _ in recommendations], recommendations=recommendations))
    return unit, history


# ---- rulesets (policy staff) ----

def candidate_folders(root: Path | None) -> list[str]:
    """Sub-folders of the candidates root that hold rule files (names only: the page never takes a path)."""
    if root is None or not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir()
                  if entry.is_dir() and not entry.name.startswith(".")
                  and any(child.suffix in (".yaml", ".yml") for child in entry.iterdir()))


def candidate_files(root: Path, name: str) -> dict[str, str]:
    if name not in candidate_folders(root):
        raise NotFound(f"no candidate rules folder {name!r} on the server")
    return read_rules_folder(root / name)


@dataclass
class SimulatedRow:
    unit: str
    score_before: str
    score_after: str
    grade_before: str
    grade_after: str
    flags_gained: list[str]
    flags_lost: list[str]


@dataclass
class WhatIf:
    candidate: str
    period: str
    evaluated: int
    rows: list[SimulatedRow]


def what_if(client: Client, root: Path, candidate: str, period: str, w: Words) -> WhatIf:
    """SimulateRuleset of a candidate folder for a stored quarter: the units that would change, by their labels."""
    reply = client.simulate_ruleset(candidate_files(root, candidate), period, changed_only=True, timeout=120)
    grades = {info.grade: w.pick(info.label_vi, info.label_en)
              for info in _grade_infos(client.list_evaluations(period))}
    flags = {flag.flag: w.pick(flag.label_vi, flag.label_en) or flag.flag
             for ruleset in (reply.baseline, reply.candidate) for flag in ruleset.flags}
    units = Units.load(client)
    rows = [SimulatedRow(
        unit=units.name(short(u.unit, "units"), w, u.unit_display_name_vi), score_before=w.decimal_text(u.score_before),
        score_after=w.decimal_text(u.score_after), grade_before=grades.get(u.grade_before, u.grade_before),
        grade_after=grades.get(u.grade_after, u.grade_after),
        flags_gained=[flags.get(flag, flag) for flag in u.flags_gained],
        flags_lost=[flags.get(flag, flag) for flag in u.flags_lost]) for u in reply.units]
    return WhatIf(candidate=candidate, period=period, evaluated=reply.units_evaluated, rows=rows)


# ---- extensions (gia hạn) ----

EXTENSION_STATUSES = ("pending", "approved", "refused", "superseded")
_EXTENSION_STATUS_NAMES: dict[int, str] = {extensions_pb2.EXTENSION_STATUS_PENDING: "pending",
                                           extensions_pb2.EXTENSION_STATUS_APPROVED: "approved",
                                           extensions_pb2.EXTENSION_STATUS_REFUSED: "refused",
                                           extensions_pb2.EXTENSION_STATUS_SUPERSEDED: "superseded"}


@dataclass
class ExtensionRow:
    name: str
    path: str  # /extensions/{assignment}/{n}, where the decision form posts
    unit: str
    assignment: str
    title: str
    original_due_on: str
    due_on_at_request: str
    requested_due_on: str
    reason: str
    requested_by: str
    requested_at: str
    status: str
    decided_by: str
    decided_at: str
    decision_reason: str


def extensions(client: Client, status: str, w: Words) -> list[ExtensionRow]:
    """Extension requests in a status ("" for all), newest request first."""
    units = Units.load(client)
    rows = []
    for found in client.list_extensions(status=status or None):
        assignment = short(found.assignment, "assignments")
        code = short(found.unit, "units")
        rows.append(ExtensionRow(
            name=found.name, path=f"/extensions/{assignment}/{found.extension_id}", unit=units.name(code, w),
            assignment=assignment, title=found.assignment_title, original_due_on=w.date(found.original_due_on),
            due_on_at_request=w.date(found.due_on_at_request), requested_due_on=w.date(found.requested_due_on),
            reason=found.reason, requested_by=found.requested_by, requested_at=w.moment(found.request_time),
            status=_EXTENSION_STATUS_NAMES.get(found.status, ""), decided_by=found.decided_by,
            decided_at=w.moment(found.decision_time), decision_reason=found.decision_reason))
    rows.reverse()
    return rows


# ---- obstacles (khó khăn, vướng mắc) ----

OBSTACLE_STATUSES = ("unresolved", "open", "assigned", "resolved")
_OBSTACLE_STATUS_NAMES: dict[int, str] = {obstacles_pb2.OBSTACLE_STATUS_OPEN: "open",
                                          obstacles_pb2.OBSTACLE_STATUS_ASSIGNED: "assigned",
                                          obstacles_pb2.OBSTACLE_STATUS_RESOLVED: "resolved"}


@dataclass
class ObstacleRow:
    name: str
    path: str  # /obstacles/{assignment}/{n}, where its forms post (+ /assign or /resolve)
    unit: str
    assignment: str
    title: str
    description: str
    request: str
    requested_of: str
    reported_by: str
    reported_at: str
    days_open: int
    status: str
    resolver: str
    resolution: str
    resolved_by: str
    resolved_at: str


def obstacles(client: Client, status: str, w: Words) -> tuple[list[ObstacleRow], Units]:
    """Obstacles in a status ("" for all; `unresolved`: open or assigned), the longest open first."""
    units = Units.load(client)
    rows = []
    for found in client.list_obstacles(status=status or None):
        assignment = short(found.assignment, "assignments")
        resolver = units.name(short(found.resolver_unit, "units"), w) if found.resolver_unit else \
            found.resolver_official
        rows.append(ObstacleRow(
            name=found.name, path=f"/obstacles/{assignment}/{found.obstacle_id}",
            unit=units.name(short(found.unit, "units"), w), assignment=assignment, title=found.assignment_title,
            description=found.description, request=found.request, requested_of=found.requested_of,
            reported_by=found.reported_by, reported_at=w.moment(found.report_time), days_open=found.days_open,
            status=_OBSTACLE_STATUS_NAMES.get(found.status, ""), resolver=resolver, resolution=found.resolution,
            resolved_by=found.resolved_by, resolved_at=w.moment(found.resolve_time)))
    rows.sort(key=lambda row: (row.status == "resolved", -row.days_open))
    return rows, units


def on_demand_days(period: str, now: dt.datetime) -> tuple[str, str] | None:
    """The days a report on demand of `period` may be made up to (first, last), ISO: a quarter's days that have
    begun in Hanoi; None for a half-year, a year or a quarter not begun."""
    try:
        quarter = CalendarQuarter.parse(period)
    except InvalidPeriod:
        return None
    today = now.astimezone(HANOI).date()
    if today < quarter.start:
        return None
    return quarter.start.isoformat(), min(today, quarter.end).isoformat()
