"""Small statistics helpers of `recdb bench` (unit-tested): percentiles, recall, exact search."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from recdb.tools.bench.config import ML100K

NAMED_SIZES = (ML100K,)


def parse_ints(text: str) -> list[int]:
    """'10000,100k, 1m' -> [10000, 100000, 1000000]; positive integers only."""
    out = []
    for part in str(text).replace("_", "").split(","):
        part = part.strip().lower()
        if not part:
            continue
        mult = 1
        if part.endswith("k"):
            part, mult = part[:-1], 1000
        elif part.endswith("m"):
            part, mult = part[:-1], 1_000_000
        value = int(float(part) * mult)
        if value < 1:
            raise ValueError(f"expected positive integers, got {text!r}")
        out.append(value)
    if not out:
        raise ValueError(f"expected a comma-separated list of integers, got {text!r}")
    return out


def parse_sizes(text: str) -> list[int | str]:
    """'ml100k,10k,100000' -> ['ml100k', 10000, 100000]: catalog sizes plus named data sets."""
    out: list[int | str] = []
    for part in str(text).split(","):
        name = part.strip().lower()
        if name in NAMED_SIZES:
            out.append(name)
        elif name:
            out.extend(parse_ints(name))
    if not out:
        raise ValueError(f"expected a comma-separated list of sizes, got {text!r}")
    return out


def parse_floats(text: str) -> list[float]:
    """'50, 1000,3k' -> [50.0, 1000.0, 3000.0]; positive numbers only."""
    out = []
    for part in str(text).replace("_", "").split(","):
        part = part.strip().lower()
        if not part:
            continue
        mult = 1000.0 if part.endswith("k") else 1.0
        value = float(part.removesuffix("k")) * mult
        if not value > 0:
            raise ValueError(f"expected positive numbers, got {text!r}")
        out.append(value)
    if not out:
        raise ValueError(f"expected a comma-separated list of numbers, got {text!r}")
    return out


def percentile(values: Sequence[float], p: float, scale: float = 1.0) -> float | None:
    """The p-th percentile of `values` times `scale`, to 3 decimals (None for no samples)."""
    if not len(values):
        return None
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), p)) * scale, 3)


def percentile_ms(seconds: Sequence[float], p: float) -> float | None:
    """The p-th percentile of durations in seconds, in ms (None for no samples)."""
    return percentile(seconds, p, scale=1000.0)


def median_percentile_ms(reps: Sequence[Sequence[float]], p: float) -> float | None:
    """The median over repetitions of each repetition's p-th percentile, in ms.

    One slow stretch (a checkpoint, a noisy neighbour) moves one repetition's tail, not
    the reported figure; pooling the samples instead would let it set the p99.
    """
    per_rep = [x for x in (percentile_ms(r, p) for r in reps) if x is not None]
    return round(float(np.median(per_rep)), 3) if per_rep else None


def latency_summary(reps: Sequence[Sequence[float]], prefix: str) -> dict[str, float | None]:
    """{prefix}_p50_ms/_p95_ms/_p99_ms, each the median over repetitions."""
    return {f"{prefix}_p{p}_ms": median_percentile_ms(reps, p) for p in (50, 95, 99)}


def mean(values: Sequence[float], digits: int = 4) -> float | None:
    """The mean, rounded (None for no samples)."""
    return round(float(np.mean(values)), digits) if len(values) else None


def recall_at_k(returned: Sequence[int], exact: Sequence[int], k: int) -> float:
    """|top-k returned ∩ exact top-k| / |exact top-k|: order inside the top k does not matter.

    When fewer than k items qualify (a narrow filter), the denominator is what exists,
    so a perfect answer still scores 1.0.
    """
    truth = set(list(exact)[:k])
    if not truth:
        return 1.0
    got = set(list(returned)[:k])
    return len(got & truth) / len(truth)


def exact_top_k(
    vectors: np.ndarray,
    ids: np.ndarray,
    query_vec: np.ndarray,
    k: int,
    exclude_ids: Iterable[int] = (),
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Brute-force cosine top-k ids over unit `vectors` (rows aligned with `ids`).

    exclude_ids: the user's seen items; allowed: a boolean row mask (availability and the
    filter), the same restrictions rerank() applies, so recall compares like with like.
    """
    sims = vectors @ np.asarray(query_vec, dtype=np.float32)
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    excl = np.fromiter(exclude_ids, dtype=np.int64)
    if len(excl):  # ids are sorted: find each excluded id's row, skip unknown ids
        rows = np.searchsorted(ids, excl)
        inside = rows < len(ids)
        rows, excl = rows[inside], excl[inside]
        sims[rows[ids[rows] == excl]] = -np.inf
    k = min(k, int(np.isfinite(sims).sum()))
    if k <= 0:
        return np.empty(0, dtype=ids.dtype)
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.lexsort((ids[top], -sims[top]))]
    return ids[top]
