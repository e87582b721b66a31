"""Waiting for a condition in tests: polling with a generous bound, never a timing assertion."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], timeout_s: float = 60.0, interval_s: float = 0.05) -> bool:
    """Whether `check` becomes true within `timeout_s` (polling every `interval_s`)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True
