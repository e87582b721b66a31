"""Where this process is in its shutdown, for the use cases that must behave differently then.

On SIGTERM the server refuses new calls at once and lets the calls in flight run for its grace
(`--shutdown-grace`); calls still running when it passes are cancelled. Two moments matter:
- `begun`: long-lived streams (WatchRecommendations) end now, with UNAVAILABLE and their cursor,
  so that their clients resume on another replica instead of holding the shutdown for its grace;
- `grace_over`: from now on a call that ends was cancelled by the shutdown, not by its client, and
  is logged as such (see `evaluate.cancellation_event`).
"""

from __future__ import annotations

import threading


class Shutdown:
    """The two moments of a shutdown, as events any thread may wait on or test."""

    def __init__(self) -> None:
        self.begun = threading.Event()
        self.grace_over = threading.Event()
