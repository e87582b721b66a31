"""SQLite WAL checkpoints on a background thread, not inside the request that happens to commit.

By default SQLite checkpoints in whichever connection commits past 1,000 WAL
pages: that request copies the WAL into the database file and fsyncs it.
Measured here: ~150-200 ms of a 1,100-unit save_evaluations commit (~45 MB of
WAL), and a pause every few outcome batches. Durability does not depend on
checkpoints: a commit is durable once its WAL frames are fsynced
(synchronous=FULL), and recovery replays the WAL. So this thread runs a
PASSIVE checkpoint every `interval` seconds, and request connections only
checkpoint past a high backstop (`connection.WAL_AUTOCHECKPOINT_PAGES`, which
also bounds the WAL under sustained writes). PASSIVE never waits for readers
or writers; it copies what it can, and the rest goes next time. It runs on a
pooled connection, which has synchronous=FULL, so the copy is fsynced before
SQLite may reuse the WAL. `close` stops the thread after a last checkpoint.
"""

from __future__ import annotations

import logging
import threading
import weakref

from sqlalchemy import Engine

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.2


class Checkpointer:
    """A daemon thread running `PRAGMA wal_checkpoint(PASSIVE)` on a SQLite engine."""

    def __init__(self, engine: Engine, *, interval: float = CHECKPOINT_INTERVAL_S) -> None:
        self.engine = engine
        self.interval = interval
        self.runs = 0
        # (busy, WAL frames, frames checkpointed) of the last run, as SQLite reports them.
        self.last: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        # The thread holds only a weak reference: a store dropped without close() is still
        # collected, its connections closed and the WAL folded back, as without this thread.
        self._thread = threading.Thread(
            target=_run, args=(weakref.ref(self), self._stop, interval), name="sqlite-checkpointer", daemon=True
        )
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint now."""
        self.last = passive_checkpoint(self.engine)
        self.runs += 1
        return self.last

    def close(self) -> None:
        """Stop the thread, then checkpoint what the last writes left."""
        self._stop.set()
        self._thread.join()
        try:
            self.checkpoint()
        except Exception:  # the database may already be gone; closing must not fail for it
            log.warning("final WAL checkpoint failed", exc_info=True)


def passive_checkpoint(engine: Engine) -> tuple[int, int, int]:
    """`PRAGMA wal_checkpoint(PASSIVE)` on a pooled connection, outside any transaction (as it must be)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        raw.close()
    return (0, 0, 0) if row is None else (int(row[0]), int(row[1]), int(row[2]))


def _run(checkpointer: weakref.ref[Checkpointer], stop: threading.Event, interval: float) -> None:
    failing = False
    while not stop.wait(interval):
        current = checkpointer()
        if current is None:
            return
        try:
            current.checkpoint()
            failing = False
        except Exception:  # a failed checkpoint only delays the next one; say so once per streak
            if not failing:
                log.warning("background WAL checkpoint failed; retrying every %.1f s", interval, exc_info=True)
            failing = True
        del current
