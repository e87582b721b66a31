"""Start-up refusals through the real `python -m civicscore`: exit code 2 and one `cannot start:` line
naming the database and the cause (read-only, disk full, locked, damaged, not SQLite, not
civicscore's, from a newer civicscore, unreachable), never a traceback, and nothing changed.

Read-only and full disks are real: a small tmpfs mounted in a private mount namespace
(`unshare --mount`, as root; `unshare --user --map-root-user --mount` otherwise), so the
host's file systems are untouched. Where the machine allows neither, those tests skip loudly.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from civicscore.store.connection import schema_revisions
from civicscore.store.sql import open_store
from tests.postgres_support import BACKENDS, database_url
from tests.serverproc import RULES, ServerProcess

pytestmark = pytest.mark.slow

HEAD = schema_revisions()[1]
NEWER = "0099"
CANNOT_START = re.compile(r"ERROR civicscore: cannot start: (.*)$", re.MULTILINE)


def start_refused(url: str, workdir: Path, *, prefix: tuple[str, ...] = (), timeout_s: float = 120.0) -> str:
    """Start the server on `url`, expect it to refuse with exit code 2, and return its one reason."""
    port_file = workdir / "port"
    command = [*prefix, sys.executable, "-m", "civicscore", "--listen", "127.0.0.1:0", "--database", url,
               "--rules", str(RULES), "--no-watch-rules", "--workers", "1", "--port-file", str(port_file)]
    proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=ServerProcess._env())
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if port_file.exists() or time.monotonic() > deadline:
            proc.terminate()
            output = proc.communicate(timeout=60)[0]
            pytest.fail(f"the server {'started serving' if port_file.exists() else 'neither served nor exited'} "
                        f"on {url} instead of refusing:\n{output}")
        time.sleep(0.05)
    output = proc.communicate()[0]
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    reasons = CANNOT_START.findall(output)
    assert len(reasons) == 1, output
    return str(reasons[0])


def sqlite_url(path: Path, query: str = "") -> str:
    return f"sqlite:///{path}{query}"


def civicscore_database(path: Path) -> Path:
    """A civicscore database at head, closed (a single file: its WAL checkpointed away)."""
    open_store(sqlite_url(path)).close()
    assert not Path(f"{path}-wal").exists()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- read-only and full disks, in a private mount namespace ----------------------------------------------


def _namespace_command() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    return (unshare, "--mount") if os.geteuid() == 0 else (unshare, "--user", "--map-root-user", "--mount")


def private_tmpfs(mount_point: Path, *, mode: str, size: str = "1m", seed: Path | None = None) -> tuple[str, ...]:
    """A prefix that runs a command with a fresh tmpfs of `size` at `mount_point`, in a mount namespace
    of its own: `seed` copied in as civicscore.db, then the tmpfs remounted read-only (`mode` "ro") or
    filled up ("full"). Skips loudly where the machine allows no such mount."""
    base = _namespace_command()
    mount_point.mkdir(exist_ok=True)
    why = "no `unshare` command (util-linux)"
    if base:
        probe = subprocess.run([*base, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            steps = [f'mount -t tmpfs -o size={size} tmpfs "{mount_point}"']
            if seed is not None:
                steps.append(f'cp "{seed}" "{mount_point}/civicscore.db"')
            steps.append({"ro": f'mount --bind -o remount,ro "{mount_point}"',
                          "full": f'cat /dev/zero > "{mount_point}/filler" 2>/dev/null || true'}[mode])
            return (*base, "/bin/sh", "-c", " && ".join(steps) + ' && exec "$@"', "sh")
        why = f"`{' '.join(base)} mount -t tmpfs ...` failed: {probe.stderr.strip()}"
    pytest.skip(f"read-only and full-disk start-up tests SKIPPED: they need a private tmpfs mount, and {why}. "
                "Run them as root (CI does) or where unprivileged user namespaces are allowed")


@pytest.mark.parametrize("existing", [False, True], ids=["new-database", "existing-database"])
def test_a_read_only_folder_is_named_and_called_read_only(tmp_path: Path, existing: bool) -> None:
    mount_point = tmp_path / "mnt"
    seed = civicscore_database(tmp_path / "seed.db") if existing else None
    prefix = private_tmpfs(mount_point, mode="ro", seed=seed)
    database = mount_point / "civicscore.db"
    reason = start_refused(sqlite_url(database), tmp_path, prefix=prefix)
    assert reason.startswith(f"the SQLite database {database} is read-only: the file system holding {mount_point} "
                             "is mounted read-only (SQLite: unable to open database file, SQLITE_CANTOPEN)"), reason
    assert reason.endswith("give the server's user write access to the folder and the file, "
                           "or choose another --database path"), reason


@pytest.mark.parametrize("existing", [False, True], ids=["new-database", "existing-database"])
def test_a_full_disk_is_named_and_called_disk_full(tmp_path: Path, existing: bool) -> None:
    mount_point = tmp_path / "mnt"
    seed = civicscore_database(tmp_path / "seed.db") if existing else None
    prefix = private_tmpfs(mount_point, mode="full", seed=seed)
    database = mount_point / "civicscore.db"
    reason = start_refused(sqlite_url(database), tmp_path, prefix=prefix)
    # A new database fails on its first page (SQLITE_FULL); an existing one as SQLite sizes its
    # shared-memory file (SQLITE_IOERR_SHMSIZE, "disk I/O error"): both are a full disk.
    cause = "database or disk is full, SQLITE_FULL" if not existing else "disk I/O error, SQLITE_IOERR_SHMSIZE"
    assert reason == (f"disk full: cannot write the SQLite database {database} (0 bytes free on the file system "
                      f"of {mount_point}) (SQLite: {cause}). Free some space or move the database to a larger "
                      "disk, then start again"), reason


# ---- databases that are not civicscore's, or a newer civicscore's -----------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_from_a_newer_civicscore_names_both_revisions(tmp_path: Path, backend: str) -> None:
    with database_url(backend, tmp_path) as url:
        open_store(url).close()
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(text(f"UPDATE alembic_version SET version_num = '{NEWER}'"))
            reason = start_refused(url, tmp_path)
            with engine.connect() as connection:
                assert connection.scalar(text("SELECT version_num FROM alembic_version")) == NEWER
        finally:
            engine.dispose()
    where = f"the SQLite database {tmp_path / 'civicscore.db'}" if backend == "sqlite" else "PostgreSQL "
    assert reason.startswith(where), reason
    assert (f": this database was written by a newer civicscore (revision {NEWER}); this one knows up to {HEAD}. "
            "Run that civicscore version or a later one, or restore the backup taken before the upgrade") in reason


FOREIGN = ["customers", "invoices", "ledger", "orders", "products", "shipments", "suppliers"]


def test_a_foreign_sqlite_file_is_refused_listing_its_tables_and_left_unchanged(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        for name in FOREIGN:
            db.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)")
    before = digest(database)
    reason = start_refused(sqlite_url(database), tmp_path)
    assert reason == (f"the SQLite database {database}: this SQLite file holds tables that are not civicscore's "
                      "(customers, invoices, ledger, orders, products and 2 more); civicscore keeps its data in a "
                      "database of its own and changed nothing here. Give --database a new file, or civicscore's "
                      "own database"), reason
    assert digest(database) == before  # not even switched to WAL mode
    assert not Path(f"{database}-wal").exists()


@pytest.mark.postgres
def test_a_foreign_postgres_schema_is_refused_and_gets_no_tables(tmp_path: Path) -> None:
    with database_url("postgres", tmp_path) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(text("CREATE TABLE customers (id integer PRIMARY KEY)"))
                connection.execute(text("CREATE TABLE orders (id integer PRIMARY KEY)"))
            reason = start_refused(url, tmp_path)
            with engine.connect() as connection:
                assert sorted(inspect(connection).get_table_names()) == ["customers", "orders"]
        finally:
            engine.dispose()
    assert reason.startswith("PostgreSQL "), reason
    assert ("this PostgreSQL schema holds tables that are not civicscore's (customers, orders); civicscore keeps "
            "its data in a database of its own and changed nothing here. Give civicscore a database of its own "
            "(CREATE DATABASE civicscore) and point --database at it") in reason


# ---- paths that cannot hold a database, damage and locks ---------------------------------------------------


def test_a_folder_given_as_the_database_is_named_with_the_file_to_give_instead(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    reason = start_refused(sqlite_url(folder), tmp_path)
    assert reason == (f"the SQLite database path {folder} is a folder, not a file: give a file inside it, "
                      f"e.g. --database sqlite:///{folder / 'civicscore.db'}")


def test_a_file_that_is_not_sqlite_is_refused_with_its_first_bytes_and_left_unchanged(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("Meeting minutes, 15 July: tasks for the departments.\n" * 20, encoding="utf-8")
    before = digest(notes)
    reason = start_refused(sqlite_url(notes), tmp_path)
    assert reason == (f"{notes} is not a SQLite database (it starts with b'Meeting minutes,'): "
                      "give the path of civicscore's database, or of a new file to create; a damaged database is "
                      "restored from a backup"), reason
    assert digest(notes) == before


def test_a_path_through_a_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("not a folder\n")
    database = tmp_path / "var" / "data" / "civicscore.db"
    reason = start_refused(sqlite_url(database), tmp_path)
    assert reason == (f"cannot use the SQLite database {database}: {tmp_path / 'var'} is a file, not a folder; "
                      "give a path inside a folder")


def test_a_missing_folder_is_created_and_the_server_serves(tmp_path: Path) -> None:
    database = tmp_path / "var" / "lib" / "civicscore.db"
    proc = ServerProcess(tmp_path, database_url=sqlite_url(database)).start()
    try:
        assert database.is_file()
    finally:
        assert proc.stop() == 0


def test_a_damaged_database_is_called_damaged_with_the_check_to_run(tmp_path: Path) -> None:
    database = civicscore_database(tmp_path / "civicscore.db")
    with database.open("r+b") as file:  # the header stays SQLite's; the pages after it do not
        file.seek(100)
        file.write(b"\xff" * 4000)
    reason = start_refused(sqlite_url(database), tmp_path)
    assert reason == (f"the SQLite database {database} is damaged (SQLite: database disk image is malformed, "
                      f"SQLITE_CORRUPT): restore it from a backup; `sqlite3 {database} 'PRAGMA integrity_check'` "
                      "lists what is wrong"), reason


@contextlib.contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another connection holding the database's write lock, as a sqlite3 shell in a transaction would."""
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


def test_a_locked_database_is_called_locked_after_the_busy_timeout(tmp_path: Path) -> None:
    database = civicscore_database(tmp_path / "civicscore.db")
    with write_lock_held(database):  # `?timeout=1`: wait 1 s for the lock instead of 30 s
        reason = start_refused(sqlite_url(database, "?timeout=1"), tmp_path)
    assert reason == (f"the SQLite database {database} is locked: another process held it for the whole busy "
                      "timeout (SQLite: database is locked, SQLITE_BUSY). Is another civicscore server migrating "
                      "it, or a sqlite3 shell holding a transaction open? "
                      f"`fuser {database}` names the processes; stop that one, or wait, then start again"), reason


def test_an_unreachable_postgres_is_named_without_its_password(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reason = start_refused(f"postgresql+psycopg://civicscore:s3cret-pw@127.0.0.1:{port}/civicscore", tmp_path)
    assert reason.startswith(f"cannot connect to PostgreSQL postgresql+psycopg://civicscore:***@127.0.0.1:{port}/"
                             "civicscore (PostgreSQL: connection failed: "), reason
    assert "Connection refused" in reason and "s3cret-pw" not in reason
    assert reason.endswith("check that PostgreSQL is running and the --database URL's host, port, user, password "
                           "and database name"), reason
