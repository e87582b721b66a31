"""The console's words and formats, without a browser: Vietnamese by default, Hanoi time, number marks."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from civicscore.console.session import csrf_matches, csrf_token, safe_next, same_origin
from civicscore.console.words import _WORDS, Words


def test_vietnamese_is_the_default_and_unknown_languages_fall_back_to_it() -> None:
    assert Words("fr").lang == "vi"
    assert Words("vi")("nav_queue") == "Đề xuất cần xem xét"
    assert Words("en")("nav_queue") == "Review queue"


def test_every_word_has_both_languages_and_the_same_placeholders() -> None:
    for key, (vi, en) in _WORDS.items():
        assert vi and en, key
        assert sorted(part.split("}")[0] for part in vi.split("{")[1:]) == \
            sorted(part.split("}")[0] for part in en.split("{")[1:]), key


def test_numbers_and_moments_are_written_as_people_read_them() -> None:
    vi, en = Words("vi"), Words("en")
    assert vi.number(1234.5) == "1.234,50" and en.number(1234.5) == "1,234.50"
    assert vi.decimal_text("87.66") == "87,66" and vi.percent(0.8438) == "84,4%"
    moment = timestamp_pb2.Timestamp()
    moment.FromDatetime(dt.datetime(2026, 10, 5, 20, 30, tzinfo=dt.UTC))  # 03:30 the next day in Hanoi
    assert vi.moment(moment) == "06/10/2026 03:30" and en.moment(moment) == "2026-10-06 03:30"
    assert vi.iso(moment) == "2026-10-06T03:30:00+07:00"
    assert vi.moment(timestamp_pb2.Timestamp()) == ""
    assert vi.date("2026-09-10") == "10/09/2026"
    assert vi.wait(59.2) == "59 giây" and vi.wait(61) == "2 phút" and en.wait(3600) == "60 minutes"


def test_csrf_tokens_are_bound_to_the_session() -> None:
    token = csrf_token("cs_0123456789ab_secret")
    assert csrf_matches(token, token)
    assert not csrf_matches(token, csrf_token("cs_0123456789ab_other"))
    assert not csrf_matches(token, "") and not csrf_matches(token, None)


def test_only_paths_on_this_console_are_followed_after_sign_in() -> None:
    assert safe_next("/quarters/2026-Q3/queue?kind=criticism") == "/quarters/2026-Q3/queue?kind=criticism"
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "", None, "javascript:alert(1)"):
        assert safe_next(hostile) == "/"


class _Request:
    def __init__(self, **headers: str) -> None:
        self.headers = headers


def test_a_post_from_another_origin_is_not_same_origin() -> None:
    assert same_origin(_Request(host="127.0.0.1:8080", origin="http://127.0.0.1:8080"))  # type: ignore[arg-type]
    assert not same_origin(_Request(host="127.0.0.1:8080", origin="http://evil.example"))  # type: ignore[arg-type]
    assert not same_origin(_Request(host="127.0.0.1:8080", origin="null"))  # type: ignore[arg-type]
    assert same_origin(_Request(host="127.0.0.1:8080", referer="http://127.0.0.1:8080/x"))  # type: ignore[arg-type]
