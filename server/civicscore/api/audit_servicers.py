"""AuditService: list the audit log and verify its hash chain."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from civicscore.api.convert import timestamp_out
from civicscore.api.errors import handle_errors
from civicscore.api.filters import parse_filter
from civicscore.api.paging import decode_token, encode_token, page_size
from civicscore.auditverify import verify_chain
from civicscore.errors import InvalidInput, Violation
from civicscore.runtime import Runtime
from civicscore.store.base import AuditEntry
from civicscore_api.v1 import audit_pb2, audit_pb2_grpc

_PAGE = 5000


def _event_out(entry: AuditEntry) -> audit_pb2.AuditEvent:
    return audit_pb2.AuditEvent(
        sequence=entry.seq, event_time=timestamp_out(entry.at), actor=entry.actor, action=entry.action,
        target=entry.target, outcome=entry.outcome, detail_json=entry.detail_json, prev_hash=entry.prev_hash,
        entry_hash=entry.entry_hash)


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _all(self) -> Iterator[AuditEntry]:
        after = 0
        while True:
            page = self.rt.store.audit_entries(after_seq=after, limit=_PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].seq

    @handle_errors
    def ListAuditEvents(self, request: audit_pb2.ListAuditEventsRequest, context: grpc.ServicerContext
                        ) -> audit_pb2.ListAuditEventsResponse:
        terms = parse_filter(request.filter, {"actor", "action", "outcome"})
        scope = f"audit|{request.filter}"
        token = decode_token(request.page_token, scope)
        try:
            after = int(token) if token else 0
        except ValueError:
            raise InvalidInput([Violation("page_token", "the page token is not valid for this list; start again "
                                          "without one", "INVALID_PAGE_TOKEN")]) from None
        size = page_size(request.page_size)
        found: list[AuditEntry] = []
        last_seen = after
        while len(found) <= size:
            page = self.rt.store.audit_entries(after_seq=last_seen, limit=_PAGE)
            for entry in page:
                last_seen = entry.seq
                if all(getattr(entry, name) == value for name, value in terms.items()):
                    found.append(entry)
                    if len(found) > size:
                        break
            if len(page) < _PAGE:
                break
        more = len(found) > size
        shown = found[:size]
        return audit_pb2.ListAuditEventsResponse(
            events=[_event_out(e) for e in shown],
            next_page_token=encode_token(str(shown[-1].seq) if more and shown else None, scope))

    @handle_errors
    def VerifyAudit(self, request: audit_pb2.VerifyAuditRequest, context: grpc.ServicerContext
                    ) -> audit_pb2.VerifyAuditResponse:
        if bool(request.expected_sequence) != bool(request.expected_hash):
            raise InvalidInput([Violation("expected_hash", "give expected_sequence and expected_hash together",
                                          "REQUIRED")])
        result = verify_chain(self._all(), expected_sequence=request.expected_sequence,
                              expected_hash=request.expected_hash)
        return audit_pb2.VerifyAuditResponse(
            valid=result.valid, entries_checked=result.entries_checked,
            problems=[audit_pb2.AuditProblem(kind=p.kind, sequence=p.sequence, message=p.message)
                      for p in result.problems],
            head_sequence=result.head_sequence, head_hash=result.head_hash)
