"""Throw-away databases on a server: the tests' per-test copies, eval's and bench's own.

Each is dropped and created by name through an admin connection, so a run never sees a
previous run's rows.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from recdb.db.connect import libpq_url


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    info = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


def recreate(admin_url: str, dbname: str, *, template: str | None = None) -> str:
    """Drop ``dbname`` if it exists and create it (from ``template``); return its URL."""
    admin_url = libpq_url(admin_url)
    if psycopg.conninfo.conninfo_to_dict(admin_url).get("dbname") == dbname:
        raise ValueError(f"refusing to drop {dbname!r}: it is the database we connect through")
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
    if template:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        conn.execute(create)
    return with_database(admin_url, dbname)


def drop(admin_url: str, dbname: str) -> None:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
