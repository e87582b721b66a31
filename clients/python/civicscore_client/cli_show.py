"""How one evaluation is shown: the numbers a committee member asks about, then the why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import evaluations_pb2
from civicscore_client._names import unit_code
from civicscore_client.cli_locale import (
    Lang,
    decimal_text,
    flag_labels,
    hanoi_time,
    integer,
    number,
    percent,
    pick,
    word,
)


def print_evaluation(out: Console, evaluation: evaluations_pb2.Evaluation, lang: Lang = Lang.vi, *,
                     unit_name_en: str = "") -> None:
    """Print score and grade, task counts, indicator breakdown, the rules that fired grouped by rule, and flags."""
    code = unit_code(evaluation.unit)
    title = f"[bold]{escape(evaluation.unit_display_name_vi or code)}[/] ({code})"
    if unit_name_en:
        title += f" · {escape(unit_name_en)}"
    out.print(title)
    ruleset = f"{escape(evaluation.ruleset_version)} ({evaluation.ruleset_digest[:12]})"
    out.print(
        f"{period_heading(evaluation)} · revision {evaluation.revision} · ruleset {ruleset}"
        f" · block {escape(evaluation.block)}"
        + (f" · evaluated by {escape(evaluation.evaluated_by)}" if evaluation.evaluated_by else "")
        + (f" at {hanoi_time(evaluation.create_time)}" if hanoi_time(evaluation.create_time) else "")
    )
    score = decimal_text(evaluation.score_display, lang) if evaluation.has_score else "no score (no assignment due)"
    out.print(f"{word('score', lang)}: [bold]{escape(score)}[/]")
    grade = pick(lang, evaluation.grade_label_vi, evaluation.grade_label_en)
    out.print(f"{word('grade', lang)}: [bold]{escape(grade)}[/] ({evaluation.grade})")
    if not evaluation.assessable and evaluation.HasField("rollup"):
        out.print("Not assessable: too few of its quarters were assessable.")
    elif not evaluation.assessable:
        out.print("Not assessable: too few assignments were due to grade the unit.")
    if evaluation.penalty:
        out.print(f"Penalty for open overdue assignments: -{number(evaluation.penalty, lang)} points")
    flags = ", ".join(flag_labels(evaluation.flag_labels, lang) or evaluation.flags) or word("none", lang)
    out.print(f"{word('flags', lang)}: [bold]{escape(flags)}[/]")
    out.print(_counts_table(evaluation.counts, lang))
    if evaluation.HasField("rollup"):
        out.print(quarters_table(evaluation.rollup, lang))
    if evaluation.indicators:
        out.print(_indicators_table(evaluation.indicators, lang))
    if evaluation.fired_rules:
        labels = {label.flag: pick(lang, label.label_vi, label.label_en) for label in evaluation.flag_labels}
        out.print(rules_table(evaluation.fired_rules, lang, labels))


def period_heading(evaluation: evaluations_pb2.Evaluation) -> str:
    """`Quarter 2026-Q3`, `Half-year 2026-H1` or `Year 2026`."""
    if not evaluation.HasField("rollup"):
        return f"Quarter {evaluation.period}"
    return f"{'Year' if evaluation.rollup.span == 'year' else 'Half-year'} {evaluation.period}"


def quarters_table(rollup: evaluations_pb2.PeriodRollup, lang: Lang) -> Table:
    """What a half-year or year was summed up from: each quarter's stored result and the ruleset it was
    evaluated with; a quarter not evaluated for the unit is marked so."""
    table = Table(title=(f"Quarters ({rollup.assessable_quarters} of {len(rollup.quarters)} assessable, at least "
                         f"{rollup.min_assessable_quarters} needed)"))
    for column in ("Quarter", "Revision", "Score", "Grade", "Flags", "Ruleset"):
        table.add_column(column, justify="right" if column in ("Revision", "Score") else "left", overflow="fold")
    used = {result.period: result for result in rollup.results}
    for quarter in rollup.quarters:
        result = used.get(quarter)
        if result is None:
            table.add_row(quarter, "-", "-", "not evaluated", "", "")
            continue
        score = decimal_text(result.score_display, lang) if result.has_score else "-"
        if result.has_score and not result.assessable:
            score += " (not counted)"
        table.add_row(quarter, str(result.revision), score,
                      Text(pick(lang, result.grade_label_vi, result.grade_label_en) or result.grade),
                      Text(", ".join(result.flags)), Text(f"{result.ruleset_version} ({result.ruleset_digest[:12]})"))
    return table


def _counts_table(counts: evaluations_pb2.TaskCounts, lang: Lang) -> Table:
    table = Table(title="Tasks")
    columns = ("Due", "Completed", "On time", "Late", "Reworked", "Open overdue")
    for column in columns:
        table.add_column(column, justify="right")
    values = (counts.due, counts.completed, counts.on_time, counts.late, counts.reworked, counts.open_overdue)
    table.add_row(*(integer(value, lang) for value in values))
    return table


def _indicators_table(indicators: Iterable[evaluations_pb2.IndicatorScore], lang: Lang) -> Table:
    table = Table(title="Indicators")
    for column in ("Indicator", "Name", "Value", "Target", "Attainment", "Weight", "Points"):
        table.add_column(column, justify="left" if column in ("Indicator", "Name") else "right",
                         overflow="fold")
    for item in indicators:
        counted = item.counted
        table.add_row(
            item.indicator,
            Text(pick(lang, item.display_name_vi, item.display_name_en)),
            percent(item.value, lang) if counted else "-",
            percent(item.target, lang) if item.target else "-",
            percent(item.attainment, lang) if counted else "-",
            number(item.weight, lang, 0) if item.weight == int(item.weight) else number(item.weight, lang),
            number(item.points, lang) if counted else "not counted",
            style=None if counted else "dim",
        )
    return table


@dataclass
class _RuleGroup:
    """The firings of one rule (same id, file:line and flag)."""

    rule_id: str
    source: str
    flag: str
    facts: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def group_fired_rules(rules: Iterable[evaluations_pb2.FiredRule], lang: Lang) -> list[_RuleGroup]:
    """One group per rule, in the order the rules first fired, each with its facts and reasons in that order."""
    groups: dict[tuple[str, str, str], _RuleGroup] = {}
    for rule in rules:
        key = (rule.rule_id, rule.source, rule.flag)
        group = groups.setdefault(key, _RuleGroup(rule.rule_id, rule.source, rule.flag))
        group.facts.append(rule.fact)
        group.reasons.append(pick(lang, rule.reason_vi, rule.reason_en))
    return list(groups.values())


def rules_table(rules: Iterable[evaluations_pb2.FiredRule], lang: Lang, flag_labels: dict[str, str]) -> Table:
    """The rules that fired, one row per rule: file:line, how many times, on which facts, the flag's label and
    the reason (each distinct reason once; the first few when a rule fired on many facts)."""
    groups = group_fired_rules(rules, lang)
    firings = sum(len(group.facts) for group in groups)
    table = Table(title=word("rules_fired", lang, rules=integer(len(groups), lang), firings=integer(firings, lang)),
                  show_lines=True)
    longest_id = max((len(group.rule_id) for group in groups), default=4)
    table.add_column(word("rule", lang), overflow="fold", min_width=min(longest_id, 16))
    table.add_column(word("times", lang), justify="right", no_wrap=True)
    table.add_column(word("facts", lang), overflow="fold")
    table.add_column(word("flag", lang), overflow="fold")
    table.add_column(word("reason", lang), overflow="fold")
    for group in groups:
        rule = Text(group.rule_id)
        rule.append(f"\n{group.source}", style="dim")
        flag = flag_labels.get(group.flag, group.flag) if group.flag else "-"
        table.add_row(rule, integer(len(group.facts), lang), Text(_facts_text(group.facts)), Text(flag),
                      _reasons_text(_distinct(group.reasons), lang))
    return table


_REASONS_SHOWN = 1


def _facts_text(facts: list[str]) -> str:
    """`assignment A-1, assignment A-2` → `assignment: A-1, A-2` when the facts are of one kind."""
    distinct = _distinct(facts)
    kinds = {fact.partition(" ")[0] for fact in distinct}
    if len(distinct) > 1 and len(kinds) == 1 and all(" " in fact for fact in distinct):
        return f"{kinds.pop()}: " + ", ".join(fact.partition(" ")[2] for fact in distinct)
    return ", ".join(distinct)


def _reasons_text(reasons: list[str], lang: Lang) -> Text:
    text = Text("\n".join(reasons[:_REASONS_SHOWN]))
    if len(reasons) > _REASONS_SHOWN:
        text.append("\n" + word("more_reasons", lang, count=integer(len(reasons) - _REASONS_SHOWN, lang)),
                    style="dim")
    return text


def _distinct(values: Iterable[str]) -> list[str]:
    """The values in their first order, each once."""
    return list(dict.fromkeys(values))
