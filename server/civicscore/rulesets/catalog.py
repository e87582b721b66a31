"""Stored rulesets, parsed once each and kept by digest.

Their text was checked (in a budgeted process) before it was ever stored, so parsing it here is
safe; a ruleset is parsed once per process however many calls, pools and status reads need it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from civicscore.ruleset import Ruleset, load_ruleset
from civicscore.store import Store

CACHED = 8


class RulesetCatalog:
    """Parsed rulesets by digest (the most recently used `size` of them); thread-safe."""

    def __init__(self, store: Store, *, size: int = CACHED) -> None:
        self._store = store
        self._size = size
        self._lock = threading.Lock()
        self._parsed: OrderedDict[str, Ruleset] = OrderedDict()

    def get(self, digest: str) -> Ruleset:
        """The stored ruleset of `digest`, parsed; KeyError when no such ruleset is stored."""
        with self._lock:
            found = self._parsed.get(digest)
            if found is not None:
                self._parsed.move_to_end(digest)
                return found
        stored = self._store.get_ruleset(digest)
        if stored is None:
            raise KeyError(digest)
        return self.put(load_ruleset(stored.files))

    def files(self, digest: str) -> dict[str, str]:
        """The stored rule files of `digest`; KeyError when no such ruleset is stored."""
        stored = self._store.get_ruleset(digest)
        if stored is None:
            raise KeyError(digest)
        return stored.files

    def put(self, ruleset: Ruleset) -> Ruleset:
        """Keep a ruleset parsed elsewhere (e.g. by the check of a candidate about to be activated)."""
        with self._lock:
            self._parsed[ruleset.digest] = ruleset
            self._parsed.move_to_end(ruleset.digest)
            while len(self._parsed) > self._size:
                self._parsed.popitem(last=False)
        return ruleset
