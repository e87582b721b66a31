"""An Explanation as the ExplainEvaluation response (the stored Evaluation message is converted by the caller)."""

from __future__ import annotations

from civicscore.api.convert import extended_out
from civicscore.explain import Contribution, Explanation, Margin
from civicscore_api.v1 import evaluations_pb2


def contribution_out(c: Contribution) -> evaluations_pb2.Contribution:
    return evaluations_pb2.Contribution(
        indicator=c.indicator, display_name_vi=c.name_vi, display_name_en=c.name_en, points=c.points,
        max_points=c.max_points, share=c.share)


def margin_out(m: Margin) -> evaluations_pb2.Margin:
    return evaluations_pb2.Margin(
        subject=m.subject, direction=m.direction, current=m.current, would_become=m.would_become, lever=m.lever,
        amount=m.amount, summary_vi=m.summary_vi, summary_en=m.summary_en)


def explanation_out(
    explanation: Explanation, evaluation: evaluations_pb2.Evaluation
) -> evaluations_pb2.ExplainEvaluationResponse:
    """The response for `explanation`, around `evaluation` (the stored revision it explains)."""
    return evaluations_pb2.ExplainEvaluationResponse(
        evaluation=evaluation,
        contributions=[contribution_out(c) for c in explanation.contributions],
        penalty=explanation.penalty,
        margins=[margin_out(m) for m in explanation.margins],
        inputs_changed=explanation.inputs_changed,
        next_grade=explanation.next_grade,
        next_grade_min_score=explanation.next_grade_min_score or 0.0,
        extended_assignments=[extended_out(task) for task in explanation.extended],
    )
