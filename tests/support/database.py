"""Where the tests' PostgreSQL comes from, and the names shared by fixtures and builders."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPLATE = "recdb_test_template"
TEST_DIM = 32  # tests use a tiny encoder; the real default (384) is covered separately


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def database_server() -> Iterator[str]:
    """Admin URL of a server we may create databases on: RECDB_TEST_DATABASE_URL, else a
    testcontainers pgvector container when a Docker daemon answers, else the embedded
    pgserver in a temp dir."""
    given = os.environ.get("RECDB_TEST_DATABASE_URL")
    if given:
        yield given
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("pgvector/pgvector:pg17", driver=None) as pg:
            yield pg.get_connection_url()
        return
    from recdb.db import embedded

    home = Path(tempfile.mkdtemp(prefix="recdb-test-"))
    os.chmod(home, 0o755)
    yield embedded.start(home, cleanup="delete")
