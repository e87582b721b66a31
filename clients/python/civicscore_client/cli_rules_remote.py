"""`civicscore rules simulate|activate|rollback|status|history|show`: rule files on a civicscore server.

Written for policy staff: every command says in plain words what happened (or would happen), a
refused ruleset lists every problem as `file:line:column: what to fix`, and digests can be given by
the first characters `rules history` shows. `--json` (before the command) prints the server's reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf import timestamp_pb2
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import rulesets_pb2
from civicscore_client._client import Client
from civicscore_client._errors import InvalidArgument, Violation
from civicscore_client._names import period_id
from civicscore_client._rulesets import read_rules_folder
from civicscore_client.cli_locale import hanoi_time
from civicscore_client.cli_session import Session, latest_evaluated, message_dict, messages_json, session_of

# Simulating evaluates a whole quarter twice; activating starts engine workers and test-loads them.
RULESET_TIMEOUT = 300.0
DEFAULT_FOLDER = Path("rules")
SHORT = 12  # digest characters shown in tables
_LOCATED = re.compile(r"^\S+?\.ya?ml(:\d+){0,2}: ")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")

FolderArg = Annotated[
    Path | None,
    typer.Argument(help="Rules folder (its top-level *.yaml files); default: rules.", show_default=False,
                   metavar="FOLDER"),
]


# ---- simulate ------------------------------------------------------------------------------------


def simulate(
    ctx: typer.Context,
    folder: FolderArg = None,
    period: Annotated[
        str | None,
        typer.Option("--period", "-p", help="Quarter to re-evaluate, e.g. 2026-Q3; default: the latest evaluated."),
    ] = None,
    changed_only: Annotated[
        bool, typer.Option("--changed-only", help="List only units whose score, grade or flags change.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="List at most N units (0: all).")] = 0,
) -> None:
    """What if: evaluate a stored quarter with the rule files in FOLDER and compare with the rules in force.

    Nothing is stored and nothing is activated. The summary comes first (units changing grade, flags
    added and removed), then one row per unit, the units that change first: score, grade and flags
    before → after.
    """
    session = session_of(ctx)
    files = _read_folder(session, folder)
    with (
        session.reporting_errors(),
        session.connect(timeout=max(session.timeout, RULESET_TIMEOUT)) as client,
        _refusal(session, client, files),
    ):
        quarter = period or _latest_evaluated(session, client)
        reply = client.simulate_ruleset(files, quarter, changed_only=changed_only)
        ordered = sorted(reply.units, key=lambda unit: not _changed(unit))  # changed units first, by code
        shown = ordered[:limit] if limit else ordered
        if session.json_output:
            data = message_dict(reply)
            data["units"] = messages_json(shown)
            session.print_json(data)
            return
        print_simulation(session, reply, shown)


def print_simulation(session: Session, reply: rulesets_pb2.SimulateRulesetResponse,
                     shown: Sequence[rulesets_pb2.SimulatedUnit]) -> None:
    """The summary (counts, per flag, per grade move), then the units in `shown`."""
    out = session.out
    quarter = period_id(reply.period)
    out.print(
        f"[bold]Simulation of {escape(quarter)}[/]: candidate {_version(reply.candidate)} "
        f"compared with the ruleset in force {_version(reply.baseline)}"
    )
    out.print("Nothing was stored or activated.")
    rows = [
        ("units evaluated", reply.units_evaluated),
        ("units changing grade", reply.units_changing_grade),
        ("units changing score", reply.units_changing_score),
        ("flags added", reply.flags_added),
        ("flags removed", reply.flags_removed),
    ]
    for label, value in rows:
        out.print(f"  {label:<24}{value:,}")
    if not (reply.units_changing_grade or reply.units_changing_score or reply.flags_added or reply.flags_removed):
        out.print("No unit changes: the candidate gives every unit the same score, grade and flags.")
    if reply.flag_changes:
        labels = _flag_labels(reply.baseline.flags, reply.candidate.flags)
        flags = Table(title=f"Flags {quarter}")
        for column in ("Flag", "Label (vi / en)", "Units gaining", "Units losing"):
            flags.add_column(column, justify="right" if column.startswith("Units") else "left")
        for change in reply.flag_changes:
            flags.add_row(change.flag, Text(labels.get(change.flag, "")), str(change.added), str(change.removed))
        out.print(flags)
    if reply.grade_changes:
        grades = Table(title=f"Grade changes {quarter}")
        for column in ("Grade in force", "Grade with candidate", "Units"):
            grades.add_column(column, justify="right" if column == "Units" else "left")
        for move in reply.grade_changes:
            grades.add_row(move.grade_before, move.grade_after, str(move.units))
        out.print(grades)
    if not shown:
        return
    table = Table(title=f"Units {quarter}: in force → candidate")
    for column in ("Unit", "Name", "Score", "Change", "Grade", "Flags gained", "Flags lost"):
        table.add_column(column, justify="right" if column in ("Score", "Change") else "left", overflow="fold")
    for unit in shown:
        table.add_row(
            unit.unit.removeprefix("units/"),
            Text(unit.unit_display_name_vi),
            _before_after(unit.score_before or "-", unit.score_after or "-"),
            f"{unit.score_delta:+.2f}" if unit.score_delta else "",
            _before_after(unit.grade_before, unit.grade_after),
            ", ".join(f"+{flag}" for flag in unit.flags_gained),
            ", ".join(f"-{flag}" for flag in unit.flags_lost),
            style=None if _changed(unit) else "dim",
        )
    out.print(table)
    if len(shown) < len(reply.units):
        out.print(f"… and {len(reply.units) - len(shown)} more units (use --limit 0 to list them all).")


# ---- activate / rollback ---------------------------------------------------------------------------


def activate(
    ctx: typer.Context,
    folder: FolderArg = None,
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why, kept with the activation, e.g. the decision: Quyết định 12/QĐ-BCĐ."),
    ] = "",
    version: Annotated[
        str | None,
        typer.Option("--version", help="Activate a stored ruleset again, by digest (or its first characters)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and test-load only; activate nothing.")
    ] = False,
) -> None:
    """Put the rule files in FOLDER (or a stored ruleset, with --version) in force from their quarter.

    The server swaps its engine workers without stopping. A broken ruleset is refused with every problem
    listed and nothing changes. Quarters already evaluated keep their results until evaluated again.
    """
    session = session_of(ctx)
    if version and folder is not None:
        session.fail("give either a rules FOLDER or --version DIGEST, not both", code=2)
    if not reason.strip() and not dry_run:
        session.fail("say why with --reason, e.g. --reason \"Quyết định 12/QĐ-BCĐ\"", code=2)
    files = None if version else _read_folder(session, folder)
    with (
        session.reporting_errors(),
        session.connect(timeout=max(session.timeout, RULESET_TIMEOUT)) as client,
        _refusal(session, client, files),
    ):
        if files is not None:
            reply = client.activate_ruleset(files, reason=reason, validate_only=dry_run)
        else:
            digest = _resolve_digest(session, client, version or "")
            reply = client.activate_ruleset(ruleset=digest, reason=reason, validate_only=dry_run)
        if session.json_output:
            session.print_json(message_dict(reply))
            return
        print_activation(session, reply, dry_run=dry_run)


def print_activation(session: Session, reply: rulesets_pb2.ActivateRulesetResponse, *, dry_run: bool) -> None:
    out = session.out
    ruleset = reply.ruleset
    affected = ", ".join(reply.evaluated_periods_affected)
    if dry_run:
        out.print(f"[bold]Valid[/]: {_version(ruleset)} passed every check and loaded in a test engine.")
        out.print("Nothing was activated (--dry-run).")
    elif reply.unchanged:
        out.print(f"[bold]Unchanged[/]: {_version(ruleset)} is already in force from {ruleset.in_force_from}.")
        out.print("Nothing was activated.")
    else:
        out.print(f"[bold]Activated[/] {_version(ruleset)}.")
    out.print(f"  version           {escape(ruleset.version)}")
    out.print(f"  digest            {ruleset.digest}")
    out.print(f"  in force from     {ruleset.in_force_from}")
    out.print(f"  unchanged         {'yes' if reply.unchanged else 'no'}")
    if reply.HasField("activation") and reply.activation.sequence:
        activation = reply.activation
        out.print(f"  activation        #{activation.sequence} by {escape(activation.actor)}"
                  f" at {_when(activation.activate_time)}")
        out.print(f"  reason            {escape(activation.reason)}")
    if affected:
        verb = "would govern" if dry_run else "now governs"
        out.print(f"  quarters affected {affected}")
        out.print(
            f"Quarters already evaluated that this ruleset {verb}: their stored results stay as they are "
            f"until each is evaluated again (civicscore evaluate QUARTER)."
        )
    else:
        out.print("  quarters affected none")


def rollback(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why, kept with the rollback.")] = "",
    expected: Annotated[
        str | None,
        typer.Option("--expected", help="Roll back only if the latest activation is of this digest."),
    ] = None,
) -> None:
    """Undo the latest activation: the ruleset it replaced is in force again."""
    session = session_of(ctx)
    if not reason.strip():
        session.fail("say why with --reason, e.g. --reason \"Áp dụng nhầm phiên bản\"", code=2)
    with (
        session.reporting_errors(),
        session.connect(timeout=max(session.timeout, RULESET_TIMEOUT)) as client,
        _refusal(session, client, None),
    ):
        digest = _resolve_digest(session, client, expected) if expected else ""
        reply = client.rollback_ruleset(expected_digest=digest, reason=reason)
        if session.json_output:
            session.print_json(message_dict(reply))
            return
        undone = reply.rolled_back
        out = session.out
        out.print(
            f"[bold]Rolled back[/] activation #{undone.sequence}: version {escape(undone.version)} "
            f"({undone.digest[:SHORT]}), in force from {undone.in_force_from}."
        )
        if undone.actor or undone.reason:
            out.print(f"  it was activated by {escape(undone.actor)} at {_when(undone.activate_time)}"
                      f" ({escape(undone.reason)})")
        out.print(f"In force now: {_version(reply.ruleset)}, from {reply.ruleset.in_force_from}.")
        out.print("Stored evaluations stay as they are until their quarter is evaluated again.")


# ---- status / history / show --------------------------------------------------------------------------


def status(ctx: typer.Context) -> None:
    """Which ruleset is in force, from which quarter each version applies, and the last refused attempt."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        reply = client.get_ruleset_status()
        if session.json_output:
            session.print_json(message_dict(reply))
            return
        out = session.out
        active = reply.active
        out.print(f"[bold]In force now[/]: {_version(active)}")
        out.print(f"  digest          {active.digest}")
        out.print(f"  in force from   {active.in_force_from}")
        out.print(f"  loaded at       {_when(reply.load_time) or _when(active.load_time) or '-'}")
        if active.HasField("activation") and active.activation.sequence:
            activation = active.activation
            out.print(f"  activated       #{activation.sequence} ({activation.source}) by {escape(activation.actor)}"
                      f" at {_when(activation.activate_time)}")
            if activation.reason:
                out.print(f"  reason          {escape(activation.reason)}")
        if not reply.rules_folder:
            watching = "none (changes on disk are not picked up)"
        elif reply.watching_rules_folder:
            watching = f"{escape(reply.rules_folder)} (watched by this replica: a change of its files is activated)"
        else:
            watching = f"{escape(reply.rules_folder)} (watched by another replica)"
        out.print(f"  rules folder    {watching}")
        following = {"notices": "the database's notices (up to date within a second or so)",
                     "reconciling": "[yellow]reading the database every few seconds: its listener is down[/]",
                     "single": "its own database (one process)"}.get(reply.following, reply.following)
        out.print(f"[bold]Replica[/] {escape(reply.replica)}: applied activation #{reply.applied_activation} "
                  f"at {_when(reply.applied_time) or '-'}; follows {following}")
        if reply.in_force:
            timeline = Table(title="In force by quarter")
            for column in ("From quarter", "To quarter", "Version", "Digest"):
                timeline.add_column(column)
            entries = list(reply.in_force)
            for index, entry in enumerate(entries):
                until = _quarter_before(entries[index + 1].from_period) if index + 1 < len(entries) else "onwards"
                timeline.add_row(entry.from_period, until, Text(entry.version), entry.digest[:SHORT])
            out.print(timeline)
        versions = {entry.digest: entry.version for entry in reply.in_force}
        versions.setdefault(active.digest, active.version)
        loaded = ", ".join(
            f"{digest[:SHORT]} ({versions[digest]})" if digest in versions else digest[:SHORT]
            for digest in reply.loaded_digests
        )
        out.print(f"Engine workers running for: {escape(loaded) or 'none'}")
        if reply.HasField("last_refused"):
            refused = reply.last_refused
            out.print(
                f"[bold]Last refused activation[/]: {_when(refused.refuse_time)} ({refused.source}) by "
                f"{escape(refused.actor)}, digest {refused.digest[:SHORT]}, "
                f"{_count(len(refused.issues), 'problem')}:"
            )
            for issue in refused.issues:
                out.print(Text(f"  {issue_text(issue)}"), soft_wrap=True)
        else:
            out.print("No activation was refused since the server started.")


def history(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Option("--version", help="Only this declared version, e.g. 2026.1.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Only this source: rpc, rules-folder or startup.")
    ] = None,
) -> None:
    """Every activation ever made, newest first, with who, when, why and whether it was rolled back."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_ruleset_activations(version=version, source=source))
        if session.json_output:
            session.print_json(messages_json(found))
            return
        if not found:
            session.out.print("No activation matches.")
            return
        table = Table(title=f"Ruleset activations ({len(found)}), newest first", show_lines=True)
        for column in ("#", "Version", "Digest", "In force from", "Source", "By", "When", "Reason", "Rolled back"):
            table.add_column(column, justify="right" if column == "#" else "left", overflow="fold")
        for item in found:
            rolled = ""
            if item.rolled_back:
                rolled = f"by {item.rolled_back_by} at {_when(item.rollback_time)}"
                if item.rollback_reason:
                    rolled += f": {item.rollback_reason}"
            table.add_row(
                str(item.sequence), Text(item.version), item.digest[:SHORT], item.in_force_from, item.source,
                Text(item.actor), _when(item.activate_time), Text(item.reason), Text(rolled),
                style="dim" if item.rolled_back else None,
            )
        session.out.print(table)


def show(
    ctx: typer.Context,
    digest: Annotated[
        str | None,
        typer.Argument(help="Digest (or its first characters); default: the ruleset in force.", show_default=False),
    ] = None,
    files: Annotated[bool, typer.Option("--files", help="Print the content of every rule file.")] = False,
) -> None:
    """Show one stored ruleset: version, digest, activation, indicators, flags (and its files)."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        if digest:
            ruleset = client.get_ruleset(_resolve_digest(session, client, digest), include_files=files)
        else:
            ruleset = client.get_active_ruleset(include_files=files)
        if session.json_output:
            session.print_json(message_dict(ruleset))
            return
        print_ruleset(session, ruleset, files=files)


def print_ruleset(session: Session, ruleset: rulesets_pb2.Ruleset, *, files: bool) -> None:
    out = session.out
    out.print(f"[bold]{escape(ruleset.ruleset_id)}[/] version {escape(ruleset.version)}")
    if ruleset.description_vi:
        out.print(Text(ruleset.description_vi), soft_wrap=True)
    if ruleset.description_en:
        out.print(Text(ruleset.description_en, style="dim"), soft_wrap=True)
    out.print(f"  digest          {ruleset.digest}")
    out.print(f"  in force from   {ruleset.in_force_from}")
    if _when(ruleset.load_time):
        out.print(f"  loaded          {_when(ruleset.load_time)}")
    out.print(f"  rules           {ruleset.rule_count}")
    if ruleset.HasField("activation") and ruleset.activation.sequence:
        activation = ruleset.activation
        out.print(f"  activation      #{activation.sequence} ({activation.source}) by {escape(activation.actor)}"
                  f" at {_when(activation.activate_time)}")
        if activation.reason:
            out.print(f"  reason          {escape(activation.reason)}")
    else:
        out.print("  activation      never activated")
    if ruleset.indicators:
        indicators = Table(title="Indicators")
        for column in ("Code", "Name (vi)", "Name (en)", "Weight"):
            indicators.add_column(column)
        for indicator in ruleset.indicators:
            indicators.add_row(indicator.code, Text(indicator.display_name_vi), Text(indicator.display_name_en),
                               f"{indicator.weight:g}")
        out.print(indicators)
    if ruleset.flags:
        flags = Table(title="Flags")
        for column in ("Flag", "Label (vi)", "Label (en)", "Kind", "Level"):
            flags.add_column(column)
        for flag in ruleset.flags:
            flags.add_row(flag.flag, Text(flag.label_vi), Text(flag.label_en), flag.kind, str(flag.level))
        out.print(flags)
    if files:
        if not ruleset.files:
            out.print("(the server sent no file content)")
        for item in ruleset.files:
            out.print(Text(f"──── {item.path} ────", style="bold"))
            out.print(Text(item.content.rstrip("\n")), soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the server commands to the `rules` app."""
    for command in (simulate, activate, rollback, status, history, show):
        app.command()(command)


# ---- helpers ----------------------------------------------------------------------------------------


def issue_text(issue: rulesets_pb2.RulesetIssue) -> str:
    """`flags.yaml:55:26: message`, leaving out a line or column of 0."""
    where = issue.file or "ruleset"
    if issue.line:
        where += f":{issue.line}"
        if issue.column:
            where += f":{issue.column}"
    return f"{where}: {issue.message}"


def violation_text(violation: Violation) -> str:
    """One violation the way `rules check` prints an issue, whichever side carries the location."""
    if not violation.field or _LOCATED.match(violation.description):
        return violation.description
    return f"{violation.field}: {violation.description}"


@contextmanager
def _refusal(session: Session, client: Client, files: Mapping[str, str] | None) -> Iterator[None]:
    """A refused request (a broken candidate, an unknown quarter) as every problem, one a line; exit 1.

    When the error could not carry every problem and the candidate's files are at hand, the complete
    list comes from CheckRuleset, which returns it in its reply.
    """
    try:
        yield
    except InvalidArgument as err:
        lines = [violation_text(v) for v in err.violations]
        if files is not None and not err.complete:
            checked = client.check_ruleset(files)
            if checked.issues:
                lines = [issue_text(issue) for issue in checked.issues]
        if files is not None and any(_LOCATED.match(line) for line in lines):
            headline = (f"the ruleset was refused: {_count(len(lines), 'problem')} in the rule files; "
                        "nothing was changed")
        else:
            headline = err.message.splitlines()[0] if err.message else "the request was refused"
            if not lines:
                lines = err.message.splitlines()[1:]
            lines = [line for line in lines if line.strip() and line.strip() not in headline]
        if session.json_output:
            session.print_json({"error": headline, "problems": lines})
        else:
            session.err.print(f"[bold red]error:[/] {escape(headline)}", highlight=False, soft_wrap=True)
            for line in lines:
                session.err.print(Text(f"  {line.strip()}"), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _read_folder(session: Session, folder: Path | None) -> dict[str, str]:
    path = folder or DEFAULT_FOLDER
    try:
        files = read_rules_folder(path)
    except (OSError, UnicodeDecodeError) as err:
        session.fail(f"cannot read the rules folder {path}: {err}", code=2)
    if not files:
        session.fail(f"{path} has no rule files (*.yaml)", code=2)
    return files


def _resolve_digest(session: Session, client: Client, given: str) -> str:
    """The full digest for one given in full, as `rulesets/{digest}`, or by its first characters."""
    text = given.strip().removeprefix("rulesets/").lower()
    if len(text) == 64 or not _HEX.match(text):
        return text
    known = {item.digest for item in client.list_ruleset_activations()}
    status = client.get_ruleset_status()
    known.update(entry.digest for entry in status.in_force)
    known.update(status.loaded_digests)
    matches = sorted(digest for digest in known if digest.startswith(text))
    if not matches:
        session.fail(f"no ruleset digest starts with {text!r}; `civicscore rules history` lists them")
    if len(matches) > 1:
        session.fail(f"{text!r} is the start of {len(matches)} digests ({', '.join(m[:SHORT] for m in matches)}); "
                     "give more characters")
    return matches[0]


def _latest_evaluated(session: Session, client: Client) -> str:
    """The newest quarter with evaluations (periods are listed newest first)."""
    found = latest_evaluated(client)
    if found is None:
        session.fail("no quarter has been evaluated yet; give --period or run `civicscore evaluate QUARTER` first")
    return found


def _version(ruleset: rulesets_pb2.Ruleset) -> str:
    """`hanoi-default 2026.2 (0123456789ab)`, escaped for rich markup."""
    name = " ".join(part for part in (ruleset.ruleset_id, ruleset.version) if part) or "?"
    return f"{escape(name)} ({ruleset.digest[:SHORT]})"


def _before_after(before: str, after: str) -> str:
    return before if before == after else f"{before} → {after}"


def _changed(unit: rulesets_pb2.SimulatedUnit) -> bool:
    return (unit.grade_before != unit.grade_after or unit.score_before != unit.score_after
            or bool(unit.flags_gained) or bool(unit.flags_lost))


def _flag_labels(*flag_lists: Iterable[rulesets_pb2.RulesetFlag]) -> dict[str, str]:
    """`flag → "vi / en"`, the candidate's labels winning over the baseline's."""
    labels: dict[str, str] = {}
    for flags in flag_lists:
        for flag in flags:
            labels[flag.flag] = " / ".join(part for part in (flag.label_vi, flag.label_en) if part)
    return labels


def _when(ts: timestamp_pb2.Timestamp) -> str:
    """A moment in Hanoi time, to the second; "" when unset."""
    return hanoi_time(ts)


def _quarter_before(quarter: str) -> str:
    """`2026-Q1` → `2025-Q4`; "before X" for anything that is not a quarter."""
    match = _QUARTER.match(quarter)
    if not match:
        return f"before {quarter}"
    year, number = int(match.group(1)), int(match.group(2))
    return f"{year}-Q{number - 1}" if number > 1 else f"{year - 1}-Q4"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
