"""ExtensionService: decode, call the extension use cases, encode."""

from __future__ import annotations

import grpc

from civicscore import extensions
from civicscore.api import convert
from civicscore.api.errors import handle_errors
from civicscore.api.filters import parse_filter
from civicscore.api.identity import caller
from civicscore.api.paging import decode_token, encode_token, page_size
from civicscore.runtime import Runtime
from civicscore_api.v1 import extensions_pb2, extensions_pb2_grpc

_DECISIONS = {extensions_pb2.EXTENSION_DECISION_APPROVE: "approve", extensions_pb2.EXTENSION_DECISION_REFUSE: "refuse"}


class ExtensionServicer(extensions_pb2_grpc.ExtensionServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def RequestExtension(self, request: extensions_pb2.RequestExtensionRequest, context: grpc.ServicerContext
                         ) -> extensions_pb2.RequestExtensionResponse:
        recorded = extensions.request_extension(
            self.rt.store, request.assignment, due_on=request.due_on, reason=request.reason, actor=caller(context),
            now=self.rt.clock(), idempotency_key=request.idempotency_key)
        response = extensions_pb2.RequestExtensionResponse(extension=convert.extension_out(recorded.extension))
        if recorded.superseded is not None:
            response.superseded.CopyFrom(convert.extension_out(recorded.superseded))
        return response

    @handle_errors
    def DecideExtension(self, request: extensions_pb2.DecideExtensionRequest, context: grpc.ServicerContext
                        ) -> extensions_pb2.DecideExtensionResponse:
        decided = extensions.decide_extension(
            self.rt.store, request.name, decision=_DECISIONS.get(request.decision, ""), reason=request.reason,
            actor=caller(context), now=self.rt.clock(), idempotency_key=request.idempotency_key)
        return extensions_pb2.DecideExtensionResponse(extension=convert.extension_out(decided))

    @handle_errors
    def GetExtension(self, request: extensions_pb2.GetExtensionRequest, context: grpc.ServicerContext
                     ) -> extensions_pb2.GetExtensionResponse:
        return extensions_pb2.GetExtensionResponse(
            extension=convert.extension_out(extensions.get_extension(self.rt.store, request.name)))

    @handle_errors
    def ListExtensions(self, request: extensions_pb2.ListExtensionsRequest, context: grpc.ServicerContext
                       ) -> extensions_pb2.ListExtensionsResponse:
        assignment_id = (extensions.parse_assignment_name(request.parent, "parent") if request.parent else None)
        wanted = extensions.extension_filter(parse_filter(request.filter, extensions.FILTER_FIELDS))
        scope = f"extensions|{request.parent}|{request.filter}"
        page = self.rt.store.list_extensions(
            assignment_id=assignment_id, unit_code=wanted.unit_code, status=wanted.status,
            requested=wanted.requested, decided=wanted.decided, after=decode_token(request.page_token, scope),
            limit=page_size(request.page_size))
        return extensions_pb2.ListExtensionsResponse(extensions=[convert.extension_out(r) for r in page.items],
                                                     next_page_token=encode_token(page.next_cursor, scope))
