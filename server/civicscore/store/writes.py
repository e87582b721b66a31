"""Batch writes: upserts of units, assignments, measurements, targets, and outcome batches.

Every function runs inside the caller's write transaction and writes through
Core executemany in chunks. Existing rows are read `FOR UPDATE` (a no-op on
SQLite, where BEGIN IMMEDIATE already holds the lock) so that PostgreSQL
replicas cannot interleave a read-compare-write on the same row.

Outcome batches are the hot path (SubmitOutcomes) and go through `driver`:
one bulk insert whose unique index tells whether any id is stored already (a
lookup of the batch's ids only when one is), one bulk update of the
assignments' states (`states.apply_outcomes`), no per-row work in SQLAlchemy.
On PostgreSQL the new rows go into `outcomes` by one binary COPY, numbered by
the table's own sequence as they arrive, and the states follow in one
set-based statement over the range of numbers the COPY drew.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Column, Table, and_, bindparam, insert, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from civicscore.domain.model import (
    Assignment,
    Measurement,
    Outcome,
    OutcomeStatus,
    OutcomeWriteResult,
    Quality,
    Target,
    Unit,
    UpsertCounts,
)
from civicscore.store import rows, states
from civicscore.store.base import MissingReferences
from civicscore.store.driver import (
    BulkColumn,
    Driver,
    is_foreign_key_violation,
    is_unique_violation_postgres,
    one_of,
)
from civicscore.store.tables import assignments, measurements, targets, units

T = TypeVar("T")
Key = tuple[Any, ...]

# Rows per IN (...) lookup of composite keys and per executemany call: far below
# SQLite's 32,766 bound-parameter limit, large enough that round trips do not dominate.
LOOKUP_CHUNK = 1000
WRITE_CHUNK = 5000

# Columns of the outcome rows `record_outcomes` compares and inserts (after `seq`).
OUTCOME_COLUMNS: tuple[BulkColumn, ...] = (
    ("outcome_id", "text"), ("assignment_id", "text"), ("status", "text"), ("completed_on", "date"),
    ("quality", "text"), ("reminders", "int4"), ("reported_at", "timestamp"), ("reporting_system", "text"),
    ("note", "text"),
)
_SELECT_OUTCOMES = f"SELECT {', '.join(name for name, _ in OUTCOME_COLUMNS)} FROM outcomes WHERE "
_STORED_OUTCOME_COLUMNS: tuple[BulkColumn, ...] = (("seq", "int8"), *OUTCOME_COLUMNS, ("recorded_by", "text"))
# PostgreSQL COPYs a batch's new rows straight into `outcomes` without `seq`: each row draws it from the column's
# default (its sequence), in the order sent.
_COPIED_OUTCOME_COLUMNS: tuple[BulkColumn, ...] = (*OUTCOME_COLUMNS, ("recorded_by", "text"))
_SAVEPOINT = "outcome_batch"


class ReferenceViolation(Exception):
    """A foreign key refused a write: the transaction must end before the culprits can be listed.

    Raised out of the write transaction (which rolls back, so nothing is
    stored); `SqlStore` then looks the references up and raises MissingReferences.
    """

    def __init__(self, field: str, refs: Sequence[tuple[int, str]]) -> None:
        super().__init__(f"a foreign key on {field} refused the write")
        self.field = field
        self.refs = tuple(refs)


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def existing_keys(connection: Connection, column: Column[Any], values: Iterable[str]) -> set[str]:
    """Which of `values` are present in `column` (one statement, whatever the count)."""
    wanted = sorted(set(values))
    if not wanted:
        return set()
    return set(connection.scalars(select(column).where(one_of(connection, column, wanted))))


def missing_references(
    connection: Connection, column: Column[Any], refs: Sequence[tuple[int, str]],
    *, also_known: set[str] | frozenset[str] = frozenset(),
) -> list[tuple[int, str]]:
    """Every (index, value) of `refs` whose value is neither in `column` nor in `also_known`."""
    present = existing_keys(connection, column, {value for _, value in refs} - also_known)
    return [(index, value) for index, value in refs if value not in present and value not in also_known]


def require_references(
    connection: Connection, field: str, column: Column[Any], refs: Sequence[tuple[int, str]],
    *, also_known: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Raise MissingReferences listing every (index, value) whose value is not in `column`."""
    missing = missing_references(connection, column, refs, also_known=also_known)
    if missing:
        raise MissingReferences(field, missing)


def _load_for_update(
    connection: Connection, table: Table, key_columns: Sequence[str], keys: Sequence[Key]
) -> dict[Key, dict[str, Any]]:
    """Current rows for `keys`, locked for the rest of the transaction on PostgreSQL."""
    columns = [table.c[name] for name in key_columns]
    found: dict[Key, dict[str, Any]] = {}

    def load(condition: Any) -> None:
        for row in connection.execute(select(table).where(condition).order_by(*columns).with_for_update()):
            values = dict(row._mapping)
            found[tuple(values[name] for name in key_columns)] = values

    wanted = sorted(set(keys))
    if len(columns) == 1:
        if wanted:
            load(one_of(connection, columns[0], [k[0] for k in wanted]))
        return found
    for chunk in chunked(wanted, LOOKUP_CHUNK):
        load(tuple_(*columns).in_(list(chunk)))
    return found


@dataclass
class Upserted:
    """What `upsert` did: the counts, and the rows it inserted and updated (final values)."""

    counts: UpsertCounts
    inserted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)


def upsert(
    connection: Connection,
    table: Table,
    key_columns: Sequence[str],
    items: Sequence[dict[str, Any]],
    *,
    supersedes: Callable[[dict[str, Any], dict[str, Any]], bool] = lambda old, new: True,
    recorded_by: str = "",
) -> Upserted:
    """Insert new keys, update changed rows; items are applied in order, as if one by one.

    `supersedes(old, new)` decides whether a differing item replaces the stored
    row (measurements keep the latest report); when it does not, the item
    counts as unchanged. Rows inserted or changed record `recorded_by` (who
    wrote them); an unchanged item leaves the row, and who wrote it, alone.
    """
    def key_of(values: dict[str, Any]) -> Key:
        return tuple(values[name] for name in key_columns)

    current = _load_for_update(connection, table, key_columns, [key_of(v) for v in items])
    inserts: dict[Key, dict[str, Any]] = {}
    updates: dict[Key, dict[str, Any]] = {}
    created = updated = unchanged = 0
    for values in items:
        key = key_of(values)
        old = current.get(key)
        if old is None:
            created += 1
            inserts[key] = values
        elif all(old[name] == value for name, value in values.items()) or not supersedes(old, values):
            unchanged += 1
            continue
        else:
            updated += 1
            (inserts if key in inserts else updates)[key] = values
        current[key] = values

    insert_rows = [{**inserts[key], "recorded_by": recorded_by} for key in sorted(inserts)]
    for chunk in chunked(insert_rows, WRITE_CHUNK):
        connection.execute(insert(table), list(chunk))
    if updates:
        statement = update(table).where(
            and_(*(table.c[name] == bindparam(f"key_{name}") for name in key_columns))
        )
        update_rows = [
            {**{f"key_{n}": v for n, v in zip(key_columns, key, strict=True)},
             **{n: v for n, v in values.items() if n not in key_columns}, "recorded_by": recorded_by}
            for key, values in sorted(updates.items())
        ]
        for chunk in chunked(update_rows, WRITE_CHUNK):
            connection.execute(statement, list(chunk))
    return Upserted(
        UpsertCounts(created=created, updated=updated, unchanged=unchanged),
        inserted=insert_rows, updated=[values for _, values in sorted(updates.items())],
    )


def upsert_units(connection: Connection, batch: Sequence[Unit], recorded_by: str = "") -> UpsertCounts:
    """Parents must exist already or come in the same batch (the foreign key is checked at commit)."""
    items = [rows.unit_values(unit) for unit in batch]
    parents = [(i, v["parent_code"]) for i, v in enumerate(items) if v["parent_code"] is not None]
    require_references(connection, "parent_code", units.c.code, parents,
                       also_known={v["code"] for v in items})
    return upsert(connection, units, ["code"], items, recorded_by=recorded_by).counts


def upsert_assignments(connection: Connection, batch: Sequence[Assignment], recorded_by: str = "") -> UpsertCounts:
    """Also keeps each assignment's state row (`states.track_assignments`) in the same transaction."""
    items = [rows.assignment_values(assignment) for assignment in batch]
    require_references(connection, "unit_code", units.c.code,
                       [(i, v["unit_code"]) for i, v in enumerate(items)])
    done = upsert(connection, assignments, ["assignment_id"], items, recorded_by=recorded_by)
    states.track_assignments(connection, done.inserted, done.updated)
    return done.counts


def record_measurements(connection: Connection, batch: Sequence[Measurement], recorded_by: str = "") -> UpsertCounts:
    """A report older than the stored one (by reported_at) is ignored and counted unchanged."""
    items = [rows.measurement_values(measurement) for measurement in batch]
    require_references(connection, "unit_code", units.c.code,
                       [(i, v["unit_code"]) for i, v in enumerate(items)])
    return upsert(
        connection, measurements, ["period", "unit_code", "indicator"], items,
        supersedes=lambda old, new: bool(new["reported_at"] >= old["reported_at"]), recorded_by=recorded_by,
    ).counts


def upsert_targets(connection: Connection, batch: Sequence[Target], recorded_by: str = "") -> UpsertCounts:
    items = [rows.target_values(target) for target in batch]
    unit_scoped = [(i, v["scope_code"]) for i, v in enumerate(items) if v["scope_type"] == "unit"]
    require_references(connection, "unit_code", units.c.code, unit_scoped)
    return upsert(connection, targets, ["period", "indicator", "scope_type", "scope_code"], items,
                  recorded_by=recorded_by).counts


_STATUSES = {status.value: status.value for status in OutcomeStatus}
_QUALITIES: dict[str | None, str | None] = {None: None, **{quality.value: quality.value for quality in Quality}}


def stored_outcomes(driver: Driver, batch: Sequence[Outcome]) -> list[tuple[Any, ...]]:
    """Outcomes as the rows `outcomes` holds (OUTCOME_COLUMNS order), in the driver's representation.

    The hot loop of SubmitOutcomes: enum values come from dicts (a StrEnum
    member hashes as its value) and each distinct reported_at and completed_on is converted once.
    """
    stamps: dict[dt.datetime, Any] = {}
    days: dict[dt.date | None, Any] = {None: None}
    stored: list[tuple[Any, ...]] = []
    for outcome in batch:
        reported_at, completed_on = outcome.reported_at, outcome.completed_on
        stamp = stamps.get(reported_at)
        if stamp is None:
            stamp = stamps[reported_at] = driver.timestamp(reported_at)
        day = days.get(completed_on)
        if day is None and completed_on is not None:
            day = days[completed_on] = driver.date(completed_on)
        try:
            status = _STATUSES[outcome.status]
            quality = _QUALITIES[outcome.quality]
        except KeyError:  # not a known value: let the enum raise its ValueError
            status = OutcomeStatus(outcome.status).value
            quality = None if outcome.quality is None else Quality(outcome.quality).value
        stored.append((
            outcome.outcome_id, outcome.assignment_id, status, day, quality,
            outcome.reminders, stamp, outcome.reporting_system, outcome.note,
        ))
    return stored


def record_outcomes(connection: Connection, batch: Sequence[Outcome], recorded_by: str = "") -> OutcomeWriteResult:
    """Append new outcomes in batch order and update their assignments' states.

    See `Store.record_outcomes` for duplicates and conflicts. An unknown
    assignment is caught by the foreign key (ingest has already checked the
    references, so they are not looked up again here) and surfaces as
    ReferenceViolation, after which the caller's transaction rolls back.
    """
    driver = Driver(connection)
    items = stored_outcomes(driver, batch)

    first_index: dict[str, int] = {}
    conflicts: list[tuple[int, str]] = []
    duplicates = 0
    for index, item in enumerate(items):
        seen = first_index.setdefault(item[0], index)
        if seen == index:
            continue
        if items[seen] == item:
            duplicates += 1
        else:
            conflicts.append((index, item[0]))

    if not conflicts:
        # A batch usually holds only new outcomes: insert them all, letting the id's unique index say whether any is
        # stored already. When none is, the lookup below is saved.
        driver.run(f"SAVEPOINT {_SAVEPOINT}")
        if _store_new(driver, [items[i] for i in sorted(first_index.values())], items, recorded_by, only_new=True):
            driver.run(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            return OutcomeWriteResult(accepted=len(first_index), duplicates=duplicates)
        driver.run(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")  # some id is stored: nothing of this attempt stays
        driver.run(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    stored: set[str] = set()
    found = driver.run(_SELECT_OUTCOMES + driver.any_of("outcome_id"), (driver.keys(first_index),)).all()
    for row in found:
        stored.add(row[0])
        index = first_index[row[0]]
        if tuple(row) == items[index]:
            duplicates += 1
        else:
            conflicts.append((index, row[0]))

    if conflicts:
        # Unknown assignments take precedence over conflicts, as they always have.
        require_references(connection, "assignment_id", assignments.c.assignment_id,
                           [(i, item[1]) for i, item in enumerate(items)])
        return OutcomeWriteResult(accepted=0, duplicates=0, conflicts=tuple(sorted(conflicts)))
    fresh = [items[i] for i in sorted(first_index.values()) if items[i][0] not in stored]
    _store_new(driver, fresh, items, recorded_by, only_new=False)
    return OutcomeWriteResult(accepted=len(fresh), duplicates=duplicates)


def _store_new(driver: Driver, fresh: Sequence[tuple[Any, ...]], items: Sequence[tuple[Any, ...]], recorded_by: str,
               *, only_new: bool) -> bool:
    """Insert `fresh` (outcomes with distinct ids, in batch order) and make each its assignment's state if it is
    the latest. With `only_new`, stop at once and answer False when a stored outcome has one of their ids (the
    caller rolls the attempt back); without it, the ids are known to be new.

    The uniqueness test is the probe the insert makes in the id's index anyway. An outcome another transaction is
    storing at the same moment is waited for, and then counts as stored (PostgreSQL).
    SQLite: `seq` drawn up front, one executemany (with `only_new`, each row only if its id is new, counted).
    PostgreSQL: one binary COPY; each row draws `seq` from the table's sequence as it goes in, and the states are
    then applied from the range of numbers this session drew (`states.apply_copied_outcomes`)."""
    if not fresh:
        return True
    try:
        if driver.postgres:
            since = states.last_outcome_number(driver)
            try:
                driver.copy_rows("outcomes", _COPIED_OUTCOME_COLUMNS, [(*item, recorded_by) for item in fresh])
            except IntegrityError as error:
                if only_new and is_unique_violation_postgres(error):
                    return False
                raise
            states.apply_copied_outcomes(driver, since)
            return True
        rows = [(seq, *item, recorded_by)
                for seq, item in zip(driver.next_serials("outcomes", "seq", len(fresh)), fresh, strict=True)]
        inserted = sum(driver.insert_many("outcomes", _STORED_OUTCOME_COLUMNS, chunk,
                                          new_on="outcome_id" if only_new else None)
                       for chunk in chunked(rows, WRITE_CHUNK))
        if inserted != len(rows):
            return False
        states.apply_outcomes(driver, rows)
        return True
    except IntegrityError as error:
        if is_foreign_key_violation(error):
            raise ReferenceViolation("assignment_id", [(i, item[1]) for i, item in enumerate(items)]) from error
        raise
