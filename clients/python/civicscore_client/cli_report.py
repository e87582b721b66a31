"""`civicscore report`: the quarterly report as an HTML, CSV or PDF file."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from civicscore_client.cli_session import session_of

PDF_TIMEOUT_S = 180.0  # Chromium prints the PDF on the server


class ReportFormatChoice(StrEnum):
    """Formats `--format` accepts."""

    html = "html"
    csv = "csv"
    pdf = "pdf"


class ReportLangChoice(StrEnum):
    """Languages `--lang` accepts."""

    vi = "vi"
    en = "en"


def report(
    ctx: typer.Context,
    period: Annotated[str, typer.Option("--period", "-p", help="Quarter (2026-Q3), half-year (2026-H1) or year (2026).",
                                       show_default=False)],
    lang: Annotated[ReportLangChoice, typer.Option("--lang", help="Language of the report: vi or en.")
                    ] = ReportLangChoice.vi,
    fmt: Annotated[ReportFormatChoice, typer.Option("--format", "-f", help="html, csv (UTF-8 with BOM, for "
                                                    "spreadsheets) or pdf (made by Chromium on the server).")
                   ] = ReportFormatChoice.html,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", show_default=False,
        help="File to write; default: the server's file name (civicscore-report-PERIOD-LANG.EXT) here. "
             "`-` writes to standard output.")] = None,
    stamp: Annotated[bool, typer.Option(
        "--stamp/--no-stamp", help="Print the time the report is made in it (the same data then no longer gives "
                                   "the same bytes).")] = False,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", show_default=False,
        help="A report on demand (báo cáo đột xuất): the quarter to this day (YYYY-MM-DD), evaluated for the "
             "report and not stored, marked provisional.")] = None,
) -> None:
    """Write the quarterly report: summary figures, rankings per block, grade charts and the trend against the
    previous quarter, commendation and criticism candidates with reasons and review status, the ruleset used."""
    session = session_of(ctx)
    timeout = max(session.timeout, PDF_TIMEOUT_S) if fmt is ReportFormatChoice.pdf else None
    with session.reporting_errors(), session.connect(timeout=timeout) as client:
        reply = client.get_quarterly_report(period, format=fmt.value, language=lang.value,
                                            generate_time=dt.datetime.now(dt.UTC) if stamp else None, as_of=as_of)
    if output is not None and str(output) == "-":
        session.out.file.flush()
        typer.get_binary_stream("stdout").write(reply.content)
        return
    target = output if output is not None else Path(reply.file_name)
    try:
        target.write_bytes(reply.content)
    except OSError as error:
        session.fail(f"cannot write {target}: {error.strerror or error}", code=2)
    if session.json_output:
        session.print_json({"file": str(target), "content_type": reply.content_type, "bytes": len(reply.content)})
        return
    session.out.print(f"Wrote {target} ({len(reply.content):,} bytes, {reply.content_type})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command()(report)
