"""Extension calls: a unit asks for more time on an assignment, the committee approves or refuses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from civicscore_api.v1 import extensions_pb2
from civicscore_client._calls import new_idempotency_key
from civicscore_client._connection import Connection
from civicscore_client._names import assignment_name, join_filter, period_or_dates, unit_name

DECISIONS = {"approve": extensions_pb2.EXTENSION_DECISION_APPROVE,
             "refuse": extensions_pb2.EXTENSION_DECISION_REFUSE}
STATUSES = ("pending", "approved", "refused", "superseded")


def extension_name(name: str) -> str:
    """`assignments/{id}/extensions/{n}` as given, or from the short form `{id}/{n}` (ids hold no `/`)."""
    name = name.strip()
    if name.startswith("assignments/"):
        return name
    assignment, _, number = name.partition("/")
    return f"assignments/{assignment}/extensions/{number}"


class ExtensionCalls(Connection):
    """ExtensionService."""

    def request_extension(self, assignment: str, due_on: str, reason: str, *, idempotency_key: str | None = None,
                          timeout: float | None = None) -> extensions_pb2.RequestExtensionResponse:
        """Ask for a new due date (`YYYY-MM-DD`) for an assignment, with a required reason, before its due date
        in force; a pending request for the same assignment is superseded (`.superseded` in the reply).

        Retried after a lost reply with the same idempotency key (a fresh one unless given): recorded once.
        """
        request = extensions_pb2.RequestExtensionRequest(
            assignment=assignment_name(assignment), due_on=due_on.strip(), reason=reason,
            idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._extensions.RequestExtension, request, timeout=timeout)

    def decide_extension(self, name: str, decision: str, reason: str, *, idempotency_key: str | None = None,
                         timeout: float | None = None) -> extensions_pb2.Extension:
        """Approve or refuse (`decision`) a pending extension request, with a required reason.

        Retried after a lost reply with the same idempotency key (a fresh one unless given): recorded once.
        """
        if decision.lower() not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}; decisions: {', '.join(DECISIONS)}")
        request = extensions_pb2.DecideExtensionRequest(
            name=extension_name(name), decision=DECISIONS[decision.lower()], reason=reason,
            idempotency_key=idempotency_key or new_idempotency_key())
        return self._calls.unary(self._extensions.DecideExtension, request, timeout=timeout).extension

    def get_extension(self, name: str, *, timeout: float | None = None) -> extensions_pb2.Extension:
        """One extension request, `assignments/{id}/extensions/{n}` or `{id}/{n}`."""
        request = extensions_pb2.GetExtensionRequest(name=extension_name(name))
        return self._calls.unary(self._extensions.GetExtension, request, timeout=timeout).extension

    def list_extensions(self, *, assignment: str | None = None, unit: str | None = None, status: str | None = None,
                        requested_in: str | None = None, decided_in: str | None = None, filter: str = "",
                        timeout: float | None = None) -> Iterator[extensions_pb2.Extension]:
        """Every extension request matching, oldest first: of one assignment, of a unit's assignments, in a
        status, requested or decided in a quarter (`2026-Q3`) or a range of dates (`2026-07-01..2026-08-15`)."""
        query = join_filter(
            f"unit={unit_name(unit)}" if unit else "",
            f"status={status.lower()}" if status else "",
            f"requested_in={period_or_dates(requested_in)}" if requested_in else "",
            f"decided_in={period_or_dates(decided_in)}" if decided_in else "",
            filter,
        )
        parent = assignment_name(assignment) if assignment else ""

        def fetch(token: str) -> tuple[Sequence[extensions_pb2.Extension], str]:
            request = extensions_pb2.ListExtensionsRequest(parent=parent, page_size=1000, page_token=token,
                                                           filter=query)
            reply = self._calls.unary(self._extensions.ListExtensions, request, timeout=timeout)
            return reply.extensions, reply.next_page_token

        return self._calls.pages(fetch)
