"""`civicscore rules check` and `rules test`, the policy staff's tools, run for real on copies of
rules/ with one defect each: the exit code, the file:line:col and a message that says what to do."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from civicscore.engine.port import EngineError
from civicscore.rulesets import checking as check_module
from civicscore.rulesets.checking import check_ruleset_files

RULES = Path(__file__).resolve().parents[1] / "rules"
CIVICSCORE = Path(sys.executable).with_name("civicscore")


def civicscore(*args: str) -> Result:
    """Run the CLI in this process (engine workers are still real spawned processes)."""
    from civicscore_client.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250", "NO_COLOR": "1"})


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    """A copy of rules/ (rule files, tests/ and schema/) to break."""
    return Path(shutil.copytree(RULES, tmp_path / "rules"))


def edit(folder: Path, file: str, old: str, new: str) -> None:
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_rules(folder: Path, *texts: str) -> None:
    path = folder / "flags.yaml"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n" + "".join(texts), encoding="utf-8")


def rule(rule_id: str, when: str, *, fact: str = "unit", flag: str = "reminder", extra: str = "") -> str:
    return (
        f"\n  - id: {rule_id}\n    fact: {fact}\n    flag: {flag}\n{extra}    when: {when}\n"
        '    reason: {vi: "Lý do", en: "Reason"}\n'
    )


def at(folder: Path, file: str, needle: str, *, nth: int = 1) -> str:
    """`file:line:col` of the nth occurrence of `needle` (nth=-1: the last)."""
    text = (folder / file).read_text(encoding="utf-8")
    index = text.rindex(needle) if nth == -1 else -1
    for _ in range(max(nth, 0)):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return f"{file}:{line}:{index - (text.rfind(chr(10), 0, index) + 1) + 1}"


def refused(folder: Path) -> list[str]:
    """Run `rules check` on a broken folder: exit 1, a summary, and the issue lines."""
    result = civicscore("rules", "check", str(folder))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert re.fullmatch(r".*: \d+ problems? in \d+ files? \(checked on this machine\); fix them .*", lines[-1])
    return lines[:-1]


def only_issue(folder: Path) -> str:
    lines = refused(folder)
    assert len(lines) == 1, lines
    return lines[0]


# ---- a clean folder ---------------------------------------------------------------------------


def test_the_default_rules_pass_the_real_command() -> None:
    """The installed `civicscore` script, as policy staff run it from the repository."""
    done = subprocess.run(
        [str(CIVICSCORE), "rules", "check", str(RULES)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no problems: ruleset hanoi-default version 2026.1, 20 rules" in done.stdout
    assert "test-loaded on this machine" in done.stdout


def test_json_output_lists_issues(rules: Path) -> None:
    clean = civicscore("--json", "rules", "check", str(rules))
    assert clean.exit_code == 0 and '"valid": true' in clean.output and '"digest": "' in clean.output
    edit(rules, "scoring.yaml", "    weight: 6\n", "    weight: six\n")
    broken = civicscore("--json", "rules", "check", str(rules))
    assert broken.exit_code == 1
    assert '"valid": false' in broken.output and '"file": "scoring.yaml"' in broken.output


def test_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = civicscore("rules", "check", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "is not a folder of rule files" in result.output
    assert civicscore("rules", "test", str(tmp_path / "nowhere")).exit_code == 2


def test_without_the_server_package_check_says_to_use_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "civicscore.rulesets.checking", None)  # makes the import fail
    result = civicscore("rules", "check", str(RULES))
    assert result.exit_code == 2
    assert "server package cannot be imported" in result.output and "--remote" in result.output


def test_remote_check_reports_an_unreachable_server() -> None:
    result = civicscore("--server", "127.0.0.1:1", "--timeout", "1", "rules", "check", "--remote", str(RULES))
    assert result.exit_code == 1 and "cannot reach civicscore at 127.0.0.1:1" in result.output


# ---- each mistake a policy person can make ------------------------------------------------------


def test_unknown_key_suggests_the_right_one(rules: Path) -> None:
    edit(rules, "flags.yaml", "    kind: criticism\n    level: 2\n", "    kind: criticism\n    levle: 2\n")
    lines = refused(rules)
    assert f"{at(rules, 'flags.yaml', 'levle')}: unknown key `levle` in a flag; did you mean `level`?" in lines
    assert any("missing `level`" in line for line in lines)


def test_type_error_says_what_was_expected(rules: Path) -> None:
    edit(rules, "grades.yaml", "min_score: 70", "min_score: seventy")
    issue = only_issue(rules)
    assert issue.startswith(f"{at(rules, 'grades.yaml', 'seventy')}: ")
    assert "`min_score` of grade `good` must be a number, e.g. `min_score: 90`, found text 'seventy'" in issue


def test_unknown_indicator(rules: Path) -> None:
    when = 'indicator == "dx.online_aplications" and attainment < 0.5'
    add_rules(rules, rule("low-online", when, fact="measurement"))
    issue = only_issue(rules)
    assert issue.startswith(at(rules, "flags.yaml", '"dx.online_aplications"') + ": ")
    assert "unknown indicator 'dx.online_aplications'" in issue and "did you mean `dx.online_applications`?" in issue


def test_unknown_fact_field(rules: Path) -> None:
    edit(rules, "flags.yaml", "when: days_overdue > max_days", "when: days_overdu > max_days")
    issue = only_issue(rules)
    assert issue == (
        f"{at(rules, 'flags.yaml', 'days_overdu >')}: in rule `reminder-long-overdue`: unknown field "
        "`days_overdu` for overdue facts; did you mean `days_overdue`?"
    )


def test_missing_translation(rules: Path) -> None:
    edit(rules, "flags.yaml", '      en: "Criticised two quarters running"\n', "")
    issue = only_issue(rules)
    assert issue.startswith(at(rules, "flags.yaml", 'vi: "Bị phê bình') + ": ")
    assert "the reason of rule `explanation-criticised-twice` is missing `en`; add it" in issue


def test_a_translation_must_show_the_same_values(rules: Path) -> None:
    edit(rules, "flags.yaml", 'en: "Score {score} is below {threshold}"', 'en: "Score is below {threshold}"')
    issue = only_issue(rules)
    assert issue.startswith(at(rules, "flags.yaml", '"Score is below') + ": ")
    assert "the en reason of rule `explanation-low-score` does not show {score}, which the vi reason shows" in issue


def test_duplicate_rule_id(rules: Path) -> None:
    add_rules(rules, rule("reminder-low-timeliness", "due > 100"))
    issue = only_issue(rules)
    first = at(rules, "flags.yaml", "id: reminder-low-timeliness").rsplit(":", 1)[0]
    assert issue.startswith(f"{at(rules, 'flags.yaml', 'id: reminder-low-timeliness', nth=2)}: ")
    assert f"rule id `reminder-low-timeliness` is already used at {first}; ids must be unique" in issue


def test_contradictory_thresholds(rules: Path) -> None:
    add_rules(rules, rule("never", "timeliness < 0.5 and timeliness > 0.8"))
    issue = only_issue(rules)
    assert issue == (
        f"{at(rules, 'flags.yaml', 'timeliness > 0.8')}: in rule `never`: `timeliness < 0.5` and "
        "`timeliness > 0.8` can never both be true, so the condition can never be true; "
        "check the numbers and the direction of `<` / `>`"
    )


def test_a_rate_compared_with_a_number_above_1(rules: Path) -> None:
    edit(rules, "flags.yaml", "params: {threshold: 0.9}", "params: {threshold: 1.5}")
    issue = only_issue(rules)
    assert issue == (
        f"{at(rules, 'flags.yaml', 'timeliness < threshold')}: in rule `reminder-low-timeliness`: "
        "`timeliness < threshold` (`threshold` is 1.5) is always true: `timeliness` is a ratio between 0 and 1 "
        "(80% is written 0.8); write a percentage as a ratio, e.g. 0.8 for 80%"
    )


def test_a_grade_band_that_cannot_be_reached(rules: Path) -> None:
    edit(rules, "grades.yaml", "min_score: 90", "min_score: 105")
    issue = only_issue(rules)
    assert issue.startswith(f"{at(rules, 'grades.yaml', '105')}: grade `excellent` can never be given")
    assert "the highest score is 100 (`task_points` + `dx_points`); lower its `min_score`" in issue


def test_escalation_levels_with_inverted_thresholds(rules: Path) -> None:
    edit(rules, "flags.yaml", "params: {threshold: 0.8}", "params: {threshold: 0.95}")
    issue = only_issue(rules)
    assert issue.startswith(f"{at(rules, 'flags.yaml', 'id: criticism-low-timeliness')}: ")
    assert "the thresholds of `reminder` (level 1) and `criticism` (level 2) are inverted" in issue
    assert "swap the two numbers" in issue


def test_commendation_while_under_review(rules: Path) -> None:
    edit(rules, "flags.yaml", "when: not under_review and due >= min_due", "when: due >= min_due")
    issue = only_issue(rules)
    assert issue.startswith(f"{at(rules, 'flags.yaml', 'id: praise-all-on-time')}: rule `praise-all-on-time` ")
    assert "(Decree 98/2023/NĐ-CP, Art. 4); start its condition with `not under_review and`" in issue


# ---- the durable_rules hazards (DESIGN §4), refused before any engine sees them ---------------


def test_more_than_64_rules_matching_one_fact(rules: Path) -> None:
    add_rules(rules, *(rule(f"many-{i}", f"due > {i}") for i in range(70)))
    issue = only_issue(rules)
    assert issue.startswith(f"{at(rules, 'flags.yaml', 'id: many-59')}: with rule `many-59`, up to 65 ")
    assert "durable_rules fails past 64 (error 303)" in issue


def test_513_distinct_equality_values(rules: Path) -> None:
    # 9 rules x 57 codes = 513 values: durable_rules would hang at 512; refused from 257 on
    codes = [" or ".join(f'unit_code == "U{n}-{i}"' for i in range(57)) for n in range(9)]
    add_rules(rules, *(rule(f"codes-{n}", when) for n, when in enumerate(codes)))
    issue = only_issue(rules)
    assert issue.startswith(f"{at(rules, 'flags.yaml', 'id: codes-4')}: with rule `codes-4`")
    assert "more than 256 distinct values (most on `unit_code`); durable_rules hangs at 512" in issue


def test_a_condition_of_only_absence_tests(rules: Path) -> None:
    add_rules(rules, rule("no-score", "score is missing"))
    issue = only_issue(rules)
    assert issue.startswith(f"{at(rules, 'flags.yaml', 'score is missing')}: in rule `no-score`: ")
    assert "bare `$nex` test, which makes durable_rules loop forever" in issue


def test_an_alternative_of_only_absence_tests(rules: Path) -> None:
    add_rules(rules, rule("half", "due > 3 or previous_grade is missing"))
    issue = only_issue(rules)
    assert issue.startswith(f"{at(rules, 'flags.yaml', 'previous_grade is missing')}: ")
    assert "only of `is missing` tests" in issue


def test_or_alternatives_beyond_64(rules: Path) -> None:
    add_rules(rules, rule("wide", " and ".join(f"(due > {i} or late > {i})" for i in range(7))))
    issue = only_issue(rules)
    assert "more than 64 alternatives once its `or`s are multiplied out" in issue and "split the rule" in issue


def test_rules_cannot_join_facts(rules: Path) -> None:
    # Joins (durable_rules caps them at 16 facts) cannot be written: a rule looks at one fact.
    add_rules(rules, rule("join", "due > 1", fact="[unit, overdue]"))
    issue = only_issue(rules)
    assert "the fact of rule `join` must be text, e.g. `fact: unit`, found a list" in issue


# ---- the test-load in a throwaway engine process ----------------------------------------------


def test_check_ruleset_files_reports_a_test_load_that_times_out() -> None:
    files = {path.name: path.read_text(encoding="utf-8") for path in RULES.glob("*.yaml")}
    outcome = check_ruleset_files(files, timeout_s=0.001)
    assert outcome.ruleset is None and not outcome.valid
    [issue] = outcome.issues
    assert (issue.file, issue.line, issue.column) == ("ruleset.yaml", 0, 0)
    assert "did not finish within 0.001 s" in issue.message and "nothing was changed" in issue.message


def test_check_ruleset_files_reports_a_failed_test_load(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __init__(self, *_args: object, **_kwargs: object) -> None:
            raise EngineError("an engine worker could not load the ruleset: rule `praise-all-on-time`: error 303")

    monkeypatch.setattr(check_module, "EnginePool", Broken)
    files = {path.name: path.read_text(encoding="utf-8") for path in RULES.glob("*.yaml")}
    [issue] = check_ruleset_files(files).issues
    assert (issue.file, issue.line) == ("flags.yaml", 0)  # the file of the rule the error names
    assert "failed to load or run them in a test (EngineError: an engine worker" in issue.message


def test_check_ruleset_files_gives_the_ruleset_when_clean() -> None:
    files = {path.name: path.read_text(encoding="utf-8") for path in RULES.glob("*.yaml")}
    outcome = check_ruleset_files(files)
    assert outcome.valid and outcome.issues == [] and outcome.ruleset is not None
    assert outcome.ruleset.rule_count == 20


# ---- rules test --------------------------------------------------------------------------------


WRONG_CASE = """\
cases:
  - name: wrong-on-purpose
    # the timeliness-72.5 figures (82.06, good, reminder and criticism) with a wrong expectation
    unit: {code: SNV, kind: department, block: departments}
    period: 2026-Q1
    counts: {due: 20, completed: 16, on_time: 10, late: 6, reworked: 2}
    expect:
      score: 72.5
      grade: good
      flags: [criticism, explanation_required]
      not_fired: [reminder-low-timeliness]
  - name: right-on-purpose
    counts: {due: 5, completed: 5, on_time: 5}
    expect: {score: 100.0, grade: excellent, flags: [praise]}
"""


def test_rules_test_passes_on_the_default_rules() -> None:
    result = civicscore("rules", "test", str(RULES))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "PASS perfect-department-no-dx" in lines and "PASS score-exactly-70-good" in lines
    coverage = r"coverage over \d+ cases: 20/20 rules fired and stayed silent, (\d+)/\1 thresholds"
    assert re.search(coverage, result.output)
    assert re.fullmatch(r"\d+ passed, 0 failed", lines[-1])


def test_rules_test_shows_what_differs(rules: Path) -> None:
    (rules / "tests" / "wrong.yaml").write_text(WRONG_CASE, encoding="utf-8")
    result = civicscore("rules", "test", str(rules), "-k", "on-purpose")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "FAIL wrong-on-purpose (tests/wrong.yaml:2)" in lines
    assert "  score: expected 72.5, got 82.06" in lines
    assert "  flags: missing explanation_required; unexpected reminder" in lines
    not_fired = "  not_fired: reminder-low-timeliness fired (unit: On-time rate 72.5% is below the 90% threshold)"
    assert not_fired in lines
    assert "  rules that fired: grade.good, reminder-low-timeliness, criticism-low-timeliness" in lines
    assert "PASS right-on-purpose" in lines and lines[-1] == "1 passed, 1 failed"
    assert "rule never fired: commendation-excellent-twice" in result.output  # coverage of the 2 cases run


def test_rules_test_json_and_one_case_file(rules: Path) -> None:
    case_file = rules / "tests" / "wrong.yaml"
    case_file.write_text(WRONG_CASE, encoding="utf-8")
    result = civicscore("--json", "rules", "test", str(rules), "--cases", str(case_file))
    assert result.exit_code == 1
    assert '"failed": 1' in result.output
    assert '"differences": [\n        "score: expected 72.5, got 82.06"' in result.output


def test_malformed_case_files_name_file_line_and_case(rules: Path) -> None:
    edit(rules, "tests/default_cases.yaml", "counts: {due: 10, completed: 10, on_time: 6, late: 4}\n",
         "cunts: {due: 10, completed: 10, on_time: 6, late: 4}\n")
    edit(rules, "tests/default_cases.yaml", "grade: not_completed", "grade: not_complete")
    result = civicscore("rules", "test", str(rules))
    assert result.exit_code == 1
    name = "tests/default_cases.yaml"
    assert (
        f"{at(rules, name, 'cunts')}: unknown key `cunts` in case `timeliness-exactly-90-no-reminder`; "
        "did you mean `counts`?"
    ) in result.output
    assert (
        f"{at(rules, name, 'not_complete')}: unknown grade `not_complete` in the expected grade of case "
        "`score-below-50-explanation-required`; did you mean `not_completed`?"
    ) in result.output
    assert "the case files have problems; no case was run" in result.output


def test_rules_test_usage_problems(rules: Path) -> None:
    nothing = civicscore("rules", "test", str(rules), "-k", "no-such-case")
    assert nothing.exit_code == 2 and "no case name contains 'no-such-case'" in nothing.output
    shutil.rmtree(rules / "tests")
    missing = civicscore("rules", "test", str(rules))
    assert missing.exit_code == 2 and "give --cases FILE" in missing.output


def test_rules_test_refuses_broken_rule_files(rules: Path) -> None:
    edit(rules, "scoring.yaml", "    weight: 6\n", "    weight: six\n")
    result = civicscore("rules", "test", str(rules))
    assert result.exit_code == 1 and "the rule files have problems; no case was run" in result.output
    assert f"{at(rules, 'scoring.yaml', 'six')}: the weight of indicator" in result.output
