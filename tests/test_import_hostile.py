"""Hostile and broken import files through the real `civicscore` command: every problem is a line
the CLI names (exit 1) or a one-line refusal of the file (exit 2), never a traceback, and a huge
line costs no more memory than a small file.

Out-of-domain values (years outside 2000-2100, numbers that are not finite) are rejected at
their lines by the CLI itself, as the server's field domains would; the rest of the file is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from civicscore_client.importing import MAX_JSON_NESTING, MAX_RECORD_BYTES
from tests.serverproc import admin_client, token_for

CLI = Path(sys.executable).parent / "civicscore"
OUTCOME_HEADER = "outcome_id,assignment_id,status,completed_on,quality,reminders,reported_at,reporting_system,note"
ASSIGNMENT_HEADER = "assignment_id,unit,title,area,source_document,assigned_on,due_on,priority"
MEASUREMENT_HEADER = "unit,period,indicator,numerator,denominator,reported_at,reporting_system"
TOO_LONG = (f"row: a record longer than {MAX_RECORD_BYTES:,} bytes; no valid row is that long (the longest value, "
            "a note, is 4,000 characters): the line was skipped unread. Check the file's line breaks and quotes")
HANOI = dt.timezone(dt.timedelta(hours=7))
# Dates in the quarter before today's, so that completions and reports are in the past whatever the day.
TODAY = dt.datetime.now(HANOI).date()
QUARTER_END = dt.date(TODAY.year, 3 * ((TODAY.month - 1) // 3) + 1, 1) - dt.timedelta(days=1)
DAY = (QUARTER_END - dt.timedelta(days=40)).isoformat()
MOMENT = f"{DAY}T10:00:00+07:00"


def civicscore(*args: str, address: str = "127.0.0.1:1",
               measure_memory: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed `civicscore` command; with `measure_memory`, its peak RSS in KiB is the last
    line of stderr (read by a parent process of its own, so that no other child counts)."""
    command = [str(CLI), "--server", address, *args]
    if measure_memory:
        command = [sys.executable, "-c", _MEASURE, *command]
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "CIVICSCORE_TOKEN": token_for(address)}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


_MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(peak // 1024 if sys.platform == "darwin" else peak, file=sys.stderr)
sys.exit(code)
"""


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def jsonl_outcome(outcome_id: str, **changes: Any) -> str:
    row = {"outcome_id": outcome_id, "assignment_id": "A-1", "status": "in_progress", "reported_at": MOMENT,
           "reporting_system": "test-hostile", **changes}
    return json.dumps(row, ensure_ascii=False)


def csv_outcome(outcome_id: str, assignment_id: str = "A-1", *, status: str = "in_progress", completed_on: str = "",
                reported_at: str = MOMENT) -> str:
    return f"{outcome_id},{assignment_id},{status},{completed_on},,0,{reported_at},test-hostile,"


# ---- files that used to crash the CLI or fill its memory ----------------------------------------------------


def test_json_nested_100000_levels_deep_is_a_reject_at_its_line(tmp_path: Path) -> None:
    file = tmp_path / "outcomes.jsonl"
    file.write_text("\n".join([
        jsonl_outcome("O-1"),                       # line 1
        "",                                         # line 2
        "[" * 100_000,                              # line 3: over the record limit, never read whole
        "[" * 5_000 + "]" * 5_000,                  # line 4: short, but would exhaust the decoder's recursion
        '{"outcome_id": [[[[[[[[[[[[[[[[[["O"]]]]]]]]]]]]]]]]]}',  # line 5: 18 levels in 52 bytes
        jsonl_outcome("O-2"),                       # line 6
    ]) + "\n", encoding="utf-8")
    result = civicscore("import", "outcomes", str(file), "--dry-run")
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    nesting = (f"row: nesting deeper than {MAX_JSON_NESTING} levels; each line must be one flat JSON object of "
               "column: value")
    assert result.stdout.splitlines()[-3:] == [f"  line 3: {TOO_LONG}", f"  line 4: {nesting}",
                                               f"  line 5: {nesting}"], result.stdout
    assert "dry run: 2 rows ready to send, 3 rejected; nothing was sent" in result.stdout


def test_a_100_mb_csv_line_is_a_reject_at_its_line_in_the_memory_of_a_small_file(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    small.write_text("\n".join([OUTCOME_HEADER, csv_outcome("O-1"), csv_outcome("O-3")]) + "\n")
    huge = tmp_path / "huge.csv"
    with huge.open("w", encoding="utf-8") as file:
        file.write("\n".join([OUTCOME_HEADER, csv_outcome("O-1"), "O-2,A-1,in_progress,,,0,"]))
        for _ in range(100):  # line 3: 100 MB without a line break
            file.write("x" * 1_000_000)
        file.write("\n" + csv_outcome("O-3") + "\n")

    baseline = civicscore("import", "outcomes", str(small), "--dry-run", measure_memory=True)
    result = civicscore("import", "outcomes", str(huge), "--dry-run", measure_memory=True)

    no_traceback(result)
    assert result.returncode == 1, result.stderr
    assert f"  line 3: {TOO_LONG}" in result.stdout.splitlines(), result.stdout
    assert "dry run: 2 rows ready to send, 1 rejected; nothing was sent" in result.stdout
    small_kib, huge_kib = int(baseline.stderr.split()[-1]), int(result.stderr.split()[-1])
    # Reading the line whole took 639 MB; a streamed read keeps at most two 64 KiB buffers of it.
    assert huge_kib < small_kib + 32 * 1024, (small_kib, huge_kib)


def test_json_values_python_reads_and_json_does_not_are_rejects_at_their_lines(tmp_path: Path) -> None:
    file = tmp_path / "outcomes.jsonl"
    rows = [
        jsonl_outcome("O-1").replace('"test-hostile"', "NaN"),           # line 1
        jsonl_outcome("O-2").replace('"test-hostile"', "1" * 5_000),     # line 2
        jsonl_outcome("O-3", note="tr\\ud800ễ").replace("\\\\ud800", "\\ud800"),  # line 3: half a surrogate pair
        jsonl_outcome("O-4", note=["x" * 500]),                          # line 4: a list where text belongs
        jsonl_outcome("O-5"),                                            # line 5
    ]
    file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = civicscore("import", "outcomes", str(file), "--dry-run")
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-4:] == [
        "  line 1: row: not valid JSON (NaN is not a JSON value; write a finite number, or the value as text)",
        "  line 2: row: not valid JSON (a number of more than 4,300 digits)",
        "  line 3: note: holds \\ud800, half of a UTF-16 surrogate pair, at character 3: not a character; "
        "fix the escape",
        "  line 4: note: expected text, found '[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... "
        "(504 characters)",
    ], result.stdout


@pytest.mark.parametrize(("content", "message"), [
    pytest.param(b"outcome_id," + b"x" * 100_000 + b"\n",
                 f"error: outcomes.csv: line 1 (the header) is longer than {MAX_RECORD_BYTES:,} bytes; the first "
                 "line must name the columns", id="header-too-long"),
    pytest.param(f'{OUTCOME_HEADER}\n{csv_outcome("O-1")}\n{csv_outcome("O-2")}"never closed\n'.encode()
                 + b"a line of text\n" * 5_000,
                 f"error: outcomes.csv: line 3: the record starting here runs past {MAX_RECORD_BYTES:,} bytes "
                 "(line 4367); check for a quote (\") that is never closed", id="unclosed-quote"),
    pytest.param(f'{OUTCOME_HEADER}\n{csv_outcome("O-1")}\n'.encode() + b"O-2,A-1,\xff\n",
                 "error: outcomes.csv: not UTF-8 (byte 0xff on line 3); save the file as UTF-8", id="not-utf8"),
])
def test_a_file_that_cannot_be_read_is_one_line_and_exit_2(tmp_path: Path, content: bytes, message: str) -> None:
    file = tmp_path / "outcomes.csv"
    file.write_bytes(content)
    result = civicscore("import", "outcomes", str(file), "--dry-run")
    no_traceback(result)
    assert result.returncode == 2, result.stdout
    assert result.stderr.strip() == message


# ---- values outside the server's domains ---------------------------------------------------------------------


def test_dates_times_and_quarters_outside_2000_to_2100_and_numbers_not_finite_are_rejected_at_their_lines(
    tmp_path: Path,
) -> None:
    assignments = tmp_path / "assignments.csv"
    assignments.write_text("\n".join([
        ASSIGNMENT_HEADER,
        "A-1,SNV,Nhiệm vụ 1,par,,2000-01-01,2100-12-31,",   # line 2: the first and last days accepted
        "A-2,SNV,Nhiệm vụ 2,par,,2026-07-01,2101-01-01,",   # line 3
        "A-3,SNV,Nhiệm vụ 3,par,,31/12/1999,2026-09-30,",   # line 4
        "A-4,SNV,Nhiệm vụ 4,par,,2026-07-01,9999-12-31,",   # line 5
    ]) + "\n", encoding="utf-8")
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("\n".join([
        OUTCOME_HEADER,
        csv_outcome("O-1", reported_at="2000-01-01T00:00:00+07:00"),  # line 2: the first instant accepted
        csv_outcome("O-2", reported_at="1999-12-31T16:59:59Z"),       # line 3: one second before it
        csv_outcome("O-3", reported_at="2100-12-31T23:59:59+07:00"),  # line 4: the last second accepted
        csv_outcome("O-4", reported_at="2101-01-01T00:00:00+07:00"),  # line 5
        csv_outcome("O-5", reported_at="9999-12-31T23:59:59Z"),       # line 6
        csv_outcome("O-6", status="completed", completed_on="1999-12-31"),  # line 7
    ]) + "\n", encoding="utf-8")
    measurements = tmp_path / "measurements.csv"
    measurements.write_text("\n".join([
        MEASUREMENT_HEADER,
        f"SNV,2100-Q4,dx.online_applications,1,2,{MOMENT},test-hostile",   # line 2
        f"SNV,2101-Q1,dx.online_applications,1,2,{MOMENT},test-hostile",   # line 3
        f"SNV,1999-Q4,dx.online_applications,1,2,{MOMENT},test-hostile",   # line 4
        f"SNV,2026-Q3,dx.online_applications,inf,NaN,{MOMENT},test-hostile",  # line 5
        f"SNV,2026-Q3,dx.online_applications,1e400,2,{MOMENT},test-hostile",  # line 6
    ]) + "\n", encoding="utf-8")

    def rejected(file: Path) -> list[str]:
        result = civicscore("import", file.stem, str(file), "--dry-run")
        no_traceback(result)
        assert result.returncode == 1, result.stderr
        return [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("line ")]

    dates = "the dates civicscore accepts"
    assert rejected(assignments) == [
        f"line 3: due_on: '2101-01-01' is outside the years 2000-2100, {dates}",
        f"line 4: assigned_on: '31/12/1999' is outside the years 2000-2100, {dates}",
        f"line 5: due_on: '9999-12-31' is outside the years 2000-2100, {dates}",
    ]
    times = "(Hanoi time), the times civicscore accepts"
    assert rejected(outcomes) == [
        f"line 3: reported_at: '1999-12-31T16:59:59Z' is outside the years 2000-2100 {times}",
        f"line 5: reported_at: '2101-01-01T00:00:00+07:00' is outside the years 2000-2100 {times}",
        f"line 6: reported_at: '9999-12-31T23:59:59Z' is outside the years 2000-2100 {times}",
        f"line 7: completed_on: '1999-12-31' is outside the years 2000-2100, {dates}",
    ]
    assert rejected(measurements) == [
        "line 3: period: '2101-Q1' is outside the years 2000-2100, the quarters civicscore accepts",
        "line 4: period: '1999-Q4' is outside the years 2000-2100, the quarters civicscore accepts",
        "line 5: numerator: 'inf' is not a finite number",
        "line 5: denominator: 'NaN' is not a finite number",
        "line 6: numerator: '1e400' is not a finite number",
    ]


@pytest.mark.slow
def test_a_far_future_report_is_rejected_at_its_line_and_the_other_rows_are_stored(
    seeded_server: Any, tmp_path: Path
) -> None:
    """Before: the server answered INTERNAL for the whole batch and the CLI said "internal error", no line."""
    address = seeded_server.address
    assignments = tmp_path / "assignments.csv"
    assignments.write_text(f"{ASSIGNMENT_HEADER}\nT-1,SNV,Nhiệm vụ thử,par,818/QĐ-UBND,{DAY},{DAY},\n",
                           encoding="utf-8")
    loaded = civicscore("import", "assignments", str(assignments), address=address)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("\n".join([
        OUTCOME_HEADER,
        csv_outcome("O-1", "T-1"),
        csv_outcome("O-2", "T-1", reported_at="9999-12-31T23:59:59Z"),
        csv_outcome("O-3", "T-1"),
    ]) + "\n", encoding="utf-8")

    result = civicscore("import", "outcomes", str(outcomes), address=address)

    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("  line 3: reported_at: '9999-12-31T23:59:59Z' is outside the years 2000-2100 (Hanoi time), the times "
            "civicscore accepts") in result.stdout.splitlines(), result.stdout
    assert "accepted    2" in result.stdout and "rejected    1" in result.stdout
    with admin_client(address) as client:
        assert {outcome.outcome_id for outcome in client.list_outcomes()} == {"O-1", "O-3"}
