"""Ingest: events/s into recdb.events with its queue trigger and with it disabled."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import psycopg

from recdb.tools.bench.config import KINDS, BenchConfig
from recdb.tools.bench.db import connect, q

# (key, description, synchronous_commit, rows per INSERT, share of cfg.ingest_events)
INGEST_MODES: tuple[tuple[str, str, str, int, float], ...] = (
    (
        "single_row",
        "single-row INSERTs, one transaction each, synchronous_commit=off "
        "(no WAL flush wait: isolates the CPU cost of the triggers)",
        "off",
        1,
        1.0,
    ),
    (
        "single_row_durable",
        "single-row INSERTs, one transaction each, synchronous_commit=on "
        "(each commit waits for its WAL flush)",
        "on",
        1,
        0.25,
    ),
    (
        "batched_100",
        "100-row INSERT ... SELECT unnest(...), one transaction each, synchronous_commit=on",
        "on",
        100,
        5.0,
    ),
)


def _insert_rate(
    conn: psycopg.Connection[Any],
    qname: str,
    rows: tuple[list[int], list[int], list[str]],
    batch: int,
    count: int,
) -> float:
    """events/s for `count` events inserted `batch` per statement, one transaction each."""
    users, items, kinds = rows
    n = len(users)
    text = q(qname)
    t0 = time.perf_counter()
    if batch == 1:
        for x in range(count):
            j = x % n
            conn.execute(
                text, {"user_id": users[j], "item_id": items[j], "kind": kinds[j]}, prepare=True
            )
    else:
        for s in range(0, count, batch):
            j = [x % n for x in range(s, s + batch)]
            conn.execute(
                text,
                {
                    "users": [users[x] for x in j],
                    "items": [items[x] for x in j],
                    "kinds": [kinds[x] for x in j],
                },
                prepare=True,
            )
    return count / (time.perf_counter() - t0)


# Alternating rounds per insert pattern: short, so load drift hits both tables alike.
ROUNDS = 30


def ingest(url: str, n_items: int, cfg: BenchConfig) -> dict[str, Any]:
    """events/s into recdb.events with and without its queue trigger, per insert pattern.

    Each pattern runs ROUNDS short rounds, each timing the plain table and the one with
    its trigger back to back; the overhead is the median of the rounds' own ratios
    and the rates are the medians. On a shared machine the rate moves by a third within
    a minute: best rounds taken apart (before) put a lucky round of one side against an
    unlucky one of the other (0.19-0.45 for one trigger over 5 runs), a round's own
    ratio keeps both sides under the same load (0.28-0.34 over 10 runs of another). The
    headline (top-level keys) is single-row inserts with synchronous_commit=off: with
    durable commits, the WAL flush dominates and hides the triggers' cost; that case is
    reported too.
    """
    rng = np.random.default_rng([cfg.seed, 17])
    n = max(2, cfg.ingest_events)
    first_user = 10_000_000  # users of their own: nothing else in the bench sees them
    users = (first_user + rng.integers(0, 1000, size=n)).tolist()
    items = (rng.integers(1, n_items + 1, size=n)).tolist()
    plain_kinds = [k for k in KINDS if k != "rate"]  # kinds that need no value
    kinds = [plain_kinds[i] for i in rng.integers(0, len(plain_kinds), size=n)]
    rows = (users, items, kinds)
    rates: dict[str, dict[str, list[float]]] = {
        m[0]: {"plain": [], "triggers": []} for m in INGEST_MODES
    }
    with connect(url, "ingest") as conn:
        before = conn.execute(q("max_event_id")).fetchone()[0]
        try:
            for key, _, sync, batch, share in INGEST_MODES:
                conn.execute(q("set_synchronous_commit"), {"value": sync})
                count = max(batch, int(n * share * 3) // ROUNDS // batch * batch)
                qname = "insert_event" if batch == 1 else "insert_events_batch"
                sides = (("plain", "disable"), ("triggers", "enable"))
                for r in range(ROUNDS):  # which side goes first alternates too
                    for side, toggle in sides if r % 2 == 0 else sides[::-1]:
                        conn.execute(q(f"{toggle}_queue_trigger"))
                        rates[key][side].append(_insert_rate(conn, qname, rows, batch, count))
            conn.execute(q("reset_synchronous_commit"))
        finally:
            conn.execute(q("enable_queue_trigger"))
            conn.execute(q("delete_events_after"), {"event_id": before})
            conn.execute(q("clear_user_queue"))
    res: dict[str, Any] = {}
    for key, desc, _, _, _ in INGEST_MODES:
        plain, with_t = rates[key]["plain"], rates[key]["triggers"]
        ratios = [p / t for p, t in zip(plain, with_t, strict=True)]
        res[key] = {
            "events_per_s_with_triggers": round(statistics.median(with_t), 1),
            "events_per_s_plain": round(statistics.median(plain), 1),
            "trigger_overhead": round(statistics.median(ratios) - 1.0, 4),
            "trigger_overhead_rounds": [round(r - 1.0, 4) for r in ratios],
            "mode": desc,
        }
    res.update(
        {k: v for k, v in res["single_row"].items() if k not in ("mode", "trigger_overhead_rounds")}
    )
    res["headline"] = "single_row"
    res["plain_table"] = (
        "recdb.events itself (same indexes, same size) with its events_inserted trigger "
        "disabled: the difference is the trigger (validation, user_queue insert, pg_notify)"
    )
    res["trigger_overhead_definition"] = (
        f"median over {ROUNDS} alternating rounds of "
        "(events_per_s_plain / events_per_s_with_triggers - 1) within the round"
    )
    return res
