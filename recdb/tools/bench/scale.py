"""`recdb bench --scale`: the costs of a shop-sized log, step by step (10^6 -> 10^7
events by default, items and users a tenth of the events each).

Each step runs in a fresh database:
1. the catalogue COPYed with its vectors, the HNSW index built in bulk;
2. the log (recdb.tools.bench.workload) exported to Parquet and loaded with
   `recdb import` (the adopter's path: staged, checked, ledgered, set-based queueing);
3. maintenance from scratch: popularity, then the co-visitation rebuild;
4. the worker drains a bounded sample of users (the users/s figure; the sampled users per
   class are among them so rerank() serves them a vector);
5. a live minute: the log's newest events arrive as single-row INSERTs while a worker
   runs; then the incremental maintenance of what they changed is timed;
6. rerank() as shipped for light / median / heavy users: plain, with a category filter,
   with 500 candidates, beside the raw HNSW query (the floor);
7. disk per 10^6 events, and the working set every rerank() call reads.

The figures are per step; `targets` compares the largest step with the smallest.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from recdb.db import scratch
from recdb.db.sqlfiles import query
from recdb.tools.bench.appside import app_context, effective_ef_search
from recdb.tools.bench.catalog import build_catalog, load_catalog
from recdb.tools.bench.config import KINDS, USER_CLASSES, BenchConfig
from recdb.tools.bench.db import connect, is_superuser, q, wait_for_empty_user_queue
from recdb.tools.bench.latency import (
    LatencyPath,
    interleaved_latency,
    latency_figures,
    raw_connection,
    raw_hnsw_path,
    served_path,
    stored_user_vectors,
)
from recdb.tools.bench.machine import end_of_run, machine_info, server_info
from recdb.tools.bench.ml100k import split_classes
from recdb.tools.bench.workers import Encoders, WorkerHandle, run_worker_once
from recdb.tools.bench.workload import Workload, shop_events, write_parquet

log = logging.getLogger(__name__)

QUERIES = "queries/bench_scale.sql"
EVENTS_PER_ITEM = 10  # items = users = events / 10 at every step
CANDIDATES = 500  # rerank(..., candidates => ...) size
ROWWISE_SAMPLE = 500  # items rewritten through the live index, for the old path's cost


def sq(name: str) -> str:
    return query(QUERIES, name)


@dataclass
class ScaleConfig:
    """What `recdb bench --scale` runs; the defaults are the documented run."""

    steps: list[int] = field(default_factory=lambda: [1_000_000, 3_000_000, 10_000_000])
    worker_users: int = 20_000  # users drained for the users/s figure (plus the samples)
    live_events: int = 3_000  # the live minute's single-row INSERTs
    class_users: int = 200  # users sampled per class
    class_queries: int = 300  # calls per class, per path and repetition
    repeats: int = 3
    k: int = 20
    seed: int = 0
    admin_url: str | None = None
    dbname: str = "recdb_bench_scale"
    keep: bool = False
    device: str = "cpu"
    worker_mode: str = "process"
    progress: bool = True
    cache: bool = True


def run_scale(cfg: ScaleConfig, text_encoder_factory: Any = None) -> dict[str, Any]:
    """Every step; the JSON-ready result (with `targets`)."""
    from recdb.db import database_url
    from recdb.tools.bench.scale_report import scale_targets

    started = time.perf_counter()
    encoders = Encoders(text_encoder_factory, cfg.device)
    admin = database_url(cfg.admin_url)
    steps = sorted(set(cfg.steps))
    n_max = max(1, steps[-1] // EVENTS_PER_ITEM)
    bench_cfg = BenchConfig(seed=cfg.seed, progress=cfg.progress, cache=cfg.cache)
    cat = build_catalog(n_max, cfg.seed, encoders, encoders.model_name, bench_cfg)
    result: dict[str, Any] = {
        "scale": {},
        "machine": machine_info(),
        "vectors": cat.description,
        "workload": _workload_description(),
    }
    for n_events in steps:
        log.info("scale: %s events", f"{n_events:,}")
        url = scratch.recreate(admin, cfg.dbname)
        try:
            result["scale"][str(n_events)] = _step(url, cat, n_events, cfg, encoders)
            if "postgres" not in result["machine"]:
                result["machine"].update(server_info(url))
        finally:
            if not cfg.keep or n_events != steps[-1]:
                scratch.drop(admin, cfg.dbname)
    result["config"] = {
        "steps": steps,
        "events_per_item": EVENTS_PER_ITEM,
        "worker_users": cfg.worker_users,
        "live_events": cfg.live_events,
        "class_users": cfg.class_users,
        "class_queries": cfg.class_queries,
        "repeats": cfg.repeats,
        "candidates": CANDIDATES,
        "k": cfg.k,
        "seed": cfg.seed,
    }
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["machine"].update(end_of_run())
    result["targets"] = scale_targets(result)
    return result


def _workload_description() -> dict[str, Any]:
    from recdb.tools.bench import workload as wl

    return {
        "zipf": wl.ZIPF,
        "activity_alpha": wl.ACTIVITY_ALPHA,
        "heavy_events": wl.HEAVY_EVENTS,
        "session_mean": wl.SESSION_MEAN,
        "companion_p": wl.COMPANION_P,
        "explore_p": wl.EXPLORE_P,
        "days": wl.DAYS,
        "users_per_event": 1 / EVENTS_PER_ITEM,
        "items_per_event": 1 / EVENTS_PER_ITEM,
    }


def _step(
    url: str, cat: Any, n_events: int, cfg: ScaleConfig, encoders: Encoders
) -> dict[str, Any]:
    from tqdm import tqdm

    from recdb.db import schema

    n_items = n_users = max(1, n_events // EVENTS_PER_ITEM)
    label = f"[scale {n_events:,}]"
    out: dict[str, Any] = {"events": n_events, "items": n_items, "users": n_users}
    schema.upgrade(url, embedding_dim=int(cat.vectors.shape[1]))

    # 1. the catalogue
    with (
        connect(url, "scale load") as conn,
        tqdm(
            total=n_items, desc=f"{label} COPY items", disable=not cfg.progress, leave=False
        ) as bar,
    ):
        out.update(load_catalog(conn, cat, n_items, bar))

    # 2. the log, through `recdb import`; its newest live_events are held back
    live_n = min(cfg.live_events, n_events // 10)
    t0 = time.perf_counter()
    w = shop_events(n_events, n_users, cat.categories[:n_items], cfg.seed, time.time())
    out["generate_s"] = round(time.perf_counter() - t0, 2)
    bulk, live = w.take(slice(0, n_events - live_n)), w.take(slice(n_events - live_n, None))
    out.update(_import(url, bulk, cfg, label))

    # 3. maintenance from scratch (what `recdb refresh --full` does)
    with connect(url, "scale maintenance", autocommit=False) as conn:
        out["maintenance_full"] = _maintenance(conn, full=True)

    # 4. the worker: a bounded drain, the class samples included
    counts = w.events_per_user(n_users)
    classes = user_classes(counts, cfg.class_users, random.Random(cfg.seed + n_events))
    sampled = sorted({u for us in classes.values() for u in us})
    others = [u for u in _first_users(bulk, cfg.worker_users + len(sampled)) if u not in sampled]
    keep = sampled + others[: cfg.worker_users]
    with connect(url, "scale queue") as conn:
        conn.execute(sq("keep_queued_users"), {"users": keep})
    run = run_worker_once(url, encoders, cfg.device)
    out["worker_users_encoded"] = run.stats.users_encoded
    out["worker_users_per_s"] = run.users_per_s
    out["worker_seconds"] = round(run.stats.seconds, 2)
    with connect(url, "scale sizes") as conn:
        out["sizes_mb"] = _sizes(conn)
    out["disk_mb_per_million_events"] = round(out["sizes_mb"]["database"] / (n_events / 1e6), 1)

    # 5. the live minute, then the incremental maintenance it calls for
    out["live"] = _live(url, live, cfg, encoders, label)

    # 6. rerank() as shipped per user class
    out["classes"] = _time_classes(url, cat, n_items, w, classes, cfg, label)

    # 7. activating a model of the shipped shape over the whole catalogue (last: it
    # resets every user vector)
    out["activation"] = _activation(url, encoders, cfg)
    return out


def _activation(url: str, encoders: Encoders, cfg: ScaleConfig) -> dict[str, Any]:
    """`recdb activate` of an untrained model of the shipped shape (projection costs
    what a trained one costs): each phase's seconds and per 10^5 items, beside the
    row-by-row rewrite through the live index that activation did before (a sample)."""
    from recdb.sequence import TrainConfig, TrainedModel, registry
    from recdb.sequence.activation import activate

    with connect(url, "scale activation") as conn:
        conn.execute(sq("text_vectors_for_all_items"))
        kinds = [r[0] for r in conn.execute(q("event_kind_names"))]
        model = TrainedModel.untrained(TrainConfig(seed=cfg.seed), encoders().dim, kinds)
        model_id = registry.save(conn, model, 0)
        sample = [r[0] for r in conn.execute(sq("encoded_items_sample"), {"n": ROWWISE_SAMPLE})]
    with connect(url, "scale activation", autocommit=False) as conn:
        t0 = time.perf_counter()
        for item_id in sample:  # one statement per row; rolled back after
            conn.execute(sq("rowwise_rewrite"), {"item_id": item_id})
        rowwise = (time.perf_counter() - t0) / max(1, len(sample))
        conn.rollback()
        done = activate(conn, model_id, device=cfg.device, progress=cfg.progress)
    per = 1e5 / max(1, done.staged)
    total = done.stage_s + done.build_s + done.switch_s
    return {
        "items": done.staged,
        "stage_s": round(done.stage_s, 2),
        "build_s": round(done.build_s, 2),
        "switch_s": round(done.switch_s, 2),
        "seconds": round(total, 2),
        "seconds_per_1e5_items": round(total * per, 1),
        "rowwise_ms_per_item": round(rowwise * 1e3, 3),
        "rowwise_seconds_per_1e5_items": round(rowwise * 1e5, 1),
        "rowwise_sample": len(sample),
    }


def user_classes(counts: np.ndarray, per_class: int, rng: random.Random) -> dict[str, list[int]]:
    """Up to per_class user ids of each class of split_classes (the ML-100K definition:
    light, median, heavy); `counts` is indexed uid - 1, users without events left out."""
    uids = np.flatnonzero(counts > 0)
    pools = split_classes(dict(zip((uids + 1).tolist(), counts[uids].tolist(), strict=True)))
    return {c: sorted(rng.sample(pools[c], min(per_class, len(pools[c])))) for c in USER_CLASSES}


def _first_users(w: Workload, n: int) -> list[int]:
    """The first n distinct users of the log (the order the import queued them)."""
    _, first = np.unique(w.users, return_index=True)
    order = w.users[np.sort(first)]
    return [int(u) for u in order[:n]]


def _import(url: str, w: Workload, cfg: ScaleConfig, label: str) -> dict[str, Any]:
    from recdb.importer import ImportSpec, import_file
    from recdb.tools.bench.data import cache_dir

    folder = cache_dir() / "scale"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events_{len(w)}_{cfg.seed}.parquet"
    t0 = time.perf_counter()
    write_parquet(w, str(path))
    export_s = time.perf_counter() - t0
    try:
        with connect(url, "scale import") as conn:
            summary = import_file(conn, path, ImportSpec(target="events"), progress=cfg.progress)
    finally:
        path.unlink(missing_ok=True)
    log.info("%s imported %d events in %.1fs", label, summary.loaded, summary.seconds)
    return {
        "export_parquet_s": round(export_s, 2),
        "import_s": round(summary.seconds, 2),
        "import_events_per_s": round(summary.rows_per_s, 1),
        "imported": summary.loaded,
        "import_rejected": summary.rejected_total,
    }


def _maintenance(conn: psycopg.Connection[Any], *, full: bool) -> dict[str, Any]:
    """One run of every maintenance job (the worker's own run_jobs); wall seconds and
    what each job recorded for itself in recdb.maintenance."""
    from recdb.worker.maintenance import run_jobs

    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    done = run_jobs(conn, full=full, seconds=seconds)
    took = time.perf_counter() - t0
    jobs = {job: {"seconds": s, "rows": done.get(job, 0)} for job, s in seconds.items()}
    return {"seconds": round(took, 3), "rows": done, "jobs": jobs}


def _pair_writes(conn: psycopg.Connection[Any]) -> int:
    """Rows of covisit_pairs written so far, this session's included."""
    conn.execute(sq("flush_statistics"))
    conn.commit()  # the flush happens at the end of the transaction
    n = conn.execute(sq("covisit_pair_writes")).fetchone()
    conn.commit()  # a new statistics snapshot next time
    return int(n[0]) if n else 0


def _sizes(conn: psycopg.Connection[Any]) -> dict[str, float]:
    cur = conn.execute(sq("sizes"))
    names = [d.name for d in cur.description or []]
    row = cur.fetchone()
    return {n: round(float(v) / 2**20, 1) for n, v in zip(names, row, strict=True)}


def _live(
    url: str, live: Workload, cfg: ScaleConfig, encoders: Encoders, label: str
) -> dict[str, Any]:
    """The newest events as an app writes them (single-row INSERTs, one transaction
    each, durable commits) while a worker runs; the catch-up; then the incremental
    maintenance of what they changed."""
    out: dict[str, Any] = {"events": len(live)}
    if not len(live):
        return out
    kinds = [KINDS[k] for k in live.kinds.tolist()]
    users, items = live.users.tolist(), live.items.tolist()
    values = [None if np.isnan(v) else float(v) for v in live.values.tolist()]
    encoders()  # loaded before the clock, as a running worker has it
    with connect(url, "scale live") as conn:
        handle = WorkerHandle(url, cfg.worker_mode, encoders, cfg.device)
        try:
            handle.wait_ready(conn)
            text = sq("scale_insert_event")
            t0 = time.perf_counter()
            for u, i, k, v in zip(users, items, kinds, values, strict=True):
                conn.execute(
                    text, {"user_id": u, "item_id": i, "kind": k, "value": v}, prepare=True
                )
            took = time.perf_counter() - t0
            out["insert_events_per_s"] = round(len(live) / took, 1)
            out["catch_up_s"] = round(wait_for_empty_user_queue(conn, 600.0, 0.05), 3)
        finally:
            handle.stop()
    with connect(url, "scale maintenance", autocommit=False) as conn:
        writes = _pair_writes(conn)
        out["maintenance"] = _maintenance(conn, full=False)
        writes = _pair_writes(conn) - writes
    m = out["maintenance"]["seconds"]
    out["maintenance_s_per_1k_events"] = round(m / (len(live) / 1000), 4)
    # The step's work apart from its time: pair counts written per event (grows with the
    # users' co-visitation sets, not the log) and the time per row written (grows when
    # the co-visitation tables outgrow shared_buffers).
    out["covisit_pair_writes_per_event"] = round(writes / len(live), 1)
    cv = out["maintenance"]["jobs"].get("sync_covisitation", {}).get("seconds")
    if writes and cv is not None:
        out["covisit_us_per_pair_write"] = round(cv * 1e6 / writes, 2)
    log.info("%s live: %s", label, {k: v for k, v in out.items() if k != "maintenance"})
    return out


def _time_classes(
    url: str,
    cat: Any,
    n_items: int,
    w: Workload,
    classes: dict[str, list[int]],
    cfg: ScaleConfig,
    label: str,
) -> dict[str, Any]:
    """Per class: served, filtered (the user's main category), candidates (500), and the
    raw HNSW floor, interleaved over cfg.repeats."""
    out: dict[str, Any] = {}
    counts = w.events_per_user(len(w.interests))
    with connect(url, "scale measure") as conn:
        conn.execute(q("analyze"))
        if is_superuser(conn):
            conn.execute(q("checkpoint"))
        ctx = app_context(conn)
        ef = effective_ef_search(ctx, cfg.k)
        encoded = {
            r[0]
            for r in conn.execute(
                sq("encoded_users"), {"users": [u for us in classes.values() for u in us]}
            )
        }
        with raw_connection(url, ef) as raw:
            for cls in USER_CLASSES:
                users = [u for u in classes[cls] if u in encoded]
                ev = [int(counts[u - 1]) for u in users]
                fig: dict[str, Any] = {
                    "users": len(users),
                    "events_min": min(ev, default=None),
                    "events_max": max(ev, default=None),
                }
                if users:
                    vectors = stored_user_vectors(conn, users)
                    paths = [
                        served_path(conn, cfg.k),
                        _filtered_path(conn, cat, w, cfg.k),
                        _candidates_path(conn, n_items, cfg),
                        raw_hnsw_path(raw, vectors, cfg.k),
                    ]
                    lat, _ = interleaved_latency(
                        paths, users, cfg.class_queries, cfg.repeats, cfg.progress, f"{label} {cls}"
                    )
                    fig.update(latency_figures(lat))
                out[cls] = fig
                log.info(
                    "%s %s: %s", label, cls, {k: v for k, v in fig.items() if k.endswith("p99_ms")}
                )
    return out


def _timed(
    conn: psycopg.Connection[Any], text: str, params: dict[str, Any]
) -> tuple[float, list[int]]:
    t0 = time.perf_counter()
    rows = conn.execute(text, params, prepare=True).fetchall()
    return time.perf_counter() - t0, [r[1] for r in rows]


def _filtered_path(conn: psycopg.Connection[Any], cat: Any, w: Workload, k: int) -> LatencyPath:
    """rerank() filtered to the user's main interest category (attrs->>'category')."""
    text = q("rerank_filtered")
    names = cat.category_names

    def call(uid: int) -> tuple[float, list[int]]:
        f = Jsonb({"category": names[int(w.interests[uid - 1])]})
        return _timed(conn, text, {"user_id": uid, "k": k, "filter": f})

    return LatencyPath("filtered", call)


def _candidates_path(conn: psycopg.Connection[Any], n_items: int, cfg: ScaleConfig) -> LatencyPath:
    """rerank() over CANDIDATES item ids (the same ones per user across repetitions)."""
    text = sq("scale_rerank_candidates")
    per_user: dict[int, list[int]] = {}

    def call(uid: int) -> tuple[float, list[int]]:
        cands = per_user.get(uid)
        if cands is None:
            rng = np.random.default_rng([cfg.seed, uid])
            size = min(CANDIDATES, n_items)
            cands = per_user[uid] = (rng.choice(n_items, size=size, replace=False) + 1).tolist()
        return _timed(conn, text, {"user_id": uid, "k": cfg.k, "candidates": cands})

    return LatencyPath("candidates", call)
