"""Review calls: the committee's decisions, a unit's contest, and the stream of recommendation changes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc

from civicscore_api.v1 import outcomes_pb2, reviews_pb2
from civicscore_client._calls import Caller, new_idempotency_key
from civicscore_client._connection import Connection
from civicscore_client._errors import error_from_rpc
from civicscore_client._names import period_name

DECISIONS = {"approve": reviews_pb2.REVIEW_DECISION_APPROVE, "reject": reviews_pb2.REVIEW_DECISION_REJECT,
             "defer": reviews_pb2.REVIEW_DECISION_DEFER}


def recommendation_name(name: str) -> str:
    """`periods/2026-Q3/recommendations/STP~criticism` as given, or from `2026-Q3/STP~criticism`."""
    name = name.strip()
    if name.startswith("periods/"):
        return name
    period, _, rest = name.partition("/")
    return f"{period_name(period)}/recommendations/{rest}"


def contest_name(name: str) -> str:
    """`contests/{id}` for a bare id or a full name."""
    name = name.strip()
    return name if name.startswith("contests/") else f"contests/{name}"


class Watch:
    """An open WatchRecommendations stream: iterate for messages; `cursor` is the last one received.

    `cancel()` ends it (the server stops at once). Resume later with `watch_recommendations(cursor=...)`.
    """

    def __init__(self, call: grpc.Future, calls: Caller) -> None:  # type: ignore[type-arg]
        self._call = call
        self._calls = calls
        self.cursor = ""

    def __iter__(self) -> Iterator[reviews_pb2.WatchRecommendationsResponse]:
        try:
            for message in self._call:  # type: ignore[attr-defined]
                self.cursor = message.cursor
                yield message
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                return
            raise error_from_rpc(err) from err

    def cancel(self) -> None:
        self._call.cancel()


class ReviewCalls(Connection):
    """ReviewService."""

    def review_recommendation(self, name: str, decision: str, reason: str, *, recommendation_id: int = 0,
                              idempotency_key: str | None = None, timeout: float | None = None
                              ) -> reviews_pb2.ReviewRecommendationResponse:
        """Approve, reject or defer (`decision`) a recommendation, with a required reason.

        Retried after a lost reply with the same idempotency key (a fresh one unless given): recorded once.
        """
        if decision.lower() not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}; decisions: {', '.join(DECISIONS)}")
        request = reviews_pb2.ReviewRecommendationRequest(
            name=recommendation_name(name), recommendation_id=recommendation_id,
            decision=DECISIONS[decision.lower()], reason=reason,
            idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._reviews.ReviewRecommendation, request, timeout=timeout)

    def list_recommendation_reviews(self, name: str, *, timeout: float | None = None
                                    ) -> list[reviews_pb2.RecommendationReview]:
        """Every decision on recommendations of that name, oldest first."""
        request = reviews_pb2.ListRecommendationReviewsRequest(name=recommendation_name(name))
        return list(self._calls.unary(self._reviews.ListRecommendationReviews, request, timeout=timeout).reviews)

    def contest_recommendation(self, name: str, text: str, outcomes: Sequence[outcomes_pb2.Outcome] = (), *,
                               recommendation_id: int = 0, idempotency_key: str | None = None,
                               timeout: float | None = None) -> reviews_pb2.Contest:
        """Contest a recommendation with a text and corrected outcomes; the quarter is re-evaluated.

        Retried after a lost reply with the same idempotency key (a fresh one unless given): recorded once.
        """
        request = reviews_pb2.ContestRecommendationRequest(
            name=recommendation_name(name), recommendation_id=recommendation_id, text=text, outcomes=outcomes,
            idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._reviews.ContestRecommendation, request, timeout=timeout or 300).contest

    def get_contest(self, name: str, *, timeout: float | None = None) -> reviews_pb2.Contest:
        request = reviews_pb2.GetContestRequest(name=contest_name(name))
        return self._calls.unary(self._reviews.GetContest, request, timeout=timeout).contest

    def list_contests(self, period: str, *, timeout: float | None = None) -> Iterator[reviews_pb2.Contest]:
        """Every contest of a quarter, oldest first."""

        def fetch(token: str) -> tuple[Sequence[reviews_pb2.Contest], str]:
            request = reviews_pb2.ListContestsRequest(parent=period_name(period), page_size=1000, page_token=token)
            reply = self._calls.unary(self._reviews.ListContests, request, timeout=timeout)
            return reply.contests, reply.next_page_token

        return self._calls.pages(fetch)

    def watch_recommendations(self, cursor: str = "", *, timeout: float | None = None) -> Watch:
        """Changes after `cursor` ("" = from the first), then new ones as they are committed, until cancelled.

        No deadline unless `timeout` is given (a watch is long-lived)."""
        request = reviews_pb2.WatchRecommendationsRequest(cursor=cursor)
        call = self._reviews.WatchRecommendations(request, timeout=timeout, metadata=self._calls.metadata)
        watch = Watch(call, self._calls)  # type: ignore[arg-type]
        watch.cursor = cursor
        return watch
