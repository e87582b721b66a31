"""Report servicer: decode, build the report, encode."""

from __future__ import annotations

import datetime as dt

import grpc

from civicscore import officials, provisional
from civicscore.api.errors import handle_errors
from civicscore.auth.caller import current_caller
from civicscore.auth.policy import Permission
from civicscore.errors import InvalidInput, Violation
from civicscore.report import ReportFormat, build_report
from civicscore.runtime import Runtime
from civicscore_api.v1 import reports_pb2, reports_pb2_grpc

FORMATS = {
    reports_pb2.REPORT_FORMAT_UNSPECIFIED: ReportFormat.HTML,
    reports_pb2.REPORT_FORMAT_HTML: ReportFormat.HTML,
    reports_pb2.REPORT_FORMAT_CSV: ReportFormat.CSV,
    reports_pb2.REPORT_FORMAT_PDF: ReportFormat.PDF,
}
HANOI = dt.timezone(dt.timedelta(hours=7))


def generated_at_text(request: reports_pb2.GetQuarterlyReportRequest) -> str:
    """The caller's moment in Hanoi time, `2026-10-05 09:30 (UTC+7)`; empty when not given."""
    if not request.HasField("generate_time"):
        return ""
    moment = request.generate_time.ToDatetime(tzinfo=dt.UTC).astimezone(HANOI)
    return moment.strftime("%Y-%m-%d %H:%M (UTC+7)")


class ReportServicer(reports_pb2_grpc.ReportServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handle_errors
    def GetQuarterlyReport(self, request: reports_pb2.GetQuarterlyReportRequest, context: grpc.ServicerContext
                           ) -> reports_pb2.GetQuarterlyReportResponse:
        if not request.period:
            raise InvalidInput([Violation("period", "period is required, e.g. periods/2026-Q3", "REQUIRED")])
        fmt = FORMATS.get(request.format)
        if fmt is None:
            raise InvalidInput([Violation("format", f"format {request.format} is not known; use HTML, CSV or PDF",
                                          "INVALID_FORMAT")])
        caller = current_caller()
        personal = caller is None or Permission.PERSONAL in caller.permissions
        now = self.rt.clock()

        def audit(shown_officials: list[str]) -> None:
            officials.audit_read(self.rt.store, method="GetQuarterlyReport", target=request.period,
                                 officials=shown_officials, now=now, format=fmt.value)

        store = self.rt.store
        as_of = None
        if request.as_of:
            quarter = provisional.report_quarter(request.period)
            as_of = provisional.parse_as_of(request.as_of, quarter, now)
            store = provisional.ProvisionalStore(  # type: ignore[assignment]  # reads as a Store
                store, str(quarter), provisional.evaluate_to_date(store, self.rt.rulesets, quarter, as_of, now=now))
        report = build_report(store, request.period, fmt=fmt, lang=request.language_code,
                              generated_at=generated_at_text(request), personal=personal,
                              readable=officials.readable_units() if personal else None, on_personal=audit,
                              as_of=as_of)
        return reports_pb2.GetQuarterlyReportResponse(content=report.content, content_type=report.content_type,
                                                      file_name=report.file_name)
