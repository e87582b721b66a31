"""Report calls: the quarterly report as HTML, CSV or PDF bytes."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from civicscore_api.v1 import reports_pb2
from civicscore_client._connection import Connection
from civicscore_client._names import period_name

REPORT_FORMATS = {"html": reports_pb2.REPORT_FORMAT_HTML, "csv": reports_pb2.REPORT_FORMAT_CSV,
                  "pdf": reports_pb2.REPORT_FORMAT_PDF}
REPORT_LANGUAGES = ("vi", "en")


def report_format(name: str) -> reports_pb2.ReportFormat.ValueType:
    try:
        return REPORT_FORMATS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown report format {name!r}; formats: {', '.join(REPORT_FORMATS)}") from None


class ReportCalls(Connection):
    """ReportService."""

    def get_quarterly_report(self, period: str, *, format: str = "html", language: str = "vi",
                             generate_time: dt.datetime | None = None, as_of: dt.date | str | None = None,
                             timeout: float | None = None) -> reports_pb2.GetQuarterlyReportResponse:
        """The report of `period` (`2026-Q3`, a half-year `2026-H1` or a year `2026`): `.content` (bytes),
        `.content_type`, `.file_name`.

        `format` is html, csv or pdf; `language` vi or en. Give `generate_time` (an aware datetime) to print
        when the report was made; without it the same data gives the same HTML and CSV bytes. Give `as_of` (a day
        of the quarter, not after today) for a report on demand: the quarter to that day, evaluated for the report
        and not stored, marked provisional."""
        if language.lower() not in REPORT_LANGUAGES:
            raise ValueError(f"unknown report language {language!r}; languages: {', '.join(REPORT_LANGUAGES)}")
        request = reports_pb2.GetQuarterlyReportRequest(period=period_name(period), format=report_format(format),
                                                        language_code=language.lower(),
                                                        as_of=as_of.isoformat() if isinstance(as_of, dt.date)
                                                        else (as_of or ""))
        if generate_time is not None:
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(generate_time.astimezone(dt.UTC))
            request.generate_time.CopyFrom(stamp)
        return self._calls.unary(self._reports.GetQuarterlyReport, request, timeout=timeout)
