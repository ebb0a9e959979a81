"""rerank() timed per catalog size: sequential, SELECT 1 for the round-trip floor,
concurrent clients, and recall against exact search (plain and filtered)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from recdb.tools.bench.catalog import Catalog
from recdb.tools.bench.db import connect, q
from recdb.tools.bench.stats import exact_top_k, mean, percentile_ms, recall_at_k


def timed_rerank(conn: psycopg.Connection[Any], uid: int, k: int) -> tuple[float, list[tuple]]:
    t0 = time.perf_counter()
    rows = conn.execute(q("rerank"), {"user_id": uid, "k": k}, prepare=True).fetchall()
    return time.perf_counter() - t0, rows


def sequential_latency(
    conn: psycopg.Connection[Any], users: Sequence[int], k: int, n: int, progress: bool, label: str
) -> tuple[list[float], dict[int, list[int]]]:
    """n rerank() calls one after another on one connection (after a short warm-up)."""
    from tqdm import tqdm

    for uid in users[: min(50, len(users))]:
        timed_rerank(conn, uid, k)
    lat: list[float] = []
    results: dict[int, list[int]] = {}
    for i in tqdm(range(n), desc=f"{label} rerank sequential", disable=not progress, leave=False):
        uid = users[i % len(users)]
        dt, rows = timed_rerank(conn, uid, k)
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
            with connect(url, f"client {i}") as conn:
                for _ in range(20):
                    timed_rerank(conn, rng.choice(users), k)
                barrier.wait()
                out = lats[i]
                while time.perf_counter() < stop_at[0] and len(out) < 200_000:
                    out.append(timed_rerank(conn, rng.choice(users), k)[0])
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


def set_weights(conn: psycopg.Connection[Any], pop: float, div: float, fresh: float) -> None:
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
            conn.execute(q("plain_ann_settings"))
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
            "recall_at_20": mean(f["recall"]),
            "p50_ms": percentile_ms(f["lat"], 50),
            "p99_ms": percentile_ms(f["lat"], 99),
            "queries": len(f["lat"]),
            "fewer_than_k": int(sum(f["short"])),
        }

    return {
        "recall_at_20": mean(recalls),
        "recall_min": round(float(np.min(recalls)), 4) if recalls else None,
        "recall_users_below_0_5": int(sum(r < 0.5 for r in recalls)),
        "recall_queries": len(recalls),
        "hnsw_recall_at_20_ef40": mean(plain40),
        "exact_scan_ms": percentile_ms(scans, 50),
        "exact_scan_p99_ms": percentile_ms(scans, 99),
        "filtered": summary("main", '{"category": <user\'s main interest>}'),
        "filtered_other": summary("other", '{"category": <a category outside it>}'),
    }
