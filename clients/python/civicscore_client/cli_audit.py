"""`civicscore audit …`: read and verify the audit log."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from civicscore_client.cli_locale import hanoi_time
from civicscore_client.cli_session import message_dict, messages_json, session_of

audit_app = typer.Typer(help="The audit log: every change and every refused call, hash-chained.",
                        no_args_is_help=True)


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    expected: Annotated[str, typer.Option(
        "--expected", help="SEQUENCE:HASH noted at an earlier verification (catches a log cut at its end).")] = "",
) -> None:
    """Check the hash chain: exit 0 when intact, 1 listing every edited, deleted or reordered entry."""
    session = session_of(ctx)
    sequence, _, digest = expected.partition(":")
    if expected and (not sequence.isdigit() or not digest):
        session.fail("--expected must be SEQUENCE:HASH, as a previous `audit verify` printed it", code=2)
    with session.reporting_errors(), session.connect() as client:
        reply = client.verify_audit(expected_sequence=int(sequence or 0), expected_hash=digest)
        if session.json_output:
            session.print_json(message_dict(reply))
        else:
            for problem in reply.problems:
                session.out.print(f"{problem.kind} #{problem.sequence}: {problem.message}", highlight=False)
            verdict = "intact" if reply.valid else f"{len(reply.problems)} problem(s)"
            session.out.print(f"{reply.entries_checked} entries checked: {verdict}. "
                              f"Note the head to check later: --expected {reply.head_sequence}:{reply.head_hash}")
    if not reply.valid:
        raise typer.Exit(1)


@audit_app.command("list")
def list_events(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this identity.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    refused: Annotated[bool, typer.Option("--refused", help="Only refused calls.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, the latest.")] = 50,
) -> None:
    """List audit entries (the latest `--limit`), oldest first."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        events = list(client.list_audit_events(actor=actor, action=action, outcome="refused" if refused else None))
        events = events[-limit:]
        if session.json_output:
            session.print_json(messages_json(events))
            return
        table = Table(title="Audit log")
        for column in ("#", "When (Hanoi time)", "Who", "What", "Target", "Outcome", "Details"):
            table.add_column(column, overflow="fold")
        for event in events:
            when = hanoi_time(event.event_time)
            table.add_row(str(event.sequence), when, Text(event.actor), event.action, Text(event.target),
                          event.outcome, Text(event.detail_json))
        session.out.print(table)
