"""`civicscore rules simulate|activate|rollback|status|history|show` against the real server.

The quarter is tests/scenario.py's 2026-Q3 (SNV all on time, STP late with open overdue tasks, SCT too
few tasks due), evaluated with the default rules before each test. Candidates are copies of rules/ in
tmp_path: the repository's rules folder is never written.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from civicscore.ruleset import RulesetInvalid, load_ruleset
from civicscore_api.v1 import evaluations_pb2
from civicscore_client import InvalidArgument
from civicscore_client._rulesets import read_rules_folder
from civicscore_client.cli import app
from tests.scenario import PERIOD, load_quarter
from tests.serverproc import RULES, ServerProcess, token_for

pytestmark = pytest.mark.slow


def civicscore(address: str, *args: str) -> Result:
    """Run the command in-process, with a wide terminal so tables never split a name."""
    return CliRunner().invoke(app, ["--server", address, *args], env={"COLUMNS": "250", "NO_COLOR": "1",
                                                                    "CIVICSCORE_TOKEN": token_for(address)})


def ok(address: str, *args: str) -> str:
    result = civicscore(address, *args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.stdout


def as_json(address: str, *args: str) -> Any:
    return json.loads(ok(address, "--json", *args))


def rules_copy(tmp_path: Path, name: str, *edits: tuple[str, str, str]) -> Path:
    """A copy of rules/ with each `(file, old, new)` edit made (`old` must occur in the file)."""
    folder = tmp_path / name
    shutil.copytree(RULES, folder)
    for file, old, new in edits:
        path = folder / file
        text = path.read_text(encoding="utf-8")
        assert old in text, (file, old)
        path.write_text(text.replace(old, new), encoding="utf-8")
    return folder


def candidate(tmp_path: Path) -> Path:
    """Version 2026.2: praise from 20 tasks due (SNV has 10: loses it), an explanation below 80 points
    (STP's 79.06: gains it) and "good" from 80 points (STP: good → completed)."""
    return rules_copy(
        tmp_path, "candidate",
        ("ruleset.yaml", 'version: "2026.1"', 'version: "2026.2"'),
        ("flags.yaml", "params: {min_due: 5}", "params: {min_due: 20}"),
        ("flags.yaml", "flag: explanation_required\n    params: {threshold: 50}",
         "flag: explanation_required\n    params: {threshold: 80}"),
        ("grades.yaml", "min_score: 70", "min_score: 80"),
    )


def broken(tmp_path: Path) -> Path:
    """Two misspelt fields in flags.yaml and a grade floor written in words."""
    return rules_copy(
        tmp_path, "broken",
        ("flags.yaml", "timeliness < threshold", "timelines < threshold"),
        ("grades.yaml", "min_score: 50", "min_score: fifty"),
    )


def expected_issues(folder: Path) -> list[str]:
    """Every `file:line:column: message` the checker finds in a folder, computed here in the test."""
    with pytest.raises(RulesetInvalid) as refused:
        load_ruleset(read_rules_folder(folder))
    return [str(issue) for issue in refused.value.issues]


@pytest.fixture
def quarter(seeded_server: ServerProcess) -> ServerProcess:
    load_quarter(seeded_server)
    seeded_server.stubs().evaluations.EvaluatePeriod(
        evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{PERIOD}"), timeout=120)
    return seeded_server


def line_of(text: str, needle: str) -> int:
    """Index of the first line containing `needle`."""
    return next(index for index, line in enumerate(text.splitlines()) if needle in line)


# ---- simulate -------------------------------------------------------------------------------------


def test_simulate_prints_the_summary_then_each_changed_unit(quarter: ServerProcess, tmp_path: Path) -> None:
    out = ok(quarter.address, "rules", "simulate", str(candidate(tmp_path)), "--period", PERIOD, "--changed-only")

    assert f"Simulation of {PERIOD}" in out and "2026.2" in out and "2026.1" in out
    assert "Nothing was stored or activated." in out
    assert re.search(r"units evaluated\s+141\n", out)
    assert re.search(r"units changing grade\s+1\n", out)
    assert re.search(r"units changing score\s+0\n", out)
    assert re.search(r"flags added\s+1\n", out) and re.search(r"flags removed\s+1\n", out)
    # the summary, the per-flag and per-grade tables, then the units
    assert line_of(out, "units changing grade") < line_of(out, "Flags 2026-Q3") < line_of(out, "Grade changes")
    assert line_of(out, "Grade changes") < line_of(out, "Units 2026-Q3")
    # commendations first, then criticisms
    assert line_of(out, "│ praise ") < line_of(out, "│ explanation_required ")
    praise = out.splitlines()[line_of(out, "│ praise ")]
    assert "Biểu dương / Praise" in praise and re.search(r"│\s+0\s+│\s+1\s+│$", praise)
    explanation = out.splitlines()[line_of(out, "│ explanation_required ")]
    assert "Yêu cầu giải trình / Explanation required" in explanation
    assert re.search(r"│\s+1\s+│\s+0\s+│$", explanation)
    grade_row = out.splitlines()[line_of(out, "│ good ")]
    assert re.search(r"│ good\s+│ completed\s+│\s+1 │$", grade_row)

    rows = [line for line in out.splitlines() if re.match(r"^│ [A-Z0-9_-]+ +│", line)]
    assert [row.split("│")[1].strip() for row in rows] == ["SNV", "STP"]  # changed units only, by code
    snv, stp = rows
    assert "Sở Nội vụ" in snv and "100.00" in snv and "excellent" in snv and "-praise" in snv
    assert "Sở Tư pháp" in stp  # the Vietnamese name intact
    assert "good → completed" in stp and "+explanation_required" in stp and "79.06" in stp


def test_simulate_limit_and_json(quarter: ServerProcess, tmp_path: Path) -> None:
    folder = str(candidate(tmp_path))
    out = ok(quarter.address, "rules", "simulate", folder, "--period", PERIOD, "--limit", "3")
    unit_rows = [line for line in out.splitlines() if re.match(r"^│ [A-Z0-9_-]+ +│", line)]
    assert len(unit_rows) == 3
    assert "… and 138 more units (use --limit 0 to list them all)." in out

    data = as_json(quarter.address, "rules", "simulate", folder, "--period", PERIOD, "--changed-only")
    assert data["period"] == PERIOD
    assert (data["units_evaluated"], data["units_changing_grade"], data["units_changing_score"]) == (141, 1, 0)
    assert (data["flags_added"], data["flags_removed"]) == (1, 1)
    assert data["candidate"]["version"] == "2026.2" and data["baseline"]["version"] == "2026.1"
    assert data["flag_changes"] == [{"flag": "praise", "added": 0, "removed": 1},
                                    {"flag": "explanation_required", "added": 1, "removed": 0}]
    assert data["grade_changes"] == [{"grade_before": "good", "grade_after": "completed", "units": 1}]
    assert [unit["unit"] for unit in data["units"]] == ["units/SNV", "units/STP"]
    snv, stp = data["units"]
    assert snv["flags_lost"] == ["praise"] and snv["flags_gained"] == [] and snv["score_delta"] == 0
    assert stp["unit_display_name_vi"] == "Sở Tư pháp"
    assert (stp["grade_before"], stp["grade_after"]) == ("good", "completed")
    assert stp["flags_gained"] == ["explanation_required"] and stp["score_before"] == stp["score_after"] == "79.06"


def test_simulating_the_rules_in_force_changes_nothing(quarter: ServerProcess) -> None:
    out = ok(quarter.address, "rules", "simulate", str(RULES), "--period", PERIOD, "--changed-only")
    assert "No unit changes" in out
    assert "Units 2026-Q3" not in out


def test_a_broken_candidate_lists_every_issue(quarter: ServerProcess, tmp_path: Path) -> None:
    folder = broken(tmp_path)
    issues = expected_issues(folder)
    assert len(issues) == 3

    simulated = civicscore(quarter.address, "rules", "simulate", str(folder), "--period", PERIOD)
    assert simulated.exit_code == 1, simulated.output
    assert simulated.stderr.startswith("error: the ruleset was refused: 3 problems")
    for issue in issues:
        assert f"  {issue}\n" in simulated.stderr
    assert "Traceback" not in simulated.output

    activated = civicscore(quarter.address, "rules", "activate", str(folder), "--reason", "thử")
    assert activated.exit_code == 1, activated.output
    for issue in issues:
        assert f"  {issue}\n" in activated.stderr
    dry = civicscore(quarter.address, "rules", "activate", str(folder), "--dry-run")
    assert dry.exit_code == 1 and all(issue in dry.stderr for issue in issues)

    status = ok(quarter.address, "rules", "status")
    assert "In force now: hanoi-default 2026.1" in status
    assert "Last refused activation" in status and "3 problems" in status
    assert all(issue in status for issue in issues)


def test_every_issue_is_listed_even_beyond_what_an_error_can_carry(quarter: ServerProcess, tmp_path: Path) -> None:
    """60 problems do not fit in a gRPC error's trailer: the list comes from CheckRuleset instead."""
    folder = rules_copy(tmp_path, "many")
    extra = "".join(
        f"""
  - id: typo-{number}
    fact: unit
    flag: reminder
    when: assessable and timelines < 0.{number:02d}
    reason:
      vi: "Lỗi chính tả số {number}"
      en: "Typo number {number}"
"""
        for number in range(60)
    )
    with (folder / "flags.yaml").open("a", encoding="utf-8") as flags:
        flags.write(extra)
    issues = expected_issues(folder)
    assert len(issues) >= 60
    with quarter.client() as client, pytest.raises(InvalidArgument) as refused:
        client.activate_ruleset(read_rules_folder(folder), reason="thử")
    assert not refused.value.complete  # the error itself lists only the first ones

    result = civicscore(quarter.address, "rules", "activate", str(folder), "--reason", "thử")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: the ruleset was refused: {len(issues)} problems")
    listed = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert listed == issues


def test_missing_folder_or_reason_is_a_usage_error(quarter: ServerProcess, tmp_path: Path) -> None:
    missing = civicscore(quarter.address, "rules", "simulate", str(tmp_path / "nowhere"), "--period", PERIOD)
    assert missing.exit_code == 2 and "is not a folder of rule files" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = civicscore(quarter.address, "rules", "activate", str(empty), "--reason", "x")
    assert nothing.exit_code == 2 and "has no rule files" in nothing.stderr
    no_reason = civicscore(quarter.address, "rules", "activate", str(RULES))
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    no_reason = civicscore(quarter.address, "rules", "rollback")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr


# ---- activate, history, show, rollback -------------------------------------------------------------


def test_activate_history_show_and_rollback(quarter: ServerProcess, tmp_path: Path) -> None:
    address = quarter.address
    folder = str(candidate(tmp_path))
    status = ok(address, "rules", "status")
    assert "In force now: hanoi-default 2026.1" in status
    assert "No activation was refused since the server started." in status
    assert "In force by quarter" in status and "2025-Q3" in status

    dry = ok(address, "rules", "activate", folder, "--dry-run")
    assert "Valid" in dry and "Nothing was activated (--dry-run)." in dry
    assert "In force now: hanoi-default 2026.1" in ok(address, "rules", "status")

    activated = ok(address, "rules", "activate", folder, "--reason", "Quyết định 12/QĐ-BCĐ")
    assert "Activated hanoi-default 2026.2" in activated
    assert re.search(r"unchanged\s+no", activated)
    assert re.search(rf"quarters affected\s+{PERIOD}", activated)
    assert "Quyết định 12/QĐ-BCĐ" in activated
    new = as_json(address, "rules", "show")
    assert new["version"] == "2026.2"
    old_digest = next(a["digest"] for a in as_json(address, "rules", "history") if a["version"] == "2026.1")

    again = ok(address, "rules", "activate", folder, "--reason", "lần nữa")
    assert "Unchanged" in again and re.search(r"unchanged\s+yes", again)

    history = ok(address, "rules", "history")
    rows = [line for line in history.splitlines() if re.match(r"^│\s+\d+ │", line)]
    assert len(rows) >= 2
    assert "2026.2" in rows[0] and new["digest"][:12] in rows[0] and "rpc" in rows[0]
    assert "Quyết định 12/QĐ-BCĐ" in history

    shown = ok(address, "rules", "show", old_digest[:10], "--files")
    assert "hanoi-default version 2026.1" in shown and old_digest in shown
    assert "──── flags.yaml ────" in shown and 'version: "2026.1"' in shown
    assert "Hoàn thành xuất sắc nhiệm vụ" in shown  # file content printed as is

    wrong = civicscore(address, "rules", "rollback", "--reason", "nhầm", "--expected", old_digest)
    assert wrong.exit_code == 1 and wrong.stderr.startswith("error: ")
    rolled = ok(address, "rules", "rollback", "--reason", "Áp dụng nhầm", "--expected", new["digest"][:12])
    assert "Rolled back activation" in rolled and "2026.2" in rolled
    assert "In force now: hanoi-default 2026.1" in rolled
    undone = as_json(address, "rules", "history")[0]
    assert undone["rolled_back"] and undone["rollback_reason"] == "Áp dụng nhầm"
    assert "Áp dụng nhầm" in ok(address, "rules", "history")

    back = ok(address, "rules", "activate", "--version", new["digest"][:12], "--reason", "Áp dụng lại")
    assert "Activated hanoi-default 2026.2" in back
    status = as_json(address, "rules", "status")
    assert status["active"]["version"] == "2026.2"
    assert status["in_force"][-1]["digest"] == new["digest"]


def test_show_and_history_json(quarter: ServerProcess) -> None:
    active = as_json(quarter.address, "rules", "show")
    assert active["version"] == "2026.1" and len(active["digest"]) == 64 and active["files"] == []
    with_files = as_json(quarter.address, "rules", "show", active["digest"], "--files")
    assert {f["path"] for f in with_files["files"]} == set(read_rules_folder(RULES))
    history = as_json(quarter.address, "rules", "history")
    assert history and history[-1]["digest"] == active["digest"]
    unknown = civicscore(quarter.address, "rules", "show", "0" * 64)
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: ")
    no_prefix = civicscore(quarter.address, "rules", "show", "fffffffff")
    assert no_prefix.exit_code == 1 and "no ruleset digest starts with" in no_prefix.stderr
