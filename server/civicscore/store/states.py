"""Keeping `assignment_states` equal to its definition, inside the writers' transactions.

Invariant (checked by the tests against a ROW_NUMBER query over `outcomes`):
every assignment has exactly one state row, holding its current `unit_code`
and `due_on`, and the fields of its outcome with the greatest
(`reported_at`, `seq`), or NULLs when it has none. Two writers maintain it:

- `track_assignments`, called by `upsert_assignments` for the rows it inserted
  or changed;
- `apply_outcomes`, called by `record_outcomes` with the new outcomes (on
  PostgreSQL `apply_copied_outcomes`, from the rows it COPYed).

The outcome rule is an "only if newer" update, so it is order-independent:
applying outcomes in any grouping gives the maximum. On PostgreSQL two
replicas updating one state row serialise on its row lock: a row another
transaction has changed meanwhile is compared again, once that one commits,
against the winner's version (READ COMMITTED's recheck), so the result is
still the maximum. Rows are locked in assignment order, so that two batches
never wait for each other in a cycle: the UPDATE walks the batch's outcomes
sorted by assignment and probes each one's state row by its index (a nested
loop keeps its outer side's order), locking each row as it updates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Connection

from civicscore.store.driver import Driver
from civicscore.store.tables import assignment_states

# Positions in the outcome rows `record_outcomes` inserts (see writes.OUTCOME_COLUMNS).
SEQ, OUTCOME_ID, ASSIGNMENT_ID, STATUS, COMPLETED_ON, QUALITY, REMINDERS, REPORTED_AT = range(8)

# SQLite: an executemany of this, one row at a time.
_APPLY = (
    "UPDATE assignment_states SET status = ?, completed_on = ?, quality = ?, reminders = ?, "
    "reported_at = ?, outcome_seq = ? "
    "WHERE assignment_id = ? AND (outcome_seq IS NULL OR (reported_at, outcome_seq) < (?, ?))"
)
# The sequence that numbers outcomes (`seq`: their arrival order).
OUTCOME_SEQUENCE = "pg_get_serial_sequence('outcomes', 'seq')::regclass"
# PostgreSQL, after a batch was COPYed into `outcomes` (writes.record_outcomes): its rows, those numbered from the
# first number the COPY may have drawn (the parameter) up to the last this session drew, and written by the same
# (sub)transaction as that last one. Concurrent COPYs draw from the sequence row by row, so other batches' rows are
# numbered in that range too; `xmin` leaves them out (the ones committed would change nothing, but would be locked
# and read again). Each bound is a subquery, computed once, so that the primary key's index serves the range.
_LAST_DRAWN = f"(SELECT currval({OUTCOME_SEQUENCE}))"
_COPIED = (
    f"outcomes WHERE seq >= ? AND seq <= {_LAST_DRAWN} "
    f"AND xmin = (SELECT xmin FROM outcomes WHERE seq = {_LAST_DRAWN})"
)
# One UPDATE from the latest of the outcomes of each assignment (a tie on reported_at goes to the later seq),
# sorted by assignment: the nested loop that probes each one's state row locks the rows in that order (the
# module's docstring; a test in tests/test_store.py watches the locks).
_APPLY_COPIED = (
    "UPDATE assignment_states AS s SET status = v.status, completed_on = v.completed_on, quality = v.quality, "
    "reminders = v.reminders, reported_at = v.reported_at, outcome_seq = v.seq "
    "FROM (SELECT DISTINCT ON (assignment_id) assignment_id, status, completed_on, quality, reminders, reported_at, "
    f"seq FROM {_COPIED} ORDER BY assignment_id, reported_at DESC, seq DESC) AS v "
    "WHERE s.assignment_id = v.assignment_id "
    "AND (s.outcome_seq IS NULL OR (s.reported_at, s.outcome_seq) < (v.reported_at, v.seq))"
)


def track_assignments(
    connection: Connection, inserted: Sequence[dict[str, Any]], updated: Sequence[dict[str, Any]]
) -> None:
    """New assignments get an empty state; changed ones carry their (possibly new) unit and due date."""
    if inserted:
        connection.execute(insert(assignment_states), [
            {"due_on": v["due_on"], "unit_code": v["unit_code"], "assignment_id": v["assignment_id"]}
            for v in inserted
        ])
    if updated:
        statement = (
            update(assignment_states)
            .where(assignment_states.c.assignment_id == bindparam("key_assignment_id"))
            .values(due_on=bindparam("due_on"), unit_code=bindparam("unit_code"))
        )
        connection.execute(statement, [
            {"key_assignment_id": v["assignment_id"], "due_on": v["due_on"], "unit_code": v["unit_code"]}
            for v in sorted(updated, key=lambda v: str(v["assignment_id"]))
        ])


def last_outcome_number(driver: Driver) -> int:
    """PostgreSQL: the last number the outcomes' sequence gave any session (0 before the first). Read before a
    batch is COPYed into `outcomes`, it is the `since` of `apply_copied_outcomes`: every row COPYed after it has a
    greater `seq`."""
    return int(driver.run(f"SELECT coalesce(pg_sequence_last_value({OUTCOME_SEQUENCE}), 0)").scalar_one())


def apply_copied_outcomes(driver: Driver, since: int) -> None:
    """PostgreSQL: `apply_outcomes` for the batch this session just COPYed into `outcomes`, its first `seq` being
    at least `since`; set-based, from the table itself."""
    driver.run(_APPLY_COPIED, (since,))


def apply_outcomes(driver: Driver, rows: Sequence[tuple[Any, ...]]) -> None:
    """SQLite: make each newly stored outcome the state of its assignment if it is the latest.

    `rows` are the inserted outcome rows in stored representation, in `seq`
    order. Within the batch only the latest per assignment is applied (a tie
    on reported_at goes to the later one, which has the greater seq); against
    the stored state the UPDATE's condition decides.
    """
    latest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        current = latest.get(row[ASSIGNMENT_ID])
        if current is None or row[REPORTED_AT] >= current[REPORTED_AT]:
            latest[row[ASSIGNMENT_ID]] = row
    ordered = sorted(latest.items())
    if not ordered:
        return
    assert not driver.postgres, "PostgreSQL applies a COPYed batch: apply_copied_outcomes"
    driver.run_many(_APPLY, [
        (row[STATUS], row[COMPLETED_ON], row[QUALITY], row[REMINDERS], row[REPORTED_AT], row[SEQ],
         assignment_id, row[REPORTED_AT], row[SEQ])
        for assignment_id, row in ordered
    ])
