"""The content prior: what an item nobody has interacted with yet is predicted to be worth.

A brand-new item has no popularity and no co-visitation, so before this prior only its
similarity to the user ranked it, and on MovieLens-100K that ordered new films worse than
a coin flip (what a title looks like is not what people watch next). What people watch
*now* is predictable from the text: recent releases, genres in season. So the maintenance
fits a ridge regression of item_popularity.score on the served item vectors (items that
have popularity of their own, a bounded sample), choosing the ridge strength by exact
leave-one-out error (no test data, no extra pass), and stores the weights; rank_pool()
adds ``content_prior_weight x clamp(bias + w . v, 0, 1)`` for items without popularity,
rank_cold() ranks them as if they had that popularity. Then the items listed in
recdb.new_items (where rerank() finds its exploration candidates; the items trigger lists
an item as soon as it has a vector) are re-scored and those that got popularity
unlisted, RESCORE_CHUNK items per transaction: on a shop with tens of thousands of
untouched items one pass was a transaction of seconds, under the freshness of every user
batch, and between chunks the maintenance can yield (recdb.worker.maintenance.Pace).
Meanwhile the list's order mixes the two fits; rank_pool() scores with the stored one.
Cost: one sample read (a bounded share of the popularity table's pages past 2 x SAMPLE
rows) and a (dim x dim) eigendecomposition, bounded whatever the catalogue size, plus one
pass over the listed items by key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg

from recdb.worker.sql import q

# Items the regression is fitted on at most (a uniform sample beyond that).
SAMPLE = 20_000
# Fewer items with popularity than this: no prior (nothing to learn from yet).
MIN_ITEMS = 20
# Ridge strengths tried; the one with the lowest leave-one-out error wins.
RIDGES = (0.01, 0.1, 1.0, 10.0, 100.0)
# Listed new items re-scored per transaction after a refit.
RESCORE_CHUNK = 2_000


def fit_ridge(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(weights, bias, ridge) of the ridge regression y ~ x.w + b with the lowest exact
    leave-one-out squared error over RIDGES.

    Closed form through one eigendecomposition of the (dim x dim) Gram matrix, not an SVD
    of the (sample x dim) data: two matrix products and a small eigh (~0.3 s for 20,000 x
    384 here, where the SVD took 4-11 s), the same solution.
    """
    mx, my = x.mean(axis=0), float(y.mean())
    xc, yc = x - mx, y - my
    evals, v = np.linalg.eigh(xc.T @ xc)
    evals = np.maximum(evals, 0.0)  # rounding can leave tiny negatives
    z = xc @ v  # the data in the eigenbasis
    zy = z.T @ yc
    z2 = z**2
    best: tuple[float, np.ndarray, float] | None = None
    for lam in RIDGES:
        inv = 1.0 / (evals + lam)
        fitted = z @ (inv * zy)
        hat = z2 @ inv + 1.0 / len(y)  # leverage, the mean counted in
        loo = float(np.mean(((yc - fitted) / np.maximum(1.0 - hat, 1e-6)) ** 2))
        if best is None or loo < best[0]:
            best = (loo, v @ (inv * zy), lam)
    assert best is not None
    _, w, lam = best
    return w.astype(np.float32), my - float(mx @ w), lam


def sample_percent(rows: float, limit: int = SAMPLE) -> float:
    """The share (%) of the popularity table's pages the sample is drawn from: every page
    up to 2 x limit rows (the sample is exact there), then about 2 x limit rows' worth,
    so the read stays bounded while the catalogue grows."""
    return 100.0 if rows <= 2 * limit else 100.0 * 2 * limit / rows


def refit(
    conn: psycopg.Connection[Any],
    salt: str = "",
    *,
    full: bool = False,
    between: Callable[[], None] = lambda: None,
    chunk: int = RESCORE_CHUNK,
) -> int:
    """Refit and store the prior in one transaction, then bring recdb.new_items to it,
    `chunk` listed items per transaction with `between()` after each; returns the items
    it was fitted on (0: too few items with popularity, and the stored prior is cleared).
    ``full`` rebuilds the list from every item in the first transaction instead (the
    repair path)."""
    with conn.transaction():
        percent = sample_percent(float(conn.execute(q("popularity_rows")).fetchone()[0]))
        while True:
            rows = conn.execute(
                q("content_prior_sample"),
                {"limit": SAMPLE, "salt": salt, "percent": percent},
                binary=True,
            ).fetchall()
            if len(rows) >= SAMPLE or percent >= 100.0:
                break
            percent = 100.0  # the estimate was stale (rows deleted): read every page
        if len(rows) < MIN_ITEMS:
            conn.execute(q("clear_content_prior"))
        else:
            x = np.stack([np.asarray(r[0], dtype=np.float64) for r in rows])
            y = np.array([float(r[1]) for r in rows])
            w, bias, lam = fit_ridge(x, y)
            conn.execute(
                q("store_content_prior"),
                {
                    "model_id": rows[0][2],
                    "weights": w,
                    "bias": bias,
                    "ridge": lam,
                    "items": len(rows),
                },
            )
        if full:
            conn.execute(q("refresh_new_items"))
    between()
    after: int | None = None if full else -(2**63)
    while after is not None:
        with conn.transaction():
            last = conn.execute(q("rescore_new_items"), {"after": after, "chunk": chunk}).fetchone()
        between()
        after = None if last is None or last[0] is None else int(last[0])
    return len(rows) if len(rows) >= MIN_ITEMS else 0
