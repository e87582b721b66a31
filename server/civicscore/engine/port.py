"""What the use cases need from a rules engine; implementations live beside this file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from civicscore.domain.model import UnitEvaluation, UnitFacts


class EngineError(Exception):
    """An evaluation could not be completed (e.g. it kept crashing engine workers)."""


class RulesEngine(Protocol):
    """Evaluates unit facts with one loaded ruleset."""

    @property
    def ruleset_version(self) -> str: ...

    @property
    def ruleset_digest(self) -> str: ...

    def evaluate(self, facts: Sequence[UnitFacts]) -> list[UnitEvaluation]:
        """Evaluate each unit's facts; results are in the order of `facts`."""
        ...

    def close(self) -> None:
        """Stop worker processes and free resources."""
        ...
