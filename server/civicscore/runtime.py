"""What the servicers share: the store, the rulesets in force with their engines, and the clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from civicscore.domain.periods import InvalidPeriod, Quarter
from civicscore.rulesets import Rulesets
from civicscore.shutdown import Shutdown
from civicscore.store import Store


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    store: Store
    rulesets: Rulesets
    clock: Callable[[], dt.datetime] = utc_now
    rules_folder: str = ""  # the folder watched for changes, if any
    shutdown: Shutdown = field(default_factory=Shutdown)  # set by the server when it stops

    def indicators_for(self, period: str | None) -> frozenset[str]:
        """Indicator codes of the ruleset in force for `period` (the active ruleset without one)."""
        ruleset = None
        if period:
            try:
                ruleset = self.rulesets.ruleset_for(Quarter.parse(period))
            except InvalidPeriod:
                ruleset = None
        return (ruleset or self.rulesets.active()).indicator_codes
