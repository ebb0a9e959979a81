"""Orchestration: one catalog size (load, encode, time), ML-100K, then the whole bench."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from recdb.db import scratch
from recdb.tools.bench import data as bd
from recdb.tools.bench.appside import (
    APP_ROUND_TRIPS,
    app_context,
    app_side_latency,
    effective_ef_search,
    modelled_ratios,
    prepare_app_connection,
)
from recdb.tools.bench.catalog import (
    Catalog,
    Histories,
    build_catalog,
    load_catalog,
    load_events,
    make_histories,
)
from recdb.tools.bench.config import ML100K, BenchConfig
from recdb.tools.bench.db import connect, is_superuser, q
from recdb.tools.bench.freshness import freshness
from recdb.tools.bench.ingest import ingest
from recdb.tools.bench.latency import (
    concurrent_floor,
    concurrent_latency,
    covisit_weight,
    covisitation_off,
    interleaved_latency,
    latency_figures,
    raw_connection,
    raw_hnsw_path,
    raw_plan_uses_index,
    recall_and_exact,
    select1_latency,
    served_path,
    set_weights,
    stored_user_vectors,
    vector_path,
)
from recdb.tools.bench.machine import end_of_run, machine_info, server_info
from recdb.tools.bench.ml100k import bench_ml100k
from recdb.tools.bench.report import targets
from recdb.tools.bench.stats import percentile_ms
from recdb.tools.bench.workers import (
    Encoders,
    run_worker_once,
    worker_items,
    worker_sequence_users,
)
from recdb.worker.maintenance import run_jobs

log = logging.getLogger(__name__)


def bench_size(
    url: str, cat: Catalog, n: int, cfg: BenchConfig, encoders: Encoders, deadline: float
) -> tuple[dict[str, Any], Histories]:
    from tqdm import tqdm

    label = f"[{n} items]"
    out: dict[str, Any] = {}
    with connect(url, "load") as conn:
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

    with connect(url, "measure") as conn:
        # Popularity and co-visitation neighbours as a running worker keeps them: the
        # served figures below are rerank() as shipped, co-visitation included.
        out["maintenance"] = run_jobs(conn, full=True)
        conn.execute(q("analyze"))
        if is_superuser(conn):
            conn.execute(q("checkpoint"))  # no checkpoint of the load lands inside the timings
        users = [r[0] for r in conn.execute(q("bench_users"))]
        rng = random.Random(cfg.seed + n)
        rng.shuffle(users)
        ctx = app_context(conn)
        out["settings"] = {
            "popularity_weight": ctx.popularity_weight,
            "diversity_penalty": ctx.diversity_penalty,
            "freshness_weight": ctx.freshness_weight,
            "covisit_weight": covisit_weight(conn),
            "candidate_factor": ctx.candidate_factor,
            "ef_search_setting": ctx.ef_search,
            "k": cfg.k,
        }
        out["ef_search"] = effective_ef_search(ctx, cfg.k)
        vectors = stored_user_vectors(conn, users)

        # served (shipped settings), vector (co-visitation off), raw HNSW (the floor):
        # the same users in the same order, repetitions interleaved.
        with raw_connection(url, out["ef_search"]) as raw:
            out["raw_hnsw_index_scan"] = raw_plan_uses_index(raw, vectors[users[0]], cfg.k)
            seq, results = interleaved_latency(
                [
                    served_path(conn, cfg.k),
                    vector_path(conn, cfg.k),
                    raw_hnsw_path(raw, vectors, cfg.k),
                ],
                users,
                cfg.queries,
                cfg.repeats,
                cfg.progress,
                label,
            )
        out.update(latency_figures(seq))
        lat = [x for rep in seq["served"] for x in rep]
        out["rerank_mean_ms"] = round(float(np.mean(lat)) * 1000, 3)
        out["served_over_raw_hnsw_p99"] = _ratio(out["rerank_p99_ms"], out["raw_hnsw_p99_ms"])
        out["served_over_vector_p99"] = _ratio(out["rerank_p99_ms"], out["vector_p99_ms"])
        one = select1_latency(conn)
        out["select1_ms"] = out["select1_p50_ms"] = percentile_ms(one, 50)
        out["select1_p95_ms"] = percentile_ms(one, 95)
        out["select1_p99_ms"] = percentile_ms(one, 99)

        # The app-side emulation ranks by vectors and priors only: it is compared with the
        # vector path (co-visitation off), in latency and in the ranking it returns.
        with covisitation_off(conn), connect(url, "app-side") as app:
            prepare_app_connection(app, ctx, cfg.k)
            out.update(
                app_side_latency(
                    app,
                    ctx,
                    users[: cfg.app_queries],
                    cfg.k,
                    results["vector"],
                    cfg.progress,
                    label,
                )
            )
        out["app_side_ratio"] = _ratio(out["app_side_p50_ms"], out["vector_p50_ms"])
        out["app_side_ratio_modelled"] = modelled_ratios(
            out["vector_p50_ms"], out["app_side_p50_ms"], out["select1_ms"], APP_ROUND_TRIPS
        )
        out["app_side_note"] = (
            "app-side emulation vs rerank() on the vector path (covisit_weight = 0): the "
            "emulation has no co-visitation term; ratio = app-side p50 / vector p50"
        )

        with covisitation_off(conn):
            set_weights(conn, 0.0, 0.0, 0.0)
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
                set_weights(
                    conn, ctx.popularity_weight, ctx.diversity_penalty, ctx.freshness_weight
                )
        out["recall_note"] = (
            "rerank() on the vector path (covisit_weight = popularity_weight = "
            "diversity_penalty = freshness_weight = 0) vs numpy exact cosine top-20 with "
            "the same seen-exclusion and availability (and filter) restrictions"
        )

    concurrent: dict[str, Any] = {}
    for c in cfg.clients:
        if time.monotonic() > deadline:
            break
        concurrent[str(c)] = concurrent_latency(url, users, cfg.k, c, cfg.duration, cfg.seed)
        log.info("%s %d clients: %s", label, c, concurrent[str(c)])
    out["concurrent"] = concurrent
    if concurrent and out.get("rerank_p50_ms") and time.monotonic() <= deadline:
        out["concurrent_floor"] = concurrent_floor(
            url, out["rerank_p50_ms"], cfg.clients, cfg.duration, cfg.seed
        )
        log.info("%s CPU floor: %s", label, out["concurrent_floor"])
    qps = [v["qps"] for v in concurrent.values() if v.get("qps")]
    seq_qps = round(len(lat) / sum(lat), 1) if lat else None
    out["throughput_qps"] = max([*qps, seq_qps or 0]) or None
    out["sequential_qps"] = seq_qps
    return out, h


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


WORKER_METHOD = (
    "Worker.run(once=True) draining the queue (user_batch_size 500, "
    "batch_size 64, mean user encoder; sequence_*: every user again through a sequence "
    "model of the shipped shape); *_per_s counts batches after the first (steady "
    "state), *_end_to_end the whole drain incl. connect and a popularity refresh"
)


def _worker_figures(
    url: str, cat: Catalog, n: int, last: dict[str, Any], cfg: BenchConfig, encoders: Encoders
) -> dict[str, Any]:
    """Users/s (from the last size's drain), items/s and sequence-encoder users/s."""
    log.info("worker: encoding %d new items", cfg.new_items)
    items = worker_items(url, cat, n, cfg, encoders)
    log.info("worker: re-encoding every user with a sequence model")
    seq = worker_sequence_users(url, encoders, cfg)
    return {
        "users_per_s": last["worker_users_per_s"],
        "users_per_s_end_to_end": last["worker_users_per_s_end_to_end"],
        "users_encoded": last["worker_users_encoded"],
        "items_per_s": items["items_per_s"],
        "items_per_s_end_to_end": items["items_per_s_end_to_end"],
        "items_encoded": items["items_encoded"],
        "items_device": items["device"],
        **seq,
        "at_catalog_size": n,
        "method": WORKER_METHOD,
    }


def _config_summary(cfg: BenchConfig, sizes: list[int | str]) -> dict[str, Any]:
    return {
        "sizes": sizes,
        "users": cfg.users,
        "clients": cfg.clients,
        "duration_s": cfg.duration,
        "queries": cfg.queries,
        "repeats": cfg.repeats,
        "class_queries": cfg.class_queries,
        "recall_queries": cfg.recall_queries,
        "app_queries": cfg.app_queries,
        "k": cfg.k,
        "seed": cfg.seed,
        "event_rates": sorted(set(cfg.event_rates)),
        "freshness_duration_s": cfg.freshness_duration,
    }


def run_bench(
    cfg: BenchConfig, text_encoder_factory: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """The whole bench; returns the JSON-ready result. text_encoder_factory injects an
    encoder (tests use a tiny random one); by default the packaged MiniLM is used.

    The ranking settings stay as shipped (co-visitation on): the headline rerank_* figures
    are what applications are served; the vector path and the raw HNSW query are timed
    beside them, and recall and the app-side emulation use the vector path.
    """
    from recdb.db import database_url

    started = time.perf_counter()
    deadline = time.monotonic() + cfg.time_limit
    sizes = sorted({int(s) for s in cfg.sizes if s != ML100K})
    named = [ML100K] if ML100K in cfg.sizes else []
    encoders = Encoders(text_encoder_factory, cfg.device)
    admin = database_url(cfg.admin_url)
    result: dict[str, Any] = {"sizes": {}}
    result["machine"] = machine_info()
    result["covisit"] = (
        "as shipped: rerank_* / served figures include co-visitation; vector_* and recall "
        "with covisit_weight = 0; raw_hnsw_* the bare ANN query"
    )
    if named:
        log.info("%s: MovieLens-100K by user class", ML100K)
        result["sizes"][ML100K] = bench_ml100k(admin, cfg, encoders, deadline, result["machine"])
    if sizes:
        _bench_catalog(admin, sizes, cfg, encoders, deadline, result)
    result["targets"] = targets(result)
    result["config"] = _config_summary(cfg, [*named, *sizes])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["machine"].update(end_of_run())
    return result


def _bench_catalog(
    admin: str,
    sizes: list[int],
    cfg: BenchConfig,
    encoders: Encoders,
    deadline: float,
    result: dict[str, Any],
) -> None:
    """The synthetic catalog sizes, then ingest, freshness and the worker on the largest."""
    from recdb.db import schema

    cat = build_catalog(max(sizes), cfg.seed, encoders, encoders.model_name, cfg)
    dim = int(cat.vectors.shape[1])
    url = scratch.recreate(admin, cfg.dbname)
    try:
        schema.upgrade(url, embedding_dim=dim)
        result["machine"].update(server_info(url))
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
            "freshness: %s events/s for %.0fs each with a worker",
            ", ".join(f"{r:g}" for r in sorted(set(cfg.event_rates))),
            cfg.freshness_duration,
        )
        result["freshness"] = freshness(url, cat, n, last_h, cfg, encoders)
        result["worker"] = _worker_figures(url, cat, n, result["sizes"][str(n)], cfg, encoders)
    finally:
        if not cfg.keep:
            scratch.drop(admin, cfg.dbname)
