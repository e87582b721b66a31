"""The ruleset lifecycle, in one place: which ruleset is in force when (following the database),
the engine workers that run each, checking candidates, activation and rollback serialised across
replicas, the watched rules folder, and what-if (`rulesets.simulation`).

    rulesets = Rulesets(store, start_engine=lambda ruleset: EnginePool(ruleset))
    rulesets.start(folder_files, folder="rules")
    rulesets.watch_folder(Path("rules"))
    with rulesets.lease(quarter) as (ruleset, engine): ...
    rulesets.activate(files, actor=..., source="rpc", reason=...)
"""

from civicscore.rulesets.activation import ActivationOutcome, RefusedAttempt
from civicscore.rulesets.errors import NoRulesetInForce, RulesetChanged, RulesetRefused
from civicscore.rulesets.folder import FolderWatcher, read_rule_files
from civicscore.rulesets.service import Rulesets, RulesetStatus
from civicscore.rulesets.timeline import InForce, in_force_for, timeline_of

__all__ = [
    "ActivationOutcome",
    "FolderWatcher",
    "InForce",
    "NoRulesetInForce",
    "RefusedAttempt",
    "RulesetChanged",
    "RulesetRefused",
    "RulesetStatus",
    "Rulesets",
    "in_force_for",
    "read_rule_files",
    "timeline_of",
]
