"""The civicscore server plus two baseline RPCs for the ingest benchmark.

Both decode a SubmitOutcomesRequest, the same payload as the real call, and
do none of its work:
- `civicscore.bench.Echo/Echo` returns the request itself: an echo, the
  payload travelling back (the baseline the target is stated against);
- `civicscore.bench.Echo/Ack` returns only a count: transport and decoding,
  the cheapest conceivable server, reported beside it for transparency.
"""

from __future__ import annotations

import sys

import grpc

import civicscore.__main__ as server_main
from civicscore.auth.policy import Access
from civicscore_api.v1 import outcomes_pb2


def _echo(request: outcomes_pb2.SubmitOutcomesRequest, context: grpc.ServicerContext
          ) -> outcomes_pb2.SubmitOutcomesRequest:
    return request


def _ack(request: outcomes_pb2.SubmitOutcomesRequest, context: grpc.ServicerContext
         ) -> outcomes_pb2.SubmitOutcomesResponse:
    return outcomes_pb2.SubmitOutcomesResponse(accepted=len(request.outcomes))


BASELINES = grpc.method_handlers_generic_handler(
    "civicscore.bench.Echo",
    {
        "Echo": grpc.unary_unary_rpc_method_handler(
            _echo, request_deserializer=outcomes_pb2.SubmitOutcomesRequest.FromString,
            response_serializer=outcomes_pb2.SubmitOutcomesRequest.SerializeToString),
        "Ack": grpc.unary_unary_rpc_method_handler(
            _ack, request_deserializer=outcomes_pb2.SubmitOutcomesRequest.FromString,
            response_serializer=outcomes_pb2.SubmitOutcomesResponse.SerializeToString),
    },
)


if __name__ == "__main__":
    # The baselines pass the same access check as every RPC (any authenticated identity), so the
    # ratio compares work, not authentication.
    access = {f"/civicscore.bench.Echo/{name}": Access.AUTHENTICATED for name in ("Echo", "Ack")}
    sys.exit(server_main.main(extra_handlers=(BASELINES,), extra_access=access))
