"""Alembic environment: migrate the connection open_store hands over, or a URL from the CLI."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from civicscore.store.connection import begin_schema_change, create_store_engine
from civicscore.store.tables import metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("CIVICSCORE_DATABASE_URL")
    if not url:
        raise SystemExit("set the database URL: alembic -x url=sqlite:///var/civicscore.db ... "
                         "or CIVICSCORE_DATABASE_URL")
    return url


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Use open_store's connection (already in a write transaction), else connect like the server does."""
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _migrate(given)
        return
    if config.config_file_name is not None:  # the CLI: log "Running upgrade ..." like alembic does
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = create_store_engine(_url())
    try:
        with engine.connect() as connection, begin_schema_change(connection):
            _migrate(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
