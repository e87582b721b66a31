"""Batch writes: upserts of units, assignments, measurements, targets, and outcome batches.

Every function runs inside the caller's write transaction and writes through
Core executemany in chunks. Existing rows are read `FOR UPDATE` (a no-op on
SQLite, where BEGIN IMMEDIATE already holds the lock) so that PostgreSQL
replicas cannot interleave a read-compare-write on the same row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, Table, and_, bindparam, insert, select, tuple_, update
from sqlalchemy.engine import Connection

from civicscore.domain.model import (
    Assignment,
    Measurement,
    Outcome,
    OutcomeWriteResult,
    Target,
    Unit,
    UpsertCounts,
)
from civicscore.store import rows
from civicscore.store.base import MissingReferences
from civicscore.store.tables import assignments, measurements, outcomes, targets, units

T = TypeVar("T")
Key = tuple[Any, ...]

# Rows per IN (...) lookup and per executemany call: far below SQLite's 32,766
# bound-parameter limit, large enough that round trips do not dominate.
LOOKUP_CHUNK = 1000
WRITE_CHUNK = 5000


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def existing_keys(connection: Connection, column: Column[Any], values: Iterable[str]) -> set[str]:
    """Which of `values` are present in `column`."""
    wanted = sorted(set(values))
    found: set[str] = set()
    for chunk in chunked(wanted, LOOKUP_CHUNK):
        found.update(connection.scalars(select(column).where(column.in_(chunk))))
    return found


def require_references(
    connection: Connection, field: str, column: Column[Any], refs: Sequence[tuple[int, str]],
    *, also_known: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Raise MissingReferences listing every (index, value) whose value is not in `column`."""
    present = existing_keys(connection, column, {value for _, value in refs} - also_known)
    missing = [(index, value) for index, value in refs if value not in present and value not in also_known]
    if missing:
        raise MissingReferences(field, missing)


def _load_for_update(
    connection: Connection, table: Table, key_columns: Sequence[str], keys: Sequence[Key]
) -> dict[Key, dict[str, Any]]:
    """Current rows for `keys`, locked for the rest of the transaction on PostgreSQL."""
    columns = [table.c[name] for name in key_columns]
    key_expr = columns[0] if len(columns) == 1 else tuple_(*columns)
    found: dict[Key, dict[str, Any]] = {}
    for chunk in chunked(sorted(set(keys)), LOOKUP_CHUNK):
        wanted = [k[0] for k in chunk] if len(columns) == 1 else list(chunk)
        query = select(table).where(key_expr.in_(wanted)).order_by(*columns).with_for_update()
        for row in connection.execute(query):
            values = dict(row._mapping)
            found[tuple(values[name] for name in key_columns)] = values
    return found


def upsert(
    connection: Connection,
    table: Table,
    key_columns: Sequence[str],
    items: Sequence[dict[str, Any]],
    *,
    supersedes: Callable[[dict[str, Any], dict[str, Any]], bool] = lambda old, new: True,
) -> UpsertCounts:
    """Insert new keys, update changed rows; items are applied in order, as if one by one.

    `supersedes(old, new)` decides whether a differing item replaces the stored
    row (measurements keep the latest report); when it does not, the item
    counts as unchanged.
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

    insert_rows = [inserts[key] for key in sorted(inserts)]
    for chunk in chunked(insert_rows, WRITE_CHUNK):
        connection.execute(insert(table), list(chunk))
    if updates:
        statement = update(table).where(
            and_(*(table.c[name] == bindparam(f"key_{name}") for name in key_columns))
        )
        update_rows = [
            {**{f"key_{n}": v for n, v in zip(key_columns, key, strict=True)},
             **{n: v for n, v in values.items() if n not in key_columns}}
            for key, values in sorted(updates.items())
        ]
        for chunk in chunked(update_rows, WRITE_CHUNK):
            connection.execute(statement, list(chunk))
    return UpsertCounts(created=created, updated=updated, unchanged=unchanged)


def upsert_units(connection: Connection, batch: Sequence[Unit]) -> UpsertCounts:
    """Parents must exist already or come in the same batch (the foreign key is checked at commit)."""
    items = [rows.unit_values(unit) for unit in batch]
    parents = [(i, v["parent_code"]) for i, v in enumerate(items) if v["parent_code"] is not None]
    require_references(connection, "parent_code", units.c.code, parents,
                       also_known={v["code"] for v in items})
    return upsert(connection, units, ["code"], items)


def upsert_assignments(connection: Connection, batch: Sequence[Assignment]) -> UpsertCounts:
    items = [rows.assignment_values(assignment) for assignment in batch]
    require_references(connection, "unit_code", units.c.code,
                       [(i, v["unit_code"]) for i, v in enumerate(items)])
    return upsert(connection, assignments, ["assignment_id"], items)


def record_measurements(connection: Connection, batch: Sequence[Measurement]) -> UpsertCounts:
    """A report older than the stored one (by reported_at) is ignored and counted unchanged."""
    items = [rows.measurement_values(measurement) for measurement in batch]
    require_references(connection, "unit_code", units.c.code,
                       [(i, v["unit_code"]) for i, v in enumerate(items)])
    return upsert(
        connection, measurements, ["period", "unit_code", "indicator"], items,
        supersedes=lambda old, new: bool(new["reported_at"] >= old["reported_at"]),
    )


def upsert_targets(connection: Connection, batch: Sequence[Target]) -> UpsertCounts:
    items = [rows.target_values(target) for target in batch]
    unit_scoped = [(i, v["scope_code"]) for i, v in enumerate(items) if v["scope_type"] == "unit"]
    require_references(connection, "unit_code", units.c.code, unit_scoped)
    return upsert(connection, targets, ["period", "indicator", "scope_type", "scope_code"], items)


def record_outcomes(connection: Connection, batch: Sequence[Outcome]) -> OutcomeWriteResult:
    """Append new outcomes in batch order; see `Store.record_outcomes` for duplicates and conflicts."""
    items = [rows.outcome_values(outcome) for outcome in batch]
    require_references(connection, "assignment_id", assignments.c.assignment_id,
                       [(i, v["assignment_id"]) for i, v in enumerate(items)])

    first_index: dict[str, int] = {}
    conflicts: list[tuple[int, str]] = []
    duplicates = 0
    for index, outcome in enumerate(batch):
        seen = first_index.setdefault(outcome.outcome_id, index)
        if seen == index:
            continue
        if items[seen] == items[index]:
            duplicates += 1
        else:
            conflicts.append((index, outcome.outcome_id))

    stored: set[str] = set()
    for chunk in chunked(sorted(first_index), LOOKUP_CHUNK):
        for row in connection.execute(select(outcomes).where(outcomes.c.outcome_id.in_(chunk))):
            stored.add(row.outcome_id)
            index = first_index[row.outcome_id]
            if rows.outcome_values(rows.outcome_from(row)) == items[index]:
                duplicates += 1
            else:
                conflicts.append((index, row.outcome_id))

    if conflicts:
        return OutcomeWriteResult(accepted=0, duplicates=0, conflicts=tuple(sorted(conflicts)))
    new_rows = [items[i] for i in sorted(first_index.values()) if batch[i].outcome_id not in stored]
    for rows_chunk in chunked(new_rows, WRITE_CHUNK):
        connection.execute(insert(outcomes), list(rows_chunk))
    return OutcomeWriteResult(accepted=len(new_rows), duplicates=duplicates)
