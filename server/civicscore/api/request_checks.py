"""The one gate every civicscore request passes before its servicer: decode, then check the field domains.

Installed as the server's last interceptor (after authentication and limits),
for every method of our services:

1. The request bytes are decoded without trusting them: bytes that are not a
   valid message (invalid UTF-8 in a string, a truncated field) would make gRPC
   answer INTERNAL; here they are INVALID_ARGUMENT naming the message type.
2. Every field of the request is checked against its declared domain
   (`api/domains.py`): a value outside it is INVALID_ARGUMENT, and no use case
   ever sees it. A batch write (one with `validate_only`) still reports every
   violation of every item at once: the request is validated again with the
   offending values cleared, and what that finds on other fields is added.
   With `validate_only` set the violations are the response's, not an error.
3. A client stream's messages are checked as they arrive; the violations of all
   of them are reported together when the stream ends, numbered through the
   whole stream (`outcomes[12003].reported_at`).

The methods of `SELF_CHECKED` (SubmitOutcomes: the ingest hot path) are first
called without the walk: their servicer checks the domains in the same pass
that decodes the items, and raises DomainsUnchecked when that pass is not sure
(any value outside the common case); the request is then walked and the
servicer called again, exactly as for any other method.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor

from civicscore.api import domains
from civicscore.api.convert import violation_out
from civicscore.api.errors import DomainsUnchecked, domains_unwalked, has_validate_only, to_status
from civicscore.errors import InvalidInput, Violation


@dataclass(frozen=True)
class _Malformed:
    """Request bytes that do not decode as the method's request message."""

    type_name: str
    error: str


@dataclass(frozen=True)
class _Method:
    descriptor: MethodDescriptor
    response_class: Any
    self_checked: bool = False


# Methods whose servicer checks the field domains in its own decoding pass (see the module's docstring).
SELF_CHECKED = frozenset({"/civicscore.v1.OutcomeService/SubmitOutcomes"})


_FIRST_INDEX = re.compile(r"^(?:\w+\.)*?(\w+)\[(\d+)\]")
_STEP = re.compile(r"(\w+)(?:\[(\d+)\])?")


def _clear(message: Any, path: str) -> None:
    """Reset the field at `path` (`outcomes[3].reported_at`) to its empty value."""
    steps = [_STEP.fullmatch(part) for part in path.split(".")]
    for step in steps[:-1]:
        assert step is not None
        value = getattr(message, step.group(1))
        message = value[int(step.group(2))] if step.group(2) is not None else value
    last = steps[-1]
    assert last is not None
    name, position = last.group(1), last.group(2)
    if position is None:
        message.ClearField(name)
    else:
        items = getattr(message, name)
        items[int(position)] = type(items[int(position)])()


def _lenient(deserialize: Callable[[bytes], Any], type_name: str) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # protobuf's DecodeError, or anything else the bytes provoke
            return _Malformed(type_name, str(error) or type(error).__name__)
    return parse


def _malformed(found: _Malformed) -> InvalidInput:
    return InvalidInput([Violation(
        "request", f"the request is not a valid {found.type_name} message ({found.error[:200]}); send it as your "
        "generated client encodes it (strings must be UTF-8)", "MALFORMED_REQUEST")])


def _refuse(context: grpc.ServicerContext, error: InvalidInput, request: Any) -> None:
    context.abort_with_status(to_status(error, validate_only=has_validate_only(request)))


def _batch_size(message: Any) -> int:
    """Items in the first repeated message field of `message` (looking inside singular messages)."""
    for field, value in message.ListFields():
        if field.is_repeated:
            return len(value)
        if field.message_type is not None:
            inner = _batch_size(value)
            if inner:
                return inner
    return 0


def _in_stream(violation: Violation, offset: int) -> Violation:
    """A violation of one stream message, numbered through the stream: `chunk.outcomes[3].x` -> `outcomes[N].x`."""
    found = _FIRST_INDEX.match(violation.field)
    if found is None:
        return violation
    position = int(found.group(2)) + offset
    field = f"{found.group(1)}[{position}]{violation.field[found.end():]}"
    description = violation.description.replace(violation.field, field, 1)
    return Violation(field, description, violation.reason, position)


class RequestCheckInterceptor(grpc.ServerInterceptor):
    """Decodes leniently and checks field domains for every method of `files`' services."""

    def __init__(self, files: Iterable[FileDescriptor]) -> None:
        self._methods: dict[str, _Method] = {}
        for file in files:
            for service in file.services_by_name.values():
                for method in service.methods:
                    domains.compile_request(method.input_type)  # a field without a domain fails start-up
                    response = message_factory.GetMessageClass(method.output_type)
                    name = f"/{service.full_name}/{method.name}"
                    self._methods[name] = _Method(method, response, self_checked=name in SELF_CHECKED)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler: Any = continuation(handler_call_details)
        method = self._methods.get(handler_call_details.method)  # type: ignore[attr-defined]
        if handler is None or method is None:
            return cast("grpc.RpcMethodHandler[Any, Any] | None", handler)
        parse = _lenient(handler.request_deserializer, method.descriptor.input_type.full_name)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary, method), parse,
                                                       handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(self._unary(handler.unary_stream, method), parse,
                                                        handler.response_serializer)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._stream(handler.stream_unary), parse,
                                                        handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(self._stream(handler.stream_stream), parse,
                                                     handler.response_serializer)

    @staticmethod
    def _unary(behavior: Callable[[Any, grpc.ServicerContext], Any], method: _Method
               ) -> Callable[[Any, grpc.ServicerContext], Any]:
        batch = "violations" in method.response_class.DESCRIPTOR.fields_by_name

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Malformed):
                _refuse(context, _malformed(request), None)
            if method.self_checked:
                try:
                    with domains_unwalked():
                        return behavior(request, context)
                except DomainsUnchecked:
                    pass  # not sure: walk it as any other request
            violations = domains.check_message(request)
            if not violations:
                return behavior(request, context)
            if batch and has_validate_only(request):
                violations = _with_the_rest(behavior, request, context, violations)
                if request.validate_only:
                    return method.response_class(violations=[violation_out(v) for v in violations])
            _refuse(context, InvalidInput(violations), request)
        return call

    @staticmethod
    def _stream(behavior: Callable[[Iterator[Any], grpc.ServicerContext], Any]
                ) -> Callable[[Iterator[Any], grpc.ServicerContext], Any]:
        def call(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            return behavior(_checked_stream(requests), context)
        return call


def _with_the_rest(behavior: Callable[[Any, grpc.ServicerContext], Any], request: Any,
                   context: grpc.ServicerContext, violations: list[Violation]) -> list[Violation]:
    """`violations` and what validating the request with those values cleared finds on other fields."""
    cleared = type(request)()
    cleared.CopyFrom(request)
    for violation in violations:
        _clear(cleared, violation.field)
    cleared.validate_only = True
    reply = behavior(cleared, context)
    flagged = {v.field for v in violations}
    rest = [Violation(v.field, v.description, v.reason, v.index) for v in reply.violations if v.field not in flagged]
    return sorted([*violations, *rest], key=lambda v: v.index)


def _checked_stream(requests: Iterator[Any]) -> Iterator[Any]:
    """The stream's messages as they come; at its end, InvalidInput with every violation of all of them."""
    violations: list[Violation] = []
    offset = 0
    for request in requests:
        if isinstance(request, _Malformed):
            raise _malformed(request)
        violations.extend(_in_stream(v, offset) for v in domains.check_message(request))
        offset += _batch_size(request)
        if not violations:
            yield request
    if violations:
        raise InvalidInput(violations)
