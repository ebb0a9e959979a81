"""Rankings `recdb eval` scores: rerank() in SQL per user, its cold-start order, and the
Python baselines of recdb.tools.eval.metrics, all on the same phase."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from recdb.db.sqlfiles import query
from recdb.tools.eval import metrics, sasrec_ce
from recdb.tools.eval.protocol import K, Phase

_Q = "queries/eval.sql"
COLD_START_USER = -1  # no events ever: rerank() answers with its cold-start order

BASELINES = {
    "popularity": "distinct users per item in the history (recdb.tools.eval.metrics)",
    "item-knn": "cosine item-kNN, 10 neighbours (recdb.tools.eval.metrics defaults)",
    "popularity-rerank": "rerank() cold-start order (decayed popularity from "
    "recdb.item_popularity) for a user with no events, history removed client-side",
    sasrec_ce.NAME: sasrec_ce.DESCRIPTION,
}


def baseline_descriptions(with_sasrec_ce: bool) -> dict[str, str]:
    """BASELINES as the protocol JSON lists them: ``sasrec-ce`` only when it ran (it is
    trained in the run, recdb.tools.eval.run, not yielded by baselines())."""
    return {n: d for n, d in BASELINES.items() if with_sasrec_ce or n != sasrec_ce.NAME}


def rerank_rankings(
    url: str,
    users: Sequence[int],
    k: int = K,
    *,
    threads: int = 2,
    progress: bool = False,
    desc: str = "rerank",
    candidates: Sequence[int] | None = None,
) -> dict[int, list[int]]:
    """``SELECT item_id FROM rerank(user, k)`` once per user, over a few connections;
    with ``candidates``, ``rerank(user, k, candidates => ...)`` (candidates mode)."""
    from tqdm import tqdm

    from recdb.db import connect

    q = query(_Q, "rerank_top" if candidates is None else "rerank_candidates")
    extra = {} if candidates is None else {"candidates": list(candidates)}
    out: dict[int, list[int]] = {}
    lock = threading.Lock()
    threads = max(1, threads)
    chunks = [list(users[i::threads]) for i in range(threads)]
    with tqdm(total=len(users), desc=desc, unit=" users", disable=not progress, leave=False) as bar:

        def score(chunk: list[int]) -> None:
            with connect(url, autocommit=True, application_name="recdb eval") as conn:
                for u in chunk:
                    got = [r[0] for r in conn.execute(q, {"user_id": u, "k": k, **extra})]
                    with lock:
                        out[u] = got
                        bar.update()

        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            for f in [pool.submit(score, c) for c in chunks if c]:
                f.result()
    return out


def cold_start(url: str, phase: Phase, users: Sequence[int], k: int) -> dict[int, list[int]]:
    """rerank()'s cold-start list (the same for everyone) minus each user's history."""
    longest = max((len(set(phase.history.get(u, []))) for u in users), default=0)
    order = rerank_rankings(url, [COLD_START_USER], min(k + longest, 10000), threads=1)
    out = {}
    for u in users:
        seen = set(phase.history.get(u, []))
        out[u] = [i for i in order[COLD_START_USER] if i not in seen][:k]
    return out


def baselines(
    url: str, phase: Phase, all_items: Sequence[int], users: Sequence[int], k: int
) -> Iterator[tuple[str, dict[int, list[int]], float]]:
    """(name, rankings, seconds) of every baseline in BASELINES but ``sasrec-ce``, in
    that order."""
    t0 = time.perf_counter()
    ranked = metrics.popularity_ranking(phase.history, all_items, k)
    yield "popularity", ranked, time.perf_counter() - t0
    t0 = time.perf_counter()
    ranked = metrics.item_knn_ranking(phase.history, all_items, k)
    yield "item-knn", ranked, time.perf_counter() - t0
    t0 = time.perf_counter()
    ranked = cold_start(url, phase, users, k)
    yield "popularity-rerank", ranked, time.perf_counter() - t0
