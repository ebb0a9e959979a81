"""rerank()'s ranking done application-side, to compare "one query" with round trips.

An application caches the event kinds and ranking settings, then per request reads the
user, the history and the vectors it needs, runs the ANN query and the popularity
lookup, and folds, scores, explains and diversifies in Python (numpy).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from recdb.tools.bench.db import q
from recdb.tools.bench.stats import mean, percentile_ms, recall_at_k

APP_ROUND_TRIPS = 5
MODEL_RTTS_MS = (0.2, 0.5, 1.0)

# weight, half-life (s), counts as seen, value centre, value scale
KindSpec = tuple[float, float | None, bool, float | None, float | None]


@dataclass
class AppContext:
    """What an application would cache at start-up: event kinds and ranking settings."""

    kinds: dict[str, KindSpec]
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
    s = conn.execute(q("app_settings")).fetchone()
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


def _event_weight(spec: KindSpec, value: float | None, age_s: float) -> float:
    weight, half_life, _, center, scale = spec
    w = weight
    if center is not None and scale is not None:
        w *= ((value if value is not None else center) - center) / scale
    if half_life is not None:
        w *= 0.5 ** (max(age_s, 0.0) / max(half_life, 1.0))
    return w


def prepare_app_connection(conn: psycopg.Connection[Any], ctx: AppContext, k: int) -> None:
    """The session settings rerank() sets per call; an app sets them once per connection."""
    conn.execute(q("app_session_settings"), {"ef_search": effective_ef_search(ctx, k)})


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
    # As recdb.recent_positive_items(): the newest explain_history events of kinds with
    # weight > 0, then only the liked ones (no rating at or below value_center).
    positive = [e for e in events if ctx.kinds[e[2]][0] > 0][: ctx.explain_history]
    for e in positive:
        center = ctx.kinds[e[2]][3]
        liked = center is None or (e[3] is not None and e[3] > center)
        if liked and e[1] not in hist:
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
        "app_side_agreement": mean(agree),
        "app_side_queries": len(lat),
    }
