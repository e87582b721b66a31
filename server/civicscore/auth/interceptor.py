"""The one access check every RPC goes through: authenticate, authorise from METHOD_ACCESS, limit.

Order for each call: the method must be in the table (else PERMISSION_DENIED for
everyone: closed by default); open methods (health) pass; otherwise the caller
is authenticated (UNAUTHENTICATED when that fails), must hold the permission
(PERMISSION_DENIED naming it and the roles that grant it), and must be within
its rate and concurrency limits (RESOURCE_EXHAUSTED with a RetryInfo; a rate-limited
call's refusal is held back for about as long as the caller should have waited, see
`ratelimit.RefusalHold`, so a client that ignores RetryInfo cannot make the server
refuse it as fast as it can ask). The
caller is then available to the servicer through `auth.caller.current_caller()`.
Every refusal is logged and audited, with the identity when known, never a secret.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, Protocol, cast

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from civicscore.api.errors import DOMAIN
from civicscore.api.identity import peer_address
from civicscore.auth.auditlog import RefusalAudit
from civicscore.auth.authenticator import Authenticator, Unauthenticated
from civicscore.auth.caller import CURRENT, Caller
from civicscore.auth.policy import METHOD_ACCESS, REFLECTION_METHODS, Access, Permission, roles_granting


class RateLimit(Protocol):
    def try_acquire(self, key: str) -> float | None:
        """None when allowed; else the seconds until the caller may try again."""
        ...


class RefusalDelay(Protocol):
    def hold(self, key: str, wait_s: float, remaining_s: float | None, ended: threading.Event) -> float: ...


class InFlightLimit(Protocol):
    def try_acquire(self, key: str) -> bool: ...

    def release(self, key: str) -> None: ...


def _status(code: int, message: str, reason: str, *, retry_after_s: float | None = None,
            **metadata: str) -> grpc.Status:
    status = status_pb2.Status(code=code, message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    status.details.add().Pack(info)
    if retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, math.ceil(retry_after_s * 1e9)))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    result: grpc.Status = rpc_status.to_status(status)
    return result


class AccessInterceptor(grpc.ServerInterceptor):
    def __init__(self, authenticator: Authenticator, audit: RefusalAudit, *, reflection: str = "authenticated",
                 table: Mapping[str, Permission | Access] = METHOD_ACCESS, rate_limit: RateLimit | None = None,
                 in_flight: InFlightLimit | None = None, refusal_hold: RefusalDelay | None = None) -> None:
        if reflection not in ("public", "authenticated", "off"):
            raise ValueError(f"reflection must be public, authenticated or off, not {reflection!r}")
        self.authenticator = authenticator
        self.audit = audit
        self.reflection = reflection
        self.table = dict(table)
        self.rate_limit = rate_limit
        self.in_flight = in_flight
        self.refusal_hold = refusal_hold

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        handler = continuation(handler_call_details)
        if handler is None:
            return None  # UNIMPLEMENTED, as for any unknown method
        access: Permission | Access | None
        if method in REFLECTION_METHODS:
            if self.reflection == "public":
                return handler
            access = None if self.reflection == "off" else Access.AUTHENTICATED
        else:
            access = self.table.get(method)
        if access is Access.OPEN:
            return handler
        return _wrapped(handler, lambda context: self._admit(method, access, context),
                        lambda caller: self._done(caller))

    def _refuse(self, context: grpc.ServicerContext, method: str, actor: str, status: grpc.Status,
                reason: str) -> NoReturn:
        self.audit.refused(actor=actor, method=method, code=status.code.name, reason=reason)
        context.abort_with_status(status)
        raise AssertionError("abort_with_status raises")

    def _admit(self, method: str, access: Permission | Access | None, context: grpc.ServicerContext) -> Caller:
        """The authenticated, authorised caller; aborts the call (raises) otherwise."""
        def peer() -> str:
            return f"anonymous from {peer_address(context)}"

        if access is None:
            message = f"{method} is not open to any caller (it is not in the server's access table)"
            self._refuse(context, method, peer(), _status(code_pb2.PERMISSION_DENIED, message, "METHOD_CLOSED"),
                         message)
        try:
            caller = self.authenticator.authenticate(
                context.invocation_metadata(), cast(Mapping[str, Sequence[bytes]], context.auth_context()))
        except Unauthenticated as refused:
            self._refuse(context, method, peer(), _status(code_pb2.UNAUTHENTICATED, str(refused), "UNAUTHENTICATED"),
                         str(refused))
        if isinstance(access, Permission) and access not in caller.permissions:
            roles = ", ".join(roles_granting(access))
            message = (f"{caller.identity_id} may not call {method.rsplit('/', 1)[-1]}: it needs the permission "
                       f"`{access.value}` (roles: {roles}); ask an administrator")
            self._refuse(context, method, caller.identity_id,
                         _status(code_pb2.PERMISSION_DENIED, message, "PERMISSION_MISSING", permission=access.value),
                         f"missing permission {access.value}")
        if self.rate_limit is not None:
            wait = self.rate_limit.try_acquire(caller.identity_id)
            if wait is not None:
                if self.refusal_hold is not None:
                    ended = threading.Event()
                    if context.add_callback(ended.set):
                        held = self.refusal_hold.hold(caller.identity_id, wait, context.time_remaining(), ended)
                        wait = max(0.0, wait - held)
                message = f"{caller.identity_id} is over its rate limit; retry in {max(wait, 0.01):.2f} s"
                self._refuse(context, method, caller.identity_id,
                             _status(code_pb2.RESOURCE_EXHAUSTED, message, "RATE_LIMITED", retry_after_s=wait),
                             "rate limit")
        if self.in_flight is not None and not self.in_flight.try_acquire(caller.identity_id):
            message = f"{caller.identity_id} has too many calls in progress; wait for some to finish"
            self._refuse(context, method, caller.identity_id,
                         _status(code_pb2.RESOURCE_EXHAUSTED, message, "TOO_MANY_IN_FLIGHT", retry_after_s=0.1),
                         "calls in flight")
        return caller

    def _done(self, caller: Caller) -> None:
        if self.in_flight is not None:
            self.in_flight.release(caller.identity_id)


def _wrapped(handler: grpc.RpcMethodHandler[Any, Any], admit: Callable[[grpc.ServicerContext], Caller],
             done: Callable[[Caller], None]) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, with `admit` run first and the caller set for the servicer."""

    def unary(behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            caller = admit(context)
            token = CURRENT.set(caller)
            try:
                return behavior(request, context)
            finally:
                CURRENT.reset(token)
                done(caller)
        return call

    def streaming(behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
                  ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            caller = admit(context)
            inner = behavior(request, context)
            try:
                while True:
                    token = CURRENT.set(caller)  # around each step: the server may resume us anywhere
                    try:
                        item = next(inner)
                    except StopIteration:
                        return
                    finally:
                        CURRENT.reset(token)
                    yield item
            finally:
                done(caller)
        return call

    h: Any = handler
    if h.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary(h.unary_unary), h.request_deserializer,
                                                   h.response_serializer)
    if h.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary(h.stream_unary), h.request_deserializer,
                                                    h.response_serializer)
    if h.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming(h.unary_stream), h.request_deserializer,
                                                    h.response_serializer)
    return grpc.stream_stream_rpc_method_handler(streaming(h.stream_stream), h.request_deserializer,
                                                 h.response_serializer)
