"""Read calls: one item by name, or every item of a List call, page after page."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from civicscore_api.v1 import (
    assignments_pb2,
    evaluations_pb2,
    measurements_pb2,
    outcomes_pb2,
    periods_pb2,
    rulesets_pb2,
    units_pb2,
)
from civicscore_client._connection import Connection
from civicscore_client._names import (
    assignment_name,
    evaluation_name,
    join_filter,
    period_id,
    period_name,
    unit_name,
)

PAGE_SIZE = 1000


class ReadCalls(Connection):
    """Units, assignments, outcomes, measurements, targets, evaluations, rankings, rulesets, periods."""

    def get_unit(self, unit: str, *, timeout: float | None = None) -> units_pb2.Unit:
        """One unit, by code or name."""
        request = units_pb2.GetUnitRequest(name=unit_name(unit))
        return self._calls.unary(self._units.GetUnit, request, timeout=timeout).unit

    def list_units(
        self,
        *,
        kind: str | None = None,
        block: str | None = None,
        active: bool | None = None,
        parent: str | None = None,
        filter: str = "",
        timeout: float | None = None,
    ) -> Iterator[units_pb2.Unit]:
        """Every unit matching the filter, by code; `kind` is department, ward, commune or district."""
        query = join_filter(
            f"kind={kind.lower()}" if kind else "",
            f"block={block}" if block else "",
            f"active={str(active).lower()}" if active is not None else "",
            f"parent={unit_name(parent)}" if parent else "",
            filter,
        )

        def fetch(token: str) -> tuple[Sequence[units_pb2.Unit], str]:
            request = units_pb2.ListUnitsRequest(page_size=PAGE_SIZE, page_token=token, filter=query)
            reply = self._calls.unary(self._units.ListUnits, request, timeout=timeout)
            return reply.units, reply.next_page_token

        return self._calls.pages(fetch)

    def get_assignment(self, assignment: str, *, timeout: float | None = None) -> assignments_pb2.Assignment:
        """One assignment, by id or name."""
        request = assignments_pb2.GetAssignmentRequest(name=assignment_name(assignment))
        return self._calls.unary(self._assignments.GetAssignment, request, timeout=timeout).assignment

    def list_assignments(
        self,
        *,
        unit: str | None = None,
        area: str | None = None,
        due_in: str | None = None,
        filter: str = "",
        timeout: float | None = None,
    ) -> Iterator[assignments_pb2.Assignment]:
        """Every assignment matching the filter, ordered by id; `area` is par or dx, `due_in` a quarter."""
        query = join_filter(
            f"unit={unit_name(unit)}" if unit else "",
            f"area={area.lower()}" if area else "",
            f"due_in={period_id(due_in)}" if due_in else "",
            filter,
        )

        def fetch(token: str) -> tuple[Sequence[assignments_pb2.Assignment], str]:
            request = assignments_pb2.ListAssignmentsRequest(page_size=PAGE_SIZE, page_token=token, filter=query)
            reply = self._calls.unary(self._assignments.ListAssignments, request, timeout=timeout)
            return reply.assignments, reply.next_page_token

        return self._calls.pages(fetch)

    def list_outcomes(
        self,
        *,
        assignment: str | None = None,
        unit: str | None = None,
        filter: str = "",
        timeout: float | None = None,
    ) -> Iterator[outcomes_pb2.Outcome]:
        """Every stored outcome matching the filter, in arrival order."""
        query = join_filter(
            f"assignment={assignment_name(assignment)}" if assignment else "",
            f"unit={unit_name(unit)}" if unit else "",
            filter,
        )

        def fetch(token: str) -> tuple[Sequence[outcomes_pb2.Outcome], str]:
            request = outcomes_pb2.ListOutcomesRequest(page_size=PAGE_SIZE, page_token=token, filter=query)
            reply = self._calls.unary(self._outcomes.ListOutcomes, request, timeout=timeout)
            return reply.outcomes, reply.next_page_token

        return self._calls.pages(fetch)

    def list_measurements(
        self,
        *,
        unit: str | None = None,
        period: str | None = None,
        indicator: str | None = None,
        filter: str = "",
        timeout: float | None = None,
    ) -> Iterator[measurements_pb2.Measurement]:
        """Every current measurement matching the filter, ordered by unit, period and indicator."""
        query = join_filter(
            f"unit={unit_name(unit)}" if unit else "",
            f"period={period_id(period)}" if period else "",
            f"indicator={indicator}" if indicator else "",
            filter,
        )

        def fetch(token: str) -> tuple[Sequence[measurements_pb2.Measurement], str]:
            request = measurements_pb2.ListMeasurementsRequest(page_size=PAGE_SIZE, page_token=token, filter=query)
            reply = self._calls.unary(self._measurements.ListMeasurements, request, timeout=timeout)
            return reply.measurements, reply.next_page_token

        return self._calls.pages(fetch)

    def list_targets(
        self,
        *,
        period: str | None = None,
        indicator: str | None = None,
        unit: str | None = None,
        filter: str = "",
        timeout: float | None = None,
    ) -> Iterator[measurements_pb2.Target]:
        """Every target matching the filter, ordered by period, indicator and scope."""
        query = join_filter(
            f"period={period_id(period)}" if period else "",
            f"indicator={indicator}" if indicator else "",
            f"unit={unit_name(unit)}" if unit else "",
            filter,
        )

        def fetch(token: str) -> tuple[Sequence[measurements_pb2.Target], str]:
            request = measurements_pb2.ListTargetsRequest(page_size=PAGE_SIZE, page_token=token, filter=query)
            reply = self._calls.unary(self._measurements.ListTargets, request, timeout=timeout)
            return reply.targets, reply.next_page_token

        return self._calls.pages(fetch)

    def get_evaluation(
        self, period: str, unit: str, *, revision: int = 0, timeout: float | None = None
    ) -> evaluations_pb2.Evaluation:
        """One unit's evaluation for a period (quarter, half-year or year): the latest revision, or the one named."""
        request = evaluations_pb2.GetEvaluationRequest(name=evaluation_name(period, unit), revision=revision)
        return self._calls.unary(self._evaluations.GetEvaluation, request, timeout=timeout).evaluation

    def list_evaluations(
        self,
        period: str,
        *,
        block: str | None = None,
        grade: str | None = None,
        unit: str | None = None,
        filter: str = "",
        timeout: float | None = None,
    ) -> Iterator[evaluations_pb2.Evaluation]:
        """The latest evaluation of every unit of a period matching the filter, ordered by unit code."""
        query = join_filter(
            f"block={block}" if block else "",
            f"grade={grade}" if grade else "",
            f"unit={unit_name(unit)}" if unit else "",
            filter,
        )

        def fetch(token: str) -> tuple[Sequence[evaluations_pb2.Evaluation], str]:
            request = evaluations_pb2.ListEvaluationsRequest(
                parent=period_name(period), page_size=PAGE_SIZE, page_token=token, filter=query
            )
            reply = self._calls.unary(self._evaluations.ListEvaluations, request, timeout=timeout)
            return reply.evaluations, reply.next_page_token

        return self._calls.pages(fetch)

    def list_rankings(
        self, period: str, block: str, *, timeout: float | None = None
    ) -> list[evaluations_pb2.RankingEntry]:
        """A block's units ranked for a period (quarter, half-year or year); unassessable units last, with rank 0."""
        request = evaluations_pb2.ListRankingsRequest(parent=period_name(period), block=block)
        return list(self._calls.unary(self._evaluations.ListRankings, request, timeout=timeout).entries)

    def list_recommendations(
        self,
        period: str,
        *,
        kind: str | None = None,
        flag: str | None = None,
        status: str | None = None,
        unit: str | None = None,
        filter: str = "",
        timeout: float | None = None,
    ) -> Iterator[evaluations_pb2.Recommendation]:
        """Recommendations of a period (superseded ones only when `status` asks for them)."""
        query = join_filter(
            f"kind={kind.lower()}" if kind else "",
            f"flag={flag}" if flag else "",
            f"status={status.lower()}" if status else "",
            f"unit={unit_name(unit)}" if unit else "",
            filter,
        )

        def fetch(token: str) -> tuple[Sequence[evaluations_pb2.Recommendation], str]:
            request = evaluations_pb2.ListRecommendationsRequest(
                parent=period_name(period), page_size=PAGE_SIZE, page_token=token, filter=query
            )
            reply = self._calls.unary(self._evaluations.ListRecommendations, request, timeout=timeout)
            return reply.recommendations, reply.next_page_token

        return self._calls.pages(fetch)

    def get_active_ruleset(self, *, include_files: bool = False, timeout: float | None = None) -> rulesets_pb2.Ruleset:
        """The ruleset the engine evaluates with (with its rule files when asked)."""
        request = rulesets_pb2.GetActiveRulesetRequest(include_files=include_files)
        return self._calls.unary(self._rulesets.GetActiveRuleset, request, timeout=timeout).ruleset

    def get_period(self, period: str, *, timeout: float | None = None) -> periods_pb2.Period:
        """One period (quarter, half-year or year) with its figures."""
        request = periods_pb2.GetPeriodRequest(name=period_name(period))
        return self._calls.unary(self._periods.GetPeriod, request, timeout=timeout).period

    def list_periods(self, *, timeout: float | None = None) -> Iterator[periods_pb2.Period]:
        """Every quarter that has assignments due or evaluations, and the half-years and years of which a quarter
        has evaluations; newest first."""

        def fetch(token: str) -> tuple[Sequence[periods_pb2.Period], str]:
            request = periods_pb2.ListPeriodsRequest(page_size=PAGE_SIZE, page_token=token)
            reply = self._calls.unary(self._periods.ListPeriods, request, timeout=timeout)
            return reply.periods, reply.next_page_token

        return self._calls.pages(fetch)
