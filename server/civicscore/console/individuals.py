"""What the console shows about officials (cá nhân), gathered through the SDK as the signed-in person.

Personal data: every OfficialService call, and every read of a recommendation about an official, needs
`personal.read` and is written to the server's audit log with the person. So each page makes the calls it
shows and no more; the quarter page and the navigation link here without reading anyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from civicscore.console.views import (
    ContestView,
    FiredGroup,
    QueueFilter,
    Units,
    contests_about,
    fired_groups,
    kind_name,
    quarters,
    short,
    status_name,
)
from civicscore.console.words import Words
from civicscore_api.v1 import evaluations_pb2, officials_pb2, reviews_pb2
from civicscore_client import Client, InvalidArgument, NotFound

OFFICIAL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # as the server's Official.official_id
_SLUG_PIECE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_POSITIONS: dict[int, str] = {officials_pb2.OFFICIAL_POSITION_HEAD: "position_head",
              officials_pb2.OFFICIAL_POSITION_DEPUTY: "position_deputy",
              officials_pb2.OFFICIAL_POSITION_OFFICER: "position_officer"}


def position_label(position: int, w: Words) -> str:
    """`Người đứng đầu`, `Cấp phó`, `Công chức` (or English); empty when unspecified."""
    return w(_POSITIONS[position]) if position in _POSITIONS else ""


@dataclass(frozen=True)
class OfficialSlug:
    """A recommendation about an official by its short name, `UNIT~FLAG~OFFICIAL_ID`."""

    code: str
    flag: str
    official_id: str

    @classmethod
    def parse(cls, slug: str) -> OfficialSlug | None:
        """The three parts, or None for anything else (a unit's `UNIT~FLAG` among them)."""
        pieces = slug.split("~")
        if len(pieces) != 3 or not all(_SLUG_PIECE.match(piece) for piece in pieces):
            return None
        return cls(*pieces)


def official_id_of(name: str) -> str:
    return short(name, "officials")


def split_reasons(rec: evaluations_pb2.Recommendation, evaluation: officials_pb2.OfficialEvaluation | None
                  ) -> tuple[list[evaluations_pb2.Reason], list[evaluations_pb2.Reason]]:
    """The reasons about the person (rules that fired on their evaluation) and those it carries from their unit's
    evaluation (head accountability); all are the person's when their evaluation is not at hand."""
    own_rules = {rule.rule_id for rule in evaluation.fired_rules} if evaluation is not None else set()
    if not own_rules:
        return list(rec.reasons), []
    return ([reason for reason in rec.reasons if reason.rule_id in own_rules],
            [reason for reason in rec.reasons if reason.rule_id not in own_rules])


# ---- the individuals queue ----

@dataclass
class IndividualRow:
    slug: str  # UNIT~FLAG~OFFICIAL_ID
    official_id: str
    person: str
    position: str
    code: str
    unit: str
    kind: str
    kind_label: str
    level: int
    flag_label: str
    reasons: list[str]  # the rules about the person
    unit_reasons: int  # for head accountability: how many of the unit's reasons it carries (shown on its page)
    status: str
    status_label: str
    decision: str
    reviewer: str
    decision_reason: str
    decision_time: str
    decision_time_iso: str


_SEVERITY = ("escalation", "criticism", "commendation")


def _row_order(row: IndividualRow) -> tuple[int, int, int, str, str]:
    return (0 if row.status == "proposed" else 1,
            _SEVERITY.index(row.kind) if row.kind in _SEVERITY else len(_SEVERITY), -row.level, row.unit.casefold(),
            row.person.casefold())


def individuals(client: Client, period: str, chosen: QueueFilter, w: Words) -> list[IndividualRow]:
    """The recommendations about officials of a quarter, with each person's position at the quarter's end
    (from their evaluations): proposed first, criticism before commendation, the most serious first."""
    found = list(client.list_official_recommendations(period, kind=chosen.kind or None,
                                                      status=chosen.status or None))
    if not found:
        return []
    units = Units.load(client)
    evaluations = {evaluation.official: evaluation for evaluation in client.list_official_evaluations(
        period, flagged=None if chosen.status == "superseded" else True)}
    rows = []
    for rec in found:
        kind, status, code = kind_name(rec.kind), status_name(rec.status), short(rec.unit, "units")
        if not chosen.status and status == "superseded":
            continue
        evaluation = evaluations.get(rec.official)
        own, of_unit = split_reasons(rec, evaluation)
        rows.append(IndividualRow(
            slug=short(rec.name, "recommendations"), official_id=official_id_of(rec.official),
            person=rec.official_display_name or official_id_of(rec.official),
            position=position_label(evaluation.position, w) if evaluation is not None else "",
            code=code, unit=units.name(code, w, rec.unit_display_name_vi), kind=kind, kind_label=w.kind(kind),
            level=rec.level, flag_label=w.pick(rec.label_vi, rec.label_en) or rec.flag,
            reasons=[w.pick(reason.text_vi, reason.text_en) for reason in own], unit_reasons=len(of_unit),
            status=status, status_label=w.status(status), decision=rec.last_decision, reviewer=rec.last_reviewer,
            decision_reason=rec.last_decision_reason, decision_time=w.moment(rec.last_decision_time),
            decision_time_iso=w.iso(rec.last_decision_time)))
    rows.sort(key=_row_order)
    return rows


# ---- one recommendation about an official ----

@dataclass
class UnitRecommendation:
    slug: str
    label: str
    status: str
    status_label: str


@dataclass
class OfficialDetail:
    period: str
    slug: str
    recommendation: evaluations_pb2.Recommendation
    kind: str
    status: str
    official_id: str
    person: str
    position: str
    code: str
    unit: str
    flag_label: str
    reasons: list[str]  # the rules about the person
    unit_reasons: list[str]  # for head accountability: the unit's own reasons
    evaluation: officials_pb2.OfficialEvaluation | None
    headed_units: list[str]
    fired: list[FiredGroup]
    unit_recommendations: list[UnitRecommendation]
    reviews: list[reviews_pb2.RecommendationReview]
    contests: list[ContestView]


def find_official_recommendation(client: Client, period: str, slug: OfficialSlug, wanted_id: int = 0
                                 ) -> evaluations_pb2.Recommendation:
    """The recommendation `UNIT~FLAG~OFFICIAL_ID` of a quarter: the one with `wanted_id`, else the current one
    (PERMISSION_DENIED from the server for a person without `personal.read`)."""
    found = list(client.list_official_recommendations(period, unit=slug.code, official=slug.official_id,
                                                      flag=slug.flag))
    if wanted_id and not any(rec.recommendation_id == wanted_id for rec in found):
        found = list(client.list_official_recommendations(period, unit=slug.code, official=slug.official_id,
                                                          flag=slug.flag, status="superseded"))
    if wanted_id:
        found = [rec for rec in found if rec.recommendation_id == wanted_id]
    if not found:
        raise NotFound(f"periods/{period}/recommendations/{slug.code}~{slug.flag}~{slug.official_id} does not exist")
    return max(found, key=lambda rec: rec.recommendation_id)


def official_detail(client: Client, period: str, slug: OfficialSlug, w: Words, wanted_id: int = 0
                    ) -> OfficialDetail:
    rec = find_official_recommendation(client, period, slug, wanted_id)
    official_id = official_id_of(rec.official)
    units = Units.load(client)
    evaluation: officials_pb2.OfficialEvaluation | None
    try:
        evaluation = client.get_official_evaluation(period, official_id)
    except NotFound:
        evaluation = None
    reasons, unit_reasons = split_reasons(rec, evaluation)
    code = short(rec.unit, "units")
    kind = kind_name(rec.kind)
    unit_recommendations = [
        UnitRecommendation(slug=short(found.name, "recommendations"),
                           label=w.pick(found.label_vi, found.label_en) or found.flag,
                           status=status_name(found.status), status_label=w.status(status_name(found.status)))
        for found in client.list_recommendations(period, unit=code)] if unit_reasons else []
    return OfficialDetail(
        period=period, slug=short(rec.name, "recommendations"), recommendation=rec, kind=kind,
        status=status_name(rec.status), official_id=official_id,
        person=rec.official_display_name or official_id,
        position=position_label(evaluation.position, w) if evaluation is not None else "", code=code,
        unit=units.name(code, w, rec.unit_display_name_vi), flag_label=w.pick(rec.label_vi, rec.label_en) or rec.flag,
        reasons=[w.pick(reason.text_vi, reason.text_en) for reason in reasons],
        unit_reasons=[w.pick(reason.text_vi, reason.text_en) for reason in unit_reasons], evaluation=evaluation,
        headed_units=[units.name(short(unit, "units"), w) for unit in evaluation.headed_units]
        if evaluation is not None else [],
        fired=fired_groups(evaluation, rec.flag, w) if evaluation is not None else [],
        unit_recommendations=unit_recommendations, reviews=list(client.list_recommendation_reviews(rec.name)),
        contests=contests_about(client, period, rec.name, w, {}))


# ---- an official across quarters ----

@dataclass
class PositionHeld:
    code: str
    unit: str
    position: str
    start_on: str
    end_on: str  # "" while held


@dataclass
class QuarterFlag:
    slug: str
    label: str
    kind: str
    status: str
    status_label: str


@dataclass
class OfficialQuarter:
    period: str
    code: str
    unit: str
    position: str
    under_review: bool
    led: evaluations_pb2.TaskCounts
    flags: list[QuarterFlag]


@dataclass
class OfficialPage:
    official_id: str
    person: str
    active: bool
    positions: list[PositionHeld]
    under_review: list[str]
    quarters: list[OfficialQuarter]


def official_page(client: Client, official_id: str, w: Words) -> OfficialPage:
    """An official, the positions they held (newest first) and their evaluation in each quarter."""
    if not OFFICIAL_ID.match(official_id):
        raise NotFound(f"officials/{official_id} does not exist: ids are 1-64 letters, digits and ._:-")
    official = client.get_official(official_id)
    units = Units.load(client)
    positions = [PositionHeld(code=short(held.unit, "units"), unit=units.name(short(held.unit, "units"), w),
                              position=position_label(held.position, w), start_on=w.date(held.start_on),
                              end_on=w.date(held.end_on) if held.end_on else "")
                 for held in sorted(official.appointments, key=lambda held: held.start_on, reverse=True)]
    results = []
    for period in quarters(client):
        try:
            evaluation = client.get_official_evaluation(period, official_id)
        except (NotFound, InvalidArgument):  # not evaluated that quarter (or not at all yet)
            continue
        flags = [QuarterFlag(slug=short(rec.name, "recommendations"),
                             label=w.pick(rec.label_vi, rec.label_en) or rec.flag, kind=kind_name(rec.kind),
                             status=status_name(rec.status), status_label=w.status(status_name(rec.status)))
                 for rec in client.list_official_recommendations(period, official=official_id)
                 ] if evaluation.flags else []
        code = short(evaluation.unit, "units")
        results.append(OfficialQuarter(
            period=period, code=code, unit=units.name(code, w) if code else "",
            position=position_label(evaluation.position, w), under_review=evaluation.under_review,
            led=evaluation.led, flags=flags))
    return OfficialPage(official_id=official.official_id, person=official.display_name or official.official_id,
                        active=official.activity != officials_pb2.OFFICIAL_ACTIVITY_INACTIVE, positions=positions,
                        under_review=list(official.under_review_periods), quarters=results)
