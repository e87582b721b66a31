"""Errors a caller can cause, raised by the use cases and mapped to gRPC codes in `api/errors.py`.

    CivicscoreError
     ├── InvalidInput          INVALID_ARGUMENT, with every field violation
     ├── NotFound              NOT_FOUND
     ├── AlreadyExists         ALREADY_EXISTS (same id or key, different content)
     ├── FailedPrecondition    FAILED_PRECONDITION (e.g. no ruleset in force)
     │    └── UnitInactive     FAILED_PRECONDITION, reason UNIT_INACTIVE (no evaluation: the unit is inactive)
     ├── OutOfRange            OUT_OF_RANGE (e.g. a watch cursor past the newest change)
     ├── PermissionDenied      PERMISSION_DENIED (e.g. a reporter writing for a unit outside its scope)
     ├── SignInRefused         UNAUTHENTICATED (wrong password, unknown identity: one message for all)
     ├── LockedOut             RESOURCE_EXHAUSTED with a RetryInfo (too many failed sign-ins)
     ├── EvaluationFailed      UNAVAILABLE (the engine could not finish; retry later)
     └── Cancelled             CANCELLED (the client has gone: the work stopped, nothing was stored)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One problem with one field: `field` is the API path, e.g. `outcomes[3].completed_on`."""

    field: str
    description: str
    reason: str
    index: int = -1


class CivicscoreError(Exception):
    """Base of every error a caller can cause; `reason` is a stable machine-readable code."""

    reason = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CivicscoreError):
    reason = "INVALID_INPUT"

    def __init__(self, violations: Sequence[Violation], message: str | None = None) -> None:
        self.violations = list(violations)
        if message is None:
            items = {v.index for v in self.violations if v.index >= 0}
            first = self.violations[0]
            message = (
                f"{len(self.violations)} problem(s) in {len(items)} item(s); nothing was stored. "
                f"First: {first.field}: {first.description}"
                if items
                else first.description if first.description.startswith(first.field)
                else f"{first.field}: {first.description}"
            )
        super().__init__(message)


class NotFound(CivicscoreError):
    reason = "NOT_FOUND"

    def __init__(self, resource: str, message: str | None = None) -> None:
        super().__init__(message or f"{resource} does not exist")
        self.resource = resource


class AlreadyExists(CivicscoreError):
    reason = "ALREADY_EXISTS"

    def __init__(self, message: str, *, ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.ids = list(ids)


class FailedPrecondition(CivicscoreError):
    reason = "FAILED_PRECONDITION"


class UnitInactive(FailedPrecondition):
    """What was asked for does not exist because the unit is inactive, and inactive units are not evaluated."""

    reason = "UNIT_INACTIVE"


class OutOfRange(CivicscoreError):
    """A position beyond what exists (e.g. a watch cursor past the newest change); the message names the
    last valid position."""

    reason = "OUT_OF_RANGE"


class PermissionDenied(CivicscoreError):
    """The caller is authenticated but may not do this (e.g. a unit outside its scope)."""

    reason = "PERMISSION_DENIED"


class SignInRefused(CivicscoreError):
    """A sign-in that failed; the message is the same whatever the cause (no user enumeration)."""

    reason = "SIGN_IN_FAILED"


class LockedOut(CivicscoreError):
    """An identity locked after repeated failed sign-ins; `retry_after_s` says for how long."""

    reason = "ACCOUNT_LOCKED"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EvaluationFailed(CivicscoreError):
    reason = "EVALUATION_FAILED"


class Cancelled(CivicscoreError):
    """The client cancelled the call or its deadline passed: the work stopped and nothing was stored."""

    reason = "CANCELLED"


SHOWN_CHARS = 60


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` as an error message echoes it: quoted, and cut to `limit` characters with its length stated."""
    text = repr(value)
    if len(text) <= limit + 2:
        return text
    if isinstance(value, str):
        return f"{text[:limit + 1]}…{text[0]} ({len(value):,} characters)"
    return f"{text[:limit]}… ({len(text):,} characters)"
