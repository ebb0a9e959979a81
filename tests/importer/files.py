"""Small import files written the way an adopter's export would be, and what to compare."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg


def write(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """rows as .csv (header = columns), .jsonl (one object per line, as given) or .parquet
    (pyarrow infers the types)."""
    columns = list(columns or rows[0])
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            w.writerows({c: "" if r.get(c) is None else r.get(c) for c in columns} for r in rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]), path)
    return path


def events(conn: psycopg.Connection[Any]) -> list[tuple]:
    """Every event as (user, item, kind, value, time), in event id order."""
    return conn.execute(
        "SELECT user_id, item_id, kind, value, occurred_at FROM recdb.events ORDER BY event_id"
    ).fetchall()


def items(conn: psycopg.Connection[Any]) -> dict[int, tuple]:
    return {
        r[0]: r[1:]
        for r in conn.execute("SELECT item_id, title, body, attrs, available FROM recdb.items")
    }


def count(conn: psycopg.Connection[Any], table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM recdb.{table}").fetchone()[0]


def queued_users(conn: psycopg.Connection[Any]) -> set[int]:
    return {r[0] for r in conn.execute("SELECT DISTINCT user_id FROM recdb.user_queue")}


def queued_items(conn: psycopg.Connection[Any]) -> set[int]:
    return {r[0] for r in conn.execute("SELECT item_id FROM recdb.item_queue")}
