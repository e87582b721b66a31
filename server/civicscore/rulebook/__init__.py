"""Ruleset versions at run time: which ruleset is in force for which quarter, the engine
workers that run each, activation (blue/green), rollback, and the watched rules folder.

    registry = RulesetRegistry(store, engine_factory=...)
    registry.start(folder_files, folder="rules")
    with registry.lease(quarter) as (ruleset, engine): ...
    registry.activate(files, actor=..., source="rpc", reason=...)
"""

from civicscore.rulebook.folder import FolderWatcher, read_rule_files
from civicscore.rulebook.registry import (
    ActivationOutcome,
    NoRulesetInForce,
    RefusedAttempt,
    RulesetRefused,
    RulesetRegistry,
    RulesetStatus,
)
from civicscore.rulebook.timeline import InForce, in_force_for, timeline_of

__all__ = [
    "ActivationOutcome",
    "FolderWatcher",
    "InForce",
    "NoRulesetInForce",
    "RefusedAttempt",
    "RulesetRefused",
    "RulesetRegistry",
    "RulesetStatus",
    "in_force_for",
    "read_rule_files",
    "timeline_of",
]
