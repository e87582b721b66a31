"""The PostgreSQL database replicas share: created when missing, or fresh per test cluster.

Tests get a DATABASE of their own rather than a schema: advisory locks and LISTEN/NOTIFY channels
are database-wide, so two clusters in two schemas of one database could still meet there.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

# The database replicas connect to while theirs is created or dropped (it always exists).
_MAINTENANCE_DATABASE = "postgres"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresUnreachable(RuntimeError):
    """PostgreSQL cannot be reached or refuses us; the message says where and what to do."""


def postgres_url(url: str) -> URL:
    """`url` with the psycopg driver; ValueError when it is not a PostgreSQL URL with a database name."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"{url!r} is not a PostgreSQL URL: give postgresql+psycopg://user@host:port/database")
    if not parsed.database:
        raise ValueError(f"{url!r} names no database: give postgresql+psycopg://user@host:port/database")
    return parsed.set(drivername="postgresql+psycopg")


def _where(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _unreachable(url: URL, error: OperationalError) -> PostgresUnreachable:
    cause = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
    return PostgresUnreachable(
        f"PostgreSQL at {_where(url)} is not reachable as {url.username or 'the current user'} ({cause}). "
        "Start it (Debian: `pg_lsclusters`, then `pg_ctlcluster VERSION main start`; with systemd, "
        "`systemctl start postgresql`), or point "
        "CIVICSCORE_CLUSTER_DATABASE at one: postgresql+psycopg://user@host:port/database")


def _maintenance(url: URL) -> URL:
    return url.set(database=_MAINTENANCE_DATABASE)


def ensure_database(url: str, *, template: str = "template0") -> bool:
    """Create the database `url` names if it does not exist, as a copy of `template` (empty by default:
    template0); whether it did. Raises PostgresUnreachable."""
    target = postgres_url(url)
    engine = create_engine(_maintenance(target), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                        {"name": target.database}).first()
            if exists:
                return False
            quote = connection.dialect.identifier_preparer.quote
            # template0: nobody is ever connected to it, so no other session can make CREATE DATABASE fail;
            # any other template must have no session either.
            connection.execute(text(f"CREATE DATABASE {quote(str(target.database))} TEMPLATE {quote(template)}"))
            return True
    except OperationalError as error:
        raise _unreachable(target, error) from error
    finally:
        engine.dispose()


def create_fresh_database(base_url: str, *, prefix: str = "civicscore_cluster", template: str = "template0") -> str:
    """A new database on `base_url`'s server, named `prefix`_<random>, empty or (with `template`, the name of
    a database nobody is connected to) a copy of that one; its URL."""
    if not _NAME.match(prefix) or len(prefix) > 40:
        raise ValueError(f"database name prefix {prefix!r}: letters, digits and _ only, at most 40")
    url = postgres_url(base_url).set(database=f"{prefix}_{secrets.token_hex(8)}")
    if not ensure_database(url.render_as_string(hide_password=False), template=template):
        raise RuntimeError(f"database {url.database} existed already")  # 64 random bits: never
    return url.render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database `url` names, closing its sessions first (a killed replica's may linger)."""
    target = postgres_url(url)
    engine = create_engine(_maintenance(target), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            name = connection.dialect.identifier_preparer.quote(str(target.database))
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    except OperationalError as error:
        raise _unreachable(target, error) from error
    finally:
        engine.dispose()
