"""The one table from domain errors to gRPC statuses, including the paths no client request reaches on purpose."""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from civicscore.api.errors import handle_errors, to_status
from civicscore.errors import EvaluationFailed, InvalidInput, Violation
from civicscore.store.base import InvalidCursor, MissingReferences


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (MissingReferences("assignment_id", [(3, "A-9")]), grpc.StatusCode.FAILED_PRECONDITION),
        (InvalidCursor("garbage"), grpc.StatusCode.INVALID_ARGUMENT),
        (EvaluationFailed("engine down"), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_race_and_infrastructure_errors_map_to_their_codes(error: Exception, code: grpc.StatusCode) -> None:
    assert to_status(error).code == code


def test_a_long_violation_list_is_cut_to_the_trailer_budget_and_summarised() -> None:
    violations = [Violation(f"outcomes[{i}].assignment", "assignment does not exist", "UNKNOWN_ASSIGNMENT", i)
                  for i in range(5000)]
    status = to_status(InvalidInput(violations), validate_only=True)
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    assert len(details) < 8192
    assert "validate_only=true" in status.details
    # A call that has no validate_only is not told to send it.
    plain = to_status(InvalidInput(violations))
    assert "validate_only" not in plain.details
    assert "Fix these and send the request again" in plain.details


def test_one_huge_violation_is_still_listed_cut_to_fit() -> None:
    """A violation whose text alone exceeds the budget is cut, never dropped ("the first 0 are listed")."""
    status = to_status(InvalidInput([Violation("units[0].code", "x" * 20_000, "INVALID_FORMAT", 0)]))
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    assert len(details) < 8192
    decoded = status_pb2.Status.FromString(details)
    request = error_details_pb2.BadRequest()
    decoded.details[0].Unpack(request)
    assert [v.field for v in request.field_violations] == ["units[0].code"]
    assert "the first 0" not in status.details


class _Boom:
    @handle_errors
    def Call(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise RuntimeError("secret internal detail")


def test_an_unexpected_exception_is_internal_with_an_incident_id_and_no_detail() -> None:
    servicer = _Boom()
    handler = grpc.method_handlers_generic_handler("test.Boom", {
        "Call": grpc.unary_unary_rpc_method_handler(servicer.Call),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call: Any = channel.unary_unary("/test.Boom/Call")
            with pytest.raises(grpc.RpcError) as info:
                call(b"", timeout=5)
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "incident" in info.value.details()
        assert "secret" not in info.value.details()
    finally:
        server.stop(None)
