"""Sending parsed rows in batches and accounting for every row: stored, duplicate, rejected or not stored.

A batch is atomic on the server: if any row of it is refused, none of its rows is stored. The rows
the server names become rejects at their file lines; the batch's other rows are counted as "not
stored" so that nothing goes missing silently. The next batch is sent regardless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from civicscore_api.v1 import assignments_pb2, measurements_pb2, outcomes_pb2
from civicscore_client._client import Client
from civicscore_client._errors import (
    AlreadyExists,
    Cancelled,
    CivicscoreError,
    DeadlineExceeded,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from civicscore_client.importing import Kind, ParsedFile, Reject, Row, column_of

M = TypeVar("M", bound=Message)

# Failures that would refuse every following batch too: stop instead of repeating them.
STOPPING_ERRORS = (Unavailable, DeadlineExceeded, Unauthenticated, PermissionDenied, Cancelled)


@dataclass(frozen=True)
class Counts:
    """What the server reported for one batch; `accepted` = created + updated for upserts."""

    accepted: int = 0
    duplicates: int = 0
    created: int = 0
    updated: int = 0


@dataclass(frozen=True)
class RefusedBatch:
    """A batch the server refused as a whole, by the file lines it spans."""

    first_line: int
    last_line: int
    rows: int
    reason: str


@dataclass
class ImportSummary:
    """Where every row of a file ended up."""

    kind: Kind
    source: str
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    created: int = 0
    updated: int = 0
    not_stored: int = 0
    rejects: list[Reject] = field(default_factory=list)
    refused: list[RefusedBatch] = field(default_factory=list)
    batches_sent: int = 0
    dry_run: bool = False
    # A failure that stopped the import (server unreachable, no permission): the rest was not sent.
    stopped_by: CivicscoreError | None = None

    @property
    def rejected_lines(self) -> int:
        """Distinct lines with at least one problem."""
        return len({reject.line for reject in self.rejects})

    @property
    def ok(self) -> bool:
        """Whether every row read was stored (or was already stored)."""
        return not self.rejects and not self.refused and not self.not_stored and self.stopped_by is None

    def add(self, counts: Counts) -> None:
        self.accepted += counts.accepted
        self.duplicates += counts.duplicates
        self.created += counts.created
        self.updated += counts.updated

    def as_json(self) -> dict[str, Any]:
        """The summary as plain data for `--json`."""
        return {
            "file": self.source,
            "kind": self.kind,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "created": self.created,
            "updated": self.updated,
            "rejected": self.rejected_lines,
            "not_stored": self.not_stored,
            "rejects": [{"line": r.line, "column": r.column, "reason": r.reason} for r in self.rejects],
            "refused_batches": [
                {"first_line": b.first_line, "last_line": b.last_line, "rows": b.rows, "reason": b.reason}
                for b in self.refused
            ],
            "dry_run": self.dry_run,
            "stopped": self.stopped_by.message if self.stopped_by is not None else "",
        }


@dataclass(frozen=True)
class Sender(Generic[M]):
    """How one kind of row is sent, and how a row is named in a conflict (ALREADY_EXISTS)."""

    send: Callable[[Client, list[M]], Counts]
    identity: Callable[[M], str]
    identity_column: str


def send_in_batches(
    client: Client,
    parsed: ParsedFile[M],
    sender: Sender[M],
    *,
    batch_size: int,
    source: str,
    on_batch: Callable[[int], None] = lambda rows: None,
) -> ImportSummary:
    """Send the parsed rows batch by batch and account for each; stop only on failures that would repeat."""
    summary = start_summary(parsed, source)
    rows = parsed.rows
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        try:
            summary.add(sender.send(client, [row.message for row in batch]))
        except STOPPING_ERRORS as err:
            summary.not_stored += len(rows) - start
            summary.stopped_by = err
            break
        except CivicscoreError as err:
            account_refusal(summary, batch, err, sender)
        summary.batches_sent += 1
        on_batch(len(batch))
    summary.rejects.sort(key=lambda reject: reject.line)
    return summary


def send_as_stream(
    client: Client,
    parsed: ParsedFile[outcomes_pb2.Outcome],
    *,
    chunk_size: int,
    source: str,
    timeout: float | None = None,
) -> ImportSummary:
    """Send every parsed outcome in one atomic stream: all are stored, or none."""
    summary = start_summary(parsed, source)
    rows = parsed.rows
    if rows:
        try:
            reply = client.stream_outcomes([row.message for row in rows], chunk_size=chunk_size, timeout=timeout)
            summary.add(Counts(accepted=reply.accepted, duplicates=reply.duplicates))
            summary.batches_sent = 1
        except STOPPING_ERRORS as err:
            summary.not_stored = len(rows)
            summary.stopped_by = err
        except CivicscoreError as err:
            account_refusal(summary, rows, err, OUTCOMES)
    summary.rejects.sort(key=lambda reject: reject.line)
    return summary


def start_summary(parsed: ParsedFile[M], source: str) -> ImportSummary:
    """A summary holding the rows rejected while parsing, before anything is sent."""
    summary = ImportSummary(parsed.kind, source, rows_read=len(parsed.rows) + len({r.line for r in parsed.rejects}))
    summary.rejects.extend(parsed.rejects)
    return summary


def account_refusal(summary: ImportSummary, batch: Sequence[Row[M]], err: CivicscoreError, sender: Sender[M]) -> None:
    """Rejects at the lines the server named in a refused batch; its other rows are counted as not stored."""
    rejects: list[Reject] = []
    notes: list[str] = []
    if isinstance(err, InvalidArgument) and err.violations:
        for violation in err.violations:
            if 0 <= violation.index < len(batch):
                line = batch[violation.index].line
                rejects.append(Reject(line, column_of(summary.kind, violation.field), violation.description))
            else:
                notes.append(f"{violation.field}: {violation.description}")
    elif isinstance(err, AlreadyExists) and err.ids:
        lines = {sender.identity(row.message): row.line for row in batch}
        for ident in err.ids:
            if ident in lines:
                rejects.append(Reject(lines[ident], sender.identity_column, _conflict_reason(summary.kind, ident)))
            else:
                notes.append(f"{ident}: already stored with different content")
    else:
        notes.append(err.message)
    summary.rejects.extend(rejects)
    named = {reject.line for reject in rejects}
    others = sum(1 for row in batch if row.line not in named)
    reason = "; ".join(notes) if notes else f"{len(named)} listed above, the other {others:,} not stored"
    summary.not_stored += others
    summary.refused.append(RefusedBatch(batch[0].line, batch[-1].line, len(batch), reason))


def _conflict_reason(kind: Kind, ident: str) -> str:
    if kind == "outcomes":
        return (
            f"outcome {ident} was already stored with different content; outcomes never change: "
            "report the correction as a new outcome with a new outcome_id"
        )
    return f"{ident} was already stored with different content"


def _send_outcomes(client: Client, outcomes: list[outcomes_pb2.Outcome]) -> Counts:
    reply = client.submit_outcomes(outcomes, batch_size=len(outcomes))
    return Counts(accepted=reply.accepted, duplicates=reply.duplicates)


def _send_assignments(client: Client, assignments: list[assignments_pb2.Assignment]) -> Counts:
    reply = client.upsert_assignments(assignments, batch_size=len(assignments))
    return Counts(reply.created + reply.updated, reply.unchanged, reply.created, reply.updated)


def _send_measurements(client: Client, measurements: list[measurements_pb2.Measurement]) -> Counts:
    reply = client.submit_measurements(measurements, batch_size=len(measurements))
    return Counts(reply.created + reply.updated, reply.unchanged, reply.created, reply.updated)


OUTCOMES: Sender[outcomes_pb2.Outcome] = Sender(_send_outcomes, lambda o: o.outcome_id, "outcome_id")
ASSIGNMENTS: Sender[assignments_pb2.Assignment] = Sender(_send_assignments, lambda a: a.assignment_id, "assignment_id")
MEASUREMENTS: Sender[measurements_pb2.Measurement] = Sender(
    _send_measurements, lambda m: f"{m.unit}/{m.period}/{m.indicator}", "indicator"
)
