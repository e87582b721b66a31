"""Read commands: evaluate, show, recommendations, rankings, units, ruleset, periods."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import evaluations_pb2, periods_pb2, units_pb2
from civicscore_client._client import Client
from civicscore_client._errors import NotFound
from civicscore_client._names import period_id, unit_code
from civicscore_client.cli_locale import (
    Lang,
    LangOption,
    block_label,
    decimal_text,
    flag_labels,
    hanoi_time,
    integer,
    percent,
    pick,
    recommendation_review_name,
    word,
)
from civicscore_client.cli_session import latest_evaluated, message_dict, messages_json, session_of
from civicscore_client.cli_show import print_evaluation

# Evaluating every unit of a quarter takes longer than a read.
EVALUATE_TIMEOUT = 300.0

PeriodArg = Annotated[str, typer.Argument(help="Period: a quarter 2026-Q3, a half-year 2026-H1 or a year 2026.",
                                          show_default=False)]


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
    escalation = "escalation"


def evaluate(ctx: typer.Context, period: PeriodArg, lang: LangOption = Lang.vi) -> None:
    """Evaluate every active unit for a quarter with the ruleset in force and store the results; a half-year
    (2026-H1) or a year (2026) is summed up from the stored evaluations of its quarters."""
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
            f"Evaluated {integer(reply.units_evaluated, lang)} units for {period_id(period)} with ruleset "
            f"{escape(reply.ruleset_version)} ({reply.ruleset_digest[:12]}):"
        )
        session.out.print(f"  new revisions     {integer(reply.new_revisions, lang)}")
        session.out.print(f"  unchanged         {integer(reply.unchanged, lang)}")
        session.out.print(f"  not assessable    {integer(reply.not_assessable, lang)}")
        session.out.print(f"  recommendations   {integer(reply.recommendations, lang)}")
        if reply.officials_evaluated:  # a quarter with officials (a half-year or a year evaluates none)
            session.out.print(f"  officials         {integer(reply.officials_evaluated, lang)} evaluated, "
                              f"{integer(reply.official_revisions, lang)} new revisions")


def show(
    ctx: typer.Context,
    unit: Annotated[str, typer.Argument(help="Unit code, e.g. SNV.", show_default=False)],
    period: Annotated[
        str | None,
        typer.Option("--period", "-p", help="Quarter (2026-Q3), half-year (2026-H1) or year (2026); default: the "
                                            "latest evaluated quarter."),
    ] = None,
    revision: Annotated[int, typer.Option("--revision", min=0, help="Revision to show; 0 is the latest.")] = 0,
    lang: LangOption = Lang.vi,
) -> None:
    """Show one unit's evaluation: score, grade, task counts, indicators, the rules that fired (one row per
    rule, with how many times and on which facts) and flags."""
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
        print_evaluation(session.out, evaluation, lang, unit_name_en=name_en)


def recommendations(
    ctx: typer.Context,
    period: PeriodArg,
    kind: Annotated[RecommendationKindChoice | None, typer.Option("--kind", help="Only this kind.")] = None,
    flag: Annotated[str | None, typer.Option("--flag", help="Only this flag, e.g. praise, criticism.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Only this unit, e.g. SNV.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="proposed, approved, rejected, deferred or superseded.")
    ] = None,
    lang: LangOption = Lang.vi,
) -> None:
    """List a quarter's recommendations (commendations and criticisms) for the committee to review.

    Each starts with the name `civicscore review` takes (e.g. 2026-Q3/STP~criticism), then the unit, the
    flag's label, level and status, the committee's last decision and the reasons."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(
            client.list_recommendations(period, kind=kind.value if kind else None, flag=flag, unit=unit, status=status)
        )
        if session.json_output:
            session.print_json(messages_json(found))
            return
        if not found:
            session.out.print(word("no_recommendations", lang, period=period_id(period)))
            return
        out = session.out
        out.print(Text(f"{word('recommendations', lang, period=period_id(period))} ({integer(len(found), lang)})",
                       style="bold"))
        for item in found:
            out.print(Text("\n" + recommendation_review_name(item), style="bold"))
            out.print(Padding(_recommendation_text(item, lang), (0, 0, 0, 2)))
        out.print(Text(word("review_hint", lang), style="dim"))


def _recommendation_text(item: evaluations_pb2.Recommendation, lang: Lang) -> Text:
    """A recommendation's unit, label, level, status, last decision and reasons, in lines that wrap at any
    width (printed under its review name)."""
    status = _enum_word(evaluations_pb2.RecommendationStatus.Name(item.status))
    text = Text(f"{item.unit_display_name_vi} ({unit_code(item.unit)}) · ")
    text.append(pick(lang, item.label_vi, item.label_en) or item.flag, style="bold")
    text.append(f" · {word('level', lang, level=item.level)} · {word('status', lang)}: {status}")
    if item.last_decision:
        when = hanoi_time(item.last_decision_time)
        text.append(f"\n{word('last_decision', lang)}: {item.last_decision} · {item.last_reviewer}"
                    f"{' · ' + when if when else ''}: {item.last_decision_reason}")
    for reason in item.reasons:
        text.append(f"\n• {pick(lang, reason.text_vi, reason.text_en)} ")
        text.append(f"[{reason.rule_id}, {reason.source}]", style="dim")
    return text


def rankings(
    ctx: typer.Context,
    period: PeriodArg,
    block: Annotated[str | None, typer.Option("--block", help="departments or communes; default: every block.")] = None,
    lang: LangOption = Lang.vi,
) -> None:
    """Rank the units of a block for a quarter, a half-year or a year by score (ties by timeliness, then code)."""
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
            session.out.print(_ranking_table(period_id(period), name, entries, lang))


def _ranking_table(period: str, block: str, entries: list[evaluations_pb2.RankingEntry], lang: Lang) -> Table:
    """A block's ranking that fits 80 columns: the unit's code under its name; names, grades and flag labels
    wrap between words, never inside one, and nothing is cut."""
    grades = [pick(lang, entry.grade_label_vi, entry.grade_label_en) or entry.grade for entry in entries]
    flags = [", ".join(flag_labels(entry.flag_labels, lang) or entry.flags) for entry in entries]
    table = Table(title=word("ranking", lang, period=period, block=block_label(block, lang)), title_justify="left")
    table.add_column(word("rank", lang), justify="right", no_wrap=True)
    table.add_column(word("unit", lang), overflow="fold", ratio=3, min_width=_longest_word(
        [entry.unit_display_name_vi for entry in entries], floor=10))
    table.add_column(word("score", lang), justify="right", no_wrap=True)
    table.add_column(word("grade", lang), overflow="fold", ratio=2, min_width=_longest_word(grades))
    table.add_column(word("timeliness", lang), justify="right", no_wrap=True)
    table.add_column(word("flags", lang), overflow="fold", ratio=2, min_width=_longest_word(flags))
    for entry, grade, flag_text in zip(entries, grades, flags, strict=True):
        unit = Text(entry.unit_display_name_vi)
        unit.append(f"\n{unit_code(entry.unit)}", style="dim")
        table.add_row(
            str(entry.rank) if entry.rank else "-",
            unit,
            decimal_text(entry.score_display, lang) or "-",
            Text(grade),
            percent(entry.timeliness, lang) if entry.rank else "-",
            Text(flag_text),
        )
    return table


def _longest_word(texts: list[str], *, floor: int = 6, ceiling: int = 16) -> int:
    """The width a column needs so that no word of its cells is split (within bounds)."""
    longest = max((len(part) for text in texts for part in text.split()), default=floor)
    return min(max(longest, floor), ceiling)


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
            out.print(f"  loaded          {hanoi_time(active.load_time)}")
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


def periods(ctx: typer.Context, lang: LangOption = Lang.vi) -> None:
    """List the quarters that have assignments due or evaluations, and the half-years and years of which a
    quarter has evaluations, newest first."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_periods())
        if session.json_output:
            session.print_json(messages_json(found))
            return
        if not found:
            session.out.print("No quarter has assignments or evaluations yet.")
            return
        table = Table(title="Periods")
        for column in ("Period", "From", "To", "State", "Assignments due", "Units evaluated"):
            table.add_column(column, justify="right" if column.startswith(("Assignments", "Units")) else "left")
        for period in found:
            table.add_row(
                period.period_id,
                period.start_date,
                period.end_date,
                _enum_word(periods_pb2.PeriodState.Name(period.state)),
                integer(period.assignments_due, lang),
                integer(period.units_evaluated, lang),
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
