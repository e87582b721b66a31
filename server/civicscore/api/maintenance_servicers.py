"""Upkeep servicer: decode, call, encode."""

from __future__ import annotations

import grpc

from civicscore.api.errors import handle_errors
from civicscore.api.stored_data import check_stored_data
from civicscore.runtime import Runtime
from civicscore_api.v1 import maintenance_pb2, maintenance_pb2_grpc

DEFAULT_FINDINGS = 1000


class MaintenanceServicer(maintenance_pb2_grpc.MaintenanceServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def CheckStoredData(self, request: maintenance_pb2.CheckStoredDataRequest, context: grpc.ServicerContext
                        ) -> maintenance_pb2.CheckStoredDataResponse:
        found = check_stored_data(self.rt.store, max_findings=request.max_findings or DEFAULT_FINDINGS)
        return maintenance_pb2.CheckStoredDataResponse(
            checked=found.checked, total_findings=found.total,
            findings=[maintenance_pb2.DataFinding(resource=f.resource, field=f.field, value=f.value,
                                                  problem=f.problem) for f in found.findings])
