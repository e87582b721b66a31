"""Replicas starting at the same moment on a new database: every one starts, exactly one bootstrap
administrator is created, with exactly one token, written by the one replica that created it, and
the rules folder's start-up activation is recorded once, the same ruleset in force on every replica.

Three real `python -m civicscore` processes per round, launched together (a barrier lines their
launches up), on one new SQLite file and on one new PostgreSQL schema, ten rounds each.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.postgres_support import BACKENDS, database_url
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow

REPLICAS = 3
ROUNDS = 10


def start_together(servers: list[ServerProcess]) -> list[BaseException]:
    """Start every server at the same moment (one thread each); the errors of those that failed."""
    barrier = threading.Barrier(len(servers))
    errors: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            barrier.wait()
            server.start(timeout=180)
        except BaseException as error:  # collected: the test reports every replica that failed
            errors.append(error)

    threads = [threading.Thread(target=start, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def activations(url: str) -> list[tuple[str, str]]:
    """(source, digest) of every ruleset activation recorded in the database, in order."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT source, digest FROM ruleset_activations ORDER BY seq")).all()
    finally:
        engine.dispose()
    return [(str(row.source), str(row.digest)) for row in rows]


def administrators(url: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(ids of identities with the admin role, (credential id, identity id) of every credential), read
    from the database itself."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            identities = connection.execute(text("SELECT identity_id, roles_json FROM identities")).all()
            credentials = connection.execute(text("SELECT credential_id, identity_id FROM credentials")).all()
    finally:
        engine.dispose()
    admins = [row.identity_id for row in identities if "admin" in json.loads(row.roles_json)]
    return admins, [(row.credential_id, row.identity_id) for row in credentials]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.param)


def test_replicas_started_at_once_on_a_new_database_make_one_administrator_and_one_activation(
        backend: str, tmp_path: Path) -> None:
    for round_number in range(ROUNDS):
        round_dir = tmp_path / f"round{round_number}"
        round_dir.mkdir()
        with database_url(backend, round_dir) as url:
            servers = []
            for replica in range(REPLICAS):
                workdir = round_dir / f"replica{replica}"
                workdir.mkdir()
                servers.append(ServerProcess(workdir, database_url=url))
            try:
                errors = start_together(servers)
                assert not errors, f"round {round_number}: {len(errors)} replica(s) did not start:\n" + "\n".join(
                    str(error) for error in errors)
                admins, credentials = administrators(url)
                assert len(admins) == 1, f"round {round_number}: administrators {admins}"
                assert [identity for _, identity in credentials] == admins, (
                    f"round {round_number}: credentials {credentials}")
                creators = [server for server in servers if server.token]
                assert len(creators) == 1, f"round {round_number}: {len(creators)} token files written"
                assert creators[0].token.startswith(f"cs_{credentials[0][0]}_"), (
                    "the token file holds the administrator's one token")
                for server in servers:
                    if server is not creators[0]:
                        assert "an administrator exists" in server.log()
                        assert not list(server.workdir.glob(".admin.token.*")), "a staged token was left behind"
                recorded = activations(url)
                assert [source for source, _ in recorded] == ["startup"], f"round {round_number}: {recorded}"
                # the one token works, on every replica, and each has the one activation in force
                for server in servers:
                    with server.client(creators[0].token) as admin:
                        assert admin.verify_audit().valid
                        assert admin.get_ruleset_status().active.digest == recorded[0][1]
            finally:
                for server in servers:
                    server.stop()
