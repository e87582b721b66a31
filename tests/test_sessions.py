"""Sign-in sessions end, through the real server: SignOut (a person's own session only: not a token an
administrator issued, nor a certificate), idle expiry decided from the database (so every replica sharing
it agrees: SQLite file and PostgreSQL), and a new password, which ends the identity's other sessions.

Idle expiry runs with the server's test-only `--session-idle-seconds` (the public flag counts minutes):
IDLE_S here, so a session's use is recorded every IDLE_S / 4 and it is refused once the recorded use is
older than IDLE_S * 1.25. The timings leave wide margins for a loaded machine: a session that must
survive is used every second, one that must end is left alone for more than twice its limit.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from civicscore.__main__ import _parse
from civicscore_api.v1 import identities_pb2, identities_pb2_grpc
from civicscore_client import Client
from civicscore_client._errors import FailedPrecondition, Unauthenticated
from civicscore_client.cli import app
from civicscore_client.devca import make_ca, make_client_cert, make_server_cert
from tests.postgres_support import database_url_fixture
from tests.serverproc import BearerToken, ServerProcess
from tests.test_tls import TlsServerProcess, write_pair

database_url = database_url_fixture()

PASSWORD = "Mật khẩu của Lan 2026"
OTHER = "correct horse battery staple"
IDLE_S = 10  # test-only idle limit: use recorded every 2.5 s, refused once the recorded use is 12.5 s old
SESSION_ENDED = "this sign-in session of lan.reader has ended"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with the default idle limit (30 minutes) and lan.reader, who has a password."""
    proc = ServerProcess(tmp_path).start()
    try:
        with proc.client() as admin:
            admin.create_identity("lan.reader", "Nguyễn Thị Lan", roles=["reader"])
            admin.set_password("lan.reader", PASSWORD)
        yield proc
    finally:
        proc.stop()


def _sign_in(proc: ServerProcess, password: str = PASSWORD) -> identities_pb2.SignInResponse:
    with Client(proc.address) as anonymous:
        return anonymous.sign_in("lan.reader", password)


def _refusal(proc: ServerProcess, token: str) -> Unauthenticated:
    with Client(proc.address, token=token, max_attempts=1) as caller, pytest.raises(Unauthenticated) as refused:
        caller.whoami()
    return refused.value


def _works(proc: ServerProcess, token: str) -> bool:
    with Client(proc.address, token=token, max_attempts=1) as caller:
        return caller.whoami().identity.identity_id == "lan.reader"


def _last_used(database_url: str, credential_name: str) -> dt.datetime | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            value = connection.execute(text("SELECT last_used_at FROM credentials WHERE credential_id = :id"),
                                       {"id": credential_name.rsplit("/", 1)[-1]}).scalar_one()
    finally:
        engine.dispose()
    if isinstance(value, str):  # SQLite through a plain text() query
        value = dt.datetime.fromisoformat(value)
    return value


# ---- SignOut ---------------------------------------------------------------------------------------


def test_signing_out_ends_the_session_at_once_and_only_that_one(served: ServerProcess) -> None:
    first, second = _sign_in(served), _sign_in(served)
    assert _works(served, first.token)  # cached by the server's authenticator: sign-out must drop it
    with Client(served.address, token=first.token, max_attempts=1) as lan:
        ended = lan.sign_out()
    assert ended.name == first.credential.name and ended.revoked and ended.sign_in
    assert ended.revoked_by == "lan.reader"
    refusal = _refusal(served, first.token)  # at once, on this replica
    assert refusal.message.startswith(SESSION_ENDED) and "sign in again" in refusal.message
    with Client(served.address, token=first.token, max_attempts=1) as lan, pytest.raises(Unauthenticated):
        lan.sign_out()  # again: the token no longer works at all
    assert _works(served, second.token)  # the person's other session goes on
    with served.client() as admin:
        events = list(admin.list_audit_events(action="SignOut"))
        listed = {c.name: c for c in admin.list_credentials("lan.reader")}
    assert [(e.actor, e.target) for e in events] == [("lan.reader", first.credential.name)]
    assert json.loads(events[0].detail_json)["credential"] == first.credential.name.rsplit("/", 1)[-1]
    assert listed[first.credential.name].revoked and not listed[second.credential.name].revoked


def test_a_token_an_administrator_issued_cannot_sign_out(served: ServerProcess) -> None:
    """What an administrator issued, an administrator revokes: a script or a console given a system's token by
    mistake cannot end it, nor can the bootstrap administrator lock itself out."""
    with served.client() as admin:
        issued = admin.issue_token("lan.reader").token
    for token, who in ((served.token, "bootstrap-admin"), (issued, "lan.reader")):
        with Client(served.address, token=token, max_attempts=1) as caller:
            with pytest.raises(FailedPrecondition) as refused:
                caller.sign_out()
            message = refused.value.message
            assert "a token an administrator issued" in message and "signing out ends sign-in sessions only" in message
            assert f"civicscore admin revoke-credential identities/{who}/credentials/" in message
            assert caller.whoami().identity.identity_id == who  # still works


def test_a_client_certificate_cannot_sign_out(tmp_path: Path) -> None:
    ca = make_ca()
    pki = SimpleNamespace(ca=ca, ca_pem=tmp_path / "ca.pem")
    pki.ca_pem.write_bytes(ca.cert_pem)
    pki.server_cert, pki.server_key = write_pair(tmp_path, "server", make_server_cert(ca, "localhost"))
    client_cert, client_key = write_pair(tmp_path, "client", make_client_cert(ca, "snv-task-tracker"))
    (tmp_path / "server").mkdir()
    proc = TlsServerProcess(tmp_path / "server", pki).start()
    try:
        with Client(proc.address, token=proc.token, ca_cert=pki.ca_pem) as admin:
            admin.create_identity("snv-task-tracker", "Hệ thống theo dõi nhiệm vụ của Sở Nội vụ", roles=["reader"])
            admin.register_certificate("snv-task-tracker", "CN=snv-task-tracker")
        with Client(proc.mtls_address, ca_cert=pki.ca_pem, server_name_override="localhost", client_cert=client_cert,
                    client_key=client_key, max_attempts=1) as system:
            with pytest.raises(FailedPrecondition) as refused:
                system.sign_out()
            assert "client certificate" in refused.value.message
            assert "an administrator revokes certificates" in refused.value.message
            assert system.whoami().identity.identity_id == "snv-task-tracker"
    finally:
        proc.stop()


def test_use_is_not_written_on_every_call(served: ServerProcess) -> None:
    """With the default limit, a use is recorded at most once a minute: a burst of calls right after signing in
    leaves the recorded use at the sign-in."""
    signed = _sign_in(served)
    for _ in range(20):
        assert _works(served, signed.token)
    recorded = _last_used(served.database_url, signed.credential.name)
    assert recorded == signed.credential.create_time.ToDatetime()  # naive UTC, as stored
    with served.client() as admin:
        listed = next(c for c in admin.list_credentials("lan.reader") if c.name == signed.credential.name)
    assert listed.last_use_time == signed.credential.create_time


def _cli(address: str, *args: str, stdin: str = "", token: str = "") -> tuple[int, str, str]:
    env = {"COLUMNS": "250", "NO_COLOR": "1", **({"CIVICSCORE_TOKEN": token} if token else {})}
    result = CliRunner().invoke(app, ["--server", address, *args], input=stdin, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_signs_out_and_removes_the_token_file(served: ServerProcess, tmp_path: Path) -> None:
    saved = tmp_path / "lan.token"
    code, _, err = _cli(served.address, "sign-in", "lan.reader", "--password-stdin", "--save", str(saved),
                        stdin=PASSWORD + "\n")
    assert code == 0, err
    assert "sign-out" in err and "idle limit" in err
    token = saved.read_text().strip()
    code, out, err = _cli(served.address, "--token-file", str(saved), "sign-out")
    assert code == 0, err
    assert "signed out: the session identities/lan.reader/credentials/" in out
    assert f"removed the token file {saved}" in out and not saved.exists()
    assert _refusal(served, token).message.startswith(SESSION_ENDED)
    kept = tmp_path / "kept.token"
    code, _, err = _cli(served.address, "sign-in", "lan.reader", "--password-stdin", "--save", str(kept),
                        stdin=PASSWORD + "\n")
    assert code == 0, err
    code, out, err = _cli(served.address, "--token-file", str(kept), "sign-out", "--keep-token-file")
    assert code == 0 and kept.exists() and "removed" not in out, err
    admin_file = tmp_path / "admin.token"
    admin_file.write_text(served.token + "\n")
    admin_file.chmod(0o600)
    code, out, err = _cli(served.address, "--token-file", str(admin_file), "sign-out")
    assert code == 1 and "a token an administrator issued" in err and admin_file.exists()
    code, out, err = _cli(served.address, "sign-out")
    assert code == 2 and "nothing to sign out of" in err
    code, out, err = _cli(served.address, "admin", "credentials", "lan.reader", token=served.token)
    assert code == 0, err
    assert "Last used" in out and out.count("token (sign-in)") == 2


# ---- a new password ends the other sessions ----------------------------------------------------------


def _set_password(proc: ServerProcess, token: str, new: str, current: str = "",
                  identity: str = "identities/lan.reader") -> identities_pb2.SetPasswordResponse:
    channel = grpc.intercept_channel(proc.anonymous_channel(), BearerToken(token))
    try:
        stub = identities_pb2_grpc.IdentityServiceStub(channel)
        reply: identities_pb2.SetPasswordResponse = stub.SetPassword(identities_pb2.SetPasswordRequest(
            identity=identity, new_password=new, current_password=current), timeout=30)
        return reply
    finally:
        channel.close()


def test_a_new_password_ends_the_other_sessions_but_the_callers(served: ServerProcess) -> None:
    here, elsewhere, lost = _sign_in(served), _sign_in(served), _sign_in(served)
    with served.client() as admin:
        issued = admin.issue_token("lan.reader").token  # not a session: a password does not end it
    assert all(_works(served, s.token) for s in (here, elsewhere, lost))  # cached: the change must drop them
    changed = _set_password(served, here.token, OTHER, current=PASSWORD)
    assert changed.sessions_ended == 2
    assert _works(served, here.token)  # the person stays signed in where they changed it
    for ended in (elsewhere, lost):
        assert _refusal(served, ended.token).message.startswith(SESSION_ENDED)
    again = _set_password(served, here.token, OTHER, current=PASSWORD)  # a retry of the same change
    assert again.sessions_ended == 0 and _works(served, here.token)
    fresh = _sign_in(served, OTHER)
    by_admin = _set_password(served, served.token, PASSWORD)  # an administrator's new password ends them all
    assert by_admin.sessions_ended == 2
    for ended in (here, fresh):
        assert _refusal(served, ended.token).message.startswith(SESSION_ENDED)
    assert _works(served, issued)
    with served.client() as admin:
        events = [json.loads(e.detail_json) for e in admin.list_audit_events(action="SetPassword")]
        listed = {c.name: c for c in admin.list_credentials("lan.reader")}
    assert [e["sessions_ended"] for e in events] == [0, 2, 2]  # the fixture's first password ended none
    assert [e["own"] for e in events] == [False, True, False]
    assert listed[elsewhere.credential.name].revoked_by == "lan.reader"
    assert listed[fresh.credential.name].revoked_by == "bootstrap-admin"


# ---- idle expiry, across replicas --------------------------------------------------------------------


def test_an_idle_session_ends_on_every_replica_and_a_used_one_does_not(database_url: str, tmp_path: Path) -> None:
    """Two servers on one database: uses recorded by A keep the session alive on B, which never saw them
    (the state is in the database); a session left alone is refused by both, with a message that says why."""
    args = ("--session-idle-seconds", str(IDLE_S))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = ServerProcess(tmp_path / "a", database_url=database_url, extra_args=args).start()
    second = None
    try:
        second = ServerProcess(tmp_path / "b", database_url=database_url, extra_args=args).start()
        with first.client(first.token or second.token) as admin:
            admin.create_identity("lan.reader", "Nguyễn Thị Lan", roles=["reader"])
            admin.set_password("lan.reader", PASSWORD)
        busy, idle = _sign_in(first), _sign_in(second)
        assert _works(second, idle.token) and _works(second, busy.token)
        started = time.monotonic()
        while time.monotonic() - started < 1.6 * IDLE_S:  # only A sees busy's use, well past the limit
            assert _works(first, busy.token)
            time.sleep(1)
        assert _works(second, busy.token)  # B knows of A's uses from the database alone
        while time.monotonic() - started < 2.5 * IDLE_S:  # idle: unused for 2.5 times its limit
            assert _works(first if int(time.monotonic()) % 2 else second, busy.token)
            time.sleep(1)
        for replica in (first, second):
            refusal = _refusal(replica, idle.token)
            assert refusal.reason == "SESSION_IDLE"
            assert refusal.message == ("this sign-in session of lan.reader ended after 10 seconds without use; "
                                       "sign in again (civicscore sign-in lan.reader)")
            assert _works(replica, busy.token)
        signed_in = busy.credential.create_time.ToDatetime()
        busy_used = _last_used(database_url, busy.credential.name)
        assert busy_used is not None and busy_used - signed_in > dt.timedelta(seconds=2 * IDLE_S)
        idle_used = _last_used(database_url, idle.credential.name)
        assert idle_used is not None and idle_used - idle.credential.create_time.ToDatetime() < dt.timedelta(
            seconds=IDLE_S)  # its one use, at the start
        with first.client(first.token or second.token) as admin:
            listed = {c.name: c for c in admin.list_credentials("lan.reader")}
        assert listed[busy.credential.name].last_use_time.ToDatetime() == busy_used
    finally:
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.parametrize(("argv", "words"), [
    (["--session-idle-minutes", "0"], "--session-idle-minutes must be from 1 to 720"),
    (["--session-idle-minutes", "721"], "--session-idle-minutes must be from 1 to 720"),
    (["--session-idle-seconds", "-1"], "--session-idle-seconds must be greater than 0"),
])
def test_the_idle_limit_is_checked_at_start(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        _parse(argv)
    assert stopped.value.code == 2 and words in capsys.readouterr().err


def test_the_idle_limit_reaches_the_server() -> None:
    assert _parse([]).session_idle_s == 30 * 60
    assert _parse(["--session-idle-minutes", "45"]).session_idle_s == 45 * 60
    assert _parse(["--session-idle-minutes", "45", "--session-idle-seconds", "2.5"]).session_idle_s == 2.5
