"""Rule files: parsing, validation and compilation to durable_rules definitions (pure, no I/O).

    ruleset = load_ruleset({"ruleset.yaml": text, "scoring.yaml": text, ...})
    ruleset.version, ruleset.digest, ruleset.indicators, ruleset.flags, ruleset.grades
    ruleset.compile()  -> CompiledRuleset (plain data for engine workers)

`RulesetInvalid.issues` lists every problem with file, line and column.

Two modules here start engine processes and are imported only by the tools that need them:
`check` (`check_ruleset_files`: the static checks, then a test-load in a throwaway engine process;
`check_candidate`: both in a child process with a time and memory budget, for files from outside)
and `cases` (golden case files run through an engine, with a coverage report). What a file may
hold and how large it may be is in `limits` (and rules/README.md).
"""

from civicscore.ruleset.errors import RulesetInvalid, RulesetIssue
from civicscore.ruleset.loader import is_rule_file, load_ruleset, ruleset_digest
from civicscore.ruleset.model import (
    CompiledRuleset,
    Effect,
    FlagDefinition,
    GradeDefinition,
    Indicator,
    Rule,
    Ruleset,
    RuleTest,
    Stage,
)

__all__ = [
    "CompiledRuleset",
    "Effect",
    "FlagDefinition",
    "GradeDefinition",
    "Indicator",
    "Rule",
    "RuleTest",
    "Ruleset",
    "RulesetInvalid",
    "RulesetIssue",
    "Stage",
    "is_rule_file",
    "load_ruleset",
    "ruleset_digest",
]
