"""The civicscore server plus baseline RPCs for the benchmarks.

Two decode a SubmitOutcomesRequest, the same payload as the real call, and
do none of its work:
- `civicscore.bench.Echo/Echo` returns the request itself: an echo, the
  payload travelling back;
- `civicscore.bench.Echo/Ack` returns only a count: transport and decoding,
  the cheapest conceivable server.

Two stand beside GetEvaluation (figure (c)):
- `civicscore.bench.Echo/Prime` takes `name` + NUL + the bytes of a GetEvaluation reply
  and keeps them in memory (the benchmark sends each reply it read through the real call);
- `civicscore.bench.Echo/Raw` decodes a GetEvaluationRequest and returns the kept bytes for
  its name as they are: a unary call with the same request and the same reply bytes, through
  the same interceptor (authentication, limits, metrics), minus everything GetEvaluation
  does between them. No server can answer GetEvaluation faster.
"""

from __future__ import annotations

import sys

import grpc

import civicscore.__main__ as server_main
from civicscore.auth.policy import Access
from civicscore_api.v1 import evaluations_pb2, outcomes_pb2

_REPLIES: dict[str, bytes] = {}


def _echo(request: outcomes_pb2.SubmitOutcomesRequest, context: grpc.ServicerContext
          ) -> outcomes_pb2.SubmitOutcomesRequest:
    return request


def _ack(request: outcomes_pb2.SubmitOutcomesRequest, context: grpc.ServicerContext
         ) -> outcomes_pb2.SubmitOutcomesResponse:
    return outcomes_pb2.SubmitOutcomesResponse(accepted=len(request.outcomes))


def _prime(request: bytes, context: grpc.ServicerContext) -> bytes:
    name, _, reply = request.partition(b"\0")
    _REPLIES[name.decode()] = reply
    return b""


def _raw(request: evaluations_pb2.GetEvaluationRequest, context: grpc.ServicerContext) -> bytes:
    reply = _REPLIES.get(request.name)
    if reply is None:
        context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name}: not primed")
    return reply


def _same(data: bytes) -> bytes:
    return data


BASELINES = grpc.method_handlers_generic_handler(
    "civicscore.bench.Echo",
    {
        "Echo": grpc.unary_unary_rpc_method_handler(
            _echo, request_deserializer=outcomes_pb2.SubmitOutcomesRequest.FromString,
            response_serializer=outcomes_pb2.SubmitOutcomesRequest.SerializeToString),
        "Ack": grpc.unary_unary_rpc_method_handler(
            _ack, request_deserializer=outcomes_pb2.SubmitOutcomesRequest.FromString,
            response_serializer=outcomes_pb2.SubmitOutcomesResponse.SerializeToString),
        "Prime": grpc.unary_unary_rpc_method_handler(_prime, request_deserializer=_same, response_serializer=_same),
        "Raw": grpc.unary_unary_rpc_method_handler(
            _raw, request_deserializer=evaluations_pb2.GetEvaluationRequest.FromString, response_serializer=_same),
    },
)


if __name__ == "__main__":
    # The baselines pass the same access check as every RPC (any authenticated identity), so the
    # ratio compares work, not authentication.
    access = {f"/civicscore.bench.Echo/{name}": Access.AUTHENTICATED for name in ("Echo", "Ack", "Prime", "Raw")}
    sys.exit(server_main.main(extra_handlers=(BASELINES,), extra_access=access))
