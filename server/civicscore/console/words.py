"""Every word of the console, in Vietnamese (the default) and English, and how it writes numbers and times.

Numbers follow the language (Vietnamese: 1.234,56; English: 1,234.56). Every moment is shown in Hanoi
time (UTC+7 all year), Vietnamese style `05/10/2026 09:30` or English `2026-10-05 09:30`.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from civicscore.report.labels import Labels

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
HANOI = dt.timezone(dt.timedelta(hours=7), "ICT")

_WORDS: dict[str, tuple[str, str]] = {
    "app_name": ("Hệ thống đánh giá CCHC và CĐS", "Reform and digital transformation scoring"),
    "committee_short": ("Ban Chỉ đạo CCHC và CĐS thành phố Hà Nội",
                        "Hanoi Steering Committee for Administrative Reform and Digital Transformation"),
    "skip_to_content": ("Chuyển đến nội dung chính", "Skip to main content"),
    "nav_quarter": ("Kết quả quý", "Quarter"),
    "nav_queue": ("Đề xuất cần xem xét", "Review queue"),
    "nav_units": ("Đơn vị", "Units"),
    "nav_extensions": ("Gia hạn", "Extensions"),
    "nav_obstacles": ("Vướng mắc", "Obstacles"),
    "obstacles_title": ("Khó khăn, vướng mắc của đơn vị", "Obstacles units reported"),
    "obstacles_intro": ("Đơn vị báo cáo điều gì cản trở nhiệm vụ và kiến nghị gì; Văn phòng giao đơn vị hoặc cán "
                        "bộ xử lý và ghi kết quả giải quyết. Vướng mắc chưa giải quyết quá 30 ngày được kiến nghị "
                        "xử lý trong kỳ đánh giá.",
                        "Units report what blocks an assignment and what they ask for; the committee office "
                        "assigns who resolves it and records the resolution. One unresolved for more than 30 days "
                        "is escalated in the evaluation."),
    "obstacle_unresolved": ("Chưa giải quyết", "Unresolved"),
    "obstacle_open": ("Mới báo cáo", "Reported"),
    "obstacle_assigned": ("Đã giao xử lý", "Assigned"),
    "obstacle_resolved": ("Đã giải quyết", "Resolved"),
    "obstacle_assigned_done": ("Đã giao xử lý.", "Assigned."),
    "obstacle_resolved_done": ("Đã ghi kết quả giải quyết.", "Resolution recorded."),
    "obstacle_resolver_needed": ("Chọn một đơn vị hoặc ghi tên một cán bộ xử lý (một trong hai).",
                                 "Choose a unit or name an official to resolve it (one of the two)."),
    "obstacle_resolution_needed": ("Ghi kết quả giải quyết.", "Write the resolution."),
    "obstacles_empty": ("Không có vướng mắc nào.", "There are no obstacles."),
    "obstacle": ("Vướng mắc", "Obstacle"),
    "obstacle_request": ("Kiến nghị", "Asks for"),
    "requested_of": ("Đề nghị với", "Asked of"),
    "days_open": ("Số ngày", "Days open"),
    "resolver": ("Đơn vị, cán bộ xử lý", "Resolver"),
    "resolver_unit": ("Giao đơn vị", "Assign to a unit"),
    "resolver_official": ("hoặc cán bộ", "or an official"),
    "assign": ("Giao xử lý", "Assign"),
    "resolution": ("Kết quả giải quyết", "Resolution"),
    "resolve": ("Ghi kết quả", "Record the resolution"),
    "none_chosen": ("(chọn đơn vị)", "(choose a unit)"),
    "extensions_title": ("Đề nghị gia hạn nhiệm vụ", "Extension requests"),
    "extensions_intro": ("Đơn vị đề nghị lùi hạn nhiệm vụ trước hạn; Ban Chỉ đạo chấp thuận hoặc không, có nêu lý "
                         "do. Hạn được chấp thuận dùng để đánh giá các quý kết thúc sau quyết định.",
                         "Units ask for more time before an assignment is due; the committee approves or refuses, "
                         "with a reason. An approved date counts in the quarters that end after the decision."),
    "extension_pending": ("Chờ quyết định", "Pending"),
    "extension_approved": ("Đã chấp thuận", "Approved"),
    "extension_refused": ("Không chấp thuận", "Refused"),
    "extension_superseded": ("Đã được thay thế", "Superseded"),
    "extension_decided": ("Đã ghi nhận: {decision}.", "Recorded: {decision}."),
    "extension_reason_required": ("Chọn chấp thuận hoặc không và ghi lý do.", "Choose approve or refuse and give "
                                  "a reason."),
    "extensions_empty": ("Không có đề nghị gia hạn nào.", "There are no extension requests."),
    "assignment": ("Nhiệm vụ", "Assignment"),
    "original_due": ("Hạn ban đầu", "Original due date"),
    "due_at_request": ("Hạn khi đề nghị", "Due date when asked"),
    "requested_due": ("Hạn đề nghị", "Date asked for"),
    "requested": ("Đề nghị", "Asked"),
    "refuse": ("Không chấp thuận", "Refuse"),
    "nav_rules": ("Bộ quy tắc", "Rules"),
    "nav_admin": ("Quản trị", "Administration"),
    "main_navigation": ("Điều hướng chính", "Main navigation"),
    "switch_language": ("English", "Tiếng Việt"),
    "switch_language_label": ("Switch to English", "Chuyển sang tiếng Việt"),
    "signed_in_as": ("Đang đăng nhập: {name}", "Signed in as {name}"),
    "roles": ("Vai trò", "Roles"),
    "sign_in": ("Đăng nhập", "Sign in"),
    "sign_in_title": ("Đăng nhập hệ thống", "Sign in"),
    "sign_in_intro": ("Đăng nhập bằng tên đăng nhập và mật khẩu do quản trị viên cấp.",
                      "Sign in with the identity and password an administrator gave you."),
    "identity_id": ("Tên đăng nhập", "Identity"),
    "password": ("Mật khẩu", "Password"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "change_password": ("Đổi mật khẩu", "Change password"),
    "password_intro": ("Mật khẩu mới cần ít nhất 12 ký tự. Các phiên đăng nhập khác của bạn sẽ kết thúc.",
                       "The new password needs at least 12 characters. Your other sessions will end."),
    "current_password": ("Mật khẩu hiện tại", "Current password"),
    "new_password": ("Mật khẩu mới", "New password"),
    "again_password": ("Nhập lại mật khẩu mới", "New password again"),
    "password_fill": ("Nhập mật khẩu hiện tại và mật khẩu mới.", "Enter your current and your new password."),
    "password_mismatch": ("Hai lần nhập mật khẩu mới không khớp.", "The two new passwords differ."),
    "password_wrong": ("Mật khẩu hiện tại không đúng.", "The current password is wrong."),
    "password_changed": ("Đã đổi mật khẩu. Các phiên đăng nhập khác của bạn đã kết thúc.",
                         "Your password was changed. Your other sessions have ended."),
    "signed_out": ("Bạn đã đăng xuất.", "You have signed out."),
    "session_ended": ("Phiên làm việc đã kết thúc. Vui lòng đăng nhập lại.",
                      "Your session has ended. Please sign in again."),
    "sign_in_failed": ("Tên đăng nhập hoặc mật khẩu không đúng.", "The identity or password is wrong."),
    "sign_in_locked": ("Tài khoản tạm khóa do nhập sai mật khẩu nhiều lần. Thử lại sau {wait}.",
                       "Too many wrong passwords: the account is locked. Try again in {wait}."),
    "fill_both": ("Nhập cả tên đăng nhập và mật khẩu.", "Enter both the identity and the password."),
    "outcome_completed": ("hoàn thành", "completed"),
    "outcome_in_progress": ("đang thực hiện", "in progress"),
    "outcome_cancelled": ("hủy", "cancelled"),
    "completed_on": ("ngày {date}", "on {date}"),
    "role_reader": ("Xem", "Reader"),
    "role_committee": ("Ban Chỉ đạo", "Committee"),
    "role_policy": ("Quản lý quy tắc", "Policy staff"),
    "role_admin": ("Quản trị viên", "Administrator"),
    "role_reporter": ("Báo cáo số liệu", "Reporter"),
    "period": ("Kỳ đánh giá", "Period"),
    "quarter_title": ("Kết quả đánh giá quý {period}", "Evaluation results, {period}"),
    "rollup_title": ("Kết quả đánh giá {period}", "Evaluation results, {period}"),
    "quarter_choose": ("Chọn kỳ", "Choose a period"),
    "show": ("Xem", "Show"),
    "no_periods": ("Chưa có kỳ đánh giá nào.", "There are no periods yet."),
    "not_evaluated": ("Kỳ {period} chưa được đánh giá.", "{period} has not been evaluated."),
    "queue_title": ("Đề xuất quý {period}", "Recommendations, {period}"),
    "queue_intro": ("Đề xuất do bộ quy tắc nêu ra để Ban Chỉ đạo xem xét. Danh sách tự cập nhật khi có thay đổi.",
                    "Candidates raised by the rules for the committee to review. The list updates itself."),
    "filter": ("Lọc", "Filter"),
    "kind": ("Loại đề xuất", "Kind"),
    "status": ("Trạng thái", "Status"),
    "block": ("Khối", "Block"),
    "all": ("Tất cả", "All"),
    "apply_filter": ("Lọc danh sách", "Apply"),
    "unit": ("Đơn vị", "Unit"),
    "flag": ("Đề xuất", "Proposal"),
    "reasons": ("Lý do", "Reasons"),
    "last_decision": ("Quyết định gần nhất", "Last decision"),
    "no_decision": ("Chưa có", "None yet"),
    "open": ("Xem chi tiết", "Open"),
    "queue_count": ("{count} đề xuất", "{count} recommendations"),
    "queue_empty": ("Không có đề xuất nào khớp điều kiện lọc.", "No recommendations match."),
    "live_on": ("Đang tự cập nhật", "Live"),
    "live_off": ("Mất kết nối cập nhật; đang thử lại", "Live updates lost; retrying"),
    "live_updated": ("Đã cập nhật lúc {when}", "Updated at {when}"),
    "recommendation_title": ("{flag}: {unit}", "{flag}: {unit}"),
    "evidence": ("Căn cứ", "Evidence"),
    "figures": ("Số liệu của đơn vị", "The unit's figures"),
    "score": ("Điểm", "Score"),
    "grade": ("Xếp loại", "Grade"),
    "revision": ("Lần đánh giá", "Revision"),
    "ruleset": ("Bộ quy tắc", "Ruleset"),
    "tasks_due": ("Nhiệm vụ đến hạn", "Assignments due"),
    "tasks_completed": ("Hoàn thành", "Completed"),
    "tasks_on_time": ("Đúng hạn", "On time"),
    "tasks_late": ("Trễ hạn", "Late"),
    "tasks_open_overdue": ("Quá hạn chưa xong", "Open overdue"),
    "penalty": ("Điểm trừ", "Penalty"),
    "indicators": ("Chỉ số", "Indicators"),
    "indicator": ("Chỉ số", "Indicator"),
    "value": ("Giá trị", "Value"),
    "target": ("Chỉ tiêu", "Target"),
    "weight": ("Trọng số", "Weight"),
    "contribution": ("Điểm đóng góp", "Contribution"),
    "fired_rules": ("Quy tắc đã áp dụng", "Rules that fired"),
    "rule": ("Quy tắc", "Rule"),
    "values": ("Giá trị so sánh", "Values compared"),
    "source": ("Vị trí trong tệp quy tắc", "Place in the rule files"),
    "margins": ("Điều gì sẽ thay đổi kết quả", "What would change the result"),
    "no_margins": ("Không có ngưỡng nào gần.", "No threshold is near."),
    "contest": ("Giải trình của đơn vị", "The unit's reply"),
    "no_contest": ("Đơn vị chưa gửi giải trình.", "The unit has not replied."),
    "contested_by": ("Gửi bởi {who} lúc {when}", "Sent by {who} at {when}"),
    "corrections": ("Số liệu đơn vị bổ sung, sửa đổi", "Corrections the unit sent"),
    "before": ("Trước", "Before"),
    "after": ("Sau", "After"),
    "history": ("Lịch sử xem xét", "Decision history"),
    "no_history": ("Chưa có quyết định nào.", "No decisions yet."),
    "when": ("Thời điểm", "When"),
    "reviewer": ("Người quyết định", "Decided by"),
    "decision": ("Quyết định", "Decision"),
    "reason": ("Lý do", "Reason"),
    "decide": ("Quyết định của Ban Chỉ đạo", "The committee's decision"),
    "decide_intro": ("Chọn quyết định và ghi rõ lý do. Quyết định được ghi nhật ký kèm tên người quyết định.",
                     "Choose a decision and give the reason. Decisions are audited with your name."),
    "approve": ("Chấp thuận", "Approve"),
    "reject": ("Không chấp thuận", "Reject"),
    "defer": ("Tạm hoãn", "Defer"),
    "reason_required": ("Ghi lý do cho quyết định.", "Give a reason for the decision."),
    "choose_decision": ("Chọn một quyết định.", "Choose a decision."),
    "save_decision": ("Ghi nhận quyết định", "Record the decision"),
    "decision_saved": ("Đã ghi nhận quyết định: {decision}.", "Decision recorded: {decision}."),
    "superseded_note": ("Đề xuất này đã được thay thế bằng một đề xuất mới hơn.",
                        "This recommendation was superseded by a newer one."),
    "open_successor": ("Xem đề xuất mới", "Open the newer one"),
    "reader_note": ("Chỉ thành viên Ban Chỉ đạo mới ghi được quyết định.",
                    "Only committee members can record decisions."),
    "unit_title": ("{unit} qua các quý", "{unit} across quarters"),
    "units_title": ("Đơn vị", "Units"),
    "no_evaluations": ("Đơn vị chưa có kết quả đánh giá.", "The unit has no evaluations."),
    "downloads": ("Tải báo cáo quý", "Download the quarterly report"),
    "download_html": ("Trang web (HTML)", "Web page (HTML)"),
    "download_pdf": ("Bản in (PDF)", "Print (PDF)"),
    "download_csv": ("Bảng tính (CSV)", "Spreadsheet (CSV)"),
    "on_demand": ("Báo cáo đột xuất", "Report on demand"),
    "on_demand_help": ("Đánh giá tạm tính của quý đến một ngày đã chọn (không lưu, ghi rõ là tạm tính).",
                       "A provisional evaluation of the quarter up to a chosen day (not stored, marked "
                       "provisional)."),
    "on_demand_day": ("Đến ngày", "Up to"),
    "on_demand_format": ("Định dạng", "Format"),
    "on_demand_submit": ("Lập báo cáo", "Make the report"),
    "rankings": ("Xếp hạng theo khối", "Rankings by block"),
    "summary": ("Số liệu tổng hợp", "Summary"),
    "rules_title": ("Bộ quy tắc đang áp dụng", "Ruleset in force"),
    "rules_version": ("Phiên bản", "Version"),
    "digest": ("Mã băm", "Digest"),
    "activated": ("Áp dụng lúc", "In force since"),
    "activated_by": ("Người áp dụng", "Activated by"),
    "activation_history": ("Lịch sử áp dụng", "Activation history"),
    "action": ("Thao tác", "Action"),
    "rolled_back": ("đã hoàn tác", "rolled back"),
    "files": ("Tệp quy tắc", "Rule files"),
    "what_if": ("Thử bộ quy tắc mới", "What if: try a candidate ruleset"),
    "what_if_intro": ("Chọn một thư mục quy tắc đề xuất đã có trên máy chủ và một quý để xem kết quả "
                      "sẽ thay đổi ra sao.",
                      "Choose a candidate rules folder already on the server and a quarter to see what would change."),
    "candidate": ("Thư mục đề xuất", "Candidate folder"),
    "no_candidates": ("Chưa có thư mục đề xuất nào trong {root}.", "There is no candidate folder in {root}."),
    "simulate": ("Chạy thử", "Simulate"),
    "changed_units": ("{count} đơn vị thay đổi trên {total}", "{count} of {total} units change"),
    "no_changes": ("Không đơn vị nào thay đổi.", "No unit changes."),
    "current": ("Hiện tại", "Now"),
    "candidate_result": ("Theo bộ đề xuất", "With the candidate"),
    "admin_title": ("Quản trị", "Administration"),
    "identities": ("Tài khoản", "Identities"),
    "display_name": ("Tên hiển thị", "Name"),
    "revoked": ("Đã thu hồi", "Revoked"),
    "active": ("Đang hoạt động", "Active"),
    "audit": ("Nhật ký kiểm toán", "Audit log"),
    "verify_audit": ("Kiểm tra tính toàn vẹn", "Verify integrity"),
    "audit_ok": ("Nhật ký toàn vẹn: {count} sự kiện, không bị sửa đổi.",
                 "The audit log is intact: {count} events, none altered."),
    "audit_broken": ("Nhật ký có dấu hiệu bị sửa đổi tại sự kiện {sequence}: {problem}",
                     "The audit log was altered at event {sequence}: {problem}"),
    "recent_events": ("Sự kiện gần đây", "Recent events"),
    "actor": ("Người thực hiện", "Actor"),
    "target_object": ("Đối tượng", "Target"),
    "outcome": ("Kết quả", "Outcome"),
    "error_title": ("Không thực hiện được", "That did not work"),
    "error_forbidden": ("Bạn không có quyền thực hiện thao tác này.", "You are not allowed to do this."),
    "error_not_found": ("Không tìm thấy.", "Not found."),
    "error_invalid": ("Yêu cầu chưa hợp lệ.", "The request is not valid."),
    "error_conflict": ("Không thực hiện được vì dữ liệu đã thay đổi.", "The data changed in the meantime."),
    "error_busy": ("Hệ thống đang bận; vui lòng thử lại sau ít phút.", "The system is busy; try again shortly."),
    "error_unavailable": ("Không kết nối được máy chủ đánh giá; vui lòng thử lại.",
                          "The evaluation server cannot be reached; try again."),
    "error_csrf": ("Biểu mẫu đã hết hạn hoặc không hợp lệ. Tải lại trang và thử lại.",
                   "The form expired or is not valid. Reload the page and try again."),
    "server_said": ("Máy chủ cho biết", "The server said"),
    "back": ("Quay lại", "Go back"),
    "home": ("Trang chủ", "Home"),
    "hanoi_time": ("giờ Hà Nội", "Hanoi time"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "of_quarters": ("Kết quả qua các quý", "Results by quarter"),
    "code": ("Mã", "Code"),
    "rank": ("Hạng", "Rank"),
    "flags": ("Cờ đề xuất", "Flags"),
    "timeliness": ("Tỷ lệ đúng hạn", "On-time rate"),
    "kind_and_level": ("{kind}, mức {level}", "{kind}, level {level}"),
    # officials (cá nhân): personal data
    "nav_individuals": ("Cá nhân", "Individuals"),
    "individuals_title": ("Đề xuất về cá nhân quý {period}", "Recommendations about individuals, {period}"),
    "individuals_intro": ("Đề xuất do bộ quy tắc nêu ra về cán bộ, công chức (biểu dương, nhắc nhở, trách nhiệm "
                          "người đứng đầu) để Ban Chỉ đạo xem xét.",
                          "Candidates the rules raised about officials (praise, reminders, head accountability) "
                          "for the committee to review."),
    "individuals_link": ("Đề xuất về cá nhân trong quý", "Recommendations about individuals this quarter"),
    "individuals_count": ("{count} đề xuất về cá nhân", "{count} recommendations about individuals"),
    "individuals_empty": ("Không có đề xuất nào về cá nhân khớp điều kiện lọc.",
                          "No recommendations about individuals match."),
    "personal_note": ("Trang này có dữ liệu cá nhân. Mỗi lần xem đều được ghi vào nhật ký kiểm toán kèm tên "
                      "người xem.",
                      "This page shows personal data. Every view is recorded in the audit log with the viewer's "
                      "name."),
    "official": ("Cán bộ, công chức", "Official"),
    "official_page": ("Hồ sơ cá nhân", "Profile"),
    "the_official": ("Người được đề xuất", "The person"),
    "full_name": ("Họ và tên", "Full name"),
    "position_at_end": ("Chức vụ cuối quý", "Position at the quarter's end"),
    "position_head": ("Người đứng đầu", "Head"),
    "position_deputy": ("Cấp phó", "Deputy"),
    "position_officer": ("Công chức", "Officer"),
    "led_due": ("Nhiệm vụ chủ trì đến hạn", "Led assignments due"),
    "heads_units": ("Đứng đầu", "Heads"),
    "under_review_note": ("Người này hoặc đơn vị của họ đang bị thanh tra, xem xét kỷ luật trong quý.",
                          "This person or one of their units is under inspection or disciplinary review "
                          "this quarter."),
    "under_review_periods": ("Đang bị thanh tra, xem xét kỷ luật các quý: {periods}",
                             "Under inspection or disciplinary review in: {periods}"),
    "under_review_short": ("đang bị xem xét", "under review"),
    "unit_reasons": ("Lý do của đơn vị ({unit})", "The unit's reasons ({unit})"),
    "and_unit_reasons": ("kèm {count} lý do của đơn vị (xem chi tiết)", "with {count} of the unit's reasons (open it)"),
    "unit_recommendations": ("Đề xuất về đơn vị", "The unit's recommendations"),
    "no_fired": ("Không có quy tắc nào áp dụng.", "No rule fired."),
    "official_id": ("Mã cán bộ", "Official id"),
    "official_inactive": ("Không còn được đánh giá", "No longer evaluated"),
    "positions_held": ("Chức vụ đã và đang đảm nhiệm", "Positions held"),
    "from_date": ("Từ ngày", "From"),
    "to_date": ("Đến ngày", "Until"),
    "to_now": ("nay", "now"),
    "no_flags": ("Không có", "None"),
    "official_not_evaluated": ("Người này chưa có kết quả đánh giá.", "This person has no evaluations yet."),
}

_ROLES = {1: "role_reporter", 2: "role_reader", 3: "role_policy", 4: "role_committee", 5: "role_admin"}
_DECISIONS = {"approve": "approve", "reject": "reject", "defer": "defer"}


class Words(Labels):
    """The console's words in one language, with the quarterly report's labels (grades, statuses, blocks)."""

    def __init__(self, lang: str) -> None:
        super().__init__(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)

    def __call__(self, key: str, **values: object) -> str:
        pair = _WORDS.get(key)
        if pair is None:
            return super().__call__(key, **values)
        text = pair[1] if self.lang == "en" else pair[0]
        return text.format(**values) if values else text

    def role(self, role: int) -> str:
        return self(_ROLES[role]) if role in _ROLES else str(role)

    def decision(self, decision: str) -> str:
        return self(_DECISIONS[decision]) if decision in _DECISIONS else decision

    def number(self, value: float, decimals: int = 2) -> str:
        """1.234,56 in Vietnamese, 1,234.56 in English."""
        return self.decimal_text(f"{value:,.{decimals}f}")

    def integer(self, value: int) -> str:
        return self.number(value, 0)

    def percent(self, fraction: float, decimals: int = 1) -> str:
        return f"{self.number(fraction * 100, decimals)}%"

    def decimal_text(self, text: str) -> str:
        """A number the server formatted (`87.50`) written with this language's marks."""
        return text if self.lang == "en" else text.translate(str.maketrans(",.", ".,"))

    def moment(self, when: timestamp_pb2.Timestamp | dt.datetime | None, *, seconds: bool = False) -> str:
        """A moment in Hanoi time; empty for an unset timestamp."""
        if when is None:
            return ""
        if isinstance(when, timestamp_pb2.Timestamp):
            if not when.seconds and not when.nanos:
                return ""
            when = when.ToDatetime(tzinfo=dt.UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        local = when.astimezone(HANOI)
        clock = "%H:%M:%S" if seconds else "%H:%M"
        return local.strftime(f"%d/%m/%Y {clock}" if self.lang == "vi" else f"%Y-%m-%d {clock}")

    def iso(self, when: timestamp_pb2.Timestamp | None) -> str:
        """The same moment, machine-readable, for a <time datetime=...> attribute."""
        if when is None or (not when.seconds and not when.nanos):
            return ""
        return when.ToDatetime(tzinfo=dt.UTC).astimezone(HANOI).isoformat(timespec="seconds")

    def date(self, iso_date: str) -> str:
        """A calendar date (`2026-09-10`) as people write it: 10/09/2026 in Vietnamese."""
        try:
            day = dt.date.fromisoformat(iso_date)
        except ValueError:
            return iso_date
        return day.strftime("%d/%m/%Y") if self.lang == "vi" else day.isoformat()

    def wait(self, seconds: float) -> str:
        """A wait such as a lockout's, in whole minutes (at least one) or seconds."""
        if seconds >= 60:
            minutes = int(-(-seconds // 60))
            return f"{minutes} phút" if self.lang == "vi" else f"{minutes} minute{'s' if minutes != 1 else ''}"
        whole = max(1, int(seconds))
        return f"{whole} giây" if self.lang == "vi" else f"{whole} seconds"
