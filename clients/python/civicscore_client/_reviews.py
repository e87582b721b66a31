"""Review calls: the committee's decisions, a unit's contest, and the stream of recommendation changes."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from civicscore_api.v1 import outcomes_pb2, reviews_pb2
from civicscore_client._calls import Caller, new_idempotency_key, tls_handshake_failed
from civicscore_client._connection import Connection
from civicscore_client._errors import CivicscoreError, Unavailable, error_from_rpc
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

    Every message is yielded: changes, the `caught_up` mark (again after each resume) and heartbeats
    (sent by an idle stream; no change in them). A watch broken by the server or the network
    (UNAVAILABLE: a server shutting down or killed, a dropped connection, a proxy's timeout) is
    resumed from `cursor`, after a pause with exponential backoff and full jitter, so every change is
    seen exactly once, in order, across resumes (`resumes` counts them; `on_resume`, if given, is told
    each error and pause first). Other errors end it with their exception and are never resumed:
    OUT_OF_RANGE (a cursor past the newest change: another database), PERMISSION_DENIED,
    UNAUTHENTICATED, a failed TLS handshake. Until the first message arrives, UNAVAILABLE is retried
    like any call (the client's `max_attempts`); after that, `resume_attempts` failed attempts in a
    row (None: no limit) end it. `cancel()` ends it, from any thread.
    """

    def __init__(self, open_call: Callable[[str, float | None], Any], calls: Caller, *, cursor: str = "",
                 timeout: float | None = None, resume: bool = True, resume_attempts: int | None = None,
                 on_resume: Callable[[CivicscoreError, float], None] | None = None) -> None:
        self._open_call = open_call
        self._calls = calls
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._resume = resume
        self._resume_attempts = resume_attempts
        self._on_resume = on_resume
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self.cursor = cursor
        self.resumes = 0
        self._call = open_call(cursor, timeout)

    def __iter__(self) -> Iterator[reviews_pb2.WatchRecommendationsResponse]:
        received = False  # whether any attempt got a message (the watch is known to work)
        failures = 0  # attempts in a row that failed
        delay = self._calls.initial_backoff
        while True:
            try:
                for message in self._call:
                    self.cursor = message.cursor
                    received, failures, delay = True, 0, self._calls.initial_backoff
                    yield message
                return  # the server ended the stream
            except grpc.RpcError as err:
                if self._cancelled.is_set() or err.code() == grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                    return
                error = error_from_rpc(err)
                failures += 1
                if not self._resumable(error, received=received, failures=failures):
                    raise error from err
            pause = random.uniform(0, delay)  # full jitter: watchers of one server do not come back in step
            delay = min(delay * 2, self._calls.max_backoff)
            if self._on_resume is not None:
                self._on_resume(error, pause)
            if self._cancelled.wait(pause):
                return
            with self._lock:
                if self._cancelled.is_set():
                    return
                self.resumes += 1
                self._call = self._open_call(self.cursor, self._remaining())

    def _resumable(self, error: CivicscoreError, *, received: bool, failures: int) -> bool:
        if not self._resume or not isinstance(error, Unavailable) or tls_handshake_failed(error):
            return False
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            return False
        limit = self._resume_attempts if received else self._calls.max_attempts - 1
        return limit is None or failures <= limit

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def cancel(self) -> None:
        """End the watch: the stream in progress is cancelled and no resume follows."""
        with self._lock:
            self._cancelled.set()
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
        """Contest a recommendation with a text and corrected outcomes; the quarter is re-evaluated. A half-year's
        or year's recommendation takes a text only (corrections belong to the contest of a quarter).

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
        """Every contest of a period, oldest first."""

        def fetch(token: str) -> tuple[Sequence[reviews_pb2.Contest], str]:
            request = reviews_pb2.ListContestsRequest(parent=period_name(period), page_size=1000, page_token=token)
            reply = self._calls.unary(self._reviews.ListContests, request, timeout=timeout)
            return reply.contests, reply.next_page_token

        return self._calls.pages(fetch)

    def watch_recommendations(self, cursor: str = "", *, from_newest: bool = False, timeout: float | None = None,
                              resume: bool = True, resume_attempts: int | None = None,
                              on_resume: Callable[[CivicscoreError, float], None] | None = None) -> Watch:
        """Changes after `cursor` ("" = from the first), then new ones as they are committed, until cancelled;
        with `from_newest`, only changes after the newest one when the watch begins (its `caught_up`
        message carries that cursor).

        No deadline unless `timeout` is given (a watch is long-lived; the deadline covers every resume).
        A broken watch is resumed from its last cursor (see `Watch`) unless `resume` is False."""

        def open_call(after: str, remaining: float | None) -> Any:
            # Once a cursor came (the first `caught_up` at the latest), a resume continues from it.
            request = reviews_pb2.WatchRecommendationsRequest(cursor=after, from_newest=from_newest and not after)
            return self._reviews.WatchRecommendations(request, timeout=remaining, metadata=self._calls.metadata)

        return Watch(open_call, self._calls, cursor=cursor, timeout=timeout, resume=resume,
                     resume_attempts=resume_attempts, on_resume=on_resume)
