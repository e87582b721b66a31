"""What replicas sharing one database coordinate through it: exclusive sections, leadership, notices.

On PostgreSQL (replicas behind a load balancer):
- `exclusive(name)`: one replica at a time runs the section (a session advisory lock held on a
  connection of its own for the section's length); others wait for it.
- `try_lead(name)`: at most one replica holds the leadership (`pg_try_advisory_lock` on a connection
  kept open); when the holder dies its connection closes, PostgreSQL frees the lock and another
  replica's next try takes it over.
- `listen(...)`: a thread that LISTENs on the installation's channel, calls back on every notice,
  and calls `on_connect` whenever it (re)connects, so that a listener that was down catches up.
- `notify(connection)`: NOTIFY in the caller's transaction (delivered when it commits).

Lock keys and the channel name are derived from the database and schema, so two installations in
one PostgreSQL server (or tests, each in its own schema or database) never meet.

On SQLite (the embedded, single-process default) the same calls work within the process:
sections take a process-local lock, leadership is always granted, and there are no notices (the
process applies its own changes directly).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

log = logging.getLogger("civicscore.cluster")

RECONNECT_S = (0.5, 1.0, 2.0, 5.0)  # a lost listener connection is retried after these pauses (then the last)
_NOTICE_POLL_S = 1.0
_LOCK_TIMEOUT = "300s"  # how long an exclusive section waits for another replica's before giving up


class Leadership(Protocol):
    """A leadership held by this process until released (or until its connection is lost)."""

    def held(self) -> bool:
        """True while this process still leads (checks the connection that holds the lock)."""
        ...

    def release(self) -> None: ...


class Listener(Protocol):
    """A running notice listener."""

    @property
    def connected(self) -> bool: ...

    def close(self) -> None: ...


def _key(namespace: str, name: str) -> int:
    """A signed 64-bit advisory lock key for `name` in this installation."""
    digest = hashlib.sha256(f"{namespace}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Coordination:
    """Exclusive sections, leadership and notices for the processes sharing `engine`'s database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._local_locks: dict[str, threading.Lock] = {}
        self._local_guard = threading.Lock()
        if self.postgres:
            with engine.connect() as connection:
                database, schema = connection.execute(text("SELECT current_database(), current_schema()")).one()
            self.namespace = f"{database}.{schema}"
        else:
            self.namespace = str(engine.url.database)
        self.channel = "civicscore_" + hashlib.sha256(self.namespace.encode()).hexdigest()[:20]

    def key(self, name: str) -> int:
        return _key(self.namespace, name)

    # -- exclusive sections --------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Run the block while no other process of the installation runs a block of `name`."""
        if not self.postgres:
            with self._local_lock(name):
                yield
            return
        with self._local_lock(name), self._dedicated("lock") as connection:  # the local lock spares a connection
            connection.execute(f"SET lock_timeout = '{_LOCK_TIMEOUT}'")
            connection.execute("SELECT pg_advisory_lock(%s)", (self.key(name),))
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a lost connection has released it already
                    connection.execute("SELECT pg_advisory_unlock(%s)", (self.key(name),))

    def lock_in_transaction(self, connection: Connection, name: str, *, shared: bool) -> None:
        """Hold `name` until `connection`'s transaction ends: shared (many readers) or exclusive.

        SQLite's write transactions are serialised already (BEGIN IMMEDIATE): nothing to do there."""
        if self.postgres:
            function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            connection.execute(text(f"SELECT {function}(:key)"), {"key": self.key(name)})

    def _local_lock(self, name: str) -> threading.Lock:
        with self._local_guard:
            return self._local_locks.setdefault(name, threading.Lock())

    # -- leadership -------------------------------------------------------------------------
    def try_lead(self, name: str) -> Leadership | None:
        """The leadership of `name` if no other process holds it, else None (try again later)."""
        if not self.postgres:
            return _LocalLeadership()
        connection = self._connect("leader")
        try:
            acquired = connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key(name),)).fetchone()
        except Exception:
            connection.close()
            raise
        if not acquired or not acquired[0]:
            connection.close()
            return None
        return _HeldLeadership(connection)

    # -- notices --------------------------------------------------------------------------
    def notify(self, connection: Connection, payload: str) -> None:
        """Send `payload` to every listener of the installation when `connection`'s transaction commits."""
        if self.postgres:
            connection.execute(text("SELECT pg_notify(:channel, :payload)"),
                               {"channel": self.channel, "payload": payload})

    def listen(self, on_notice: Callable[[str], None], on_connect: Callable[[], None]) -> Listener | None:
        """Start listening (PostgreSQL); None on SQLite, where there is nobody else to hear from."""
        if not self.postgres:
            return None
        return _NoticeListener(self, on_notice, on_connect)

    # -- connections of our own -------------------------------------------------------------
    def _connect(self, purpose: str) -> Any:
        """A psycopg connection outside the pool (autocommit), for locks and LISTEN held for long; named
        `civicscore-<purpose>-<pid>` in pg_stat_activity, so an operator can tell what holds what."""
        import psycopg  # only on PostgreSQL

        url = self.engine.url.set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10,
                               application_name=f"civicscore-{purpose}-{os.getpid()}")

    @contextlib.contextmanager
    def _dedicated(self, purpose: str) -> Iterator[Any]:
        connection = self._connect(purpose)
        try:
            yield connection
        finally:
            connection.close()


class _LocalLeadership:
    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class _HeldLeadership:
    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def held(self) -> bool:
        with self._lock:
            if self._connection.closed:
                return False
            try:
                self._connection.execute("SELECT 1")
            except Exception:  # the connection is gone, and with it the lock
                with contextlib.suppress(Exception):
                    self._connection.close()
                return False
            return True

    def release(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self._connection.close()  # closing the session frees its advisory locks


class _NoticeListener:
    """A daemon thread: LISTEN, call back per notice; reconnect (and call `on_connect`) when the link drops."""

    def __init__(self, coordination: Coordination, on_notice: Callable[[str], None],
                 on_connect: Callable[[], None]) -> None:
        self._coordination = coordination
        self._on_notice = on_notice
        self._on_connect = on_connect
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._connection: Any = None
        self._thread = threading.Thread(target=self._run, name="ruleset-listener", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()
        self._thread.join(5.0)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                connection = self._connection = self._coordination._connect("listener")
                connection.execute(f'LISTEN "{self._coordination.channel}"')
                self._connected.set()
                if failures:
                    log.warning("listening for ruleset changes again after %d failed attempt(s)", failures)
                failures = 0
                self._callback(self._on_connect)  # catch up on what was missed while not listening
                while not self._stop.is_set():
                    for notice in connection.notifies(timeout=_NOTICE_POLL_S):
                        self._callback(functools.partial(self._on_notice, notice.payload))
            except Exception as error:
                self._connected.clear()
                if self._stop.is_set():
                    return
                pause = RECONNECT_S[min(failures, len(RECONNECT_S) - 1)]
                if failures == 0:
                    log.error("the ruleset listener lost its database connection (%s); reconnecting, and "
                              "catching up when it is back", error)
                failures += 1
                self._stop.wait(pause)
            finally:
                connection, self._connection = self._connection, None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()
        self._connected.clear()

    @staticmethod
    def _callback(call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:  # the listener must outlive a failed catch-up; the next notice or check retries
            log.exception("handling a ruleset change notice failed")
