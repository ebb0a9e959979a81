"""The worker's named queries (sql/queries/worker.sql) and how their rows are read.

Rows come back through psycopg row factories (a dataclass per query, a named tuple, or
the one value a query selects), never as positional tuples.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import BaseRowFactory, scalar_row

from recdb.db.sqlfiles import query

_FILE = "queries/worker.sql"


def q(name: str) -> str:
    return query(_FILE, name)


def fetch(
    conn: psycopg.Connection[Any],
    name: str,
    params: dict[str, Any] | None = None,
    row: BaseRowFactory[Any] = scalar_row,
    *,
    binary: bool = False,
) -> list[Any]:
    """All rows of query ``name``, made by ``row`` (default: the first column's value)."""
    with conn.cursor(row_factory=row) as cur:
        return cur.execute(q(name), params, binary=binary).fetchall()
