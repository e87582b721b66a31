"""Every word of the quarterly report, in Vietnamese and English."""

from __future__ import annotations

from civicscore.domain.officials import POSITION_LABELS

LANGUAGES = ("vi", "en")

_LABELS: dict[str, tuple[str, str]] = {
    "title": ("Báo cáo đánh giá quý {period}", "Quarterly evaluation report {period}"),
    "committee": ("Ban Chỉ đạo cải cách hành chính và chuyển đổi số thành phố Hà Nội",
                  "Hanoi Steering Committee for Administrative Reform and Digital Transformation"),
    "period_range": ("Từ {start} đến {end}", "From {start} to {end}"),
    "data_as_of": ("Số liệu đánh giá cập nhật đến {when} (giờ Hà Nội, UTC+7)",
                   "Evaluation data as of {when} (Hanoi time, UTC+7)"),
    "generated_at": ("Lập báo cáo lúc {when}", "Report generated at {when}"),
    "on_demand_title": ("Báo cáo đột xuất quý {period} đến ngày {day}", "Report on demand: {period} to {day}"),
    "provisional": (
        "TẠM TÍNH — Báo cáo đột xuất: các đơn vị và cá nhân được đánh giá như thể quý kết thúc vào ngày {day} "
        "(nhiệm vụ đến hạn đến ngày đó, nhiệm vụ quá hạn và vướng mắc còn mở vào ngày đó), theo bộ quy tắc "
        "áp dụng cho quý. Kết quả này không được lưu và có thể thay đổi; kết quả chính thức là đánh giá của "
        "quý sau khi quý kết thúc.",
        "PROVISIONAL — Report on demand: units and officials are evaluated as if the quarter ended on {day} "
        "(assignments due up to that day, overdue assignments and obstacles open on it), with the ruleset in "
        "force for the quarter. These results are not stored and may change; the official results are the "
        "quarter's evaluation after it ends."),
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
    "extensions": ("Gia hạn nhiệm vụ được chấp thuận trong quý", "Extensions approved in the quarter"),
    "extensions_note": (
        "Hạn áp dụng cuối quý là hạn dùng để đánh giá quý này: hạn của lần gia hạn được chấp thuận sau cùng "
        "tính đến hết quý (giờ Hà Nội). Gia hạn được chấp thuận sau khi quý kết thúc không làm thay đổi "
        "kết quả của quý đó.",
        "The due date in force at the quarter's end is the one this quarter's evaluation used: the date of "
        "the latest extension approved by the quarter's end (Hanoi time). An extension approved after a "
        "quarter ended does not change that quarter's results."),
    "extensions_approved": ("Gia hạn được chấp thuận", "Extensions approved"),
    "assignment": ("Nhiệm vụ", "Assignment"),
    "original_due": ("Hạn ban đầu", "Original due date"),
    "approved_due": ("Hạn được gia hạn", "Extended to"),
    "effective_due": ("Hạn áp dụng cuối quý", "Due date in force at the quarter's end"),
    "approved_at": ("Thời điểm chấp thuận", "Approved at"),
    "extension_reason": ("Lý do xin gia hạn", "Reason given by the unit"),
    "decision_reason": ("Ý kiến của Ban Chỉ đạo", "The committee's reason"),
}

# A half-year's or year's report says "kỳ" (period) where a quarter's says "quý"; `{period}` is then the
# period's name (`6 tháng đầu năm 2026`, `năm 2026` / `First half of 2026`, `2026`).
_LONG_PERIOD_LABELS: dict[str, tuple[str, str]] = {
    "title": ("Báo cáo đánh giá {period}", "Evaluation report: {period}"),
    "assignments_due": ("Nhiệm vụ đến hạn trong kỳ", "Assignments due in the period"),
    "previous_evaluated": ("Đơn vị được đánh giá kỳ trước ({period})",
                           "Units evaluated in the previous period ({period})"),
    "trend": ("So sánh với kỳ trước", "Compared with the previous period"),
    "this_quarter": ("Kỳ này", "This period"),
    "previous_quarter": ("Kỳ trước", "Previous period"),
    "previous_score": ("Điểm kỳ trước", "Previous score"),
    "chart_distribution": ("Biểu đồ phân bố xếp loại {period}", "Grade distribution chart, {period}"),
    "chart_trend": ("Biểu đồ so sánh xếp loại {period} với {previous}", "Grades in {period} compared with {previous}"),
    "no_previous": ("{period} chưa có kết quả đánh giá.", "{period} has no evaluations."),
    "extensions": ("Gia hạn nhiệm vụ được chấp thuận trong kỳ", "Extensions approved in the period"),
    "extensions_note": (
        "Hạn áp dụng cuối kỳ là hạn của lần gia hạn được chấp thuận sau cùng tính đến hết kỳ (giờ Hà Nội); "
        "mỗi quý đã được đánh giá theo hạn áp dụng vào cuối quý đó.",
        "The due date in force at the period's end is that of the latest extension approved by then (Hanoi "
        "time); each quarter was evaluated with the due dates in force at its own end."),
    "effective_due": ("Hạn áp dụng cuối kỳ", "Due date in force at the period's end"),
}

# Words only a half-year's or year's report uses.
_LABELS.update({
    "quarters_title": ("Kết quả từng quý", "Results by quarter"),
    "quarters_note": (
        "Điểm của kỳ là bình quân điểm (chưa làm tròn) của các quý đủ dữ liệu đánh giá, mỗi quý theo kết quả đã "
        "đánh giá với bộ quy tắc áp dụng cho quý đó (không đánh giá lại). Kỳ đủ dữ liệu đánh giá khi ít nhất "
        "một nửa số quý đủ dữ liệu; xếp loại theo bộ quy tắc áp dụng cho quý cuối kỳ.",
        "A period's score is the mean of the unrounded scores of its assessable quarters, each as evaluated under "
        "the ruleset in force for that quarter (none is evaluated again). A period is assessable when at least "
        "half of its quarters are; it is graded by the ruleset in force for its last quarter."),
    "quarter_summary": ("Tổng hợp theo quý", "Quarters at a glance"),
    "quarter": ("Quý", "Quarter"),
    "period_score": ("Điểm kỳ", "Period score"),
    "period_grade": ("Xếp loại kỳ", "Period grade"),
    "not_evaluated": ("Chưa đánh giá", "Not evaluated"),
    "quarters_by_unit": ("Kết quả từng quý, khối {block}", "Quarters: {block}"),
})

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
    "escalation": ("Kiến nghị xử lý", "Escalation"),
}

# Obstacles (khó khăn, vướng mắc), and the escalations the rules raise for the committee.
_LABELS.update({
    "escalations": ("Kiến nghị Ban Chỉ đạo xử lý", "Escalations for the committee"),
    "obstacles": ("Khó khăn, vướng mắc", "Difficulties and obstacles"),
    "obstacles_note": (
        "Khó khăn, vướng mắc do đơn vị báo cáo: các vướng mắc chưa được giải quyết đến hết quý (lâu nhất trước; "
        "số ngày tính từ ngày báo cáo đến ngày cuối quý, giờ Hà Nội) và các vướng mắc được giải quyết trong quý. "
        "Vướng mắc không làm thay đổi điểm.",
        "Obstacles the units reported: those unresolved at the quarter's end (oldest first; days counted from "
        "the day reported to the quarter's last day, Hanoi time) and those resolved in the quarter. Obstacles "
        "change no score."),
    "obstacles_open": ("Chưa được giải quyết đến hết quý", "Unresolved at the quarter's end"),
    "obstacles_resolved": ("Được giải quyết trong quý", "Resolved in the quarter"),
    "obstacle_description": ("Khó khăn, vướng mắc", "What blocks it"),
    "obstacle_request": ("Đề xuất, kiến nghị", "What the unit asks for"),
    "obstacle_requested_of": ("Đề nghị đến", "Asked of"),
    "obstacle_reported_at": ("Ngày báo cáo", "Reported"),
    "obstacle_days": ("Số ngày", "Days open"),
    "obstacle_resolver": ("Đơn vị, người xử lý", "Resolver"),
    "obstacle_resolution": ("Kết quả giải quyết", "Resolution"),
    "obstacle_resolved_at": ("Ngày giải quyết", "Resolved"),
})
_LONG_PERIOD_LABELS.update({
    "obstacles_note": (
        "Khó khăn, vướng mắc do đơn vị báo cáo: các vướng mắc chưa được giải quyết đến hết kỳ (lâu nhất trước; "
        "số ngày tính đến ngày cuối kỳ, giờ Hà Nội) và các vướng mắc được giải quyết trong kỳ. Vướng mắc không "
        "làm thay đổi điểm.",
        "Obstacles the units reported: those unresolved at the period's end (oldest first; days counted to the "
        "period's last day, Hanoi time) and those resolved in the period. Obstacles change no score."),
    "obstacles_open": ("Chưa được giải quyết đến hết kỳ", "Unresolved at the period's end"),
    "obstacles_resolved": ("Được giải quyết trong kỳ", "Resolved in the period"),
})

# Individuals (cá nhân): recommendations about officials, personal data.
_LABELS.update({
    "individuals": ("Đề xuất đối với cá nhân", "Recommendations about individuals"),
    "individuals_note": (
        "Đề xuất khen, phê bình đối với cán bộ, công chức theo kết quả của quý: trách nhiệm người đứng đầu đơn vị "
        "bị phê bình hoặc yêu cầu giải trình, biểu dương cá nhân chủ trì nhiệm vụ hoàn thành đúng hạn, nhắc nhở "
        "cá nhân chủ trì nhiệm vụ quá hạn lâu. Đây là dữ liệu cá nhân: chỉ người có quyền xem (Ban Chỉ đạo, quản "
        "trị) thấy phần này, và mỗi lần xem đều được ghi vào nhật ký kiểm toán.",
        "Commendation and criticism proposed for officials from the quarter's results: the accountability of "
        "the head of a unit criticised or asked to explain, praise for officials whose led assignments were "
        "all on time, a reminder for officials whose led assignments are long overdue. This is personal data: "
        "only readers allowed to see it (the committee, administrators) see this section, and every view is "
        "recorded in the audit log."),
    "individuals_hidden": (
        "Phần đề xuất đối với cá nhân chứa dữ liệu cá nhân và không hiển thị với tài khoản này (cần quyền "
        "personal.read của Ban Chỉ đạo hoặc quản trị).",
        "The recommendations about individuals are personal data and are not shown to this account (they need "
        "the personal.read permission of the committee or an administrator)."),
    "official_name": ("Họ và tên", "Name"),
    "position": ("Chức vụ", "Position"),
    "reached_through": ("Đơn vị", "Unit"),
    "quarter": ("Quý", "Quarter"),
})
_LONG_PERIOD_LABELS.update({
    "individuals_note": (
        "Đề xuất khen, phê bình đối với cán bộ, công chức trong các quý của kỳ (theo kết quả từng quý). Đây là "
        "dữ liệu cá nhân: chỉ người có quyền xem (Ban Chỉ đạo, quản trị) thấy phần này, và mỗi lần xem đều được "
        "ghi vào nhật ký kiểm toán.",
        "Commendation and criticism proposed for officials in the period's quarters (from each quarter's "
        "results). This is personal data: only readers allowed to see it (the committee, administrators) see "
        "this section, and every view is recorded in the audit log."),
})

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
    ("extensions_approved", "Gia hạn được chấp thuận trong quý", "Extensions approved in the quarter"),
)


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def csv_columns(period_kind: str, quarters: tuple[str, ...] = ()) -> tuple[tuple[str, str, str], ...]:
    """The CSV columns of a report: a half-year's or year's name the previous period "kỳ trước" and add each
    quarter's score and grade (`score:2026-Q1`, `grade:2026-Q1`)."""
    if period_kind == "quarter":
        return CSV_COLUMNS
    renamed = {"previous_score": ("Điểm kỳ trước", "Previous period's score"),
               "previous_grade": ("Xếp loại kỳ trước", "Previous period's grade"),
               "extensions_approved": ("Gia hạn được chấp thuận trong kỳ", "Extensions approved in the period")}
    columns = tuple((key, *renamed.get(key, (vi, en))) for key, vi, en in CSV_COLUMNS)
    for quarter in quarters:
        columns += ((f"score:{quarter}", f"Điểm {quarter}", f"Score {quarter}"),
                    (f"grade:{quarter}", f"Xếp loại {quarter}", f"Grade {quarter}"))
    return columns


class Labels:
    """Labels in one language: `labels("title", period="2026-Q3")`; for a half-year or year (`period_kind`),
    the words of a period instead of a quarter's."""

    def __init__(self, lang: str, period_kind: str = "quarter") -> None:
        self.lang = lang
        self.period_kind = period_kind

    def __call__(self, key: str, **values: object) -> str:
        pair = _LONG_PERIOD_LABELS.get(key) if self.period_kind != "quarter" else None
        text = _pick(pair or _LABELS[key], self.lang)
        return text.format(**values) if values else text

    def block(self, block: str) -> str:
        return _pick(BLOCKS[block], self.lang) if block in BLOCKS else block

    def status(self, status: str) -> str:
        return _pick(STATUSES[status], self.lang) if status in STATUSES else status

    def kind(self, kind: str) -> str:
        return _pick(KINDS[kind], self.lang) if kind in KINDS else kind

    def position(self, position: str) -> str:
        """An official's position as a label ("" when none is held)."""
        known = {p.value: pair for p, pair in POSITION_LABELS.items()}
        return _pick(known[position], self.lang) if position in known else position

    def pick(self, vi: str, en: str) -> str:
        """The text in this language, falling back to the Vietnamese when the English is empty."""
        return (en or vi) if self.lang == "en" else vi

    def number(self, value: float, decimals: int = 2) -> str:
        """A number with the language's decimal mark (Vietnamese: comma)."""
        text = f"{value:.{decimals}f}"
        return text.replace(".", ",") if self.lang == "vi" else text

    def percent(self, fraction: float) -> str:
        return f"{self.number(fraction * 100, 1)}%"
