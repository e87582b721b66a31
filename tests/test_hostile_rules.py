"""Hostile rule files (issue 11): the 342-byte YAML bomb, files too deep, with too many values or too
large, and checks that overrun their budget. Through the real server (CheckRuleset, ActivateRuleset,
the watched folder, start-up) and the real `civicscore` command, each is refused with file:line:col
and what to do; the server's memory stays flat and its other calls are served meanwhile."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner, Result

from civicscore.engine.port import EngineError, EvaluationCancelled
from civicscore.engine.sandbox import Budget, BudgetExceeded, run_budgeted
from civicscore.ruleset import RulesetInvalid, RulesetIssue, load_ruleset
from civicscore.ruleset.limits import MAX_FILE_BYTES
from civicscore.rulesets import read_rule_files
from civicscore_api.v1 import rulesets_pb2
from civicscore_client import CivicscoreError, DeadlineExceeded, InvalidArgument
from tests.serverproc import RULES, ServerProcess
from tests.waiting import eventually

pytestmark = pytest.mark.slow

CIVICSCORE = Path(sys.executable).with_name("civicscore")

# "Billion laughs": nine levels of aliases, 9**9 (387 million) strings once expanded.
BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
BOMB_FIRST = ("bomb.yaml:1:4: YAML anchors such as `&a` are not allowed in rule and case files: remove `&a` and "
              "write the value out in full wherever `*a` is used")
BOMB_ALIAS = ("bomb.yaml:2:8: YAML aliases such as `*a` are not allowed in rule and case files: write the value "
              "out in full here instead of `*a`")
# A file within every limit that takes the checker seconds to read: to hold a check while a test acts.
SLOW = "rules: [" + ", ".join(['"abcdefghij"'] * 70_000) + "]\n"
RSS_GROWTH_LIMIT_KIB = 50 * 1024


def default_files() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(RULES.glob("*.yaml"))}


def rules_with(tmp_path: Path, extra: dict[str, str], name: str = "rules") -> Path:
    """A copy of rules/ (with tests/) and the extra files written into it (names relative to it)."""
    folder = Path(shutil.copytree(RULES, tmp_path / name))
    for file, text in extra.items():
        (folder / file).write_text(text, encoding="utf-8")
    return folder


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def server_pid(server: ServerProcess) -> int:
    assert server.proc is not None
    return server.proc.pid


def checking_processes(server: ServerProcess) -> list[int]:
    """The server's budgeted checking processes: the children of its multiprocessing fork server."""
    found = []
    for pid in server.child_pids():
        with contextlib.suppress(FileNotFoundError):
            if b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
                found += [int(child) for child in out.stdout.split()]
    return found


def issue_lines(issues: list[rulesets_pb2.RulesetIssue]) -> list[str]:
    return [f"{i.file}:{i.line}:{i.column}: {i.message}" for i in issues]


def civicscore(*args: str) -> Result:
    """The CLI in this process (its checks still run in real child processes)."""
    from civicscore_client.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250", "NO_COLOR": "1"})


def assert_bomb_issues(lines: list[str]) -> None:
    """The bomb's first ten anchors and aliases, each where it is written; reading stops there."""
    assert lines[0] == BOMB_FIRST
    assert lines[2] == BOMB_ALIAS
    assert len(lines) == 10 and all(line.startswith("bomb.yaml:") for line in lines)
    assert lines[-1].endswith("(reading this file stopped after 10 such problems; there may be more)")


# ---- the bomb, every way in ---------------------------------------------------------------------


def test_check_ruleset_refuses_the_bomb_while_other_calls_are_served(seeded_server: ServerProcess) -> None:
    assert len(BOMB.encode()) == 342
    pid = server_pid(seeded_server)
    before = rss_kib(pid)
    served: list[str] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def read_units() -> None:  # another caller, on a connection of its own, within the rate limit
        with seeded_server.client() as other:
            while not done.wait(0.05):
                try:
                    served.append(other.get_unit("SNV", timeout=30).code)
                except CivicscoreError as error:
                    failures.append(error)

    reader = threading.Thread(target=read_units)
    reader.start()
    try:
        with seeded_server.client() as c:
            for _ in range(3):
                reply = c.check_ruleset({**default_files(), "bomb.yaml": BOMB}, timeout=60)
                assert not reply.valid and not reply.HasField("ruleset")
                assert_bomb_issues(issue_lines(list(reply.issues)))
            assert c.check_ruleset(default_files(), timeout=60).valid  # and the server checks as before
    finally:
        done.set()
        reader.join(60)
    assert served and set(served) == {"SNV"} and not failures
    assert rss_kib(pid) - before < RSS_GROWTH_LIMIT_KIB


def test_activate_and_simulate_refuse_the_bomb_and_the_ruleset_in_force_keeps_serving(server: ServerProcess) -> None:
    pid = server_pid(server)
    before = rss_kib(pid)
    with server.client() as c:
        active = c.get_ruleset_status().active.digest
        for validate_only in (True, False):
            with pytest.raises(InvalidArgument) as refused:
                c.activate_ruleset({**default_files(), "bomb.yaml": BOMB}, reason="bomb",
                                   validate_only=validate_only, timeout=60)
            assert refused.value.message.startswith("ruleset refused: 10 problems; the ruleset in force keeps serving")
            assert f"First: {BOMB_FIRST}" in refused.value.message
            first = refused.value.violations[0]
            assert (first.field, first.reason) == ("files.files[0].content", "RULESET_INVALID")  # bomb.yaml
            assert first.description == BOMB_FIRST
        status = c.get_ruleset_status()
        assert status.active.digest == active
        assert status.last_refused.source == "rpc"
        assert_bomb_issues(issue_lines(list(status.last_refused.issues)))
        assert len(list(c.list_ruleset_activations())) == 1
        # a what-if with the bomb as the candidate is refused the same way
        with pytest.raises(InvalidArgument) as refused:
            c.simulate_ruleset({**default_files(), "bomb.yaml": BOMB}, "2025-Q3", timeout=60)
        assert refused.value.violations[0].field == "files[0].content"
        assert refused.value.violations[0].description == BOMB_FIRST
    assert rss_kib(pid) - before < RSS_GROWTH_LIMIT_KIB


def test_the_bomb_dropped_into_the_watched_folder_is_refused_then_named_at_restart(tmp_path: Path) -> None:
    rules_dir = rules_with(tmp_path, {})
    server = ServerProcess(tmp_path, rules=rules_dir, watch_rules=True).start()
    try:
        pid = server_pid(server)
        before = rss_kib(pid)
        with server.client() as c:
            active = c.get_ruleset_status().active.digest
            (rules_dir / "bomb.yaml").write_text(BOMB, encoding="utf-8")
            assert eventually(lambda: c.get_ruleset_status().HasField("last_refused"))
            status = c.get_ruleset_status()
            assert (status.last_refused.source, status.active.digest) == ("rules-folder", active)
            assert_bomb_issues(issue_lines(list(status.last_refused.issues)))
        assert rss_kib(pid) - before < RSS_GROWTH_LIMIT_KIB

        # restarted with the bomb still there: the ruleset in force serves, the refusal is reported
        server.stop()
        server.start()
        with server.client() as c:
            status = c.get_ruleset_status()
            assert (status.last_refused.source, status.active.digest) == ("startup", active)
            assert issue_lines(list(status.last_refused.issues))[0] == BOMB_FIRST
    finally:
        server.stop()


def test_a_bomb_in_the_rules_folder_of_a_new_server_names_its_position(tmp_path: Path) -> None:
    rules_dir = rules_with(tmp_path, {"bomb.yaml": BOMB})
    with pytest.raises(RuntimeError, match="exited with 2") as failed:
        ServerProcess(tmp_path, rules=rules_dir).start()
    log = str(failed.value)
    assert f"cannot start: the rules folder {rules_dir} has 10 problem(s):\n  {BOMB_FIRST}" in log
    assert "MemoryError" not in log and "Traceback" not in log


def test_rules_check_refuses_the_bomb(tmp_path: Path) -> None:
    """The installed command, as policy staff run it."""
    folder = rules_with(tmp_path, {"bomb.yaml": BOMB})
    done = subprocess.run([str(CIVICSCORE), "rules", "check", str(folder)], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert_bomb_issues(lines[:-1])
    assert lines[-1] == (f"{folder}: 10 problems in 1 file (checked on this machine); fix them and run "
                         "`civicscore rules check` again")


# ---- the other limits ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "position", "message"), [
    ("rules:\n  - " + "[" * 40 + "]" * 40 + "\n", "2:35",
     "values are nested more than 32 levels deep here (rule files need about 6): check the indentation and the "
     "brackets `[` `{` above"),
    ("rules: [" + "1, " * 100_000 + "1]\n", f"1:{len('rules: [') + 3 * 99_997 + 1}",
     "the file has more than 100,000 values (keys, list items and texts), the most a rule file or case file may "
     "have: split it into smaller files"),
    ("# " + "x" * MAX_FILE_BYTES + "\n", "1:1",
     "extra.yaml is larger than 1 MiB (1,048,576 bytes), the most a rule file or case file may be; nothing in it "
     "was read: split it into smaller files"),
], ids=["too-deep", "too-many-values", "too-large"])
def test_rules_check_refuses_a_file_beyond_the_limits(tmp_path: Path, text: str, position: str, message: str) -> None:
    folder = rules_with(tmp_path, {"extra.yaml": text})
    result = civicscore("rules", "check", str(folder))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[0] == f"extra.yaml:{position}: {message}"


def rule(rule_id: str, condition: str) -> str:
    return (f"\n  - id: {rule_id}\n    fact: unit\n    flag: reminder\n    when: {condition}\n"
            "    reason: {vi: \"Lý do\", en: \"Reason\"}\n")


def test_rules_check_names_numbers_the_engine_cannot_read(tmp_path: Path) -> None:
    # durable_rules refuses 2e-05 as JSON writes it: loading the ruleset failed with "error code 204"
    flags = (RULES / "flags.yaml").read_text(encoding="utf-8")
    folder = rules_with(tmp_path, {"flags.yaml": flags + rule("tiny", "timeliness < 0.00002 or completion < 0.00003")})
    result = civicscore("rules", "check", str(folder))
    assert result.exit_code == 1, result.output
    line = len(flags.splitlines()) + 2
    advice = ("the rules engine cannot read a number under 0.0001 or from 10^16 up in a condition (error 204); "
              "compare with 0, or with a number from 0.0001 up to 10^16")
    assert result.output.splitlines()[:-1] == [
        f"flags.yaml:{line}:5: rule `tiny` compares `completion` with 3e-05: {advice}",
        f"flags.yaml:{line}:5: rule `tiny` compares `timeliness` with 2e-05: {advice}",
    ]
    # 0.0001 is written as such, and is read: the rule loads and fires
    files = default_files()
    files["flags.yaml"] += rule("small", "timeliness < 0.0001")
    from civicscore.engine.durable_adapter import DurableRunner

    runner = DurableRunner(load_ruleset(files).compile())
    runner.begin()
    assert "small" in runner.assert_fact({"tag": "unit.flags", "timeliness": 0.00005})
    assert "small" not in runner.assert_fact({"tag": "unit.flags", "timeliness": 0.0001})
    runner.end()


def test_an_alias_in_a_case_file_is_refused_and_no_case_runs(tmp_path: Path) -> None:
    case = ("defaults: &unit {unit: {code: SNV, kind: department, block: departments}}\n"
            "cases:\n  - name: aliased\n    counts: {due: 5, completed: 5, on_time: 5}\n"
            "    expect: {grade: excellent}\n  - *unit\n")
    folder = rules_with(tmp_path, {"tests/aliased.yaml": case})
    result = civicscore("rules", "test", str(folder))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [
        "tests/aliased.yaml:1:11: YAML anchors such as `&unit` are not allowed in rule and case files: remove "
        "`&unit` and write the value out in full wherever `*unit` is used",
        "tests/aliased.yaml:6:5: YAML aliases such as `*unit` are not allowed in rule and case files: write the "
        "value out in full here instead of `*unit`",
    ]
    assert "the case files have problems; no case was run" in result.output
    assert "PASS" not in result.output


# Every case of the default case file (its `- name:` lines), so that a case added there needs no edit here.
DEFAULT_CASES = sum(1 for line in (RULES / "tests" / "default_cases.yaml").read_text(encoding="utf-8").splitlines()
                    if line.startswith("  - name: "))


def test_the_default_rules_still_pass_check_and_test() -> None:
    """The installed command: limits far above what the default rules use."""
    for command, expected in (("check", "no problems: ruleset hanoi-default version 2026.1, 20 rules"),
                              ("test", f"{DEFAULT_CASES} passed, 0 failed")):
        done = subprocess.run([str(CIVICSCORE), "rules", command, str(RULES)], capture_output=True, text=True,
                              timeout=180, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert expected in done.stdout


def test_the_rules_folder_is_read_no_further_than_the_limit(tmp_path: Path) -> None:
    folder = rules_with(tmp_path, {})
    with (folder / "huge.yaml").open("wb") as huge:  # 8 MiB, mostly after the limit
        huge.write(b"rules:\n" + b"#" * (8 * MAX_FILE_BYTES))
    files = read_rule_files(folder)
    assert len(files["huge.yaml"].encode()) == MAX_FILE_BYTES + 1
    with pytest.raises(RulesetInvalid) as refused:
        load_ruleset(files)
    [issue] = refused.value.issues
    assert (issue.file, issue.line, issue.column) == ("huge.yaml", 1, 1)
    assert issue.message.startswith("huge.yaml is larger than 1 MiB (1,048,576 bytes)")


def test_a_folder_with_more_files_than_a_ruleset_may_have_is_refused(tmp_path: Path) -> None:
    folder = rules_with(tmp_path, {f"extra-{index:03d}.yaml": "rules: []\n" for index in range(60)})
    files = read_rule_files(folder)
    assert len(files) == 51  # reading stops one past the limit
    with pytest.raises(RulesetInvalid) as refused:
        load_ruleset(files)
    [issue] = refused.value.issues
    assert "there are more than 50 rule files" in issue.message


# ---- budgets, deadlines and shutdown ---------------------------------------------------------------


def test_a_check_past_the_call_deadline_is_stopped_and_its_process_killed(server: ServerProcess) -> None:
    slow = {**default_files(), **{f"slow-{index}.yaml": SLOW for index in range(3)}}
    with server.client() as c:
        with pytest.raises(DeadlineExceeded):
            c.check_ruleset(slow, timeout=1.5)
        assert eventually(lambda: "checking the rule files stopped" in server.log())
        assert eventually(lambda: not checking_processes(server))
        # the same call, activating: refused as cancelled, nothing recorded
        with pytest.raises(DeadlineExceeded):
            c.activate_ruleset(slow, reason="slow", timeout=1.5)
        assert eventually(lambda: "activating the rule files stopped" in server.log())
        assert eventually(lambda: not checking_processes(server))
        assert len(list(c.list_ruleset_activations())) == 1
        assert not c.get_ruleset_status().HasField("last_refused")
        assert c.check_ruleset(default_files(), timeout=60).valid


def test_rules_check_reports_a_check_over_its_time_budget(tmp_path: Path) -> None:
    folder = rules_with(tmp_path, {"slow.yaml": SLOW})
    result = civicscore("rules", "check", "--load-timeout", "0.5", str(folder))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[0] == (
        "ruleset.yaml:0:0: checking the rule files did not finish within its time budget of 0.5 s; nothing was "
        "changed. These files are far larger or more complex than rules need (or the machine is very busy): look "
        "for a very long list, text or file added last, and shorten or split it")


def test_sigterm_during_a_check_ends_the_server(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    outcome: list[BaseException] = []

    def check() -> None:
        slow = {**default_files(), **{f"slow-{index}.yaml": SLOW for index in range(8)}}
        try:
            with server.client() as c:
                c.check_ruleset(slow, timeout=120)
        except CivicscoreError as error:
            outcome.append(error)

    caller = threading.Thread(target=check)
    caller.start()
    try:
        assert eventually(lambda: bool(checking_processes(server)))
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
        caller.join(60)
        assert len(outcome) == 1 and outcome[0].code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        assert "signal SIGTERM received; shutting down" in server.log()
    finally:
        server.stop()


# ---- the budgeted process itself (engine/sandbox.py) ------------------------------------------------


def hog_memory() -> None:
    blocks = []
    while True:
        blocks.append(bytearray(16 << 20))


def spin() -> None:
    while True:
        pass


def start_a_sleeper_and_spin(pid_file: str) -> None:
    """Starts a grandchild, as a test-load starts an engine worker, then never returns."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(pid_file).write_text(str(sleeper.pid))
    spin()


def refuse_rules() -> None:
    raise RulesetInvalid([RulesetIssue("flags.yaml", 3, 5, "unknown key `wieght`")])


def test_a_budgeted_process_over_its_memory_is_stopped_with_a_precise_error() -> None:
    with pytest.raises(BudgetExceeded) as spent:
        run_budgeted(hog_memory, budget=Budget(60.0, 256 << 20), what="hogging")
    assert spent.value.resource == "memory"
    assert str(spent.value) == "hogging needed more than its memory budget of 256 MiB"


def test_a_budgeted_process_over_its_time_is_killed() -> None:
    with pytest.raises(BudgetExceeded) as spent:
        run_budgeted(spin, budget=Budget(1.0, 256 << 20), what="spinning")
    assert spent.value.resource == "time"
    assert str(spent.value) == "spinning did not finish within its time budget of 1 s"


def test_a_cancelled_budgeted_process_is_killed_with_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    cancelled = threading.Event()
    threading.Thread(target=lambda: eventually(pid_file.exists) and cancelled.set(), daemon=True).start()
    with pytest.raises(EvaluationCancelled, match="was cancelled"):
        run_budgeted(start_a_sleeper_and_spin, str(pid_file), budget=Budget(120.0, 256 << 20), cancelled=cancelled)
    sleeper = int(pid_file.read_text())

    def gone() -> bool:
        try:
            state = Path(f"/proc/{sleeper}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True
        return state == "Z"  # killed, waiting to be reaped by init

    assert eventually(gone)


def test_a_budgeted_process_raises_what_its_function_raised() -> None:
    with pytest.raises(RulesetInvalid) as refused:
        run_budgeted(refuse_rules, budget=Budget(60.0, 256 << 20))
    assert refused.value.issues == [RulesetIssue("flags.yaml", 3, 5, "unknown key `wieght`")]
    with pytest.raises(EngineError) as failed:
        run_budgeted(threading.Lock, budget=Budget(60.0, 256 << 20))  # a result that cannot be pickled
    assert str(failed.value) == ("the work failed: its result could not be sent back (TypeError: cannot pickle "
                                 "'_thread.lock' object)")
