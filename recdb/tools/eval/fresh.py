"""`recdb eval --fresh N`: what rerank()'s zero-lag fold is worth (issue #14).

In the test phase, right after an encoder's normal measurement, three states of the same
evaluated users are scored against the same test targets:

- ``stale``: each user's newest N history events deleted and the worker run (their vectors
  and everything else as if those events had not happened yet);
- ``fold``: the N events inserted back (same item, kind, value, times), no worker run:
  rerank() folds them into the stale stored vector (recdb.user_vector);
- ``encoded``: the worker has re-encoded the users with every event: the normal test state.

Popularity and co-visitation stay as computed for the full history in all three (the
drain on the held-out history would rebuild them from it; they are saved before and put
back after it), so the states differ only in the user vector and in what rerank() reads
from the events themselves (seen items, recent co-visited history). The run ends in the
normal test state (the events back, every user re-encoded), so later encoders measure as
without --fresh; only the held-out events' ids are new. The sequence model is not retrained.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from recdb.db.sqlfiles import query
from recdb.tools.eval import metrics, scoring
from recdb.tools.eval.protocol import K, Phase

if TYPE_CHECKING:
    from recdb.tools.eval.run import EvalRun

log = logging.getLogger(__name__)

_Q = "queries/eval_fresh.sql"
STATES = ("stale", "fold", "encoded")


def protocol(n: int) -> dict[str, Any] | None:
    """What ``result["protocol"]["fresh"]`` says about the measurement (None when off)."""
    if n <= 0:
        return None
    return {
        "n": n,
        "phase": "test",
        "held_out": f"each evaluated user's newest {n} history events (train + validation), "
        "newest by (occurred_at, event_id): the user's last events in time",
        "states": {
            "stale": "held-out events deleted, worker run: vectors of the history without them",
            "fold": "the same events inserted back (item, kind, value, times), no worker "
            "run: rerank() folds them into the stale stored vector (zero-lag path)",
            "encoded": "worker run again with every event: the normal test state",
        },
        "collaborative": "popularity and co-visitation as computed for the full history in "
        "all three states (saved before the stale drain and put back after it)",
        "ratio": "fold_over_encoded = fold ndcg@k / encoded ndcg@k",
    }


def _score(run: EvalRun, phase: Phase, name: str, state: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    ranked = scoring.rerank_rankings(
        run.url,
        run.users,
        run.k,
        threads=run.threads,
        progress=run.progress,
        desc=f"fresh {name} {state}: rerank",
    )
    m: dict[str, Any] = metrics.evaluate(
        {u: ranked.get(u, []) for u in phase.targets}, phase.targets, run.n_catalog, run.k
    )
    m["rerank_seconds"] = round(time.perf_counter() - t0, 2)
    log.info("fresh %-10s %-8s ndcg@%d %.4f", name, state, run.k, m[f"ndcg@{run.k}"])
    return m


def _scalar(run: EvalRun, name: str, params: Mapping[str, Any] | None = None) -> int:
    row = run.conn.execute(query(_Q, name), params).fetchone()
    assert row is not None
    return int(row[0])


def measure(run: EvalRun, phase: Phase, name: str, n: int) -> dict[str, Any]:
    """The three states (module docstring) for encoder ``name``, already serving and under
    its knobs, in the normal test state; leaves the database in that state again."""
    conn, users = run.conn, list(run.users)
    t0 = time.perf_counter()
    total = _scalar(run, "fresh_event_count")
    conn.execute(query(_Q, "fresh_save_collaborative"))
    conn.execute(query(_Q, "fresh_held_table"))
    try:
        with conn.transaction():
            held = conn.execute(query(_Q, "fresh_hold_out"), {"users": users, "n": n}).rowcount
        run.drain(
            f"users without their newest {n} events", f"fresh {name} stale: ", user_encoder=name
        )
        with conn.transaction():
            conn.execute(query(_Q, "fresh_restore_collaborative"))
        out: dict[str, Any] = {"n": n, "events": held}
        out["stale"] = _score(run, phase, name, "stale")

        with conn.transaction():
            back = conn.execute(query(_Q, "fresh_put_back")).rowcount
        if back != held:
            raise RuntimeError(f"fresh: {held} events held out, {back} put back")
        out["folded_events"] = _scalar(run, "fresh_folded_events", {"users": users})
        out["fold"] = _score(run, phase, name, "fold")

        run.drain(
            f"users with their newest {n} events back", f"fresh {name} encoded: ", user_encoder=name
        )
        out["encoded"] = _score(run, phase, name, "encoded")
    finally:
        conn.execute(query(_Q, "fresh_drop_saved"))
    if _scalar(run, "fresh_event_count") != total:
        raise RuntimeError("fresh: the events after the measurement differ from before it")
    key = f"ndcg@{run.k}"
    enc = out["encoded"][key]
    out["fold_over_encoded"] = round(out["fold"][key] / enc, 4) if enc else None
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def results(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{encoder: its fresh measurement} of a result, for the methods that have one."""
    return {n: m["fresh"] for n, m in result["methods"].items() if m.get("fresh")}


def format_table(result: Mapping[str, Any], k: int = K) -> str:
    """NDCG@k of the three states per encoder ("" when --fresh was off)."""
    fresh = results(result)
    if not fresh:
        return ""
    n = next(iter(fresh.values()))["n"]
    key = f"ndcg@{k}"
    head = f"{f'fresh (N={n}), {key}':<22}" + "".join(f"{s:>10}" for s in STATES)
    head += f"{'fold/enc':>10}{'hr fold':>10}{'hr enc':>10}"
    lines = [head, "-" * len(head)]
    for name, f in fresh.items():
        row = f"{name:<22}" + "".join(f"{f[s][key]:>10.4f}" for s in STATES)
        ratio = f["fold_over_encoded"]
        row += f"{'-' if ratio is None else f'{ratio:.3f}':>10}"
        row += f"{f['fold'][f'hr@{k}']:>10.4f}{f['encoded'][f'hr@{k}']:>10.4f}"
        lines.append(row)
    return "\n".join(lines)


def plot_panel(ax: Any, result: Mapping[str, Any], k: int = K) -> None:
    """Grouped bars of NDCG@k per state and encoder on ``ax`` (matplotlib axes)."""
    import numpy as np

    fresh = results(result)
    names: Sequence[str] = list(fresh)
    key = f"ndcg@{k}"
    x = np.arange(len(names))
    width = 0.8 / len(STATES)
    for j, state in enumerate(STATES):
        vals = [fresh[n][state][key] for n in names]
        bars = ax.bar(x + (j - (len(STATES) - 1) / 2) * width, vals, width, label=state)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, [f"{n}\nfold/enc {fresh[n]['fold_over_encoded']}" for n in names])
    ax.set_ylabel(key.upper())
    n = fresh[names[0]]["n"] if names else 0
    ax.set_title(f"newest {n} events: stale vector, folded by rerank(), re-encoded", fontsize=9)
    ax.legend(fontsize=8)
