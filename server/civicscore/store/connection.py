"""Engines for SQLite and PostgreSQL, and running the schema migrations.

SQLite is tuned for a server with several handler threads: WAL (readers never
block the writer), `synchronous=FULL` (an acknowledged commit survives a
crash or SIGKILL), foreign keys on, a busy timeout (30 s, or the URL's
`?timeout=` in seconds), and write transactions that take the write lock up
front with `BEGIN IMMEDIATE`, so concurrent writers queue instead of failing
with "database is locked". `SqlStore`
checkpoints the WAL on a background thread (see `checkpoints`); request
connections only checkpoint as a backstop, past `WAL_AUTOCHECKPOINT_PAGES`.

PostgreSQL connections are counted: a process never holds more than its pool
(`--db-pool-size`, no overflow) plus `CONNECTIONS_OUTSIDE_POOL`, so that
replicas x that peak can be kept within the server's `max_connections` (the
connection budget, README "Running several replicas"). `check_connection_budget`
logs the peak at start-up and refuses a pool that the server cannot take.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, RootTransaction, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from civicscore.store.checkpoints import passive_checkpoint
from civicscore.store.diagnosis import DatabaseUnusable, check_schema_is_ours

log = logging.getLogger("civicscore.store")

# Execution option that marks a connection's transactions as writes (BEGIN IMMEDIATE on SQLite).
WRITE_OPTION = "civicscore_write"
BUSY_TIMEOUT_MS = 30_000
# SQLite checkpoints in the committing connection once the WAL holds this many pages. The
# background checkpointer (see `checkpoints`) normally keeps the WAL copied long before: this
# is the backstop that bounds the WAL under sustained writes, when it never stops growing
# long enough for a background checkpoint to catch up with the last commit and let the next
# writer restart it. By then nearly every frame has been copied, so the committing request
# only copies the remainder. 16,384 pages of 4 KiB: 64 MiB, above any single write.
WAL_AUTOCHECKPOINT_PAGES = 16_384
# Arbitrary constant: serialises migrations of replicas starting at once on one PostgreSQL.
_MIGRATION_LOCK_ID = 0x63697669  # "civi"
# Pooled connections per process (`--db-pool-size`). Each call holds at most one at a time, and 10 of
# 16 handler threads in the database at once keep two cores busy; a call that finds all 10 in use
# waits for one (SQLAlchemy's pool timeout, 30 s).
DEFAULT_POOL_SIZE = 10
# PostgreSQL connections a process opens outside its pool (store/cluster.py), each for a long time:
# the ruleset listener (LISTEN), the rules-folder watcher's leadership (a session advisory lock) and
# an exclusive section (a session advisory lock for the section's length, e.g. an activation). Part
# of the connection budget: keep this in step with store/cluster.py.
CONNECTIONS_OUTSIDE_POOL = 3


def create_store_engine(url: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """An engine for `sqlite:///path` or `postgresql[+psycopg]://...`, configured as described above.

    On PostgreSQL `pool_size` is the most connections the pool ever opens (no overflow), so that a
    replica's share of the server's `max_connections` is known; SQLite connections are only file
    handles, so there the pool may overflow to three times `pool_size` and readers never queue
    behind writers that wait for the write lock.
    """
    if pool_size < 1:
        raise ValueError(f"the database pool size must be at least 1, not {pool_size}")
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed):
            raise ValueError(
                f"in-memory SQLite ({url!r}) is not supported: every connection would see its own "
                "empty database; use a file, e.g. sqlite:///var/civicscore.db"
            )
        busy_timeout_ms = _busy_timeout_ms(parsed.query.get("timeout"), url)
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=2 * pool_size,
            connect_args={"timeout": busy_timeout_ms / 1000},
        )
        _tune_sqlite(engine, busy_timeout_ms)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql+psycopg://...")


@dataclass(frozen=True)
class ConnectionBudget:
    """How many connections this process may open, and how many the PostgreSQL server takes."""

    pool: int  # the pool's most (no overflow on PostgreSQL)
    outside_pool: int  # CONNECTIONS_OUTSIDE_POOL
    accepted: int  # connections the server accepts from this role on this database
    why_accepted: str  # how `accepted` follows from the server's settings
    remedy: str  # how to raise `accepted`
    in_use: int  # client connections open on the server now (every database, every replica)

    @property
    def peak(self) -> int:
        return self.pool + self.outside_pool


def connection_budget(engine: Engine, pool_size: int) -> ConnectionBudget | None:
    """The budget on PostgreSQL, read from the server's settings; None on SQLite (no server to share)."""
    if engine.dialect.name != "postgresql":
        return None
    query = text("""
        SELECT current_setting('max_connections')::int,
               current_setting('superuser_reserved_connections')::int,
               coalesce((SELECT setting::int FROM pg_settings WHERE name = 'reserved_connections'), 0),
               r.rolsuper, r.rolconnlimit, d.datconnlimit,
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
               current_user, current_database()
        FROM pg_roles r, pg_database d
        WHERE r.rolname = current_user AND d.datname = current_database()
    """)
    with engine.connect() as connection:
        maximum, superuser_reserved, reserved, superuser, role_limit, database_limit, in_use, role, database = (
            connection.execute(query).one())
    remedy = "raise max_connections in postgresql.conf (and restart PostgreSQL)"
    if superuser:  # superusers may use the reserved slots and are not held to role or database limits
        accepted, why = maximum, f"max_connections {maximum}; superusers may use the reserved slots"
    else:
        accepted = maximum - superuser_reserved - reserved
        why = f"max_connections {maximum} less {superuser_reserved + reserved} reserved"
        for limit, kind, name in ((role_limit, "ROLE", role), (database_limit, "DATABASE", database)):
            if 0 <= limit < accepted:
                accepted, why = limit, f"{kind.lower()} {name}'s CONNECTION LIMIT {limit}"
                remedy = f"raise it: ALTER {kind} \"{name}\" CONNECTION LIMIT n"
    return ConnectionBudget(pool=pool_size, outside_pool=CONNECTIONS_OUTSIDE_POOL, accepted=accepted,
                            why_accepted=why, remedy=remedy, in_use=in_use)


def check_connection_budget(engine: Engine, pool_size: int) -> ConnectionBudget | None:
    """Log this process's most connections; refuse (DatabaseUnusable) a pool the server cannot take."""
    budget = connection_budget(engine, pool_size)
    if budget is None:
        log.info("database connections: at most %d SQLite connections (pool %d, overflow %d)",
                 3 * pool_size, pool_size, 2 * pool_size)
        return None
    where = engine.url.render_as_string(hide_password=True)
    if budget.peak > budget.accepted:
        raise DatabaseUnusable(
            f"--db-pool-size {budget.pool} cannot work: this server would open up to {budget.peak} connections "
            f"to {where} ({budget.pool} pooled + {budget.outside_pool} of its own for ruleset notices, "
            f"leadership and exclusive sections), but PostgreSQL accepts {budget.accepted} ({budget.why_accepted}). "
            f"Give a --db-pool-size of at most {budget.accepted - budget.outside_pool} for one replica (replicas x "
            f"(pool + {budget.outside_pool}) must stay within {budget.accepted}), or {budget.remedy}")
    log.info("database connections: at most %d from this process (pool %d + %d outside the pool); PostgreSQL "
             "accepts %d (%s), %d in use now: replicas x %d must stay within %d (at most %d such replicas)",
             budget.peak, budget.pool, budget.outside_pool, budget.accepted, budget.why_accepted, budget.in_use,
             budget.peak, budget.accepted, budget.accepted // budget.peak)
    if budget.in_use + budget.peak > budget.accepted:
        log.warning("PostgreSQL has %d connections in use: with this process's %d it may run out under load "
                    "(it accepts %d); lower --db-pool-size on the replicas, or %s",
                    budget.in_use, budget.peak, budget.accepted, budget.remedy)
    return budget


def _busy_timeout_ms(given: str | tuple[str, ...] | None, url: str) -> int:
    """The busy timeout in milliseconds: the URL's `timeout` (seconds), else BUSY_TIMEOUT_MS."""
    if given is None:
        return BUSY_TIMEOUT_MS
    try:
        seconds = float(given if isinstance(given, str) else given[-1])
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ValueError(f"the timeout in {url!r} must be seconds from 0 to 3600, e.g. ?timeout=30")
    return round(seconds * 1000)


# Every SQLite connection's durability and integrity settings, the journal mode first (the benchmarks' plain
# sqlite3 connections take the same).
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                  f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}", "PRAGMA foreign_keys=ON")


def _tune_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """The SQLAlchemy-documented recipe for taking over BEGIN from the sqlite3 module."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Stop sqlite3 from issuing its own (deferred) BEGIN; on_begin below issues ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            journal, *rest = SQLITE_PRAGMAS
            cursor.execute(journal)
            mode = cursor.fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise RuntimeError(f"SQLite refused WAL journal mode (got {mode!r})")
            for pragma in rest:
                cursor.execute(pragma)
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def begin_write(connection: Connection) -> RootTransaction:
    """Begin a write transaction: takes SQLite's write lock at once; plain BEGIN on PostgreSQL."""
    connection.execution_options(**{WRITE_OPTION: True})
    return connection.begin()


@contextlib.contextmanager
def begin_schema_change(connection: Connection) -> Iterator[RootTransaction]:
    """A write transaction that also holds PostgreSQL's migration lock until it ends.

    On SQLite, foreign keys are not enforced during the change (SQLite's own procedure for altering a
    table: a migration that copies a table others refer to would otherwise fail on dropping the old
    copy) and are checked as a whole before the commit: a violation rolls everything back."""
    sqlite = connection.dialect.name == "sqlite"
    raw = connection.connection.driver_connection if sqlite else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")  # outside any transaction (it is a no-op inside one)
    try:
        with begin_write(connection) as transaction:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            yield transaction
            if sqlite and transaction.is_active:
                violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if violations:
                    raise RuntimeError(f"the schema change left {len(violations)} broken reference(s), e.g. "
                                       f"{tuple(violations[0])}; nothing was changed")
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")


def migrations_config(**attributes: Any) -> Config:
    """Alembic config pointing at the packaged migrations (works installed, not only from the repo)."""
    folder = resources.files("civicscore.store") / "migrations"
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    config.attributes.update(attributes)
    return config


def schema_revisions() -> tuple[list[str], str]:
    """The schema revisions this civicscore's migrations know, newest first, and the newest."""
    script = ScriptDirectory.from_config(migrations_config())
    return [revision.revision for revision in script.walk_revisions()], script.get_current_head() or ""


def upgrade_schema(engine: Engine) -> None:
    """Run every migration up to head in one transaction (a no-op on an up-to-date database).

    A database that is not civicscore's, or that a newer civicscore migrated, is refused
    before anything changes (see `diagnosis.check_schema_is_ours`). On SQLite a passive
    checkpoint follows, so a migration that rewrote much (0002's backfill) is copied into
    the database file now, not by whichever request commits first.
    """
    config = migrations_config()
    revisions, head = schema_revisions()
    with engine.connect() as connection, begin_schema_change(connection):
        check_schema_is_ours(connection, revisions=revisions, head=head)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    if engine.dialect.name == "sqlite":
        passive_checkpoint(engine)
