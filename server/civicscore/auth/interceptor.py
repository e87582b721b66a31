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
Every refusal is logged and audited, with the identity when known, never a secret; a refusal by a
limit also names the client's address (behind a `--trusted-proxy`, the address it forwarded).

This is also the one place where calls are observed for the metrics (`observe_calls`): every
method with a handler, open ones included, by full method name and status code, with its duration.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, Protocol, cast

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from civicscore import metrics
from civicscore.api.errors import DOMAIN
from civicscore.api.identity import peer_address
from civicscore.auth.auditlog import RefusalAudit
from civicscore.auth.authenticator import Authenticator, Unauthenticated
from civicscore.auth.caller import CURRENT, Caller
from civicscore.auth.policy import METHOD_ACCESS, REFLECTION_METHODS, Access, Permission, roles_granting
from civicscore.limits.forwarded import TrustedProxies, forwarded_client

_log = logging.getLogger("civicscore.access")


class RateLimit(Protocol):
    def try_acquire(self, key: str) -> float | None:
        """None when allowed; else the seconds until the caller may try again."""
        ...


class RefusalDelay(Protocol):
    def hold(self, key: str, wait_s: float, remaining_s: float | None, ended: threading.Event) -> float: ...


class InFlightSlot(Protocol):
    def release(self) -> None: ...


class InFlightLimit(Protocol):
    def enter(self, key: str) -> InFlightSlot | None:
        """A slot to release when the call ends; None when `key` has as many calls in flight as it may."""
        ...


# (full method name, status code name, seconds, the reply of a unary-response call or None)
CallObserver = Callable[[str, str, float, Any], None]


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
                 in_flight: InFlightLimit | None = None, refusal_hold: RefusalDelay | None = None,
                 trusted_proxies: TrustedProxies | None = None, observe_calls: CallObserver | None = None) -> None:
        if reflection not in ("public", "authenticated", "off"):
            raise ValueError(f"reflection must be public, authenticated or off, not {reflection!r}")
        self.authenticator = authenticator
        self.audit = audit
        self.reflection = reflection
        self.table = dict(table)
        self.rate_limit = rate_limit
        self.in_flight = in_flight
        self.refusal_hold = refusal_hold
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        self.observe_calls = observe_calls

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
        observe = _observer(method, self.observe_calls)
        if access is Access.OPEN:
            return handler if observe is None else _wrapped(handler, None, observe)
        return _wrapped(handler, lambda context: self._admit(method, access, context), observe)

    def _refuse(self, context: grpc.ServicerContext, method: str, actor: str, status: grpc.Status,
                reason: str) -> NoReturn:
        self.audit.refused(actor=actor, method=method, code=status.code.name, reason=reason)
        context.abort_with_status(status)
        raise AssertionError("abort_with_status raises")

    def _client(self, context: grpc.ServicerContext) -> str:
        """The caller's address, as `CLIENT via PROXY` when a trusted proxy forwarded it."""
        peer = peer_address(context)
        if not self.trusted_proxies:
            return peer
        forwarded = forwarded_client(context.peer(), context.invocation_metadata(), self.trusted_proxies)
        return peer if forwarded is None else f"{forwarded} via {peer}"

    def _admit(self, method: str, access: Permission | Access | None, context: grpc.ServicerContext
               ) -> tuple[Caller, InFlightSlot | None]:
        """The authenticated, authorised caller and its in-flight slot; aborts the call (raises) otherwise."""
        def peer() -> str:
            return f"anonymous from {self._client(context)}"

        if access is None:
            message = f"{method} is not open to any caller (it is not in the server's access table)"
            self._refuse(context, method, peer(), _status(code_pb2.PERMISSION_DENIED, message, "METHOD_CLOSED"),
                         message)
        try:
            caller = self.authenticator.authenticate(
                context.invocation_metadata(), cast(Mapping[str, Sequence[bytes]], context.auth_context()))
        except Unauthenticated as refused:
            self._refuse(context, method, peer(), _status(code_pb2.UNAUTHENTICATED, str(refused), refused.reason),
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
                metrics.limit_refused("RATE_LIMITED")
                self._refuse(context, method, caller.identity_id,
                             _status(code_pb2.RESOURCE_EXHAUSTED, message, "RATE_LIMITED", retry_after_s=wait),
                             f"rate limit (from {self._client(context)})")
        slot: InFlightSlot | None = None
        if self.in_flight is not None:
            slot = self.in_flight.enter(caller.identity_id)
            if slot is None:
                message = f"{caller.identity_id} has too many calls in progress; wait for some to finish"
                metrics.limit_refused("TOO_MANY_IN_FLIGHT")
                self._refuse(context, method, caller.identity_id,
                             _status(code_pb2.RESOURCE_EXHAUSTED, message, "TOO_MANY_IN_FLIGHT", retry_after_s=0.1),
                             f"calls in flight (from {self._client(context)})")
        return caller, slot


# (status code name, the reply or None, time.perf_counter() when the call started): once, when a call ends
_Observe = Callable[[str, Any, float], None]


def _observer(method: str, observe_calls: CallObserver | None) -> _Observe | None:
    """`observe_calls` for one method; it must never fail a call, so an error in it is logged once."""
    if observe_calls is None:
        return None
    failed = False

    def observe(code: str, reply: Any, started: float) -> None:
        nonlocal failed
        try:
            observe_calls(method, code, time.perf_counter() - started, reply)
        except Exception:
            if not failed:
                failed = True
                _log.exception("recording the metrics of %s failed (logged once per method)", method)
    return observe


def _code(context: grpc.ServicerContext, raised: bool) -> str:
    """The status a handler ended with: what it set or aborted with, else OK, or UNKNOWN when it raised."""
    code: grpc.StatusCode | None = cast(Any, context).code()  # set by set_code or abort (not in the stubs)
    if code is None:
        return "UNKNOWN" if raised else "OK"
    return str(code.name)


def _wrapped(handler: grpc.RpcMethodHandler[Any, Any],
             admit: Callable[[grpc.ServicerContext], tuple[Caller, InFlightSlot | None]] | None,
             observe: _Observe | None) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, with `admit` run first (its caller set for the servicer, its slot released at the
    end) and the call reported to `observe` when it ends."""

    def unary(behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            reply = None
            raised = True
            try:
                if admit is None:
                    reply = behavior(request, context)
                else:
                    caller, slot = admit(context)
                    token = CURRENT.set(caller)
                    try:
                        reply = behavior(request, context)
                    finally:
                        CURRENT.reset(token)
                        if slot is not None:
                            slot.release()
                raised = False
                return reply
            finally:
                if observe is not None:
                    observe(_code(context, raised), reply, started)
        return call

    def streaming(behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
                  ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            code: str | None = None
            try:
                caller, slot = admit(context) if admit is not None else (None, None)
                try:
                    inner = behavior(request, context)
                    while True:
                        token = CURRENT.set(caller) if caller is not None else None  # the server may resume us
                        try:
                            item = next(inner)
                        except StopIteration:
                            return
                        finally:
                            if token is not None:
                                CURRENT.reset(token)
                        yield item
                finally:
                    if slot is not None:
                        slot.release()
            except GeneratorExit:
                code = "CANCELLED"  # the client went away (or the server stopped) while the stream ran
                raise
            except BaseException:
                code = _code(context, True)
                raise
            finally:
                if observe is not None:
                    observe(code or _code(context, False), None, started)
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
