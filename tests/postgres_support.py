"""Databases for tests: a SQLite file, and PostgreSQL when CIVICSCORE_TEST_POSTGRES_URL is set.

Each PostgreSQL use gets a fresh schema (its connections see only that schema
through `search_path`), dropped afterwards, so tests are isolated, can run
side by side and leave nothing behind. Without the variable the PostgreSQL
parameters are skipped with a loud reason (and fail under
CIVICSCORE_REQUIRE_SERVICES=1, as in CI: tests/services.py).

    database_url = database_url_fixture()   # in a test module or conftest.py

gives a `database_url` fixture that runs each test once per backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.services import require_postgres

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def postgres_base_url() -> str:
    """The configured PostgreSQL URL, or skip the calling test loudly (fail it when services are required)."""
    return require_postgres()


@contextmanager
def fresh_postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections use a new, empty schema; the schema is dropped on exit."""
    schema = f"civicscore_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(make_url(base_url).set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base_url).set(drivername="postgresql+psycopg").update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of `backend` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'civicscore.db'}"
    elif backend == "postgres":
        with fresh_postgres_schema(postgres_base_url()) as url:
            yield url
    else:
        raise ValueError(f"unknown test database backend {backend!r}")


def database_url_fixture() -> Callable[..., Any]:
    """A `database_url` fixture parametrised over both backends (assign it to a module-level name)."""

    @pytest.fixture(params=BACKENDS)
    def _database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
        with database_url(request.param, tmp_path) as url:
            yield url

    return _database_url
