"""The CLI reads well for the committee's secretariat, through the real server and the real `civicscore`:
flags by their labels in the chosen language, tables that fit 80 columns without cutting a label, the
name `review` takes shown by `recommendations`, `watch` starting at the newest change unless `--from`
is given, `show` grouping the rules that fired, Hanoi time and the language's decimal marks everywhere a
person reads, and `--json` unchanged (ISO UTC timestamps, plain numbers, ids).

The data is synthetic, dated in the two quarters before today's (Hanoi time), so that every date is past.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2
from typer.testing import CliRunner, Result

from civicscore_api.v1 import assignments_pb2, evaluations_pb2, outcomes_pb2, units_pb2
from civicscore_client.cli import app
from tests.serverproc import ServerProcess, hanoi_units
from tests.waiting import eventually

pytestmark = pytest.mark.slow

HANOI = dt.timezone(dt.timedelta(hours=7))
HANOI_TIME = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+07\b")


class Quarter:
    """A quarter `back` quarters before today's (Hanoi time), with the dates the data needs."""

    def __init__(self, back: int) -> None:
        today = dt.datetime.now(HANOI).date()
        index = today.year * 4 + (today.month - 1) // 3 - back
        self.start = dt.date(index // 4, 3 * (index % 4) + 1, 1)
        self.id = f"{self.start.year}-Q{index % 4 + 1}"

    def day(self, offset: int) -> str:
        return (self.start + dt.timedelta(days=offset)).isoformat()

    def moment(self, offset: int) -> timestamp_pb2.Timestamp:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(dt.datetime.combine(self.start + dt.timedelta(days=offset), dt.time(10), HANOI))
        return stamp


Q, PREVIOUS = Quarter(1), Quarter(2)


def _assignments(quarter: Quarter, unit: str) -> list[assignments_pb2.Assignment]:
    return [assignments_pb2.Assignment(
        assignment_id=f"{quarter.id}-{unit}-{n}", unit=f"units/{unit}", title=f"Nhiệm vụ {n} của {unit}",
        area=assignments_pb2.AREA_PAR, source_document="818/QĐ-UBND", assigned_on=quarter.day(0),
        due_on=quarter.day(30)) for n in range(6)]


def _done(quarter: Quarter, unit: str, n: int, day: int) -> outcomes_pb2.Outcome:
    return outcomes_pb2.Outcome(
        outcome_id=f"O-{quarter.id}-{unit}-{n}", assignment=f"assignments/{quarter.id}-{unit}-{n}",
        status=outcomes_pb2.OUTCOME_STATUS_COMPLETED, completed_on=quarter.day(day),
        quality=outcomes_pb2.QUALITY_ACCEPTED, reported_at=quarter.moment(day), reporting_system="test-synthetic")


def _open(quarter: Quarter, unit: str, n: int) -> outcomes_pb2.Outcome:
    return outcomes_pb2.Outcome(
        outcome_id=f"O-{quarter.id}-{unit}-{n}", assignment=f"assignments/{quarter.id}-{unit}-{n}",
        status=outcomes_pb2.OUTCOME_STATUS_IN_PROGRESS, reminders=4, reported_at=quarter.moment(45),
        reporting_system="test-synthetic")


@dataclass
class Served:
    server: ServerProcess

    def civicscore(self, *args: str, columns: int = 200) -> Result:
        """The command in-process, on a terminal `columns` wide."""
        return CliRunner().invoke(app, ["--server", self.server.address, *args],
                                  env={"COLUMNS": str(columns), "NO_COLOR": "1", "CIVICSCORE_TOKEN": self.server.token,
                                       "CIVICSCORE_LANG": None})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """SNV all on time two quarters running (excellent twice: praise and commendation candidate); STP three
    late and three left open after 4 reminders (criticism, with rules firing on each open task); the
    Office of the People's Committee (the longest name) all on time this quarter."""
    server = ServerProcess(tmp_path_factory.mktemp("readable")).start()
    try:
        stubs = server.stubs()
        stubs.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        items = [*_assignments(PREVIOUS, "SNV"), *_assignments(Q, "SNV"), *_assignments(Q, "STP"),
                 *_assignments(Q, "VPUBND")]
        stubs.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=items), timeout=30)
        outs = [_done(PREVIOUS, "SNV", n, 10) for n in range(6)] + [_done(Q, "SNV", n, 10) for n in range(6)]
        outs += [_done(Q, "STP", n, 40) for n in range(3)] + [_open(Q, "STP", n) for n in range(3, 6)]
        outs += [_done(Q, "VPUBND", n, 12) for n in range(6)]
        stubs.outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=outs), timeout=30)
        with server.client() as client:
            client.evaluate_period(PREVIOUS.id)
            client.evaluate_period(Q.id)
        yield Served(server)
    finally:
        server.stop()


def labels_of(served: Served) -> dict[str, tuple[str, str]]:
    """flag → (Vietnamese, English) label, from the ruleset in force on the server."""
    with served.server.client() as client:
        return {f.flag: (f.label_vi, f.label_en) for f in client.get_active_ruleset().flags}


BOX = "┏┃┡│├└┓┩┤┘━─"


def fits(output: str, columns: int = 80) -> bool:
    """No line is wider than the terminal, no table is cropped (each closes with its border) or cut (…)."""
    lines = output.splitlines()
    closed = all(line.rstrip()[-1] in BOX for line in lines if line and line[0] in BOX)
    return closed and max(len(line) for line in lines) <= columns and "…" not in output


def table_columns(output: str) -> list[str]:
    """Each column of a rich table's body, its cells' lines joined with spaces (a wrapped label reads whole)."""
    columns: list[list[str]] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = line.split("│")[1:-1]
        columns += [[] for _ in range(len(cells) - len(columns))]
        for column, cell in zip(columns, cells, strict=False):
            column.append(cell.strip())
    return [" ".join(" ".join(column).split()) for column in columns]


# ---- flag labels, 80 columns, decimals --------------------------------------------------------------


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_rankings_show_flag_labels_in_the_language_and_fit_80_columns(served: Served, lang: str) -> None:
    result = served.civicscore("rankings", Q.id, "--block", "departments", "--lang", lang, columns=80)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert unicodedata.is_normalized("NFC", out)
    assert fits(out), out
    *_, grades, on_time, flags = table_columns(out)
    labels = labels_of(served)
    pick = 1 if lang == "en" else 0
    for flag in ("praise", "commendation_candidate", "criticism"):
        assert labels[flag][pick] in flags, (flag, flags)
        assert flag not in flags.replace(labels[flag][pick], "")  # the label, not the id
    with served.server.client() as client:
        snv = client.get_evaluation(Q.id, "SNV")
        stp = client.get_evaluation(Q.id, "STP")
        ranked = {e.unit: e for e in client.list_rankings(Q.id, "departments")}
    assert (snv.grade_label_en if lang == "en" else snv.grade_label_vi) in grades, grades
    score = stp.score_display if lang == "en" else stp.score_display.replace(".", ",")
    assert "." in stp.score_display and score in out
    rate = f"{ranked['units/STP'].timeliness * 100:.1f}%"
    assert (rate if lang == "en" else rate.replace(".", ",")) in on_time.split()
    if lang == "vi":
        assert "Đề nghị khen thưởng" in flags and "Hoàn thành xuất sắc nhiệm vụ" in grades
        assert "Văn phòng Ủy ban nhân dân Thành phố" in " ".join(table_columns(out))


def test_show_groups_the_rules_that_fired_with_labels_and_decimals(served: Served) -> None:
    with served.server.client() as client:
        stp = client.get_evaluation(Q.id, "STP")
    firings: dict[str, int] = {}
    for rule in stp.fired_rules:
        firings[rule.rule_id] = firings.get(rule.rule_id, 0) + 1
    assert max(firings.values()) >= 3  # a rule fired on each open task: the case to group

    vi = served.civicscore("show", "STP", "--period", Q.id)
    assert vi.exit_code == 0, vi.output
    out = vi.stdout
    assert f"Quy tắc đã áp dụng ({len(firings)} quy tắc, {len(stp.fired_rules)} lần)" in out
    for rule_id, times in firings.items():
        assert out.count(rule_id) == 1, rule_id  # one row per rule
        row = next(line for line in out.splitlines() if rule_id in line)
        assert f"│ {times:>{len('Số lần')}} │" in row or f" {times} │" in row, row
    labels = labels_of(served)
    assert f"Cờ đề xuất: {', '.join(labels[f][0] for f in stp.flags)}" in out
    assert f"Điểm: {stp.score_display.replace('.', ',')}" in out
    assert HANOI_TIME.search(out) and "UTC" not in out

    narrow = served.civicscore("show", "STP", "--period", Q.id, columns=80)
    assert narrow.exit_code == 0 and fits(narrow.stdout), narrow.stdout

    en = served.civicscore("show", "STP", "--period", Q.id, "--lang", "en")
    assert en.exit_code == 0, en.output
    assert f"Rules that fired ({len(firings)} rules, {len(stp.fired_rules)} times)" in en.stdout
    assert f"Flags: {', '.join(labels[f][1] for f in stp.flags)}" in en.stdout
    assert f"Score: {stp.score_display}" in en.stdout


def test_json_stays_machine_format(served: Served) -> None:
    rankings = served.civicscore("--json", "rankings", Q.id, "--block", "departments", "--lang", "vi")
    assert rankings.exit_code == 0, rankings.output
    entries = json.loads(rankings.stdout)["departments"]
    snv = next(e for e in entries if e["unit"] == "units/SNV")
    assert isinstance(snv["score"], float) and snv["score_display"] == "100.00" and snv["timeliness"] == 1.0
    assert {label["flag"] for label in snv["flag_labels"]} == set(snv["flags"])
    recommendations = served.civicscore("--json", "recommendations", Q.id, "--lang", "vi")
    assert recommendations.exit_code == 0, recommendations.output
    created = json.loads(recommendations.stdout)[0]["create_time"]
    assert created.endswith("Z") and dt.datetime.fromisoformat(created)


# ---- the name review takes, and Hanoi time ----------------------------------------------------------


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_recommendations_show_the_name_review_takes(served: Served, lang: str) -> None:
    listed = served.civicscore("recommendations", Q.id, "--unit", "STP", "--lang", lang, columns=80)
    assert listed.exit_code == 0, listed.output
    assert fits(listed.stdout), listed.stdout
    names = re.findall(r"^(\d{4}-Q[1-4]/[A-Z0-9-]+~[a-z_]+)$", listed.stdout, re.MULTILINE)
    assert f"{Q.id}/STP~criticism" in names, listed.stdout
    label = labels_of(served)["criticism"][1 if lang == "en" else 0]
    assert label in listed.stdout

    reason = f"Chờ giải trình ({lang})"
    decided = served.civicscore("review", "defer", f"{Q.id}/STP~criticism", "--reason", reason)
    assert decided.exit_code == 0, decided.output
    assert f"{Q.id}/STP~criticism" in decided.stdout and HANOI_TIME.search(decided.stdout), decided.stdout

    with served.server.client() as client:
        stored = next(r for r in client.list_recommendations(Q.id, unit="STP") if r.flag == "criticism")
    assert stored.last_decision_reason == reason
    when = stored.last_decision_time.ToDatetime(tzinfo=dt.UTC).astimezone(HANOI).strftime("%Y-%m-%d %H:%M:%S")
    again = served.civicscore("recommendations", Q.id, "--unit", "STP", "--lang", lang, columns=80)
    assert f"{when} +07" in " ".join(again.stdout.split()), again.stdout
    assert reason in " ".join(again.stdout.split())


# ---- watch starts at the head -----------------------------------------------------------------------


class Watching:
    """`civicscore watch` as a person runs it, in a process of its own; Ctrl-C ends it."""

    def __init__(self, served: Served, tmp_path: Path, *args: str) -> None:
        self.err = tmp_path / f"watch-{len(list(tmp_path.iterdir()))}.err"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "civicscore_client.cli", "--server", served.server.address, "watch", *args],
            stdout=subprocess.PIPE, stderr=self.err.open("w"), text=True, encoding="utf-8",
            env={**ServerProcess._env(), "CIVICSCORE_TOKEN": served.server.token, "COLUMNS": "250",
                 "NO_COLOR": "1"})
        self.lines: list[str] = []
        self._reading = threading.Thread(target=self._read, daemon=True)
        self._reading.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        self.lines.extend(iter(self.process.stdout.readline, ""))

    def stderr(self) -> str:
        return " ".join(self.err.read_text(encoding="utf-8").split())

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        self._reading.join(timeout=60)
        return code


def backlog(served: Served) -> list[evaluations_pb2.Recommendation]:
    """Every change in the log so far (its recommendations), read from the first."""
    with served.server.client() as client:
        watch = client.watch_recommendations(resume=False)
        changes = []
        for message in watch:
            if message.caught_up:
                break
            changes.append(message.change.recommendation)
        watch.cancel()
    return changes


def test_watch_starts_at_the_head_and_from_0_replays(served: Served, tmp_path: Path) -> None:
    history = backlog(served)
    assert len(history) >= 4  # the evaluations raised recommendations
    head = Watching(served, tmp_path)
    try:
        assert eventually(lambda: "starting at cursor" in head.stderr() or "bắt đầu từ con trỏ" in head.stderr(),
                          timeout_s=60), head.stderr()
        with served.server.client() as committee:
            committee.review_recommendation(f"{Q.id}/SNV~praise", "approve", "Đúng hạn cả quý")
        assert eventually(lambda: len(head.lines) >= 1, timeout_s=60), head.stderr()
    finally:
        assert head.stop() == 0, head.stderr()
    assert len(head.lines) == 1, head.lines  # the new change only, not the history
    line = head.lines[0]
    label = labels_of(served)["praise"][0]
    assert f"{Q.id}/SNV~praise" in line and f"({label}, Sở Nội vụ)" in line and "reviewed" in line, line
    assert HANOI_TIME.search(line) and "Z " not in line, line

    replay = Watching(served, tmp_path, "--from", "0", "--lang", "en")
    try:
        assert eventually(lambda: "caught up at cursor" in replay.stderr(), timeout_s=60), replay.stderr()
        assert eventually(lambda: len(replay.lines) >= len(history) + 1, timeout_s=30)
    finally:
        assert replay.stop() == 0, replay.stderr()
    assert len(replay.lines) == len(history) + 1
    assert all(HANOI_TIME.search(printed) for printed in replay.lines)
    praise_en = labels_of(served)["praise"][1]
    assert f"({praise_en}, Sở Nội vụ)" in replay.lines[-1]
