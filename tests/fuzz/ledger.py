"""Rows of every table, read from the server's SQLite file, to prove that a refused call stored
nothing.

The file is opened read-only (the test never writes it). `PRAGMA data_version` changes whenever
another connection commits, so counting is needed only when it moved: a refused call that leaves it
unchanged committed nothing at all, the cheap and common case.

One asynchronous write is legitimate: the access interceptor queues refusals (a missing permission,
a rate limit) and a background thread appends them to `audit_events` within a fraction of a second,
possibly while a later call runs. Those rows (`outcome = 'refused'`) are left out of the counts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

_REFUSAL_AUDIT = "audit_events"  # where the interceptor's asynchronous refusal entries go


class RowLedger:
    """Where each table's rows end (its largest rowid), re-read only when the database changed.

    Counting every table after every accepted write costs milliseconds once the outcome and audit
    tables hold tens of thousands of rows; the largest rowid is one index lookup. A refused call that
    moved `data_version` is then checked precisely: the rows past each table's old end are counted
    (less the interceptor's refusal entries), and a table whose end moved back lost rows.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self._connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None,
                                           check_same_thread=False)
        self._connection.execute("PRAGMA busy_timeout = 10000")
        self._version = -1
        self._ends: dict[str, int] = {}
        self._tables = [row[0] for row in self._connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND sql NOT LIKE '%WITHOUT ROWID%' ORDER BY name")]
        self._refusal_column = self._has_outcome_column()

    def _has_outcome_column(self) -> bool:
        if _REFUSAL_AUDIT not in self._tables:
            return False
        columns = [row[1] for row in self._connection.execute(f"PRAGMA table_info({_REFUSAL_AUDIT})")]
        return "outcome" in columns

    def close(self) -> None:
        self._connection.close()

    def version(self) -> int:
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def ends(self) -> dict[str, int]:
        return {table: int(self._connection.execute(f'SELECT coalesce(max(rowid), 0) FROM "{table}"').fetchone()[0])
                for table in self._tables}

    def before(self) -> int:
        """Call before a call: brings the table ends up to date; returns the version they hold."""
        version = self.version()
        if version != self._version:
            self._ends = self.ends()
            self._version = version
        return version

    def moved(self, version: int) -> bool:
        """Whether anything was committed since `before()` returned `version`."""
        return self.version() != version

    def changed_since(self, version: int) -> dict[str, int]:
        """Per table, rows added since `before()` returned `version` (negative: the table lost rows at
        its end); {} when nothing was committed."""
        now = self.version()
        if now == version:
            return {}
        ends = self.ends()
        delta: dict[str, int] = {}
        for table, end in ends.items():
            old = self._ends.get(table, 0)
            if end < old:
                delta[table] = end - old
            elif end > old:
                where = " AND outcome != 'refused'" if table == _REFUSAL_AUDIT and self._refusal_column else ""
                added = int(self._connection.execute(
                    f'SELECT count(*) FROM "{table}" WHERE rowid > ?{where}', (old,)).fetchone()[0])
                if added:
                    delta[table] = added
        self._ends, self._version = ends, now
        return delta

    def reopen(self) -> None:
        """After a server restart (tables may have been migrated)."""
        self._connection.close()
        self.__init__(self.database)  # type: ignore[misc]
