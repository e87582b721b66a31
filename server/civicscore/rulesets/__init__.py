"""The ruleset lifecycle, in one place: which ruleset is in force when (following the database),
the engine workers that run each, checking candidates, activation and rollback serialised across
replicas, the watched rules folder, and what-if (`rulesets.simulation`).

    rulesets = Rulesets(store, start_engine=lambda ruleset: EnginePool(ruleset))
    rulesets.start(folder_files, folder="rules")
    rulesets.watch_folder(Path("rules"))
    with rulesets.lease(quarter) as (ruleset, engine): ...
    rulesets.activate(files, actor=..., source="rpc", reason=...)

The names below are imported when first used (PEP 562): the process that checks candidate rule
files (`rulesets.checking`, preloaded by the sandbox's fork server) then imports what checking
needs, not the store and the activation machinery this package's other modules bring.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from civicscore.rulesets.activation import ActivationOutcome, RefusedAttempt
    from civicscore.rulesets.errors import NoRulesetInForce, RulesetChanged, RulesetRefused
    from civicscore.rulesets.folder import FolderWatcher, read_rule_files
    from civicscore.rulesets.service import Rulesets, RulesetStatus
    from civicscore.rulesets.timeline import InForce, in_force_for, timeline_of

_HOMES = {
    "ActivationOutcome": "activation",
    "RefusedAttempt": "activation",
    "NoRulesetInForce": "errors",
    "RulesetChanged": "errors",
    "RulesetRefused": "errors",
    "FolderWatcher": "folder",
    "read_rule_files": "folder",
    "Rulesets": "service",
    "RulesetStatus": "service",
    "InForce": "timeline",
    "in_force_for": "timeline",
    "timeline_of": "timeline",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
