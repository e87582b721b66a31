"""The Store contract, run against a real SQLite file and (when configured) a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, column, select, table, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from civicscore.auditverify import verify_chain
from civicscore.domain.model import (
    Area,
    Assignment,
    Measurement,
    MeasurementFact,
    Outcome,
    OutcomeStatus,
    OverdueTask,
    PriorQuarter,
    Quality,
    RecommendationStatus,
    Target,
    TaskCounts,
    Unit,
    UnitKind,
    UpsertCounts,
)
from civicscore.store import rows, states
from civicscore.store.base import (
    IdempotencyConflict,
    IdempotencyRecord,
    InvalidCursor,
    MissingReferences,
    NewActivation,
    NewAuditEvent,
    NewEvaluation,
    NothingToRollBack,
    RecommendationRecord,
    StoredRuleset,
    StoreError,
)
from civicscore.store.connection import (
    WAL_AUTOCHECKPOINT_PAGES,
    begin_schema_change,
    create_store_engine,
    migrations_config,
    schema_revisions,
)
from civicscore.store.cursors import encode_cursor
from civicscore.store.driver import Driver, one_of
from civicscore.store.sql import SqlStore, open_store
from civicscore.store.tables import (
    assignment_states,
    assignments,
    metadata,
    outcomes,
    recommendations,
    units,
)
from tests.postgres_support import database_url_fixture, fresh_postgres_schema, postgres_base_url

database_url = database_url_fixture()

NOW = dt.datetime(2026, 7, 2, 3, 0, tzinfo=dt.UTC)
HANOI = dt.timezone(dt.timedelta(hours=7))
Q1, Q2 = (dt.date(2026, 1, 1), dt.date(2026, 3, 31)), (dt.date(2026, 4, 1), dt.date(2026, 6, 30))


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    opened = open_store(database_url, clock=lambda: NOW)
    try:
        yield opened
    finally:
        opened.close()


def unit(code: str, kind: UnitKind = UnitKind.DEPARTMENT, **changes: Any) -> Unit:
    fields: dict[str, Any] = {
        "code": code, "name_vi": f"Đơn vị {code}", "name_en": f"Unit {code}", "kind": kind,
        "block": "departments" if kind == UnitKind.DEPARTMENT else "communes",
    }
    return Unit(**{**fields, **changes})


def task(assignment_id: str, unit_code: str, due_on: dt.date, **changes: Any) -> Assignment:
    fields: dict[str, Any] = {
        "assignment_id": assignment_id, "unit_code": unit_code, "title": f"Nhiệm vụ {assignment_id}",
        "area": Area.PAR, "assigned_on": dt.date(2026, 1, 5), "due_on": due_on,
        "source_document": "818/QĐ-UBND",
    }
    return Assignment(**{**fields, **changes})


def at(month: int, day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


def report(outcome_id: str, assignment_id: str, status: OutcomeStatus, reported_at: dt.datetime,
           **changes: Any) -> Outcome:
    return Outcome(outcome_id=outcome_id, assignment_id=assignment_id, status=status,
                   reported_at=reported_at, reporting_system="task-tracker", **changes)


def done(outcome_id: str, assignment_id: str, completed_on: dt.date, reported_at: dt.datetime,
         quality: Quality = Quality.ACCEPTED, **changes: Any) -> Outcome:
    return report(outcome_id, assignment_id, OutcomeStatus.COMPLETED, reported_at,
                  completed_on=completed_on, quality=quality, **changes)


def measurement(unit_code: str, indicator: str, numerator: float, reported_at: dt.datetime,
                period: str = "2026-Q2") -> Measurement:
    return Measurement(unit_code=unit_code, period=period, indicator=indicator, numerator=numerator,
                       denominator=100.0, reported_at=reported_at, reporting_system="one-stop-shop")


def new_evaluation(unit_code: str, period: str, digest: str, *, grade: str = "good",
                   flags: tuple[str, ...] = (), assessable: bool = True) -> NewEvaluation:
    recs = tuple(
        RecommendationRecord(
            unit_code=unit_code, period=period, flag=flag, kind="criticism", level=2,
            label_vi="Phê bình", label_en="Criticism", reasons_json='[{"rule_id":"r1"}]',
            evaluation_revision=0, status=RecommendationStatus.PROPOSED, created_at=NOW,
        )
        for flag in flags
    )
    return NewEvaluation(
        unit_code=unit_code, period=period, result_json=f'{{"digest":"{digest}","ghi_chú":"Đạt"}}',
        result_digest=digest, ruleset_version="2026.1", ruleset_digest="rs", inputs_digest="in",
        assessable=assessable, score=81.5 if assessable else None, grade=grade, timeliness=0.9,
        flags=flags, recommendations=recs,
    )


# ---- schema ----------------------------------------------------------------------


def test_migrations_match_the_table_classes_and_reopen_cleanly(store: SqlStore, database_url: str) -> None:
    with store.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), metadata)
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == schema_revisions()[1]
    assert diffs == []
    open_store(database_url).close()  # at head already: a no-op


@pytest.mark.postgres
def test_on_postgresql_state_pages_keep_room_for_hot_updates_and_the_downgrade_gives_it_back() -> None:
    with fresh_postgres_schema(postgres_base_url()) as url:
        opened = open_store(url)

        def options() -> list[str] | None:
            with opened.engine.connect() as connection:  # the table of this schema (search_path), not another's
                return connection.scalar(text(
                    "SELECT reloptions FROM pg_class WHERE oid = 'assignment_states'::regclass"))

        try:
            assert options() == ["fillfactor=60"]
            migrate(url, "0016", down=True)
            assert options() is None
            migrate(url, "head")
            assert options() == ["fillfactor=60"]
        finally:
            opened.close()


def test_a_single_row_read_gives_the_row_none_or_a_store_error_and_the_connection_goes_back(store: SqlStore) -> None:
    store.upsert_units([unit("SNV", name_vi="Sở Nội vụ")])
    database = store._db
    for _ in range(3 * store.engine.pool.size()):  # more reads than the pool holds: each connection is returned
        assert database.read_row("SELECT code, name_vi FROM units WHERE code = ?", ("SNV",)) == ("SNV", "Sở Nội vụ")
        assert database.read_row("SELECT code FROM units WHERE code = ?", ("NONE",)) is None
        with pytest.raises(StoreError, match="database read failed"):
            database.read_row("SELECT code FROM no_such_table WHERE code = ?", ("SNV",))
    assert list(store.get_units(["SNV"])) == ["SNV"]  # the store still serves after the failures


@pytest.mark.parametrize("large_text", [False, True], ids=["bulk", "executemany"])
def test_the_drivers_bulk_insert_counts_its_rows_and_may_leave_out_stored_keys(
        store: SqlStore, large_text: bool) -> None:
    columns = (("k", "text"), ("v", "int4"))
    with store.engine.begin() as connection:
        driver = Driver(connection)
        driver.run("CREATE TEMPORARY TABLE tagged (k VARCHAR PRIMARY KEY, v INTEGER NOT NULL)")
        first = [(f"k{i:04d}", i) for i in range(1000)]
        assert driver.insert_many("tagged", columns, first, large_text=large_text) == 1000
        again = [("k0007", -1), ("new-1", 1), ("k0999", -1), ("new-2", 2)]
        assert driver.insert_many("tagged", columns, again, large_text=large_text, new_on="k") == 2
        assert driver.insert_many("tagged", columns, [], new_on="k") == 0
        # without new_on a stored key is the constraint's to refuse
        with pytest.raises(IntegrityError), connection.begin_nested():
            driver.insert_many("tagged", columns, [("k0001", 1)], large_text=large_text)
        # a set of keys is one parameter, on either backend; stored values were not overwritten
        wanted = [f"k{i:04d}" for i in range(0, 1000, 3)] + ["new-2", "absent"]
        found = dict(driver.run("SELECT k, v FROM tagged WHERE " + driver.any_of("k"), (driver.keys(wanted),)).all())
        assert found == {**{f"k{i:04d}": i for i in range(0, 1000, 3)}, "new-2": 2}
        tagged = table("tagged", column("k"))
        assert list(connection.scalars(select(tagged.c.k).where(one_of(connection, tagged.c.k, ["k0007", "zz"])))) \
            == ["k0007"]


def test_sqlite_is_durable_and_concurrent(tmp_path: Path) -> None:
    opened = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with opened.engine.connect() as connection:
            pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                       for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout",
                                    "wal_autocheckpoint")}
    finally:
        opened.close()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 30000,
                       "wal_autocheckpoint": WAL_AUTOCHECKPOINT_PAGES}
    with pytest.raises(ValueError, match="in-memory"):
        open_store("sqlite://")


def test_sqlite_wal_is_checkpointed_off_the_request_path(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    opened = open_store(f"sqlite:///{path}")
    try:
        assert opened.checkpointer is not None
        opened.upsert_units([unit(f"U{i}", name_en="x" * 500) for i in range(2000)])
        runs = opened.checkpointer.runs
        deadline = time.monotonic() + 30
        while opened.checkpointer.runs < runs + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        busy, frames, copied = opened.checkpointer.last or (1, 0, 0)
        assert (busy, frames > 0, copied) == (0, True, frames)  # every WAL frame is in the database file
    finally:
        opened.close()
    assert not Path(f"{path}-wal").exists()  # closing folded the WAL back and removed it
    dropped = open_store(f"sqlite:///{path}")
    dropped.upsert_units([unit("SNV")])
    del dropped  # a store dropped without close() is still collected: the checkpointer does not pin it
    gc.collect()
    assert not Path(f"{path}-wal").exists()


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    """Run the migrations up or down to `revision` on `url`, as open_store does."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection, begin_schema_change(connection):
            config = migrations_config(connection=connection)
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


# The definition of an assignment's current state (DEFAULT-RULES.md "Inputs"), as 0001 computed it.
CURRENT_STATES = """
SELECT a.assignment_id, a.unit_code, a.due_on, o.status, o.completed_on, o.quality, o.reminders,
       o.reported_at, o.seq
FROM assignments a LEFT JOIN (
    SELECT o.*, ROW_NUMBER() OVER (PARTITION BY o.assignment_id ORDER BY o.reported_at DESC, o.seq DESC) AS position
    FROM outcomes o
) o ON o.assignment_id = a.assignment_id AND o.position = 1
ORDER BY a.assignment_id
"""
STORED_STATES = """
SELECT assignment_id, unit_code, due_on, status, completed_on, quality, reminders, reported_at, outcome_seq
FROM assignment_states ORDER BY assignment_id
"""


def assert_states_follow_the_definition(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        expected = [tuple(row) for row in connection.execute(text(CURRENT_STATES))]
        stored = [tuple(row) for row in connection.execute(text(STORED_STATES))]
    assert stored == expected
    return stored


def test_migration_0002_backfills_states_and_0003_moves_reasons(database_url: str) -> None:
    migrate(database_url, "0001")
    day = dt.date(2026, 5, 1)
    engine = create_store_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(units.insert(), [rows.unit_values(unit("SNV"))])
            connection.execute(assignments.insert(), [
                # the columns of revision 0001 (lead_official came with 0013)
                {k: v for k, v in rows.assignment_values(task(f"T{i}", "SNV", day)).items() if k != "lead_official"}
                for i in range(1, 5)])
            connection.execute(outcomes.insert(), [rows.outcome_values(o) for o in [
                done("o1", "T1", day, at(5, 3)),
                report("o2", "T1", OutcomeStatus.IN_PROGRESS, at(5, 2), reminders=3),  # older, arrived later
                report("o3", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2)),
                report("o4", "T2", OutcomeStatus.CANCELLED, at(5, 2)),  # same instant: the later arrival wins
                report("o5", "T3", OutcomeStatus.IN_PROGRESS, at(5, 9), reminders=1),
            ]])  # T4 has no outcome
            connection.execute(text(
                "INSERT INTO evaluations (period, unit_code, revision, result_json, result_digest, ruleset_version, "
                "ruleset_digest, inputs_digest, created_at, block, unit_name_vi, assessable, score, grade, "
                "timeliness, flags_json) VALUES ('2026-Q2', 'SNV', 1, '{}', 'd', 'v', 'r', 'i', :now, "
                "'departments', 'Sở', :yes, 80.0, 'good', 1.0, '[]')"), {"now": NOW.replace(tzinfo=None), "yes": True})
            connection.execute(text(
                "INSERT INTO recommendations (period, unit_code, flag, kind, level, label_vi, label_en, "
                "reasons_json, evaluation_revision, status, created_at) VALUES ('2026-Q2', 'SNV', 'praise', "
                "'praise', 1, 'Khen', 'Praise', '[{\"rule_id\":\"r1\"}]', 1, 'proposed', :now)"),
                {"now": NOW.replace(tzinfo=None)})
    finally:
        engine.dispose()

    upgraded = open_store(database_url)
    try:
        # Rows written by SQLAlchemy's types compare equal to the driver's representation.
        resent = upgraded.record_outcomes([done("o1", "T1", day, at(5, 3).astimezone(HANOI)),
                                           report("o4", "T2", OutcomeStatus.CANCELLED, at(5, 2))])
        assert (resent.accepted, resent.duplicates, resent.conflicts) == (0, 2, ())
        states = assert_states_follow_the_definition(upgraded.engine)
        assert [(s[0], s[3], s[6]) for s in states] == [
            ("T1", "completed", 0), ("T2", "cancelled", 0), ("T3", "in_progress", 1), ("T4", None, None)]
        recommendation = upgraded.list_recommendations(period="2026-Q2").items[0]
        assert recommendation.reasons_json == '[{"rule_id":"r1"}]'
        assert upgraded.task_counts(start=Q2[0], end=Q2[1]) == {
            "SNV": TaskCounts(due=3, completed=1, on_time=1, late=0, reworked=0)}
    finally:
        upgraded.close()

    migrate(database_url, "0001", down=True)
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT reasons_json FROM recommendations")) == '[{"rule_id":"r1"}]'
            assert connection.scalar(text("SELECT count(*) FROM outcomes")) == 5
            with pytest.raises(DBAPIError):
                connection.execute(text("SELECT count(*) FROM assignment_states"))
    finally:
        engine.dispose()
    reopened = open_store(database_url)  # and up again, backfilling once more
    try:
        assert len(assert_states_follow_the_definition(reopened.engine)) == 4
    finally:
        reopened.close()


# ---- upserts -----------------------------------------------------------------------


def test_units_upsert_counts_and_parents(store: SqlStore) -> None:
    ward = unit("P-HOANKIEM", UnitKind.WARD, parent_code="UBND", under_review_periods=("2026-Q2",))
    assert store.upsert_units([ward, unit("UBND")]) == UpsertCounts(created=2)
    renamed = unit("UBND", name_en="City People's Committee")
    assert store.upsert_units([renamed, ward, unit("SNV")]) == UpsertCounts(created=1, updated=1, unchanged=1)
    assert store.upsert_units([unit("SNV", active=False), unit("SNV")]) == UpsertCounts(updated=2)
    assert store.get_units(["UBND", "P-HOANKIEM", "NOPE"]) == {"UBND": renamed, "P-HOANKIEM": ward}
    with pytest.raises(MissingReferences) as missing:
        store.upsert_units([unit("SXD"), unit("P-X", UnitKind.WARD, parent_code="GONE")])
    assert (missing.value.field, missing.value.missing) == ("parent_code", ((1, "GONE"),))
    assert "SXD" not in store.get_units(["SXD"])


def test_assignments_upsert_counts_and_unknown_units(store: SqlStore) -> None:
    store.upsert_units([unit("SNV")])
    first = task("T1", "SNV", dt.date(2026, 5, 1))
    second = task("T2", "SNV", dt.date(2026, 5, 2))
    assert store.upsert_assignments([first, second]) == UpsertCounts(created=2)
    moved = task("T1", "SNV", dt.date(2026, 6, 1), area=Area.DX)
    assert store.upsert_assignments([moved, second]) == UpsertCounts(updated=1, unchanged=1)
    assert store.get_assignments(["T1"]) == {"T1": moved}
    with pytest.raises(MissingReferences) as missing:
        store.upsert_assignments([task("T3", "SNV", second.due_on), task("T4", "SXD", second.due_on)])
    assert missing.value.missing == ((1, "SXD"),)
    assert store.get_assignments(["T3"]) == {}


def test_measurements_keep_the_latest_report(store: SqlStore) -> None:
    store.upsert_units([unit("SNV")])
    first = measurement("SNV", "dx.fully_online", 30, at(5, 1))
    assert store.record_measurements([first]) == UpsertCounts(created=1)
    assert store.record_measurements([first]) == UpsertCounts(unchanged=1)
    older = measurement("SNV", "dx.fully_online", 10, at(4, 1))
    newer = measurement("SNV", "dx.fully_online", 45, at(6, 1))
    assert store.record_measurements([older, newer]) == UpsertCounts(updated=1, unchanged=1)
    assert store.list_measurements(unit_code="SNV").items == [newer]
    with pytest.raises(MissingReferences):
        store.record_measurements([measurement("SXD", "dx.fully_online", 1, at(5, 1))])


def test_targets_upsert_by_unit_or_kind(store: SqlStore) -> None:
    store.upsert_units([unit("SNV")])
    by_unit = Target("dx.online_applications", "2026-Q2", 0.85, unit_code="SNV")
    by_kind = Target("dx.online_applications", "2026-Q2", 0.6, unit_kind=UnitKind.WARD)
    assert store.upsert_targets([by_unit, by_kind]) == UpsertCounts(created=2)
    raised = Target("dx.online_applications", "2026-Q2", 0.7, unit_kind=UnitKind.WARD)
    assert store.upsert_targets([by_unit, raised]) == UpsertCounts(updated=1, unchanged=1)
    assert store.list_targets(period="2026-Q2").items == [raised, by_unit]  # kind sorts before unit
    assert store.list_targets(unit_code="SNV").items == [by_unit]
    with pytest.raises(ValueError, match="exactly one"):
        store.upsert_targets([Target("dx.x", "2026-Q2", 1.0)])
    with pytest.raises(MissingReferences):
        store.upsert_targets([Target("dx.x", "2026-Q2", 1.0, unit_code="SXD")])


# ---- outcomes ------------------------------------------------------------------------


@pytest.fixture
def tasks(store: SqlStore) -> SqlStore:
    store.upsert_units([unit("SNV")])
    store.upsert_assignments([task(f"T{i}", "SNV", dt.date(2026, 5, i)) for i in range(1, 6)])
    return store


def test_outcomes_duplicates_are_counted_not_stored(tasks: SqlStore) -> None:
    first = done("o1", "T1", dt.date(2026, 5, 1), at(5, 1))
    second = report("o2", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2))
    assert tasks.record_outcomes([first, second]).accepted == 2
    hanoi = dt.timezone(dt.timedelta(hours=7))
    same_instant = done("o1", "T1", dt.date(2026, 5, 1), at(5, 1).astimezone(hanoi))
    result = tasks.record_outcomes([same_instant, report("o3", "T3", OutcomeStatus.CANCELLED, at(5, 3)),
                                    report("o3", "T3", OutcomeStatus.CANCELLED, at(5, 3))])
    assert (result.accepted, result.duplicates, result.conflicts) == (1, 2, ())
    assert tasks.count_outcomes() == 3
    assert [o.outcome_id for o in tasks.list_outcomes(assignment_id="T1").items] == ["o1"]


def test_a_batch_of_stored_outcomes_alone_is_counted_by_a_replica_that_never_wrote_one(tasks: SqlStore,
                                                                                          database_url: str) -> None:
    """Nothing new to insert, from connections that have stored nothing yet: counted as duplicates, nothing
    written (on PostgreSQL the first attempt, refused by the id's index, is rolled back, and the long way has
    nothing to insert)."""
    batch = [done("o1", "T1", dt.date(2026, 5, 1), at(5, 1)), report("o2", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2))]
    assert tasks.record_outcomes(batch).accepted == 2
    other = open_store(database_url, clock=lambda: NOW)
    try:
        result = other.record_outcomes(batch)
        assert (result.accepted, result.duplicates, result.conflicts) == (0, 2, ())
        assert other.count_outcomes() == 2
    finally:
        other.close()
    assert_states_follow_the_definition(tasks.engine)


def test_applying_outcomes_again_changes_no_state(tasks: SqlStore) -> None:
    """PostgreSQL applies a batch's states set-based, from the stored outcomes (`states.apply_copied_outcomes`):
    applying outcomes again, older or not, changes nothing."""
    if tasks.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's way of applying a batch")
    tasks.record_outcomes([done("o1", "T1", dt.date(2026, 5, 1), at(5, 3)),
                           report("o2", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2))])
    tasks.record_outcomes([report("o3", "T1", OutcomeStatus.IN_PROGRESS, at(5, 1), reminders=4),  # older: loses
                           report("o4", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2), reminders=1)])  # tie: wins
    before = assert_states_follow_the_definition(tasks.engine)
    assert [row[6] for row in before[:2]] == [0, 1]
    with tasks.engine.begin() as connection:
        driver = Driver(connection)
        first_batch_end, last = driver.run("SELECT min(seq) + 1, max(seq) FROM outcomes").one()
        # The range the first batch's COPY would have drawn: this session's last number is its last.
        driver.run(f"SELECT setval({states.OUTCOME_SEQUENCE}, ?)", (first_batch_end,))
        states.apply_copied_outcomes(driver, 0)
        driver.run(f"SELECT setval({states.OUTCOME_SEQUENCE}, ?)", (last,))
    assert assert_states_follow_the_definition(tasks.engine) == before


def test_a_batch_applies_and_locks_only_its_own_outcomes_however_the_numbers_interleave(tasks: SqlStore) -> None:
    """Concurrent batches draw `seq` from one sequence row by row, so another batch's outcomes can be numbered
    inside this one's range; applying this batch's states neither locks their assignments nor waits for them."""
    if tasks.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's way of applying a batch")
    with tasks.engine.connect() as mine, tasks.engine.connect() as holder, mine.begin():
        driver = Driver(mine)
        since = states.last_outcome_number(driver)
        mine.execute(outcomes.insert(), [rows.outcome_values(done("m1", "T1", dt.date(2026, 5, 1), at(5, 2)))])
        # Another batch is numbered between this one's outcomes, and committed.
        tasks.record_outcomes([report("o1", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2))])
        mine.execute(outcomes.insert(), [rows.outcome_values(report("m2", "T3", OutcomeStatus.CANCELLED, at(5, 2)))])
        with holder.begin():  # someone holds the other batch's state row
            holder.execute(text("SELECT 1 FROM assignment_states WHERE assignment_id = 'T2' FOR UPDATE"))
            driver.run("SET LOCAL lock_timeout = '3s'")  # waiting on it would fail the test, not hang it
            states.apply_copied_outcomes(driver, since)
    assert [row[3] for row in assert_states_follow_the_definition(tasks.engine)] == [
        "completed", "in_progress", "cancelled", None, None]


def test_a_batch_locks_its_state_rows_in_assignment_order(tasks: SqlStore) -> None:
    """PostgreSQL: a batch's states are updated in assignment order, each row locked as the update reaches it, so
    two batches touching the same assignments never wait for each other in a cycle. The outcomes arrive in reverse
    order (T5 first) and another session holds T3's state row: the batch, waiting for T3, holds T1 and T2 and
    not yet T4 or T5."""
    if tasks.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's way of applying a batch")
    batch = [report(f"o{i}", f"T{i}", OutcomeStatus.IN_PROGRESS, at(5, 2)) for i in (5, 4, 3, 2, 1)]
    results: list[Any] = []
    with tasks.engine.connect() as holder, tasks.engine.connect() as probe:
        with holder.begin():
            holder.execute(text("SELECT 1 FROM assignment_states WHERE assignment_id = 'T3' FOR UPDATE"))
            holder_pid = holder.scalar(text("SELECT pg_backend_pid()"))
            writer = threading.Thread(target=lambda: results.append(tasks.record_outcomes(batch)))
            writer.start()
            waiting = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
            deadline = time.monotonic() + 30
            while not probe.scalar(waiting, {"pid": holder_pid}):
                assert time.monotonic() < deadline, "the batch never waited for T3's state row"
                probe.rollback()
                time.sleep(0.02)
            probe.rollback()
            locked = []
            lock_now = text("SELECT 1 FROM assignment_states WHERE assignment_id = :a FOR UPDATE NOWAIT")
            for assignment_id in ("T1", "T2", "T4", "T5"):
                try:
                    with probe.begin():
                        probe.execute(lock_now, {"a": assignment_id})
                except DBAPIError as error:
                    assert getattr(error.orig, "sqlstate", None) == "55P03", error  # lock_not_available
                    locked.append(assignment_id)
            assert locked == ["T1", "T2"]
        writer.join(timeout=30)
    assert [(r.accepted, r.duplicates) for r in results] == [(5, 0)]
    assert [row[3] for row in assert_states_follow_the_definition(tasks.engine)] == ["in_progress"] * 5


def test_an_outcome_stored_by_another_writer_meanwhile_is_a_duplicate_on_the_retry(tasks: SqlStore) -> None:
    """PostgreSQL: a batch holding a stored outcome goes the long way (lookup, then a COPY of the others). When
    another transaction stores one of those others meanwhile, the COPY waits for it and is then refused by the
    id's index; the write is tried again, and counts it as a duplicate."""
    if tasks.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's COPY")
    stored = done("o1", "T1", dt.date(2026, 5, 1), at(5, 1))
    racing = report("o2", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2))
    tasks.record_outcomes([stored])
    results: list[Any] = []
    with tasks.engine.connect() as other:
        with other.begin():
            other.execute(outcomes.insert(), [rows.outcome_values(racing)])
            mine = other.scalar(text("SELECT pg_current_xact_id()::text"))
            writer = threading.Thread(target=lambda: results.append(tasks.record_outcomes([stored, racing])))
            writer.start()
            deadline = time.monotonic() + 30
            # The batch waits for this transaction's id (pg_locks is read live; pg_stat_activity would be a
            # snapshot taken once per transaction).
            waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted "
                           "AND transactionid::text = :mine")
            while not other.scalar(waiting, {"mine": mine}):
                assert time.monotonic() < deadline, "the batch never waited for the other transaction"
                time.sleep(0.02)
        writer.join(timeout=30)
    assert [(r.accepted, r.duplicates, r.conflicts) for r in results] == [(0, 2, ())]
    assert tasks.count_outcomes() == 2


def test_outcome_batch_with_a_conflict_stores_nothing(tasks: SqlStore) -> None:
    tasks.record_outcomes([done("o1", "T1", dt.date(2026, 5, 1), at(5, 1))])
    changed = done("o1", "T1", dt.date(2026, 5, 2), at(5, 1))
    result = tasks.record_outcomes([report("o9", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2)), changed])
    assert (result.accepted, result.conflicts) == (0, ((1, "o1"),))
    in_batch = tasks.record_outcomes([
        report("o5", "T5", OutcomeStatus.IN_PROGRESS, at(5, 5)),
        report("o6", "T4", OutcomeStatus.IN_PROGRESS, at(5, 5)),
        report("o5", "T5", OutcomeStatus.IN_PROGRESS, at(5, 5), reminders=1),
    ])
    assert (in_batch.accepted, in_batch.conflicts) == (0, ((2, "o5"),))
    assert tasks.count_outcomes() == 1
    with pytest.raises(MissingReferences) as missing:
        tasks.record_outcomes([report("o7", "T1", OutcomeStatus.IN_PROGRESS, at(5, 5)),
                               report("o8", "T404", OutcomeStatus.IN_PROGRESS, at(5, 5))])
    assert missing.value.missing == ((1, "T404"),)
    assert tasks.count_outcomes() == 1


def test_ten_thousand_outcomes_in_one_call(tasks: SqlStore) -> None:
    batch = [report(f"bulk-{i:05d}", f"T{i % 5 + 1}", OutcomeStatus.IN_PROGRESS, at(5, 1 + i % 28),
                    reminders=i % 4) for i in range(10_000)]
    assert tasks.record_outcomes(batch).accepted == 10_000
    assert tasks.record_outcomes(batch).duplicates == 10_000
    assert tasks.count_outcomes() == 10_000


def test_state_is_the_latest_report_by_time_then_arrival(tasks: SqlStore) -> None:
    def state(assignment_id: str) -> tuple[Any, ...]:
        with tasks.engine.connect() as connection:
            row = connection.execute(select(
                assignment_states.c.status, assignment_states.c.completed_on, assignment_states.c.reminders,
            ).where(assignment_states.c.assignment_id == assignment_id)).one()
        return tuple(row)

    assert state("T1") == (None, None, None)
    tasks.record_outcomes([report("a", "T1", OutcomeStatus.IN_PROGRESS, at(5, 3), reminders=1)])
    tasks.record_outcomes([done("b", "T1", dt.date(2026, 5, 1), at(5, 2))])  # older: does not win
    assert state("T1") == ("in_progress", None, 1)
    tasks.record_outcomes([report("c", "T1", OutcomeStatus.IN_PROGRESS, at(5, 3), reminders=2)])  # tie
    assert state("T1") == ("in_progress", None, 2)
    tasks.record_outcomes([  # within a batch: the latest report, and of a tie the later item
        done("d", "T1", dt.date(2026, 5, 4), at(5, 4)),
        report("e", "T1", OutcomeStatus.IN_PROGRESS, at(5, 4), reminders=3),
        report("f", "T1", OutcomeStatus.CANCELLED, at(5, 1)),
        report("g", "T2", OutcomeStatus.CANCELLED, at(5, 1)),
    ])
    assert (state("T1"), state("T2")) == (("in_progress", None, 3), ("cancelled", None, 0))
    # A correction is a new outcome reported later; a duplicate changes nothing.
    tasks.record_outcomes([done("h", "T1", dt.date(2026, 5, 5), at(5, 6)), report("e", "T1",
                           OutcomeStatus.IN_PROGRESS, at(5, 4), reminders=3)])
    assert state("T1") == ("completed", dt.date(2026, 5, 5), 0)
    # Nothing of a refused batch reaches the state either.
    refused = tasks.record_outcomes([report("i", "T2", OutcomeStatus.IN_PROGRESS, at(6, 1)),
                                     report("h", "T1", OutcomeStatus.IN_PROGRESS, at(6, 1))])
    assert refused.conflicts == ((1, "h"),) and state("T2") == ("cancelled", None, 0)
    with pytest.raises(MissingReferences):
        tasks.record_outcomes([report("j", "T2", OutcomeStatus.IN_PROGRESS, at(6, 1)),
                               report("k", "T404", OutcomeStatus.IN_PROGRESS, at(6, 1))])
    assert state("T2") == ("cancelled", None, 0)
    assert_states_follow_the_definition(tasks.engine)


def test_states_match_the_definition_under_random_batches(tasks: SqlStore) -> None:
    """Out-of-order reports, ties, in-batch repeats and moved assignments, checked after every batch."""
    rng = random.Random(20260701)
    instants = [at(5, day, hour) for day in (1, 2, 3) for hour in (8, 9)]  # few instants: many ties
    count = 0
    for round_ in range(25):
        batch: list[Outcome] = []
        for _ in range(rng.randint(1, 12)):
            count += 1
            status = rng.choice(list(OutcomeStatus))
            completed = dt.date(2026, 4, rng.randint(1, 30)) if status == OutcomeStatus.COMPLETED else None
            batch.append(report(f"r{count}", f"T{rng.randint(1, 5)}", status, rng.choice(instants),
                                completed_on=completed, reminders=rng.randint(0, 3),
                                quality=Quality.ACCEPTED if completed else None))
        if rng.random() < 0.3:
            batch.append(batch[0])  # a repeat inside the batch: a duplicate
        if round_ % 7 == 3:
            moved = f"T{rng.randint(1, 5)}"
            tasks.upsert_assignments([task(moved, "SNV", dt.date(2026, 6, rng.randint(1, 28)))])
        tasks.record_outcomes(batch)
        assert_states_follow_the_definition(tasks.engine)


def test_assignment_dates_and_moved_assignments(store: SqlStore) -> None:
    store.upsert_units([unit("SNV"), unit("SXD")])
    store.upsert_assignments([task("T1", "SNV", dt.date(2026, 5, 1)),
                              task("T2", "SNV", dt.date(2026, 5, 2), assigned_on=dt.date(2026, 2, 1))])
    assert store.assignment_dates(["T2", "T1", "T404", "T1"]) == {
        "T1": dt.date(2026, 1, 5), "T2": dt.date(2026, 2, 1)}
    assert store.assignment_dates([]) == {} and store.get_assignments([]) == {}
    store.record_outcomes([done("o1", "T1", dt.date(2026, 4, 30), at(5, 1))])
    # T1 moves to SXD and into Q3; its state moves with it.
    store.upsert_assignments([task("T1", "SXD", dt.date(2026, 7, 1))])
    assert store.task_counts(start=Q2[0], end=Q2[1]) == {"SNV": TaskCounts(due=1)}
    assert store.task_counts(start=dt.date(2026, 7, 1), end=dt.date(2026, 9, 30)) == {
        "SXD": TaskCounts(due=1, completed=1, on_time=1)}
    assert store.period_figures(start=Q2[0], end=Q2[1], period="2026-Q2") == (1, 0)
    assert_states_follow_the_definition(store.engine)


def test_outcome_batch_naming_unknown_assignments_stores_nothing_and_claims_no_key(tasks: SqlStore) -> None:
    claim = IdempotencyRecord("key-x", "SubmitOutcomes", "d")
    tasks.record_outcomes([report("o1", "T1", OutcomeStatus.IN_PROGRESS, at(5, 1))])
    bad = [report("o2", "T2", OutcomeStatus.IN_PROGRESS, at(5, 2)),
           report("o3", "GONE", OutcomeStatus.IN_PROGRESS, at(5, 2)),
           report("o1", "T1", OutcomeStatus.CANCELLED, at(5, 1)),  # also a conflict: the reference wins
           report("o4", "GONE", OutcomeStatus.IN_PROGRESS, at(5, 3))]
    with pytest.raises(MissingReferences) as missing:
        tasks.record_outcomes(bad, idempotency=claim)
    assert missing.value.missing == ((1, "GONE"), (3, "GONE"))
    with pytest.raises(MissingReferences) as missing:
        tasks.record_outcomes([bad[0], bad[1]], idempotency=claim)  # found by the foreign key this time
    assert missing.value.missing == ((1, "GONE"),)
    assert tasks.count_outcomes() == 1 and tasks.idempotent_result("key-x", "SubmitOutcomes", "d") is None
    assert tasks.record_outcomes([bad[0]], idempotency=claim).accepted == 1


# ---- idempotency -----------------------------------------------------------------------


def test_idempotent_replay_and_conflict(tasks: SqlStore) -> None:
    claim = IdempotencyRecord("key-1", "SubmitOutcomes", "digest-a")
    batch = [report("o1", "T1", OutcomeStatus.IN_PROGRESS, at(5, 1))]
    assert tasks.idempotent_result("key-1", "SubmitOutcomes", "digest-a") is None
    assert tasks.record_outcomes(batch, idempotency=claim).accepted == 1
    assert tasks.idempotent_result("key-1", "SubmitOutcomes", "digest-a") == (
        '{"accepted":1,"conflicts":[],"duplicates":0}')
    # A retry that raced past idempotent_result gets the stored result, not a second write.
    assert tasks.record_outcomes(batch, idempotency=claim).accepted == 1
    with pytest.raises(IdempotencyConflict):
        tasks.idempotent_result("key-1", "SubmitOutcomes", "digest-b")
    with pytest.raises(IdempotencyConflict):
        tasks.upsert_units([unit("SXD")], idempotency=IdempotencyRecord("key-1", "UpsertUnits", "digest-a"))
    assert tasks.get_units(["SXD"]) == {}
    # A refused batch claims no key: fixing the batch and retrying with the same key works.
    refused = tasks.record_outcomes([report("o1", "T1", OutcomeStatus.CANCELLED, at(5, 1))],
                                    idempotency=IdempotencyRecord("key-2", "SubmitOutcomes", "d"))
    assert refused.conflicts and tasks.idempotent_result("key-2", "SubmitOutcomes", "d") is None
    claim_3 = IdempotencyRecord("key-3", "UpsertUnits", "u")
    counts = tasks.upsert_units([unit("SXD")], idempotency=claim_3)
    assert tasks.upsert_units([unit("SXD", name_en="changed")], idempotency=claim_3) == counts
    assert tasks.get_units(["SXD"])["SXD"] == unit("SXD")


# ---- evaluation inputs -------------------------------------------------------------------


@pytest.fixture
def scenario(store: SqlStore) -> SqlStore:
    """DEFAULT-RULES.md "Inputs", one case per clause, for quarter 2026-Q2 (April 1 - June 30)."""
    store.upsert_units([unit("SNV"), unit("P-BADINH", UnitKind.WARD), unit("SXD")])
    store.upsert_assignments([
        task("a1", "SNV", dt.date(2026, 4, 10)),   # completed before due: on time
        task("a2", "SNV", dt.date(2026, 4, 20)),   # completed after due: late, returned for rework
        task("a3", "SNV", dt.date(2026, 5, 15)),   # cancelled: counts nowhere
        task("a4", "SNV", dt.date(2026, 6, 30)),   # no report: due, not completed, not yet overdue
        task("a5", "SNV", dt.date(2026, 6, 1)),    # completed after the quarter end: not completed
        task("a6", "SNV", dt.date(2026, 5, 10)),   # two reports at the same instant: the later arrival wins
        task("a7", "SNV", dt.date(2026, 5, 20)),   # an older report arriving late does not win
        task("a8", "SNV", dt.date(2026, 2, 15)),   # overdue from Q1, five reminders
        task("a9", "SNV", dt.date(2026, 3, 1)),    # Q1, completed: not overdue
        task("a10", "SNV", dt.date(2026, 7, 15)),  # Q3: nowhere yet
        task("a11", "SNV", dt.date(2026, 4, 15)),  # cancelled, then reopened: counts
        task("b1", "P-BADINH", dt.date(2026, 5, 5)),   # the ward's only task, cancelled
        task("b2", "P-BADINH", dt.date(2026, 1, 10)),  # cancelled: not overdue
    ])
    store.record_outcomes([
        done("o1", "a1", dt.date(2026, 4, 5), at(4, 5)),
        report("o2a", "a2", OutcomeStatus.IN_PROGRESS, at(4, 10), reminders=1),
        done("o2b", "a2", dt.date(2026, 5, 1), at(5, 1), Quality.RETURNED_FOR_REWORK, reminders=2),
        report("o3", "a3", OutcomeStatus.CANCELLED, at(5, 1)),
        done("o5", "a5", dt.date(2026, 7, 5), at(7, 6), reminders=2),
        done("o6a", "a6", dt.date(2026, 5, 9), at(5, 9)),
        report("o6b", "a6", OutcomeStatus.IN_PROGRESS, at(5, 9), reminders=4),
        done("o7a", "a7", dt.date(2026, 5, 18), at(5, 18)),
        report("o7b", "a7", OutcomeStatus.IN_PROGRESS, at(5, 1), reminders=9),
        report("o8", "a8", OutcomeStatus.IN_PROGRESS, at(3, 1), reminders=5),
        done("o9", "a9", dt.date(2026, 3, 1), at(3, 2)),
        report("o11a", "a11", OutcomeStatus.CANCELLED, at(4, 1)),
        report("o11b", "a11", OutcomeStatus.IN_PROGRESS, at(4, 2)),
        report("ob1", "b1", OutcomeStatus.CANCELLED, at(5, 1)),
        report("ob2", "b2", OutcomeStatus.CANCELLED, at(1, 5)),
    ])
    return store


def test_task_counts_follow_the_inputs_definition(scenario: SqlStore) -> None:
    counts = scenario.task_counts(start=Q2[0], end=Q2[1])
    # due a1 a2 a4 a5 a6 a7 a11; completed a1 a2 a7; on time a1 a7; late a2; reworked a2
    assert counts == {"SNV": TaskCounts(due=7, completed=3, on_time=2, late=1, reworked=1)}
    assert scenario.task_counts(start=Q1[0], end=Q1[1]) == {
        "SNV": TaskCounts(due=2, completed=1, on_time=1, late=0, reworked=0)}


def test_open_overdue_spans_quarters_with_reminders_from_the_latest_report(scenario: SqlStore) -> None:
    end = Q2[1]
    assert scenario.open_overdue(end=end) == {"SNV": [
        OverdueTask("a8", dt.date(2026, 2, 15), (end - dt.date(2026, 2, 15)).days, 5),
        OverdueTask("a11", dt.date(2026, 4, 15), 76, 0),
        OverdueTask("a6", dt.date(2026, 5, 10), 51, 4),
        OverdueTask("a5", dt.date(2026, 6, 1), 29, 2),
    ]}
    assert scenario.open_overdue(end=Q1[1]) == {"SNV": [OverdueTask("a8", dt.date(2026, 2, 15), 44, 5)]}


def test_measurement_facts_resolve_unit_then_kind_targets(scenario: SqlStore) -> None:
    scenario.record_measurements([
        measurement("SNV", "dx.online_applications", 82, at(6, 1)),
        measurement("SNV", "dx.fully_online", 30, at(6, 1)),
        measurement("SNV", "dx.satisfaction", 95, at(6, 1)),
        measurement("P-BADINH", "dx.online_applications", 55, at(6, 1)),
        measurement("SNV", "dx.online_applications", 70, at(3, 1), period="2026-Q1"),
    ])
    scenario.upsert_targets([
        Target("dx.online_applications", "2026-Q2", 0.85, unit_code="SNV"),
        Target("dx.online_applications", "2026-Q2", 0.8, unit_kind=UnitKind.DEPARTMENT),
        Target("dx.online_applications", "2026-Q2", 0.6, unit_kind=UnitKind.WARD),
        Target("dx.fully_online", "2026-Q2", 0.25, unit_kind=UnitKind.DEPARTMENT),
        Target("dx.satisfaction", "2026-Q1", 0.9, unit_code="SNV"),
    ])
    assert scenario.measurement_facts(period="2026-Q2") == {
        "P-BADINH": [MeasurementFact("dx.online_applications", 55.0, 100.0, 0.6)],
        "SNV": [
            MeasurementFact("dx.fully_online", 30.0, 100.0, 0.25),
            MeasurementFact("dx.online_applications", 82.0, 100.0, 0.85),
            MeasurementFact("dx.satisfaction", 95.0, 100.0, None),
        ],
    }


def test_prior_quarters_figures_and_periods(scenario: SqlStore) -> None:
    scenario.save_evaluations([new_evaluation("SNV", "2026-Q1", "d1", grade="good")], period="2026-Q1")
    scenario.save_evaluations([new_evaluation("SNV", "2026-Q1", "d2", grade="excellent", flags=("praise",)),
                               new_evaluation("SXD", "2026-Q1", "d3", assessable=False,
                                              grade="not_assessable")],
                              period="2026-Q1")
    assert scenario.prior_quarters(period="2026-Q1") == {
        "SNV": PriorQuarter("2026-Q1", "excellent", ("praise",)),
        "SXD": PriorQuarter("2026-Q1", "not_assessable", ()),
    }
    assert scenario.prior_quarters(period="2025-Q4") == {}
    assert scenario.period_figures(start=Q2[0], end=Q2[1], period="2026-Q2") == (7, 0)
    assert scenario.period_figures(start=Q1[0], end=Q1[1], period="2026-Q1") == (2, 2)
    assert scenario.periods_with_data() == ["2026-Q3", "2026-Q2", "2026-Q1"]


# ---- evaluations and recommendations ----------------------------------------------------------


def test_evaluation_revisions_and_superseded_recommendations(store: SqlStore) -> None:
    store.upsert_units([unit("SNV"), unit("SXD"), unit("P-BADINH", UnitKind.WARD)])
    first = store.save_evaluations([new_evaluation("SNV", "2026-Q2", "a", flags=("reminder", "criticism")),
                                    new_evaluation("SXD", "2026-Q2", "b", flags=("reminder",)),
                                    new_evaluation("P-BADINH", "2026-Q2", "c", assessable=False)],
                                   period="2026-Q2")
    assert (first.new_revisions, first.unchanged, first.not_assessable) == (3, 0, 1)
    assert first.recommendations_in_force == 3
    again = store.save_evaluations([new_evaluation("SNV", "2026-Q2", "a", flags=("reminder", "criticism"))],
                                   period="2026-Q2")
    assert (again.units_evaluated, again.new_revisions, again.unchanged) == (1, 0, 1)
    with store.engine.begin() as connection:  # the committee approved SNV's criticism meanwhile
        connection.execute(update(recommendations).where(recommendations.c.flag == "criticism")
                           .values(status="approved"))
    revised = store.save_evaluations([new_evaluation("SNV", "2026-Q2", "a2", grade="completed",
                                                     flags=("reminder", "explanation_required"))],
                                     period="2026-Q2")
    assert (revised.new_revisions, revised.recommendations_in_force) == (1, 4)

    latest = store.get_evaluation(unit_code="SNV", period="2026-Q2")
    assert latest is not None and (latest.revision, latest.grade, latest.created_at) == (2, "completed", NOW)
    assert latest.flags == ("reminder", "explanation_required") and latest.unit_name_vi == "Đơn vị SNV"
    original = store.get_evaluation(unit_code="SNV", period="2026-Q2", revision=1)
    assert original is not None and original.result_digest == "a"
    assert store.get_evaluation(unit_code="SNV", period="2026-Q3") is None
    listed = store.list_evaluations(period="2026-Q2", block="departments").items
    assert [(e.unit_code, e.revision) for e in listed] == [("SNV", 2), ("SXD", 1)]
    assert [e.unit_code for e in store.list_evaluations(period="2026-Q2", grade="completed").items] == ["SNV"]

    snv = store.list_recommendations(period="2026-Q2", unit_code="SNV").items
    assert [(r.flag, r.status, r.evaluation_revision) for r in snv] == [
        ("reminder", RecommendationStatus.SUPERSEDED, 1),
        ("criticism", RecommendationStatus.APPROVED, 1),
        ("reminder", RecommendationStatus.PROPOSED, 2),
        ("explanation_required", RecommendationStatus.PROPOSED, 2),
    ]
    with store.engine.connect() as connection:
        links = connection.execute(
            select(recommendations.c.id, recommendations.c.flag, recommendations.c.superseded_by)
            .where(recommendations.c.unit_code == "SNV").order_by(recommendations.c.id)).all()
    assert links[0].superseded_by == links[2].id and links[1].superseded_by is None
    assert [r.status for r in store.list_recommendations(period="2026-Q2", unit_code="SXD").items] == [
        RecommendationStatus.PROPOSED]
    proposed = store.list_recommendations(period="2026-Q2", status=RecommendationStatus.PROPOSED).items
    assert [(r.unit_code, r.flag) for r in proposed] == [
        ("SNV", "reminder"), ("SNV", "explanation_required"), ("SXD", "reminder")]
    with pytest.raises(MissingReferences):
        store.save_evaluations([new_evaluation("SGD", "2026-Q2", "x")], period="2026-Q2")


def test_save_evaluations_replays_under_an_idempotency_key(store: SqlStore) -> None:
    store.upsert_units([unit("SNV")])
    claim = IdempotencyRecord("eval-1", "EvaluatePeriod", "q2")
    first = store.save_evaluations([new_evaluation("SNV", "2026-Q2", "a")], period="2026-Q2",
                                   idempotency=claim)
    replay = store.save_evaluations([new_evaluation("SNV", "2026-Q2", "b")], period="2026-Q2",
                                    idempotency=claim)
    assert replay == first
    latest = store.get_evaluation(unit_code="SNV", period="2026-Q2")
    assert latest is not None and latest.revision == 1


def test_a_stream_of_evaluation_chunks_is_saved_whole_or_not_at_all(store: SqlStore) -> None:
    """EvaluatePeriod's save: chunks written as they arrive, then the officials' results, the check that the
    ruleset is in force, and one commit; a failure anywhere (the engine's, the check's) leaves nothing."""
    store.upsert_units([unit("SNV"), unit("SXD"), unit("STP")])
    chunks = [[new_evaluation("SNV", "2026-Q2", "a", flags=("reminder",))],
              [new_evaluation("SXD", "2026-Q2", "b"), new_evaluation("STP", "2026-Q2", "c", assessable=False)]]

    def failing() -> Iterator[list[Any]]:
        yield chunks[0]
        raise RuntimeError("the engine failed after the first chunk")

    with pytest.raises(RuntimeError, match="after the first chunk"):
        store.save_evaluation_stream(failing(), period="2026-Q2")

    def refuse(activations: list[Any]) -> None:
        raise RuntimeError("another replica changed the ruleset in force")

    read: list[int] = []

    def counted() -> Iterator[list[Any]]:
        for chunk in chunks:
            read.append(len(chunk))
            yield chunk

    with pytest.raises(RuntimeError, match="changed the ruleset"):
        store.save_evaluation_stream(counted(), period="2026-Q2", in_force=refuse)
    assert read == [1, 2]  # the check comes after every chunk was written, just before the commit
    assert store.list_evaluations(period="2026-Q2").items == []
    assert store.list_recommendations(period="2026-Q2").items == []

    saved = store.save_evaluation_stream(iter(chunks), period="2026-Q2", officials=list)
    assert (saved.units_evaluated, saved.new_revisions, saved.unchanged, saved.not_assessable,
            saved.recommendations_in_force) == (3, 3, 0, 1, 1)
    assert [e.unit_code for e in store.list_evaluations(period="2026-Q2").items] == ["SNV", "STP", "SXD"]


def test_a_replayable_stream_gives_what_it_took_then_the_rest() -> None:
    from civicscore.store.sql import _Replayable

    source = iter(range(5))
    replay = _Replayable(source)
    first = iter(replay)
    assert [next(first), next(first)] == [0, 1]  # a write that failed after two chunks
    assert list(replay) == [0, 1, 2, 3, 4]  # tried again: the two from memory, the rest from the source
    assert list(replay) == [0, 1, 2, 3, 4]


# ---- pagination and text ----------------------------------------------------------------------


def test_pagination_round_trips(store: SqlStore) -> None:
    codes = [f"P-{i:02d}" for i in range(23)]
    store.upsert_units([unit("UBND")] + [unit(c, UnitKind.WARD, parent_code="UBND") for c in codes])
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = store.list_units(kind=UnitKind.WARD, after=cursor, limit=5)
        seen.extend(u.code for u in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == codes and len(page.items) == 3
    assert store.list_units(limit=24).next_cursor is None
    assert store.list_units(limit=23).next_cursor is not None

    store.upsert_assignments([task(f"T{i:02d}", c, dt.date(2026, 5, 1)) for i, c in enumerate(codes)])
    store.record_outcomes([report(f"o{i}", f"T{i % 23:02d}", OutcomeStatus.IN_PROGRESS, at(5, 1))
                           for i in range(30, 0, -1)])
    arrival: list[str] = []
    cursor = None
    while True:
        outcome_page = store.list_outcomes(after=cursor, limit=7)
        arrival.extend(o.outcome_id for o in outcome_page.items)
        if (cursor := outcome_page.next_cursor) is None:
            break
    assert arrival == [f"o{i}" for i in range(30, 0, -1)]
    assert [o.outcome_id for o in store.list_outcomes(unit_code="P-00").items] == ["o23"]

    pairs = [(c, indicator) for c in codes[:4] for indicator in ("dx.a", "dx.b")]
    store.record_measurements([measurement(c, indicator, 1, at(6, 1)) for c, indicator in pairs])
    first = store.list_measurements(period="2026-Q2", limit=3)
    rest = store.list_measurements(period="2026-Q2", after=first.next_cursor, limit=100)
    assert [(m.unit_code, m.indicator) for m in first.items + rest.items] == pairs
    with pytest.raises(InvalidCursor):
        store.list_units(after=first.next_cursor)  # a measurements cursor
    with pytest.raises(InvalidCursor):
        store.list_units(after="not-a-cursor!")
    with pytest.raises(InvalidCursor):
        store.list_outcomes(after=encode_cursor("outcomes", ("seq-as-text",)))


def test_vietnamese_text_round_trips_byte_exact(store: SqlStore) -> None:
    composed = "Sở Nội vụ — Phường Hoàn Kiếm, Đống Đa: “đúng hạn” ✓"
    decomposed = unicodedata.normalize("NFD", composed)  # stored as given; the api layer normalises
    store.upsert_units([unit("SNV", name_vi=composed), unit("SNV-NFD", name_vi=decomposed)])
    got = store.get_units(["SNV", "SNV-NFD"])
    assert got["SNV"].name_vi.encode() == composed.encode()
    assert got["SNV-NFD"].name_vi.encode() == decomposed.encode() != composed.encode()
    with store.engine.connect() as connection:
        raw = connection.scalar(select(units.c.name_vi).where(units.c.code == "SNV-NFD"))
    assert raw == decomposed
    store.upsert_assignments([task("T1", "SNV", dt.date(2026, 5, 1), title=composed)])
    store.record_outcomes([report("o1", "T1", OutcomeStatus.IN_PROGRESS, at(5, 1), note=decomposed)])
    assert store.list_outcomes().items[0].note == decomposed
    assert store.get_assignments(["T1"])["T1"].title == composed
    store.save_evaluations([new_evaluation("SNV", "2026-Q2", "a", flags=("phê_bình",))], period="2026-Q2")
    record = store.get_evaluation(unit_code="SNV", period="2026-Q2")
    assert record is not None and record.result_json == '{"digest":"a","ghi_chú":"Đạt"}'
    assert record.flags == ("phê_bình",) and record.unit_name_vi == composed
    assert store.list_recommendations(period="2026-Q2").items[0].label_vi == "Phê bình"


# ---- concurrency and durability ----------------------------------------------------------------


def test_concurrent_writers_wait_instead_of_failing(store: SqlStore) -> None:
    store.upsert_units([unit("SNV")])
    store.upsert_assignments([task(f"T{i}", "SNV", dt.date(2026, 5, 1)) for i in range(8)])
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        try:
            start.wait()
            for round_ in range(15):
                shared = [report(f"shared-{round_}", "T0", OutcomeStatus.IN_PROGRESS, at(5, 1))]
                own = [report(f"w{n}-{round_}-{i}", f"T{n}", OutcomeStatus.IN_PROGRESS, at(5, 2))
                       for i in range(50)]
                store.record_outcomes(shared + own)
                store.upsert_units([unit(f"U{n}", name_en=f"round {round_}")])
                store.record_measurements([measurement("SNV", "dx.shared", round_, at(6, 1 + n))])
                store.task_counts(start=Q2[0], end=Q2[1])
        except BaseException as error:  # collected and re-raised in the main thread
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count_outcomes() == 15 + 8 * 15 * 50
    assert_states_follow_the_definition(store.engine)
    assert store.list_measurements(indicator="dx.shared").items[0].reported_at == at(6, 8)


def test_an_acknowledged_batch_survives_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    script = textwrap.dedent(f"""
        import datetime as dt, os, signal, sys
        from civicscore.domain.model import *
        from civicscore.store.sql import open_store
        store = open_store({url!r})
        store.upsert_units([Unit("SNV", "Sở Nội vụ", "Home Affairs", UnitKind.DEPARTMENT, "departments")])
        day = dt.date(2026, 5, 1)
        store.upsert_assignments([Assignment("T1", "SNV", "t", Area.PAR, day, day)])
        at = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
        result = store.record_outcomes(
            [Outcome(f"o{{i}}", "T1", OutcomeStatus.IN_PROGRESS, at, "s") for i in range(2000)])
        print(result.accepted, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL and killed.stdout.strip() == "2000", killed.stderr
    reopened = open_store(url)
    try:
        assert reopened.count_outcomes() == 2000
    finally:
        reopened.close()


def stored_ruleset(digest: str, version: str = "2026.1", in_force_from: str = "2025-Q3") -> StoredRuleset:
    return StoredRuleset(digest=digest, ruleset_id="hanoi-default", version=version, in_force_from=in_force_from,
                         files={"flags.yaml": "# Cờ đề xuất — flags\nflags: []\n", "ruleset.yaml": "x: 1\n"},
                         stored_at=NOW)


def activation(actor: str = "policy@snv", source: str = "rpc") -> NewActivation:
    return NewActivation(actor=actor, source=source, reason="Quyết định 12/QĐ-BCĐ", at=NOW)


def test_ruleset_versions_are_kept_and_rollbacks_only_mark_them(store: SqlStore) -> None:
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    first = store.record_activation(stored_ruleset(a), activation(source="startup"))
    assert first is not None
    with pytest.raises(NothingToRollBack, match="only one"):
        store.roll_back_activation(expected_digest="", actor="x", reason="", at=NOW)
    # The content already in force from its quarter is not recorded again (judged in the same transaction).
    assert store.record_activation(stored_ruleset(a), activation(source="startup")) is None
    second = store.record_activation(stored_ruleset(b, "2026.2", "2026-Q4"), activation())
    third = store.record_activation(stored_ruleset(c), activation())  # replaces a from 2025-Q3
    again = store.record_activation(stored_ruleset(a), activation())  # a once more: in force again
    assert second is not None and third is not None and again is not None
    assert [r.seq for r in (first, second, third, again)] == [first.seq + i for i in range(4)]
    stored = store.get_ruleset(a)
    assert stored is not None and stored.files == stored_ruleset(a).files and stored.stored_at == NOW
    assert store.get_ruleset("d" * 64) is None

    with pytest.raises(NothingToRollBack, match="not of"):
        store.roll_back_activation(expected_digest=b, actor="x", reason="", at=NOW)
    undone = store.roll_back_activation(expected_digest=a, actor="chair@bcd", reason="Nhầm", at=NOW)
    assert (undone.seq, undone.rolled_back_by, undone.rollback_reason, undone.rolled_back_at) == (
        again.seq, "chair@bcd", "Nhầm", NOW)
    assert [r.seq for r in store.activations(include_rolled_back=False)] == [first.seq, second.seq, third.seq]
    assert [r.seq for r in store.activations()] == [first.seq, second.seq, third.seq, again.seq]

    page = store.list_activations(limit=2)
    assert [r.seq for r in page.items] == [again.seq, third.seq] and page.next_cursor is not None
    rest = store.list_activations(limit=3, after=page.next_cursor)
    assert [r.seq for r in rest.items] == [second.seq, first.seq] and rest.next_cursor is None
    assert [r.seq for r in store.list_activations(rolled_back=True).items] == [again.seq]
    assert [r.seq for r in store.list_activations(version="2026.2").items] == [second.seq]
    assert [r.seq for r in store.list_activations(source="startup").items] == [first.seq]
    with pytest.raises(InvalidCursor):
        store.list_activations(after=encode_cursor("ruleset-activations", ("x",)))


def test_an_activation_replays_under_its_idempotency_key(store: SqlStore) -> None:
    key = IdempotencyRecord(key="act-1", method="ActivateRuleset", request_digest="d1")
    first = store.record_activation(stored_ruleset("a" * 64), activation(), idempotency=key)
    replay = store.record_activation(stored_ruleset("a" * 64), activation(), idempotency=key)
    assert replay == first
    assert len(store.activations()) == 1


def test_writes_record_who_made_them_and_unchanged_items_keep_the_first_writer(store: SqlStore) -> None:
    store.upsert_units([unit("SNV")], recorded_by="admin-1")
    store.upsert_units([unit("SNV")], recorded_by="admin-2")  # unchanged: nothing rewritten
    store.upsert_units([unit("STP")], recorded_by="admin-2")
    store.upsert_assignments([task("T1", "SNV", Q2[1])], recorded_by="secretariat")
    store.record_outcomes([done("o1", "T1", Q2[1], at(6, 1))], recorded_by="snv-tracker")
    with store.engine.connect() as connection:
        who = dict(connection.execute(text("SELECT code, recorded_by FROM units")).all())
        assert who == {"SNV": "admin-1", "STP": "admin-2"}
        assert connection.scalar(text("SELECT recorded_by FROM assignments")) == "secretariat"
        assert connection.scalar(text("SELECT recorded_by FROM outcomes")) == "snv-tracker"
    store.upsert_units([unit("SNV", name_vi="Sở Nội vụ")], recorded_by="admin-3")  # changed: the new writer
    with store.engine.connect() as connection:
        assert connection.scalar(text("SELECT recorded_by FROM units WHERE code = 'SNV'")) == "admin-3"


def test_the_audit_log_chains_and_verifies_on_both_backends(store: SqlStore) -> None:
    moments = [NOW + dt.timedelta(microseconds=n * 123457) for n in range(3)]
    store.append_audit([NewAuditEvent(at=at_, actor="cán-bộ", action="upsert_units", target="units",
                                      outcome="done", detail={"created": n, "ghi chú": "Sở Nội vụ"})
                        for n, at_ in enumerate(moments)])
    store.upsert_units([unit("SNV")], recorded_by="admin-1")  # a write audits itself
    entries = store.audit_entries()
    assert [e.seq for e in entries][-4:] == [entries[-4].seq + i for i in range(4)]
    assert entries[-1].actor == "admin-1" and json.loads(entries[-1].detail_json)["created"] == 1
    result = verify_chain(entries)
    assert result.valid, result.problems
