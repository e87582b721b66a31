"""The audit log through the real server: every change is in it, and tampering with the database
file (an edited, a deleted, a reordered row, a cut-off end) is reported by VerifyAudit; a writer
killed between inserting its entry and committing leaves no gap, so no false alarm (SQLite and
PostgreSQL), and a PostgreSQL log from before entries were numbered from the chain still verifies."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from civicscore.auditverify import verify_chain
from civicscore.store.base import AuditEntry, NewAuditEvent
from civicscore.store.connection import begin_schema_change, create_store_engine, migrations_config
from civicscore.store.identities import GENESIS_HASH, entry_hash
from civicscore.store.sql import open_store
from civicscore_api.v1 import units_pb2
from civicscore_client import PermissionDenied
from civicscore_client.cli import app
from tests.postgres_support import database_url
from tests.scenario import PERIOD, load_quarter
from tests.serverproc import ServerProcess, hanoi_units
from tests.waiting import eventually

pytestmark = pytest.mark.slow

COLUMNS = "at, actor, action, target, outcome, detail_json, prev_hash, entry_hash"


def busy_server(tmp_path: Path) -> ServerProcess:
    """A server with some history: identities, data, an evaluation, a refused call.

    Returned once the refusal is in the audit log: the server writes refusals from a background
    thread (see `auth.auditlog`), so a test that noted the log's head before would see it move.
    """
    proc = ServerProcess(tmp_path).start()
    proc.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
    load_quarter(proc)
    with proc.client() as admin:
        admin.evaluate_period(PERIOD)
        admin.create_identity("reader-1", "Người đọc", roles=["reader"])
        token = admin.issue_token("reader-1").token
    with proc.client(token, max_attempts=1) as reader, pytest.raises(PermissionDenied):
        reader.evaluate_period(PERIOD)
    with proc.client() as admin:
        assert eventually(lambda: any(e.outcome == "refused" for e in admin.list_audit_events())), (
            "the refused EvaluatePeriod never reached the audit log")
    return proc


def test_every_kind_of_change_is_audited_and_the_chain_verifies(tmp_path: Path) -> None:
    proc = busy_server(tmp_path)
    try:
        with proc.client() as admin:
            events = list(admin.list_audit_events())
            verified = admin.verify_audit()
            assert verified.valid and verified.entries_checked == len(events) and not verified.problems
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            done = {(e.actor, e.action) for e in events if e.outcome == "done"}
            assert {("bootstrap-admin", "upsert_units"), ("bootstrap-admin", "upsert_assignments"),
                    ("bootstrap-admin", "record_outcomes"), ("bootstrap-admin", "record_measurements"),
                    ("bootstrap-admin", "save_evaluations"), ("bootstrap-admin", "CreateIdentity"),
                    ("bootstrap-admin", "IssueToken"), ("server-bootstrap", "CreateIdentity")} <= done
            assert any(e.action == "activate_ruleset" and e.actor.startswith("rules-folder:") for e in events)
            refused = [e for e in events if e.outcome == "refused"]
            assert [(e.actor, e.action) for e in refused] == [
                ("reader-1", "/civicscore.v1.EvaluationService/EvaluatePeriod")]
            assert json.loads(refused[0].detail_json)["reason"] == "missing permission evaluations.run"
            outcomes = next(e for e in events if e.action == "record_outcomes")
            assert json.loads(outcomes.detail_json)["accepted"] == 22
            assert list(admin.list_audit_events(actor="reader-1")) == refused
    finally:
        proc.stop()


def test_edited_deleted_and_reordered_rows_are_each_reported(tmp_path: Path) -> None:
    proc = busy_server(tmp_path)
    with proc.client() as admin:
        head = admin.verify_audit()
    assert head.valid and head.entries_checked >= 10
    proc.stop()
    with sqlite3.connect(proc.database_url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3")  # edited
        db.execute("DELETE FROM audit_events WHERE seq = 5")  # deleted
        seven, eight = (db.execute(f"SELECT {COLUMNS} FROM audit_events WHERE seq = ?", (n,)).fetchone()
                        for n in (7, 8))
        assignments = ", ".join(f"{name.strip()} = ?" for name in COLUMNS.split(","))
        db.execute(f"UPDATE audit_events SET {assignments} WHERE seq = 7", eight)  # reordered: 7 and 8 swapped
        db.execute(f"UPDATE audit_events SET {assignments} WHERE seq = 8", seven)
        last = db.execute("SELECT max(seq) FROM audit_events").fetchone()[0]
        db.execute("DELETE FROM audit_events WHERE seq = ?", (last,))  # cut off the end
    proc.start()
    try:
        with proc.client() as admin:
            checked = admin.verify_audit(expected_sequence=head.head_sequence, expected_hash=head.head_hash)
        found = [(p.kind, p.sequence) for p in checked.problems]
        assert not checked.valid
        assert ("EDITED", 3) in found
        assert ("DELETED", 6) in found  # #5 is missing before #6
        assert ("REORDERED", 7) in found and ("REORDERED", 8) in found
        assert ("HEAD_MISSING", head.head_sequence) in found
        messages = {p.kind: p.message for p in checked.problems}
        assert "entries #5 are missing" in messages["DELETED"]
        assert "follows entry #8" in next(p.message for p in checked.problems if p.sequence == 7)
        # the same through the CLI: every problem printed, exit code 1
        result = CliRunner().invoke(app, ["--server", proc.address, "audit", "verify"],
                                    env={"CIVICSCORE_TOKEN": proc.token, "COLUMNS": "250"})
        assert result.exit_code == 1, result.output
        assert "EDITED #3" in result.stdout and "DELETED #6" in result.stdout and "REORDERED #7" in result.stdout
    finally:
        proc.stop()


# ---- a writer that dies mid-transaction leaves no gap ---------------------------------------------

# A process that writes an audit entry through the server's own code path and then holds its
# transaction open until it is killed: the entry is inserted, never committed.
HOLDER = """
import datetime as dt, sys, time
from sqlalchemy import text
from civicscore.store.base import NewAuditEvent
from civicscore.store.connection import begin_write, create_store_engine
from civicscore.store.identities import append_audit
engine = create_store_engine(sys.argv[1])
with engine.connect() as connection, begin_write(connection):
    append_audit(connection, [NewAuditEvent(at=dt.datetime.now(dt.UTC), actor="doomed-writer", action="upsert_units",
                                            target="units", outcome="done", detail={"created": 1})])
    pid = connection.execute(text("SELECT pg_backend_pid()")).scalar() if engine.dialect.name == "postgresql" else 0
    print(f"holding {pid}", flush=True)
    time.sleep(600)
"""


def hold_an_uncommitted_entry(url: str, workdir: Path) -> tuple[subprocess.Popen[str], int]:
    """Start a process holding an inserted, uncommitted audit entry (and the audit lock); (process, its
    PostgreSQL backend pid or 0)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], cwd=workdir, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=ServerProcess._env())
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if not line.startswith("holding"):
        holder.kill()
        pytest.fail(f"the writer did not get to hold its transaction: {line}{holder.communicate()[0]}")
    return holder, int(line.split()[1])


def end_abruptly(holder: subprocess.Popen[str], backend_pid: int, how: str, url: str) -> None:
    """End the holder's transaction without a commit: SIGKILL its process, or terminate its backend."""
    if how == "killed":
        holder.send_signal(signal.SIGKILL)
    else:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid}).scalar()
        finally:
            engine.dispose()
        holder.kill()  # its connection is gone; nothing more to see
    holder.communicate()


DEATHS = [
    pytest.param("sqlite", "killed", id="sqlite-killed"),
    pytest.param("postgres", "killed", id="postgres-killed", marks=pytest.mark.postgres),
    pytest.param("postgres", "terminated", id="postgres-backend-terminated", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize(("backend", "how"), DEATHS)
def test_a_writer_that_died_before_committing_leaves_the_chain_valid(backend: str, how: str,
                                                                     tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as url:
        proc = ServerProcess(tmp_path, database_url=url).start()
        try:
            with proc.client() as admin:
                admin.create_identity("reader-1", "Người đọc", roles=["reader"])
                before = admin.verify_audit()
                holder, backend_pid = hold_an_uncommitted_entry(url, tmp_path)
                with ThreadPoolExecutor(1) as pool:
                    # A write through the server meanwhile waits for the lock the holder has...
                    waiting = pool.submit(admin.create_identity, "reader-2", "Người đọc 2", roles=["reader"])
                    end_abruptly(holder, backend_pid, how, url)
                    waiting.result(timeout=120)  # ...and goes on once the holder's transaction is gone
                admin.create_identity("reader-3", "Người đọc 3", roles=["reader"])
                checked = admin.verify_audit(expected_sequence=before.head_sequence,
                                             expected_hash=before.head_hash)
                events = list(admin.list_audit_events())
            assert checked.valid, checked.problems
            assert [e.sequence for e in events] == list(range(1, len(events) + 1)), "numbered without a gap"
            assert "doomed-writer" not in {e.actor for e in events}
            assert [e.target for e in events if e.action == "CreateIdentity"][-3:] == [
                "identities/reader-1", "identities/reader-2", "identities/reader-3"]
        finally:
            proc.stop()


@pytest.mark.postgres
def test_a_postgresql_log_with_a_gap_from_before_numbering_from_the_chain_still_verifies(tmp_path: Path) -> None:
    """Before revision 0008 a database sequence numbered the entries: a transaction that died spent a
    number. Such a database, upgraded, verifies; new entries go on from the chain; a deletion is still
    reported."""
    with database_url("postgres", tmp_path) as url:
        engine = create_store_engine(url)
        try:
            with engine.connect() as connection, begin_schema_change(connection):
                command.upgrade(migrations_config(connection=connection), "0007")

            def old_append(connection: Connection, actor: str) -> None:
                """Append as civicscore did before 0008: the number drawn from the column's sequence."""
                last = connection.execute(text("SELECT entry_hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                                          ).scalar() or GENESIS_HASH
                at = dt.datetime.now(dt.UTC).replace(microsecond=0)
                digest = entry_hash(last, at, actor, "upsert_units", "units", "done", "{}")
                connection.execute(text(
                    "INSERT INTO audit_events (at, actor, action, target, outcome, detail_json, prev_hash, "
                    "entry_hash) VALUES (:at, :actor, 'upsert_units', 'units', 'done', '{}', :prev, :digest)"),
                    {"at": at.replace(tzinfo=None), "actor": actor, "prev": last, "digest": digest})

            with engine.begin() as connection:
                old_append(connection, "first")
            with engine.connect() as connection:
                dying = connection.begin()
                old_append(connection, "died")  # draws number 2 from the sequence, then rolls back
                dying.rollback()
            with engine.begin() as connection:
                old_append(connection, "third")
        finally:
            engine.dispose()
        store = open_store(url)  # upgrades to head
        try:
            before = store.audit_entries()
            assert [(e.seq, e.actor) for e in before] == [(1, "first"), (3, "third")]  # the spent number
            assert verify_chain(before).valid
            store.append_audit([NewAuditEvent(at=dt.datetime.now(dt.UTC), actor="after-upgrade",
                                              action="upsert_units", target="units", outcome="done", detail={})])
            after = store.audit_entries()
            assert [(e.seq, e.actor) for e in after][-1] == (4, "after-upgrade")
            assert verify_chain(after).valid
            with store.engine.begin() as connection:
                assert connection.execute(text(
                    "SELECT column_default FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = 'audit_events' AND column_name = 'seq'")).scalar() is None
                connection.execute(text("DELETE FROM audit_events WHERE seq = 3"))
            found = [(p.kind, p.sequence) for p in verify_chain(store.audit_entries()).problems]
            assert found == [("DELETED", 4)]
        finally:
            store.close()


def test_the_verifier_tells_a_spent_number_from_a_deleted_entry() -> None:
    """A gap followed by an entry chained to the one before it: a number spent by a transaction that died
    (before 0008); a gap where the chain breaks: a deletion, however the numbers look."""
    def chain(*numbers: int) -> list[AuditEntry]:
        entries, prev = [], GENESIS_HASH
        at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        for n in numbers:
            digest = entry_hash(prev, at, f"actor-{n}", "upsert_units", "units", "done", "{}")
            entries.append(AuditEntry(seq=n, at=at, actor=f"actor-{n}", action="upsert_units", target="units",
                                      outcome="done", detail_json="{}", prev_hash=prev, entry_hash=digest))
            prev = digest
        return entries

    assert verify_chain(chain(1, 2, 5, 6)).valid  # #3 and #4 were never committed
    assert verify_chain(chain(2, 3)).valid  # nor #1
    whole = chain(1, 2, 3, 4)
    deleted = [whole[0], whole[1], whole[3]]
    assert [(p.kind, p.sequence, p.message) for p in verify_chain(deleted).problems] == [
        ("DELETED", 4, "entries #3 are missing before #4")]
    assert [(p.kind, p.sequence) for p in verify_chain(whole[1:]).problems] == [("DELETED", 2)]
    # a deletion whose successor's link was edited to hide it: the successor no longer matches its hash
    hidden = [whole[0], whole[1], replace(whole[3], prev_hash=whole[1].entry_hash)]
    assert {(p.kind, p.sequence) for p in verify_chain(hidden).problems} == {("EDITED", 4), ("DELETED", 4)}
