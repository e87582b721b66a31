"""`civicscore extensions request|approve|refuse|list|show`: a unit asks for more time, the committee decides."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import extensions_pb2
from civicscore_client.cli_locale import Lang, LangOption, extension_status, hanoi_time, word
from civicscore_client.cli_session import Session, message_dict, messages_json, session_of

extensions_app = typer.Typer(
    help="Extensions (gia hạn): a unit asks for more time on an assignment before its due date; the committee "
         "approves or refuses. An approval sets the due date the evaluations use as of each quarter's end.",
    no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(
    help="The request, e.g. assignments/QD818-17/extensions/12 or QD818-17/12.", show_default=False)]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (required).", show_default=False)]


def status_name(value: int) -> str:
    """`approved` for EXTENSION_STATUS_APPROVED."""
    return extensions_pb2.ExtensionStatus.Name(value).removeprefix("EXTENSION_STATUS_").lower()  # type: ignore[arg-type]


def _summary(e: extensions_pb2.Extension, lang: Lang) -> Text:
    """Name and status, then what was asked and what is in force, one line each."""
    text = Text()
    text.append(e.name, style="bold")
    text.append(f"  {extension_status(status_name(e.status), lang)}\n")
    text.append(f"  {word('assignment', lang)}: {e.assignment} ({e.unit}) {e.assignment_title}\n")
    text.append(f"  {word('original_due', lang)} {e.original_due_on} · {word('due_at_request', lang)} "
                f"{e.due_on_at_request} · {word('requested_due', lang)} {e.requested_due_on} · "
                f"{word('effective_due', lang)} {e.effective_due_on}")
    return text


@extensions_app.command()
def request(
    ctx: typer.Context,
    assignment: Annotated[str, typer.Argument(help="The assignment, e.g. QD818-17 or assignments/QD818-17.",
                                              show_default=False)],
    due_on: Annotated[str, typer.Option("--due-on", help="The new due date, YYYY-MM-DD (required).",
                                        show_default=False)],
    reason: ReasonOpt,
    lang: LangOption = Lang.vi,
) -> None:
    """Ask for a new due date for an assignment of your unit, before its due date in force."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        reply = client.request_extension(assignment, due_on, reason)
    if session.json_output:
        session.print_json(message_dict(reply))
        return
    session.out.print(_summary(reply.extension, lang))
    if reply.HasField("superseded"):
        superseded = reply.superseded
        session.out.print(Text(f"  {word('superseded_by', lang)}: {superseded.name} -> {reply.extension.name}"))


def _decide(ctx: typer.Context, name: str, decision: str, reason: str, lang: Lang) -> None:
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        decided = client.decide_extension(name, decision, reason)
    if session.json_output:
        session.print_json(message_dict(decided))
        return
    line = Text()
    line.append(decided.name, style="bold")
    line.append(f"  {extension_status('pending', lang)} -> {extension_status(status_name(decided.status), lang)} "
                f"({decided.decided_by}, {hanoi_time(decided.decision_time)}): {decided.decision_reason}\n")
    line.append(f"  {word('effective_due', lang)} {decided.effective_due_on} ({word('original_due', lang)} "
                f"{decided.original_due_on})")
    session.out.print(line)


@extensions_app.command()
def approve(ctx: typer.Context, name: NameArg, reason: ReasonOpt, lang: LangOption = Lang.vi) -> None:
    """Approve a pending request (committee, final): its date becomes the assignment's due date in force."""
    _decide(ctx, name, "approve", reason, lang)


@extensions_app.command()
def refuse(ctx: typer.Context, name: NameArg, reason: ReasonOpt, lang: LangOption = Lang.vi) -> None:
    """Refuse a pending request (committee, final): the due date does not change."""
    _decide(ctx, name, "refuse", reason, lang)


@extensions_app.command("list")
def list_(
    ctx: typer.Context,
    assignment: Annotated[str | None, typer.Option("--assignment", help="One assignment's requests.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Requests for a unit's assignments, e.g. SNV.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="pending, approved, refused or superseded.")] = None,
    requested_in: Annotated[str | None, typer.Option(
        "--requested-in", help="Asked in a quarter (2026-Q3) or between dates (2026-07-01..2026-08-15).")] = None,
    decided_in: Annotated[str | None, typer.Option(
        "--decided-in", help="Decided in a quarter (2026-Q3) or between dates (2026-07-01..2026-08-15).")] = None,
    lang: LangOption = Lang.vi,
) -> None:
    """List extension requests, oldest first, with the dates and the decision."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_extensions(assignment=assignment, unit=unit, status=status,
                                            requested_in=requested_in, decided_in=decided_in))
    if session.json_output:
        session.print_json(messages_json(found))
        return
    if not found:
        session.out.print(word("no_extensions", lang))
        return
    table = Table(title=word("extensions", lang), show_lines=True)
    table.add_column(word("extension", lang), no_wrap=True)
    table.add_column(word("unit", lang), no_wrap=True)
    for key in ("original_due", "requested_due", "effective_due"):
        table.add_column(word(key, lang), no_wrap=True)
    table.add_column(word("status", lang).capitalize())
    table.add_column(word("requested_by", lang), overflow="fold")
    table.add_column(word("decided_by", lang), overflow="fold")
    for e in found:
        asked = Text(f"{e.requested_by}, {hanoi_time(e.request_time, seconds=False)}\n{e.reason}")
        decided = Text(f"{e.decided_by}, {hanoi_time(e.decision_time, seconds=False)}\n{e.decision_reason}"
                       if e.decided_by else (e.superseded_by or "-"))
        table.add_row(e.name, e.unit.removeprefix("units/"), e.original_due_on, e.requested_due_on,
                      e.effective_due_on, extension_status(status_name(e.status), lang), asked, decided)
    session.out.print(table)
    if any(e.status == extensions_pb2.EXTENSION_STATUS_PENDING for e in found):
        session.out.print(Text(word("extension_hint", lang), style="dim"))


@extensions_app.command()
def show(ctx: typer.Context, name: NameArg, lang: LangOption = Lang.vi) -> None:
    """One extension request: the dates, the unit's reason and the committee's decision."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = client.get_extension(name)
    if session.json_output:
        session.print_json(message_dict(found))
        return
    _print_extension(session, found, lang)


def _print_extension(session: Session, e: extensions_pb2.Extension, lang: Lang) -> None:
    table = Table(title=e.name, show_header=False, show_lines=True)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("", overflow="fold")
    rows = [
        (word("status", lang).capitalize(), extension_status(status_name(e.status), lang)),
        (word("assignment", lang), f"{e.assignment} · {e.assignment_title}"),
        (word("unit", lang), e.unit),
        (word("original_due", lang), e.original_due_on),
        (word("due_at_request", lang), e.due_on_at_request),
        (word("requested_due", lang), e.requested_due_on),
        (word("effective_due", lang), e.effective_due_on),
        (word("requested_by", lang), f"{e.requested_by}, {hanoi_time(e.request_time)}"),
        (word("extension_reason", lang), e.reason),
    ]
    if e.decided_by:
        rows += [(word("decided_by", lang), f"{e.decided_by}, {hanoi_time(e.decision_time)}"),
                 (word("decision_reason", lang), e.decision_reason)]
    if e.superseded_by:
        rows.append((word("superseded_by", lang), e.superseded_by))
    for label, value in rows:
        table.add_row(label, Text(value))
    session.out.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(extensions_app, name="extensions")
