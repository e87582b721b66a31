"""The properties every reply must have, whatever was sent (DESIGN.md §6, issue 11).

- The status is OK or a documented client error: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
  FAILED_PRECONDITION, PERMISSION_DENIED, OUT_OF_RANGE. Never INTERNAL or UNKNOWN. RESOURCE_EXHAUSTED
  only for the documented limits, which the fuzzer's server is started far above, so any is a finding.
  CANCELLED and DEADLINE_EXCEEDED only on a server stream the fuzzer itself ends. The refusals an
  RPC documents for itself are allowed for that RPC only, with their ErrorInfo reason (`RPC_REFUSALS`:
  SignIn's failed sign-in and lock-out); a lock-out is the one refusal that writes (its audit entry).
- An error has a precise message that fits: not empty, no incident id (that is an INTERNAL in
  disguise), no truncated-trailer summary like "the first 0 are listed", not an echo of a 10 KB
  value, no mention of `validate_only` on a request that has no such field, and a rich status the
  client can decode.
- INVALID_ARGUMENT carries a `BadRequest` whose violations name fields of the request (a violation
  naming a field nobody sent, like ListPeriods blaming `name`, points at stored data, not the call).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from tests.fuzz import domain_check
from tests.fuzz.catalog import Rpc

ALLOWED = frozenset({
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OUT_OF_RANGE,
})
# Refusals documented by one RPC (identities.proto), by status and ErrorInfo reason: a wrong password or
# identity, and the lock-out after ten failed sign-ins in a row (which a wrong current password counts too).
RPC_REFUSALS: dict[str, dict[grpc.StatusCode, frozenset[str]]] = {
    "IdentityService.SignIn": {grpc.StatusCode.UNAUTHENTICATED: frozenset({"SIGN_IN_FAILED"}),
                               grpc.StatusCode.RESOURCE_EXHAUSTED: frozenset({"ACCOUNT_LOCKED"})},
    "IdentityService.SetPassword": {grpc.StatusCode.RESOURCE_EXHAUSTED: frozenset({"ACCOUNT_LOCKED"})},
}
# What the refusal that locks an identity writes: its audit entry (the failure count is an update).
LOCKOUT_ROWS = {"audit_events": 1}
# What a refused sign-in as an id that cannot sign in writes the first time: its failure count (an update after).
MISS_ROWS = {"sign_in_misses": 1}
OWN_DEADLINE = frozenset({grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED})
# A message longer than this is an echo of an input value, not a message a person reads.
MAX_MESSAGE_CHARS = 2000
MAX_DESCRIPTION_CHARS = 1000
_BROKEN_SUMMARY = re.compile(r"the first 0 are listed|\b0 violations\b")
_PATH_ROOT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Problem:
    """One property a reply broke: `kind` groups it in the report, `detail` says what exactly."""

    kind: str
    detail: str


@dataclass
class Reply:
    """What came back from one call."""

    code: grpc.StatusCode
    message: str
    trailers: tuple[tuple[str, str | bytes], ...] = ()
    own_cancel: bool = False  # the fuzzer ended a server stream itself


def field_names(descriptor: Descriptor, seen: set[str] | None = None) -> set[str]:
    """Every field and oneof name anywhere in a request's message tree (where a violation may point)."""
    seen = set() if seen is None else seen
    if descriptor.full_name in seen:
        return set()
    seen.add(descriptor.full_name)
    names = {fd.name for fd in descriptor.fields} | {oneof.name for oneof in descriptor.oneofs}
    for fd in descriptor.fields:
        if fd.message_type is not None:
            names |= field_names(fd.message_type, seen)
    return names


def rich_status(reply: Reply) -> status_pb2.Status | None:
    for key, value in reply.trailers:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status()
            status.MergeFromString(value)
            return status
    return None


def error_reason(reply: Reply) -> str:
    """The ErrorInfo reason of a reply's rich status ("" when it has none or it does not decode)."""
    try:
        status = rich_status(reply)
    except Exception:
        return ""
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def documented_refusal(rpc: Rpc, reply: Reply) -> bool:
    """Whether `reply` is a refusal `rpc` documents for itself (RPC_REFUSALS), with its reason."""
    return error_reason(reply) in RPC_REFUSALS.get(rpc.short, {}).get(reply.code, frozenset())


def refusal_may_write(rpc: Rpc, reply: Reply, delta: dict[str, int]) -> bool:
    """Whether the rows a refusal changed are the audit entry of a lock-out it announces, or the first failure
    count of an id that cannot sign in (counted and locked like an identity's: nothing tells which ids exist)."""
    changed = {table: n for table, n in delta.items() if n}
    if not documented_refusal(rpc, reply):
        return False
    return ((reply.code == grpc.StatusCode.RESOURCE_EXHAUSTED and changed == LOCKOUT_ROWS)
            or (rpc.short == "IdentityService.SignIn" and changed == MISS_ROWS))


def judge(rpc: Rpc, reply: Reply, *, raw: bool = False) -> list[Problem]:
    """Every property of the list above that `reply` breaks. For `raw` bytes that do not parse, a
    violation may name the whole `request`: there is no field to name."""
    problems: list[Problem] = []
    code = reply.code
    if code == grpc.StatusCode.OK:
        return problems
    if code not in ALLOWED and not (rpc.server_streaming and reply.own_cancel and code in OWN_DEADLINE) \
            and not documented_refusal(rpc, reply):
        problems.append(Problem("status", f"{code.name} is not a documented client error"))
    message = reply.message or ""
    if not message.strip():
        problems.append(Problem("message", "empty message"))
    if "incident" in message.lower():
        problems.append(Problem("message", "message names an incident (an internal error)"))
    if _BROKEN_SUMMARY.search(message):
        problems.append(Problem("message", "truncated-trailer summary that lists nothing"))
    if len(message) > MAX_MESSAGE_CHARS:
        problems.append(Problem("message", f"message of {len(message):,} characters (a value echoed whole?)"))
    if "validate_only" in message and "validate_only" not in field_names(rpc.request_descriptor):
        problems.append(Problem("message", "mentions validate_only, which this request does not have"))
    if code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED) and reply.own_cancel:
        return problems
    try:
        status = rich_status(reply)
    except Exception as exc:  # a details trailer the client cannot decode
        problems.append(Problem("details", f"grpc-status-details-bin does not decode: {type(exc).__name__}"))
        return problems
    if status is not None:
        problems.extend(_check_status(rpc, reply, status, raw))
    elif code == grpc.StatusCode.INVALID_ARGUMENT:
        problems.append(Problem("details", "INVALID_ARGUMENT without google.rpc.Status details (no BadRequest)"))
    return problems


def _check_status(rpc: Rpc, reply: Reply, status: status_pb2.Status, raw: bool) -> Iterable[Problem]:
    if status.code != reply.code.value[0]:
        yield Problem("details", f"rich status code {status.code} differs from the call's {reply.code.name}")
    violations: list[error_details_pb2.BadRequest.FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(bad.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.reason == "TOO_MANY_VIOLATIONS" and info.metadata.get("listed") == "0":
                yield Problem("details", "TOO_MANY_VIOLATIONS with 0 violations listed")
    if reply.code != grpc.StatusCode.INVALID_ARGUMENT:
        return
    if not violations:
        yield Problem("details", "INVALID_ARGUMENT without a field violation")
        return
    names = field_names(rpc.request_descriptor) | ({"request"} if raw else set())
    for violation in violations:
        if not violation.field or not violation.description:
            yield Problem("details", "a field violation without a field or a description")
            continue
        if len(violation.description) > MAX_DESCRIPTION_CHARS:
            yield Problem("details", f"violation description of {len(violation.description):,} characters "
                                     "(a value echoed whole?)")
        root = _PATH_ROOT.match(violation.field)
        if root is None or root.group(1) not in names:
            yield Problem("details", f"violation names `{_cut(violation.field)}`, which is not a field of "
                                     f"{rpc.request_descriptor.name}")


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…({len(text):,} chars)"


def domain_problems(payloads: list[Any], reply: Reply, responses: list[Message]) -> list[Problem]:
    """A value outside its declared domain must be refused with INVALID_ARGUMENT, before anything else
    (domains.proto). A reply that lists violations in its body (validate_only) refused it too."""
    found = [item for message in payloads for item in domain_check.outside(message)]
    if not found:
        return []
    if reply.code == grpc.StatusCode.OK:
        if any(getattr(r, "violations", None) for r in responses):
            return []
        return [Problem("domain", f"accepted {unindexed(item)}") for item in found[:3]]
    if reply.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
        return []
    return [Problem("domain", f"{reply.code.name} instead of INVALID_ARGUMENT for {unindexed(found[0])}")]


def refusal_in_body(response: Message) -> bool:
    """A reply that is OK but refuses in its body (validate_only violations, an invalid ruleset)."""
    return bool(getattr(response, "violations", None)) or getattr(response, "valid", True) is False


def unindexed(path: str) -> str:
    """`outcomes[3].note: ...` -> `outcomes[].note: ...`: one group per field, not per position."""
    return re.sub(r"\[\d+\]", "[]", path)
