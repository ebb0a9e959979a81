"""Connections as recdb's least-privilege roles, the way a DBA grants them to apps."""

from __future__ import annotations

import psycopg
from psycopg import sql


def login_role(conn: psycopg.Connection, role: str) -> str:
    """A login role in the group `role` (cluster-wide, created once)."""
    login = f"{role}_login_test"
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone():
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                sql.Identifier(login), sql.Identifier(role)
            )
        )
    return login


def connect_as(db_url: str, user: str, *, autocommit: bool = True) -> psycopg.Connection:
    info = psycopg.conninfo.conninfo_to_dict(db_url)
    info["user"] = user
    info.pop("password", None)
    return psycopg.connect(psycopg.conninfo.make_conninfo(**info), autocommit=autocommit)


def with_role(db_url: str, admin: psycopg.Connection, role: str) -> str:
    """db_url rewritten to log in as a member of `role`."""
    info = psycopg.conninfo.conninfo_to_dict(db_url)
    info["user"] = login_role(admin, role)
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info)
