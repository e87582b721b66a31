"""List calls through the real server: paging round trips and the errors a caller can make."""

from __future__ import annotations

import grpc
import pytest

from civicscore_api.v1 import units_pb2
from tests.serverproc import ServerProcess


def test_pages_cover_every_unit_once_in_code_order(seeded_server: ServerProcess) -> None:
    stub = seeded_server.stubs().units
    codes: list[str] = []
    token = ""
    pages = 0
    while True:
        page = stub.ListUnits(units_pb2.ListUnitsRequest(page_size=50, page_token=token), timeout=10)
        codes.extend(u.code for u in page.units)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3 and len(codes) == 141 and codes == sorted(set(codes))
    wards = stub.ListUnits(units_pb2.ListUnitsRequest(page_size=1000, filter="kind=ward AND active=true"),
                           timeout=10).units
    assert len(wards) == 51 and all(u.kind == units_pb2.UNIT_KIND_WARD for u in wards)


@pytest.mark.parametrize(
    ("request_fields", "fragment"),
    [
        ({"page_token": "not-a-token"}, "page_token is not one this server issued"),
        ({"filter": "colour=red"}, "cannot filter on 'colour'"),
        ({"filter": "kind"}, "is not of the form field=value"),
        ({"filter": "kind=planet"}, "kind 'planet' is not one of"),
        ({"page_size": -1}, "page_size is -1; it must be from 0"),
    ],
)
def test_bad_list_requests_are_invalid_argument(seeded_server: ServerProcess, request_fields: dict[str, object],
                                                fragment: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        seeded_server.stubs().units.ListUnits(units_pb2.ListUnitsRequest(**request_fields), timeout=10)  # type: ignore[arg-type]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in info.value.details()


def test_a_page_token_only_works_with_the_filter_it_was_issued_for(seeded_server: ServerProcess) -> None:
    stub = seeded_server.stubs().units
    first = stub.ListUnits(units_pb2.ListUnitsRequest(page_size=5, filter="kind=ward"), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        stub.ListUnits(units_pb2.ListUnitsRequest(page_size=5, filter="kind=commune",
                                                  page_token=first.next_page_token), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "different parent or filter" in info.value.details()
