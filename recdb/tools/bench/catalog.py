"""The bench's data: the catalog (items and their vectors), users' histories, and their
bulk load into the bench database (COPY BINARY; HNSW built after the load)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from recdb.tools.bench import data as bd
from recdb.tools.bench.config import KIND_P, KINDS, BenchConfig
from recdb.tools.bench.db import q

ITEM_COLUMN_TYPES = (
    "bigint",
    "text",
    "text",
    "jsonb",
    "bool",
    "timestamptz",
    "vector",
    "timestamptz",
    "text",
)


@dataclass
class Catalog:
    """The full catalog for the largest size; a size n is its first n rows."""

    items: list[bd.Item]
    vectors: np.ndarray
    description: str
    categories: np.ndarray  # category index per row
    category_names: tuple[str, ...]
    available: np.ndarray  # bool per row

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, len(self.items) + 1, dtype=np.int64)


def build_catalog(
    n: int, seed: int, encoder_factory: Callable[[], Any], model_name: str | None, cfg: BenchConfig
) -> Catalog:
    vectors, how = bd.catalog_vectors(
        n, seed, encoder_factory, model_name=model_name, cache=cfg.cache, progress=cfg.progress
    )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    real_n = min(n, bd.REAL_LIMIT)
    items = bd.catalog(real_n, seed)
    if n > real_n:
        parents = bd.expansion_parents(real_n, n, seed)
        items.extend(
            bd.Item(
                real_n + j + 1, f"{items[p].title} #{real_n + j + 1}", items[p].body, items[p].attrs
            )
            for j, p in enumerate(parents)
        )
    names = tuple(bd.CATEGORIES)
    index = {c: i for i, c in enumerate(names)}
    cats = np.fromiter((index[it.attrs["category"]] for it in items), dtype=np.int32, count=n)
    # ~1% of items unavailable (deterministic), so the availability filter is exercised.
    rng = np.random.default_rng([seed, 11])
    available = rng.random(n) >= 0.01
    return Catalog(items, vectors, how, cats, names, available)


@dataclass
class Histories:
    user_ids: np.ndarray
    users: np.ndarray  # per event
    items: np.ndarray
    kinds: list[str]
    values: list[float | None]
    occurred_at: list[datetime]
    interests: dict[int, int]  # user -> main category index (for filtered queries)


def make_histories(
    cat: Catalog, n_items: int, n_users: int, seed: int, first_user: int = 1
) -> Histories:
    """Users with 1-3 interest categories, 10-60 events each, popular items more often.

    Interests give the user vectors the clustered shape real feeds have; 15% of events
    land outside the interests (exploration), so histories are not trivially separable.
    """
    rng = np.random.default_rng([seed, 3, n_items])
    cats = cat.categories[:n_items]
    n_cat = len(cat.category_names)
    members = [np.flatnonzero(cats == c) for c in range(n_cat)]
    cdfs = []
    for m in members:
        w = 1.0 / np.arange(1, len(m) + 1) ** 0.9  # Zipf-like popularity inside a category
        rng.shuffle(m)
        cdfs.append(np.cumsum(w) / w.sum() if len(m) else np.zeros(0))
    cat_p = np.array([len(m) for m in members], dtype=np.float64)
    cat_p /= cat_p.sum()
    now = datetime.now(UTC)
    users, items, kinds, values, times = [], [], [], [], []
    interests: dict[int, int] = {}
    kind_idx = rng.choice(len(KINDS), size=n_users * 60, p=KIND_P)
    kpos = 0
    for u in range(n_users):
        uid = first_user + u
        n_int = int(rng.integers(1, 4))
        mine = rng.choice(n_cat, size=n_int, replace=False, p=cat_p)
        interests[uid] = int(mine[0])
        length = int(rng.integers(10, 61))
        explore = rng.random(length) < 0.15
        chosen = np.where(
            explore,
            rng.choice(n_cat, size=length, p=cat_p),
            mine[rng.integers(0, n_int, size=length)],
        )
        start = now - timedelta(days=float(rng.uniform(1, 90)))
        gaps = np.cumsum(rng.exponential(3600.0, size=length))
        for j in range(length):
            c = int(chosen[j])
            if not len(members[c]):
                continue
            row = members[c][min(int(np.searchsorted(cdfs[c], rng.random())), len(members[c]) - 1)]
            kind = KINDS[kind_idx[kpos]]
            kpos += 1
            users.append(uid)
            items.append(int(row) + 1)
            kinds.append(kind)
            values.append(float(rng.integers(1, 6)) if kind == "rate" else None)
            times.append(min(start + timedelta(seconds=float(gaps[j])), now))
    order = np.argsort(np.array([t.timestamp() for t in times]), kind="stable")
    return Histories(
        user_ids=np.arange(first_user, first_user + n_users, dtype=np.int64),
        users=np.asarray(users, dtype=np.int64)[order],
        items=np.asarray(items, dtype=np.int64)[order],
        kinds=[kinds[i] for i in order],
        values=[values[i] for i in order],
        occurred_at=[times[i] for i in order],
        interests=interests,
    )


def load_catalog(conn: psycopg.Connection[Any], cat: Catalog, n: int, bar: Any) -> dict[str, float]:
    """Reset the bench tables and COPY n items with vectors; HNSW is built after the load."""
    timings: dict[str, float] = {}
    conn.execute(q("reset"))
    indexes = conn.execute(q("hnsw_indexes")).fetchall()
    for name, _ in indexes:
        conn.execute(sql.SQL(q("drop_index")).format(index=sql.Identifier(name)))
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    rng = np.random.default_rng([n, 5])
    ages = rng.uniform(0, 365 * 86400, size=n)
    with conn.cursor() as cur, cur.copy(q("copy_items")) as cp:
        cp.set_types(list(ITEM_COLUMN_TYPES))
        for r in range(n):
            it = cat.items[r]
            cp.write_row(
                (
                    it.item_id,
                    it.title,
                    it.body,
                    Jsonb(it.attrs),
                    bool(cat.available[r]),
                    now - timedelta(seconds=float(ages[r])),
                    cat.vectors[r],
                    now,
                    "bench",
                )
            )
            if r % 5000 == 4999:
                bar.update(5000)
    bar.update(n % 5000)
    conn.execute(q("clear_item_queue"))
    timings["copy_items_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Bulk HNSW build: generous memory keeps the graph in RAM; parallel workers use the cores.
    workers = max(1, (os.cpu_count() or 2) - 1)
    conn.execute(q("bulk_index_build_settings"), {"workers": workers})
    for _, indexdef in indexes:
        conn.execute(indexdef)
    conn.execute(q("reset_bulk_index_build_settings"))
    timings["index_build_s"] = time.perf_counter() - t0
    return timings


def load_events(conn: psycopg.Connection[Any], h: Histories) -> float:
    """COPY the histories into recdb.events (triggers queue every user once); seconds."""
    t0 = time.perf_counter()
    with conn.cursor() as cur, cur.copy(q("copy_events")) as cp:
        cp.set_types(["bigint", "bigint", "text", "float4", "timestamptz"])
        for row in zip(
            h.users.tolist(), h.items.tolist(), h.kinds, h.values, h.occurred_at, strict=True
        ):
            cp.write_row(row)
    return time.perf_counter() - t0
