"""Evaluation and period servicers: decode, call the use case, encode."""

from __future__ import annotations

import grpc

from civicscore import evaluate, queries
from civicscore.api import convert, evaluation_wire
from civicscore.api.errors import handle_errors
from civicscore.api.explain_out import explanation_out
from civicscore.api.filters import parse_filter
from civicscore.api.identity import caller
from civicscore.api.paging import decode_offset, decode_token, encode_token, page_size
from civicscore.errors import InvalidInput, Violation, shown
from civicscore.rollups import parse_evaluation_period
from civicscore.runtime import Runtime
from civicscore_api.v1 import (
    evaluations_pb2,
    evaluations_pb2_grpc,
    periods_pb2,
    periods_pb2_grpc,
)


def _evaluation_name(name: str) -> tuple[str, str]:
    """Split `periods/{period}/evaluations/{code}`."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "periods" or parts[2] != "evaluations" or not parts[3]:
        raise InvalidInput([Violation("name", f"{shown(name)} is not an evaluation name; "
                                      "write periods/2026-Q3/evaluations/SNV", "INVALID_NAME")])
    return parts[1], parts[3]


class EvaluationServicer(evaluations_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def EvaluatePeriod(self, request: evaluations_pb2.EvaluatePeriodRequest, context: grpc.ServicerContext
                       ) -> evaluations_pb2.EvaluatePeriodResponse:
        # Set when the call ends: a client that cancels or whose deadline passes stops the work.
        cancelled = evaluate.cancellation_event(context.add_callback, shutdown=self.rt.shutdown)
        done = evaluate.evaluate_period(self.rt.store, self.rt.rulesets, request.period, now=self.rt.clock(),
                                        idempotency_key=request.idempotency_key, actor=caller(context),
                                        cancelled=cancelled)
        return evaluations_pb2.EvaluatePeriodResponse(
            units_evaluated=done.units_evaluated, new_revisions=done.new_revisions, unchanged=done.unchanged,
            not_assessable=done.not_assessable, recommendations=done.recommendations,
            ruleset_version=done.ruleset_version, ruleset_digest=done.ruleset_digest,
            officials_evaluated=done.officials_evaluated, official_revisions=done.official_revisions)

    @handle_errors
    def GetEvaluation(self, request: evaluations_pb2.GetEvaluationRequest, context: grpc.ServicerContext
                      ) -> evaluations_pb2.GetEvaluationResponse:
        period, code = _evaluation_name(request.name)
        record = queries.get_evaluation(self.rt.store, unit_code=code, period=period, revision=request.revision,
                                        body_format=evaluation_wire.BODY_FORMAT)
        return convert.get_evaluation_reply(record)  # type: ignore[return-value]  # bytes: see app.RawReplies

    @handle_errors
    def ListEvaluations(self, request: evaluations_pb2.ListEvaluationsRequest, context: grpc.ServicerContext
                        ) -> evaluations_pb2.ListEvaluationsResponse:
        quarter = parse_evaluation_period(request.parent, "parent")
        terms = parse_filter(request.filter, {"block", "grade", "unit"})
        scope = f"{quarter}|{request.filter}"
        page = self.rt.store.list_evaluations(
            period=str(quarter), block=terms.get("block"), grade=terms.get("grade"),
            unit_code=terms["unit"].removeprefix("units/") if "unit" in terms else None,
            after=decode_token(request.page_token, scope), limit=page_size(request.page_size))
        return evaluations_pb2.ListEvaluationsResponse(
            evaluations=[convert.evaluation_out(r) for r in page.items],
            next_page_token=encode_token(page.next_cursor, scope))

    @handle_errors
    def ListRankings(self, request: evaluations_pb2.ListRankingsRequest, context: grpc.ServicerContext
                     ) -> evaluations_pb2.ListRankingsResponse:
        rows = queries.rankings(self.rt.store, period=request.parent, block=request.block)
        response = evaluations_pb2.ListRankingsResponse(block=request.block)
        for position, r in rows:
            evaluation = convert.evaluation_out(r)
            response.entries.add(
                rank=position, unit=evaluation.unit, unit_display_name_vi=r.unit_name_vi,
                score=evaluation.score, score_display=evaluation.score_display, grade=evaluation.grade,
                grade_label_vi=evaluation.grade_label_vi, grade_label_en=evaluation.grade_label_en,
                timeliness=r.timeliness, flags=list(r.flags), flag_labels=evaluation.flag_labels)
        return response

    @handle_errors
    def ExplainEvaluation(self, request: evaluations_pb2.ExplainEvaluationRequest, context: grpc.ServicerContext
                          ) -> evaluations_pb2.ExplainEvaluationResponse:
        period, code = _evaluation_name(request.name)
        record = queries.get_evaluation(self.rt.store, unit_code=code, period=period, revision=request.revision)
        explanation = queries.explain(self.rt.store, self.rt.rulesets, record)
        return explanation_out(explanation, convert.evaluation_out(record))

    @handle_errors
    def ListRecommendations(self, request: evaluations_pb2.ListRecommendationsRequest,
                            context: grpc.ServicerContext) -> evaluations_pb2.ListRecommendationsResponse:
        quarter = parse_evaluation_period(request.parent, "parent")
        terms = parse_filter(request.filter, {"kind", "flag", "status", "unit"})
        kind = terms.get("kind")
        if kind is not None and kind not in convert.RECOMMENDATION_KINDS:
            raise InvalidInput([Violation("filter", f"kind {shown(kind)} is not commendation, criticism or "
                                          "escalation", "INVALID_FILTER")])
        scope = f"{quarter}|{request.filter}"
        page = self.rt.store.list_recommendations(
            period=str(quarter), kind=kind, flag=terms.get("flag"),
            status=queries.recommendation_status(terms["status"]) if "status" in terms else None,
            unit_code=terms["unit"].removeprefix("units/") if "unit" in terms else None,
            after=decode_token(request.page_token, scope), limit=page_size(request.page_size))
        return evaluations_pb2.ListRecommendationsResponse(
            recommendations=[convert.recommendation_out(r) for r in page.items],
            next_page_token=encode_token(page.next_cursor, scope))


_PERIOD_KINDS = {"quarter": periods_pb2.PERIOD_KIND_QUARTER, "half_year": periods_pb2.PERIOD_KIND_HALF_YEAR,
                 "year": periods_pb2.PERIOD_KIND_YEAR}


class PeriodServicer(periods_pb2_grpc.PeriodServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @staticmethod
    def _out(summary: queries.PeriodSummary) -> periods_pb2.Period:
        return periods_pb2.Period(name=f"periods/{summary.period}", period_id=summary.period,
                                  start_date=summary.start, end_date=summary.end,
                                  state=periods_pb2.PERIOD_STATE_OPEN, assignments_due=summary.assignments_due,
                                  units_evaluated=summary.units_evaluated, kind=_PERIOD_KINDS[summary.kind],
                                  quarters=summary.quarters, quarters_evaluated=summary.quarters_evaluated)

    @handle_errors
    def GetPeriod(self, request: periods_pb2.GetPeriodRequest, context: grpc.ServicerContext
                  ) -> periods_pb2.GetPeriodResponse:
        return periods_pb2.GetPeriodResponse(period=self._out(queries.period_summary(self.rt.store, request.name)))

    @handle_errors
    def ListPeriods(self, request: periods_pb2.ListPeriodsRequest, context: grpc.ServicerContext
                    ) -> periods_pb2.ListPeriodsResponse:
        if request.filter:
            raise InvalidInput([Violation("filter", "ListPeriods takes no filter yet; leave it empty",
                                          "INVALID_FILTER")])
        periods = queries.list_periods(self.rt.store)
        start = decode_offset(request.page_token, "periods")
        size = page_size(request.page_size)
        chunk = periods[start:start + size]
        more = start + size < len(periods)
        return periods_pb2.ListPeriodsResponse(
            periods=[self._out(p) for p in chunk],
            next_page_token=encode_token(str(start + size) if more else None, "periods"))

