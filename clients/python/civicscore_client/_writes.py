"""Write calls: each carries an idempotency key and is split into batches the server accepts.

A batch is atomic on the server; batches are not atomic together. When a batch fails, the error
says in `committed` how many leading items earlier batches stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from civicscore_api.v1 import (
    assignments_pb2,
    common_pb2,
    evaluations_pb2,
    measurements_pb2,
    officials_pb2,
    outcomes_pb2,
    units_pb2,
)
from civicscore_client._calls import BATCH_BYTES, batch_keys, new_idempotency_key, split
from civicscore_client._connection import Connection
from civicscore_client._errors import CivicscoreError, InvalidArgument, Violation, index_of_field
from civicscore_client._names import period_name

MAX_BATCH = 10_000

_Message = TypeVar("_Message", bound=Message)
_Reply = TypeVar("_Reply")


class WriteCalls(Connection):
    """Units, assignments, outcomes, measurements, targets, and running an evaluation."""

    def upsert_units(
        self,
        units: Sequence[units_pb2.Unit],
        *,
        idempotency_key: str | None = None,
        validate_only: bool = False,
        batch_size: int = MAX_BATCH,
        timeout: float | None = None,
    ) -> units_pb2.UpsertUnitsResponse:
        """Create or replace units by code; each batch is atomic, counts are summed over batches.

        Say whether each unit is in force with `activity` (UNIT_ACTIVITY_ACTIVE or _INACTIVE): a new
        unit sent with `active` false and no activity is refused, as proto3 cannot tell false from unset.
        """
        return self._batch_write(
            self._units.UpsertUnits, units_pb2.UpsertUnitsRequest, units_pb2.UpsertUnitsResponse, "units", units,
            idempotency_key, validate_only, batch_size, timeout)

    def upsert_assignments(
        self,
        assignments: Sequence[assignments_pb2.Assignment],
        *,
        idempotency_key: str | None = None,
        validate_only: bool = False,
        batch_size: int = MAX_BATCH,
        timeout: float | None = None,
    ) -> assignments_pb2.UpsertAssignmentsResponse:
        """Create or replace assignments by id; each batch is atomic, counts are summed over batches."""
        return self._batch_write(
            self._assignments.UpsertAssignments, assignments_pb2.UpsertAssignmentsRequest,
            assignments_pb2.UpsertAssignmentsResponse, "assignments", assignments, idempotency_key, validate_only,
            batch_size, timeout)

    def upsert_officials(self, officials: Sequence[officials_pb2.Official], *, idempotency_key: str | None = None,
                         validate_only: bool = False, batch_size: int = MAX_BATCH, timeout: float | None = None
                         ) -> officials_pb2.UpsertOfficialsResponse:
        """Create or replace officials by id; each batch is atomic, counts are summed over batches. Leave
        `activity` unset to keep a stored official's; OFFICIAL_ACTIVITY_INACTIVE deactivates them."""
        return self._batch_write(
            self._officials.UpsertOfficials, officials_pb2.UpsertOfficialsRequest,
            officials_pb2.UpsertOfficialsResponse, "officials", officials, idempotency_key, validate_only,
            batch_size, timeout)

    def submit_outcomes(
        self,
        outcomes: Sequence[outcomes_pb2.Outcome],
        *,
        idempotency_key: str | None = None,
        validate_only: bool = False,
        batch_size: int = MAX_BATCH,
        timeout: float | None = None,
    ) -> outcomes_pb2.SubmitOutcomesResponse:
        """Store outcomes in atomic batches of at most `batch_size` (10,000), each with its own key.

        Violation indexes (in errors and in `violations`) refer to positions in `outcomes`, not in a
        batch. When a batch is refused the error's `committed` says how many leading outcomes were
        stored by earlier batches. An INVALID_ARGUMENT error always lists every violation: when the
        server could not fit them all, the batch is re-checked with `validate_only` to fetch the rest.
        """
        return self._batch_write(
            self._outcomes.SubmitOutcomes, outcomes_pb2.SubmitOutcomesRequest, outcomes_pb2.SubmitOutcomesResponse,
            "outcomes", outcomes, idempotency_key, validate_only, batch_size, timeout)

    def _batch_write(self, method: grpc.UnaryUnaryMultiCallable[Any, _Reply], request_type: Callable[..., Message],
                     reply_type: Callable[[], _Reply], field: str, items: Sequence[_Message],
                     idempotency_key: str | None, validate_only: bool, batch_size: int, timeout: float | None
                     ) -> _Reply:
        """Send `items` in atomic batches of `request_type` (whose batch field is `field`); sum the replies.

        Every batch write works the same way: counts are summed, violation indexes are shifted to
        positions in `items`, a refused batch says in `committed` how many items earlier batches
        stored, and an INVALID_ARGUMENT whose list was cut to fit is completed with `validate_only`.
        """
        total: Any = reply_type()
        for offset, batch, key in _batches(items, batch_size, idempotency_key):
            request = request_type(**{field: batch}, idempotency_key=key, validate_only=validate_only)
            try:
                reply: Any = self._calls.unary(method, request, timeout=timeout)
            except InvalidArgument as err:
                if not err.complete and not validate_only:
                    again = request_type(**{field: batch}, idempotency_key=new_idempotency_key(), validate_only=True)
                    checked: Any = self._calls.unary(method, again, timeout=timeout)
                    err.violations = [_from_field_violation(v) for v in checked.violations]
                    err.total_violations = len(err.violations)
                err.violations = [_shifted(v, offset) for v in err.violations]
                err.committed = offset
                raise
            except CivicscoreError as err:
                err.committed = offset
                raise
            for counter, value in reply.ListFields():
                if counter.name != "violations":
                    setattr(total, counter.name, getattr(total, counter.name) + value)
            total.violations.extend(
                _as_field_violation(_shifted(_from_field_violation(v), offset)) for v in reply.violations
            )
        return cast(_Reply, total)

    def validate_outcomes(
        self, outcomes: Sequence[outcomes_pb2.Outcome], *, timeout: float | None = None
    ) -> list[Violation]:
        """Every violation the server finds in `outcomes`, storing nothing; empty when all are valid."""
        reply = self.submit_outcomes(outcomes, validate_only=True, timeout=timeout)
        return [_from_field_violation(v) for v in reply.violations]

    def stream_outcomes(
        self,
        outcomes: Iterable[outcomes_pb2.Outcome],
        *,
        idempotency_key: str | None = None,
        chunk_size: int = MAX_BATCH,
        timeout: float | None = None,
    ) -> outcomes_pb2.StreamOutcomesResponse:
        """Store up to 1,000,000 outcomes atomically as one stream of chunks ended by a commit marker.

        A sequence is resent on UNAVAILABLE with the same key; a one-shot iterable is sent once. If
        the iterable raises, no commit marker is sent (so the server stores nothing) and the
        exception is re-raised.
        """
        if not 1 <= chunk_size <= MAX_BATCH:
            raise ValueError(f"chunk_size must be between 1 and {MAX_BATCH:,}, not {chunk_size}")
        key = idempotency_key or new_idempotency_key()
        failures: list[Exception] = []

        def requests() -> Iterator[outcomes_pb2.StreamOutcomesRequest]:
            return _stream_requests(outcomes, chunk_size, key, failures)

        try:
            reply = self._calls.stream(
                self._outcomes.StreamOutcomes, requests, timeout=timeout, retry=isinstance(outcomes, Sequence)
            )
        except CivicscoreError:
            if failures:
                raise failures[0] from None
            raise
        if failures:
            raise failures[0]
        return reply

    def submit_measurements(
        self,
        measurements: Sequence[measurements_pb2.Measurement],
        *,
        idempotency_key: str | None = None,
        validate_only: bool = False,
        batch_size: int = MAX_BATCH,
        timeout: float | None = None,
    ) -> measurements_pb2.SubmitMeasurementsResponse:
        """Store indicator measurements in atomic batches; counts are summed over batches."""
        return self._batch_write(
            self._measurements.SubmitMeasurements, measurements_pb2.SubmitMeasurementsRequest,
            measurements_pb2.SubmitMeasurementsResponse, "measurements", measurements, idempotency_key,
            validate_only, batch_size, timeout)

    def upsert_targets(
        self,
        targets: Sequence[measurements_pb2.Target],
        *,
        idempotency_key: str | None = None,
        validate_only: bool = False,
        batch_size: int = MAX_BATCH,
        timeout: float | None = None,
    ) -> measurements_pb2.UpsertTargetsResponse:
        """Create or replace indicator targets in atomic batches; counts are summed over batches."""
        return self._batch_write(
            self._measurements.UpsertTargets, measurements_pb2.UpsertTargetsRequest,
            measurements_pb2.UpsertTargetsResponse, "targets", targets, idempotency_key, validate_only, batch_size,
            timeout)

    def evaluate_period(
        self, period: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> evaluations_pb2.EvaluatePeriodResponse:
        """Evaluate every active unit for a quarter with the ruleset in force; a half-year (`2026-H1`) or a year
        (`2026`) is summed up from the stored evaluations of its quarters."""
        request = evaluations_pb2.EvaluatePeriodRequest(
            period=period_name(period), idempotency_key=idempotency_key or new_idempotency_key()
        )
        return self._calls.unary(self._evaluations.EvaluatePeriod, request, timeout=timeout)


def _batches(
    items: Sequence[_Message], batch_size: int, key: str | None
) -> Iterator[tuple[int, Sequence[_Message], str]]:
    """Each batch with its offset and its own idempotency key."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH:,}, not {batch_size}")
    slices = list(split(items, batch_size))
    for (offset, batch), batch_key in zip(slices, batch_keys(key, len(slices)), strict=True):
        yield offset, batch, batch_key


def _shifted(violation: Violation, offset: int) -> Violation:
    """The violation with its index and field path counted from the start of the caller's list."""
    if offset == 0 or violation.index < 0:
        return violation
    field = violation.field
    prefix, bracket, rest = field.partition("[")
    if bracket and index_of_field(field) == violation.index:
        field = f"{prefix}[{violation.index + offset}{rest[rest.index(']') :]}"
    return Violation(violation.index + offset, field, violation.description, violation.reason)


def _from_field_violation(violation: common_pb2.FieldViolation) -> Violation:
    return Violation(violation.index, violation.field, violation.description, violation.reason)


def _as_field_violation(violation: Violation) -> common_pb2.FieldViolation:
    return common_pb2.FieldViolation(
        index=violation.index,
        field=violation.field,
        description=violation.description,
        reason=violation.reason,
    )


def _stream_requests(
    outcomes: Iterable[outcomes_pb2.Outcome], chunk_size: int, key: str, failures: list[Exception]
) -> Iterator[outcomes_pb2.StreamOutcomesRequest]:
    """Chunks then the commit marker; if `outcomes` raises, stop without the marker so nothing is stored.

    gRPC treats an exception in a request iterator like a clean end of stream (grpc/grpc#33038), so
    the exception is kept in `failures` for the caller to re-raise.
    """
    sent = 0
    chunk: list[outcomes_pb2.Outcome] = []
    chunk_bytes = 0
    try:
        for outcome in outcomes:
            chunk.append(outcome)
            chunk_bytes += outcome.ByteSize() + 8
            if len(chunk) == chunk_size or chunk_bytes > BATCH_BYTES:
                yield outcomes_pb2.StreamOutcomesRequest(chunk=outcomes_pb2.OutcomeChunk(outcomes=chunk))
                sent += len(chunk)
                chunk, chunk_bytes = [], 0
        if chunk:
            yield outcomes_pb2.StreamOutcomesRequest(chunk=outcomes_pb2.OutcomeChunk(outcomes=chunk))
            sent += len(chunk)
    except Exception as exc:  # re-raised by stream_outcomes once the call is over
        failures.append(exc)
        return
    yield outcomes_pb2.StreamOutcomesRequest(commit=outcomes_pb2.StreamCommit(outcome_count=sent, idempotency_key=key))
