"""`civicscore rules check` and `civicscore rules test`: a rules folder checked, and its golden
cases run, on this machine.

Both import the server package (`civicscore.ruleset`) only when they run, so the rest of the
CLI works without it; `check --remote` asks the server (`--server`) instead. The files are read,
checked and run as the server does: each file read only up to its size limit, and the checks and
cases run in a child process with a time and memory budget (civicscore.engine.sandbox). Exit
codes: 0 all clean / every case passed, 1 problems found / a case failed, 2 a usage problem (no
such folder, no case file, the server package missing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from civicscore_client._rulesets import read_rule_text, read_rules_folder
from civicscore_client.cli_session import Session, session_of

if TYPE_CHECKING:
    from civicscore.domain.officials import OfficialEvaluation
    from civicscore.ruleset import Ruleset
    from civicscore.ruleset.cases import CaseResult, CaseRun

# Checking at the server test-loads the ruleset in a fresh engine process: allow for it.
REMOTE_CHECK_TIMEOUT = 120.0

PathArg = Annotated[
    Path,
    typer.Argument(help="The rules folder: ruleset.yaml, scoring.yaml, grades.yaml, flags.yaml (and tests/)."),
]


@dataclass(frozen=True)
class Problem:
    """One issue as printed: `file:line:col: message` (file relative to the rules folder)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        """The issue for `--json`."""
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.message}


def check(
    ctx: typer.Context,
    path: PathArg = Path("rules"),
    remote: Annotated[
        bool, typer.Option("--remote", help="Check at the server given by --server instead of on this machine.")
    ] = False,
    load_timeout: Annotated[
        float,
        typer.Option("--load-timeout", min=0.1,
                     help="Seconds allowed to check and test-load the rules (on this machine)."),
    ] = 60.0,
) -> None:
    """Check the rule files in PATH: every problem as file:line:col with how to fix it, then a
    test-load in the rules engine (Kiểm tra bộ quy tắc)."""
    session = session_of(ctx)
    files = _rule_files(session, path)
    where = f"at {session.server}" if remote else "on this machine"
    if remote:
        valid, problems, summary = _check_remote(session, files)
    else:
        valid, problems, summary = _check_local(session, files, load_timeout)
    if session.json_output:
        session.print_json(
            {"path": str(path), "checked": where, "valid": valid, "ruleset": summary,
             "issues": [problem.as_json() for problem in problems]}
        )
    else:
        _print_problems(session, problems)
        if valid:
            rules = f", {summary['rule_count']} rules" if summary.get("rule_count") else ""
            session.out.print(
                f"{escape(str(path))}: no problems: ruleset {escape(summary.get('ruleset_id', ''))} version "
                f"{escape(summary.get('version', ''))}{rules}, in force from {summary.get('in_force_from', '')}, "
                f"digest {summary.get('digest', '')[:12]} (checked and test-loaded {escape(where)})",
                highlight=False,
                soft_wrap=True,
            )
        else:
            session.out.print(_count_line(path, problems, where), highlight=False, soft_wrap=True)
    raise typer.Exit(0 if valid else 1)


def run_tests(
    ctx: typer.Context,
    path: PathArg = Path("rules"),
    cases: Annotated[
        list[Path] | None,
        typer.Option("--cases", help="A case file or a folder of them (repeatable); default: PATH/tests/*.yaml."),
    ] = None,
    select: Annotated[
        str | None, typer.Option("-k", "--select", help="Run only the cases whose name contains this text.")
    ] = None,
) -> None:
    """Run the golden cases (PATH/tests/*.yaml) through the rules engine with the rules in PATH:
    PASS/FAIL per case, what differs, and which rules and thresholds no case tests (Chạy thử)."""
    session = session_of(ctx)
    files = _rule_files(session, path)
    texts = _case_texts(session, path, cases)
    try:
        from civicscore.engine.port import EngineError
        from civicscore.engine.sandbox import Budget, BudgetExceeded, run_budgeted
        from civicscore.ruleset import RulesetInvalid
        from civicscore.ruleset.cases import CaseFileInvalid
        from civicscore.ruleset.limits import CASES_TIME_S, CHECK_MEMORY_BYTES
        from civicscore.rulesets.checking import run_case_files
    except ImportError as error:
        _no_server_package(session, error, "`rules test` runs the rules engine on this machine")
    try:
        ruleset, run = run_budgeted(run_case_files, files, texts, select, what="reading and running the cases",
                                    budget=Budget(CASES_TIME_S, CHECK_MEMORY_BYTES))
    except (RulesetInvalid, CaseFileInvalid) as invalid:
        problems = [Problem(i.file, i.line, i.column, i.message) for i in invalid.issues]
        what = "rule files" if isinstance(invalid, RulesetInvalid) else "case files"
        _fail_with_problems(session, path, problems, f"the {what} have problems; no case was run")
    except BudgetExceeded as spent:
        session.fail(f"{spent}; the rule or case files are far larger than they need to be: shorten or split "
                     "the file you added to last")
    except EngineError as error:
        session.fail(f"the rules engine failed: {error}")
    if not run.results:
        session.fail(f"no case name contains {select!r}" if select else "the case files have no case", code=2)
    if session.json_output:
        session.print_json(_run_json(path, ruleset, run))
    else:
        _print_run(session, run)
    raise typer.Exit(0 if run.passed else 1)


def register(app: typer.Typer) -> None:
    """Add `check` and `test` to the `rules` sub-app."""
    app.command("check")(check)
    app.command("test")(run_tests)


# ---- check ------------------------------------------------------------------------------------


def _check_local(
    session: Session, files: Mapping[str, str], load_timeout: float
) -> tuple[bool, list[Problem], dict[str, Any]]:
    try:
        from civicscore.rulesets.checking import CHECK_BUDGET, check_candidate
    except ImportError as error:
        _no_server_package(session, error, "checking on this machine needs it")
    outcome = check_candidate(files, budget=replace(CHECK_BUDGET, time_s=load_timeout))
    problems = [Problem(i.file, i.line, i.column, i.message) for i in outcome.issues]
    summary = _ruleset_summary(outcome.ruleset) if outcome.ruleset is not None else {}
    return outcome.valid, problems, summary


def _check_remote(session: Session, files: Mapping[str, str]) -> tuple[bool, list[Problem], dict[str, Any]]:
    with session.reporting_errors(), session.connect(timeout=max(session.timeout, REMOTE_CHECK_TIMEOUT)) as client:
        reply = client.check_ruleset(files)
    problems = [Problem(i.file, i.line, i.column, i.message) for i in reply.issues]
    summary: dict[str, Any] = {}
    if reply.valid and reply.HasField("ruleset"):
        r = reply.ruleset
        summary = {"ruleset_id": r.ruleset_id, "version": r.version, "digest": r.digest,
                   "in_force_from": r.in_force_from, "rule_count": r.rule_count}
    return reply.valid and not problems, problems, summary


def _ruleset_summary(ruleset: Ruleset) -> dict[str, Any]:
    return {"ruleset_id": ruleset.ruleset_id, "version": ruleset.version, "digest": ruleset.digest,
            "in_force_from": ruleset.in_force_from, "rule_count": ruleset.rule_count}


# ---- test -------------------------------------------------------------------------------------


def _print_run(session: Session, run: CaseRun) -> None:
    out = session.out
    for result in run.results:
        colour = "green" if result.passed else "bold red"
        word, rest = result.headline().split(" ", 1)
        out.print(f"[{colour}]{word}[/] {escape(rest)}", highlight=False, soft_wrap=True)
        for line in result.details():
            out.print(escape(line), highlight=False, soft_wrap=True)
    out.print()
    for line in run.coverage.summary():
        out.print(escape(line), highlight=False, soft_wrap=True)
    failed = len(run.failures)
    colour = "green" if not failed else "bold red"
    out.print(f"[{colour}]{len(run.results) - failed} passed, {failed} failed[/]", highlight=False)


def _run_json(path: Path, ruleset: Ruleset, run: CaseRun) -> dict[str, Any]:
    return {
        "path": str(path),
        "ruleset": _ruleset_summary(ruleset),
        "passed": len(run.results) - len(run.failures),
        "failed": len(run.failures),
        "cases": [_case_json(result) for result in run.results],
        "coverage": {
            "complete": run.coverage.complete,
            "rules": [
                {"rule_id": r.rule_id, "source": r.source, "fired_in": list(r.fired_in), "silent_in": list(r.silent_in)}
                for r in run.coverage.rules
            ],
            "thresholds": [
                {
                    "rule_id": t.rule_id,
                    "source": t.source,
                    "test": str(t.test),
                    "value": t.test.value,
                    "true_in": list(t.true_in),
                    "false_in": list(t.false_in),
                    "at_threshold_in": list(t.at_threshold_in),
                }
                for t in run.coverage.thresholds
            ],
        },
    }


def _case_json(result: CaseResult) -> dict[str, Any]:
    evaluation = result.evaluation
    return {
        "name": result.case.name,
        "file": result.case.file,
        "line": result.case.line,
        "passed": result.passed,
        "differences": list(result.differences),
        "score": evaluation.score,
        "grade": evaluation.grade,
        "flags": [flag.flag for flag in evaluation.flags],
        "fired": result.fired,
        "officials": [_official_json(official) for official in result.officials],
    }


def _official_json(official: OfficialEvaluation) -> dict[str, Any]:
    """What the engine gave for one official of a case, in the API's words (OfficialEvaluation)."""
    return {
        "official_id": official.official_id,
        "unit": official.unit_code,
        "position": official.position,
        "under_review": official.under_review,
        "led": {**asdict(official.led), "open_overdue": official.led_open_overdue},
        "headed_units": list(official.headed_units),
        "flags": [flag.flag for flag in official.flags],
        "fired": list(dict.fromkeys(rule.rule_id for rule in official.fired_rules)),
    }


# ---- shared -----------------------------------------------------------------------------------


def _rule_files(session: Session, path: Path) -> dict[str, str]:
    """The folder's rule files, or exit 2 when it is not a folder (1 when a file is not UTF-8)."""
    if not path.is_dir():
        hint = " (give the folder, not a file)" if path.is_file() else ""
        session.fail(f"{path} is not a folder of rule files{hint}; e.g. `civicscore rules check rules`", code=2)
    try:
        return read_rules_folder(path)
    except UnicodeDecodeError as error:
        session.fail(f"a rule file in {path} is not UTF-8 text ({error}); save it as UTF-8")


def _case_texts(session: Session, path: Path, given: list[Path] | None) -> dict[str, str]:
    """Case files by name as messages show them (relative to the rules folder when inside it)."""
    sources = given or [path / "tests"]
    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found += sorted(p for p in source.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
        elif source.is_file():
            found.append(source)
        elif given:
            session.fail(f"no case file or folder {source}", code=2)
    if not found:
        where = ", ".join(str(source) for source in sources)
        session.fail(f"no case files (*.yaml) in {where}; write some, or give --cases FILE", code=2)
    texts: dict[str, str] = {}
    for file in found:
        try:
            texts[_shown_name(file, path)] = read_rule_text(file)
        except UnicodeDecodeError as error:
            session.fail(f"{file} is not UTF-8 text ({error}); save it as UTF-8")
    return texts


def _shown_name(file: Path, folder: Path) -> str:
    try:
        return file.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return file.as_posix()


def _print_problems(session: Session, problems: Iterable[Problem]) -> None:
    for problem in problems:
        session.out.print(escape(str(problem)), highlight=False, soft_wrap=True)


def _count_line(path: Path, problems: list[Problem], where: str) -> str:
    count = len(problems)
    files = len({problem.file for problem in problems})
    return (
        f"{escape(str(path))}: {count} problem{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''} "
        f"(checked {escape(where)}); fix them and run `civicscore rules check` again"
    )


def _fail_with_problems(session: Session, path: Path, problems: list[Problem], message: str) -> NoReturn:
    if session.json_output:
        session.print_json({"path": str(path), "valid": False, "issues": [p.as_json() for p in problems]})
        raise typer.Exit(1)
    _print_problems(session, problems)
    session.fail(message)


def _no_server_package(session: Session, error: ImportError, what: str) -> NoReturn:
    session.fail(
        f"the civicscore server package cannot be imported here ({error}); {what}. Install it "
        "(`pip install -e .` in the civicscore repository), or check at a server with "
        "`civicscore --server HOST:PORT rules check --remote PATH`",
        code=2,
    )
