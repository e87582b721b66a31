"""Inline SVG charts drawn by hand: no script, no external file, the same bytes for the same data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

from civicscore.report.data import GradeInfo
from civicscore.report.labels import Labels

GRADE_COLOURS = {"excellent": "#1b7f3b", "good": "#4f9d2d", "completed": "#c9a227", "not_completed": "#c0392b",
                 "not_assessable": "#8c8c8c"}
OTHER_COLOUR = "#5b6b8c"
FADED = "0.35"  # previous quarter: the grade's colour, faded
WIDTH = 680
LABEL_WIDTH = 250
BAR_AREA = WIDTH - LABEL_WIDTH - 60
FONT = "font-family=\"Noto Sans, DejaVu Sans, Arial, sans-serif\""


def colour(grade: str) -> str:
    return GRADE_COLOURS.get(grade, OTHER_COLOUR)


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 13, weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" font-weight="{weight}" '
            f'{FONT} fill="#222">{escape(text)}</text>')


def _bar(x: float, y: float, width: float, height: float, fill: str, title: str, *, faded: bool = False) -> str:
    opacity = f' fill-opacity="{FADED}"' if faded else ""
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0.0):.1f}" height="{height:.1f}" fill="{fill}"'
            f"{opacity}><title>{escape(title)}</title></rect>")


def _svg(height: float, title: str, body: Sequence[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}"><title>{escape(title)}</title>{"".join(body)}</svg>')


def distribution_chart(grades: Sequence[GradeInfo], counts: Mapping[str, int], labels: Labels,
                       title: str) -> Markup:
    """One horizontal bar per grade, with the number of units."""
    row, bar = 34, 22
    top = 10
    most = max([*counts.values(), 1])
    body: list[str] = []
    for i, grade in enumerate(grades):
        y = top + i * row
        count = counts.get(grade.grade, 0)
        width = BAR_AREA * count / most
        name = labels.pick(grade.label_vi, grade.label_en)
        body.append(_text(LABEL_WIDTH - 8, y + bar * 0.72, name, anchor="end"))
        body.append(_bar(LABEL_WIDTH, y, width, bar, colour(grade.grade), f"{name}: {count}"))
        body.append(_text(LABEL_WIDTH + width + 6, y + bar * 0.72, str(count), weight="bold"))
    return _svg(top * 2 + row * len(grades), title, body)


def trend_chart(grades: Sequence[GradeInfo], current: Mapping[str, int], previous: Mapping[str, int],
                labels: Labels, title: str) -> Markup:
    """Two bars per grade: this quarter in the grade's colour, the previous one below it in the same colour, faded."""
    bar, gap, group = 16, 3, 48
    top = 34
    most = max([*current.values(), *previous.values(), 1])
    this_label, previous_label = labels("this_quarter"), labels("previous_quarter")
    body = [
        f'<rect x="{LABEL_WIDTH}" y="6" width="14" height="14" fill="{OTHER_COLOUR}"/>',
        _text(LABEL_WIDTH + 20, 18, this_label, size=12),
        f'<rect x="{LABEL_WIDTH + 160}" y="6" width="14" height="14" fill="{OTHER_COLOUR}" fill-opacity="{FADED}"/>',
        _text(LABEL_WIDTH + 180, 18, previous_label, size=12),
    ]
    for i, grade in enumerate(grades):
        y = top + i * group
        name = labels.pick(grade.label_vi, grade.label_en)
        now, before = current.get(grade.grade, 0), previous.get(grade.grade, 0)
        body.append(_text(LABEL_WIDTH - 8, y + bar + gap / 2 + 4, name, anchor="end"))
        for j, (count, when) in enumerate(((now, this_label), (before, previous_label))):
            by = y + j * (bar + gap)
            width = BAR_AREA * count / most
            body.append(_bar(LABEL_WIDTH, by, width, bar, colour(grade.grade), f"{name}, {when}: {count}",
                             faded=j == 1))
            body.append(_text(LABEL_WIDTH + width + 6, by + bar * 0.8, str(count), size=12))
    return _svg(top + group * len(grades), title, body)
