"""How one evaluation is shown: the numbers a committee member asks about, then the why."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import evaluations_pb2
from civicscore_client._names import unit_code


def print_evaluation(out: Console, evaluation: evaluations_pb2.Evaluation, *, unit_name_en: str = "") -> None:
    """Print score and grade, task counts, indicator breakdown, fired rules with reasons, and flags."""
    code = unit_code(evaluation.unit)
    title = f"[bold]{escape(evaluation.unit_display_name_vi or code)}[/] ({code})"
    if unit_name_en:
        title += f" · {escape(unit_name_en)}"
    out.print(title)
    ruleset = f"{escape(evaluation.ruleset_version)} ({evaluation.ruleset_digest[:12]})"
    out.print(
        f"Quarter {evaluation.period} · revision {evaluation.revision} · ruleset {ruleset}"
        f" · block {escape(evaluation.block)}"
        + (f" · evaluated by {escape(evaluation.evaluated_by)}" if evaluation.evaluated_by else "")
    )
    score = evaluation.score_display if evaluation.has_score else "no score (no assignment due)"
    out.print(f"Score: [bold]{escape(score)}[/]")
    grade_en = escape(evaluation.grade_label_en)
    out.print(f"Grade: [bold]{escape(evaluation.grade_label_vi)}[/] / {grade_en} ({evaluation.grade})")
    if not evaluation.assessable:
        out.print("Not assessable: too few assignments were due to grade the unit.")
    if evaluation.penalty:
        out.print(f"Penalty for open overdue assignments: -{evaluation.penalty:.2f} points")
    flags = ", ".join(evaluation.flags) if evaluation.flags else "none"
    out.print(f"Flags: [bold]{escape(flags)}[/]")
    out.print(_counts_table(evaluation.counts))
    if evaluation.indicators:
        out.print(_indicators_table(evaluation.indicators))
    if evaluation.fired_rules:
        out.print(_rules_table(evaluation.fired_rules))


def _counts_table(counts: evaluations_pb2.TaskCounts) -> Table:
    table = Table(title="Tasks")
    columns = ("Due", "Completed", "On time", "Late", "Reworked", "Open overdue")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(value)
            for value in (
                counts.due,
                counts.completed,
                counts.on_time,
                counts.late,
                counts.reworked,
                counts.open_overdue,
            )
        )
    )
    return table


def _indicators_table(indicators: Iterable[evaluations_pb2.IndicatorScore]) -> Table:
    table = Table(title="Indicators")
    for column in (
        "Indicator",
        "Name (vi)",
        "Name (en)",
        "Value",
        "Target",
        "Attainment",
        "Weight",
        "Points",
    ):
        table.add_column(column, justify="left" if column.startswith(("Indicator", "Name")) else "right")
    for item in indicators:
        counted = item.counted
        table.add_row(
            item.indicator,
            Text(item.display_name_vi),
            Text(item.display_name_en),
            f"{item.value:.1%}" if counted else "-",
            f"{item.target:.1%}" if item.target else "-",
            f"{item.attainment:.1%}" if counted else "-",
            f"{item.weight:g}",
            f"{item.points:.2f}" if counted else "not counted",
            style=None if counted else "dim",
        )
    return table


def _rules_table(rules: Iterable[evaluations_pb2.FiredRule]) -> Table:
    table = Table(title="Rules that fired", show_lines=True)
    for column in ("Rule", "Source", "Fact", "Flag", "Reason (vi / en)"):
        table.add_column(column, overflow="fold")
    for rule in rules:
        reason = Text(rule.reason_vi)
        if rule.reason_en:
            reason.append(f"\n{rule.reason_en}", style="dim")
        table.add_row(rule.rule_id, rule.source, Text(rule.fact), rule.flag or "-", reason)
    return table
