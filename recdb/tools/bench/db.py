"""Database plumbing of `recdb bench`: its connections and its named queries.

Every statement lives in sql/queries/bench.sql; `q(name)` reads one. The bench runs in
a database of its own, never in an application database.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from recdb.db.sqlfiles import query

QUERIES = "queries/bench.sql"


def q(name: str) -> str:
    return query(QUERIES, name)


def connect(url: str, name: str, autocommit: bool = True) -> psycopg.Connection[Any]:
    from recdb.db import connect as db_connect

    return db_connect(url, autocommit=autocommit, application_name=f"recdb bench {name}"[:63])


def is_superuser(conn: psycopg.Connection[Any]) -> bool:
    return bool(conn.execute(q("is_superuser")).fetchone()[0])


def wait_for_empty_user_queue(
    conn: psycopg.Connection[Any], timeout: float, interval: float
) -> float:
    """Poll until no user waits in the queue (parked ones aside) or `timeout` passes;
    returns the seconds waited."""
    started = time.monotonic()
    while conn.execute(q("queued_users")).fetchone()[0] and time.monotonic() - started < timeout:
        time.sleep(interval)
    return time.monotonic() - started
