"""Real PostgreSQL + pgvector for every test, never a mock.

The server is, in order: RECDB_TEST_DATABASE_URL; a testcontainers pgvector/pgvector
container when a Docker daemon answers; else the embedded pgserver in a temp dir.
One database is migrated once as a template; each test gets its own copy
(CREATE DATABASE ... TEMPLATE), as procrastinate's test suite does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from recdb import migrate
from recdb.db import connect

TEMPLATE = "recdb_test_template"
TEST_DIM = 32  # tests use a tiny encoder; the real default (384) is covered separately


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def _with_database(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Admin URL of a server we may create databases on."""
    given = os.environ.get("RECDB_TEST_DATABASE_URL")
    if given:
        yield given
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("pgvector/pgvector:pg17", driver=None) as pg:
            yield pg.get_connection_url()
        return
    from recdb import embedded

    home = Path(tempfile.mkdtemp(prefix="recdb-test-"))
    os.chmod(home, 0o755)
    url = embedded.start(home, cleanup="delete")
    yield url


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    url = _with_database(server_url, TEMPLATE)
    migrate.upgrade(url, embedding_dim=TEST_DIM)
    return url


_counter = itertools.count()


@contextlib.contextmanager
def _fresh_database(server_url: str, template: str | None) -> Iterator[str]:
    name = f"recdb_test_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def db_url(server_url: str, template_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database of its own; RECDB_DATABASE_URL points at it for code under test."""
    with _fresh_database(server_url, TEMPLATE) as url:
        monkeypatch.setenv("RECDB_DATABASE_URL", url)
        yield url


@pytest.fixture
def empty_db_url(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An unmigrated database of its own (for migration tests)."""
    with _fresh_database(server_url, None) as url:
        monkeypatch.setenv("RECDB_DATABASE_URL", url)
        yield url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    c = connect(db_url, autocommit=True)
    try:
        yield c
    finally:
        c.close()
