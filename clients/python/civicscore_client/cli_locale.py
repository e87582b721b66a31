"""What people read from the CLI: times in Hanoi time, numbers and labels in the chosen language.

`--lang vi` (the default, or CIVICSCORE_LANG) writes Vietnamese labels and numbers the Vietnamese way
(1.234,56); `--lang en` writes English labels and 1,234.56. Every moment is shown in Hanoi time
(Asia/Ho_Chi_Minh) with its offset, `2026-10-05 09:30:12 +07`. `--json` output never goes through
this module: it stays machine format (ISO UTC timestamps, plain numbers, ids).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

import typer
from google.protobuf import timestamp_pb2

from civicscore_api.v1 import evaluations_pb2
from civicscore_client._import_cells import HANOI  # Asia/Ho_Chi_Minh: UTC+7 all year


class Lang(StrEnum):
    """Languages `--lang` accepts on the commands people read."""

    vi = "vi"
    en = "en"


LangOption = Annotated[
    Lang,
    typer.Option("--lang", envvar="CIVICSCORE_LANG",
                 help="Language of labels and numbers: vi (Vietnamese, 1.234,56) or en (English, 1,234.56)."),
]

# Words of the tables and lines people read, by key: (Vietnamese, English).
_WORDS: dict[str, tuple[str, str]] = {
    "rank": ("Hạng", "Rank"),
    "code": ("Mã", "Code"),
    "unit": ("Đơn vị", "Unit"),
    "score": ("Điểm", "Score"),
    "grade": ("Xếp loại", "Grade"),
    "timeliness": ("Đúng hạn", "On time"),
    "flags": ("Cờ đề xuất", "Flags"),
    "ranking": ("Xếp hạng {period}: khối {block}", "Ranking {period}: {block}"),
    "recommendations": ("Đề xuất kỳ {period}", "Recommendations {period}"),
    "no_recommendations": ("Không có đề xuất nào của kỳ {period} khớp điều kiện lọc.",
                           "No recommendations for {period} match."),
    "review_hint": ("Quyết định: civicscore review approve|reject|defer TÊN --reason LÝ_DO (TÊN như dòng đầu "
                    "của mỗi đề xuất)",
                    "Decide with: civicscore review approve|reject|defer NAME --reason WHY (NAME as on the "
                    "first line of each recommendation)"),
    "level": ("mức {level}", "level {level}"),
    "status": ("trạng thái", "status"),
    "last_decision": ("quyết định gần nhất", "last decision"),
    "none": ("không có", "none"),
    "rule": ("Quy tắc", "Rule"),
    "times": ("Số lần", "Times"),
    "facts": ("Đối tượng", "Facts"),
    "flag": ("Cờ", "Flag"),
    "reason": ("Lý do", "Reason"),
    "rules_fired": ("Quy tắc đã áp dụng ({rules} quy tắc, {firings} lần)",
                    "Rules that fired ({rules} rules, {firings} times)"),
    "more_reasons": ("và {count} lần khác (xem từng lần: explain)", "and {count} more (each: explain)"),
    "caught_up_head": ("-- bắt đầu từ con trỏ {cursor} (thay đổi mới nhất); chờ thay đổi mới. "
                       "`--from 0` xem lại mọi thay đổi",
                       "-- starting at cursor {cursor} (the newest change); waiting for changes. "
                       "`--from 0` replays every change"),
    "caught_up": ("-- đã cập nhật đến con trỏ {cursor}; chờ thay đổi mới",
                  "-- caught up at cursor {cursor}; waiting for changes"),
    # extensions (gia hạn)
    "extension": ("Gia hạn", "Extension"),
    "assignment": ("Nhiệm vụ", "Assignment"),
    "original_due": ("Hạn ban đầu", "Original due date"),
    "due_at_request": ("Hạn khi đề nghị", "Due date when asked"),
    "requested_due": ("Hạn xin gia hạn", "Date asked for"),
    "effective_due": ("Hạn đang áp dụng", "Due date in force"),
    "requested_by": ("Đề nghị", "Asked by"),
    "decided_by": ("Quyết định", "Decided by"),
    "extension_reason": ("Lý do xin gia hạn", "Reason given"),
    "decision_reason": ("Ý kiến của Ban Chỉ đạo", "The committee's reason"),
    "superseded_by": ("Được thay thế bởi", "Superseded by"),
    "extensions": ("Đề nghị gia hạn", "Extension requests"),
    "no_extensions": ("Không có đề nghị gia hạn nào khớp điều kiện lọc.", "No extension requests match."),
    "extension_hint": ("Quyết định: civicscore extensions approve|refuse TÊN --reason LÝ_DO",
                       "Decide with: civicscore extensions approve|refuse NAME --reason WHY"),
    "extended_assignments": ("Nhiệm vụ được gia hạn (hạn dùng để đánh giá quý)",
                             "Extended assignments (the due dates the quarter used)"),
}

# Extension statuses, by the API's name without its prefix: (Vietnamese, English).
_EXTENSION_STATUSES: dict[str, tuple[str, str]] = {
    "pending": ("Chờ quyết định", "Pending"),
    "approved": ("Đã chấp thuận", "Approved"),
    "refused": ("Không chấp thuận", "Refused"),
    "superseded": ("Đã được thay thế", "Superseded"),
}


def extension_status(status: str, lang: Lang) -> str:
    """An extension status (`approved`) as people read it in `lang`."""
    vi, en = _EXTENSION_STATUSES.get(status, (status, status))
    return en if lang is Lang.en else vi


# Officials' positions, by the API's name without its prefix (`head` for OFFICIAL_POSITION_HEAD): (Vietnamese,
# English), as the server names them (civicscore.domain.officials.POSITION_LABELS).
_POSITIONS: dict[str, tuple[str, str]] = {
    "head": ("Người đứng đầu", "Head"),
    "deputy": ("Cấp phó", "Deputy"),
    "officer": ("Cán bộ, công chức", "Officer"),
}


def position_label(position: str, lang: Lang) -> str:
    """An official's position (`head`) as people read it in `lang` ("" for none, the id for an unknown one)."""
    vi, en = _POSITIONS.get(position, (position, position))
    return en if lang is Lang.en else vi


# Ranking blocks, by id: (Vietnamese, English), as the quarterly report names them.
_BLOCKS: dict[str, tuple[str, str]] = {
    "departments": ("Sở, ban, ngành", "Departments"),
    "communes": ("Xã, phường", "Communes and wards"),
}


def block_label(block: str, lang: Lang) -> str:
    """A ranking block's name in `lang` (its id for a block this CLI does not know)."""
    vi, en = _BLOCKS.get(block, (block, block))
    return en if lang is Lang.en else vi


def word(key: str, lang: Lang, **values: object) -> str:
    """A word or line of the CLI in `lang`, with `values` filled in."""
    vi, en = _WORDS[key]
    text = en if lang is Lang.en else vi
    return text.format(**values) if values else text


def pick(lang: Lang, vi: str, en: str) -> str:
    """The text in `lang`, falling back to the other language when it is empty."""
    return (en or vi) if lang is Lang.en else (vi or en)


def hanoi_time(moment: timestamp_pb2.Timestamp | dt.datetime, *, seconds: bool = True) -> str:
    """A moment in Hanoi time with its offset, `2026-10-05 09:30:12 +07`; "" for an unset timestamp."""
    if isinstance(moment, timestamp_pb2.Timestamp):
        if not moment.seconds and not moment.nanos:
            return ""
        moment = moment.ToDatetime(tzinfo=dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # protobuf and the SDK give naive datetimes in UTC
    return moment.astimezone(HANOI).strftime("%Y-%m-%d %H:%M:%S +07" if seconds else "%Y-%m-%d %H:%M +07")


def number(value: float, lang: Lang, decimals: int = 2) -> str:
    """A number with thousands grouped and `decimals` places: `1.234,56` in Vietnamese, `1,234.56` in English."""
    text = f"{value:,.{decimals}f}"
    return text if lang is Lang.en else _vietnamese_marks(text)


def integer(value: int, lang: Lang) -> str:
    """A count with thousands grouped: `1.234` in Vietnamese, `1,234` in English."""
    return number(value, lang, 0)


def percent(fraction: float, lang: Lang, decimals: int = 1) -> str:
    """A fraction as a percentage: `75,0%` in Vietnamese, `75.0%` in English."""
    return f"{number(fraction * 100, lang, decimals)}%"


def decimal_text(text: str, lang: Lang) -> str:
    """A number the server already formatted for display (e.g. `score_display`, `79.06`) in `lang`."""
    return text if lang is Lang.en else _vietnamese_marks(text)


def flag_labels(labels: Iterable[evaluations_pb2.FlagLabel], lang: Lang) -> list[str]:
    """Each flag's label in `lang` (its id when the server sent no label)."""
    return [pick(lang, label.label_vi, label.label_en) or label.flag for label in labels]


def recommendation_review_name(recommendation: evaluations_pb2.Recommendation) -> str:
    """The short name `civicscore review` accepts, `2026-Q3/STP~criticism`."""
    return recommendation.name.removeprefix("periods/").replace("/recommendations/", "/", 1)


_SWAP_MARKS = str.maketrans(",.", ".,")


def _vietnamese_marks(text: str) -> str:
    """`1,234.5` → `1.234,5`: Vietnamese groups thousands with dots and marks decimals with a comma."""
    return text.translate(_SWAP_MARKS)
