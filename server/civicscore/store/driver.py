"""Hot-path SQL at the DB-API level, and set membership without expanding IN lists.

Profiles of a 1,000-outcome batch showed most of the store's time in SQLAlchemy
itself: re-rendering `IN (...)` with one bound parameter per value on every
call, and running a bind processor per value per row (`UtcDateTime`, `Date`).
So the few statements that move whole batches go through
`Connection.exec_driver_sql` (still SQLAlchemy Core: same connection,
transaction, events and error wrapping, hence the same retries) with values
already in the stored representation, and a set of keys travels as ONE
parameter:

- SQLite: `col IN (SELECT value FROM json_each(?))` with a JSON array;
- PostgreSQL: `col IN (SELECT unnest(%s::text[]))` with a list.

Both use the column's index, so a lookup of any size is one statement with a
fixed text, compiled once. On PostgreSQL the plain `col = ANY(%s)` does not:
for 1,000 keys against 200,000 rows its planner estimates 1,000 index probes
dearer than a sequential scan (16.5 ms measured against 2.0 ms for the probes,
EXPLAIN ANALYZE), and the scan grows with the table; the set from `unnest` is
joined to the index by a nested loop whatever the table's size. `one_of` gives the same
membership test as a Core expression for queries that stay in Core. Bulk
writes are one executemany on SQLite and one statement over `unnest(arrays)`
on PostgreSQL (see `Driver.insert_many`).

Stored representations are the ones SQLAlchemy's own types write (the tests
read driver-written rows through the Core tables, and find Core-written
outcomes to be duplicates of the same outcomes sent again): on SQLite a date
is ISO text and a timestamp is naive UTC text `YYYY-MM-DD HH:MM:SS.ffffff`,
which sorts like the instant; PostgreSQL takes `date` and naive UTC `datetime`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, bindparam, func, literal_column, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.exc import DBAPIError, IntegrityError

# SQLite's sqlite3 module error name (Python 3.11+) and PostgreSQL's SQLSTATE for a foreign key violation.
_SQLITE_FOREIGN_KEY = "SQLITE_CONSTRAINT_FOREIGNKEY"
_POSTGRES_FOREIGN_KEY = "23503"
_POSTGRES_UNIQUE = "23505"


def is_postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def one_of(connection: Connection, column: ColumnElement[Any], values: Iterable[str]) -> ColumnElement[bool]:
    """`column` is one of `values` (strings), as a single bound parameter on either backend."""
    listed = list(values)
    if is_postgres(connection):
        return column.in_(select(func.unnest(bindparam(None, listed, type_=postgresql.ARRAY(String)))))
    members: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(bindparam(None, json.dumps(listed, ensure_ascii=False), type_=String))
    )
    return column.in_(members)


def around(connection: Connection, column: ColumnElement[Any], values: Iterable[str]) -> ColumnElement[bool]:
    """`column` is one of `values`, or (PostgreSQL) between two of them: for a set of values that lie together
    in an index whose key starts with `column` (a group of units in the state table, say), read as that range
    of the index, in its order.

    SQLite probes the index for each value (`one_of`). On PostgreSQL membership is hashed against a scan of
    the whole table, and a range with membership besides loses the index's order (the rows are sorted again,
    on disk past `work_mem`); so the test is the range alone, from the least of the values to the greatest in
    the database's own collation: it holds for every value, and for any other in between."""
    listed = list(values)
    if not is_postgres(connection):
        return one_of(connection, column, listed)
    least, greatest = (select(bound(literal_column("c"))).select_from(
        func.unnest(bindparam(None, listed, type_=postgresql.ARRAY(String))).alias("c")).scalar_subquery()
        for bound in (func.min, func.max))
    return and_(column >= least, column <= greatest)


# A column of a driver-level bulk statement: its name and its PostgreSQL type (for `unnest`).
BulkColumn = tuple[str, str]


def unnest(types: Sequence[str]) -> str:
    """PostgreSQL's `unnest(?::t1[], ?::t2[], ...)`: one array parameter per column, rows in parallel."""
    return "unnest(" + ", ".join(f"?::{name}[]" for name in types) + ")"


def arrays(rows: Sequence[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """Rows turned into one list per column, the parameters of `unnest`."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def is_foreign_key_violation(error: IntegrityError) -> bool:
    original = error.orig
    return (
        getattr(original, "sqlstate", None) == _POSTGRES_FOREIGN_KEY
        or getattr(original, "sqlite_errorname", None) == _SQLITE_FOREIGN_KEY
    )


def is_unique_violation_postgres(error: IntegrityError) -> bool:
    """A PostgreSQL unique (or primary key) violation."""
    return getattr(error.orig, "sqlstate", None) == _POSTGRES_UNIQUE


class Driver:
    """Runs qmark-style SQL (`?` placeholders) on the connection's DB-API cursor, either backend."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = is_postgres(connection)

    def _sql(self, statement: str) -> str:
        # psycopg uses %s; no statement here contains a literal "?" or "%".
        return statement.replace("?", "%s") if self.postgres else statement

    def run(self, statement: str, parameters: tuple[Any, ...] = ()) -> CursorResult[*tuple[Any, ...]]:
        return self.connection.exec_driver_sql(self._sql(statement), parameters)

    def run_many(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """One executemany: no per-row Python in SQLAlchemy (SQLite's hot path; see `insert_many`). The rows it
        changed (both drivers sum them over the executemany)."""
        if not rows:
            return 0
        return int(self.connection.exec_driver_sql(self._sql(statement), list(rows)).rowcount)

    def insert_many(
        self, table: str, columns: Sequence[BulkColumn], rows: Sequence[tuple[Any, ...]], *, large_text: bool = False,
        new_on: str | None = None,
    ) -> int:
        """Insert `rows` (tuples in `columns` order) in one statement's worth of work; the rows inserted. With
        `new_on` (a column with a unique constraint) a row whose value is stored already is left out
        (`ON CONFLICT (new_on) DO NOTHING`), and the count tells whether any was.

        SQLite: an executemany, a C loop over one prepared statement.
        PostgreSQL: one `INSERT ... SELECT * FROM unnest(arrays)`; psycopg's
        executemany, even pipelined, costs ~30 us a row in server round trips
        (measured: 26-32 ms against 3-5 ms for 1,000 rows). Except when rows
        carry kilobytes of text each (`large_text`): PostgreSQL handles arrays
        of big elements badly (4 s against 0.17 s by executemany for 1,100
        rows of 18 KB), so those go through executemany.
        """
        if not rows:
            return 0
        names = ", ".join(name for name, _ in columns)
        skip = f" ON CONFLICT ({new_on}) DO NOTHING" if new_on else ""
        if self.postgres and not large_text:
            return int(self.run(f"INSERT INTO {table} ({names}) SELECT * FROM {unnest([t for _, t in columns])}{skip}",
                                arrays(rows)).rowcount)
        return self.run_many(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}){skip}", rows)

    def copy_rows(self, table: str, columns: Sequence[BulkColumn], rows: Sequence[tuple[Any, ...]]) -> None:
        """PostgreSQL only: `rows` into `table` by binary COPY, in the connection's transaction: no SQL text, no
        arrays to dump and parse, each value written by psycopg's C dumpers straight into the wire format.
        Columns left out take their defaults, row by row in order (a serial key numbers the rows as sent).

        The COPY runs on the DB-API connection, under SQLAlchemy; its errors are wrapped as SQLAlchemy's would be
        (a violated constraint is an IntegrityError), so the callers' handling and the write retries see them."""
        import psycopg

        assert self.postgres, "COPY is PostgreSQL's"
        statement = f"COPY {table} ({', '.join(name for name, _ in columns)}) FROM STDIN (FORMAT BINARY)"
        raw = self.connection.connection.driver_connection
        assert raw is not None
        try:
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types([kind for _, kind in columns])
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:
            raise DBAPIError.instance(statement, None, error, psycopg.Error) from error

    def any_of(self, column: str) -> str:
        """SQL testing `column` against the set passed as one parameter made by `keys`."""
        if self.postgres:
            return f"{column} IN (SELECT unnest(?::text[]))"
        return f"{column} IN (SELECT value FROM json_each(?))"

    def around(self, column: str) -> str:
        """`around` (the function) at the driver level: SQL testing `column` against the set passed as the
        parameters `around_keys` makes."""
        if not self.postgres:
            return self.any_of(column)
        least, greatest = (f"(SELECT {bound}(c) FROM unnest(?::text[]) AS c)" for bound in ("min", "max"))
        return f"{column} >= {least} AND {column} <= {greatest}"

    def around_keys(self, values: Iterable[str]) -> tuple[Any, ...]:
        """The parameters of `around`."""
        keys = self.keys(values)
        return (keys, keys) if self.postgres else (keys,)

    def keys(self, values: Iterable[str]) -> Any:
        """The parameter for `any_of`."""
        listed = list(values)
        return listed if self.postgres else json.dumps(listed, ensure_ascii=False)

    def next_serials(self, table: str, column: str, count: int) -> list[int]:
        """`count` new ascending values for `table.column`, an autoincrementing integer key.

        Taken up front so a batch can be inserted with executemany and still know
        its keys (arrival order for outcomes, successors for recommendations).
        PostgreSQL draws them from the column's sequence (safe between replicas);
        SQLite continues after the largest key, safe because `BEGIN IMMEDIATE`
        holds the database's only write lock until commit.
        """
        if count <= 0:
            return []
        if self.postgres:
            drawn = self.run(
                "SELECT nextval(s.sequence) FROM (SELECT pg_get_serial_sequence(?, ?)::regclass AS sequence) AS s, "
                "generate_series(1, ?)",
                (table, column, count),
            ).scalars().all()
            return sorted(int(value) for value in drawn)
        largest = int(self.run(f"SELECT coalesce(max({column}), 0) FROM {table}").scalar_one())
        return list(range(largest + 1, largest + 1 + count))

    # -- stored representations -----------------------------------------------------
    def date(self, value: dt.date | None) -> Any:
        if value is None or self.postgres:
            return value
        return value.isoformat()

    def timestamp(self, value: dt.datetime) -> Any:
        """An instant as stored: naive UTC (a naive value is taken as UTC, as `UtcDateTime` does)."""
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value if self.postgres else value.isoformat(" ", "microseconds")

    def date_from(self, stored: Any) -> dt.date:
        """A stored date read back (psycopg already returns `date`)."""
        return stored if isinstance(stored, dt.date) else dt.date.fromisoformat(stored)


def timestamp_from(stored: Any) -> dt.datetime:
    """A stored instant (naive UTC: a `datetime` from psycopg, `YYYY-MM-DD HH:MM:SS.ffffff` from SQLite) as an
    aware UTC datetime, as `tables.UtcDateTime` reads it."""
    moment = stored if isinstance(stored, dt.datetime) else dt.datetime.fromisoformat(stored)
    return moment.replace(tzinfo=dt.UTC)
