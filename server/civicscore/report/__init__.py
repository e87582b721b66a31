"""The quarterly report: summary figures, rankings per block, grade charts, the trend against the previous
quarter, recommendations with reasons and review status, and the ruleset used; as HTML, CSV or PDF."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass

from civicscore.errors import InvalidInput, Violation, shown
from civicscore.report.data import QuarterlyData, gather
from civicscore.report.labels import LANGUAGES
from civicscore.report.pdf import ChromiumMissing, PdfFailed, find_chromium, html_to_pdf
from civicscore.report.render import render_csv, render_html
from civicscore.store import Store

__all__ = ["ChromiumMissing", "PdfFailed", "QuarterlyData", "Report", "ReportFormat", "build_report",
           "find_chromium", "gather", "render_csv", "render_html"]


class ReportFormat(enum.StrEnum):
    HTML = "html"
    CSV = "csv"
    PDF = "pdf"


CONTENT_TYPES = {ReportFormat.HTML: "text/html; charset=utf-8", ReportFormat.CSV: "text/csv; charset=utf-8",
                 ReportFormat.PDF: "application/pdf"}


@dataclass(frozen=True)
class Report:
    content: bytes
    content_type: str
    file_name: str


def check_language(lang: str, field: str = "language_code") -> str:
    """`vi` (also the default when empty) or `en`."""
    lang = (lang or "vi").strip().lower()
    if lang not in LANGUAGES:
        raise InvalidInput([Violation(field, f"language {shown(lang)} is not available; use vi or en",
                                      "UNSUPPORTED_LANGUAGE")])
    return lang


def build_report(store: Store, period: str, *, fmt: ReportFormat, lang: str, generated_at: str = "",
                 personal: bool = False, readable: frozenset[str] | None = None,
                 on_personal: Callable[[list[str]], None] | None = None, as_of: dt.date | None = None) -> Report:
    """The report of a quarter in a format and a language. The same data gives the same HTML and CSV bytes;
    `generated_at` (text chosen by the caller, empty for none) is the only moment printed besides the data's.

    With `personal` (the reader has `personal.read`), the HTML and PDF list the recommendations about officials
    of the units in `readable` (None: all); `on_personal` is then told the officials shown (the read is audited).
    The CSV is one row per unit and carries no personal data. With `as_of`, a report on demand of the quarter
    to that day (`store` holds its results to date: `provisional.ProvisionalStore`), marked provisional."""
    lang = check_language(lang)
    personal = personal and fmt is not ReportFormat.CSV
    data = gather(store, period, personal=personal, readable=readable, as_of=as_of)
    if on_personal is not None and data.individuals:
        on_personal(sorted({row.official_id for row in data.individuals}))
    cut = f"-to-{as_of.isoformat()}" if as_of is not None else ""
    name = f"civicscore-report-{data.period}{cut}-{lang}.{fmt.value}"
    if fmt is ReportFormat.CSV:
        content = render_csv(data, lang=lang)
    else:
        html = render_html(data, lang=lang, generated_at=generated_at)
        content = html.encode("utf-8") if fmt is ReportFormat.HTML else html_to_pdf(html)
    return Report(content=content, content_type=CONTENT_TYPES[fmt], file_name=name)
