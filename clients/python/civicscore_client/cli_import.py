"""`civicscore import outcomes|assignments|measurements FILE`: files in, a line-by-line account out."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from google.protobuf.message import Message
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from civicscore_api.v1 import outcomes_pb2
from civicscore_client._client import MAX_BATCH
from civicscore_client.cli_session import Session, session_of
from civicscore_client.import_run import (
    ASSIGNMENTS,
    MEASUREMENTS,
    OUTCOMES,
    ImportSummary,
    Sender,
    send_as_stream,
    send_in_batches,
    start_summary,
)
from civicscore_client.importing import (
    MAX_JSON_NESTING,
    MAX_RECORD_BYTES,
    Format,
    ParsedFile,
    detect_format,
    open_import_file,
    parse_assignments,
    parse_measurements,
    parse_outcomes,
)

M = TypeVar("M", bound=Message)
STREAM_TIMEOUT = 600.0

import_app = typer.Typer(
    name="import",
    help="Import outcomes, assignments or measurements from a CSV or JSON Lines file.",
    no_args_is_help=True,
)


class FileFormat(StrEnum):
    """File formats `--format` accepts."""

    csv = "csv"
    jsonl = "jsonl"


FileArg = Annotated[
    Path,
    typer.Argument(help="UTF-8 file, with or without BOM.", exists=True, dir_okay=False, readable=True),
]
FormatOpt = Annotated[
    FileFormat | None,
    typer.Option("--format", help="csv or jsonl; by default from the extension (.csv, .jsonl, .ndjson)."),
]
BatchOpt = Annotated[
    int,
    typer.Option(
        "--batch-size",
        min=1,
        max=MAX_BATCH,
        help="Rows per request. Each request is all or nothing: one bad row keeps its whole batch out.",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Only read the file and list bad lines; send nothing.")]


def _reflow(text: str) -> str:
    """Join the source's wrapped lines so the help is re-wrapped to the terminal, paragraphs kept."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n"))


_COMMON = f"""
Rows the file itself gets wrong (bad date, unknown value, missing value, a value outside what the
server accepts) are rejected before anything is sent. Every rejected line is listed as
`line N: column: reason`. Exit code 0 when every row was stored (or already was), 1 when any row
was rejected or not stored, 2 when the file cannot be read at all.

Dates: YYYY-MM-DD (or DD/MM/YYYY). reported_at: ISO 8601, e.g. 2026-07-15T09:30:00+07:00; without
an offset it is Hanoi time (+07:00). Dates, times and quarters fall in the years 2000-2100; numbers
are finite. The file is read a line at a time: a record longer than {MAX_RECORD_BYTES:,} bytes, or
JSON nested deeper than {MAX_JSON_NESTING} levels, is a rejected line.
"""


@import_app.command(
    "outcomes",
    help=_reflow(f"""Import outcome reports (each row: one report about one assignment).

Columns (CSV header, or JSON Lines keys): outcome_id, assignment_id, status, completed_on, quality,
reminders, reported_at, reporting_system, note. status: completed, in_progress or cancelled;
completed_on: required when completed; quality: accepted, returned_for_rework or empty; reminders: a
whole number (default 0). completed_on, quality, reminders and note may be left out.

Importing the same file again is safe: outcomes already stored are counted as duplicates.
{_COMMON}"""),
)
def import_outcomes(
    ctx: typer.Context,
    file: FileArg,
    format: FormatOpt = None,
    batch_size: BatchOpt = 1000,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Send the whole file as one atomic stream: every row is stored, or none."),
    ] = False,
    dry_run: DryRunOpt = False,
) -> None:
    session = session_of(ctx)
    with session.reporting_errors():
        with open_import_file(file) as opened:
            parsed = parse_outcomes(opened, format=_format(file, format), source=file.name)
        if stream and not dry_run:
            _finish(session, _stream(session, parsed, batch_size, file.name))
        else:
            _finish(session, _send(session, parsed, OUTCOMES, batch_size, file.name, dry_run=dry_run))


@import_app.command(
    "assignments",
    help=_reflow(f"""Import assignments (tasks given to units), created or replaced by assignment_id.

Columns (CSV header, or JSON Lines keys): assignment_id, unit, title, area, source_document,
assigned_on, due_on, priority. unit: a unit code such as SNV; area: par or dx; priority: low, normal,
high, urgent or empty (normal). source_document and priority may be left out.
{_COMMON}"""),
)
def import_assignments(
    ctx: typer.Context,
    file: FileArg,
    format: FormatOpt = None,
    batch_size: BatchOpt = 1000,
    dry_run: DryRunOpt = False,
) -> None:
    session = session_of(ctx)
    with session.reporting_errors():
        with open_import_file(file) as opened:
            parsed = parse_assignments(opened, format=_format(file, format), source=file.name)
        _finish(session, _send(session, parsed, ASSIGNMENTS, batch_size, file.name, dry_run=dry_run))


@import_app.command(
    "measurements",
    help=_reflow(f"""Import indicator measurements: a numerator and denominator per unit, quarter, indicator.

Columns (CSV header, or JSON Lines keys): unit, period, indicator, numerator, denominator,
reported_at, reporting_system. period: a quarter such as 2026-Q3; indicator: a code of the active
ruleset such as dx.online_applications (see `civicscore ruleset`); numerator and denominator:
numbers with . as the decimal point.
{_COMMON}"""),
)
def import_measurements(
    ctx: typer.Context,
    file: FileArg,
    format: FormatOpt = None,
    batch_size: BatchOpt = 1000,
    dry_run: DryRunOpt = False,
) -> None:
    session = session_of(ctx)
    with session.reporting_errors():
        with open_import_file(file) as opened:
            parsed = parse_measurements(opened, format=_format(file, format), source=file.name)
        _finish(session, _send(session, parsed, MEASUREMENTS, batch_size, file.name, dry_run=dry_run))


def _format(path: Path, given: FileFormat | None) -> Format:
    if given is None:
        return detect_format(path)
    return "csv" if given is FileFormat.csv else "jsonl"


def _send(
    session: Session, parsed: ParsedFile[M], sender: Sender[M], batch_size: int, source: str, *, dry_run: bool
) -> ImportSummary:
    """Send in batches under a progress bar; only parse when dry-running or when no row is left to send."""
    if dry_run or not parsed.rows:
        summary = start_summary(parsed, source)
        summary.dry_run = dry_run
        return summary
    with session.connect() as client, _progress(session) as progress:
        task = progress.add_task(f"importing {parsed.kind}", total=len(parsed.rows))
        advance: Callable[[int], None] = lambda rows: progress.advance(task, rows)  # noqa: E731
        return send_in_batches(client, parsed, sender, batch_size=batch_size, source=source, on_batch=advance)


def _stream(session: Session, parsed: ParsedFile[outcomes_pb2.Outcome], chunk_size: int, source: str) -> ImportSummary:
    """Send all outcomes in one stream; the spinner shows activity, there is no per-row progress."""
    if not parsed.rows:
        return start_summary(parsed, source)
    with session.connect() as client, _progress(session) as progress:
        progress.add_task(f"streaming {len(parsed.rows):,} {parsed.kind}", total=None)
        timeout = max(session.timeout, STREAM_TIMEOUT)
        return send_as_stream(client, parsed, chunk_size=chunk_size, source=source, timeout=timeout)


def _progress(session: Session) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=session.err,
        transient=True,
        disable=session.json_output or not session.err.is_terminal,
    )


def _finish(session: Session, summary: ImportSummary) -> None:
    """Print the account of every row, then exit 1 unless every row was stored."""
    if session.json_output:
        session.print_json(summary.as_json())
    elif summary.batches_sent or summary.rejects or summary.stopped_by is None:
        _print_summary(session, summary)
    if summary.stopped_by is not None:
        raise summary.stopped_by  # reported as one line by reporting_errors
    if not summary.ok:
        raise typer.Exit(1)


def _print_summary(session: Session, summary: ImportSummary) -> None:
    out = session.out
    out.print(f"[bold]{escape(summary.source)}[/]: {summary.rows_read:,} {summary.kind} rows read")
    if summary.dry_run:
        ready = summary.rows_read - summary.rejected_lines
        out.print(f"  dry run: {ready:,} rows ready to send, {summary.rejected_lines:,} rejected; nothing was sent")
    else:
        _print_counts(session, summary)
    if summary.rejects:
        out.print("Rejected lines:")
        for reject in summary.rejects:
            out.print(f"  {escape(str(reject))}", soft_wrap=True)
    if summary.refused:
        out.print("Refused batches (a batch is all or nothing, so its other rows were not stored):")
        for batch in summary.refused:
            out.print(
                f"  lines {batch.first_line}-{batch.last_line} ({batch.rows:,} rows): {escape(batch.reason)}",
                soft_wrap=True,
            )
        out.print("Fix the rejected lines and import the file again; rows already stored are not stored twice.")
    if summary.stopped_by is not None:
        out.print(f"Stopped after {summary.batches_sent} batch(es); the remaining rows were not sent.")


def _print_counts(session: Session, summary: ImportSummary) -> None:
    out = session.out
    upsert = summary.kind != "outcomes"
    accepted = f"{summary.accepted:,}"
    if upsert:
        accepted += f" ({summary.created:,} created, {summary.updated:,} updated)"
    out.print(f"  accepted    {accepted}")
    out.print(f"  {'unchanged ' if upsert else 'duplicates'}  {summary.duplicates:,}")
    out.print(f"  rejected    {summary.rejected_lines:,}")
    if summary.not_stored:
        out.print(f"  not stored  {summary.not_stored:,}")
