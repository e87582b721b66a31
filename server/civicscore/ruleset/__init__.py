"""Rule files: parsing, validation and compilation to durable_rules definitions (pure, no I/O).

    ruleset = load_ruleset({"ruleset.yaml": text, "scoring.yaml": text, ...})
    ruleset.version, ruleset.digest, ruleset.indicators, ruleset.flags, ruleset.grades
    ruleset.compile()  -> CompiledRuleset (plain data for engine workers)

`RulesetInvalid.issues` lists every problem with file, line and column.

Nothing here starts a process: `cases` runs golden case files through an engine it is given (with
a coverage report). The test-load of candidate files in a throwaway engine process, and checks in
a child process with a time and memory budget, are in `civicscore.rulesets.checking`. What a file
may hold and how large it may be is in `limits` (and rules/README.md).
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
