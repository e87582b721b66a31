"""What the servicers share: the store, the engine with its ruleset, and the clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from civicscore.engine.port import RulesEngine
from civicscore.ruleset import Ruleset
from civicscore.store import Store


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    store: Store
    engine: RulesEngine
    ruleset: Ruleset
    clock: Callable[[], dt.datetime] = utc_now
    loaded_at: dt.datetime = field(default_factory=utc_now)
