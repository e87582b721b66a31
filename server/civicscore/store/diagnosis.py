"""Why a database cannot be used, said so that an operator can act on it.

The drivers' own words name neither the file nor the cause: "unable to open
database file" (a folder, a read-only mount, a missing parent), "disk I/O
error" (a full disk, met while SQLite sizes its shared-memory file), "Can't
locate revision" (a newer civicscore's database). So `open_store`:

- checks a SQLite path before connecting (`prepare_sqlite_file`): a folder, a
  file that is not SQLite, a parent folder that is missing (created, as a new
  database needs one) or cannot be created;
- checks the schema before migrating (`check_schema_is_ours`): a newer
  civicscore's revision, tables that are not civicscore's, civicscore's
  tables without a recorded revision. Migrating someone else's database would
  add our tables to it and serve from it;
- turns a driver error into `DatabaseUnusable` naming the database, the cause
  (read-only, disk full, locked, damaged, unreachable) and what to do
  (`database_unusable`).

`explain_failure` says the same for an error met later in start-up (the first
write on a full disk), for `python -m civicscore`'s `cannot start:` line.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError

from civicscore.store.base import StoreError
from civicscore.store.tables import metadata

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
# Free space under which a failed write is put down to a full disk rather than to the disk itself.
FULL_DISK_BYTES = 1 << 20
# The table in which Alembic records the schema revision.
VERSION_TABLE = "alembic_version"
# Tables an older revision had and a later migration drops: still civicscore's in a database that
# has not been upgraded yet. A migration that drops or renames a table adds its old name here.
RETIRED_TABLES: frozenset[str] = frozenset()
# How many foreign table names a refusal lists.
LISTED_TABLES = 5


class DatabaseUnusable(StoreError):
    """The database cannot be used as it is; the message names it, says why and what to do."""


def prepare_sqlite_file(path: Path) -> None:
    """Refuse a SQLite path that cannot hold civicscore's database; create a missing parent folder."""
    if path.is_dir():
        raise DatabaseUnusable(f"the SQLite database path {path} is a folder, not a file: give a file inside it, "
                               f"e.g. --database sqlite:///{path / 'civicscore.db'}")
    _ensure_folder(path.parent, path)
    if not path.exists():
        return  # SQLite creates it
    if not path.is_file():
        raise DatabaseUnusable(f"the SQLite database path {path} is not a regular file (a device, pipe or socket): "
                               "give the path of civicscore's database file, or of a new file to create")
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as error:
        raise DatabaseUnusable(f"cannot read the SQLite database {path}: {_os_cause(error, path)}") from None
    if header and header != SQLITE_HEADER:
        raise DatabaseUnusable(
            f"{path} is not a SQLite database (it starts with {header!r}): give the path of civicscore's "
            "database, or of a new file to create; a damaged database is restored from a backup"
        )


def _ensure_folder(folder: Path, database: Path) -> None:
    """Create `folder` (and its parents) unless it exists; refuse with the reason when it cannot be."""
    if folder.is_dir():
        return
    existing = next((p for p in folder.parents if p.exists()), None) if not folder.exists() else folder
    if existing is not None and not existing.is_dir():
        raise DatabaseUnusable(f"cannot use the SQLite database {database}: {existing} is a file, not a folder; "
                               "give a path inside a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseUnusable(f"cannot create the folder {folder} for the SQLite database {database}: "
                               f"{_os_cause(error, existing or folder)}") from None
    log.info("created the folder %s for the SQLite database", folder)


def check_schema_is_ours(connection: Connection, *, revisions: Sequence[str], head: str) -> None:
    """Refuse a database civicscore did not write, or one a newer civicscore migrated.

    `revisions` are the migrations this civicscore knows, `head` the latest. Runs in the
    migration's transaction, so on PostgreSQL it sees what the migration lock protects.
    """
    tables = set(inspect(connection).get_table_names())
    recorded: list[str] = []
    if VERSION_TABLE in tables:
        recorded = [str(row[0]) for row in connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")]
    refusal = _schema_refusal(tables, recorded, revisions=revisions, head=head, url=connection.engine.url)
    if refusal is not None:
        raise DatabaseUnusable(refusal)


def check_sqlite_schema_is_ours(path: Path, *, revisions: Sequence[str], head: str) -> None:
    """`check_schema_is_ours` on a SQLite file opened read-only, before any connection changes it.

    The server's connections switch the file to WAL mode as they open it, which would change
    someone else's database before the check could refuse it. A file that cannot be read this
    way (a read-only folder, a lock) is left to the server's own connection to explain.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)) as db:
            tables = {str(row[0]) for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~'")}
            recorded = ([str(row[0]) for row in db.execute(f"SELECT version_num FROM {VERSION_TABLE}")]
                        if VERSION_TABLE in tables else [])
    except sqlite3.Error:
        return
    refusal = _schema_refusal(tables, recorded, revisions=revisions, head=head,
                              url=URL.create("sqlite", database=str(path)))
    if refusal is not None:
        raise DatabaseUnusable(refusal)


def _schema_refusal(tables: set[str], recorded: Sequence[str], *, revisions: Sequence[str], head: str,
                    url: URL) -> str | None:
    """Why a database with these tables and recorded revisions is not one to migrate, or None."""
    where = _describe(url)
    unknown = [revision for revision in recorded if revision not in revisions]
    newer = [revision for revision in unknown if re.fullmatch(r"\d{4}", revision) and revision > head]
    if newer:  # checked first: a newer civicscore's own new tables are not foreign
        return (f"{where}: this database was written by a newer civicscore (revision {newer[0]}); this one knows "
                f"up to {head}. Run that civicscore version or a later one, or restore the backup taken before "
                "the upgrade")
    foreign = sorted(tables - set(metadata.tables) - RETIRED_TABLES - {VERSION_TABLE})
    if foreign:
        listed = ", ".join(foreign[:LISTED_TABLES])
        more = f" and {len(foreign) - LISTED_TABLES} more" if len(foreign) > LISTED_TABLES else ""
        sqlite = url.get_backend_name() == "sqlite"
        return (f"{where}: this {'SQLite file' if sqlite else 'PostgreSQL schema'} holds tables that are not "
                f"civicscore's ({listed}{more}); civicscore keeps its data in a database of its own and changed "
                "nothing here. " + ("Give --database a new file, or civicscore's own database" if sqlite else
                                    "Give civicscore a database of its own (CREATE DATABASE civicscore) and point "
                                    "--database at it"))
    if unknown:
        return (f"{where}: its schema revision {_shorten(unknown[0])} is not one of civicscore's (0001 to {head}): "
                "it was migrated by another program or a development build; give civicscore's database, "
                "or restore a backup")
    if not recorded and tables - {VERSION_TABLE}:
        present = ", ".join(sorted(tables - {VERSION_TABLE})[:LISTED_TABLES])
        return (f"{where}: it holds civicscore's tables ({present}, ...) but no record of their schema revision "
                f"(table {VERSION_TABLE} is missing or empty), so it cannot be migrated safely: restore a backup, "
                "or start with a new database")
    return None


def database_unusable(error: BaseException, url: str | URL) -> DatabaseUnusable | None:
    """`error` (raised opening or migrating `url`) as DatabaseUnusable, or None when it is no database error."""
    if isinstance(error, DatabaseUnusable):
        return error
    explained = _explain_driver_error(error, make_url(url))
    return DatabaseUnusable(explained) if explained is not None else None


def explain_failure(error: BaseException, database_url: str) -> str:
    """One line on why start-up failed: the database's cause when it is one, else the error itself."""
    for cause in _chain(error):
        if isinstance(cause, DatabaseUnusable):
            return str(cause)
        try:
            explained = _explain_driver_error(cause, make_url(database_url))
        except Exception:  # an unparsable URL: its own error already says so
            explained = None
        if explained is not None:
            return explained
    return str(error) or type(error).__name__


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _explain_driver_error(error: BaseException, url: URL) -> str | None:
    if not isinstance(error, DBAPIError) or error.orig is None:
        return None
    original = error.orig
    if url.get_backend_name() == "sqlite":
        return _explain_sqlite(original, Path(url.database or "").absolute())
    if url.get_backend_name() == "postgresql":
        return _explain_postgres(original, url)
    return None


def _explain_sqlite(original: BaseException, path: Path) -> str:
    """SQLite's result code (sqlite3 gives its name from Python 3.11), checked against the path."""
    name = str(getattr(original, "sqlite_errorname", "") or "")
    said = f"(SQLite: {original}, {name})" if name else f"(SQLite: {original})"
    folder = path.parent
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return (f"the SQLite database {path} is locked: another process held it for the whole busy timeout "
                f"{said}. Is another civicscore server migrating it, or a sqlite3 shell holding a transaction "
                f"open? `fuser {path}` names the processes; stop that one, or wait, then start again")
    if name.startswith("SQLITE_NOTADB"):
        return (f"{path} is not a SQLite database, or its header is damaged {said}: give the path of "
                "civicscore's database, or restore it from a backup")
    if name.startswith("SQLITE_CORRUPT"):
        return (f"the SQLite database {path} is damaged {said}: restore it from a backup; "
                f"`sqlite3 {path} 'PRAGMA integrity_check'` lists what is wrong")
    free = _free_bytes(folder)
    if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR") and free is not None
                                          and free < FULL_DISK_BYTES):
        room = f"{_size(free)} free" if free is not None else "free space unknown"
        limit = "" if free is not None and free < FULL_DISK_BYTES else (
            "; with that much free, a disk quota or a file-size limit (ulimit -f) was reached")
        return (f"disk full: cannot write the SQLite database {path} ({room} on the file system of {folder}"
                f"{limit}) {said}. Free some space or move the database to a larger disk, then start again")
    read_only = _read_only_reason(path)
    if read_only is not None and (name.startswith("SQLITE_READONLY") or name.startswith("SQLITE_CANTOPEN")
                                  or name.startswith("SQLITE_IOERR")):
        return (f"the SQLite database {path} is read-only: {read_only} {said}. civicscore writes the database "
                "and, next to it, its -wal and -shm files: give the server's user write access to the folder "
                "and the file, or choose another --database path")
    if name.startswith("SQLITE_CANTOPEN"):
        return (f"cannot open the SQLite database {path} {said}: check that the folder {folder} exists and that "
                f"{_user()} may read, write and create files in it")
    if name.startswith("SQLITE_IOERR"):
        return (f"disk I/O error on the SQLite database {path} {said}: the disk or its file system failed a "
                "read or write; check the kernel log (dmesg) and the disk, then start again")
    return f"the SQLite database {path} cannot be used {said}"


def _explain_postgres(original: BaseException, url: URL) -> str:
    where = _describe(url)
    state = getattr(original, "sqlstate", None)
    said = "; ".join(line.strip() for line in str(original).splitlines() if line.strip())
    if state is None:  # no SQLSTATE: the connection itself failed (refused, timed out, login, no database)
        return (f"cannot connect to {where} (PostgreSQL: {said}): check that PostgreSQL is running and the "
                "--database URL's host, port, user, password and database name")
    hints = {
        "28P01": "the password is wrong: check the --database URL",
        "28000": "PostgreSQL refused this user (pg_hba.conf or its roles): check the --database URL's user",
        "3D000": "the database does not exist: create it (CREATE DATABASE) or fix the --database URL",
        "42501": "this user may not create or change civicscore's tables: GRANT it CREATE on the schema, "
                 "or connect as the schema's owner",
        "53100": "the PostgreSQL server's disk is full: free space on it, then start again",
        "25006": "this PostgreSQL server is read-only (a standby replica?): point --database at the primary",
        "57P03": "PostgreSQL is starting up or shutting down: start civicscore again once it accepts connections",
        "53300": "PostgreSQL has no connection slots left: raise max_connections or stop idle clients",
    }
    hint = hints.get(state, "see PostgreSQL's message")
    return f"{where}: {hint} (PostgreSQL: {said}; SQLSTATE {state})"


def _describe(url: URL) -> str:
    """The database as an operator would name it, never with its password."""
    if url.get_backend_name() == "sqlite":  # absolute: a service's working folder is easily not the one meant
        return f"the SQLite database {Path(url.database or '').absolute()}"
    schema = next((part.removeprefix("-csearch_path=") for part in _options(url) if "search_path=" in part), None)
    shown = url.set(query={}).render_as_string(hide_password=True)
    return f"PostgreSQL {shown}" + (f" (schema {schema})" if schema else "")


def _options(url: URL) -> list[str]:
    value = url.query.get("options", "")
    values = [value] if isinstance(value, str) else list(value)
    return [part for item in values for part in item.split()]


def _read_only_reason(path: Path) -> str | None:
    """Why the server cannot write `path` or create files next to it, or None when it can."""
    folder = path.parent if path.parent.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    if _flag_read_only(folder):
        return f"the file system holding {folder} is mounted read-only"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{_user()} may not create files in the folder {folder}"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{_user()} may not write the file {path}"
    return None


def _flag_read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _free_bytes(folder: Path) -> int | None:
    existing = folder if folder.exists() else next((p for p in folder.parents if p.exists()), None)
    if existing is None:
        return None
    try:
        stat = os.statvfs(existing)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def _os_cause(error: OSError, path: Path) -> str:
    """An OSError as a cause an operator can act on."""
    if error.errno == errno.EROFS:
        return f"the file system holding {path} is mounted read-only"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"{_user()} has no permission there ({error.strerror})"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full ({_size(_free_bytes(path))} free)"
    if error.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    return error.strerror or str(error)


def _user() -> str:
    uid = os.geteuid()
    try:
        import pwd

        return f"the server's user ({pwd.getpwuid(uid).pw_name}, uid {uid})"
    except (ImportError, KeyError):
        return f"the server's user (uid {uid})"


def _size(count: int | None) -> str:
    if count is None:
        return "unknown"
    if count < 1024:
        return f"{count} bytes"
    value = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _shorten(value: str, limit: int = 40) -> str:
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"

