"""Read commands: evaluate, show, recommendations, rankings, units, ruleset, periods."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import evaluations_pb2, periods_pb2, units_pb2
from civicscore_client._client import Client
from civicscore_client._errors import NotFound
from civicscore_client._names import period_id, unit_code
from civicscore_client.cli_session import latest_evaluated, message_dict, messages_json, session_of
from civicscore_client.cli_show import print_evaluation

# Evaluating every unit of a quarter takes longer than a read.
EVALUATE_TIMEOUT = 300.0

PeriodArg = Annotated[str, typer.Argument(help="Quarter, e.g. 2026-Q3.", show_default=False)]


class UnitKindChoice(StrEnum):
    """Unit kinds `--kind` accepts."""

    department = "department"
    ward = "ward"
    commune = "commune"
    district = "district"


class RecommendationKindChoice(StrEnum):
    """Recommendation kinds `--kind` accepts."""

    commendation = "commendation"
    criticism = "criticism"


def evaluate(ctx: typer.Context, period: PeriodArg) -> None:
    """Evaluate every active unit for a quarter with the ruleset in force and store the results."""
    session = session_of(ctx)
    with (
        session.reporting_errors(),
        session.connect(timeout=max(session.timeout, EVALUATE_TIMEOUT)) as client,
    ):
        reply = client.evaluate_period(period)
        if session.json_output:
            session.print_json(message_dict(reply))
            return
        session.out.print(
            f"Evaluated {reply.units_evaluated:,} units for {period_id(period)} with ruleset "
            f"{escape(reply.ruleset_version)} ({reply.ruleset_digest[:12]}):"
        )
        session.out.print(f"  new revisions     {reply.new_revisions:,}")
        session.out.print(f"  unchanged         {reply.unchanged:,}")
        session.out.print(f"  not assessable    {reply.not_assessable:,}")
        session.out.print(f"  recommendations   {reply.recommendations:,}")


def show(
    ctx: typer.Context,
    unit: Annotated[str, typer.Argument(help="Unit code, e.g. SNV.", show_default=False)],
    period: Annotated[
        str | None,
        typer.Option("--period", "-p", help="Quarter, e.g. 2026-Q3; default: the latest evaluated."),
    ] = None,
    revision: Annotated[int, typer.Option("--revision", min=0, help="Revision to show; 0 is the latest.")] = 0,
) -> None:
    """Show one unit's evaluation: score, grade, task counts, indicators, fired rules and flags."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        quarter = period or latest_evaluated(client)
        if quarter is None:
            session.fail("no quarter has been evaluated yet; run `civicscore evaluate PERIOD` first")
        evaluation = client.get_evaluation(quarter, unit, revision=revision)
        if session.json_output:
            session.print_json(message_dict(evaluation))
            return
        try:
            name_en = client.get_unit(unit).display_name_en
        except NotFound:
            name_en = ""
        print_evaluation(session.out, evaluation, unit_name_en=name_en)


def recommendations(
    ctx: typer.Context,
    period: PeriodArg,
    kind: Annotated[RecommendationKindChoice | None, typer.Option("--kind", help="Only this kind.")] = None,
    flag: Annotated[str | None, typer.Option("--flag", help="Only this flag, e.g. praise, criticism.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Only this unit, e.g. SNV.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="proposed, approved, rejected, deferred or superseded.")
    ] = None,
) -> None:
    """List a quarter's recommendations (commendations and criticisms) for the committee to review."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(
            client.list_recommendations(period, kind=kind.value if kind else None, flag=flag, unit=unit, status=status)
        )
        if session.json_output:
            session.print_json(messages_json(found))
            return
        if not found:
            session.out.print(f"No recommendations for {period_id(period)} match.")
            return
        table = Table(title=f"Recommendations {period_id(period)}", show_lines=True)
        for column in ("Unit", "Name", "Flag", "Kind", "Level", "Status", "Reasons"):
            table.add_column(column, overflow="fold")
        for item in found:
            reasons = Text()
            for reason in item.reasons:
                reasons.append(f"{reason.text_vi}\n")
                reasons.append(f"{reason.text_en}\n", style="dim")
            reasons.rstrip()
            table.add_row(
                unit_code(item.unit),
                Text(item.unit_display_name_vi),
                Text(f"{item.label_vi} / {item.label_en}"),
                _enum_word(evaluations_pb2.RecommendationKind.Name(item.kind)),
                str(item.level),
                _enum_word(evaluations_pb2.RecommendationStatus.Name(item.status)),
                reasons,
            )
        session.out.print(table)


def rankings(
    ctx: typer.Context,
    period: PeriodArg,
    block: Annotated[str | None, typer.Option("--block", help="departments or communes; default: every block.")] = None,
) -> None:
    """Rank the units of a block for a quarter by score (ties by timeliness, then code)."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        blocks = [block] if block else sorted({u.block for u in client.list_units() if u.block})
        ranked = {name: client.list_rankings(period, name) for name in blocks}
        if session.json_output:
            session.print_json({name: messages_json(entries) for name, entries in ranked.items()})
            return
        for name, entries in ranked.items():
            if not entries:
                session.fail(f"no units in block {name!r}; the blocks are: {_blocks_hint(client)}")
            table = Table(title=f"Ranking {period_id(period)}: {name}")
            for column in ("Rank", "Unit", "Name", "Score", "Grade", "Timeliness", "Flags"):
                table.add_column(column, justify="right" if column in ("Rank", "Score", "Timeliness") else "left")
            for entry in entries:
                table.add_row(
                    str(entry.rank) if entry.rank else "-",
                    unit_code(entry.unit),
                    Text(entry.unit_display_name_vi),
                    entry.score_display or "-",
                    Text(entry.grade_label_vi or entry.grade),
                    f"{entry.timeliness:.1%}" if entry.rank else "-",
                    ", ".join(entry.flags),
                )
            session.out.print(table)


def units(
    ctx: typer.Context,
    kind: Annotated[UnitKindChoice | None, typer.Option("--kind", help="Only this kind.")] = None,
    block: Annotated[str | None, typer.Option("--block", help="Only this ranking block.")] = None,
) -> None:
    """List the units evaluated: departments, wards and communes."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_units(kind=kind.value if kind else None, block=block))
        if session.json_output:
            session.print_json(messages_json(found))
            return
        table = Table(title=f"Units ({len(found)})")
        for column in ("Code", "Name (vi)", "Name (en)", "Kind", "Block", "Active"):
            table.add_column(column)
        for unit in found:
            table.add_row(
                unit.code,
                Text(unit.display_name_vi),
                Text(unit.display_name_en),
                _enum_word(units_pb2.UnitKind.Name(unit.kind)),
                unit.block,
                "yes" if unit.active else "no",
            )
        session.out.print(table)


def ruleset(ctx: typer.Context) -> None:
    """Show the active ruleset: version, digest, indicators and the flags it can raise."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        active = client.get_active_ruleset()
        if session.json_output:
            session.print_json(message_dict(active))
            return
        out = session.out
        out.print(f"[bold]{escape(active.ruleset_id)}[/] version {escape(active.version)}")
        out.print(f"  digest          {active.digest}")
        out.print(f"  in force from   {active.in_force_from}")
        if active.HasField("load_time"):
            out.print(f"  loaded          {active.load_time.ToDatetime().isoformat(timespec='seconds')}Z")
        out.print(f"  rules           {active.rule_count}")
        indicators = Table(title="Indicators")
        for column in ("Code", "Name (vi)", "Name (en)", "Weight"):
            indicators.add_column(column)
        for indicator in active.indicators:
            indicators.add_row(
                indicator.code,
                Text(indicator.display_name_vi),
                Text(indicator.display_name_en),
                f"{indicator.weight:g}",
            )
        out.print(indicators)
        flags = Table(title="Flags")
        for column in ("Flag", "Label (vi)", "Label (en)", "Kind", "Level"):
            flags.add_column(column)
        for flag in active.flags:
            flags.add_row(flag.flag, Text(flag.label_vi), Text(flag.label_en), flag.kind, str(flag.level))
        out.print(flags)


def periods(ctx: typer.Context) -> None:
    """List the quarters that have assignments due or evaluations, newest first."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_periods())
        if session.json_output:
            session.print_json(messages_json(found))
            return
        if not found:
            session.out.print("No quarter has assignments or evaluations yet.")
            return
        table = Table(title="Quarters")
        for column in ("Quarter", "From", "To", "State", "Assignments due", "Units evaluated"):
            table.add_column(column, justify="right" if column.startswith(("Assignments", "Units")) else "left")
        for period in found:
            table.add_row(
                period.period_id,
                period.start_date,
                period.end_date,
                _enum_word(periods_pb2.PeriodState.Name(period.state)),
                f"{period.assignments_due:,}",
                f"{period.units_evaluated:,}",
            )
        session.out.print(table)


def register(app: typer.Typer) -> None:
    """Add the read commands to the top-level app."""
    for command in (evaluate, show, recommendations, rankings, units, ruleset, periods):
        app.command()(command)


def _blocks_hint(client: Client) -> str:
    """The ranking blocks that exist, to suggest when an unknown one was asked for."""
    return ", ".join(sorted({unit.block for unit in client.list_units() if unit.block})) or "none yet"


def _enum_word(name: str) -> str:
    """`UNIT_KIND_DEPARTMENT` → `department`: the words people type, not the proto constant."""
    for prefix in ("UNIT_KIND_", "RECOMMENDATION_KIND_", "RECOMMENDATION_STATUS_", "PERIOD_STATE_"):
        if name.startswith(prefix):
            return name.removeprefix(prefix).lower()
    return name.lower()
