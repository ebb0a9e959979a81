"""Real PostgreSQL + pgvector for every test, never a mock.

The server comes from tests/support/database.py. One database is migrated once as a
template; each test gets its own copy (CREATE DATABASE ... TEMPLATE), as procrastinate's
test suite does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from recdb.db import connect, schema, scratch
from tests.support.database import TEMPLATE, TEST_DIM, database_server


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Admin URL of a server we may create databases on."""
    with database_server() as url:
        yield url


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    url = scratch.recreate(server_url, TEMPLATE)
    schema.upgrade(url, embedding_dim=TEST_DIM)
    return url


_counter = itertools.count()


@contextlib.contextmanager
def _fresh_database(server_url: str, template: str | None) -> Iterator[str]:
    name = f"recdb_test_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    url = scratch.recreate(server_url, name, template=template)
    try:
        yield url
    finally:
        scratch.drop(server_url, name)


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
