"""Reading import files: every good row becomes a message, every bad row a reject at its own line."""

from __future__ import annotations

import datetime as dt
import io
import random
import unicodedata
from pathlib import Path

import pytest

from civicscore_api.v1 import assignments_pb2, outcomes_pb2
from civicscore_client._import_records import Lines, LineTooLong
from civicscore_client.importing import (
    ImportFileError,
    Reject,
    column_of,
    decode,
    detect_format,
    open_import_file,
    parse_assignments,
    parse_measurements,
    parse_outcomes,
    read_text,
)

OUTCOME_HEADER = (
    "outcome_id,assignment_id,status,completed_on,quality,reminders,reported_at,reporting_system,note"
)
ASSIGNMENT_HEADER = "assignment_id,unit,title,area,source_document,assigned_on,due_on,priority"
MEASUREMENT_HEADER = "unit,period,indicator,numerator,denominator,reported_at,reporting_system"


def csv_text(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


def reported_at(outcome: outcomes_pb2.Outcome) -> dt.datetime:
    return outcome.reported_at.ToDatetime(tzinfo=dt.UTC)


# ---- outcomes ---------------------------------------------------------------------------


def test_good_outcome_rows_become_messages_with_their_line_numbers() -> None:
    text = csv_text(
        OUTCOME_HEADER,
        "O-1,QD818-17,completed,2026-07-10,accepted,2,2026-07-10T09:30:00+07:00,hanoi-task-tracker,Đã xong",
        "O-2,QD818-18,in_progress,,,0,2026-07-11T08:00:00Z,hanoi-task-tracker,",
        "O-3,QD818-19,cancelled,,,,2026-07-12 10:00,hanoi-task-tracker,",
    )
    parsed = parse_outcomes(text)
    assert parsed.rejects == []
    assert [row.line for row in parsed.rows] == [2, 3, 4]
    first = parsed.rows[0].message
    assert first.outcome_id == "O-1"
    assert first.assignment == "assignments/QD818-17"
    assert first.status == outcomes_pb2.OUTCOME_STATUS_COMPLETED
    assert first.completed_on == "2026-07-10"
    assert first.quality == outcomes_pb2.QUALITY_ACCEPTED
    assert first.reminders == 2
    assert first.reporting_system == "hanoi-task-tracker"
    assert first.note == "Đã xong"
    assert reported_at(first) == dt.datetime(2026, 7, 10, 2, 30, tzinfo=dt.UTC)
    second = parsed.rows[1].message
    assert second.status == outcomes_pb2.OUTCOME_STATUS_IN_PROGRESS
    assert second.quality == outcomes_pb2.QUALITY_UNSPECIFIED
    assert reported_at(second) == dt.datetime(2026, 7, 11, 8, 0, tzinfo=dt.UTC)
    third = parsed.rows[2].message
    assert third.status == outcomes_pb2.OUTCOME_STATUS_CANCELLED
    assert third.reminders == 0


def test_reported_at_without_offset_is_hanoi_time() -> None:
    parsed = parse_outcomes(
        csv_text(
            OUTCOME_HEADER,
            "O-1,A-1,in_progress,,,,2026-07-10T09:30:00,sys,",
            "O-2,A-1,in_progress,,,,2026-07-10,sys,",
        )
    )
    assert reported_at(parsed.rows[0].message) == dt.datetime(2026, 7, 10, 2, 30, tzinfo=dt.UTC)
    assert reported_at(parsed.rows[1].message) == dt.datetime(2026, 7, 9, 17, 0, tzinfo=dt.UTC)


def test_optional_columns_may_be_left_out_and_values_are_case_insensitive() -> None:
    header = "outcome_id,assignment_id,status,reported_at,reporting_system"
    parsed = parse_outcomes(csv_text(header, "O-1,assignments/A-1,In-Progress,2026-07-10T09:30:00+07:00,sys"))
    assert parsed.rejects == []
    message = parsed.rows[0].message
    assert message.assignment == "assignments/A-1"
    assert message.status == outcomes_pb2.OUTCOME_STATUS_IN_PROGRESS
    assert message.completed_on == "" and message.reminders == 0 and message.note == ""


def test_vietnamese_day_first_dates_are_accepted() -> None:
    parsed = parse_outcomes(csv_text(OUTCOME_HEADER, "O-1,A-1,completed,5/7/2026,,,2026-07-10T09:30:00,sys,"))
    assert parsed.rows[0].message.completed_on == "2026-07-05"


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("O-9,A-1,completed,2026-02-30,,0,2026-07-10T09:00:00,sys,", "completed_on", "is not a date"),
        ("O-9,A-1,completed,10.07.2026,,0,2026-07-10T09:00:00,sys,", "completed_on", "is not a date"),
        ("O-9,A-1,done,2026-07-10,,0,2026-07-10T09:00:00,sys,", "status", "expected completed | in_progress"),
        ("O-9,A-1,,2026-07-10,,0,2026-07-10T09:00:00,sys,", "status", "required"),
        ("O-9,A-1,completed,2026-07-10,great,0,2026-07-10T09:00:00,sys,", "quality", "returned_for_rework"),
        ("O-9,A-1,completed,2026-07-10,,-1,2026-07-10T09:00:00,sys,", "reminders", "whole number"),
        ("O-9,A-1,completed,2026-07-10,,1.5,2026-07-10T09:00:00,sys,", "reminders", "whole number"),
        ("O-9,A-1,completed,2026-07-10,,0,yesterday,sys,", "reported_at", "ISO 8601"),
        ("O-9,A-1,completed,2026-07-10,,0,,sys,", "reported_at", "required"),
        (",A-1,completed,2026-07-10,,0,2026-07-10T09:00:00,sys,", "outcome_id", "required"),
        ("O-9,,completed,2026-07-10,,0,2026-07-10T09:00:00,sys,", "assignment_id", "required"),
        ("O-9,A-1,completed,2026-07-10,,0,2026-07-10T09:00:00,,", "reporting_system", "required"),
        ("O-9,A-1,completed,2026-07-10", "quality", "missing value"),
        ("O-9,A-1,completed,2026-07-10,,0,2026-07-10T09:00:00,sys,note,extra", "row", "10 values"),
    ],
)
def test_each_kind_of_bad_outcome_row_is_rejected_at_its_line(row: str, column: str, reason: str) -> None:
    good = "O-1,A-1,in_progress,,,0,2026-07-10T09:00:00,sys,"
    parsed = parse_outcomes(
        csv_text(OUTCOME_HEADER, good, good.replace("O-1", "O-2"), row, good.replace("O-1", "O-3"))
    )
    assert [r.line for r in parsed.rows] == [2, 3, 5]
    assert len(parsed.rejects) == 1
    reject = parsed.rejects[0]
    assert (reject.line, reject.column) == (4, column)
    assert reason in reject.reason
    assert str(reject).startswith(f"line 4: {column}: ")


def test_every_problem_of_a_row_is_reported() -> None:
    parsed = parse_outcomes(csv_text(OUTCOME_HEADER, "O-1,A-1,done,2026-13-01,,x,nope,sys,"))
    assert parsed.rows == []
    assert [(r.line, r.column) for r in parsed.rejects] == [
        (2, "status"),
        (2, "completed_on"),
        (2, "reminders"),
        (2, "reported_at"),
    ]


def test_quoted_multi_line_values_keep_later_line_numbers_right() -> None:
    text = csv_text(
        OUTCOME_HEADER,
        'O-1,A-1,in_progress,,,0,2026-07-10T09:00:00,sys,"first line\nsecond line"',
        "O-2,A-1,bogus,,,0,2026-07-10T09:00:00,sys,",
    )
    parsed = parse_outcomes(text)
    assert parsed.rows[0].line == 2
    assert parsed.rows[0].message.note == "first line\nsecond line"
    assert parsed.rejects == [Reject(4, "status", parsed.rejects[0].reason)]


def test_blank_lines_are_skipped_without_shifting_line_numbers() -> None:
    text = OUTCOME_HEADER + "\n\nO-1,A-1,in_progress,,,0,2026-07-10T09:00:00,sys,\n\n"
    parsed = parse_outcomes(text)
    assert [row.line for row in parsed.rows] == [3]


def test_crlf_line_endings_and_semicolons_are_read() -> None:
    text = OUTCOME_HEADER.replace(",", ";") + "\r\nO-1;A-1;in_progress;;;0;2026-07-10T09:00:00;sys;a, b\r\n"
    parsed = parse_outcomes(text)
    assert parsed.rejects == []
    assert parsed.rows[0].message.note == "a, b"


# ---- the file as a whole ----------------------------------------------------------------


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    data = ("\ufeff" + csv_text(OUTCOME_HEADER, "O-1,A-1,in_progress,,,0,2026-07-10T09:00:00,sys,")).encode()
    path = tmp_path / "outcomes.csv"
    path.write_bytes(data)
    parsed = parse_outcomes(read_text(path))
    assert parsed.rejects == [] and len(parsed.rows) == 1
    # Text decoded without utf-8-sig still carries the mark; it is dropped too.
    assert len(parse_outcomes(data.decode("utf-8")).rows) == 1


def test_a_file_that_is_not_utf8_names_the_line_of_the_bad_byte() -> None:
    data = csv_text(OUTCOME_HEADER, "O-1,A-1,in_progress,,,0,2026-07-10T09:00:00,sys,Ho\xe0n").encode(
        "latin-1"
    )
    with pytest.raises(ImportFileError, match=r"not UTF-8 \(byte 0xe0 on line 2\); save the file as UTF-8"):
        decode(data, source="outcomes.csv")


def test_a_header_missing_a_required_column_is_refused_with_the_expected_columns() -> None:
    header = "outcome_id,assignment_id,status,reporting_system"
    with pytest.raises(ImportFileError, match=r"missing column.*reported_at.*Expected columns: outcome_id"):
        parse_outcomes(csv_text(header, "O-1,A-1,in_progress,sys"), source="outcomes.csv")


def test_an_unknown_column_is_refused_as_a_likely_typo() -> None:
    header = OUTCOME_HEADER.replace("note", "notes")
    with pytest.raises(ImportFileError, match=r"unknown column.*notes"):
        parse_outcomes(csv_text(header, "O-1,A-1,in_progress,,,0,2026-07-10T09:00:00,sys,"))


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(ImportFileError, match="empty"):
        parse_outcomes("\n\n")


def test_header_names_are_trimmed_and_case_insensitive() -> None:
    header = " Outcome_ID , Assignment_Id,STATUS,reported_at,reporting_system"
    parsed = parse_outcomes(csv_text(header, "O-1,A-1,completed,2026-07-10T09:00:00,sys"))
    assert parsed.rows[0].message.outcome_id == "O-1"


def test_format_is_told_by_the_extension() -> None:
    assert detect_format(Path("a.csv")) == "csv"
    assert detect_format(Path("a.JSONL")) == "jsonl"
    assert detect_format(Path("a.ndjson")) == "jsonl"
    with pytest.raises(ImportFileError, match="--format"):
        detect_format(Path("a.xlsx"))


# ---- JSON Lines -------------------------------------------------------------------------


def test_json_lines_rows_keep_their_physical_line_numbers() -> None:
    text = "\n".join(
        [
            '{"outcome_id": "O-1", "assignment_id": "A-1", "status": "completed",'
            ' "completed_on": "2026-07-10", "quality": "accepted", "reminders": 3,'
            ' "reported_at": "2026-07-10T09:00:00+07:00",'
            ' "reporting_system": "sys", "note": "Ghi chú\u2028tiếp"}',
            "",
            '{"outcome_id": "O-2", "assignment_id": "A-1", "status": "in_progress", "completed_on": null,'
            ' "reported_at": "2026-07-10T09:00:00", "reporting_system": "sys"}',
            '{"outcome_id": "O-3", "assignment_id": "A-1", "status": "done",'
            ' "reported_at": "2026-07-10T09:00:00", "reporting_system": "sys"}',
            "{not json",
            '["a list"]',
            '{"outcome_id": "O-6", "assignment_id": "A-1", "status": "in_progress", "colour": "red",'
            ' "reported_at": "2026-07-10T09:00:00", "reporting_system": "sys"}',
            '{"outcome_id": "O-7", "status": "in_progress", "reported_at": "2026-07-10T09:00:00",'
            ' "reporting_system": "sys"}',
            '{"outcome_id": 8, "assignment_id": "A-1", "status": "in_progress", "reminders": "2",'
            ' "reported_at": "2026-07-10T09:00:00", "reporting_system": "sys"}',
            '{"outcome_id": "O-9", "assignment_id": "A-1", "status": "in_progress", "reminders": true,'
            ' "reported_at": "2026-07-10T09:00:00", "reporting_system": "sys"}',
        ]
    )
    parsed = parse_outcomes(text, format="jsonl")
    assert [row.line for row in parsed.rows] == [1, 3, 9]
    first = parsed.rows[0].message
    assert first.reminders == 3 and first.note == "Ghi chú\u2028tiếp"
    assert parsed.rows[2].message.outcome_id == "8" and parsed.rows[2].message.reminders == 2
    assert [(r.line, r.column) for r in parsed.rejects] == [
        (4, "status"),
        (5, "row"),
        (6, "row"),
        (7, "row"),
        (8, "assignment_id"),
        (10, "reminders"),
    ]
    reasons = {r.line: r.reason for r in parsed.rejects}
    assert "not valid JSON" in reasons[5]
    assert "expected a JSON object" in reasons[6]
    assert "unknown field(s) colour" in reasons[7]
    assert reasons[8] == "required; missing"


# ---- assignments and measurements -------------------------------------------------------


def test_assignments_are_read_with_unit_names_and_enums() -> None:
    parsed = parse_assignments(
        csv_text(
            ASSIGNMENT_HEADER,
            "QD818-17,snv,Rà soát thủ tục hành chính,PAR,818/QĐ-UBND,2026-07-01,30/09/2026,urgent",
            "QD818-18,SNV,Số hóa hồ sơ,dx,,2026-07-01,2026-09-30,",
            "QD818-19,SNV,Việc khác,culture,,2026-07-01,2026-09-31,high",
        )
    )
    first = parsed.rows[0].message
    assert first.assignment_id == "QD818-17"
    assert first.unit == "units/SNV"
    assert first.area == assignments_pb2.AREA_PAR
    assert first.source_document == "818/QĐ-UBND"
    assert first.due_on == "2026-09-30"
    assert first.priority == assignments_pb2.PRIORITY_URGENT
    assert parsed.rows[1].message.priority == assignments_pb2.PRIORITY_UNSPECIFIED
    assert [(r.line, r.column) for r in parsed.rejects] == [(4, "area"), (4, "due_on")]


def test_measurements_are_read_and_bad_numbers_rejected() -> None:
    parsed = parse_measurements(
        csv_text(
            MEASUREMENT_HEADER,
            "SNV,2026-q3,dx.online_applications,725,1000,2026-10-01T08:00:00,dvc-portal",
            'SNV,2026-Q3,dx.fully_online,"72,5",100,2026-10-01T08:00:00,dvc-portal',
            "SNV,Q3-2026,dx.satisfaction,9,10,2026-10-01T08:00:00,dvc-portal",
            "SNV,2026-Q3,dx.satisfaction,nan,10,2026-10-01T08:00:00,dvc-portal",
        )
    )
    message = parsed.rows[0].message
    assert (message.unit, message.period, message.indicator) == (
        "units/SNV",
        "2026-Q3",
        "dx.online_applications",
    )
    assert (message.numerator, message.denominator) == (725.0, 1000.0)
    assert [(r.line, r.column) for r in parsed.rejects] == [(3, "numerator"), (4, "period"), (5, "numerator")]
    assert "use . as the decimal point" in parsed.rejects[0].reason


# ---- text ---------------------------------------------------------------------------------


def test_text_is_nfc_normalised() -> None:
    decomposed = unicodedata.normalize("NFD", "Rà soát thủ tục Phường Hoàn Kiếm")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    parsed = parse_assignments(
        csv_text(ASSIGNMENT_HEADER, f"A-1,SNV,{decomposed},par,,2026-07-01,2026-09-30,")
    )
    assert parsed.rows[0].message.title == "Rà soát thủ tục Phường Hoàn Kiếm"
    assert unicodedata.is_normalized("NFC", parsed.rows[0].message.title)


def test_server_field_paths_map_back_to_file_columns() -> None:
    assert column_of("outcomes", "outcomes[3].assignment") == "assignment_id"
    assert column_of("outcomes", "outcomes[3].completed_on") == "completed_on"
    assert column_of("outcomes", "outcomes[0].reported_at.seconds") == "reported_at"
    assert column_of("assignments", "assignments[12].due_on") == "due_on"
    assert column_of("outcomes", "idempotency_key") == "idempotency_key"


# ---- reading a stream ---------------------------------------------------------------------


def test_lines_split_like_universal_newlines_at_every_chunk_boundary_and_skip_long_lines() -> None:
    """The streamed reader against io's own universal newlines, over random texts with `\\r\\n` pairs and
    multi-byte characters cut at every kind of chunk boundary; a line over the limit is refused, then skipped."""
    rnd = random.Random(11)
    pieces = ["a", "b", "\r", "\n", "\r\n", "é", "Đ", "x" * 7]
    for _ in range(3000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 60)))
        limit, chunk = rnd.randint(1, 12), rnd.randint(1, 9)
        expected = [(None if len(line.encode()) > limit else line, number)
                    for number, line in enumerate(io.StringIO(text, newline=""), start=1)]
        lines = Lines(io.BytesIO(text.encode()), source="t", limit=limit, chunk_bytes=chunk)
        read: list[tuple[str | None, int]] = []
        while True:
            try:
                line = lines.next_line()
            except LineTooLong as refused:
                read.append((None, refused.line))
                continue
            if line is None:
                break
            read.append((line, lines.number))
        assert read == expected, (text, limit, chunk)


def test_a_file_read_as_a_stream_gives_what_its_text_gives(tmp_path: Path) -> None:
    text = "\ufeff" + csv_text(OUTCOME_HEADER, "O-1,A-1,in_progress,,,,2026-07-10T09:30:00+07:00,sys,\"Ghi\r\nchú\"",
                               "O-2,A-1,done,,,,2026-07-10,sys,")
    path = tmp_path / "o.csv"
    path.write_text(text, encoding="utf-8", newline="")
    with open_import_file(path) as stream:
        streamed = parse_outcomes(stream, source=path.name)
    assert streamed == parse_outcomes(text, source=path.name)
    assert [row.line for row in streamed.rows] == [2]
    assert streamed.rows[0].message.note == "Ghi\r\nchú"
    assert [str(r) for r in streamed.rejects] == ["line 4: status: unknown value 'done'; expected completed | "
                                                  "in_progress | cancelled"]
