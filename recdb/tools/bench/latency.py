"""rerank() timed per catalog size: sequential (served, vector path, raw HNSW floor),
SELECT 1 for the round-trip floor, concurrent clients, and recall against exact search
(plain and filtered)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from recdb.tools.bench.catalog import Catalog
from recdb.tools.bench.db import connect, q
from recdb.tools.bench.stats import (
    exact_top_k,
    latency_summary,
    mean,
    percentile_ms,
    recall_at_k,
)

WARMUP_CALLS = 50  # per path, before its first timed repetition


def timed_rerank(conn: psycopg.Connection[Any], uid: int, k: int) -> tuple[float, list[tuple]]:
    t0 = time.perf_counter()
    rows = conn.execute(q("rerank"), {"user_id": uid, "k": k}, prepare=True).fetchall()
    return time.perf_counter() - t0, rows


def timed_raw_hnsw(
    conn: psycopg.Connection[Any], vec: np.ndarray, k: int
) -> tuple[float, list[int]]:
    t0 = time.perf_counter()
    rows = conn.execute(q("raw_hnsw"), {"vec": vec, "k": k}, prepare=True).fetchall()
    return time.perf_counter() - t0, [r[0] for r in rows]


def _nothing() -> None:
    return None


@dataclass
class LatencyPath:
    """One way of answering "the top k for this user", timed call by call.

    enter/leave switch settings around each repetition (the vector path turns
    co-visitation off and back on), so paths can be interleaved on one database.
    """

    name: str
    call: Callable[[int], tuple[float, list[int]]]  # user id -> (seconds, item ids)
    enter: Callable[[], None] = field(default=_nothing)
    leave: Callable[[], None] = field(default=_nothing)


def covisit_weight(conn: psycopg.Connection[Any]) -> float:
    return float(conn.execute(q("current_covisit_weight")).fetchone()[0])


def set_covisit_weight(conn: psycopg.Connection[Any], weight: float) -> None:
    conn.execute(q("set_covisit_weight"), {"covisit_weight": weight})


@contextlib.contextmanager
def covisitation_off(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """The vector path inside: covisit_weight = 0, and no content prior or exploration for
    brand-new items (terms the app-side emulation does not have); restored after (errors
    included)."""
    before = covisit_weight(conn)
    prior, share = conn.execute(q("current_new_item_knobs")).fetchone()
    set_covisit_weight(conn, 0.0)
    conn.execute(q("set_new_item_knobs"), {"content_prior_weight": 0.0, "explore_share": 0.0})
    try:
        yield
    finally:
        set_covisit_weight(conn, before)
        conn.execute(
            q("set_new_item_knobs"), {"content_prior_weight": prior, "explore_share": share}
        )


def served_path(conn: psycopg.Connection[Any], k: int) -> LatencyPath:
    """rerank() with the settings as shipped: what applications are served."""
    return LatencyPath("served", lambda uid: _ids(timed_rerank(conn, uid, k)))


def vector_path(conn: psycopg.Connection[Any], k: int) -> LatencyPath:
    """rerank() with co-visitation off: the vector path the recall and app-side figures use."""
    stack = contextlib.ExitStack()

    def enter() -> None:
        stack.enter_context(covisitation_off(conn))

    return LatencyPath(
        "vector", lambda uid: _ids(timed_rerank(conn, uid, k)), enter=enter, leave=stack.close
    )


def raw_hnsw_path(
    conn: psycopg.Connection[Any], vectors: dict[int, np.ndarray], k: int, name: str = "raw_hnsw"
) -> LatencyPath:
    """The bare ANN query on the user's stored vector (conn from raw_connection): the floor
    rerank() cannot go below, as it runs this search and more."""
    return LatencyPath(name, lambda uid: timed_raw_hnsw(conn, vectors[uid], k))


def _ids(timed: tuple[float, list[tuple]]) -> tuple[float, list[int]]:
    return timed[0], [r[1] for r in timed[1]]


@contextlib.contextmanager
def raw_connection(
    url: str, ef_search: int, exact: bool = False
) -> Iterator[psycopg.Connection[Any]]:
    """A connection for raw_hnsw_path with the hnsw settings rerank() uses (ef_search,
    relaxed iterative scan) and sequential scans off, so the planner keeps the HNSW index
    on small catalogs too; exact=True turns index scans off instead: the exact floor."""
    with connect(url, "raw exact" if exact else "raw hnsw") as conn:
        conn.execute(q("raw_hnsw_settings"), {"ef_search": ef_search})
        if exact:
            conn.execute(q("exact_scan_settings"))
        yield conn


def raw_plan_uses_index(conn: psycopg.Connection[Any], vec: np.ndarray, k: int) -> bool:
    """Whether the raw query runs on the HNSW index (a small table may be scanned instead)."""
    plan = "\n".join(r[0] for r in conn.execute(q("explain_raw_hnsw"), {"vec": vec, "k": k}))
    return "Index Scan" in plan


def stored_user_vectors(
    conn: psycopg.Connection[Any], users: Sequence[int]
) -> dict[int, np.ndarray]:
    rows = conn.execute(q("stored_user_vectors"), {"ids": list(users)}).fetchall()
    return {uid: np.asarray(vec, dtype=np.float32) for uid, vec in rows}


def interleaved_latency(
    paths: Sequence[LatencyPath],
    users: Sequence[int],
    n: int,
    repeats: int,
    progress: bool,
    label: str,
) -> tuple[dict[str, list[list[float]]], dict[str, dict[int, list[int]]]]:
    """Each path timed `repeats` times over the same n calls (same users, same order),
    interleaved: repetition 1 of every path, then repetition 2, and so on.

    Drift in machine load then hits every path alike, so their ratios compare like with
    like. Returns per path the seconds of each repetition and the last items per user.
    """
    from tqdm import tqdm

    lat: dict[str, list[list[float]]] = {p.name: [] for p in paths}
    results: dict[str, dict[int, list[int]]] = {p.name: {} for p in paths}
    names = "/".join(p.name for p in paths)
    with tqdm(
        total=repeats * len(paths) * n,
        desc=f"{label} {names} x{repeats}",
        disable=not progress,
        leave=False,
    ) as bar:
        for rep in range(repeats):
            for path in paths:
                path.enter()
                try:
                    if rep == 0:
                        for uid in users[: min(WARMUP_CALLS, len(users))]:
                            path.call(uid)
                    xs = []
                    for i in range(n):
                        uid = users[i % len(users)]
                        dt, ids = path.call(uid)
                        xs.append(dt)
                        results[path.name][uid] = ids
                    bar.update(n)
                finally:
                    path.leave()
                lat[path.name].append(xs)
    return lat, results


# result key prefix per sequential path: "served" keeps the historical rerank_* keys
PATH_PREFIX = {"served": "rerank", "vector": "vector", "raw_hnsw": "raw_hnsw", "exact": "exact"}


def latency_figures(lat: dict[str, list[list[float]]]) -> dict[str, Any]:
    """p50/p95/p99 per path (median over repetitions), calls, and each repetition's figures."""
    out: dict[str, Any] = {}
    for name, reps in lat.items():
        prefix = PATH_PREFIX.get(name, name)
        out.update(latency_summary(reps, prefix))
        out[f"{prefix}_queries"] = sum(len(r) for r in reps)
    out["repeats"] = max((len(r) for r in lat.values()), default=0)
    out["latency_by_repetition_ms"] = {
        name: [[percentile_ms(r, p) for p in (50, 95, 99)] for r in reps]
        for name, reps in lat.items()
    }
    return out


def select1_latency(conn: psycopg.Connection[Any], n: int = 1000) -> list[float]:
    """SELECT 1 round trips: the floor any one-statement call pays on this connection."""
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.execute(q("select1"), prepare=True).fetchone()
        lat.append(time.perf_counter() - t0)
    return lat


def _concurrent(
    url: str,
    call: Callable[[psycopg.Connection[Any], random.Random], None],
    clients: int,
    duration: float,
    seed: int,
) -> dict[str, float | int | None]:
    """`clients` threads, one connection each, timing `call` for `duration` seconds."""
    barrier = threading.Barrier(clients + 1)
    lats: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    stop_at = [0.0]

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        try:
            with connect(url, f"client {i}") as conn:
                for _ in range(20):
                    call(conn, rng)
                barrier.wait()
                out = lats[i]
                while time.perf_counter() < stop_at[0] and len(out) < 200_000:
                    t0 = time.perf_counter()
                    call(conn, rng)
                    out.append(time.perf_counter() - t0)
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


def concurrent_latency(
    url: str, users: Sequence[int], k: int, clients: int, duration: float, seed: int
) -> dict[str, float | int | None]:
    """`clients` threads, one connection each, calling rerank() for `duration` seconds."""

    def call(conn: psycopg.Connection[Any], rng: random.Random) -> None:
        timed_rerank(conn, rng.choice(users), k)

    return _concurrent(url, call, clients, duration, seed)


def concurrent_floor(
    url: str, call_ms: float, clients: Sequence[int], duration: float, seed: int
) -> dict[str, Any]:
    """The same concurrency figures for a query that is nothing but CPU in one backend
    (counting a generate_series), sized to take `call_ms` alone: what N clients cost on
    this machine's cores whatever the query does, the floor of rerank()'s ratio."""
    spin = q("cpu_spin")
    n = 50_000
    with connect(url, "floor") as conn:
        for _ in range(5):
            conn.execute(spin, {"n": n}, prepare=True).fetchone()
        for _step in range(3):  # the time is not quite linear in n: size, time, re-size
            took = []
            for _ in range(20):
                t0 = time.perf_counter()
                conn.execute(spin, {"n": n}, prepare=True).fetchone()
                took.append(time.perf_counter() - t0)
            n = max(1000, round(n * call_ms / (1000 * float(np.median(took)))))

    def call(conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute(spin, {"n": n}, prepare=True).fetchone()

    out: dict[str, Any] = {"rows_counted": n, "sized_to_ms": round(call_ms, 3)}
    for c in clients:
        out[str(c)] = _concurrent(url, call, c, duration, seed)
    return out


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

    Run on the vector path with popularity_weight = diversity_penalty = freshness_weight
    = 0 (and covisit_weight = 0) so rerank()'s order is pure cosine similarity: any
    difference from the exact top k is then the approximate (HNSW) candidate search.
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
