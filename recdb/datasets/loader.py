"""`recdb load movielens`: bulk-load MovieLens-100K into recdb.items / recdb.events.

Loading goes through COPY into temp tables and one set-based merge per table, in one
transaction, so it is fast (100k events in seconds), atomic, and idempotent: a second
load inserts nothing, touches no unchanged item (no re-encoding) and queues no user.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from recdb.datasets.movielens import (
    Movie,
    find_movielens,
    movie_text,
    rating_events,
    read_movielens,
)
from recdb.db.sqlfiles import query

_Q = "queries/load.sql"
EventRow = tuple[int, int, str, float | None, datetime]


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=" rows", disable=not enabled, leave=False)


def _scalar(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def _require_schema(conn: psycopg.Connection[Any]) -> None:
    if not _scalar(conn, query(_Q, "items_table_exists")):
        raise RuntimeError("database not migrated: run `recdb db upgrade` first")


def upsert_items(
    conn: psycopg.Connection[Any],
    rows: Sequence[tuple[int, str, str | None, dict[str, Any]]],
    *,
    progress: bool = False,
) -> dict[str, int]:
    """COPY (item_id, title, body, attrs) rows and merge them; only new or changed rows
    are written (and so queued for encoding). Call inside a transaction."""
    conn.execute(query(_Q, "items_temp"))
    with (
        conn.cursor() as cur,
        cur.copy("COPY recdb_load_items (item_id, title, body, attrs) FROM STDIN") as copy,
        _progress(len(rows), "items", progress) as bar,
    ):
        for item_id, title, body, attrs in rows:
            copy.write_row((item_id, title, body, json.dumps(attrs)))
            bar.update()
    flags = [r[0] for r in conn.execute(query(_Q, "items_merge")).fetchall()]
    inserted = sum(flags)
    updated = len(flags) - inserted
    return {
        "items": len(rows),
        "items_inserted": inserted,
        "items_updated": updated,
        "items_unchanged": len(rows) - inserted - updated,
    }


_COPY_EVENTS = (
    "COPY recdb_load_events (row_no, user_id, item_id, kind, value, occurred_at) FROM STDIN"
)


def insert_events(
    conn: psycopg.Connection[Any], rows: Iterable[EventRow], total: int, *, progress: bool = False
) -> dict[str, int]:
    """COPY (user_id, item_id, kind, value, occurred_at) rows and insert those not yet
    recorded; duplicates and events on unknown items are skipped and counted. Call inside
    a transaction (statement-level triggers then queue each user once)."""
    conn.execute(query(_Q, "events_temp"))
    n = 0
    with (
        conn.cursor() as cur,
        cur.copy(_COPY_EVENTS) as copy,
        _progress(total, "events", progress) as bar,
    ):
        for row in rows:
            n += 1
            copy.write_row((n, *row))
            if n % 5000 == 0:
                bar.update(5000)
        bar.update(n % 5000)
    unknown = _scalar(conn, query(_Q, "events_unknown_items"))
    inserted = conn.execute(query(_Q, "events_merge")).rowcount
    return {
        "events": n,
        "events_inserted": inserted,
        "events_skipped": n - inserted - unknown,
        "events_unknown_item": unknown,
    }


def movie_rows(movies: Iterable[Movie]) -> list[tuple[int, str, str | None, dict[str, Any]]]:
    return [(m.item_id, *movie_text(m)) for m in movies]


def load_movielens(
    conn: psycopg.Connection[Any], path: str | Path | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Load ML-100K movies as items and ratings as ``rate`` events (original timestamps),
    then refresh popularity so cold-start rankings work before any worker runs.

    Returns counts; ``items_inserted``/``events_inserted`` are 0 on a repeated load.
    """
    start = time.perf_counter()
    source = find_movielens(path)
    movies, ratings = read_movielens(source)
    _require_schema(conn)
    with conn.transaction():
        counts: dict[str, Any] = {"source": str(source)}
        counts |= upsert_items(conn, movie_rows(movies), progress=progress)
        counts |= insert_events(conn, rating_events(ratings), len(ratings), progress=progress)
        counts["users"] = len({r.user_id for r in ratings})
        counts["popular_items"] = _scalar(conn, query(_Q, "refresh_popularity_after_load"))
    counts["seconds"] = round(time.perf_counter() - start, 3)
    return counts
