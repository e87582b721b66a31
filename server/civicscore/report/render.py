"""The quarterly report (also of a half-year or a year) as HTML (Jinja2, autoescaped, inline CSS and SVG) and as
CSV (UTF-8 with BOM)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from civicscore.domain.periods import Rollup, period_label, period_title
from civicscore.domain.scoring import display_score
from civicscore.report.charts import colour, distribution_chart, trend_chart
from civicscore.report.data import QuarterlyData, UnitRow
from civicscore.report.labels import Labels, csv_columns

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "quarterly.html.j2"
BOM = "\ufeff"
HANOI = dt.timezone(dt.timedelta(hours=7), "ICT")


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # imported when a report is made: the rest of the server does not need it

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _flag_labels(data: QuarterlyData) -> dict[str, tuple[str, str]]:
    return {r.flag: (r.label_vi, r.label_en) for r in data.recommendations}


def _stamp(when: dt.datetime) -> str:
    """A moment in Hanoi time (Asia/Ho_Chi_Minh, UTC+7 all year), as every time a reader sees."""
    moment = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return moment.astimezone(HANOI).strftime("%Y-%m-%d %H:%M")


def _day(day: dt.date, lang: str) -> str:
    """A day as people read it: 15/08/2026 in Vietnamese, 2026-08-15 in English."""
    return day.strftime("%d/%m/%Y") if lang == "vi" else day.isoformat()


def render_html(data: QuarterlyData, *, lang: str, generated_at: str = "") -> str:
    """The report as one self-contained HTML page; `generated_at` (optional) is printed as given."""
    t = Labels(lang, data.period_kind)
    flag_labels = _flag_labels(data)
    period_name = _period_name(data, lang)
    previous_name = _period_name(data, lang, previous=True)

    def flag_text(flag: str) -> str:
        vi, en = flag_labels.get(flag, (flag, flag))
        return t.pick(vi, en)

    def unit_name(row: UnitRow) -> str:
        return t.pick(row.name_vi, row.name_en)

    grade_labels = {g.grade: t.pick(g.label_vi, g.label_en) for g in data.grades}
    charts = {
        "distribution": distribution_chart(data.grades, data.grade_counts, t,
                                           t("chart_distribution", period=period_name)),
        "trend": trend_chart(data.grades, data.grade_counts, data.previous_grade_counts, t,
                             t("chart_trend", period=period_name, previous=previous_name)),
    }
    return _environment().get_template(TEMPLATE).render(
        data=data, t=t, lang=lang, charts=charts, generated_at=generated_at, flag_text=flag_text,
        period_name=period_name, previous_name=previous_name,
        unit_name=unit_name, grade_labels=grade_labels, colour=colour, data_as_of=_stamp(data.data_as_of),
        provisional_day=_day(data.provisional_as_of, lang) if data.provisional_as_of else "",
        stamp=_stamp)


def _period_name(data: QuarterlyData, lang: str, *, previous: bool = False) -> str:
    """`2026-Q3` for a quarter (the labels say "quý"); a half-year's or year's name in the language."""
    period = data.previous_period if previous else data.period
    if data.period_kind == "quarter":
        return period
    rollup = Rollup.parse(period)
    return period_label(rollup, lang) if lang == "vi" else period_title(rollup, lang)


def render_csv(data: QuarterlyData, *, lang: str) -> bytes:
    """One row per evaluated unit, headers in the chosen language; UTF-8 with a BOM so Excel reads Vietnamese.
    A half-year or year adds each quarter's score and grade."""
    t = Labels(lang, data.period_kind)
    flag_labels = _flag_labels(data)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = csv_columns(data.period_kind, tuple(q.period for q in data.quarters))
    if data.provisional_as_of is not None:  # a report on demand: every row says it is provisional
        columns += (("provisional_as_of", "Tạm tính đến ngày", "Provisional, to"),)
    writer.writerow([en if lang == "en" else vi for _, vi, en in columns])
    grade_labels = {g.grade: t.pick(g.label_vi, g.label_en) for g in data.grades}
    for row in data.units:
        values = {
            "code": row.code, "name": t.pick(row.name_vi, row.name_en), "block": t.block(row.block),
            "rank": str(row.rank) if row.rank else "", "score": row.score_display, "grade": row.grade,
            "grade_label": t.pick(row.grade_vi, row.grade_en),
            "flags": "; ".join(t.pick(*flag_labels.get(f, (f, f))) for f in row.flags),
            "timeliness": f"{row.timeliness:.4f}", "due": str(row.due), "completed": str(row.completed),
            "on_time": str(row.on_time), "late": str(row.late), "open_overdue": str(row.open_overdue),
            "previous_score": "" if row.previous_score is None else f"{display_score(row.previous_score):.2f}",
            "previous_grade": grade_labels.get(row.previous_grade, row.previous_grade),
            "revision": str(row.revision), "ruleset_version": row.ruleset_version,
            "extensions_approved": str(data.extensions_of(row.code)),
            "provisional_as_of": data.provisional_as_of.isoformat() if data.provisional_as_of else "",
        }
        for cell in data.quarter_cells.get(row.code, ()):
            values[f"score:{cell.period}"] = "" if cell.score is None else f"{display_score(cell.score):.2f}"
            values[f"grade:{cell.period}"] = t.pick(cell.grade_vi, cell.grade_en) if cell.evaluated else ""
        writer.writerow([values.get(key, "") for key, _, _ in columns])
    return (BOM + out.getvalue()).encode("utf-8")
