"""The `civicscore` command against the real server: imports account for every line, reads show the units.

The data is synthetic and dated in the quarter before today (Hanoi time), so that completion dates
and report times are in the past whatever day the suite runs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner, Result

from civicscore_api.v1 import outcomes_pb2, outcomes_pb2_grpc
from civicscore_client import Client, InvalidArgument
from civicscore_client.cli import app
from civicscore_client.importing import parse_outcomes
from tests.serverproc import admin_client, token_for

HANOI = dt.timezone(dt.timedelta(hours=7))
ASSIGNMENT_HEADER = "assignment_id,unit,title,area,source_document,assigned_on,due_on,priority"
OUTCOME_HEADER = (
    "outcome_id,assignment_id,status,completed_on,quality,reminders,reported_at,reporting_system,note"
)
SYSTEM = "test-synthetic"


class Quarter:
    """The quarter before today's, with the dates the test data needs."""

    def __init__(self, today: dt.date) -> None:
        first_month = 3 * ((today.month - 1) // 3) + 1
        this_start = dt.date(today.year, first_month, 1)
        self.end = this_start - dt.timedelta(days=1)
        self.start = dt.date(self.end.year, 3 * ((self.end.month - 1) // 3) + 1, 1)
        self.id = f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"

    def day(self, offset: int) -> str:
        return (self.start + dt.timedelta(days=offset)).isoformat()

    def moment(self, offset: int) -> str:
        return f"{self.day(offset)}T10:00:00+07:00"


Q = Quarter(dt.datetime.now(HANOI).date())


def civicscore(address: str, *args: str) -> Result:
    """Run the command in-process, with a wide terminal so tables never split a name."""
    return CliRunner().invoke(app, ["--server", address, *args], env={"COLUMNS": "250", "NO_COLOR": "1",
                                                                    "CIVICSCORE_TOKEN": token_for(address)})


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def assignment_rows(unit: str, count: int) -> list[str]:
    """`count` assignments of `unit`, assigned on the quarter's first day and due 30 days later."""
    return [
        f"T-{unit}-{n},{unit},Nhiệm vụ thử {n} của {unit},par,818/QĐ-UBND,{Q.day(0)},{Q.day(30)},normal"
        for n in range(1, count + 1)
    ]


def completed(outcome_id: str, assignment_id: str, *, day: int = 10, quality: str = "accepted") -> str:
    return f"{outcome_id},{assignment_id},completed,{Q.day(day)},{quality},0,{Q.moment(day)},{SYSTEM},"


def in_progress(outcome_id: str, assignment_id: str, *, reminders: int = 0) -> str:
    return f"{outcome_id},{assignment_id},in_progress,,,{reminders},{Q.moment(20)},{SYSTEM},"


def load_assignments(address: str, tmp_path: Path, *units: str) -> None:
    rows = [row for unit in units for row in assignment_rows(unit, 6)]
    result = civicscore(
        address, "import", "assignments", str(write(tmp_path / "assignments.csv", ASSIGNMENT_HEADER, rows))
    )
    assert result.exit_code == 0, result.output
    assert f"accepted    {len(rows)} ({len(rows)} created, 0 updated)" in result.stdout


def stored_outcome_ids(address: str) -> set[str]:
    with admin_client(address) as client:
        return {outcome.outcome_id for outcome in client.list_outcomes()}


# ---- import ------------------------------------------------------------------------------


@pytest.mark.slow
def test_import_lists_every_rejected_line_and_stores_the_good_batches(
    seeded_server: Any, tmp_path: Path
) -> None:
    address = seeded_server.address
    load_assignments(address, tmp_path, "SNV", "STP")
    rows = [
        completed("O-1", "T-SNV-1"),  # line 2   batch 1
        completed("O-2", "T-SNV-2"),  # line 3   batch 1
        completed("O-3", "T-SNV-3").replace(Q.day(10), "2026-02-30", 1),  # line 4: bad date, never sent
        completed("O-4", "T-SNV-4"),  # line 5   batch 1
        completed("O-5", "T-SNV-5"),  # line 6   batch 2, refused with line 7
        completed("O-6", "NO-SUCH-TASK"),  # line 7   batch 2: unknown assignment
        completed("O-7", "T-SNV-6"),  # line 8   batch 2, refused with line 7
        in_progress("O-8", "T-STP-1"),  # line 9   batch 3
        in_progress("O-9", "T-STP-2"),  # line 10  batch 3
    ]
    file = write(tmp_path / "outcomes.csv", OUTCOME_HEADER, rows)

    result = civicscore(address, "import", "outcomes", str(file), "--batch-size", "3")

    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "line 4: completed_on: '2026-02-30' is not a date" in out
    assert re.search(r"line 7: assignment_id: .+", out), out
    assert not re.search(r"line (2|3|5|6|8|9|10):", out), out
    assert "accepted    5" in out
    assert "rejected    2" in out
    assert "not stored  2" in out
    assert "lines 6-8 (3 rows)" in out
    assert stored_outcome_ids(address) == {"O-1", "O-2", "O-4", "O-8", "O-9"}

    again = civicscore(address, "import", "outcomes", str(file), "--batch-size", "3")
    assert again.exit_code == 1, again.output
    assert "accepted    0" in again.stdout
    assert "duplicates  5" in again.stdout

    rows[2] = completed("O-3", "T-SNV-3")
    rows[5] = completed("O-6", "T-STP-3")
    fixed = civicscore(
        address, "import", "outcomes", str(write(file, OUTCOME_HEADER, rows)), "--batch-size", "3"
    )
    assert fixed.exit_code == 0, fixed.output
    assert "accepted    4" in fixed.stdout
    assert "duplicates  5" in fixed.stdout
    assert "Rejected lines" not in fixed.stdout
    assert len(stored_outcome_ids(address)) == 9


@pytest.mark.slow
def test_an_outcome_resent_with_other_content_is_rejected_at_its_line(
    seeded_server: Any, tmp_path: Path
) -> None:
    address = seeded_server.address
    load_assignments(address, tmp_path, "SNV")
    first = civicscore(
        address,
        "import",
        "outcomes",
        str(write(tmp_path / "a.csv", OUTCOME_HEADER, [completed("O-1", "T-SNV-1")])),
    )
    assert first.exit_code == 0, first.output

    changed = write(
        tmp_path / "b.csv", OUTCOME_HEADER, [completed("O-2", "T-SNV-2"), completed("O-1", "T-SNV-1", day=12)]
    )
    result = civicscore(address, "import", "outcomes", str(changed))

    assert result.exit_code == 1, result.output
    assert "line 3: outcome_id: outcome O-1 was already stored with different content" in result.stdout
    assert "not stored  1" in result.stdout
    assert stored_outcome_ids(address) == {"O-1"}


@pytest.mark.slow
def test_every_violation_is_listed_even_when_they_do_not_fit_in_one_error(
    seeded_server: Any, tmp_path: Path
) -> None:
    address = seeded_server.address
    rows = [completed(f"O-{n}", f"NO-SUCH-TASK-{n}") for n in range(300)]
    result = civicscore(address, "import", "outcomes", str(write(tmp_path / "o.csv", OUTCOME_HEADER, rows)))

    assert result.exit_code == 1, result.output
    lines = {int(n) for n in re.findall(r"line (\d+): assignment_id:", result.stdout)}
    assert lines == set(range(2, 302))

    outcomes = [_outcome(f"O-{n}", f"NO-SUCH-TASK-{n}") for n in range(300)]
    with admin_client(address) as client, pytest.raises(InvalidArgument) as caught:
        client.submit_outcomes(outcomes)
    assert caught.value.complete
    assert {v.index for v in caught.value.violations} == set(range(300))


@pytest.mark.slow
def test_a_streamed_import_is_all_or_nothing(seeded_server: Any, tmp_path: Path) -> None:
    address = seeded_server.address
    load_assignments(address, tmp_path, "SNV")
    rows = [completed("O-1", "T-SNV-1"), completed("O-2", "NO-SUCH-TASK"), completed("O-3", "T-SNV-3")]
    file = write(tmp_path / "o.csv", OUTCOME_HEADER, rows)

    refused = civicscore(address, "import", "outcomes", str(file), "--stream", "--batch-size", "2")
    assert refused.exit_code == 1, refused.output
    assert re.search(r"line 3: assignment_id: .+", refused.stdout)
    assert "not stored  2" in refused.stdout
    assert stored_outcome_ids(address) == set()

    rows[1] = completed("O-2", "T-SNV-2")
    stored = civicscore(address, "import", "outcomes", str(write(file, OUTCOME_HEADER, rows)), "--stream")
    assert stored.exit_code == 0, stored.output
    assert "accepted    3" in stored.stdout


@pytest.mark.slow
def test_measurements_import_from_json_lines(seeded_server: Any, tmp_path: Path) -> None:
    rows = [
        {
            "unit": "SNV",
            "period": Q.id,
            "indicator": "dx.online_applications",
            "numerator": 850,
            "denominator": 1000,
            "reported_at": Q.moment(80),
            "reporting_system": SYSTEM,
        },
        {"unit": "SNV", "period": Q.id, "indicator": "dx.online_applications", "numerator": "many"},
    ]
    file = tmp_path / "measurements.jsonl"
    file.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")

    result = civicscore(seeded_server.address, "--json", "import", "measurements", str(file))

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["accepted"] == 1
    assert summary["rejected"] == 1
    assert {(r["line"], r["column"]) for r in summary["rejects"]} >= {(2, "numerator"), (2, "denominator")}


# ---- evaluation and the read commands ---------------------------------------------------


@pytest.fixture
def evaluated(seeded_server: Any, tmp_path: Path) -> str:
    """SNV does all six tasks on time; STP does three late and leaves three overdue after 4 reminders."""
    address = seeded_server.address
    load_assignments(address, tmp_path, "SNV", "STP")
    rows = [completed(f"O-SNV-{n}", f"T-SNV-{n}") for n in range(1, 7)]
    rows += [completed(f"O-STP-{n}", f"T-STP-{n}", day=40) for n in range(1, 4)]
    rows += [in_progress(f"O-STP-{n}", f"T-STP-{n}", reminders=4) for n in range(4, 7)]
    imported = civicscore(
        address, "import", "outcomes", str(write(tmp_path / "outcomes.csv", OUTCOME_HEADER, rows))
    )
    assert imported.exit_code == 0, imported.output

    result = civicscore(address, "evaluate", Q.id)
    assert result.exit_code == 0, result.output
    assert "Evaluated 141 units" in result.stdout
    return str(address)


@pytest.mark.slow
def test_show_prints_score_grade_counts_and_flags(evaluated: str) -> None:
    result = civicscore(evaluated, "show", "SNV", "--period", Q.id)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Sở Nội vụ" in out and "Department of Home Affairs" in out
    assert "Điểm: 100,00" in out  # Vietnamese decimal comma by default
    assert "Hoàn thành xuất sắc nhiệm vụ" in out
    assert "Cờ đề xuất: Biểu dương" in out  # the flag's label, not its id `praise`
    english = civicscore(evaluated, "show", "SNV", "--period", Q.id, "--lang", "en")
    assert english.exit_code == 0, english.output
    assert "Score: 100.00" in english.stdout and "Flags: Praise" in english.stdout
    assert "evaluated by bootstrap-admin" in out  # who ran the evaluation that made this revision

    latest = civicscore(evaluated, "--json", "show", "stp")  # no --period: the latest evaluated quarter
    assert latest.exit_code == 0, latest.output
    evaluation = json.loads(latest.stdout)
    assert evaluation["unit"] == "units/STP"
    assert evaluation["period"] == Q.id
    assert evaluation["counts"]["open_overdue"] == 3
    assert "criticism" in evaluation["flags"]


@pytest.mark.slow
def test_recommendations_name_the_units_and_filter_by_kind_and_unit(evaluated: str) -> None:
    every = civicscore(evaluated, "recommendations", Q.id)
    assert every.exit_code == 0, every.output
    assert "Sở Nội vụ" in every.stdout and "Sở Tư pháp" in every.stdout

    criticism = civicscore(evaluated, "recommendations", Q.id, "--kind", "criticism")
    assert "Sở Tư pháp" in criticism.stdout and "Sở Nội vụ" not in criticism.stdout

    one_unit = civicscore(evaluated, "recommendations", Q.id, "--unit", "SNV")
    assert "Sở Nội vụ" in one_unit.stdout and "Sở Tư pháp" not in one_unit.stdout


@pytest.mark.slow
def test_rankings_put_the_best_department_first(evaluated: str) -> None:
    result = civicscore(evaluated, "rankings", Q.id, "--block", "departments")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("Sở Nội vụ") < out.index("Sở Tư pháp")
    assert "Phường" not in out


@pytest.mark.slow
def test_units_ruleset_and_periods(evaluated: str) -> None:
    units = civicscore(evaluated, "units", "--kind", "department")
    assert units.exit_code == 0, units.output
    assert "Sở Nội vụ" in units.stdout and "Phường" not in units.stdout
    assert "Units (15)" in units.stdout

    ruleset = civicscore(evaluated, "ruleset")
    assert ruleset.exit_code == 0, ruleset.output
    assert "dx.online_applications" in ruleset.stdout

    periods = civicscore(evaluated, "--json", "periods")
    assert periods.exit_code == 0, periods.output
    assert Q.id in {period["period_id"] for period in json.loads(periods.stdout)}


@pytest.mark.slow
def test_a_unit_without_an_evaluation_is_a_one_line_error(evaluated: str) -> None:
    result = civicscore(evaluated, "show", "NO-SUCH-UNIT", "--period", Q.id)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


# ---- without a server --------------------------------------------------------------------


def test_an_unreachable_server_is_one_clear_line() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = civicscore(f"127.0.0.1:{port}", "units")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: cannot reach civicscore at 127.0.0.1:{port}: is the server running? start it with `make run`"
    )


def test_a_file_with_a_missing_column_exits_2_before_connecting(tmp_path: Path) -> None:
    file = write(tmp_path / "o.csv", "outcome_id,assignment_id,status", ["O-1,A-1,completed"])
    result = civicscore("127.0.0.1:1", "import", "outcomes", str(file))
    assert result.exit_code == 2
    assert "missing column(s) reported_at, reporting_system" in result.stderr


def test_a_dry_run_lists_bad_lines_and_sends_nothing(tmp_path: Path) -> None:
    rows = [completed("O-1", "T-1"), completed("O-2", "T-2").replace("completed", "finished", 1)]
    result = civicscore(
        "127.0.0.1:1", "import", "outcomes", str(write(tmp_path / "o.csv", OUTCOME_HEADER, rows)), "--dry-run"
    )
    assert result.exit_code == 1
    assert "line 3: status: unknown value 'finished'" in result.stdout
    assert "nothing was sent" in result.stdout


class FlakyOutcomes(outcomes_pb2_grpc.OutcomeServiceServicer):
    """Refuses each request with UNAVAILABLE twice, then accepts it; records the keys it saw."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def SubmitOutcomes(
        self, request: outcomes_pb2.SubmitOutcomesRequest, context: grpc.ServicerContext
    ) -> outcomes_pb2.SubmitOutcomesResponse:
        self.keys.append(request.idempotency_key)
        if self.keys.count(request.idempotency_key) < 3:
            context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return outcomes_pb2.SubmitOutcomesResponse(accepted=len(request.outcomes))


def test_unavailable_is_retried_with_the_same_idempotency_key_per_batch() -> None:
    # The one test with a stand-in server: the real one cannot be made to fail on cue.
    flaky = FlakyOutcomes()  # type: ignore[abstract]  # only SubmitOutcomes is needed
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    outcomes_pb2_grpc.add_OutcomeServiceServicer_to_server(flaky, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Client(f"127.0.0.1:{port}", initial_backoff=0.01) as client:
            outcomes = [_outcome(f"O-{n}", "T-1") for n in range(5)]
            reply = client.submit_outcomes(outcomes, batch_size=3)
    finally:
        server.stop(None)
    assert reply.accepted == 5
    first, second = flaky.keys[0], flaky.keys[3]
    assert flaky.keys == [first] * 3 + [second] * 3
    assert first != second


def _outcome(outcome_id: str, assignment_id: str) -> outcomes_pb2.Outcome:
    return parse_outcomes("\n".join([OUTCOME_HEADER, completed(outcome_id, assignment_id)])).rows[0].message
