"""Exceptions raised by the SDK, built from the server's rich `google.rpc.Status`.

CivicscoreError                 any failed call; `.code`, `.message`, `.reason`
 ├── InvalidArgument            INVALID_ARGUMENT, with `.violations`
 ├── NotFound                   NOT_FOUND
 ├── AlreadyExists              ALREADY_EXISTS, with the conflicting `.ids`
 ├── FailedPrecondition         FAILED_PRECONDITION (closed period, no ruleset in force, inactive unit)
 │    └── OutOfRange            OUT_OF_RANGE (a watch cursor past the newest change: the message names it)
 ├── ResourceExhausted          RESOURCE_EXHAUSTED (limits, overload)
 ├── Unauthenticated            UNAUTHENTICATED
 ├── PermissionDenied           PERMISSION_DENIED
 ├── Unavailable                UNAVAILABLE after every retry (server down or unreachable)
 ├── DeadlineExceeded           DEADLINE_EXCEEDED (no reply within the deadline)
 ├── Cancelled                  CANCELLED
 └── ServerError                INTERNAL, UNKNOWN and anything else the caller did not cause
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

_INDEX_IN_FIELD = re.compile(r"^[A-Za-z_]+\[(\d+)\]")
_ID_IN_MESSAGE = re.compile(r"([A-Za-z0-9._:-]+) \(item \d+\)")


@dataclass(frozen=True)
class Violation:
    """One problem with one field of one item; `index` is the item's position, -1 for the request."""

    index: int
    field: str
    description: str
    reason: str = ""


class CivicscoreError(Exception):
    """A call to civicscore failed; `reason` and `metadata` come from the server's `ErrorInfo`, when sent."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        # For writes split into several batches: items stored by the batches sent before this error.
        self.committed = 0
        # True when the server itself sent a google.rpc.Status; False for transport failures
        # (connection refused, no route, dropped connection) and plain statuses.
        self.from_server = False
        # Seconds the server asks the caller to wait before trying again (google.rpc.RetryInfo), when sent.
        self.retry_after: float | None = None


class InvalidArgument(CivicscoreError):
    """The request was refused as a whole; `violations` names every bad field of every bad item."""

    def __init__(
        self,
        message: str,
        *,
        violations: list[Violation] | None = None,
        total_violations: int | None = None,
        reason: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=grpc.StatusCode.INVALID_ARGUMENT, reason=reason, metadata=metadata)
        self.violations: list[Violation] = list(violations or [])
        # The server sends at most what fits in the error; the rest can be fetched with `validate_only`.
        self.total_violations = max(total_violations or 0, len(self.violations))

    @property
    def complete(self) -> bool:
        """Whether `violations` holds every violation the server found."""
        return len(self.violations) >= self.total_violations


class NotFound(CivicscoreError):
    """A named resource (unit, assignment, period, evaluation) does not exist."""


class AlreadyExists(CivicscoreError):
    """An id was stored before with different content; `ids` lists the conflicting ids (e.g. outcome ids)."""

    def __init__(
        self,
        message: str,
        *,
        ids: list[str] | None = None,
        reason: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=grpc.StatusCode.ALREADY_EXISTS, reason=reason, metadata=metadata)
        self.ids: list[str] = list(ids or [])


class FailedPrecondition(CivicscoreError):
    """The system is not in a state that allows the call (closed period, no ruleset in force)."""


class OutOfRange(FailedPrecondition):
    """A position beyond what exists, e.g. a watch cursor past the newest change (from another database,
    or from before a restore); the message names the newest position. A FailedPrecondition too, as
    gRPC describes OUT_OF_RANGE as its more specific form."""


class ResourceExhausted(CivicscoreError):
    """A limit was hit (message size, request rate, server overload); retry later or send less.

    `reason` says which (RATE_LIMITED, TOO_MANY_IN_FLIGHT, ...) and `retry_after` how long to wait."""


class Unauthenticated(CivicscoreError):
    """The call carried no valid credentials."""


class PermissionDenied(CivicscoreError):
    """The caller may not make this call."""


class Unavailable(CivicscoreError):
    """The server could not be reached, even after retrying."""


class DeadlineExceeded(CivicscoreError):
    """No reply within the deadline; a write may still have landed, so retry with the same idempotency key."""


class Cancelled(CivicscoreError):
    """The call was cancelled before it finished."""


class ServerError(CivicscoreError):
    """The server failed for a reason the caller did not cause (INTERNAL, UNKNOWN, UNIMPLEMENTED...)."""


_BY_CODE: dict[grpc.StatusCode, type[CivicscoreError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.ABORTED: ResourceExhausted,
}


def index_of_field(field: str) -> int:
    """The item index in a path like `outcomes[3].completed_on`; -1 for a request-level field."""
    match = _INDEX_IN_FIELD.match(field)
    return int(match.group(1)) if match else -1


# gRPC's words for a stream the other end of the connection reset. A proxy (nginx's grpc_pass) resets a
# call whose replica died after its reply began with RST_STREAM INTERNAL_ERROR, which gRPC reports as
# INTERNAL with these words and no status of ours: the transport failed, not the server, so the call is
# UNAVAILABLE (retried like any other: writes carry idempotency keys; a watch resumes from its cursor).
# An INTERNAL the server itself returns carries a rich status and is never taken for this.
_STREAM_RESET = "Received RST_STREAM"


def error_from_rpc(err: grpc.RpcError) -> CivicscoreError:
    """The exception matching a failed call, with its `BadRequest`, `ErrorInfo`, `ResourceInfo` and
    `RetryInfo` decoded."""
    call = err if isinstance(err, grpc.Call) else None
    code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
    message = (call.details() if call is not None else None) or str(err) or code.name
    violations: list[Violation] = []
    reason = ""
    metadata: dict[str, str] = {}
    resources: list[str] = []
    retry_after: float | None = None
    status = _rich_status(err)
    if status is not None:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend(
                    Violation(index_of_field(v.field), v.field, v.description, v.reason)
                    for v in bad_request.field_violations
                )
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
                metadata.update(info.metadata)
            elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
                resource = error_details_pb2.ResourceInfo()
                detail.Unpack(resource)
                resources.append(resource.resource_name)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    if code == grpc.StatusCode.INTERNAL and status is None and _STREAM_RESET in message:
        code = grpc.StatusCode.UNAVAILABLE
    error = _build(code, message, violations, reason, metadata, resources)
    error.from_server = status is not None
    error.retry_after = retry_after
    return error


def _build(
    code: grpc.StatusCode,
    message: str,
    violations: list[Violation],
    reason: str,
    metadata: dict[str, str],
    resources: list[str],
) -> CivicscoreError:
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        total = metadata.get("total", "")
        return InvalidArgument(
            message,
            violations=violations,
            total_violations=int(total) if total.isdigit() else None,
            reason=reason,
            metadata=metadata,
        )
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(
            message, ids=_conflicting_ids(message, metadata, resources), reason=reason, metadata=metadata
        )
    kind = _BY_CODE.get(code, ServerError)
    return kind(message, code=code, reason=reason, metadata=metadata)


def _rich_status(err: grpc.RpcError) -> status_pb2.Status | None:
    """The decoded `google.rpc.Status`, or None when the server sent a plain status (or it is unreadable)."""
    if not isinstance(err, grpc.Call):
        return None
    try:
        status: status_pb2.Status | None = rpc_status.from_call(err)
    except ValueError:  # code or message disagree with the trailer: fall back to the plain status
        return None
    return status


def _conflicting_ids(message: str, metadata: dict[str, str], resources: list[str]) -> list[str]:
    """Ids named by the server, from ErrorInfo metadata, ResourceInfo or, failing both, the message."""
    for key in ("ids", "outcome_ids", "outcome_id", "id"):
        if metadata.get(key):
            return [part.strip() for part in metadata[key].split(",") if part.strip()]
    if resources:
        return [name.rsplit("/", 1)[-1] for name in resources]
    return _ID_IN_MESSAGE.findall(message)
