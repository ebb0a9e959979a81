"""`recdb bench`: performance figures of the whole product, measured in one run.

Everything runs in a database of its own (dropped and re-created per run) on the server
in use, so a bench never touches application data. Per catalog size: items with real
text-model vectors are bulk-loaded (COPY BINARY, HNSW built after the load), synthetic
users get clustered histories (COPY), the worker encodes the users, then we time
rerank() sequentially and with concurrent clients, check its HNSW recall against exact
numpy search, and time the same ranking done application-side. After the sizes, on the
last catalog: ingest with and without the event triggers, freshness under a steady event
rate with a worker running, and worker throughput.

Targets are reported, never asserted: a bench that fails on a slow laptop tells nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from recdb.db import scratch
from recdb.db.sqlfiles import query
from recdb.tools.bench import data as bd

log = logging.getLogger(__name__)

_Q = "queries/bench.sql"
DEFAULT_DB = "recdb_bench"
GENERATOR_CONNECTIONS = 4

KINDS = ("view", "click", "cart", "purchase", "like", "rate", "skip", "dislike")
KIND_P = (0.55, 0.25, 0.05, 0.05, 0.04, 0.02, 0.03, 0.01)

# (what, comparison, threshold); _lookup() reads each from the result
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("rerank_p99_ms @100k (sequential)", "<=", 10.0),
    ("recall_at_20 @100k", ">=", 0.95),
    ("app_side_ratio @100k (app-side / rerank p50)", ">=", 3.0),
    ("trigger_overhead", "<=", 0.30),
    ("worker users_per_s (mean encoder)", ">=", 2000.0),
    ("zero_lag_fraction", ">=", 1.0),
    ("worker_p99_ms (freshness)", "<", 1000.0),
)


def q(name: str) -> str:
    return query(_Q, name)


# --- configuration ------------------------------------------------------------------------


@dataclass
class BenchConfig:
    """What to measure and how hard; defaults are the documented `recdb bench` run."""

    sizes: list[int] = field(default_factory=lambda: [10_000, 100_000])
    users: int = 5000
    clients: list[int] = field(default_factory=lambda: [1, 4])
    duration: float = 8.0  # seconds per concurrent-clients run
    queries: int = 1000  # sequential rerank() calls per size
    recall_queries: int = 300
    app_queries: int = 300
    k: int = 20
    seed: int = 0
    event_rate: float = 1000.0  # events/s during the freshness run
    low_event_rate: float = 50.0  # a second freshness run below saturation (0: none)
    freshness_duration: float = 10.0
    zero_lag_trials: int = 200
    ingest_events: int = 4000  # single-row inserts per table (half per round, 2 rounds)
    new_items: int = 256  # items the worker encodes for items_per_s
    admin_url: str | None = None
    dbname: str = DEFAULT_DB
    keep: bool = False
    worker_mode: str = "process"  # "process": `recdb worker` subprocess; "thread": in-process
    device: str = "cpu"
    progress: bool = True
    cache: bool = True
    time_limit: float = 3600.0  # hard stop for the timed loops as a whole


def parse_ints(text: str) -> list[int]:
    out = []
    for part in str(text).replace("_", "").split(","):
        part = part.strip().lower()
        if not part:
            continue
        mult = 1
        if part.endswith("k"):
            part, mult = part[:-1], 1000
        elif part.endswith("m"):
            part, mult = part[:-1], 1_000_000
        value = int(float(part) * mult)
        if value < 1:
            raise ValueError(f"expected positive integers, got {text!r}")
        out.append(value)
    if not out:
        raise ValueError(f"expected a comma-separated list of integers, got {text!r}")
    return out


# --- small statistics helpers (unit-tested) ---------------------------------------------


def percentile_ms(seconds: Sequence[float], p: float) -> float | None:
    """The p-th percentile of durations in seconds, in ms (None for no samples)."""
    if not len(seconds):
        return None
    return round(float(np.percentile(np.asarray(seconds, dtype=np.float64), p)) * 1000.0, 3)


def recall_at_k(returned: Sequence[int], exact: Sequence[int], k: int) -> float:
    """|top-k returned ∩ exact top-k| / |exact top-k|: order inside the top k does not matter.

    When fewer than k items qualify (a narrow filter), the denominator is what exists,
    so a perfect answer still scores 1.0.
    """
    truth = set(list(exact)[:k])
    if not truth:
        return 1.0
    got = set(list(returned)[:k])
    return len(got & truth) / len(truth)


def exact_top_k(
    vectors: np.ndarray,
    ids: np.ndarray,
    query_vec: np.ndarray,
    k: int,
    exclude_ids: Iterable[int] = (),
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Brute-force cosine top-k ids over unit `vectors` (rows aligned with `ids`).

    exclude_ids: the user's seen items; allowed: a boolean row mask (availability and the
    filter), the same restrictions rerank() applies, so recall compares like with like.
    """
    sims = vectors @ np.asarray(query_vec, dtype=np.float32)
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    excl = np.fromiter(exclude_ids, dtype=np.int64)
    if len(excl):  # ids are sorted: find each excluded id's row, skip unknown ids
        rows = np.searchsorted(ids, excl)
        inside = rows < len(ids)
        rows, excl = rows[inside], excl[inside]
        sims[rows[ids[rows] == excl]] = -np.inf
    k = min(k, int(np.isfinite(sims).sum()))
    if k <= 0:
        return np.empty(0, dtype=ids.dtype)
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.lexsort((ids[top], -sims[top]))]
    return ids[top]


# --- database plumbing --------------------------------------------------------------------


def _connect(url: str, name: str, autocommit: bool = True) -> psycopg.Connection[Any]:
    from recdb.db import connect

    return connect(url, autocommit=autocommit, application_name=f"recdb bench {name}"[:63])


# --- catalog, users, load -----------------------------------------------------------------


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
        conn.execute(sql.SQL("DROP INDEX recdb.{}").format(sql.Identifier(name)))
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    rng = np.random.default_rng([n, 5])
    ages = rng.uniform(0, 365 * 86400, size=n)
    with conn.cursor() as cur, cur.copy(q("copy_items")) as cp:
        cp.set_types(
            [
                "bigint",
                "text",
                "text",
                "jsonb",
                "bool",
                "timestamptz",
                "vector",
                "timestamptz",
                "text",
            ]
        )
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
    conn.execute("SET maintenance_work_mem = '2GB'")
    workers = max(1, (os.cpu_count() or 2) - 1)
    conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
    for _, indexdef in indexes:
        conn.execute(indexdef)
    conn.execute("RESET maintenance_work_mem")
    conn.execute("RESET max_parallel_maintenance_workers")
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


# --- encoders and the worker --------------------------------------------------------------


class _Encoders:
    """Loads the text model at most once per run (seconds and ~500 MB)."""

    def __init__(self, factory: Callable[[], Any] | None, device: str) -> None:
        self._factory = factory
        self._device = device
        self._enc: Any = None

    def __call__(self) -> Any:
        if self._enc is None:
            if self._factory is not None:
                self._enc = self._factory()
            else:
                from recdb.encoders import TextEncoder

                self._enc = TextEncoder(device=self._device)
        return self._enc

    @property
    def model_name(self) -> str | None:
        if self._factory is not None:
            return None  # injected encoders (tests) are never cached
        from recdb.encoders import resolve_model_path

        try:
            return resolve_model_path(os.environ.get("RECDB_MODEL"))
        except Exception:
            return None


@dataclass
class WorkerRun:
    stats: Any
    users_per_s: float | None  # steady state: batches after the first
    items_per_s: float | None
    users_per_s_end_to_end: float | None
    items_per_s_end_to_end: float | None


def _steady_rate(marks: list[tuple[float, int]]) -> float | None:
    """Rate over batches 2..N (the first includes connecting and warming caches)."""
    moved = [m for i, m in enumerate(marks) if i == 0 or m[1] != marks[i - 1][1]]
    if len(moved) < 2 or moved[-1][0] <= moved[0][0]:
        return None
    return (moved[-1][1] - moved[0][1]) / (moved[-1][0] - moved[0][0])


def run_worker_once(
    url: str, encoders: _Encoders, device: str, user_encoder: str = "mean"
) -> WorkerRun:
    """Drain the queues with the real Worker, timing each batch through its batch hook."""
    from recdb.worker import Worker, WorkerConfig

    cfg = WorkerConfig(
        database_url=url,
        batch_size=64,
        user_batch_size=500,
        poll_interval=1.0,
        device=device,
        user_encoder=user_encoder,
    )
    worker = Worker(cfg, text_encoder=encoders())
    item_marks: list[tuple[float, int]] = []
    user_marks: list[tuple[float, int]] = []

    def mark(stats: Any) -> None:
        now = time.perf_counter()
        item_marks.append((now, stats.items_encoded))
        user_marks.append((now, stats.users_encoded))

    worker.add_batch_hook(mark)
    stats = worker.run(once=True)
    secs = stats.seconds or float("nan")
    users_marks = [m for m in user_marks if m[1] > 0]
    item_only = [m for m in item_marks if m[1] > 0]
    e2e_users = round(stats.users_encoded / secs, 1) if stats.users_encoded else None
    e2e_items = round(stats.items_encoded / secs, 1) if stats.items_encoded else None
    steady_u = _steady_rate(users_marks)
    steady_i = _steady_rate(item_only)
    return WorkerRun(
        stats,
        round(steady_u, 1) if steady_u else e2e_users,
        round(steady_i, 1) if steady_i else e2e_items,
        e2e_users,
        e2e_items,
    )


class WorkerHandle:
    """A worker running while we measure freshness: `recdb worker` in a subprocess (its own
    GIL and interpreter, as in production) or a thread (tests, injected encoders)."""

    def __init__(self, url: str, mode: str, encoders: _Encoders, device: str) -> None:
        self.mode = mode
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._worker: Any = None
        if mode == "process":
            env = dict(os.environ, RECDB_DATABASE_URL=url)
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "recdb.cli",
                    "worker",
                    "--database-url",
                    url,
                    "--poll-interval",
                    "1",
                    "--device",
                    device,
                    "--log-level",
                    "WARNING",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        else:
            from recdb.worker import Worker, WorkerConfig

            cfg = WorkerConfig(database_url=url, poll_interval=1.0, device=device)
            self._worker = Worker(cfg, text_encoder=encoders())
            self._thread = threading.Thread(
                target=self._worker.run, name="bench-worker", daemon=True
            )
            self._thread.start()

    def wait_ready(self, conn: psycopg.Connection[Any], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(
                    f"bench worker exited with {self._proc.returncode}: {err[-2000:]}"
                )
            if conn.execute(q("live_workers")).fetchone()[0] > 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"bench worker did not start within {timeout:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._worker is not None:
            self._worker.stop()
            assert self._thread is not None
            self._thread.join(timeout=30)


# --- per-size measurements ----------------------------------------------------------------


def _timed_rerank(conn: psycopg.Connection[Any], uid: int, k: int) -> tuple[float, list[tuple]]:
    t0 = time.perf_counter()
    rows = conn.execute(q("rerank"), {"user_id": uid, "k": k}, prepare=True).fetchall()
    return time.perf_counter() - t0, rows


def sequential_latency(
    conn: psycopg.Connection[Any], users: Sequence[int], k: int, n: int, progress: bool, label: str
) -> tuple[list[float], dict[int, list[int]]]:
    """n rerank() calls one after another on one connection (after a short warm-up)."""
    from tqdm import tqdm

    for uid in users[: min(50, len(users))]:
        _timed_rerank(conn, uid, k)
    lat: list[float] = []
    results: dict[int, list[int]] = {}
    for i in tqdm(range(n), desc=f"{label} rerank sequential", disable=not progress, leave=False):
        uid = users[i % len(users)]
        dt, rows = _timed_rerank(conn, uid, k)
        lat.append(dt)
        results[uid] = [r[1] for r in rows]
    return lat, results


def select1_latency(conn: psycopg.Connection[Any], n: int = 1000) -> list[float]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.execute(q("select1"), prepare=True).fetchone()
        lat.append(time.perf_counter() - t0)
    return lat


def concurrent_latency(
    url: str, users: Sequence[int], k: int, clients: int, duration: float, seed: int
) -> dict[str, float | int | None]:
    """`clients` threads, one connection each, calling rerank() for `duration` seconds."""
    barrier = threading.Barrier(clients + 1)
    lats: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    stop_at = [0.0]

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        try:
            with _connect(url, f"client {i}") as conn:
                for _ in range(20):
                    _timed_rerank(conn, rng.choice(users), k)
                barrier.wait()
                out = lats[i]
                while time.perf_counter() < stop_at[0] and len(out) < 200_000:
                    out.append(_timed_rerank(conn, rng.choice(users), k)[0])
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600.0  # set for real once everyone is warm
    with contextlib.suppress(threading.BrokenBarrierError):  # a failed client says why below
        barrier.wait(timeout=120)
    t0 = time.perf_counter()
    stop_at[0] = t0 + duration
    for t in threads:
        t.join(timeout=duration + 60)
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"concurrent client failed: {errors[0]}") from errors[0]
    flat = [x for xs in lats for x in xs]
    return {
        "p50_ms": percentile_ms(flat, 50),
        "p99_ms": percentile_ms(flat, 99),
        "qps": round(len(flat) / elapsed, 1) if elapsed > 0 else None,
        "queries": len(flat),
    }


def _set_weights(conn: psycopg.Connection[Any], pop: float, div: float, fresh: float) -> None:
    conn.execute(
        q("set_weights"),
        {"popularity_weight": pop, "diversity_penalty": div, "freshness_weight": fresh},
    )


def recall_and_exact(
    conn: psycopg.Connection[Any],
    cat: Catalog,
    n: int,
    users: Sequence[int],
    k: int,
    interests: dict[int, int] | None,
    progress: bool,
    label: str,
) -> dict[str, Any]:
    """Recall@k of rerank() against exact search with the same exclusions and filters.

    Run with popularity_weight = diversity_penalty = freshness_weight = 0 so rerank()'s
    order is pure cosine similarity: any difference from the exact top k is then the
    approximate (HNSW) candidate search, nothing else.
    """
    from tqdm import tqdm

    vecs = cat.vectors[:n]
    ids = cat.ids[:n]
    avail = cat.available[:n]
    recalls, scans, plain40 = [], [], []
    filtered: dict[str, dict[str, list[Any]]] = {
        case: {"lat": [], "recall": [], "short": []} for case in ("main", "other")
    }
    for uid in tqdm(users, desc=f"{label} recall vs exact", disable=not progress, leave=False):
        row = conn.execute(q("user_vector"), {"user_id": uid}, prepare=True).fetchone()
        if row is None or row[0] is None:
            continue
        u = np.asarray(row[0], dtype=np.float32)
        seen = [r[0] for r in conn.execute(q("seen_items"), {"user_id": uid}, prepare=True)]
        got = [r[1] for r in conn.execute(q("rerank"), {"user_id": uid, "k": k}, prepare=True)]
        t0 = time.perf_counter()
        truth = exact_top_k(vecs, ids, u, k, seen, avail)
        scans.append(time.perf_counter() - t0)
        recalls.append(recall_at_k(got, truth.tolist(), k))
        # Plain pgvector ANN at ef_search 40, no filters: the catalog-level figure that
        # compares real and synthetic vectors (rerank() itself searches wider, see ef_search).
        with conn.transaction():
            conn.execute("SET LOCAL hnsw.ef_search = 40")
            conn.execute("SET LOCAL hnsw.iterative_scan = off")
            ann = [r[0] for r in conn.execute(q("ann_top"), {"vec": u, "k": k}, prepare=True)]
        plain40.append(recall_at_k(ann, exact_top_k(vecs, ids, u, k).tolist(), k))
        if interests is not None and uid in interests:
            # Two filters: the user's main interest (HNSW finds matches near the user at
            # once) and another category (matches are far away, so the filtered HNSW walk
            # must scan much further: the hard case). Every 3rd user, to bound the time.
            cases = [("main", interests[uid])]
            if len(recalls) % 3 == 1:
                others = [c for c in range(len(cat.category_names)) if c != interests[uid]]
                cases.append(("other", others[(uid * 7919) % len(others)]))
            for case, c in cases:
                flt = {"category": cat.category_names[c]}
                t0 = time.perf_counter()
                got_f = [
                    r[1]
                    for r in conn.execute(
                        q("rerank_filtered"),
                        {"user_id": uid, "k": k, "filter": Jsonb(flt)},
                        prepare=True,
                    )
                ]
                filtered[case]["lat"].append(time.perf_counter() - t0)
                truth_f = exact_top_k(vecs, ids, u, k, seen, avail & (cat.categories[:n] == c))
                filtered[case]["recall"].append(recall_at_k(got_f, truth_f.tolist(), k))
                filtered[case]["short"].append(len(got_f) < min(k, len(truth_f)))

    def summary(case: str, what: str) -> dict[str, Any]:
        f = filtered[case]
        return {
            "filter": what,
            "recall_at_20": round(float(np.mean(f["recall"])), 4) if f["recall"] else None,
            "p50_ms": percentile_ms(f["lat"], 50),
            "p99_ms": percentile_ms(f["lat"], 99),
            "queries": len(f["lat"]),
            "fewer_than_k": int(sum(f["short"])),
        }

    return {
        "recall_at_20": round(float(np.mean(recalls)), 4) if recalls else None,
        "recall_min": round(float(np.min(recalls)), 4) if recalls else None,
        "recall_users_below_0_5": int(sum(r < 0.5 for r in recalls)),
        "recall_queries": len(recalls),
        "hnsw_recall_at_20_ef40": round(float(np.mean(plain40)), 4) if plain40 else None,
        "exact_scan_ms": percentile_ms(scans, 50),
        "exact_scan_p99_ms": percentile_ms(scans, 99),
        "filtered": summary("main", '{"category": <user\'s main interest>}'),
        "filtered_other": summary("other", '{"category": <a category outside it>}'),
    }


# --- application-side ranking -------------------------------------------------------------


@dataclass
class AppContext:
    """What an application would cache at start-up: event kinds and ranking settings."""

    kinds: dict[str, tuple[float, float | None, bool, float | None, float | None]]
    popularity_weight: float
    diversity_penalty: float
    freshness_weight: float
    freshness_half_life_s: float
    candidate_factor: int
    ef_search: int
    max_fold_events: int
    explain_history: int


def app_context(conn: psycopg.Connection[Any]) -> AppContext:
    kinds = {}
    for kind, weight, half_life, seen, center, scale in conn.execute(q("app_event_kinds")):
        hl = half_life.total_seconds() if half_life is not None else None
        kinds[kind] = (float(weight), hl, bool(seen), center, scale)
    s = conn.execute(
        "SELECT popularity_weight, diversity_penalty, freshness_weight,"
        " extract(epoch FROM freshness_half_life)::float8, candidate_factor, ef_search,"
        " max_fold_events, explain_history FROM recdb.settings"
    ).fetchone()
    assert s is not None
    return AppContext(
        kinds,
        float(s[0]),
        float(s[1]),
        float(s[2]),
        float(s[3]),
        int(s[4]),
        int(s[5]),
        int(s[6]),
        int(s[7]),
    )


def effective_ef_search(ctx: AppContext, k: int) -> int:
    """The hnsw.ef_search rerank() sets for a call with k (mirrors recdb.rerank)."""
    pool = max(k * ctx.candidate_factor, k + 10)
    return min(max(ctx.ef_search, pool, 40), 1000)


def _event_weight(
    spec: tuple[float, float | None, bool, float | None, float | None],
    value: float | None,
    age_s: float,
) -> float:
    weight, half_life, _, center, scale = spec
    w = weight
    if center is not None and scale is not None:
        w *= ((value if value is not None else center) - center) / scale
    if half_life is not None:
        w *= 0.5 ** (max(age_s, 0.0) / max(half_life, 1.0))
    return w


def prepare_app_connection(conn: psycopg.Connection[Any], ctx: AppContext, k: int) -> None:
    """The session settings rerank() sets per call; an app sets them once per connection."""
    conn.execute("SET hnsw.iterative_scan = 'relaxed_order'")
    conn.execute(
        sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(effective_ef_search(ctx, k)))
    )
    conn.execute("SET hnsw.max_scan_tuples = 20000")


def app_side_rank(conn: psycopg.Connection[Any], ctx: AppContext, uid: int, k: int) -> list[int]:
    """rerank()'s ranking rebuilt in the application: 5 round trips plus numpy.

    1 user row, 2 the user's events, 3 vectors of the history/fresh items, 4 the ANN
    query (seen-exclusion pushed down as an array), 5 popularity of the candidates;
    then fold, score, explain and diversify in Python.
    """
    user = conn.execute(q("app_user"), {"user_id": uid}, prepare=True).fetchone()
    events = conn.execute(q("app_events"), {"user_id": uid}, prepare=True).fetchall()
    through = user[2] if user else 0
    last_at = user[3] if user else None
    seen = sorted({e[1] for e in events if ctx.kinds[e[2]][2]})
    fresh = [e for e in events if e[0] > through][: ctx.max_fold_events]
    hist: list[int] = []
    positive = [
        e
        for e in events
        if ctx.kinds[e[2]][0] > 0
        and (ctx.kinds[e[2]][3] is None or (e[3] is not None and e[3] > ctx.kinds[e[2]][3]))
    ]
    for e in positive[: ctx.explain_history]:
        if e[1] not in hist:
            hist.append(e[1])
    need = sorted(set(hist) | {e[1] for e in fresh})
    rows = (
        conn.execute(q("app_item_vectors"), {"ids": need}, prepare=True).fetchall() if need else []
    )
    vec_of = {r[0]: np.asarray(r[1], dtype=np.float32) for r in rows}
    title_of = {r[0]: r[2] for r in rows}

    total = None
    if user is not None and user[0] is not None:
        total = np.asarray(user[0], dtype=np.float32) * max(float(user[1]), 1e-6)
    if fresh:
        ref = max(e[4] for e in fresh)
        if last_at is not None and last_at > ref:
            ref = last_at
        folded = np.zeros_like(next(iter(vec_of.values()))) if vec_of else None
        for e in fresh:
            v = vec_of.get(e[1])
            if v is not None and folded is not None:
                folded += v * _event_weight(ctx.kinds[e[2]], e[3], (ref - e[4]).total_seconds())
        if folded is not None:
            total = folded if total is None else total + folded
    if total is None or float(np.linalg.norm(total)) < 1e-6:
        return []  # cold start: not part of this comparison (bench users all have vectors)
    u = total / np.linalg.norm(total)

    pool_size = max(k * ctx.candidate_factor, k + 10)
    cands = conn.execute(
        q("app_ann"), {"seen": seen, "vec": u, "limit": pool_size}, prepare=True
    ).fetchall()
    if not cands:
        return []
    cand_ids = [c[0] for c in cands]
    pop = dict(conn.execute(q("app_popularity"), {"ids": cand_ids}, prepare=True).fetchall())

    cv = np.stack([np.asarray(c[1], dtype=np.float32) for c in cands])
    base = cv @ u  # cosine similarity of unit vectors
    base = base + ctx.popularity_weight * np.array([pop.get(i, 0.0) for i in cand_ids])
    if ctx.freshness_weight:
        now = datetime.now(UTC)
        ages = np.array([(now - c[2]).total_seconds() for c in cands])
        base = base + ctx.freshness_weight * 0.5 ** (
            np.maximum(ages, 0) / max(ctx.freshness_half_life_s, 1)
        )
    hv = [h for h in hist if h in vec_of]
    if hv:
        hm = np.stack([vec_of[h] for h in hv])
        because = [hv[j] for j in np.argmax(cv @ hm.T, axis=1)]
    else:
        because = [None] * len(cands)
    # Diversity: the r-th result explained by the same history item loses (r-1) * penalty.
    order = sorted(range(len(cands)), key=lambda j: (-base[j], cand_ids[j]))
    seen_because: dict[Any, int] = {}
    final = np.empty(len(cands))
    for j in order:
        r = seen_because.get(because[j], 0)
        seen_because[because[j]] = r + 1
        final[j] = base[j] - ctx.diversity_penalty * r
    ranked = sorted(range(len(cands)), key=lambda j: (-final[j], j))[:k]
    _ = [title_of.get(because[j]) for j in ranked]  # the explanation text an app would show
    return [cand_ids[j] for j in ranked]


APP_ROUND_TRIPS = 5
MODEL_RTTS_MS = (0.2, 0.5, 1.0)


def modelled_ratios(
    rerank_ms: float | None, app_ms: float | None, local_rtt_ms: float | None, trips: int
) -> dict[str, float] | None:
    """app-side / rerank() p50 if the app sat one network round trip of r ms away.

    Measured here over a local socket (RTT ~ SELECT 1), where extra round trips are
    nearly free; each call pays one RTT for rerank() and `trips` for the app-side path.
    A model, labelled as such: server-side work is taken as measured.
    """
    if not rerank_ms or not app_ms:
        return None
    base = local_rtt_ms or 0.0
    out = {}
    for rtt in MODEL_RTTS_MS:
        extra = max(rtt - base, 0.0)
        out[f"rtt_{rtt}ms"] = round((app_ms + trips * extra) / (rerank_ms + extra), 2)
    return out


def app_side_latency(
    conn: psycopg.Connection[Any],
    ctx: AppContext,
    users: Sequence[int],
    k: int,
    rerank_results: dict[int, list[int]],
    progress: bool,
    label: str,
) -> dict[str, Any]:
    from tqdm import tqdm

    for uid in users[:20]:
        app_side_rank(conn, ctx, uid, k)
    lat, agree = [], []
    for uid in tqdm(users, desc=f"{label} app-side", disable=not progress, leave=False):
        t0 = time.perf_counter()
        ids = app_side_rank(conn, ctx, uid, k)
        lat.append(time.perf_counter() - t0)
        if rerank_results.get(uid):
            agree.append(recall_at_k(ids, rerank_results[uid], k))
    return {
        "app_side_p50_ms": percentile_ms(lat, 50),
        "app_side_p99_ms": percentile_ms(lat, 99),
        "app_side_round_trips": APP_ROUND_TRIPS,
        "app_side_agreement": round(float(np.mean(agree)), 4) if agree else None,
        "app_side_queries": len(lat),
    }


# --- one catalog size ---------------------------------------------------------------------


def bench_size(
    url: str, cat: Catalog, n: int, cfg: BenchConfig, encoders: _Encoders, deadline: float
) -> tuple[dict[str, Any], Histories]:
    from tqdm import tqdm

    label = f"[{n} items]"
    out: dict[str, Any] = {}
    with _connect(url, "load") as conn:
        with tqdm(
            total=n, desc=f"{label} COPY items", unit="item", disable=not cfg.progress, leave=False
        ) as bar:
            out.update(load_catalog(conn, cat, n, bar))
        log.info(
            "%s loaded in %.1fs, HNSW built in %.1fs",
            label,
            out["copy_items_s"],
            out["index_build_s"],
        )
        h = make_histories(cat, n, cfg.users, cfg.seed)
        out["events_loaded"] = len(h.users)
        out["copy_events_s"] = load_events(conn, h)

    run = run_worker_once(url, encoders, cfg.device)
    out["worker_users_encoded"] = run.stats.users_encoded
    out["worker_seconds"] = round(run.stats.seconds, 3)
    out["worker_users_per_s"] = run.users_per_s
    out["worker_users_per_s_end_to_end"] = run.users_per_s_end_to_end
    log.info(
        "%s worker encoded %d users in %.2fs", label, run.stats.users_encoded, run.stats.seconds
    )

    with _connect(url, "measure") as conn:
        conn.execute(q("refresh_popularity"))
        conn.execute(q("analyze"))
        if _is_superuser(conn):
            conn.execute("CHECKPOINT")  # no checkpoint of the load lands inside the timings
        users = [r[0] for r in conn.execute(q("bench_users"))]
        rng = random.Random(cfg.seed + n)
        rng.shuffle(users)
        ctx = app_context(conn)
        out["settings"] = {
            "popularity_weight": ctx.popularity_weight,
            "diversity_penalty": ctx.diversity_penalty,
            "freshness_weight": ctx.freshness_weight,
            "candidate_factor": ctx.candidate_factor,
            "ef_search_setting": ctx.ef_search,
            "k": cfg.k,
        }
        out["ef_search"] = effective_ef_search(ctx, cfg.k)

        lat, results = sequential_latency(conn, users, cfg.k, cfg.queries, cfg.progress, label)
        out["rerank_p50_ms"] = percentile_ms(lat, 50)
        out["rerank_p95_ms"] = percentile_ms(lat, 95)
        out["rerank_p99_ms"] = percentile_ms(lat, 99)
        out["rerank_mean_ms"] = round(float(np.mean(lat)) * 1000, 3)
        out["rerank_queries"] = len(lat)
        out["select1_ms"] = percentile_ms(select1_latency(conn), 50)

        with _connect(url, "app-side") as app:
            prepare_app_connection(app, ctx, cfg.k)
            out.update(
                app_side_latency(
                    app, ctx, users[: cfg.app_queries], cfg.k, results, cfg.progress, label
                )
            )
        out["app_side_ratio"] = (
            round(out["app_side_p50_ms"] / out["rerank_p50_ms"], 2)
            if out["rerank_p50_ms"]
            else None
        )
        out["app_side_ratio_modelled"] = modelled_ratios(
            out["rerank_p50_ms"], out["app_side_p50_ms"], out["select1_ms"], APP_ROUND_TRIPS
        )

        _set_weights(conn, 0.0, 0.0, 0.0)
        try:
            out.update(
                recall_and_exact(
                    conn,
                    cat,
                    n,
                    users[: cfg.recall_queries],
                    cfg.k,
                    h.interests,
                    cfg.progress,
                    label,
                )
            )
        finally:
            _set_weights(conn, ctx.popularity_weight, ctx.diversity_penalty, ctx.freshness_weight)
        out["recall_note"] = (
            "rerank() with popularity_weight = diversity_penalty = "
            "freshness_weight = 0 vs numpy exact cosine top-20 with the same "
            "seen-exclusion and availability (and filter) restrictions"
        )

    concurrent: dict[str, Any] = {}
    for c in cfg.clients:
        if time.monotonic() > deadline:
            break
        concurrent[str(c)] = concurrent_latency(url, users, cfg.k, c, cfg.duration, cfg.seed)
        log.info("%s %d clients: %s", label, c, concurrent[str(c)])
    out["concurrent"] = concurrent
    qps = [v["qps"] for v in concurrent.values() if v.get("qps")]
    seq_qps = round(len(lat) / sum(lat), 1) if lat else None
    out["throughput_qps"] = max([*qps, seq_qps or 0]) or None
    out["sequential_qps"] = seq_qps
    return out, h


def _is_superuser(conn: psycopg.Connection[Any]) -> bool:
    return bool(
        conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    )


# --- ingest -------------------------------------------------------------------------------


def _insert_rate(
    conn: psycopg.Connection[Any],
    qname: str,
    rows: tuple[list[int], list[int], list[str]],
    batch: int,
    count: int,
) -> float:
    """events/s for `count` events inserted `batch` per statement, one transaction each."""
    users, items, kinds = rows
    n = len(users)
    text = q(qname)
    t0 = time.perf_counter()
    if batch == 1:
        for x in range(count):
            j = x % n
            conn.execute(
                text, {"user_id": users[j], "item_id": items[j], "kind": kinds[j]}, prepare=True
            )
    else:
        for s in range(0, count, batch):
            j = [x % n for x in range(s, s + batch)]
            conn.execute(
                text,
                {
                    "users": [users[x] for x in j],
                    "items": [items[x] for x in j],
                    "kinds": [kinds[x] for x in j],
                },
                prepare=True,
            )
    return count / (time.perf_counter() - t0)


# (key, description, synchronous_commit, rows per INSERT, share of cfg.ingest_events)
INGEST_MODES: tuple[tuple[str, str, str, int, float], ...] = (
    (
        "single_row",
        "single-row INSERTs, one transaction each, synchronous_commit=off "
        "(no WAL flush wait: isolates the CPU cost of the triggers)",
        "off",
        1,
        1.0,
    ),
    (
        "single_row_durable",
        "single-row INSERTs, one transaction each, synchronous_commit=on "
        "(each commit waits for its WAL flush)",
        "on",
        1,
        0.25,
    ),
    (
        "batched_100",
        "100-row INSERT ... SELECT unnest(...), one transaction each, synchronous_commit=on",
        "on",
        100,
        5.0,
    ),
)


def ingest(url: str, n_items: int, cfg: BenchConfig) -> dict[str, Any]:
    """events/s into recdb.events vs a trigger-less copy, per insert pattern.

    Rounds alternate the two tables so drift in machine load hits both sides, and the
    best round per table counts. The headline (top-level keys) is single-row inserts
    with synchronous_commit=off: with durable commits, the WAL flush dominates and hides
    the triggers' cost; that case is reported too.
    """
    rng = np.random.default_rng([cfg.seed, 17])
    n = max(2, cfg.ingest_events)
    first_user = 10_000_000  # users of their own: nothing else in the bench sees them
    users = (first_user + rng.integers(0, 1000, size=n)).tolist()
    items = (rng.integers(1, n_items + 1, size=n)).tolist()
    plain_kinds = [k for k in KINDS if k != "rate"]  # kinds that need no value
    kinds = [plain_kinds[i] for i in rng.integers(0, len(plain_kinds), size=n)]
    rows = (users, items, kinds)
    rates: dict[str, dict[str, list[float]]] = {
        m[0]: {"plain": [], "triggers": []} for m in INGEST_MODES
    }
    with _connect(url, "ingest") as conn:
        before = conn.execute(q("max_event_id")).fetchone()[0]
        conn.execute(q("create_plain_events"))
        try:
            for key, _, sync, batch, share in INGEST_MODES:
                conn.execute(sql.SQL("SET synchronous_commit = {}").format(sql.Literal(sync)))
                count = max(batch, int(n * share) // 2 // batch * batch)
                for _round in range(3):
                    for table, suffix in (("plain", "_plain"), ("triggers", "")):
                        qname = ("insert_event" if batch == 1 else "insert_events_batch") + suffix
                        rates[key][table].append(_insert_rate(conn, qname, rows, batch, count))
            conn.execute("RESET synchronous_commit")
        finally:
            conn.execute(q("drop_plain_events"))
            conn.execute(q("delete_events_after"), {"event_id": before})
            conn.execute(q("clear_user_queue"))
    res: dict[str, Any] = {}
    for key, desc, _, _, _ in INGEST_MODES:
        with_t, plain = max(rates[key]["triggers"]), max(rates[key]["plain"])
        res[key] = {
            "events_per_s_with_triggers": round(with_t, 1),
            "events_per_s_plain": round(plain, 1),
            "trigger_overhead": round(plain / with_t - 1.0, 4),
            "mode": desc,
        }
    res.update({k: v for k, v in res["single_row"].items() if k != "mode"})
    res["headline"] = "single_row"
    res["plain_table"] = (
        "recdb_bench.events: CREATE TABLE (LIKE recdb.events INCLUDING ALL) + "
        "the same two foreign keys; differs only by having no triggers "
        "(value validation, user_queue insert, pg_notify)"
    )
    res["trigger_overhead_definition"] = "events_per_s_plain / events_per_s_with_triggers - 1"
    return res


# --- freshness ----------------------------------------------------------------------------


def freshness(
    url: str, cat: Catalog, n_items: int, h: Histories, cfg: BenchConfig, encoders: _Encoders
) -> dict[str, Any]:
    """Freshness at cfg.event_rate (the headline, with the zero-lag trials), then at
    cfg.low_event_rate, both against one running worker.

    The low rate separates the worker's batch cadence from saturation: at a rate above
    what the worker can re-encode, latency grows with the backlog, whatever the cadence.
    """
    worker = WorkerHandle(url, cfg.worker_mode, encoders, cfg.device)
    try:
        with _connect(url, "freshness") as conn:
            worker.wait_ready(conn)
            out = _freshness_run(url, n_items, h, cfg, cfg.event_rate, cfg.zero_lag_trials)
            if cfg.low_event_rate:
                # Start from an empty queue, so the backlog of the first run does not count.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and conn.execute(q("queued_users")).fetchone()[0]:
                    time.sleep(0.2)
                low = _freshness_run(url, n_items, h, cfg, cfg.low_event_rate, 0)
                out["low_rate"] = {
                    k: v for k, v in low.items() if not k.startswith("zero_lag") and k != "method"
                }
    finally:
        worker.stop()
    out["worker_mode"] = cfg.worker_mode
    return out


def _freshness_run(
    url: str, n_items: int, h: Histories, cfg: BenchConfig, rate: float, zero_trials: int
) -> dict[str, Any]:
    """Events arrive at `rate` for cfg.freshness_duration while a worker runs.

    worker_*: commit of an event -> the user's row shows encoded_through >= its event_id
    (polled every ~10 ms; latency is taken when the poll returns, an upper bound).
    zero_lag: meanwhile, on users the load does not touch, buy the item rerank() ranks
    first, commit, and call rerank() at once on another connection: reflected when the
    item is gone and the event is in the ranking's vector (folded as fresh_events, or
    already under the worker's watermark in the same snapshot).
    """
    n_zero = max(1, min(cfg.zero_lag_trials, len(h.user_ids) // 4))
    zero_users = h.user_ids[-n_zero:].tolist()[:zero_trials]
    load_users = h.user_ids[: len(h.user_ids) - n_zero]
    out: dict[str, Any] = {}
    # Several writer connections, as an app's pool would have: one insert that waits
    # (e.g. on a queue row the worker holds) must not throttle the whole event stream.
    writers = GENERATOR_CONNECTIONS
    per_tick = max(1, round(rate * 0.02 / writers))  # events per INSERT, ~every 20 ms
    tick = per_tick * writers / rate  # so the writers together send `rate` events/s
    pending: dict[int, list[tuple[int, float]]] = {}
    lock = threading.Lock()
    latencies: list[float] = []
    insert_lat: list[float] = []
    stop = threading.Event()
    sent = [0]
    errors: list[BaseException] = []

    def generator(index: int) -> None:
        rng = np.random.default_rng([cfg.seed, 23, index])
        try:
            with _connect(url, f"events {index}") as conn:
                start = time.perf_counter() + index * tick / writers
                i = 0
                while not stop.is_set():
                    target = start + i * tick
                    delay = target - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    us = rng.choice(load_users, size=per_tick).tolist()
                    its = rng.integers(1, n_items + 1, size=per_tick).tolist()
                    t_send = time.perf_counter()
                    rows = conn.execute(
                        q("insert_events_returning"),
                        {"users": us, "items": its, "kinds": ["click"] * per_tick},
                        prepare=True,
                    ).fetchall()
                    t_commit = time.perf_counter()
                    with lock:
                        insert_lat.append(t_commit - t_send)
                        for eid, uid in rows:
                            pending.setdefault(uid, []).append((eid, t_commit))
                        sent[0] += len(rows)
                    i += 1
        except BaseException as exc:
            errors.append(exc)

    def poller() -> None:
        try:
            with _connect(url, "poll") as conn:
                while not (gens_done.is_set() and not pending) and not poll_stop.is_set():
                    with lock:
                        ids = list(pending)
                    if ids:
                        marks = conn.execute(q("watermarks"), {"ids": ids}, prepare=True).fetchall()
                        t_seen = time.perf_counter()
                        with lock:
                            for uid, through in marks:
                                evs = pending.get(uid)
                                if not evs:
                                    continue
                                left = []
                                for eid, tc in evs:
                                    if eid <= through:
                                        latencies.append(t_seen - tc)
                                    else:
                                        left.append((eid, tc))
                                if left:
                                    pending[uid] = left
                                else:
                                    del pending[uid]
                    time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)

    zero: list[tuple[bool, float]] = []
    poll_stop = threading.Event()
    gens_done = threading.Event()

    def zero_lag() -> None:
        try:
            with _connect(url, "zero-lag writer") as w, _connect(url, "zero-lag reader") as r:
                for uid in zero_users:
                    if stop.is_set():
                        break
                    before = r.execute(
                        q("rerank"), {"user_id": uid, "k": cfg.k}, prepare=True
                    ).fetchall()
                    if not before:
                        continue
                    target = before[0][1]
                    eid = w.execute(
                        q("insert_event_returning"),
                        {"user_id": uid, "item_id": target, "kind": "purchase"},
                        prepare=True,
                    ).fetchone()[0]
                    t_commit = time.perf_counter()
                    rows = r.execute(
                        q("rerank_with_watermark"), {"user_id": uid, "k": cfg.k}, prepare=True
                    ).fetchall()
                    dt = time.perf_counter() - t_commit
                    gone = all(x[0] != target for x in rows)
                    folded = bool(rows) and (rows[0][1] >= 1 or (rows[0][2] or 0) >= eid)
                    zero.append((gone and folded, dt))
                    time.sleep(max(0.0, cfg.freshness_duration / (n_zero + 1) - dt))
        except BaseException as exc:
            errors.append(exc)

    gens = [threading.Thread(target=generator, args=(g,), daemon=True) for g in range(writers)]
    threads = [threading.Thread(target=f, daemon=True) for f in (poller, zero_lag)]
    try:
        t0 = time.perf_counter()
        for t in [*gens, *threads]:
            t.start()
        time.sleep(cfg.freshness_duration)
        stop.set()
        for t in gens:
            t.join(timeout=60)
        elapsed = time.perf_counter() - t0
        gens_done.set()
        threads[1].join(timeout=30)
        # Let the worker catch up with what was committed, bounded.
        threads[0].join(timeout=max(15.0, cfg.freshness_duration))
    finally:
        stop.set()
        gens_done.set()
        poll_stop.set()
        threads[0].join(timeout=5)
    if errors:
        raise RuntimeError(f"freshness run failed: {errors[0]}") from errors[0]
    missing = sum(len(v) for v in pending.values())
    # Events never reflected count with the time waited so far: a lower bound, so the
    # percentiles cannot look better by dropping the slowest events.
    t_end = time.perf_counter()
    censored = [t_end - tc for evs in pending.values() for _, tc in evs]
    out["zero_lag_fraction"] = round(sum(ok for ok, _ in zero) / len(zero), 4) if zero else None
    out["zero_lag_trials"] = len(zero)
    out["zero_lag_p50_ms"] = percentile_ms([d for _, d in zero], 50)
    out["zero_lag_p99_ms"] = percentile_ms([d for _, d in zero], 99)
    out["worker_p50_ms"] = percentile_ms([*latencies, *censored], 50)
    out["worker_p99_ms"] = percentile_ms([*latencies, *censored], 99)
    out["worker_max_ms"] = percentile_ms([*latencies, *censored], 100)
    out["worker_p50_ms_reflected_only"] = percentile_ms(latencies, 50)
    out["worker_percentiles_are_lower_bounds"] = bool(censored)
    out["insert_p50_ms"] = percentile_ms(insert_lat, 50)
    out["insert_p99_ms"] = percentile_ms(insert_lat, 99)
    out["insert_max_ms"] = percentile_ms(insert_lat, 100)
    out["writer_connections"] = writers
    out["events_sent"] = sent[0]
    out["events_not_reflected"] = missing
    out["event_rate_target"] = rate
    out["event_rate_achieved"] = round(sent[0] / elapsed, 1)
    out["duration_s"] = cfg.freshness_duration
    out["method"] = (
        f"{writers} writer connections each INSERT a batch every {tick * 1000:.0f} ms (one "
        "transaction each) for random users with histories; "
        "a poller reads users.encoded_through every ~10 ms; latency = poll return - "
        "commit (upper bound, includes up to one poll interval); events not reflected "
        "by the end count with the time waited (so percentiles are then lower bounds)"
    )
    return out


def worker_items(
    url: str, cat: Catalog, n_items: int, cfg: BenchConfig, encoders: _Encoders
) -> dict[str, Any]:
    """Items/s: insert new items without vectors and let the worker drain them."""
    count = cfg.new_items
    extra = (
        bd.catalog(n_items + count, cfg.seed)[n_items:]
        if n_items < bd.REAL_LIMIT
        else [
            bd.Item(n_items + j + 1, it.title, it.body, it.attrs)
            for j, it in enumerate(bd.catalog(count, cfg.seed + 1))
        ]
    )
    with _connect(url, "items") as conn:
        with conn.cursor() as cur, cur.copy(q("copy_new_items")) as cp:
            cp.set_types(["bigint", "text", "text", "jsonb"])
            for j, it in enumerate(extra):
                cp.write_row((n_items + j + 1, it.title, it.body, Jsonb(it.attrs)))
        encoders()  # load the model before the clock starts, as a running worker has
        run = run_worker_once(url, encoders, cfg.device)
        conn.execute(q("delete_items_from"), {"first": n_items + 1})
    return {
        "items_per_s": run.items_per_s,
        "items_per_s_end_to_end": run.items_per_s_end_to_end,
        "items_encoded": run.stats.items_encoded,
        "items_seconds": round(run.stats.seconds, 3),
        "device": cfg.device,
    }


def worker_sequence_users(url: str, encoders: _Encoders, cfg: BenchConfig) -> dict[str, Any]:
    """Users/s through a sequence model of the shipped shape (TrainConfig defaults; the
    weights are untrained: encoding costs the same), every user re-encoded."""
    from recdb.sequence import TrainConfig, TrainedModel, registry
    from recdb.worker import requeue_all_users

    with _connect(url, "sequence") as conn:
        conn.execute(q("text_vectors_for_history_items"))
        kinds = [r[0] for r in conn.execute(q("event_kind_names"))]
        dim = encoders().dim
        model = TrainedModel.untrained(TrainConfig(seed=cfg.seed), dim, kinds)
        model_id = registry.save(conn, model, 0)
        conn.execute(q("serve_model_without_reprojection"), {"model_id": model_id})
        requeue_all_users(conn)
    try:
        run = run_worker_once(url, encoders, cfg.device, user_encoder="sequence")
    finally:
        with _connect(url, "sequence") as conn:
            conn.execute(q("serve_model_without_reprojection"), {"model_id": None})
    return {
        "sequence_users_per_s": run.users_per_s,
        "sequence_users_per_s_end_to_end": run.users_per_s_end_to_end,
        "sequence_users_encoded": run.stats.users_encoded,
        "sequence_model": {k: model.cfg.to_json()[k] for k in ("max_len", "hidden", "layers")},
    }


# --- machine ------------------------------------------------------------------------------


def machine_info(url: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "numpy": np.__version__,
    }
    with contextlib.suppress(OSError):  # /proc is Linux-only; the figures are optional
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["mem_total_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    with contextlib.suppress(ImportError):
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
    with _connect(url, "machine") as conn:
        info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
        info["pgvector"] = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()[0]
        for s in ("shared_buffers", "work_mem", "jit", "synchronous_commit", "max_connections"):
            info[s] = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(s))).fetchone()[0]
    info["server"] = (
        "embedded (pgserver)" if not os.environ.get("RECDB_DATABASE_URL") else "RECDB_DATABASE_URL"
    )
    return info


# --- report -------------------------------------------------------------------------------


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        return f"{x:.{digits}f}"
    return str(x)


def _lookup(result: dict[str, Any], name: str) -> float | None:
    sizes = result.get("sizes", {})
    size = "100000" if "100000" in sizes else (max(sizes, key=int) if sizes else None)
    s = sizes.get(size, {}) if size else {}
    table = {
        "rerank_p99_ms @100k (sequential)": s.get("rerank_p99_ms"),
        "recall_at_20 @100k": s.get("recall_at_20"),
        "app_side_ratio @100k (app-side / rerank p50)": s.get("app_side_ratio"),
        "trigger_overhead": result.get("ingest", {}).get("trigger_overhead"),
        "worker users_per_s (mean encoder)": result.get("worker", {}).get("users_per_s"),
        "zero_lag_fraction": result.get("freshness", {}).get("zero_lag_fraction"),
        "worker_p99_ms (freshness)": result.get("freshness", {}).get("worker_p99_ms"),
    }
    return table.get(name)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, op, limit in TARGETS:
        got = _lookup(result, name)
        ok = None
        if got is not None:
            ok = {"<=": got <= limit, ">=": got >= limit, "<": got < limit}[op]
        out.append({"target": f"{name} {op} {limit:g}", "measured": got, "met": ok})
    return out


def render(result: dict[str, Any]) -> str:
    lines = ["## recdb bench", ""]
    clients = sorted(
        {c for s in result["sizes"].values() for c in s.get("concurrent", {})}, key=int
    )
    head = [
        "items",
        "rerank p50",
        "p95",
        "p99",
        "recall@20",
        "ef",
        "app-side p50",
        "ratio",
        "SELECT 1",
        "exact scan",
        "filter (own cat.) p50/p99, recall",
        "filter (other cat.) p50/p99, recall",
    ]
    head += [f"{c} clients p50/p99 (qps)" for c in clients]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for n, s in sorted(result["sizes"].items(), key=lambda kv: int(kv[0])):
        f, fo = s.get("filtered", {}), s.get("filtered_other", {})
        row = [
            f"{int(n):,}",
            _fmt(s["rerank_p50_ms"]),
            _fmt(s["rerank_p95_ms"]),
            _fmt(s["rerank_p99_ms"]),
            _fmt(s["recall_at_20"], 3),
            _fmt(s["ef_search"]),
            _fmt(s["app_side_p50_ms"]),
            f"{_fmt(s['app_side_ratio'])}x",
            _fmt(s["select1_ms"], 3),
            _fmt(s["exact_scan_ms"]),
            f"{_fmt(f.get('p50_ms'))}/{_fmt(f.get('p99_ms'))}, {_fmt(f.get('recall_at_20'), 3)}",
            f"{_fmt(fo.get('p50_ms'))}/{_fmt(fo.get('p99_ms'))}, {_fmt(fo.get('recall_at_20'), 3)}",
        ]
        for c in clients:
            cc = s.get("concurrent", {}).get(c)
            row.append(
                f"{_fmt(cc['p50_ms'])}/{_fmt(cc['p99_ms'])} ({_fmt(cc['qps'], 0)})" if cc else "-"
            )
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "Latencies in ms, client-side wall time per query (one round trip), k = 20; recall@20"
        " of rerank() (popularity/diversity/freshness weights 0) vs exact numpy search with the"
        " same exclusions and filter; ef = hnsw.ef_search rerank() uses; exact scan = numpy"
        " brute force over the same catalog."
    )
    lines.append(f"Vectors: {result.get('vectors')}.")
    for n, sz in sorted(result["sizes"].items(), key=lambda kv: int(kv[0])):
        mod = sz.get("app_side_ratio_modelled") or {}
        if mod:
            shown = ", ".join(f"{k.removeprefix('rtt_')} RTT {v}x" for k, v in mod.items())
            lines.append(
                f"App-side ratio if the app were a network hop away ({n} items,"
                f" modelled from the measured times): {shown}."
            )
    fr, ing, wk = result.get("freshness", {}), result.get("ingest", {}), result.get("worker", {})
    if fr:
        lines.append(
            f"Freshness ({_fmt(fr.get('event_rate_achieved'), 0)} events/s for "
            f"{_fmt(fr.get('duration_s'), 0)} s, worker as {fr.get('worker_mode')}): zero-lag "
            f"{_fmt(fr.get('zero_lag_fraction'), 3)} of {fr.get('zero_lag_trials')} trials "
            f"(commit -> reflecting rerank() p50 {_fmt(fr.get('zero_lag_p50_ms'))} ms); "
            f"commit -> worker-updated user vector p50 {_fmt(fr.get('worker_p50_ms'))} ms, "
            f"p99 {_fmt(fr.get('worker_p99_ms'))} ms, {fr.get('events_not_reflected')} of "
            f"{fr.get('events_sent')} not reflected in time; event INSERT p50"
            f" {_fmt(fr.get('insert_p50_ms'))} ms, p99 {_fmt(fr.get('insert_p99_ms'))} ms"
            " while the worker ran."
            + (
                " (>= : lower bounds, some events were never reflected)"
                if fr.get("worker_percentiles_are_lower_bounds")
                else ""
            )
        )
        low = fr.get("low_rate")
        if low:
            lines.append(
                f"Freshness at {_fmt(low.get('event_rate_achieved'), 0)} events/s: worker p50"
                f" {_fmt(low.get('worker_p50_ms'))} ms, p99 {_fmt(low.get('worker_p99_ms'))} ms,"
                f" {low.get('events_not_reflected')} of {low.get('events_sent')} not reflected."
            )
    if ing:
        b = ing.get("batched_100", {})
        with_t, plain = ing.get("events_per_s_with_triggers"), ing.get("events_per_s_plain")
        b_with, b_plain = b.get("events_per_s_with_triggers"), b.get("events_per_s_plain")
        lines.append(
            "Ingest (single-row INSERTs, synchronous_commit=off):"
            f" {_fmt(with_t, 0)} events/s with triggers"
            f" vs {_fmt(plain, 0)} plain, overhead {_fmt(100 * ing['trigger_overhead'], 1)}%;"
            f" 100-row batches: {_fmt(b_with, 0)} vs {_fmt(b_plain, 0)} events/s, overhead"
            f" {_fmt(100 * b.get('trigger_overhead', float('nan')), 1)}%."
        )
    if wk:
        lines.append(
            f"Worker: {_fmt(wk.get('users_per_s'), 0)} users/s (mean encoder), "
            f"{_fmt(wk.get('sequence_users_per_s'), 0)} users/s (sequence encoder), "
            f"{_fmt(wk.get('items_per_s'), 1)} items/s ({wk.get('items_device')})."
        )
    m = result.get("machine", {})
    lines.append(
        f"Machine: {m.get('cpu', '?')}, {m.get('cpu_count')} cores, "
        f"{m.get('mem_total_gib')} GiB, load avg at start {m.get('load_avg_at_start')}; "
        f"PostgreSQL {m.get('postgres')}, pgvector {m.get('pgvector')}, "
        f"shared_buffers {m.get('shared_buffers')}, jit {m.get('jit')}."
    )
    lines.append("")
    lines.append("| target | measured | met |")
    lines.append("|---|---|---|")
    for t in result.get("targets", []):
        met = {True: "yes", False: "NO", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {_fmt(t['measured'], 3)} | {met} |")
    return "\n".join(lines)


# --- orchestration ------------------------------------------------------------------------


def run_bench(
    cfg: BenchConfig, text_encoder_factory: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """The whole bench; returns the JSON-ready result. text_encoder_factory injects an
    encoder (tests use a tiny random one); by default the packaged MiniLM is used."""
    from recdb.db import database_url, schema

    started = time.perf_counter()
    deadline = time.monotonic() + cfg.time_limit
    sizes = sorted(set(cfg.sizes))
    encoders = _Encoders(text_encoder_factory, cfg.device)
    cat = build_catalog(max(sizes), cfg.seed, encoders, encoders.model_name, cfg)
    dim = int(cat.vectors.shape[1])
    admin = database_url(cfg.admin_url)
    url = scratch.recreate(admin, cfg.dbname)
    result: dict[str, Any] = {"sizes": {}}
    try:
        schema.upgrade(url, embedding_dim=dim)
        # The app-side emulation and the recall reference rank by vector similarity and
        # priors; the co-visitation term is switched off so all three compute the same thing.
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("UPDATE recdb.settings SET covisit_weight = 0")
        result["covisit"] = "off (covisit_weight = 0): figures cover the vector path"
        result["machine"] = machine_info(url)
        result["vectors"] = cat.description
        last_h: Histories | None = None
        for n in sizes:
            result["sizes"][str(n)], last_h = bench_size(url, cat, n, cfg, encoders, deadline)
            result["sizes"][str(n)]["vectors"] = bd.describe(n, encoders.model_name)
        assert last_h is not None
        n = sizes[-1]
        log.info("ingest: events/s with and without the triggers")
        result["ingest"] = ingest(url, n, cfg)
        log.info(
            "freshness: %.0f events/s for %.0fs with a worker",
            cfg.event_rate,
            cfg.freshness_duration,
        )
        result["freshness"] = freshness(url, cat, n, last_h, cfg, encoders)
        log.info("worker: encoding %d new items", cfg.new_items)
        items = worker_items(url, cat, n, cfg, encoders)
        log.info("worker: re-encoding every user with a sequence model")
        seq = worker_sequence_users(url, encoders, cfg)
        last = result["sizes"][str(n)]
        result["worker"] = {
            "users_per_s": last["worker_users_per_s"],
            "users_per_s_end_to_end": last["worker_users_per_s_end_to_end"],
            "users_encoded": last["worker_users_encoded"],
            "items_per_s": items["items_per_s"],
            "items_per_s_end_to_end": items["items_per_s_end_to_end"],
            "items_encoded": items["items_encoded"],
            "items_device": items["device"],
            **seq,
            "at_catalog_size": n,
            "method": "Worker.run(once=True) draining the queue (user_batch_size 500, "
            "batch_size 64, mean user encoder; sequence_*: every user again through a sequence "
            "model of the shipped shape); *_per_s counts batches after the first (steady "
            "state), *_end_to_end the whole drain incl. connect and a popularity refresh",
        }
    finally:
        if not cfg.keep:
            scratch.drop(admin, cfg.dbname)
    result["targets"] = targets(result)
    result["config"] = {
        "sizes": sizes,
        "users": cfg.users,
        "clients": cfg.clients,
        "duration_s": cfg.duration,
        "queries": cfg.queries,
        "recall_queries": cfg.recall_queries,
        "app_queries": cfg.app_queries,
        "k": cfg.k,
        "seed": cfg.seed,
        "event_rate": cfg.event_rate,
        "low_event_rate": cfg.low_event_rate,
        "freshness_duration_s": cfg.freshness_duration,
    }
    result["wall_s"] = round(time.perf_counter() - started, 1)
    if "machine" in result:
        result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result
