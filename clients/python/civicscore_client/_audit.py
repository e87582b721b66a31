"""Audit and upkeep calls: list the audit log, verify its hash chain, check the stored data."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from civicscore_api.v1 import audit_pb2, maintenance_pb2
from civicscore_client._connection import Connection
from civicscore_client._names import join_filter

PAGE_SIZE = 1000


class AuditCalls(Connection):
    """AuditService and MaintenanceService."""

    def list_audit_events(self, *, actor: str | None = None, action: str | None = None,
                          outcome: str | None = None, filter: str = "",
                          timeout: float | None = None) -> Iterator[audit_pb2.AuditEvent]:
        """Every audit entry matching the filter, in log order."""
        query = join_filter(f"actor={actor}" if actor else "", f"action={action}" if action else "",
                            f"outcome={outcome}" if outcome else "", filter)

        def fetch(token: str) -> tuple[Sequence[audit_pb2.AuditEvent], str]:
            request = audit_pb2.ListAuditEventsRequest(page_size=PAGE_SIZE, page_token=token, filter=query)
            reply = self._calls.unary(self._audit.ListAuditEvents, request, timeout=timeout)
            return reply.events, reply.next_page_token

        return self._calls.pages(fetch)

    def verify_audit(self, *, expected_sequence: int = 0, expected_hash: str = "",
                     timeout: float | None = None) -> audit_pb2.VerifyAuditResponse:
        """Check the hash chain; give a (sequence, hash) noted earlier to catch a log cut at the end."""
        request = audit_pb2.VerifyAuditRequest(expected_sequence=expected_sequence, expected_hash=expected_hash)
        return self._calls.unary(self._audit.VerifyAudit, request, timeout=timeout)

    def check_stored_data(self, *, max_findings: int = 0,
                          timeout: float | None = None) -> maintenance_pb2.CheckStoredDataResponse:
        """Stored values outside the domains of their fields (e.g. a due date in 2101), for an administrator
        to mend; `max_findings` (0: 1,000) caps the list, `total_findings` counts them all."""
        request = maintenance_pb2.CheckStoredDataRequest(max_findings=max_findings)
        return self._calls.unary(self._maintenance.CheckStoredData, request, timeout=timeout)
