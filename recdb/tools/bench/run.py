"""Orchestration: one catalog size (load, encode, time), then the whole bench."""

from __future__ import annotations

import logging
import os
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
from recdb.tools.bench.config import BenchConfig
from recdb.tools.bench.db import connect, is_superuser, q
from recdb.tools.bench.freshness import freshness
from recdb.tools.bench.ingest import ingest
from recdb.tools.bench.latency import (
    concurrent_latency,
    recall_and_exact,
    select1_latency,
    sequential_latency,
    set_weights,
)
from recdb.tools.bench.machine import machine_info
from recdb.tools.bench.report import targets
from recdb.tools.bench.stats import percentile_ms
from recdb.tools.bench.workers import (
    Encoders,
    run_worker_once,
    worker_items,
    worker_sequence_users,
)

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
        conn.execute(q("refresh_item_popularity"))
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

        with connect(url, "app-side") as app:
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
            set_weights(conn, ctx.popularity_weight, ctx.diversity_penalty, ctx.freshness_weight)
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


def _config_summary(cfg: BenchConfig, sizes: list[int]) -> dict[str, Any]:
    return {
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


def run_bench(
    cfg: BenchConfig, text_encoder_factory: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """The whole bench; returns the JSON-ready result. text_encoder_factory injects an
    encoder (tests use a tiny random one); by default the packaged MiniLM is used."""
    from recdb.db import database_url, schema

    started = time.perf_counter()
    deadline = time.monotonic() + cfg.time_limit
    sizes = sorted(set(cfg.sizes))
    encoders = Encoders(text_encoder_factory, cfg.device)
    cat = build_catalog(max(sizes), cfg.seed, encoders, encoders.model_name, cfg)
    dim = int(cat.vectors.shape[1])
    admin = database_url(cfg.admin_url)
    url = scratch.recreate(admin, cfg.dbname)
    result: dict[str, Any] = {"sizes": {}}
    try:
        schema.upgrade(url, embedding_dim=dim)
        # The app-side emulation and the recall reference rank by vector similarity and
        # priors; the co-visitation term is switched off so all three compute the same thing.
        with connect(url, "setup") as conn:
            conn.execute(q("disable_covisitation"))
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
        result["worker"] = _worker_figures(url, cat, n, result["sizes"][str(n)], cfg, encoders)
    finally:
        if not cfg.keep:
            scratch.drop(admin, cfg.dbname)
    result["targets"] = targets(result)
    result["config"] = _config_summary(cfg, sizes)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    if "machine" in result:
        result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result
