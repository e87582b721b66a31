"""`civicscore review|contest|contests|contest-show|watch`: the committee's review and the units' reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import evaluations_pb2, reviews_pb2
from civicscore_client._errors import CivicscoreError, OutOfRange
from civicscore_client.cli_locale import (
    Lang,
    LangOption,
    hanoi_time,
    number,
    pick,
    recommendation_review_name,
    word,
)
from civicscore_client.cli_session import Session, message_dict, messages_json, session_of
from civicscore_client.importing import detect_format, open_import_file, parse_outcomes

review_app = typer.Typer(help="Approve, reject or defer a recommendation (committee), with a reason.",
                         no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The recommendation, e.g. periods/2026-Q3/recommendations/STP~criticism "
                                             "or 2026-Q3/STP~criticism.", show_default=False)]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (required).", show_default=False)]


def _status(value: int) -> str:
    return evaluations_pb2.RecommendationStatus.Name(value).removeprefix("RECOMMENDATION_STATUS_").lower()  # type: ignore[arg-type]


def _decide(ctx: typer.Context, name: str, decision: str, reason: str) -> None:
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        reply = client.review_recommendation(name, decision, reason)
    if session.json_output:
        session.print_json(message_dict(reply))
        return
    r = reply.recommendation
    session.out.print(Text(f"{recommendation_review_name(r)} (id {r.recommendation_id}): "
                           f"{_status(reply.review.previous_status)} -> {_status(r.status)} by {reply.review.reviewer}"
                           f": {reply.review.reason} ({hanoi_time(reply.review.review_time)})"))


@review_app.command()
def approve(ctx: typer.Context, name: NameArg, reason: ReasonOpt) -> None:
    """Approve a proposed or deferred recommendation (final)."""
    _decide(ctx, name, "approve", reason)


@review_app.command()
def reject(ctx: typer.Context, name: NameArg, reason: ReasonOpt) -> None:
    """Reject a proposed or deferred recommendation (final)."""
    _decide(ctx, name, "reject", reason)


@review_app.command()
def defer(ctx: typer.Context, name: NameArg, reason: ReasonOpt) -> None:
    """Defer a proposed or deferred recommendation, to decide later."""
    _decide(ctx, name, "defer", reason)


def _snapshot(s: reviews_pb2.EvaluationSnapshot, lang: Lang) -> str:
    if not s.revision:
        return "(no evaluation)"
    score = number(s.score, lang, 1) if s.assessable else "not assessable"
    return f"rev {s.revision}: {score}, {s.grade or '-'}, flags: {', '.join(s.flags) or 'none'}"


def _print_contest(session: Session, c: reviews_pb2.Contest, lang: Lang) -> None:
    table = Table(title=f"{c.name}: {c.recommendation}", show_lines=True)
    table.add_column("", style="bold")
    table.add_column("Before")
    table.add_column("After")
    table.add_row("Evaluation", _snapshot(c.before, lang), _snapshot(c.after, lang))
    table.add_row("Score", number(c.before.score, lang, 1), number(c.after.score, lang, 1))
    table.add_row("Grade", c.before.grade or "-", c.after.grade or "-")
    table.add_row("Flags", ", ".join(c.before.flags) or "none", ", ".join(c.after.flags) or "none")
    session.out.print(table)
    session.out.print(Text(f"By {c.contested_by} at {hanoi_time(c.create_time)}: {c.text}"))
    session.out.print(f"Corrections: {len(c.corrections)} ({c.accepted} stored, {c.duplicates} duplicates)")
    for o in c.corrections:
        session.out.print(Text(f"  {o.outcome_id}: {o.assignment} {o.completed_on or ''} reminders={o.reminders}"))
    if c.HasField("current"):
        session.out.print(f"Recommendation now: {_status(c.current.status)}"
                          + (f", successor {c.current.successor}" if c.current.successor else ""))


def contest(
    ctx: typer.Context,
    name: NameArg,
    text: Annotated[str, typer.Option("--text", "-t", help="The unit's reply (required).", show_default=False)],
    outcomes: Annotated[Path | None, typer.Option(
        "--outcomes", help="Corrected outcomes, CSV or JSON Lines (the `import outcomes` columns).",
        show_default=False)] = None,
    lang: LangOption = Lang.vi,
) -> None:
    """Contest a recommendation for your unit: the corrections are stored, the quarter re-evaluated."""
    session = session_of(ctx)
    corrections = []
    with session.reporting_errors():
        if outcomes is not None:
            with open_import_file(outcomes) as opened:  # read a record at a time: the file may be huge
                parsed = parse_outcomes(opened, format=detect_format(outcomes), source=str(outcomes))
            if parsed.rejects:
                session.fail("\n".join([f"{outcomes}: {len(parsed.rejects)} line(s) rejected; nothing was sent",
                                        *(f"  {r}" for r in parsed.rejects[:20])]), code=2)
            corrections = [row.message for row in parsed.rows]
        with session.connect(timeout=max(session.timeout, 300.0)) as client:
            result = client.contest_recommendation(name, text, corrections)
    if session.json_output:
        session.print_json(message_dict(result))
        return
    _print_contest(session, result, lang)


def contests(ctx: typer.Context, period: Annotated[str, typer.Argument(help="Period, e.g. 2026-Q3, 2026-H1 or 2026.")],
             lang: LangOption = Lang.vi) -> None:
    """List a quarter's contests, with the evaluation before and after."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_contests(period))
    if session.json_output:
        session.print_json(messages_json(found))
        return
    if not found:
        session.out.print("No contests.")
        return
    table = Table(title=f"Contests {period}", show_lines=True)
    for column in ("Contest", "Recommendation", "By", "Before", "After", "Text"):
        table.add_column(column, overflow="fold")
    for c in found:
        table.add_row(c.name, c.recommendation, c.contested_by, _snapshot(c.before, lang), _snapshot(c.after, lang),
                      Text(c.text))
    session.out.print(table)


def contest_show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="contests/12 or 12.")],
                 lang: LangOption = Lang.vi) -> None:
    """One contest: the text, the corrections, and the evaluation before and after side by side."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = client.get_contest(name)
    if session.json_output:
        session.print_json(message_dict(found))
        return
    _print_contest(session, found, lang)


def watch(
    ctx: typer.Context,
    cursor: Annotated[str, typer.Option(
        "--from", help="Print the changes after this cursor (printed with every change) first; `--from 0` replays "
                       "every change. Default: start at the newest change, printing only new ones.")] = "",
    lang: LangOption = Lang.vi,
) -> None:
    """Print recommendation changes as they are committed (raised, superseded, reviewed, contested); Ctrl-C ends.

    Starts at the newest change unless `--from` is given. A watch broken by the server or the network (a
    server restarting, a dropped connection) is resumed from the last cursor received, so no change is missed
    or printed twice; errors the server gives for the request itself (a cursor past the newest change, a
    missing permission) end it."""
    session = session_of(ctx)

    def resuming(error: CivicscoreError, pause: float) -> None:
        session.err.print(Text(f"-- watch broken ({error.code.name}: {error.message}); resuming after cursor "
                               f"{stream.cursor or '0'} in {pause:.1f} s"))

    # From the head unless --from: the server starts after its newest change, with no backlog to read.
    printing = bool(cursor)
    with session.reporting_errors(), session.connect() as client:
        stream = client.watch_recommendations(cursor, from_newest=not cursor, resume_attempts=None,
                                              on_resume=resuming)
        try:
            for message in stream:
                if message.heartbeat:  # an idle stream's keep-alive: nothing to show
                    continue
                if message.caught_up:
                    if not session.json_output:
                        key = "caught_up" if printing else "caught_up_head"
                        session.err.print(Text(word(key, lang, cursor=message.cursor or "0")))
                    printing = True
                    continue
                if session.json_output:
                    session.out.file.write(json_line(message_dict(message)) + "\n")
                    session.out.file.flush()
                    continue
                session.out.print(change_line(message, lang))
        except KeyboardInterrupt:
            pass
        except OutOfRange as past:  # a cursor from another database or from before a restore
            session.fail(f"{past.message}\n  `civicscore watch --from CURSOR` resumes after a cursor this server "
                         "printed; `civicscore watch --from 0` replays every change")
        finally:
            stream.cancel()


def change_line(message: reviews_pb2.WatchRecommendationsResponse, lang: Lang) -> Text:
    """`[cursor] time (Hanoi) kind  NAME (label, unit) -> status`, with the decision of a review."""
    change = message.change
    kind = reviews_pb2.RecommendationChangeKind.Name(change.kind).removeprefix("RECOMMENDATION_CHANGE_KIND_").lower()
    r = change.recommendation
    label = pick(lang, r.label_vi, r.label_en) or r.flag
    line = Text(f"[{message.cursor}] {hanoi_time(change.change_time)} {kind:<10} ")
    line.append(recommendation_review_name(r), style="bold")
    line.append(f" ({label}, {r.unit_display_name_vi}) id={r.recommendation_id} -> {_status(r.status)}")
    if kind == "reviewed":
        line.append(f" ({r.last_decision} by {r.last_reviewer}: {r.last_decision_reason})")
    return line


def json_line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(review_app, name="review")
    app.command()(contest)
    app.command()(contests)
    app.command("contest-show")(contest_show)
    app.command()(watch)
