"""Operator actions on the queues (the CLI and the tools call them on their own connection)."""

from __future__ import annotations

from typing import Any

import psycopg

from recdb.worker.sql import q


def requeue_all_users(conn: psycopg.Connection[Any]) -> int:
    """Queue every user with events (e.g. after switching the user encoder)."""
    cur = conn.execute(q("requeue_all_users"))
    return cur.rowcount


def requeue_all_items(conn: psycopg.Connection[Any]) -> int:
    """Queue every item (e.g. after switching the text model)."""
    row = conn.execute(q("requeue_all_items")).fetchone()
    return int(row[0]) if row else 0


def unpark(conn: psycopg.Connection[Any]) -> None:
    """Give parked rows a fresh set of attempts (after fixing what made them fail)."""
    conn.execute(q("unpark"))
