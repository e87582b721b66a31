"""Every word of the quarterly report, in Vietnamese and English."""

from __future__ import annotations

LANGUAGES = ("vi", "en")

_LABELS: dict[str, tuple[str, str]] = {
    "title": ("Báo cáo đánh giá quý {period}", "Quarterly evaluation report {period}"),
    "committee": ("Ban Chỉ đạo cải cách hành chính và chuyển đổi số thành phố Hà Nội",
                  "Hanoi Steering Committee for Administrative Reform and Digital Transformation"),
    "period_range": ("Từ {start} đến {end}", "From {start} to {end}"),
    "data_as_of": ("Số liệu đánh giá cập nhật đến {when} (giờ Hà Nội, UTC+7)",
                   "Evaluation data as of {when} (Hanoi time, UTC+7)"),
    "generated_at": ("Lập báo cáo lúc {when}", "Report generated at {when}"),
    "summary": ("Số liệu tổng hợp", "Summary"),
    "units_evaluated": ("Đơn vị được đánh giá", "Units evaluated"),
    "units_assessable": ("Đơn vị đủ điều kiện xếp loại", "Units graded"),
    "units_not_assessable": ("Đơn vị chưa đủ điều kiện xếp loại", "Units not graded"),
    "assignments_due": ("Nhiệm vụ đến hạn trong quý", "Assignments due in the quarter"),
    "average_score": ("Điểm bình quân (đơn vị được xếp loại)", "Average score (graded units)"),
    "commendations": ("Đề xuất khen thưởng, biểu dương", "Commendation candidates"),
    "criticisms": ("Đề xuất nhắc nhở, phê bình", "Criticism candidates"),
    "previous_evaluated": ("Đơn vị được đánh giá quý trước ({period})", "Units evaluated last quarter ({period})"),
    "grade_distribution": ("Phân bố xếp loại", "Grade distribution"),
    "trend": ("So sánh với quý trước", "Compared with the previous quarter"),
    "this_quarter": ("Quý này", "This quarter"),
    "previous_quarter": ("Quý trước", "Previous quarter"),
    "grade_counts_table": ("Số đơn vị theo xếp loại", "Units per grade"),
    "grade": ("Xếp loại", "Grade"),
    "change": ("Thay đổi", "Change"),
    "ranking": ("Xếp hạng", "Ranking"),
    "ranking_of": ("Xếp hạng khối {block}", "Ranking: {block}"),
    "not_assessable_of": ("Chưa đủ điều kiện xếp loại, khối {block}", "Not graded: {block}"),
    "rank": ("Hạng", "Rank"),
    "code": ("Mã", "Code"),
    "unit": ("Đơn vị", "Unit"),
    "block": ("Khối", "Block"),
    "score": ("Điểm", "Score"),
    "previous_score": ("Điểm quý trước", "Previous score"),
    "score_change": ("Chênh lệch", "Change"),
    "timeliness": ("Tỷ lệ đúng hạn", "On-time rate"),
    "due": ("Đến hạn", "Due"),
    "completed": ("Hoàn thành", "Completed"),
    "on_time": ("Đúng hạn", "On time"),
    "late": ("Trễ hạn", "Late"),
    "open_overdue": ("Quá hạn chưa xong", "Open overdue"),
    "flags": ("Cờ đề xuất", "Flags"),
    "revision": ("Lần đánh giá", "Revision"),
    "ruleset_version": ("Phiên bản bộ quy tắc", "Ruleset version"),
    "recommendations": ("Đề xuất khen thưởng và phê bình", "Commendation and criticism candidates"),
    "recommendations_note": (
        "Đề xuất do bộ quy tắc tự động nêu ra để Ban Chỉ đạo xem xét; không phải quyết định.",
        "Candidates raised by the rules for the committee to review; they are not decisions."),
    "proposal": ("Đề xuất", "Proposal"),
    "level": ("Mức", "Level"),
    "status": ("Trạng thái xem xét", "Review status"),
    "reasons": ("Lý do", "Reasons"),
    "none": ("Không có", "None"),
    "rulesets": ("Bộ quy tắc đã dùng", "Ruleset used"),
    "digest": ("Mã băm SHA-256", "SHA-256 digest"),
    "version": ("Phiên bản", "Version"),
    "units_count": ("đơn vị", "units"),
    "chart_distribution": ("Biểu đồ phân bố xếp loại quý {period}", "Grade distribution chart, {period}"),
    "chart_trend": ("Biểu đồ so sánh xếp loại quý {period} với quý {previous}",
                    "Grades in {period} compared with {previous}"),
    "no_previous": ("Quý {period} chưa có kết quả đánh giá.", "{period} has no evaluations."),
    "language": ("Ngôn ngữ: Tiếng Việt", "Language: English"),
    "not_graded": ("Chưa xếp loại", "Not graded"),
}

BLOCKS: dict[str, tuple[str, str]] = {
    "departments": ("Sở, ban, ngành", "Departments"),
    "communes": ("Xã, phường", "Communes and wards"),
}

STATUSES: dict[str, tuple[str, str]] = {
    "proposed": ("Chờ xem xét", "Awaiting review"),
    "approved": ("Đã chấp thuận", "Approved"),
    "rejected": ("Không chấp thuận", "Rejected"),
    "deferred": ("Tạm hoãn", "Deferred"),
    "superseded": ("Đã được thay thế", "Superseded"),
}

KINDS: dict[str, tuple[str, str]] = {
    "commendation": ("Khen thưởng", "Commendation"),
    "criticism": ("Phê bình", "Criticism"),
}

# CSV columns: (key, Vietnamese header, English header)
CSV_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("code", "Mã đơn vị", "Unit code"),
    ("name", "Tên đơn vị", "Unit name"),
    ("block", "Khối", "Block"),
    ("rank", "Hạng", "Rank"),
    ("score", "Điểm", "Score"),
    ("grade", "Mã xếp loại", "Grade id"),
    ("grade_label", "Xếp loại", "Grade"),
    ("flags", "Cờ đề xuất", "Flags"),
    ("timeliness", "Tỷ lệ đúng hạn", "On-time rate"),
    ("due", "Nhiệm vụ đến hạn", "Assignments due"),
    ("completed", "Hoàn thành", "Completed"),
    ("on_time", "Đúng hạn", "On time"),
    ("late", "Trễ hạn", "Late"),
    ("open_overdue", "Quá hạn chưa xong", "Open overdue"),
    ("previous_score", "Điểm quý trước", "Previous quarter's score"),
    ("previous_grade", "Xếp loại quý trước", "Previous quarter's grade"),
    ("revision", "Lần đánh giá", "Evaluation revision"),
    ("ruleset_version", "Phiên bản bộ quy tắc", "Ruleset version"),
)


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


class Labels:
    """Labels in one language: `labels("title", period="2026-Q3")`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, **values: object) -> str:
        text = _pick(_LABELS[key], self.lang)
        return text.format(**values) if values else text

    def block(self, block: str) -> str:
        return _pick(BLOCKS[block], self.lang) if block in BLOCKS else block

    def status(self, status: str) -> str:
        return _pick(STATUSES[status], self.lang) if status in STATUSES else status

    def kind(self, kind: str) -> str:
        return _pick(KINDS[kind], self.lang) if kind in KINDS else kind

    def pick(self, vi: str, en: str) -> str:
        """The text in this language, falling back to the Vietnamese when the English is empty."""
        return (en or vi) if self.lang == "en" else vi

    def number(self, value: float, decimals: int = 2) -> str:
        """A number with the language's decimal mark (Vietnamese: comma)."""
        text = f"{value:.{decimals}f}"
        return text.replace(".", ",") if self.lang == "vi" else text

    def percent(self, fraction: float) -> str:
        return f"{self.number(fraction * 100, 1)}%"
