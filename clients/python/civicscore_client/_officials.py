"""Official calls (cá nhân): the people the committee may commend or criticise, and their results.

Personal data: every read needs `personal.read` (committee, admin; a reporter for the officials of its
units) and is written to the server's audit log with the reader."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from civicscore_api.v1 import evaluations_pb2, officials_pb2
from civicscore_client._calls import new_idempotency_key
from civicscore_client._connection import Connection
from civicscore_client._names import join_filter, period_name, unit_name


def official_name(official: str) -> str:
    """`officials/{id}` from `CB-00123` or `officials/CB-00123`."""
    official = official.strip()
    return official if official.startswith("officials/") else f"officials/{official}"


def official_evaluation_name(period: str, official: str) -> str:
    """`periods/{quarter}/officialEvaluations/{id}`."""
    return f"{period_name(period)}/officialEvaluations/{official_name(official).removeprefix('officials/')}"


class OfficialCalls(Connection):
    """OfficialService's reads (UpsertOfficials is with the other batch writes, in WriteCalls)."""

    def get_official(self, official: str, *, timeout: float | None = None) -> officials_pb2.Official:
        """One official, `CB-00123` or `officials/CB-00123`."""
        message = officials_pb2.GetOfficialRequest(name=official_name(official))
        return self._calls.unary(self._officials.GetOfficial, message, timeout=timeout).official

    def list_officials(self, *, unit: str | None = None, active: bool | None = None, filter: str = "",
                       timeout: float | None = None) -> Iterator[officials_pb2.Official]:
        """Every official matching, by id: with an appointment (at any time) in a unit, active or not."""
        query = join_filter(f"unit={unit_name(unit)}" if unit else "",
                            f"active={'true' if active else 'false'}" if active is not None else "", filter)

        def fetch(token: str) -> tuple[Sequence[officials_pb2.Official], str]:
            message = officials_pb2.ListOfficialsRequest(page_size=1000, page_token=token, filter=query)
            reply = self._calls.unary(self._officials.ListOfficials, message, timeout=timeout)
            return reply.officials, reply.next_page_token

        return self._calls.pages(fetch)

    def delete_official(self, official: str, *, idempotency_key: str | None = None,
                        timeout: float | None = None) -> None:
        """Delete an official entered by mistake (refused once they were evaluated or lead an assignment:
        deactivate them instead)."""
        message = officials_pb2.DeleteOfficialRequest(name=official_name(official),
                                                      idempotency_key=idempotency_key or new_idempotency_key())
        self._calls.unary(self._officials.DeleteOfficial, message, timeout=timeout)

    def get_official_evaluation(self, period: str, official: str, *, revision: int = 0,
                                timeout: float | None = None) -> officials_pb2.OfficialEvaluation:
        """An official's evaluation of a quarter (the latest revision unless one is given)."""
        message = officials_pb2.GetOfficialEvaluationRequest(name=official_evaluation_name(period, official),
                                                             revision=revision)
        return self._calls.unary(self._officials.GetOfficialEvaluation, message, timeout=timeout).evaluation

    def list_official_evaluations(self, period: str, *, unit: str | None = None, flagged: bool | None = None,
                                  timeout: float | None = None) -> Iterator[officials_pb2.OfficialEvaluation]:
        """The officials' evaluations of a quarter, by official id; `flagged`: only those with (or without) a flag."""
        query = join_filter(f"unit={unit_name(unit)}" if unit else "",
                            f"flagged={'true' if flagged else 'false'}" if flagged is not None else "")

        def fetch(token: str) -> tuple[Sequence[officials_pb2.OfficialEvaluation], str]:
            message = officials_pb2.ListOfficialEvaluationsRequest(parent=period_name(period), page_size=1000,
                                                                    page_token=token, filter=query)
            reply = self._calls.unary(self._officials.ListOfficialEvaluations, message, timeout=timeout)
            return reply.evaluations, reply.next_page_token

        return self._calls.pages(fetch)

    def list_official_recommendations(self, period: str, *, unit: str | None = None, official: str | None = None,
                                      kind: str | None = None, flag: str | None = None, status: str | None = None,
                                      timeout: float | None = None) -> Iterator[evaluations_pb2.Recommendation]:
        """The recommendations about officials of a quarter (not superseded unless `status` says so)."""
        query = join_filter(f"unit={unit_name(unit)}" if unit else "",
                            f"official={official_name(official)}" if official else "",
                            f"kind={kind}" if kind else "", f"flag={flag}" if flag else "",
                            f"status={status}" if status else "")

        def fetch(token: str) -> tuple[Sequence[evaluations_pb2.Recommendation], str]:
            message = officials_pb2.ListOfficialRecommendationsRequest(parent=period_name(period), page_size=1000,
                                                                        page_token=token, filter=query)
            reply = self._calls.unary(self._officials.ListOfficialRecommendations, message, timeout=timeout)
            return reply.recommendations, reply.next_page_token

        return self._calls.pages(fetch)
