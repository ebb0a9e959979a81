"""The dashboard's connections: a small pool whose every connection acts as recdb_readonly
in read-only transactions, with a statement timeout. Two locks on writing, the role and
the transaction mode, so a bug in a page cannot change the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from recdb.db.connect import libpq_url
from recdb.db.sqlfiles import query

ROLE = "recdb_readonly"
STATEMENT_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 5
_Q = "queries/dashboard.sql"
T = TypeVar("T")


class AccessError(RuntimeError):
    """The login cannot act as recdb_readonly, or the database is not migrated."""


def configure(conn: psycopg.Connection[Any]) -> None:
    """Once per new connection: the read-only role, the timeout, read-only transactions."""
    conn.execute(query(_Q, "dashboard_session"), {"timeout_ms": str(STATEMENT_TIMEOUT_MS)})
    conn.commit()
    conn.read_only = True


def open_pool(url: str, *, max_size: int = 4) -> ConnectionPool[Any]:
    """The pool `recdb serve` reads through (opened; close it when done)."""
    pool: ConnectionPool[Any] = ConnectionPool(
        libpq_url(url),
        min_size=1,
        max_size=max_size,
        kwargs={
            "application_name": "recdb dashboard",
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT_S,
        },
        configure=configure,
        check=ConnectionPool.check_connection,
        name="recdb-dashboard",
        timeout=STATEMENT_TIMEOUT_MS / 1000,
        open=False,
    )
    pool.open(wait=True, timeout=10)
    return pool


def check_access(url: str) -> dict[str, Any]:
    """Fail early, with what to do, when the login cannot act as recdb_readonly or the
    schema is missing; returns who the dashboard reads as."""
    with psycopg.connect(
        libpq_url(url), row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
    ) as conn:
        try:
            configure(conn)
        except psycopg.errors.InsufficientPrivilege:
            login = conn.info.user
            raise AccessError(
                f"login {login!r} cannot act as {ROLE}: the dashboard reads as that role;"
                f" GRANT {ROLE} TO {login} (or use a superuser login)"
            ) from None
        except psycopg.errors.InvalidParameterValue as exc:  # role missing: not migrated
            raise AccessError(f"{exc}: run `recdb db upgrade` first") from None
        whoami = conn.execute(query(_Q, "dashboard_whoami")).fetchone()
        present = conn.execute(query("queries/status.sql", "schema_present")).fetchone()
    assert whoami is not None and present is not None
    if not present["migrated"]:
        raise AccessError("database not migrated: run `recdb db upgrade` first")
    return whoami


@dataclass(frozen=True)
class Panel(Generic[T]):
    """One panel's data, or why it cannot be shown (the page still renders)."""

    data: T | None
    error: str | None = None


def panel(conn: psycopg.Connection[Any], read: Callable[[psycopg.Connection[Any]], T]) -> Panel[T]:
    """``read(conn)`` in a savepoint: when recdb_readonly lacks a right it needs, that panel
    says which and the others still render. The dashboard never grants itself anything."""
    try:
        with conn.transaction():
            return Panel(read(conn))
    except psycopg.errors.InsufficientPrivilege as exc:
        return Panel(
            None,
            f"{ROLE} lacks a right this panel needs ({exc.diag.message_primary});"
            f" a DBA can grant it, e.g. GRANT SELECT ON <table> TO {ROLE}",
        )
