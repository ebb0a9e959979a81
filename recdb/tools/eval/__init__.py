"""`recdb eval`: offline ranking quality of the product itself, through rerank() in SQL.

Protocol (DESIGN.md, Quality): MovieLens-100K, chronological leave-one-out per user (last
interaction = test, second-last = validation), full ranking over the catalogue with the
user's history excluded, HR/NDCG/MRR@10 and catalogue coverage@10. The run owns a fresh
database (dropped and recreated each time) so nothing else can leak into the numbers:

1. migrate, COPY the items, let the real worker encode them;
2. validation phase: COPY every user's training events, encode users, score the
   validation targets (numbers reported under ``valid``, and the only ones to tune on);
3. test phase: add the validation events (history = train + validation), re-encode and
   score the test targets: the headline numbers.

Each user encoder re-encodes all users (``requeue_all_users`` + worker) and is scored by
``SELECT item_id FROM rerank(user, k => 10)``. Baselines from recdb.tools.eval.metrics (popularity,
item-kNN) and rerank()'s own cold-start order run on the same split in the same run.
Everything is deterministic (no clock-dependent scoring: popularity decays from the newest
event), so two runs give the same numbers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from recdb.datasets.movielens import Movie, Rating
from recdb.tools.eval import metrics

log = logging.getLogger(__name__)

_Q = "queries/eval.sql"
K = 10
DEFAULT_DATABASE = "recdb_eval"
COLD_START_USER = -1  # no events ever: rerank() answers with its cold-start order


def default_encoders() -> tuple[str, ...]:
    """Every user encoder the project has (new ones register in recdb.encoders)."""
    from recdb.encoders import USER_ENCODER_NAMES

    return tuple(USER_ENCODER_NAMES)


# Knobs the evaluation sets in its own database before loading anything; every value is
# written into the JSON protocol. Keys: recdb.settings columns, recdb.event_kinds rows.
# "defaults" measures the schema as shipped. "tuned" was chosen on the validation split
# only (mean encoder, ML-100K): the co-visitation term reads each user's whole history
# (covisit_history 1000 instead of 200: val NDCG@10 0.0726 vs 0.0713; covisit_weight 4
# instead of 2 gave 0.0724). "content" is the earlier content-only tuning (no co-visitation:
# every rating counts as interest, popularity prior as strong as similarity, wide pool).
# "encoders" overrides knobs while one user encoder is measured: the trained sequence
# model needs less co-visitation help (validation NDCG@10 by covisit_weight: 0 -> 0.1043,
# 0.25 -> 0.1137, 0.5 -> 0.1122, 1 -> 0.1033, 2 -> 0.0907).
KNOB_PRESETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "tuned": {
        "settings": {"covisit_history": 1000},
        "encoders": {"sequence": {"settings": {"covisit_weight": 0.25}}},
    },
    "content": {
        "settings": {
            "popularity_weight": 2.0,
            "candidate_factor": 50,
            "diversity_penalty": 0.0,
            "covisit_weight": 0.0,
        },
        "event_kinds": {"rate": {"value_center": 0, "value_scale": 5}},
    },
}
DEFAULT_PRESET = "tuned"

_SETTINGS_COLUMNS = frozenset({
    "popularity_weight", "popularity_half_life", "freshness_weight", "freshness_half_life",
    "diversity_penalty", "candidate_factor", "ef_search", "max_fold_events", "explain_history",
    "covisit_weight", "covisit_neighbors", "covisit_history",
})  # fmt: skip
_KIND_COLUMNS = frozenset({
    "weight", "half_life", "counts_as_seen", "min_value", "max_value", "value_center",
    "value_scale",
})  # fmt: skip


# --- database ---------------------------------------------------------------------------------


def fresh_database(server_url: str, name: str = DEFAULT_DATABASE) -> str:
    """Drop and recreate database ``name`` on the server of ``server_url``; return its URL."""
    from recdb.db import scratch

    try:
        return scratch.recreate(server_url, name)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RuntimeError(
            f"recdb eval needs a database of its own and could not (re)create {name!r} "
            f"({exc}); grant CREATEDB or pass --eval-database NAME of one you own"
        ) from exc


def apply_knobs(conn: psycopg.Connection[Any], knobs: Mapping[str, Any]) -> None:
    """Set recdb.settings columns and recdb.event_kinds rows from a knob mapping:
    ``{"settings": {col: value}, "event_kinds": {kind: {col: value}}}``."""
    settings = dict(knobs.get("settings", {}))
    kinds = dict(knobs.get("event_kinds", {}))
    unknown = set(knobs) - {"settings", "event_kinds", "encoders"}
    if unknown:
        raise ValueError(f"unknown knob section(s): {', '.join(sorted(unknown))}")
    for name, override in dict(knobs.get("encoders", {})).items():
        if set(override) - {"settings"}:
            raise ValueError(f"knobs for encoder {name!r}: only settings can be overridden")
        bad = set(override["settings"]) - _SETTINGS_COLUMNS
        if bad:
            raise ValueError(f"unknown knob(s) for encoder {name!r}: {', '.join(sorted(bad))}")
    bad = set(settings) - _SETTINGS_COLUMNS | {
        c for cols in kinds.values() for c in cols if c not in _KIND_COLUMNS
    }
    if bad:
        raise ValueError(f"unknown knob(s): {', '.join(sorted(bad))}")

    def assignments(cols: Mapping[str, Any]) -> sql.Composed:
        return sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Literal(v)) for c, v in cols.items()
        )

    with conn.transaction():
        if settings:
            conn.execute(sql.SQL("UPDATE recdb.settings SET {}").format(assignments(settings)))
        for kind, cols in kinds.items():
            if cols:
                cur = conn.execute(
                    sql.SQL("UPDATE recdb.event_kinds SET {} WHERE kind = {}").format(
                        assignments(cols), sql.Literal(kind)
                    )
                )
                if cur.rowcount != 1:
                    raise ValueError(f"unknown event kind {kind!r} in knobs")


def encoder_settings(
    knobs: Mapping[str, Any], base: Mapping[str, Any], name: str
) -> dict[str, Any]:
    """Settings while encoder ``name`` is measured: its overrides, and the base value of
    every column another encoder overrides (so no override leaks into the next encoder)."""
    per = dict(knobs.get("encoders", {}))
    cols = {c for o in per.values() for c in o.get("settings", {})}
    return {**{c: base[c] for c in cols}, **per.get(name, {}).get("settings", {})}


def effective_knobs(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The ranking knobs in force (for the JSON protocol)."""
    from recdb.db.sqlfiles import query

    def one(name: str) -> Any:
        row = conn.execute(query(_Q, name)).fetchone()
        assert row is not None
        return row[0]

    return {"settings": one("settings"), "event_kinds": {"rate": one("event_kinds")["rate"]}}


def rerank_rankings(
    url: str,
    users: Sequence[int],
    k: int = K,
    *,
    threads: int = 2,
    progress: bool = False,
    desc: str = "rerank",
) -> dict[int, list[int]]:
    """``SELECT item_id FROM rerank(user, k)`` once per user, over a few connections."""
    from tqdm import tqdm

    from recdb.db import connect
    from recdb.db.sqlfiles import query

    q = query(_Q, "rerank_top")
    out: dict[int, list[int]] = {}
    lock = threading.Lock()
    threads = max(1, threads)
    chunks = [list(users[i::threads]) for i in range(threads)]
    with tqdm(total=len(users), desc=desc, unit=" users", disable=not progress, leave=False) as bar:

        def score(chunk: list[int]) -> None:
            with connect(url, autocommit=True, application_name="recdb eval") as conn:
                for u in chunk:
                    got = [r[0] for r in conn.execute(q, {"user_id": u, "k": k}).fetchall()]
                    with lock:
                        out[u] = got
                        bar.update()

        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            for f in [pool.submit(score, c) for c in chunks if c]:
                f.result()
    return out


# --- the run ------------------------------------------------------------------------------------


def _sample_users(candidates: Iterable[int], n: int | None, seed: int) -> list[int]:
    users = sorted(candidates)
    if n is not None and n < len(users):
        users = sorted(random.Random(seed).sample(users, n))
    return users


@dataclass
class _Phase:
    """One scoring round: the history every user has, and the item each user is asked for."""

    name: str
    history: dict[int, list[int]]
    targets: dict[int, int]


def _phases(
    ratings: Sequence[Rating],
    splits: Mapping[int, metrics.Split[int]],
    users: Sequence[int],
    validate: bool,
) -> list[tuple[_Phase, list[int]]]:
    """(phase, rating indices to add before it): valid sees train, test sees train + valid."""
    out = []
    loaded: set[int] = set()
    for name in ("valid", "test") if validate else ("test",):
        idx = {u: s.train if name == "valid" else s.history for u, s in splits.items()}
        new = sorted(i for ids in idx.values() for i in ids if i not in loaded)
        loaded.update(new)
        target = {u: getattr(splits[u], name) for u in users}
        out.append(
            (
                _Phase(
                    name,
                    {u: [ratings[i].item_id for i in ids] for u, ids in idx.items()},
                    {u: ratings[i].item_id for u, i in target.items() if i is not None},
                ),
                new,
            )
        )
    return out


def _item_encoders(conn: psycopg.Connection[Any]) -> set[str | None]:
    return {r[0] for r in conn.execute("SELECT DISTINCT encoder FROM recdb.items")}


def _cold_start(url: str, phase: _Phase, users: Sequence[int], k: int) -> dict[int, list[int]]:
    """rerank()'s cold-start list (the same for everyone) minus each user's history."""
    longest = max((len(set(phase.history.get(u, []))) for u in users), default=0)
    order = rerank_rankings(url, [COLD_START_USER], min(k + longest, 10000), threads=1)
    out = {}
    for u in users:
        seen = set(phase.history.get(u, []))
        out[u] = [i for i in order[COLD_START_USER] if i not in seen][:k]
    return out


def _train_sequence(
    conn: psycopg.Connection[Any],
    ratings: Sequence[Rating],
    splits: Mapping[int, metrics.Split[int]],
    cfg: Any,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    """Train the sequence encoder on the training interactions only, from the events in the
    database (as `recdb train` does), early-stopping on the validation interactions; the
    test interactions are never in the database. Stores it in the registry (inactive)."""
    from recdb.config import TRAIN_TIME_BUDGET_S
    from recdb.encoders import resolve_device
    from recdb.sequence import TrainConfig, registry, train
    from recdb.sequence.data import read

    cfg = cfg or TrainConfig(device=device, time_budget_s=TRAIN_TIME_BUDGET_S)
    data = read(conn)
    seqs, valid = {}, {}
    for user, split in splits.items():
        history = list(data.histories.get(user, []))
        train_items = sorted(ratings[i].item_id for i in split.train)
        if split.valid is not None and len(history) == len(split.train) + 1:
            # test phase: the validation event is in the database too; take it out (ties
            # on time may order it before a training event, so remove it by identity)
            v = ratings[split.valid]
            at = max(n for n, e in enumerate(history) if e[0] == v.item_id)
            del history[at]
        if sorted(e[0] for e in history) != train_items:
            raise RuntimeError(f"user {user}: events in the database do not match the split")
        if history:
            seqs[user] = history
        if split.valid is not None:
            valid[user] = ratings[split.valid].item_id
    t0 = time.perf_counter()
    model = train(seqs, valid, (data.item_ids, data.text), cfg, progress=progress)
    secs = time.perf_counter() - t0
    with conn.transaction():
        model_id = registry.save(conn, model, data.watermark)
    m = model.metrics
    return {
        "model_id": model_id,
        "train_seconds": round(secs, 1),
        "epochs": m["epochs"],
        "best_epoch": m["best_epoch"],
        "seconds_per_epoch": round(float(m["seconds_per_epoch"]), 4),
        "stopped": m["stopped"],
        "valid_ndcg@10_in_training": m.get("valid_ndcg@10"),
        "device": str(resolve_device(cfg.device)),
        "config": model.cfg.to_json(),
    }


def run_evaluation(
    server_url: str,
    items: Sequence[Movie],
    ratings: Sequence[Rating],
    *,
    encoders: Sequence[str] | None = None,
    database: str = DEFAULT_DATABASE,
    k: int = K,
    users: int | None = None,
    seed: int = 0,
    knobs: Mapping[str, Any] | None = None,
    text_encoder: Any = None,
    device: str = "auto",
    validate: bool = True,
    threads: int = 2,
    progress: bool = True,
    dataset: str = "MovieLens-100K",
    sequence_config: Any = None,
) -> dict[str, Any]:
    """Run the whole protocol (module docstring) and return the JSON-ready result."""
    from recdb.datasets.loader import insert_events, movie_rows, upsert_items
    from recdb.datasets.movielens import rating_events
    from recdb.db import connect, schema
    from recdb.sequence import registry
    from recdb.worker import requeue_all_items, requeue_all_users
    from recdb.worker.runner import drain

    wall0 = time.perf_counter()
    encoders = tuple(encoders) if encoders is not None else default_encoders()
    knobs = dict(knobs or {})
    # Split over rating indices (not item ids) so repeated (user, item) pairs stay distinct.
    splits = metrics.chronological_leave_one_out(
        (r.user_id, idx, float(r.timestamp)) for idx, r in enumerate(ratings)
    )
    evaluable = [u for u, s in splits.items() if s.test is not None]
    eval_users = _sample_users(evaluable, users, seed)
    all_items = sorted({m.item_id for m in items})
    n_catalog = len(all_items)

    if text_encoder is None:
        from recdb.encoders import TextEncoder

        text_encoder = TextEncoder(device=device)
    url = fresh_database(server_url, database)
    schema.upgrade(url, embedding_dim=text_encoder.dim)
    conn = connect(url, autocommit=True, application_name="recdb eval")
    timings: dict[str, float] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    trained: dict[str, Any] = {}  # the sequence model, trained once on the training split

    def record(phase: _Phase, name: str, ranked: Mapping[int, Sequence[int]], secs: float) -> None:
        m = metrics.evaluate(
            {u: ranked.get(u, []) for u in phase.targets}, phase.targets, n_catalog, k
        )
        m["seconds"] = round(secs, 2)
        results.setdefault(phase.name, {})[name] = m
        log.info("%s %-18s ndcg@%d %.4f", phase.name, name, k, m[f"ndcg@{k}"])

    try:
        apply_knobs(conn, knobs)
        base_settings = effective_knobs(conn)["settings"]
        with conn.transaction():
            upsert_items(conn, movie_rows(items))
        t0 = time.perf_counter()
        stats = drain(
            url, text_encoder=text_encoder, device=device, progress=progress, desc="encode "
        )
        timings["encode_items"] = time.perf_counter() - t0
        if stats.errors or stats.parked:
            raise RuntimeError(f"worker failed on items: {stats}")
        text_items = _item_encoders(conn)

        for phase, new in _phases(ratings, splits, eval_users, validate):
            with conn.transaction():
                insert_events(conn, rating_events(ratings[i] for i in new), len(new))
                conn.execute("SELECT recdb.refresh_popularity()")

            t0 = time.perf_counter()
            ranked = metrics.popularity_ranking(phase.history, all_items, k)
            record(phase, "popularity", ranked, time.perf_counter() - t0)
            t0 = time.perf_counter()
            ranked = metrics.item_knn_ranking(phase.history, all_items, k)
            record(phase, "item-knn", ranked, time.perf_counter() - t0)
            t0 = time.perf_counter()
            ranked = _cold_start(url, phase, eval_users, k)
            record(phase, "popularity-rerank", ranked, time.perf_counter() - t0)

            for name in encoders:
                t0 = time.perf_counter()
                apply_knobs(conn, {"settings": encoder_settings(knobs, base_settings, name)})
                if name == "sequence":
                    if not trained:
                        trained.update(
                            _train_sequence(
                                conn, ratings, splits, sequence_config, device, progress
                            )
                        )
                    if registry.active(conn) != trained["model_id"]:
                        registry.activate(conn, trained["model_id"])
                elif registry.active(conn) is not None:
                    registry.activate(conn, None)  # other encoders run in the text space
                if _item_encoders(conn) != text_items:
                    # An earlier encoder rewrote the item vectors (e.g. a trained model's own
                    # item space): give this one the vectors it would have in production.
                    requeue_all_items(conn)
                requeue_all_users(conn)
                st = drain(
                    url,
                    user_encoder=name,
                    text_encoder=text_encoder,
                    device=device,
                    progress=progress,
                    desc=f"{phase.name} {name}: ",
                )
                if st.errors or st.parked:
                    raise RuntimeError(f"worker failed on users with encoder {name!r}: {st}")
                t1 = time.perf_counter()
                ranked = rerank_rankings(
                    url,
                    eval_users,
                    k,
                    threads=threads,
                    progress=progress,
                    desc=f"{phase.name} {name}: rerank",
                )
                t2 = time.perf_counter()
                record(phase, name, ranked, t2 - t0)
                results[phase.name][name]["encode_seconds"] = round(t1 - t0, 2)
                if name == "sequence":
                    results[phase.name][name]["train_seconds"] = trained["train_seconds"]
                own = dict(knobs.get("encoders", {})).get(name, {}).get("settings")
                if own:
                    results[phase.name][name]["knobs"] = own
                # back to the base knobs before the next encoder or phase's baselines
                apply_knobs(conn, {"settings": encoder_settings(knobs, base_settings, "")})
                results[phase.name][name]["rerank_ms_per_user"] = round(
                    1000 * (t2 - t1) * threads / max(len(eval_users), 1), 2
                )
        knobs_in_force = effective_knobs(conn)
    finally:
        conn.close()

    methods: dict[str, dict[str, Any]] = {}
    for name, m in results["test"].items():
        methods[name] = dict(m)
        if "valid" in results:
            methods[name]["valid"] = {
                key: v
                for key, v in results["valid"][name].items()
                if key
                not in {"seconds", "encode_seconds", "rerank_ms_per_user", "train_seconds", "knobs"}
            }
    protocol = {
        "dataset": dataset,
        "split": "chronological leave-one-out per user: last interaction = test, "
        "second-last = validation, rest = train (users with < 3 interactions: "
        "train only, not evaluated)",
        "history": "test ranking sees train + validation; validation ranking sees train only",
        "ranking": f"full catalogue ({n_catalog} items), user's history excluded; recdb "
        f"methods call rerank(user, k => {k}) after the worker encoded the history",
        "k": k,
        "users": len(eval_users),
        "users_sampled": len(eval_users) < len(evaluable),
        "seed": seed,
        "items": n_catalog,
        "interactions": len(ratings),
        "encoders": list(encoders),
        "text_model": str(getattr(text_encoder, "model_name", "?")),
        "device": str(getattr(text_encoder, "device", device)),
        "database": database,
        "knobs_set": knobs,
        "knobs_in_force": knobs_in_force,
        "baselines": {
            "popularity": "distinct users per item in the history (recdb.tools.eval.metrics)",
            "item-knn": "cosine item-kNN, 10 neighbours (recdb.tools.eval.metrics defaults)",
            "popularity-rerank": "rerank() cold-start order (decayed popularity from "
            "recdb.item_popularity) for a user with no events, "
            "history removed client-side",
        },
        "sequence_model": {k: v for k, v in trained.items() if k != "model_id"} or None,
        "timings_s": {
            "encode_items": round(timings["encode_items"], 2),
            "wall": round(time.perf_counter() - wall0, 2),
        },
    }
    return {"protocol": protocol, "methods": methods}


# --- output -------------------------------------------------------------------------------------


def format_table(result: Mapping[str, Any], k: int = K) -> str:
    cols = [f"hr@{k}", f"ndcg@{k}", f"mrr@{k}", f"coverage@{k}"]
    head = f"{'method':<18}" + "".join(f"{c:>12}" for c in cols) + f"{'val ndcg':>10}{'secs':>8}"
    lines = [head, "-" * len(head)]
    methods = result["methods"]
    pop = methods.get("popularity", {}).get(f"ndcg@{k}") or 0.0
    for name, m in methods.items():
        val = m.get("valid", {}).get(f"ndcg@{k}")
        row = f"{name:<18}" + "".join(f"{m[c]:>12.4f}" for c in cols)
        row += f"{'-' if val is None else f'{val:.4f}':>10}{m['seconds']:>8.1f}"
        if pop and name not in {"popularity"}:
            row += f"   {m[f'ndcg@{k}'] / pop:.2f}x pop"
        lines.append(row)
    return "\n".join(lines)


def write_plot(result: Mapping[str, Any], path: str | Path, k: int = K) -> None:
    """Grouped bars of HR/NDCG/MRR@k per method (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(result["methods"])
    keys = [f"hr@{k}", f"ndcg@{k}", f"mrr@{k}"]
    x = np.arange(len(names))
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 4))
    for j, key in enumerate(keys):
        vals = [result["methods"][n][key] for n in names]
        bars = ax.bar(x + (j - (len(keys) - 1) / 2) * width, vals, width, label=key.upper())
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    p = result["protocol"]
    ax.set_xticks(x, names)
    ax.set_ylabel("score")
    ax.set_title(
        f"{p['dataset']}, chronological leave-one-out, {p['users']} users, "
        "full ranking via rerank()",
        fontsize=9,
    )
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
