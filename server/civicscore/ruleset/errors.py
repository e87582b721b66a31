"""Errors of rule files: every issue names a file, line and column, and says how to fix it.

RulesetInvalid (ValueError)
  .issues: list[RulesetIssue]   one per problem found, in file and line order
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class RulesetIssue:
    """One problem in a rule file; line and column are 1-based."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RulesetInvalid(ValueError):
    """The rule files cannot be used; `issues` lists every problem found."""

    def __init__(self, issues: list[RulesetIssue]) -> None:
        self.issues = sorted(issues)
        count = len(self.issues)
        header = f"the rule files have {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  {issue}" for issue in self.issues)]))

    def __reduce__(self) -> tuple[type[RulesetInvalid], tuple[list[RulesetIssue]]]:
        # Raised in a checking process and again in its parent (engine/sandbox.py): keep the issues.
        return (type(self), (self.issues,))
