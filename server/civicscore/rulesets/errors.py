"""What the ruleset use cases refuse with (mapped to gRPC codes by their callers)."""

from __future__ import annotations

from civicscore.ruleset import RulesetIssue


class NoRulesetInForce(LookupError):
    """No activated ruleset is in force for the quarter asked about."""


class RulesetRefused(Exception):
    """An activation was refused; `issues` say why, by file, line and column."""

    def __init__(self, issues: list[RulesetIssue], digest: str = "") -> None:
        self.issues = sorted(issues)
        self.digest = digest
        count = len(self.issues)
        first = f": {self.issues[0]}" if self.issues else ""
        super().__init__(f"ruleset refused ({count} problem{'s' if count != 1 else ''}){first}")


class RulesetChanged(Exception):
    """The ruleset a call evaluated with stopped being in force before its results were saved
    (another replica activated or rolled back meanwhile): nothing was saved; evaluate again."""


def refused_issue(file: str, message: str) -> RulesetIssue:
    """An issue not tied to a line (e.g. the engine could not load the ruleset)."""
    return RulesetIssue(file=file, line=0, column=0, message=message)
