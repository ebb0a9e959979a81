"""`recdb bench --soak`: sustained writes and rerank() calls with workers running.

Bounded in time and rate, local server only. It reports what an operator needs to trust
the system under load: errors (must be 0), queue lag while events keep arriving, and
rerank() latency while the worker competes for the same database.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from recdb.db import connect
from recdb.db.sqlfiles import query
from recdb.tools.bench.db import q as bench_q
from recdb.tools.bench.db import wait_for_empty_user_queue
from recdb.tools.bench.stats import percentile, percentile_ms

log = logging.getLogger(__name__)

K = 20  # rerank() results per call


def q(name: str) -> str:
    return query("queries/soak.sql", name)


@dataclass
class SoakConfig:
    duration: float = 30.0
    items: int = 2000
    users: int = 1000
    event_rate: float = 300.0  # events/s, all writers together
    writers: int = 2
    readers: int = 2
    workers: int = 2
    seed: int = 0


@dataclass
class _Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    events: int = 0
    write_errors: list[str] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)
    read_errors: list[str] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)


def _seed_catalog(conn: psycopg.Connection[Any], cfg: SoakConfig, dim: int) -> None:
    """Items with vectors already set: the soak exercises events, users and rerank()."""
    rng = np.random.default_rng(cfg.seed)
    centers = rng.normal(size=(20, dim)).astype(np.float32)
    vecs = centers[rng.integers(0, 20, cfg.items)] + 0.5 * rng.normal(size=(cfg.items, dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    with conn.cursor() as cur, cur.copy(q("copy_items_with_vectors")) as cp:
        cp.set_types(["int8", "text", "vector"])
        for i, v in enumerate(vecs):
            cp.write_row((i, f"soak item {i}", v))
    conn.execute(bench_q("clear_item_queue"))


def run_soak(url: str, cfg: SoakConfig, text_encoder: Any = None) -> dict[str, Any]:
    """Run against a migrated, empty recdb database; returns the figures."""
    from recdb.worker import Worker, WorkerConfig
    from recdb.worker.runner import BackgroundWorker

    with connect(url, autocommit=True, application_name="recdb soak setup") as conn:
        dim = conn.execute(q("items_embedding_dim")).fetchone()[0]
        _seed_catalog(conn, cfg, dim)

    stop = threading.Event()
    c = _Counters()
    if text_encoder is None:  # load the model once, share it
        from recdb.encoders import TextEncoder

        text_encoder = TextEncoder()
    workers = [
        BackgroundWorker(
            Worker(
                WorkerConfig(database_url=url, poll_interval=0.5, user_batch_size=200),
                text_encoder=text_encoder,
            ),
            name=f"recdb-soak-worker-{i}",
        )
        for i in range(cfg.workers)
    ]

    def writer(idx: int) -> None:
        rng = random.Random(cfg.seed * 1000 + idx)
        per_writer = cfg.event_rate / cfg.writers
        with connect(url, autocommit=True, application_name=f"recdb soak writer {idx}") as wc:
            next_at = time.monotonic()
            while not stop.is_set():
                try:
                    wc.execute(
                        bench_q("insert_event"),
                        {
                            "user_id": rng.randrange(cfg.users),
                            "item_id": rng.randrange(cfg.items),
                            "kind": rng.choice(("view", "click", "click", "purchase", "dislike")),
                        },
                    )
                    with c.lock:
                        c.events += 1
                except psycopg.Error as exc:
                    with c.lock:
                        c.write_errors.append(str(exc))
                next_at += 1.0 / per_writer
                time.sleep(max(0.0, next_at - time.monotonic()))

    def reader(idx: int) -> None:
        rng = random.Random(cfg.seed * 2000 + idx)
        with connect(url, autocommit=True, application_name=f"recdb soak reader {idx}") as rc:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    rows = rc.execute(
                        q("rerank_item_ids"), {"user_id": rng.randrange(cfg.users), "k": K}
                    ).fetchall()
                    if len(rows) != K:
                        raise RuntimeError(f"rerank returned {len(rows)} rows, expected {K}")
                    with c.lock:
                        c.reads.append(time.perf_counter() - t0)
                except (psycopg.Error, RuntimeError) as exc:
                    with c.lock:
                        c.read_errors.append(str(exc))

    def sampler() -> None:
        with connect(url, autocommit=True, application_name="recdb soak sampler") as sc:
            while not stop.wait(0.25):
                age = sc.execute(q("oldest_queued_user_age_s")).fetchone()[0]
                c.lag.append(float(age))

    load = (
        [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(cfg.writers)]
        + [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(cfg.readers)]
        + [threading.Thread(target=sampler, daemon=True)]
    )
    for w in workers:
        w.start()
    started = time.monotonic()
    for t in load:
        t.start()
    stop.wait(cfg.duration)
    stop.set()
    for t in load:
        t.join(timeout=30)
    elapsed = time.monotonic() - started

    with connect(url, autocommit=True, application_name="recdb soak check") as conn:
        drained = wait_for_empty_user_queue(conn, timeout=60, interval=0.1)
        for w in workers:
            w.stop(timeout=60)
        left = conn.execute(q("user_queue_rows")).fetchone()[0]
        parked = conn.execute(query("queries/status.sql", "status")).fetchone()[2]
    worker_errors = sum(w.worker.stats.errors for w in workers)
    return {
        "duration_s": round(elapsed, 1),
        "events": c.events,
        "events_per_s": round(c.events / elapsed, 1),
        "reranks": len(c.reads),
        "reranks_per_s": round(len(c.reads) / elapsed, 1),
        "errors": len(c.write_errors) + len(c.read_errors) + worker_errors,
        "write_errors": c.write_errors[:5],
        "read_errors": c.read_errors[:5],
        "worker_errors": worker_errors,
        "users_encoded": sum(w.worker.stats.users_encoded for w in workers),
        "queue_lag_p50_s": percentile(c.lag, 50),
        "queue_lag_p99_s": percentile(c.lag, 99),
        "rerank_p50_ms": percentile_ms(c.reads, 50),
        "rerank_p99_ms": percentile_ms(c.reads, 99),
        "drain_after_load_s": round(drained, 2),
        "queue_left": left,
        "parked": parked,
    }


def render(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| soak | value |",
            "| --- | --- |",
            f"| duration | {r['duration_s']} s |",
            f"| events written | {r['events']} ({r['events_per_s']}/s) |",
            f"| rerank() calls | {r['reranks']} ({r['reranks_per_s']}/s) |",
            f"| errors (writers, readers, workers) | {r['errors']} |",
            f"| queue lag p50 / p99 | {r['queue_lag_p50_s']} s / {r['queue_lag_p99_s']} s |",
            f"| rerank() p50 / p99 under load | {r['rerank_p50_ms']} ms"
            f" / {r['rerank_p99_ms']} ms |",
            f"| users re-encoded | {r['users_encoded']} |",
            f"| drain after load stopped | {r['drain_after_load_s']} s,"
            f" {r['queue_left']} rows left, {r['parked']} parked |",
        ]
    )
