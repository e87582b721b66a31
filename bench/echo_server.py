"""The civicscore server plus an echo RPC, the baseline for the ingest benchmark.

`civicscore.bench.Echo/SubmitOutcomes` decodes a SubmitOutcomesRequest and
answers a SubmitOutcomesResponse without validating or storing anything: the
same payload, serialisation and transport as the real call, none of the work.
"""

from __future__ import annotations

import sys

import civicscore.__main__ as server_main
import grpc
from civicscore_api.v1 import outcomes_pb2

ECHO_METHOD = "/civicscore.bench.Echo/SubmitOutcomes"


def _echo(request: outcomes_pb2.SubmitOutcomesRequest, context: grpc.ServicerContext
          ) -> outcomes_pb2.SubmitOutcomesResponse:
    return outcomes_pb2.SubmitOutcomesResponse(accepted=len(request.outcomes))


ECHO_HANDLER = grpc.method_handlers_generic_handler(
    "civicscore.bench.Echo",
    {"SubmitOutcomes": grpc.unary_unary_rpc_method_handler(
        _echo, request_deserializer=outcomes_pb2.SubmitOutcomesRequest.FromString,
        response_serializer=outcomes_pb2.SubmitOutcomesResponse.SerializeToString)},
)


if __name__ == "__main__":
    sys.exit(server_main.main(extra_handlers=(ECHO_HANDLER,)))
