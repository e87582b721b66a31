"""Passwords and sign-in through the real server: an administrator sets a password, a person signs in
for a token with exactly its identity's roles, failures are refused alike whatever their cause, ten in
a row lock the identity on every replica sharing the database (SQLite file and PostgreSQL), and the
password is nowhere in clear: not in the database, the log, the audit log or an error."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from civicscore.passwords import lockout_duration
from civicscore_api.v1 import identities_pb2, units_pb2
from civicscore_client import Client
from civicscore_client._errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from civicscore_client.cli import app
from tests.clockserver import set_clock
from tests.postgres_support import database_url_fixture
from tests.serverproc import ServerProcess

database_url = database_url_fixture()

PASSWORD = "Mật khẩu của Lan 2026"  # Vietnamese: NFC, 20 characters, 26 bytes
OTHER = "correct horse battery staple"
SIGN_IN_FAILED = "sign-in failed: the identity or the password is wrong"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path).start()
    try:
        with proc.client() as admin:
            admin.create_identity("lan.reader", "Nguyễn Thị Lan", roles=["reader"])
            admin.create_identity("minh.committee", "Trần Văn Minh", roles=["committee"])
        yield proc
    finally:
        proc.stop()


def _sign_in_error(proc: ServerProcess, identity: str, password: str) -> Unauthenticated:
    with Client(proc.address) as anonymous, pytest.raises(Unauthenticated) as refused:
        anonymous.sign_in(identity, password)
    return refused.value


def test_lock_out_doubles_from_a_minute_up_to_an_hour() -> None:
    assert [lockout_duration(n).total_seconds() for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_signed_in_person_acts_with_exactly_its_roles(served: ServerProcess) -> None:
    with served.client() as admin:
        admin.set_password("lan.reader", PASSWORD)
    before = dt.datetime.now(dt.UTC)
    with Client(served.address) as anonymous:  # no token: SignIn is open
        signed = anonymous.sign_in("lan.reader", PASSWORD)
    assert signed.token.startswith("cs_") and signed.identity.identity_id == "lan.reader"
    assert signed.credential.sign_in and signed.credential.kind == identities_pb2.CREDENTIAL_KIND_TOKEN
    expires = signed.credential.expire_time.ToDatetime(dt.UTC)
    assert dt.timedelta(hours=11, minutes=59) < expires - before < dt.timedelta(hours=12, minutes=1)
    with Client(served.address, token=signed.token) as lan:
        me = lan.whoami()
        assert me.identity.identity_id == "lan.reader" and me.credential.sign_in
        assert list(lan.list_units()) == []  # a reader reads
        unit = units_pb2.Unit(code="SNV", display_name_vi="Sở Nội vụ", display_name_en="Home Affairs",
                              kind=units_pb2.UNIT_KIND_DEPARTMENT, block="departments")
        with pytest.raises(PermissionDenied, match=r"units\.write"):  # and cannot write
            lan.upsert_units([unit])
        with pytest.raises(PermissionDenied, match="may change only its own password"):
            lan.set_password("minh.committee", OTHER)
    with served.client() as admin:  # listed (and revocable) like any credential
        listed = admin.list_credentials("lan.reader")
        assert [c.name for c in listed] == [signed.credential.name] and listed[0].sign_in
        admin.revoke_credential(signed.credential.name)
    with Client(served.address, token=signed.token) as lan, pytest.raises(Unauthenticated, match="revoked"):
        lan.whoami()


def test_every_failed_sign_in_gets_the_same_answer(served: ServerProcess) -> None:
    with served.client() as admin:
        admin.set_password("lan.reader", PASSWORD)
        admin.create_identity("gone.reader", "Đã thu hồi", roles=["reader"])
        admin.set_password("gone.reader", PASSWORD)
        admin.revoke_identity("gone.reader")
    refusals = [_sign_in_error(served, "lan.reader", PASSWORD + "!"),  # wrong password
                _sign_in_error(served, "nobody.here", PASSWORD),  # unknown identity
                _sign_in_error(served, "minh.committee", PASSWORD),  # no password
                _sign_in_error(served, "gone.reader", PASSWORD)]  # revoked
    assert {(e.message, e.reason) for e in refusals} == {(refusals[0].message, "SIGN_IN_FAILED")}
    assert refusals[0].message.startswith(SIGN_IN_FAILED)
    with Client(served.address) as anonymous, pytest.raises(InvalidArgument) as empty:
        anonymous.sign_in("lan.reader", "")
    assert empty.value.violations[0].field == "password"


def test_ids_that_cannot_sign_in_lock_out_like_an_identity_does(database_url: str, tmp_path: Path) -> None:
    """An unknown id, an identity without a password and a revoked one answer ten failures in a row, counted
    across two replicas, exactly as an identity with a password does: the tenth locks it for a minute (the
    right password of the revoked one is refused too). The lock-out tells no one which ids exist."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = ServerProcess(tmp_path / "a", database_url=database_url).start()
    second = None
    try:
        second = ServerProcess(tmp_path / "b", database_url=database_url).start()
        with first.client(first.token or second.token) as admin:
            admin.create_identity("lan.reader", "Nguyễn Thị Lan", roles=["reader"])
            admin.set_password("lan.reader", PASSWORD)
            admin.create_identity("minh.committee", "Trần Văn Minh", roles=["committee"])  # no password
            admin.create_identity("gone.reader", "Đã thu hồi", roles=["reader"])
            admin.set_password("gone.reader", PASSWORD)
            admin.revoke_identity("gone.reader")
        locks = {}
        for who in ("lan.reader", "nobody.here", "minh.committee", "gone.reader"):
            for replica in [first, second] * 4 + [first]:
                assert _sign_in_error(replica, who, OTHER).reason == "SIGN_IN_FAILED"
            with Client(second.address) as anonymous, pytest.raises(ResourceExhausted) as locking:
                anonymous.sign_in(who, OTHER)
            with Client(first.address) as anonymous, pytest.raises(ResourceExhausted) as still:
                anonymous.sign_in(who, PASSWORD)
            locks[who] = (locking.value, still.value)
        for who, (locking, still) in locks.items():
            for refused in (locking, still):
                assert refused.reason == "ACCOUNT_LOCKED"
                # the same words but the id (and the seconds left, which run on)
                assert re.sub(r"\d+", "N", refused.message.replace(who, "ID")) == re.sub(
                    r"\d+", "N", locks["lan.reader"][0].message.replace("lan.reader", "ID"))
                assert refused.retry_after is not None and 45 < refused.retry_after <= 60
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_failures_a_day_apart_are_not_in_a_row(tmp_path: Path) -> None:
    """Nine failures, then one more a day and a second later: the count starts again, for an identity and for
    an unknown id alike (so that waiting does not tell them apart either); ten within the day lock both."""
    start = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)
    set_clock(tmp_path, start)
    proc = ServerProcess(tmp_path, module="tests.clockserver").start()
    try:
        with proc.client() as admin:
            admin.create_identity("lan.reader", "Nguyễn Thị Lan", roles=["reader"])
            admin.set_password("lan.reader", PASSWORD)
        for who in ("lan.reader", "nobody.here"):
            set_clock(tmp_path, start)
            for _ in range(9):
                assert _sign_in_error(proc, who, OTHER).reason == "SIGN_IN_FAILED"
            set_clock(tmp_path, start + dt.timedelta(days=1, seconds=1))
            for _ in range(9):  # the first of these starts a new count: nine in a row, not eighteen
                assert _sign_in_error(proc, who, OTHER).reason == "SIGN_IN_FAILED"
            with Client(proc.address) as anonymous, pytest.raises(ResourceExhausted) as locked:
                anonymous.sign_in(who, OTHER)
            assert locked.value.reason == "ACCOUNT_LOCKED"
    finally:
        proc.stop()


def test_changing_ones_own_password_needs_the_current_one(served: ServerProcess) -> None:
    with served.client() as admin:
        admin.set_password("lan.reader", PASSWORD)
    with Client(served.address) as anonymous:
        token = anonymous.sign_in("lan.reader", PASSWORD).token
    with Client(served.address, token=token) as lan:
        with pytest.raises(InvalidArgument) as missing:
            lan.set_password("lan.reader", OTHER)
        assert [(v.field, v.reason) for v in missing.value.violations] == [("current_password", "REQUIRED")]
        with pytest.raises(InvalidArgument) as wrong:
            lan.set_password("lan.reader", OTHER, current_password="not my password at all")
        assert [(v.field, v.reason) for v in wrong.value.violations] == [("current_password", "WRONG_PASSWORD")]
        lan.set_password("lan.reader", OTHER, current_password=PASSWORD)
        lan.set_password("lan.reader", OTHER, current_password=PASSWORD)  # sent again: harmless
    assert _sign_in_error(served, "lan.reader", PASSWORD).message.startswith(SIGN_IN_FAILED)
    with Client(served.address) as anonymous:
        minh = anonymous.sign_in("lan.reader", OTHER)
    assert minh.identity.identity_id == "lan.reader"
    with served.client() as admin:  # an identity without a password has nothing to change
        admin.create_identity("tu.policy", "Lê Tú", roles=["policy"])
        tu_token = admin.issue_token("tu.policy").token
    with Client(served.address, token=tu_token) as tu, pytest.raises(FailedPrecondition, match="no password yet"):
        tu.set_password("tu.policy", OTHER, current_password=PASSWORD)


@pytest.mark.parametrize(("password", "field", "reason", "words"), [
    ("ngắn quá", "new_password", "TOO_SHORT", "at least 12 characters"),
    ("lan.reader", "new_password", "TOO_SHORT", "at least 12"),
    ("LAN.READER.2026", "new_password", "", ""),  # allowed: only the id itself is refused
    ("ệ" * 100, "new_password", "TOO_LONG", "at most 256 bytes"),  # 100 characters, 300 bytes
    ("x" * 257, "new_password", "TOO_LONG", "at most 256 characters"),  # the field's domain
    ("mật khẩu\u200bẩn giấu 99", "new_password", "FORBIDDEN_CHARACTER", "invisible"),
    ("", "new_password", "REQUIRED", "required"),
])
def test_a_bad_new_password_is_refused_without_echo(served: ServerProcess, password: str, field: str, reason: str,
                                                     words: str) -> None:
    with served.client() as admin:
        if not reason:
            admin.set_password("lan.reader", password)
            return
        with pytest.raises(InvalidArgument) as refused:
            admin.set_password("lan.reader", password)
    violation = refused.value.violations[0]
    assert (violation.field, violation.reason) == (field, reason), violation
    assert words in violation.description
    for text_shown in (refused.value.message, violation.description, str(refused.value)):
        assert password not in text_shown or not password, text_shown
        assert "ệệệ" not in text_shown and "ẩn giấu" not in text_shown and "ngắn" not in text_shown
    assert password not in served.log() or not password


def test_a_password_equal_to_the_identity_id_is_refused(served: ServerProcess) -> None:
    with served.client() as admin:
        admin.create_identity("phong.cchc.snv", "Phòng CCHC", roles=["reader"])
        with pytest.raises(InvalidArgument) as refused:
            admin.set_password("phong.cchc.snv", "Phong.CCHC.SNV")
    assert refused.value.violations[0].reason == "SAME_AS_ID"


def test_the_password_is_stored_only_as_an_argon2id_hash_and_never_logged(served: ServerProcess) -> None:
    with served.client() as admin:
        admin.set_password("lan.reader", PASSWORD)
    _sign_in_error(served, "lan.reader", OTHER)
    with Client(served.address) as anonymous:
        anonymous.sign_in("lan.reader", PASSWORD)
    database = served.workdir / "civicscore.db"
    with sqlite3.connect(database) as connection:
        (stored,) = connection.execute(
            "SELECT password_hash FROM identity_passwords WHERE identity_id = 'lan.reader'").fetchone()
        audit = [row[0] + row[1] for row in connection.execute(
            "SELECT action, detail_json FROM audit_events ORDER BY seq")]
    assert stored.startswith("$argon2id$v=19$") and PASSWORD not in stored
    raw = b"".join(path.read_bytes() for path in served.workdir.glob("civicscore.db*"))  # the WAL too
    for form in (PASSWORD, OTHER):
        for encoded in (form.encode("utf-8"), form.encode("utf-16-le")):
            assert encoded not in raw
        assert form not in served.log()
        assert not any(form in entry for entry in audit)
    assert not any("argon2" in entry for entry in audit)
    actions = [entry.split("{", 1)[0] for entry in audit]
    assert "SetPassword" in actions and "SignIn" in actions


def test_ten_failures_lock_the_identity_on_every_replica(database_url: str, tmp_path: Path) -> None:
    """Failures counted by server A lock sign-in on server B: the count lives in the shared database."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = ServerProcess(tmp_path / "a", database_url=database_url).start()
    second = None
    try:
        second = ServerProcess(tmp_path / "b", database_url=database_url).start()
        with first.client(first.token or second.token) as admin:
            admin.create_identity("lan.reader", "Nguyễn Thị Lan", roles=["reader"])
            admin.set_password("lan.reader", PASSWORD)
        for _ in range(9):
            assert _sign_in_error(first, "lan.reader", OTHER).reason == "SIGN_IN_FAILED"
        with Client(second.address) as anonymous:
            anonymous.sign_in("lan.reader", PASSWORD)  # a success starts the count again
        for replica in [first, second] * 4 + [first]:
            assert _sign_in_error(replica, "lan.reader", OTHER).reason == "SIGN_IN_FAILED"
        started = time.monotonic()
        with Client(second.address) as anonymous, pytest.raises(ResourceExhausted) as locking:
            anonymous.sign_in("lan.reader", OTHER)  # the tenth in a row: 9 counted by A, this one by B
        assert locking.value.reason == "ACCOUNT_LOCKED"
        for replica in (first, second):  # now even the right password is refused, on both
            with Client(replica.address) as anonymous, pytest.raises(ResourceExhausted) as locked:
                anonymous.sign_in("lan.reader", PASSWORD)
            assert locked.value.reason == "ACCOUNT_LOCKED"
            assert "temporarily locked after repeated failed sign-ins" in locked.value.message
            assert locked.value.retry_after is not None
            assert 50 < locked.value.retry_after <= 60 - (time.monotonic() - started) + 1
        with first.client(first.token or second.token) as admin:
            events = list(admin.list_audit_events(action="SignInLockout"))
            assert [e.target for e in events] == ["identities/lan.reader"]
            assert json.loads(events[0].detail_json)["locked_seconds"] == 60
            admin.set_password("lan.reader", OTHER)  # an administrator's new password unlocks
        with Client(second.address) as anonymous:
            assert anonymous.sign_in("lan.reader", OTHER).identity.identity_id == "lan.reader"
        engine = create_engine(database_url)
        try:
            with engine.connect() as connection:
                row = connection.execute(text("SELECT password_hash, failed_attempts, locked_until FROM "
                                              "identity_passwords WHERE identity_id = 'lan.reader'")).one()
        finally:
            engine.dispose()
        assert row[0].startswith("$argon2id$") and row[1] == 0 and row[2] is None
        for replica in (first, second):
            assert PASSWORD not in replica.log() and OTHER not in replica.log()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _cli(address: str, *args: str, stdin: str = "", token: str = "") -> tuple[int, str, str]:
    env = {"COLUMNS": "250", "NO_COLOR": "1", "CIVICSCORE_TOKEN": token} if token else {"COLUMNS": "250",
                                                                                      "NO_COLOR": "1"}
    result = CliRunner().invoke(app, ["--server", address, *args], input=stdin, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_sets_changes_and_signs_in_with_passwords(served: ServerProcess, tmp_path: Path) -> None:
    code, out, err = _cli(served.address, "admin", "password", "lan.reader", "--password-stdin",
                          stdin=PASSWORD + "\n", token=served.token)
    assert code == 0, err
    assert "password set for identities/lan.reader" in out and PASSWORD not in out + err
    code, out, err = _cli(served.address, "admin", "password", "lan.reader", "--password-stdin",
                          stdin="short\n", token=served.token)
    assert code == 1 and "at least 12 characters" in err and "short\n" not in err
    saved = tmp_path / "lan.token"
    code, out, err = _cli(served.address, "sign-in", "lan.reader", "--password-stdin", "--save", str(saved),
                          stdin=PASSWORD + "\n")
    assert code == 0, err
    assert "signed in as identities/lan.reader" in err and out == ""
    assert saved.stat().st_mode & 0o777 == 0o600
    code, out, err = _cli(served.address, "--token-file", str(saved), "password", "--password-stdin",
                          stdin=f"{PASSWORD}\n{OTHER}\n")
    assert code == 0, err
    assert "password changed for identities/lan.reader" in out
    code, out, err = _cli(served.address, "sign-in", "lan.reader", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 1 and SIGN_IN_FAILED in err and PASSWORD not in err
    code, out, err = _cli(served.address, "sign-in", "lan.reader", "--password-stdin", stdin=OTHER + "\n")
    assert code == 0, err
    token = out.strip()
    with Client(served.address, token=token) as lan:
        assert lan.whoami().identity.identity_id == "lan.reader"
    code, out, err = _cli(served.address, "sign-in", "lan.reader")  # no terminal, no --password-stdin
    assert code == 2 and "--password-stdin" in err
