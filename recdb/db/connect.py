"""Connections: one place that turns configuration into a psycopg connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from recdb.config import env
from recdb.db import embedded


def database_url(url: str | None = None) -> str:
    """The explicit URL, else RECDB_DATABASE_URL, else the embedded server's URL."""
    return url or env("DATABASE_URL") or embedded.start()


def sqlalchemy_engine(url: str) -> Engine:
    """An engine for alembic that connects through libpq, so any libpq URL works
    (SQLAlchemy's own parser rejects socket-only URLs like the embedded server's)."""
    conninfo = libpq_url(url)
    return create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(conninfo, application_name="recdb migrate"),
        poolclass=NullPool,
    )


def libpq_url(url: str) -> str:
    """Strip a SQLAlchemy driver suffix so psycopg accepts the URL."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class _NumpyVectorLoader(Loader):
    """vector -> float32 ndarray (pgvector-python 0.5 returns its own Vector class)."""

    format = Format.TEXT

    def load(self, data: Buffer) -> np.ndarray:
        text = bytes(data).decode()
        return np.array(text[1:-1].split(","), dtype=np.float32)


class _NumpyVectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> np.ndarray:
        return np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)


def register_numpy_vector(conn: psycopg.Connection[Any]) -> None:
    """pgvector's dumpers for writing plus loaders that hand back numpy arrays."""
    register_vector(conn)
    info = TypeInfo.fetch(conn, "vector")
    assert info is not None
    conn.adapters.register_loader(info.oid, _NumpyVectorLoader)
    conn.adapters.register_loader(info.oid, _NumpyVectorBinaryLoader)


def connect(
    url: str | None = None,
    *,
    autocommit: bool = False,
    application_name: str = "recdb",
    vector: bool = True,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """Open a connection; register pgvector's types when the extension exists."""
    conn = psycopg.connect(
        libpq_url(database_url(url)),
        autocommit=autocommit,
        application_name=application_name,
        **kwargs,
    )
    if vector:
        try:
            register_numpy_vector(conn)
        except psycopg.ProgrammingError:
            # vector extension not installed yet (before the first migration)
            if not autocommit:
                conn.rollback()
    return conn


@contextmanager
def connection(url: str | None = None, **kwargs: Any) -> Iterator[psycopg.Connection[Any]]:
    conn = connect(url, **kwargs)
    try:
        yield conn
    finally:
        conn.close()
