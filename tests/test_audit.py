"""The audit log through the real server: every change is in it, and tampering with the database
file (an edited, a deleted, a reordered row, a cut-off end) is reported by VerifyAudit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from civicscore_api.v1 import units_pb2
from civicscore_client import PermissionDenied
from civicscore_client.cli import app
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
