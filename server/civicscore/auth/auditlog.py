"""Refusals to the audit log, off the request path.

A refused call must cost the request thread almost nothing (a flood of refused
calls must not slow anyone else), so refusals are queued and handled by one
thread: identical refusals (same caller, method and reason) within WINDOW_S are
logged and written to the audit log once, with their count. Never a secret:
only identities, methods and reasons.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from civicscore.store import Store
from civicscore.store.base import NewAuditEvent

log = logging.getLogger("civicscore.access")

WINDOW_S = 10.0
FLUSH_S = 0.2


@dataclass
class _Pending:
    first_at: dt.datetime
    count: int


class RefusalAudit:
    def __init__(self, store: Store, *, clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.clock = clock
        self._queue: queue.SimpleQueue[tuple[str, str, str, str, dt.datetime] | None] = queue.SimpleQueue()
        self._pending: dict[tuple[str, str, str, str], _Pending] = {}
        self._written: dict[tuple[str, str, str, str], dt.datetime] = {}  # when a key was last written
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="refusal-audit", daemon=True)
        self._thread.start()

    def refused(self, *, actor: str, method: str, code: str, reason: str) -> None:
        """Record a refused call (logged and audited within FLUSH_S, repeats within WINDOW_S as one)."""
        self._queue.put((actor, method, code, reason, self.clock()))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5.0)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=FLUSH_S)
            except queue.Empty:
                self._flush(force=False)
                continue
            if item is None:
                self._flush(force=True)
                return
            actor, method, code, reason, at = item
            key = (actor, method, code, reason)
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = _Pending(at, 1)
            else:
                pending.count += 1
            self._flush(force=False)

    def _flush(self, *, force: bool) -> None:
        """Write each refusal at once, unless the same one was written less than WINDOW_S ago: then
        wait for the window to end and write the repeats as one entry with their count."""
        now = self.clock()
        window = dt.timedelta(seconds=WINDOW_S)
        for key in [key for key, at in self._written.items() if now - at >= window and key not in self._pending]:
            del self._written[key]
        due = [key for key in self._pending
               if force or key not in self._written or now - self._written[key] >= window]
        if not due:
            return
        for key in due:
            self._written[key] = now
        events = []
        for key in due:
            pending = self._pending.pop(key)
            actor, method, code, reason = key
            repeats = f" ({pending.count} times)" if pending.count > 1 else ""
            log.warning("refused %s for %s: %s (%s)%s", method, actor, reason, code, repeats)
            events.append(NewAuditEvent(at=pending.first_at, actor=actor, action=method, target=method,
                                        outcome="refused", detail={"code": code, "reason": reason,
                                                                   "count": pending.count}))
        try:
            self.store.append_audit(events)
        except Exception:
            log.exception("could not write %d refusal(s) to the audit log", len(events))
