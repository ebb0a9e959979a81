"""Small builders shared by the tests: items with chosen vectors, events, user vectors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import psycopg

from tests.support import REPO_ROOT
from tests.support.database import TEST_DIM


def unit(v: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def axis(i: int, dim: int = TEST_DIM, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A unit vector near basis axis i (items on one axis form a 'topic')."""
    v = np.zeros(dim, dtype=np.float32)
    v[i % dim] = 1.0
    if noise:
        v += np.random.default_rng(seed).normal(0, noise, dim).astype(np.float32)
    return unit(v)


def add_items(conn: psycopg.Connection[Any], rows: Iterable[dict[str, Any]]) -> None:
    """Insert items; a row may carry 'embedding' (set as the worker would)."""
    with conn.cursor() as cur:
        for r in rows:
            cur.execute(
                "INSERT INTO recdb.items (item_id, title, body, attrs, available, created_at)"
                " VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()))",
                (
                    r["item_id"],
                    r.get("title", f"item {r['item_id']}"),
                    r.get("body"),
                    psycopg.types.json.Jsonb(r.get("attrs", {})),
                    r.get("available", True),
                    r.get("created_at"),
                ),
            )
            if r.get("embedding") is not None:
                cur.execute(
                    "UPDATE recdb.items SET embedding = %s, embedded_at = now() WHERE item_id = %s",
                    (np.asarray(r["embedding"], dtype=np.float32), r["item_id"]),
                )


def add_events(
    conn: psycopg.Connection[Any],
    user_id: int,
    items: Iterable[int],
    kind: str = "click",
    value: float | None = None,
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO recdb.events (user_id, item_id, kind, value) VALUES (%s, %s, %s, %s)",
            [(user_id, i, kind, value) for i in items],
        )


def set_user_vector(
    conn: psycopg.Connection[Any], user_id: int, vec: np.ndarray, norm: float = 1.0
) -> None:
    """Write a user vector as the worker would, watermarked at the user's newest event."""
    conn.execute(
        "INSERT INTO recdb.users (user_id, embedding, norm, encoded_through, encoder)"
        " VALUES (%s, %s, %s,"
        " coalesce((SELECT max(event_id) FROM recdb.events WHERE user_id = %s), 0),"
        " 'test') ON CONFLICT (user_id) DO UPDATE SET embedding = excluded.embedding,"
        " norm = excluded.norm, encoded_through = excluded.encoded_through",
        (user_id, unit(vec), norm, user_id),
    )


def rerank(conn: psycopg.Connection[Any], user_id: int | None, **kwargs: Any) -> list[tuple]:
    args = ", ".join(f"{k} => %({k})s" for k in kwargs)
    q = "SELECT rank, item_id, score, because_item_id, reason, fresh_events FROM rerank(%(u)s"
    q += (", " + args if args else "") + ")"
    params: dict[str, Any] = {"u": user_id}
    for k, v in kwargs.items():
        params[k] = psycopg.types.json.Jsonb(v) if k == "filter" and v is not None else v
    return conn.execute(q, params).fetchall()


def ids(rows: list[tuple]) -> list[int]:
    return [r[1] for r in rows]


def spawn_worker(url: str, *extra: str) -> subprocess.Popen[str]:
    """A real worker process (tests/worker_proc.py) for kill, signal and restart tests."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_proc", url, *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
