"""The one place where domain errors become gRPC statuses with rich details.

Every error a caller can cause becomes a `google.rpc.Status` with the right
code and details (BadRequest field violations, ErrorInfo). Anything else is
our fault: it is logged with a traceback and the caller sees INTERNAL with
an incident id, never the exception text.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from civicscore.errors import (
    AlreadyExists,
    Cancelled,
    CivicscoreError,
    EvaluationFailed,
    FailedPrecondition,
    InvalidInput,
    LockedOut,
    NotFound,
    OutOfRange,
    PermissionDenied,
    SignInRefused,
)
from civicscore.store import IdempotencyConflict, StoreError
from civicscore.store.base import InvalidCursor, MissingReferences

log = logging.getLogger("civicscore.api")
DOMAIN = "civicscore.hanoi.gov.vn"
# The whole Status travels in a trailer; grpc clients refuse trailers above 8 KiB
# by default, so details are cut to this budget and the rest is summarised.
DETAILS_BUDGET = 7000

_CODES: dict[type[Exception], tuple[grpc.StatusCode, int]] = {
    InvalidInput: (grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT),
    NotFound: (grpc.StatusCode.NOT_FOUND, code_pb2.NOT_FOUND),
    AlreadyExists: (grpc.StatusCode.ALREADY_EXISTS, code_pb2.ALREADY_EXISTS),
    IdempotencyConflict: (grpc.StatusCode.ALREADY_EXISTS, code_pb2.ALREADY_EXISTS),
    FailedPrecondition: (grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION),
    OutOfRange: (grpc.StatusCode.OUT_OF_RANGE, code_pb2.OUT_OF_RANGE),
    PermissionDenied: (grpc.StatusCode.PERMISSION_DENIED, code_pb2.PERMISSION_DENIED),
    SignInRefused: (grpc.StatusCode.UNAUTHENTICATED, code_pb2.UNAUTHENTICATED),
    LockedOut: (grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED),
    EvaluationFailed: (grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE),
    Cancelled: (grpc.StatusCode.CANCELLED, code_pb2.CANCELLED),
    StoreError: (grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE),
    # Both are checked before writing; these only surface when a concurrent request won a race.
    MissingReferences: (grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION),
    InvalidCursor: (grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT),
}


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _error_info(reason: str, **metadata: str) -> any_pb2.Any:
    return _pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))


MESSAGE_CHARS = 1000  # a status message longer than this is cut (it travels in the grpc-message trailer)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


def _bad_request(exc: InvalidInput, status: status_pb2.Status, *, validate_only: bool) -> None:
    """Every violation that fits the trailer (at least one, cut if it must be); the count of the rest."""
    request = error_details_pb2.BadRequest()
    listed = 0
    for violation in exc.violations:
        entry = request.field_violations.add(field=_cut(violation.field, 200),
                                             description=_cut(violation.description, 2000))
        entry.reason = violation.reason
        if status.ByteSize() + request.ByteSize() > DETAILS_BUDGET and listed:
            del request.field_violations[-1]
            break
        listed += 1
    status.details.append(_pack(request))
    if listed < len(exc.violations):
        rest = ("Send the same request with validate_only=true to receive every violation in the response."
                if validate_only else "Fix these and send the request again to see the rest.")
        status.message = (f"{len(exc.violations):,} violations; the first {listed:,} are listed. "
                          f"Nothing was stored. {rest}")
        status.details.append(_error_info("TOO_MANY_VIOLATIONS", total=str(len(exc.violations)), listed=str(listed)))


def to_status(exc: Exception, *, validate_only: bool = False) -> grpc.Status:
    """Map an error a caller caused to a rich gRPC status that fits in a trailer; `validate_only` says whether
    the call could have been sent with validate_only=true (only then does the message suggest it)."""
    code, rpc_code = next(
        (codes for kind, codes in _CODES.items() if isinstance(exc, kind)),
        (grpc.StatusCode.INTERNAL, code_pb2.INTERNAL),
    )
    message = exc.message if isinstance(exc, CivicscoreError) else str(exc)
    status = status_pb2.Status(code=rpc_code, message=_cut(message, MESSAGE_CHARS))
    if isinstance(exc, InvalidInput):
        _bad_request(exc, status, validate_only=validate_only)
    elif isinstance(exc, AlreadyExists):
        status.details.append(_error_info(exc.reason, ids=",".join(exc.ids)[:2000]))
    elif isinstance(exc, IdempotencyConflict):
        status.details.append(_error_info("IDEMPOTENCY_KEY_REUSED", key=_cut(exc.key, 200), method=exc.method))
    elif isinstance(exc, LockedOut):
        status.details.append(_error_info(exc.reason))
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, math.ceil(exc.retry_after_s * 1e9)))
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    elif isinstance(exc, CivicscoreError):
        status.details.append(_error_info(exc.reason))
    elif isinstance(exc, InvalidCursor):
        request = error_details_pb2.BadRequest()
        request.field_violations.add(field="page_token", description=_cut(str(exc), 2000))
        status.details.append(_pack(request))
    assert code.value[0] == rpc_code
    result: grpc.Status = rpc_status.to_status(status)
    return result


F = TypeVar("F", bound=Callable[..., Any])


def has_validate_only(request: Any) -> bool:
    """Whether `request` (a message; a stream's iterator is not one) has a validate_only field."""
    descriptor = getattr(request, "DESCRIPTOR", None)
    return descriptor is not None and "validate_only" in descriptor.fields_by_name


class DomainsUnchecked(Exception):
    """Raised by a servicer that checks its request's field domains itself, in one pass with its decoding
    (see `request_checks.SELF_CHECKED`), when that pass is not sure the request is within them: the
    request-check interceptor then walks the request as for any other method and calls the servicer again,
    with `domains_walked()` true."""


_WALKED: contextvars.ContextVar[bool] = contextvars.ContextVar("civicscore_domains_walked", default=True)


def domains_walked() -> bool:
    """Whether the request-check interceptor has walked this call's request (it skips only the methods of
    `request_checks.SELF_CHECKED`, until their servicer raises DomainsUnchecked)."""
    return _WALKED.get()


@contextlib.contextmanager
def domains_unwalked() -> Iterator[None]:
    """Within the block, `domains_walked()` is false (the interceptor's first call of a self-checked method)."""
    token = _WALKED.set(False)
    try:
        yield
    finally:
        _WALKED.reset(token)


def handle_errors(method: F) -> F:
    """Wrap a servicer method: caller errors become rich statuses; bugs become INTERNAL with an incident id."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except DomainsUnchecked:
            raise  # for the request-check interceptor, which walks the request and calls again
        except tuple(_CODES) as exc:
            context.abort_with_status(to_status(exc, validate_only=has_validate_only(request)))
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("internal error in %s (incident %s)", method.__qualname__, incident)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error; incident {incident} is in the server log")

    return wrapper  # type: ignore[return-value]
