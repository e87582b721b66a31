"""One transaction per Store method: reads, writes, retries and idempotency claims.

PostgreSQL runs replicas side by side at READ COMMITTED, so two writers can
race for the same new key; the loser gets a unique violation (or a deadlock)
and its whole transaction is retried, now seeing the winner's rows. SQLite
needs no retry: `BEGIN IMMEDIATE` serialises writers.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from civicscore.store.base import IdempotencyConflict, IdempotencyRecord, StoreError
from civicscore.store.connection import begin_write
from civicscore.store.tables import idempotency_keys

R = TypeVar("R")
Clock = Callable[[], dt.datetime]

log = logging.getLogger(__name__)

# unique_violation, serialization_failure, deadlock_detected: a concurrent writer won a race.
_RETRYABLE_SQLSTATES = frozenset({"23505", "40001", "40P01"})
_ATTEMPTS = 5


def _retryable(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


class Database:
    """Runs a function in a read or write transaction and commits before returning."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def read(self, work: Callable[[Connection], R]) -> R:
        """Run `work` in a read transaction (a consistent snapshot on SQLite's WAL)."""
        try:
            with self.engine.connect() as connection, connection.begin():
                return work(connection)
        except SQLAlchemyError as error:
            raise StoreError(f"database read failed: {error}") from error

    def read_row(self, statement: str, parameters: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The first row of one statement (`?` placeholders, stored representations), or None: for the hottest
        single-row reads, on a pooled DB-API connection without SQLAlchemy's execution machinery (about half
        the time of `read` for GetEvaluation). One statement sees one consistent snapshot on both backends;
        the pool resets the connection when it takes it back."""
        dbapi = self.engine.dialect.loaded_dbapi
        if self.engine.dialect.name == "postgresql":
            statement = statement.replace("?", "%s")  # as Driver: no statement here holds a literal ? or %
        try:
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                try:
                    cursor.execute(statement, parameters)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            finally:
                raw.close()
        except (SQLAlchemyError, dbapi.Error) as error:
            raise StoreError(f"database read failed: {error}") from error
        return None if row is None else tuple(row)

    def write(
        self,
        work: Callable[[Connection], R],
        *,
        idempotency: IdempotencyRecord | None = None,
        encode: Callable[[R], str] | None = None,
        decode: Callable[[str], R] | None = None,
        keep: Callable[[R], bool] = lambda result: True,
    ) -> R:
        """Run `work` in a write transaction, claiming `idempotency` in the same transaction.

        On a replay (key already claimed by the same request) the stored result
        is decoded and returned without running `work`. `keep` false means the
        write was refused as a whole: the key is left unclaimed.
        """
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.engine.connect() as connection, begin_write(connection):
                    if idempotency is None:
                        return work(connection)
                    assert encode is not None and decode is not None
                    stored = self._claim(connection, idempotency)
                    if stored is not None:
                        return decode(stored)
                    result = work(connection)
                    self._settle(connection, idempotency, encode(result) if keep(result) else None)
                    return result
            except DBAPIError as error:
                if attempt == _ATTEMPTS or not _retryable(error):
                    raise StoreError(f"database write failed: {error.orig}") from error
                log.info("retrying a write that lost a race (attempt %d): %s", attempt, error.orig)
                time.sleep(0.005 * attempt)
            except SQLAlchemyError as error:
                raise StoreError(f"database write failed: {error}") from error
        raise AssertionError("unreachable")

    def _claim(self, connection: Connection, record: IdempotencyRecord) -> str | None:
        """Claim the key; if it is taken, the stored result of the same request (or a conflict)."""
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        claim = dialect_insert(idempotency_keys).values(
            key=record.key,
            method=record.method,
            request_digest=record.request_digest,
            result_json="",
            created_at=self.clock(),
        ).on_conflict_do_nothing(index_elements=["key"]).returning(idempotency_keys.c.key)
        if connection.execute(claim).first() is not None:
            return None
        # Taken: on PostgreSQL the INSERT above waited for the claiming transaction to commit.
        stored = stored_result(connection, record.key, record.method, record.request_digest)
        assert stored is not None, "a claimed key has a row"
        return stored

    def _settle(self, connection: Connection, record: IdempotencyRecord, result_json: str | None) -> None:
        """Store the result under the claimed key, or release the claim when nothing was written."""
        where = idempotency_keys.c.key == record.key
        if result_json is None:
            connection.execute(idempotency_keys.delete().where(where))
        else:
            connection.execute(idempotency_keys.update().where(where).values(result_json=result_json))


def stored_result(connection: Connection, key: str, method: str, request_digest: str) -> str | None:
    """The result JSON stored for a key used by the same request; IdempotencyConflict for another."""
    columns = idempotency_keys.c
    row = connection.execute(
        select(columns.method, columns.request_digest, columns.result_json).where(columns.key == key)
    ).one_or_none()
    if row is None:
        return None
    if (row.method, row.request_digest) != (method, request_digest):
        raise IdempotencyConflict(key, method)
    return str(row.result_json)
