"""The `ml100k` bench size: rerank() on the real MovieLens-100K demo data, timed per user
class (light, median, heavy history), in a database of its own.

Synthetic histories are all alike in length; real ones are not, and a heavy user's
seen-list is what makes the HNSW scan walk further. The classes show that cost.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any

import numpy as np

from recdb.db import scratch
from recdb.tools.bench.appside import app_context, effective_ef_search
from recdb.tools.bench.config import (
    FRESH_EVENTS,
    FRESH_USERS,
    HEAVY_MIN_EVENTS,
    LIGHT_MAX_EVENTS,
    MEDIAN_SHARE,
    ML100K,
    USER_CLASSES,
    BenchConfig,
)
from recdb.tools.bench.db import connect, is_superuser, q
from recdb.tools.bench.latency import (
    LatencyPath,
    concurrent_latency,
    interleaved_latency,
    latency_figures,
    raw_connection,
    raw_hnsw_path,
    raw_plan_uses_index,
    served_path,
    stored_user_vectors,
    vector_path,
)
from recdb.tools.bench.machine import server_info
from recdb.tools.bench.workers import Encoders, run_worker_once
from recdb.worker.maintenance import run_jobs

log = logging.getLogger(__name__)


def split_classes(counts: dict[int, int]) -> dict[str, list[int]]:
    """Users by events per user: light (<= LIGHT_MAX_EVENTS), median (the MEDIAN_SHARE of
    users whose count is closest to the median count), heavy (>= HEAVY_MIN_EVENTS).

    A user may be in two classes when the data is that narrow; each list is sorted.
    """
    if not counts:
        return {c: [] for c in USER_CLASSES}
    med = float(np.median(list(counts.values())))
    n_median = max(1, math.ceil(MEDIAN_SHARE * len(counts)))
    nearest = sorted(counts, key=lambda u: (abs(counts[u] - med), u))[:n_median]
    return {
        "light": sorted(u for u, c in counts.items() if c <= LIGHT_MAX_EVENTS),
        "median": sorted(nearest),
        "heavy": sorted(u for u, c in counts.items() if c >= HEAVY_MIN_EVENTS),
    }


def _load_and_encode(url: str, cfg: BenchConfig, encoders: Encoders) -> dict[str, Any]:
    """MovieLens-100K loaded as the demo loads it, then encoded by the worker (items and
    users) exactly as the synthetic sizes are."""
    from recdb.datasets.loader import load_movielens

    with connect(url, "load") as conn:
        counts = load_movielens(conn, progress=cfg.progress)
    run = run_worker_once(url, encoders, cfg.device)
    return {
        "items": counts.get("items"),
        "events": counts.get("events"),
        "users": counts.get("users"),
        "load_s": counts.get("seconds"),
        "worker_items_encoded": run.stats.items_encoded,
        "worker_users_encoded": run.stats.users_encoded,
        "worker_seconds": round(run.stats.seconds, 3),
    }


def _time_classes(url: str, cfg: BenchConfig, label: str) -> tuple[dict[str, Any], list[int]]:
    """Per class: served / vector / raw HNSW (interleaved, cfg.repeats) and the exact floor."""
    out: dict[str, Any] = {"classes": {}}
    with connect(url, "measure") as conn:
        # Popularity and co-visitation neighbours as a running worker keeps them.
        out["maintenance"] = run_jobs(conn, full=True)
        conn.execute(q("analyze"))
        if is_superuser(conn):
            conn.execute(q("checkpoint"))
        counts = {int(u): int(c) for u, c in conn.execute(q("bench_user_event_counts"))}
        classes = split_classes(counts)
        ctx = app_context(conn)
        ef = effective_ef_search(ctx, cfg.k)
        out["ef_search"] = ef
        vectors = stored_user_vectors(conn, list(counts))
        rng = random.Random(cfg.seed)
        with raw_connection(url, ef) as raw, raw_connection(url, ef, exact=True) as exact:
            if vectors:
                out["raw_hnsw_index_scan"] = raw_plan_uses_index(
                    raw, next(iter(vectors.values())), cfg.k
                )
            for cls in USER_CLASSES:
                users = [u for u in classes[cls] if u in vectors]
                rng.shuffle(users)
                events = [counts[u] for u in users]
                fig: dict[str, Any] = {
                    "users": len(users),
                    "events_min": min(events, default=None),
                    "events_max": max(events, default=None),
                }
                if users:
                    paths = [
                        served_path(conn, cfg.k),
                        vector_path(conn, cfg.k),
                        raw_hnsw_path(raw, vectors, cfg.k),
                    ]
                    lat, _ = interleaved_latency(
                        paths, users, cfg.class_queries, cfg.repeats, cfg.progress, f"{label} {cls}"
                    )
                    floor, _ = interleaved_latency(
                        [raw_hnsw_path(exact, vectors, cfg.k, name="exact")],
                        users,
                        cfg.class_queries,
                        1,
                        cfg.progress,
                        f"{label} {cls}",
                    )
                    fig.update(latency_figures(lat))
                    exact_fig = latency_figures(floor)
                    fig["exact_p50_ms"] = exact_fig["exact_p50_ms"]
                    fig["exact_p99_ms"] = exact_fig["exact_p99_ms"]
                    fig["calls_per_user"] = round(fig["rerank_queries"] / len(users), 1)
                out["classes"][cls] = fig
                log.info(
                    "%s %s: %s", label, cls, {k: v for k, v in fig.items() if k.endswith("p99_ms")}
                )
    out["class_definition"] = (
        f"light: <= {LIGHT_MAX_EVENTS} events; median: the {MEDIAN_SHARE:.0%} of users whose "
        f"event count is closest to the median; heavy: >= {HEAVY_MIN_EVENTS} events"
    )
    return out, sorted(vectors)


def _time_fresh(
    url: str, cfg: BenchConfig, users: list[int], label: str, dim: int
) -> dict[str, Any]:
    """The zero-lag fold's cost: served rerank() for the same users, each with
    FRESH_EVENTS recent events, in three states switched around each repetition and
    interleaved (latency.interleaved_latency), so load drift hits them alike:

    - none: the users' stored snapshot covers those events, as after the worker re-encoded
      them: nothing to fold;
    - mean_fold: it does not: they are folded with the mean encoder's algebra;
    - model_fold: the same with a trained model's fold operator (recdb.sequence.fold)
      served (its content prior too, so that only the fold differs).

    The history, seen-list and votes are the same in all three: the difference is the
    fold. The users' rows and the serving state are restored afterwards; the events and
    the model stay."""
    import numpy as np

    from recdb.sequence import TrainConfig, TrainedModel, registry
    from recdb.sequence.fold import POSITIONS

    sample = random.Random(cfg.seed + 1).sample(users, min(FRESH_USERS, len(users)))
    out: dict[str, Any] = {"users": len(sample), "fresh_events": FRESH_EVENTS}
    with connect(url, "fresh") as conn:
        stored = conn.execute(q("bench_fold_state"), {"users": sample}).fetchall()
        conn.execute(q("bench_fresh_events"), {"users": sample, "n": FRESH_EVENTS})
        conn.commit()
        covering = conn.execute(q("bench_fold_state_covering"), {"users": sample}).fetchall()
        model = TrainedModel.untrained(TrainConfig(device="cpu"), dim, ["click", "rate"])
        model.fold = np.ones(1 + 2 * POSITIONS, dtype=np.float32)
        with conn.transaction():
            model_id = registry.save(conn, model, 0)
            conn.execute(q("bench_install_next"), {"model_id": model_id})
        conn.commit()

        def set_state(rows: list[tuple[Any, ...]], served: int | None) -> None:
            ids, snaps, through = (list(c) for c in zip(*rows, strict=True))
            with conn.transaction():
                conn.execute(
                    q("bench_set_fold_state"), {"users": ids, "snaps": snaps, "through": through}
                )
                conn.execute(
                    q("bench_install_fold"),
                    {
                        "model_id": served,
                        "weights": None if served is None else [float(w) for w in model.fold],
                    },
                )
                conn.execute(q("bench_prior_model"), {"model_id": served})
            conn.commit()

        def state(name: str, rows: list[tuple[Any, ...]], served: int | None) -> LatencyPath:
            path = served_path(conn, cfg.k)
            return LatencyPath(name, path.call, enter=lambda: set_state(rows, served))

        try:
            lat, _ = interleaved_latency(
                [
                    state("none", covering, None),
                    state("mean_fold", stored, None),
                    state("model_fold", stored, model_id),
                ],
                sample, cfg.class_queries, cfg.repeats, cfg.progress, f"{label} fold",
            )  # fmt: skip
        finally:
            set_state(stored, None)
    fig = latency_figures(lat)
    for name in ("none", "mean_fold", "model_fold"):
        out[name] = {f"p{p}": fig.get(f"{name}_p{p}_ms") for p in (50, 95, 99)}
    for name in ("mean_fold", "model_fold"):
        out[f"{name}_p99_over_none_ms"] = round(out[name]["p99"] - out["none"]["p99"], 3)
    out["repeats"] = fig["repeats"]
    log.info("%s fold cost: %s", label, out)
    return out


def bench_ml100k(
    admin: str, cfg: BenchConfig, encoders: Encoders, deadline: float, machine: dict[str, Any]
) -> dict[str, Any]:
    """Load, encode and time ML-100K in `<dbname>_ml100k`; dropped after unless cfg.keep."""
    label = f"[{ML100K}]"
    dbname = f"{cfg.dbname}_{ML100K}"
    started = time.perf_counter()
    url = scratch.recreate(admin, dbname)
    try:
        from recdb.db import schema

        schema.upgrade(url, embedding_dim=int(encoders().dim))
        machine.update(server_info(url))
        out = _load_and_encode(url, cfg, encoders)
        log.info("%s loaded and encoded: %s", label, out)
        timed, users = _time_classes(url, cfg, label)
        out.update(timed)
        concurrent: dict[str, Any] = {}
        for c in cfg.clients:
            if time.monotonic() > deadline or not users:
                break
            concurrent[str(c)] = concurrent_latency(url, users, cfg.k, c, cfg.duration, cfg.seed)
        out["concurrent"] = concurrent
        if users and time.monotonic() < deadline:  # last: it adds events and a model
            out["fresh_fold"] = _time_fresh(url, cfg, users, label, int(encoders().dim))
    finally:
        if not cfg.keep:
            scratch.drop(admin, dbname)
    out["database"] = dbname
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out
