"""`civicscore explain`: why a unit got its score, grade and flags, and what would change them."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import evaluations_pb2, extensions_pb2
from civicscore_client._names import unit_code
from civicscore_client.cli_locale import Lang, decimal_text, number, percent
from civicscore_client.cli_session import latest_evaluated, message_dict, session_of
from civicscore_client.cli_show import period_heading


class LangChoice(StrEnum):
    """Languages `--lang` accepts."""

    vi = "vi"
    en = "en"
    both = "both"


def explain(
    ctx: typer.Context,
    unit: Annotated[str, typer.Argument(help="Unit code, e.g. SNV.", show_default=False)],
    period: Annotated[
        str | None,
        typer.Option("--period", "-p", help="Quarter (2026-Q3), half-year (2026-H1) or year (2026); default: the "
                                            "latest evaluated quarter."),
    ] = None,
    revision: Annotated[int, typer.Option("--revision", min=0, help="Revision to explain; 0 is the latest.")] = 0,
    lang: Annotated[
        LangChoice, typer.Option("--lang", help="Language of names, reasons and margins: vi, en or both.")
    ] = LangChoice.both,
) -> None:
    """Explain one evaluation: each indicator's share of the score, the rules that fired (file:line and
    reason), and the smallest changes that would move the grade or a flag."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        quarter = period or latest_evaluated(client)
        if quarter is None:
            session.fail("no quarter has been evaluated yet; run `civicscore evaluate PERIOD` first")
        reply = client.explain_evaluation(quarter, unit, revision=revision)
        if session.json_output:
            session.print_json(message_dict(reply))
            return
        print_explanation(session.out, reply, lang)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command()(explain)


def print_explanation(
    out: Console, reply: evaluations_pb2.ExplainEvaluationResponse, lang: LangChoice = LangChoice.both
) -> None:
    """Header, contributions, fired rules and margins of an explanation."""
    evaluation = reply.evaluation
    code = unit_code(evaluation.unit)
    out.print(f"[bold]{escape(evaluation.unit_display_name_vi or code)}[/] ({escape(code)})")
    ruleset = f"{escape(evaluation.ruleset_version)} ({evaluation.ruleset_digest[:12]})"
    out.print(f"{period_heading(evaluation)} · revision {evaluation.revision} · ruleset {ruleset}")
    marks = _marks(lang)
    score = decimal_text(evaluation.score_display, marks) if evaluation.has_score else "no score (no assignment due)"
    grade = _pick(lang, evaluation.grade_label_vi, evaluation.grade_label_en, " / ")
    out.print(f"Score: [bold]{escape(score)}[/] · Grade: [bold]{escape(grade)}[/] ({escape(evaluation.grade)})")
    if reply.next_grade:
        to_go = reply.next_grade_min_score - evaluation.score
        out.print(f"Next grade up: {escape(reply.next_grade)} from {number(reply.next_grade_min_score, marks)} "
                  f"({number(to_go, marks)} points to go)")
    labels = [_pick(lang, label.label_vi, label.label_en, " / ") or label.flag for label in evaluation.flag_labels]
    flags = ", ".join(labels or evaluation.flags) or "none"
    out.print(f"Flags: [bold]{escape(flags)}[/]")
    if reply.inputs_changed:
        warning = _pick(
            lang,
            "Dữ liệu của đơn vị đã thay đổi sau lần đánh giá này; các biên dưới đây tính trên dữ liệu hiện tại.",
            "The unit's data has changed since this evaluation; the margins below use the current data.",
            "\n",
        )
        out.print(Text(warning, style="yellow"))
    if reply.contributions:
        out.print(_contributions_table(reply.contributions, reply.penalty, evaluation, lang))
    elif reply.penalty:
        out.print(f"Penalty for open overdue assignments: -{number(reply.penalty, marks)} points")
    if evaluation.fired_rules:
        out.print(_rules_table(evaluation.fired_rules, lang))
    if reply.extended_assignments:
        out.print(_extended_table(reply.extended_assignments, lang))
    out.print(_margins_text(reply.margins, lang))


def _marks(lang: LangChoice) -> Lang:
    """Numbers are written the English way only in English; Vietnamese and both use Vietnamese marks."""
    return Lang.en if lang is LangChoice.en else Lang.vi


def _pick(lang: LangChoice, vi: str, en: str, joiner: str) -> str:
    if lang is LangChoice.vi or not en:
        return vi
    if lang is LangChoice.en or not vi:
        return en
    return f"{vi}{joiner}{en}"


def _two_lines(lang: LangChoice, vi: str, en: str) -> Text:
    """Vietnamese, then English dimmed on the next line (or one of them, as `--lang` says)."""
    if lang is LangChoice.en:
        return Text(en or vi)
    text = Text(vi or en)
    if lang is LangChoice.both and vi and en:
        text.append(f"\n{en}", style="dim")
    return text


def _contributions_table(
    items: Iterable[evaluations_pb2.Contribution], penalty: float, evaluation: evaluations_pb2.Evaluation,
    lang: LangChoice,
) -> Table:
    table = Table(title="Contributions to the score", show_footer=True)
    table.add_column("Indicator", footer="Penalty" if penalty else "")
    marks = _marks(lang)
    table.add_column("Name", footer=f"Score {decimal_text(evaluation.score_display, marks)}"
                     if evaluation.has_score else "")
    table.add_column("Points", justify="right", footer=f"-{number(penalty, marks)}" if penalty else "")
    table.add_column("Max", justify="right")
    table.add_column("Share", justify="right")
    for item in items:
        table.add_row(
            item.indicator,
            _two_lines(lang, item.display_name_vi, item.display_name_en),
            number(item.points, marks),
            number(item.max_points, marks),
            percent(item.share, marks),
        )
    return table


def _rules_table(rules: Iterable[evaluations_pb2.FiredRule], lang: LangChoice) -> Table:
    table = Table(title="Rules that fired", show_lines=True)
    for column in ("Rule", "Source", "Fact", "Flag", "Reason"):
        table.add_column(column, overflow="fold")
    for rule in rules:
        table.add_row(rule.rule_id, rule.source, Text(rule.fact), rule.flag or "-",
                      _two_lines(lang, rule.reason_vi, rule.reason_en))
    return table


def _extended_table(items: Iterable[extensions_pb2.ExtendedAssignment], lang: LangChoice) -> Table:
    """The assignments whose due date an approved extension moved: the original and the effective date."""
    title = _pick(lang, "Nhiệm vụ được gia hạn (hạn dùng để đánh giá quý)",
                  "Extended assignments (the due dates the quarter used)", " — ")
    table = Table(title=title)
    table.add_column(_pick(lang, "Nhiệm vụ", "Assignment", " / "), no_wrap=True)
    table.add_column(_pick(lang, "Hạn ban đầu", "Original due date", " / "), no_wrap=True)
    table.add_column(_pick(lang, "Hạn áp dụng", "Effective due date", " / "), no_wrap=True)
    table.add_column(_pick(lang, "Gia hạn", "Extension", " / "), overflow="fold")
    for item in items:
        table.add_row(item.assignment.removeprefix("assignments/"), item.original_due_on, item.effective_due_on,
                      item.extension)
    return table


def _margins_text(margins: Iterable[evaluations_pb2.Margin], lang: LangChoice) -> Text:
    found = list(margins)
    title = _pick(lang, "Điều gì sẽ thay đổi kết quả", "What would change it", " — ")
    text = Text(title, style="bold")
    if not found:
        none = _pick(lang, "Không có thay đổi nào trong tầm với làm đổi xếp loại hay cờ.",
                     "No change within reach flips the grade or a flag.", "\n  ")
        text.append(f"\n  {none}")
        return text
    for margin in found:
        text.append(f"\n• {margin.summary_en if lang is LangChoice.en else margin.summary_vi}")
        if lang is LangChoice.both:
            text.append(f"\n  {margin.summary_en}", style="dim")
    return text
