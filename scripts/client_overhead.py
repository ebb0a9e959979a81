"""What recdb.Client adds to a rerank() call: its p50 beside raw psycopg on the same
database, calls interleaved so both see the same machine load.

    .venv/bin/python scripts/client_overhead.py [--url ADMIN_URL] [--items 2000] [--calls 500]

Builds a scratch database (random unit vectors written as the worker would, one user with
history and a stored vector) on ADMIN_URL's server, or on a throw-away embedded server,
and drops it afterwards. Three ways to call, rotated every round: the Client; raw psycopg
running the client's own SQL (what the client costs in Python); raw psycopg running
`SELECT * FROM rerank(%s)` (what an app would write by hand).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from recdb.client import Client, Item
from recdb.client.params import rerank_params, sql
from recdb.client.types import DEFAULT_EXCLUDE_SEEN, DEFAULT_K
from recdb.db import connect, embedded, schema, scratch

DBNAME = "recdb_client_overhead"
USER = 1


def build(url: str, n_items: int, dim: int, history: int) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n_items, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with Client(url) as client:
        client.upsert_items(Item(i, f"item {i}", attrs={"g": i % 10}) for i in range(n_items))
        client.track_many((USER, int(i), "click") for i in rng.choice(n_items, history, False))
    with connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "UPDATE recdb.items SET embedding = %s, embedded_at = now() WHERE item_id = %s",
            [(v, i) for i, v in enumerate(vecs)],
        )
        seen = [r[0] for r in cur.execute("SELECT item_id FROM recdb.events").fetchall()]
        user = vecs[seen].mean(axis=0)
        cur.execute(
            "INSERT INTO recdb.users (user_id, embedding, norm, encoded_through, encoder)"
            " SELECT %s, %s, %s, max(event_id), 'overhead' FROM recdb.events",
            (USER, user / np.linalg.norm(user), float(np.linalg.norm(user))),
        )
        cur.execute("ANALYZE")


def measure(url: str, calls: int) -> dict[str, list[float]]:
    params = rerank_params(USER, DEFAULT_K, None, None, DEFAULT_EXCLUDE_SEEN)
    # One connection (one server backend) per way, each serving the same number of calls.
    with (
        Client(url, max_size=1) as client,
        psycopg.connect(url, autocommit=True) as raw1,
        psycopg.connect(url, autocommit=True) as raw2,
    ):

        def via_client() -> Any:
            return client.rerank(USER)

        def raw_client_sql() -> Any:
            return raw1.execute(sql("rerank"), params).fetchall()

        def raw_plain() -> Any:
            return raw2.execute("SELECT * FROM rerank(%s)", (USER,)).fetchall()

        ways: dict[str, Callable[[], Any]] = {
            "Client.rerank()": via_client,
            "psycopg, the client's SQL": raw_client_sql,
            "psycopg, SELECT * FROM rerank(%s)": raw_plain,
        }
        for fn in ways.values():  # warm: pool connection, prepared statements, caches
            for _ in range(20):
                fn()
        times: dict[str, list[float]] = {name: [] for name in ways}
        order = list(ways)
        for n in range(calls):
            for name in order[n % 3 :] + order[: n % 3]:
                t = time.perf_counter()
                ways[name]()
                times[name].append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="admin URL of a server (default: a throw-away embedded one)")
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--history", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="recdb-overhead-") as tmp:
        if args.url:
            admin = args.url
        else:
            os.chmod(tmp, 0o700)
            admin = embedded.start(Path(tmp), cleanup="delete")
        url = scratch.recreate(admin, DBNAME)
        try:
            schema.upgrade(url, embedding_dim=args.dim)
            build(url, args.items, args.dim, args.history)
            load_before = Path("/proc/loadavg").read_text().split()[:3]
            times = measure(url, args.calls)
            load_after = Path("/proc/loadavg").read_text().split()[:3]
        finally:
            scratch.drop(admin, DBNAME)
    base = statistics.median(times["psycopg, SELECT * FROM rerank(%s)"])
    print(
        f"{args.items} items (dim {args.dim}), user history {args.history}, {args.calls} calls each"
    )
    for name, ms in times.items():
        p50 = statistics.median(ms)
        p90 = statistics.quantiles(ms, n=10)[-1]
        print(f"  {name:36s} p50 {p50:6.3f} ms  p90 {p90:6.3f} ms  ({p50 / base:.3f}x)")
    print(f"  load average before {' '.join(load_before)}, after {' '.join(load_after)}")


if __name__ == "__main__":
    main()
