"""ReviewService: committee decisions, contests, and the recommendation change stream."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import grpc
from google.protobuf import json_format

from civicscore import reviews
from civicscore.api import convert, scope
from civicscore.api.errors import handle_errors
from civicscore.api.identity import caller
from civicscore.api.paging import decode_token, encode_token, page_size
from civicscore.errors import InvalidInput, Violation
from civicscore.rollups import parse_evaluation_period
from civicscore.runtime import Runtime
from civicscore.store.base import ChangeRecord, ContestRecord, ReviewRecord
from civicscore_api.v1 import evaluations_pb2, outcomes_pb2, reviews_pb2, reviews_pb2_grpc

_DECISIONS = {
    reviews_pb2.REVIEW_DECISION_APPROVE: "approved",
    reviews_pb2.REVIEW_DECISION_REJECT: "rejected",
    reviews_pb2.REVIEW_DECISION_DEFER: "deferred",
}
_DECISIONS_OUT = {value: key for key, value in _DECISIONS.items()}
_STATUSES = {status.value: value for status, value in convert.RECOMMENDATION_STATUSES.items()}
_CHANGES = {
    "raised": reviews_pb2.RECOMMENDATION_CHANGE_KIND_RAISED,
    "superseded": reviews_pb2.RECOMMENDATION_CHANGE_KIND_SUPERSEDED,
    "reviewed": reviews_pb2.RECOMMENDATION_CHANGE_KIND_REVIEWED,
    "contested": reviews_pb2.RECOMMENDATION_CHANGE_KIND_CONTESTED,
}
POLL_SECONDS = 0.2
# An idle watch sends a heartbeat this often: a proxy cuts a stream that sends nothing for its read
# timeout (nginx's grpc_read_timeout: 60 s by default), and the heartbeat carries the cursor.
HEARTBEAT_SECONDS = 20.0
MAX_CORRECTIONS = 10_000


def review_out(r: ReviewRecord) -> reviews_pb2.RecommendationReview:
    return reviews_pb2.RecommendationReview(
        review_id=r.seq, recommendation=f"periods/{r.period}/recommendations/{r.unit_code}~{r.flag}",
        recommendation_id=r.recommendation_id, decision=_DECISIONS_OUT[r.decision],
        previous_status=_STATUSES.get(r.previous_status, evaluations_pb2.RECOMMENDATION_STATUS_UNSPECIFIED),
        status=_STATUSES.get(r.decision, evaluations_pb2.RECOMMENDATION_STATUS_UNSPECIFIED), reason=r.reason,
        reviewer=r.reviewer, review_time=convert.timestamp_out(r.decided_at))


def _snapshot_out(text: str) -> reviews_pb2.EvaluationSnapshot:
    data = json.loads(text)
    return reviews_pb2.EvaluationSnapshot(revision=data["revision"], assessable=data["assessable"],
                                          score=data["score"], grade=data["grade"], flags=data["flags"])


class ReviewServicer(reviews_pb2_grpc.ReviewServiceServicer):
    def __init__(self, runtime: Runtime, *, heartbeat_s: float = HEARTBEAT_SECONDS) -> None:
        self.rt = runtime
        self.heartbeat_s = heartbeat_s

    def _contest_out(self, c: ContestRecord) -> reviews_pb2.Contest:
        corrections = [json_format.ParseDict(item, outcomes_pb2.Outcome()) for item in json.loads(c.corrections_json)]
        current = self.rt.store.get_recommendation(c.recommendation_id)
        return reviews_pb2.Contest(
            name=f"contests/{c.contest_id}",
            recommendation=(reviews.recommendation_name(current) if current is not None
                            else f"periods/{c.period}/recommendations/{c.unit_code}~{c.flag}"),
            recommendation_id=c.recommendation_id, unit=f"units/{c.unit_code}", period=c.period, text=c.text,
            corrections=corrections, accepted=c.accepted, duplicates=c.duplicates,
            before=_snapshot_out(c.before_json), after=_snapshot_out(c.after_json), contested_by=c.contested_by,
            create_time=convert.timestamp_out(c.created_at),
            current=convert.recommendation_out(current) if current is not None else None)

    @handle_errors
    def ReviewRecommendation(self, request: reviews_pb2.ReviewRecommendationRequest, context: grpc.ServicerContext
                             ) -> reviews_pb2.ReviewRecommendationResponse:
        record, review = reviews.review(
            self.rt.store, request.name, recommendation_id=request.recommendation_id,
            decision=_DECISIONS.get(request.decision, ""), reason=request.reason, actor=caller(context),
            now=self.rt.clock(), idempotency_key=request.idempotency_key)
        return reviews_pb2.ReviewRecommendationResponse(recommendation=convert.recommendation_out(record),
                                                        review=review_out(review))

    @handle_errors
    def ListRecommendationReviews(self, request: reviews_pb2.ListRecommendationReviewsRequest,
                                  context: grpc.ServicerContext) -> reviews_pb2.ListRecommendationReviewsResponse:
        return reviews_pb2.ListRecommendationReviewsResponse(
            reviews=[review_out(r) for r in reviews.list_reviews(self.rt.store, request.name, now=self.rt.clock())])

    @handle_errors
    def ContestRecommendation(self, request: reviews_pb2.ContestRecommendationRequest,
                              context: grpc.ServicerContext) -> reviews_pb2.ContestRecommendationResponse:
        if len(request.outcomes) > MAX_CORRECTIONS:
            raise InvalidInput([Violation("outcomes", f"at most {MAX_CORRECTIONS:,} corrections", "TOO_MANY_ITEMS")])
        scope.check_outcomes(self.rt.store, [o.assignment for o in request.outcomes])
        corrections = json.dumps([json_format.MessageToDict(o) for o in request.outcomes], ensure_ascii=False,
                                 sort_keys=True)
        record = reviews.contest(
            self.rt.store, self.rt.rulesets, request.name, recommendation_id=request.recommendation_id,
            text=request.text, outcomes=[convert.outcome_input(o) for o in request.outcomes],
            corrections_json=corrections, actor=caller(context), now=self.rt.clock(),
            idempotency_key=request.idempotency_key)
        return reviews_pb2.ContestRecommendationResponse(contest=self._contest_out(record))

    @handle_errors
    def GetContest(self, request: reviews_pb2.GetContestRequest, context: grpc.ServicerContext
                   ) -> reviews_pb2.GetContestResponse:
        found = reviews.get_contest(self.rt.store, request.name, now=self.rt.clock())
        return reviews_pb2.GetContestResponse(contest=self._contest_out(found))

    @handle_errors
    def ListContests(self, request: reviews_pb2.ListContestsRequest, context: grpc.ServicerContext
                     ) -> reviews_pb2.ListContestsResponse:
        quarter = parse_evaluation_period(request.parent, "parent")
        scope_key = f"contests|{quarter}"
        page = self.rt.store.list_contests(period=str(quarter), after=decode_token(request.page_token, scope_key),
                                           limit=page_size(request.page_size))
        shown_contests = reviews.readable_contests(self.rt.store, page.items, now=self.rt.clock())
        return reviews_pb2.ListContestsResponse(contests=[self._contest_out(c) for c in shown_contests],
                                                next_page_token=encode_token(page.next_cursor, scope_key))

    def WatchRecommendations(self, request: reviews_pb2.WatchRecommendationsRequest, context: grpc.ServicerContext
                             ) -> Iterator[reviews_pb2.WatchRecommendationsResponse]:
        return self._watch(request, context)

    # The stream's steps are wrapped one by one: an error raised while a generator runs would
    # otherwise reach the client as UNKNOWN instead of its own status.
    @handle_errors
    def _first_position(self, request: reviews_pb2.WatchRecommendationsRequest, context: grpc.ServicerContext
                        ) -> int:
        return reviews.start_position(self.rt.store, request.cursor, from_newest=request.from_newest)

    @handle_errors
    def _changes(self, position: int, context: grpc.ServicerContext) -> list[ChangeRecord]:
        return reviews.changes_after(self.rt.store, position, limit=500)

    def _watch(self, request: reviews_pb2.WatchRecommendationsRequest, context: grpc.ServicerContext
               ) -> Iterator[reviews_pb2.WatchRecommendationsResponse]:
        """The backlog after the cursor, `caught_up`, then changes as they commit, a heartbeat whenever
        nothing was sent for `heartbeat_s`; ended with UNAVAILABLE when the server shuts down, so that
        the client resumes from its last cursor on another replica instead of holding the shutdown."""
        position = self._first_position(request, context)
        ended = threading.Event()
        context.add_callback(ended.set)
        caught_up = False
        last_sent = time.monotonic()
        while context.is_active() and not ended.is_set():
            if self.rt.shutdown.begun.is_set():
                context.abort(grpc.StatusCode.UNAVAILABLE, f"this server is shutting down: resume the watch from "
                              f"cursor {position} (the last one sent) on another server")
            changes = self._changes(position, context)
            for change in changes:
                position = change.seq
                if change.recommendation.official_id:
                    # About an official: personal data, read with OfficialService (audited), never streamed.
                    continue
                out = reviews_pb2.RecommendationChange(
                    cursor=str(position), kind=_CHANGES[change.change],
                    recommendation=convert.recommendation_out(change.recommendation),
                    change_time=convert.timestamp_out(change.changed_at))
                yield reviews_pb2.WatchRecommendationsResponse(cursor=str(position), change=out)
            if changes:
                last_sent = time.monotonic()
                continue
            if not caught_up:
                caught_up = True
                yield reviews_pb2.WatchRecommendationsResponse(cursor=str(position), caught_up=True)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= self.heartbeat_s:
                yield reviews_pb2.WatchRecommendationsResponse(cursor=str(position), heartbeat=True)
                last_sent = time.monotonic()
            ended.wait(POLL_SECONDS)
