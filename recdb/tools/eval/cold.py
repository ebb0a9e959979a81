"""`recdb eval --cold-items FRACTION`: do new items, with no events at all, reach the users
who will want them? (issue #17)

1. New items: the newest ``FRACTION`` of the items by their first interaction (ties by
   item id; ``ceil(FRACTION x items with interactions)``). T = the first interaction of
   the earliest new item.
2. A database of its own (``<eval database>_cold``): every item, new ones too, with its
   text, encoded by the real worker; every rating except those of new items, so new
   items have no events, no popularity and no co-visitation. Popularity is refreshed and
   the worker's maintenance syncs the neighbours, as in the main protocol.
3. Evaluated users: those who rated at least one new item; their relevant set is the new
   items they rated.
4. Every user encoder (the sequence model trained on this database's events, so it never
   sees a new item's interaction) re-encodes the users through the worker, then:

   * candidates mode, ``rerank(u, k => 10, candidates => <every new item>)``: NDCG@10 and
     HR@10 over the relevant set, against a uniformly random order (exact expectation)
     and a content baseline in Python (cosine between each new item's text vector and
     the mean text vector of the user's history); lift = NDCG@10 / random NDCG@10;
   * catalogue mode, ``rerank(u, k => 20)``: recall@20 of the relevant new items, their
     NDCG@10, exposure@20 (mean share of new items in the top 20) and the users' future
     share (mean share of new items among their ratings at or after T), which exposure
     should reach.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from recdb.datasets.movielens import Movie, Rating
from recdb.db.sqlfiles import query
from recdb.tools.eval import scoring
from recdb.tools.eval.knobs import (
    apply_knobs,
    effective_knobs,
    encoder_overrides,
    encoder_settings,
)
from recdb.tools.eval.run import (
    DEFAULT_DATABASE,
    EvalRun,
    default_encoders,
    fresh_database,
    item_vector_encoders,
    train_and_store,
)

log = logging.getLogger(__name__)

_Q = "queries/eval.sql"
DEFAULT_FRACTION = 0.1
CANDIDATES_K = 10  # candidates mode: NDCG/HR@10 over the new items
CATALOGUE_K = 20  # catalogue mode: the top 20 of the whole catalogue
LIFT_EVERY = 2.0  # every encoder's candidates NDCG@10 at least this many times random
LIFT_BEST = 2.5  # and the best one's at least this
RANDOM = "exact expectation of a uniformly random order of the new items"
CONTENT = (
    "cosine between each new item's text vector and the mean text vector of the user's "
    "history (every rating in the database), ties by item id; computed in Python"
)


def cold_database(database: str = DEFAULT_DATABASE) -> str:
    """The database the cold-item protocol runs in, next to the main run's."""
    return f"{database}_cold"


@dataclass(frozen=True)
class ColdSplit:
    """New items, T, the ratings loaded and held out, and what each evaluated user wants."""

    new_items: list[int]  # sorted
    t: int  # first interaction of the earliest new item (unix seconds)
    kept: list[int]  # rating indices loaded into the database
    held_out: list[int]  # rating indices of new items: never in the database
    relevant: dict[int, set[int]]  # evaluated user -> the new items they rated
    future: dict[int, tuple[int, int]]  # evaluated user -> (new-item ratings, ratings >= T)


def split_new_items(ratings: Sequence[Rating], fraction: float) -> ColdSplit:
    """The newest ``fraction`` of the rated items by first interaction (module docstring)."""
    if not 0 < fraction < 1:
        raise ValueError(f"--cold-items: the fraction must be in (0, 1), got {fraction}")
    first: dict[int, int] = {}
    for r in ratings:
        if r.item_id not in first or r.timestamp < first[r.item_id]:
            first[r.item_id] = r.timestamp
    order = sorted(first, key=lambda i: (first[i], i))
    # round() first: 0.3 * 10 is 3.0000000000000004 in floating point, not 4 items
    n = min(len(order), max(1, math.ceil(round(fraction * len(order), 9))))
    new = sorted(order[len(order) - n :])
    new_set = set(new)
    t = min(first[i] for i in new)
    kept = [i for i, r in enumerate(ratings) if r.item_id not in new_set]
    held_out = [i for i, r in enumerate(ratings) if r.item_id in new_set]
    relevant: dict[int, set[int]] = defaultdict(set)
    for i in held_out:
        relevant[ratings[i].user_id].add(ratings[i].item_id)
    n_new: dict[int, int] = defaultdict(int)
    n_after: dict[int, int] = defaultdict(int)
    for r in ratings:
        if r.user_id in relevant and r.timestamp >= t:
            n_after[r.user_id] += 1
            n_new[r.user_id] += r.item_id in new_set
    return ColdSplit(
        new_items=new,
        t=t,
        kept=kept,
        held_out=held_out,
        relevant=dict(relevant),
        future={u: (n_new[u], n_after[u]) for u in relevant},
    )


# ---- metrics (several relevant items per user) ------------------------------------------


def _idcg(n_relevant: int, k: int) -> float:
    return sum(1.0 / math.log2(p + 1) for p in range(1, min(n_relevant, k) + 1))


def ndcg_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    """DCG of the relevant items in the top k over the ideal DCG of min(|relevant|, k)."""
    ideal = _idcg(len(relevant), k)
    if not ideal:
        return 0.0
    dcg = sum(1.0 / math.log2(p + 1) for p, i in enumerate(ranked[:k], start=1) if i in relevant)
    return dcg / ideal


def hit_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return 1.0 if any(i in relevant for i in ranked[:k]) else 0.0


def recall_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def random_expectation(n_items: int, n_relevant: int, k: int) -> tuple[float, float]:
    """(NDCG@k, HR@k) expected from a uniformly random order of ``n_items`` items of which
    ``n_relevant`` are relevant: each position holds a relevant one with probability
    n_relevant / n_items; the top k misses all of them with C(n - r, k) / C(n, k)."""
    if n_items <= 0 or n_relevant <= 0:
        return 0.0, 0.0
    top = min(k, n_items)
    dcg = n_relevant / n_items * sum(1.0 / math.log2(p + 1) for p in range(1, top + 1))
    miss = math.comb(n_items - n_relevant, top) / math.comb(n_items, top)
    return dcg / _idcg(n_relevant, k), 1.0 - miss


def ranking_metrics(
    rankings: Mapping[int, Sequence[int]], relevant: Mapping[int, set[int]], k: int
) -> dict[str, float]:
    """Mean NDCG@k and HR@k over the users of ``relevant`` (no ranking counts as a miss)."""
    n = len(relevant) or 1
    return {
        f"ndcg@{k}": sum(ndcg_at_k(rankings.get(u, []), rel, k) for u, rel in relevant.items()) / n,
        f"hr@{k}": sum(hit_at_k(rankings.get(u, []), rel, k) for u, rel in relevant.items()) / n,
        "users": len(relevant),
    }


def random_metrics(n_items: int, relevant: Mapping[int, set[int]], k: int) -> dict[str, float]:
    """ranking_metrics' keys, for the expected random order (random_expectation)."""
    n = len(relevant) or 1
    both = [random_expectation(n_items, len(rel), k) for rel in relevant.values()]
    return {
        f"ndcg@{k}": sum(b[0] for b in both) / n,
        f"hr@{k}": sum(b[1] for b in both) / n,
        "users": len(relevant),
    }


def exposure_at_k(
    rankings: Mapping[int, Sequence[int]], users: Iterable[int], new: set[int], k: int
) -> float:
    """Mean over users of (new items in their top k) / k."""
    users = list(users)
    if not users:
        return 0.0
    return sum(len(new.intersection(rankings.get(u, [])[:k])) / k for u in users) / len(users)


def future_share(future: Mapping[int, tuple[int, int]]) -> float:
    """Mean over users of (their ratings of new items) / (their ratings at or after T)."""
    shares = [n_new / n_after for n_new, n_after in future.values() if n_after]
    return sum(shares) / len(shares) if shares else 0.0


def catalogue_metrics(
    rankings: Mapping[int, Sequence[int]],
    relevant: Mapping[int, set[int]],
    new: set[int],
    future: Mapping[int, tuple[int, int]],
    k: int = CATALOGUE_K,
    ndcg_k: int = CANDIDATES_K,
) -> dict[str, Any]:
    """Catalogue mode: recall@k and NDCG@ndcg_k of the relevant new items, exposure@k,
    and the users' future share that exposure is held to."""
    n = len(relevant) or 1
    share = future_share(future)
    exposure = exposure_at_k(rankings, relevant, new, k)
    return {
        f"recall@{k}": sum(recall_at_k(rankings.get(u, []), r, k) for u, r in relevant.items()) / n,
        f"ndcg@{ndcg_k}": ranking_metrics(rankings, relevant, ndcg_k)[f"ndcg@{ndcg_k}"],
        f"exposure@{k}": exposure,
        "future_share": share,
        "exposure_meets_future_share": exposure >= share,
        "users": len(relevant),
    }


def content_rankings(
    text: Mapping[int, np.ndarray],
    history: Mapping[int, Sequence[int]],
    new_items: Sequence[int],
    users: Iterable[int],
) -> dict[int, list[int]]:
    """The content baseline: new items by cosine with the mean text vector of the user's
    history (items without a vector are left out of the mean), ties by item id."""
    ids = sorted(new_items)
    mat = np.stack([np.asarray(text[i], dtype=np.float64) for i in ids])
    mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
    out = {}
    for u in users:
        vecs = [np.asarray(text[i], dtype=np.float64) for i in history.get(u, []) if i in text]
        if vecs:
            mean = np.mean(vecs, axis=0)
            scores = mat @ (mean / max(float(np.linalg.norm(mean)), 1e-12))
        else:
            scores = np.zeros(len(ids))
        order = sorted(range(len(ids)), key=lambda j: (-scores[j], ids[j]))
        out[u] = [ids[j] for j in order]
    return out


def lift(ndcg: float, random_ndcg: float) -> float:
    return ndcg / random_ndcg if random_ndcg else 0.0


def targets(methods: Mapping[str, Any], encoders: Sequence[str]) -> list[dict[str, Any]]:
    """Candidates lift >= LIFT_EVERY for every encoder and >= LIFT_BEST for the best one;
    catalogue exposure@20 >= future share for every encoder."""
    out = []
    lifts = {e: methods[e]["candidates"]["lift"] for e in encoders}
    for e in encoders:
        out.append(_target(f"candidates lift, {e}", lifts[e], LIFT_EVERY))
    if lifts:
        best = max(lifts, key=lambda e: lifts[e])
        out.append(_target(f"candidates lift, best ({best})", lifts[best], LIFT_BEST))
    for e in encoders:
        c = methods[e]["catalogue"]
        exposure = c[f"exposure@{CATALOGUE_K}"]
        out.append(
            _target(f"exposure@{CATALOGUE_K} >= future share, {e}", exposure, c["future_share"])
        )
    return out


def _target(name: str, measured: float, threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "measured": measured,
        "threshold": threshold,
        "met": measured >= threshold,
    }


# ---- the run ------------------------------------------------------------------------------


def train_cold_sequence(
    conn: psycopg.Connection[Any],
    new_items: set[int],
    cfg: Any,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    """Train the sequence encoder on the events of the cold database, as `recdb train` does
    (each user's last event validates), store it in the registry (inactive). New items have
    no events there, so the model never sees one of their interactions."""
    from recdb.config import TRAIN_TIME_BUDGET_S
    from recdb.sequence import TrainConfig
    from recdb.sequence.data import hold_out_last, read

    cfg = cfg or TrainConfig(device=device, time_budget_s=TRAIN_TIME_BUDGET_S)
    data = read(conn)
    if any(e[0] in new_items for h in data.histories.values() for e in h):
        raise RuntimeError("a new item has events in the cold database")
    seqs, valid = hold_out_last(data.histories, set(data.item_ids))
    return train_and_store(conn, seqs, valid, data, cfg, progress)


def run_cold_items(
    server_url: str,
    items: Sequence[Movie],
    ratings: Sequence[Rating],
    *,
    fraction: float = DEFAULT_FRACTION,
    encoders: Sequence[str] | None = None,
    database: str = cold_database(),
    knobs: Mapping[str, Any] | None = None,
    text_encoder: Any = None,
    device: str = "auto",
    threads: int = 2,
    progress: bool = True,
    dataset: str = "MovieLens-100K",
    sequence_config: Any = None,
) -> dict[str, Any]:
    """Run the cold-item protocol (module docstring); the JSON-ready ``cold_items`` part."""
    from recdb.datasets.loader import insert_events, movie_rows, upsert_items
    from recdb.datasets.movielens import rating_events
    from recdb.db import connect, schema
    from recdb.worker import requeue_all_users

    wall0 = time.perf_counter()
    encoders = tuple(encoders) if encoders is not None else default_encoders()
    knobs = dict(knobs or {})
    split = split_new_items(ratings, fraction)
    new_set = set(split.new_items)
    users = sorted(split.relevant)
    all_items = sorted({m.item_id for m in items})
    missing = new_set.difference(all_items)
    if missing:
        raise ValueError(f"rated items missing from the catalogue: {sorted(missing)[:5]}")
    history: dict[int, list[int]] = defaultdict(list)
    for i in split.kept:
        history[ratings[i].user_id].append(ratings[i].item_id)

    if text_encoder is None:
        from recdb.encoders import TextEncoder

        text_encoder = TextEncoder(device=device)
    url = fresh_database(server_url, database)
    schema.upgrade(url, embedding_dim=text_encoder.dim)
    conn = connect(url, autocommit=True, application_name="recdb eval cold")
    run = EvalRun(
        url=url,
        conn=conn,
        ratings=ratings,
        splits={},
        users=users,
        n_catalog=len(all_items),
        k=CATALOGUE_K,
        knobs=knobs,
        text_encoder=text_encoder,
        device=device,
        threads=threads,
        progress=progress,
        sequence_config=sequence_config,
    )
    methods: dict[str, Any] = {}
    try:
        apply_knobs(conn, knobs)
        run.base_settings = effective_knobs(conn)["settings"]
        with conn.transaction():
            upsert_items(conn, movie_rows(items))
        t0 = time.perf_counter()
        run.drain("items", "cold: encode ")
        encode_items_s = time.perf_counter() - t0
        run.text_items = item_vector_encoders(conn)
        # the text encoder's vectors, before any trained model rewrites the item vectors
        text = {
            int(r[0]): np.asarray(r[1], dtype=np.float32)
            for r in conn.execute(query(_Q, "cold_text_vectors"), binary=True)
        }
        with conn.transaction():
            insert_events(conn, rating_events(ratings[i] for i in split.kept), len(split.kept))
            conn.execute(query(_Q, "refresh_popularity_for_phase"))
        row = conn.execute(query(_Q, "cold_item_events"), {"items": split.new_items}).fetchone()
        leaked = int(row[0]) if row else -1
        if leaked != 0:
            raise RuntimeError(f"{leaked} events of new items are in the cold database")

        rnd = random_metrics(len(split.new_items), split.relevant, CANDIDATES_K)
        rnd["lift"] = 1.0
        methods["random"] = {"candidates": rnd}
        t0 = time.perf_counter()
        content = ranking_metrics(
            content_rankings(text, history, split.new_items, users), split.relevant, CANDIDATES_K
        )
        content["lift"] = lift(content[f"ndcg@{CANDIDATES_K}"], rnd[f"ndcg@{CANDIDATES_K}"])
        content["seconds"] = round(time.perf_counter() - t0, 2)
        methods["content"] = {"candidates": content}

        for name in encoders:
            t0 = time.perf_counter()
            apply_knobs(conn, {"settings": encoder_settings(knobs, run.base_settings, name)})
            if name == "sequence" and not run.trained:
                run.trained.update(
                    train_cold_sequence(conn, new_set, sequence_config, device, progress)
                )
            run.serve_encoder(name)
            requeue_all_users(conn)
            run.drain(f"users with encoder {name!r}", f"cold {name}: ", user_encoder=name)
            t1 = time.perf_counter()
            cand = scoring.rerank_rankings(
                url,
                users,
                CANDIDATES_K,
                threads=threads,
                progress=progress,
                desc=f"cold {name}: candidates",
                candidates=split.new_items,
            )
            t2 = time.perf_counter()
            cat = scoring.rerank_rankings(
                url,
                users,
                CATALOGUE_K,
                threads=threads,
                progress=progress,
                desc=f"cold {name}: catalogue",
            )
            t3 = time.perf_counter()
            apply_knobs(conn, {"settings": encoder_settings(knobs, run.base_settings, "")})
            c = ranking_metrics(cand, split.relevant, CANDIDATES_K)
            c["lift"] = lift(c[f"ndcg@{CANDIDATES_K}"], rnd[f"ndcg@{CANDIDATES_K}"])
            c["seconds"] = round(t2 - t1, 2)
            g = catalogue_metrics(cat, split.relevant, new_set, split.future)
            g["seconds"] = round(t3 - t2, 2)
            methods[name] = {"candidates": c, "catalogue": g, "encode_seconds": round(t1 - t0, 2)}
            if name == "sequence":
                methods[name]["train_seconds"] = run.trained["train_seconds"]
            own = encoder_overrides(knobs, name)
            if own:
                methods[name]["knobs"] = own
            log.info(
                "cold %-10s candidates ndcg@%d %.4f (lift %.2f), exposure@%d %.4f",
                name, CANDIDATES_K, c[f"ndcg@{CANDIDATES_K}"], c["lift"], CATALOGUE_K,
                g[f"exposure@{CATALOGUE_K}"],
            )  # fmt: skip
        knobs_in_force = effective_knobs(conn)
    finally:
        conn.close()

    protocol = {
        "dataset": dataset,
        "fraction": fraction,
        "n_new_items": len(split.new_items),
        "new_items": split.new_items,
        "T": split.t,
        "T_utc": datetime.fromtimestamp(split.t, tz=UTC).isoformat(),
        "new_items_rule": "newest fraction of the rated items by first interaction (ties by "
        "item id), ceil(fraction x rated items); T = first interaction of the earliest",
        "users": len(users),
        "users_without_history": sum(1 for u in users if not history.get(u)),
        "relevant_per_user": round(sum(len(r) for r in split.relevant.values()) / len(users), 3)
        if users
        else 0.0,
        "items": len(all_items),
        "interactions_loaded": len(split.kept),
        "interactions_held_out": len(split.held_out),
        "new_item_events_in_database": leaked,
        "future_share": future_share(split.future),
        "candidates": f"rerank(user, k => {CANDIDATES_K}, candidates => every new item); "
        f"NDCG/HR@{CANDIDATES_K} over the new items the user rated",
        "catalogue": f"rerank(user, k => {CATALOGUE_K}), whole catalogue, history excluded",
        "k_candidates": CANDIDATES_K,
        "k_catalogue": CATALOGUE_K,
        "random": RANDOM,
        "content": CONTENT,
        "encoders": list(encoders),
        "text_model": str(getattr(text_encoder, "model_name", "?")),
        "device": str(getattr(text_encoder, "device", device)),
        "database": database,
        "knobs_set": knobs,
        "knobs_in_force": knobs_in_force,
        "sequence_model": {k: v for k, v in run.trained.items() if k != "model_id"} or None,
        "timings_s": {
            "encode_items": round(encode_items_s, 2),
            "wall": round(time.perf_counter() - wall0, 2),
        },
    }
    return {"protocol": protocol, "methods": methods, "targets": targets(methods, encoders)}
