"""The end-of-scenario check shared by the fault and concurrency tests: queues drained and
every stored vector equal to a from-scratch recomputation."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

from recdb.worker import Worker, WorkerConfig, requeue_all_items, requeue_all_users

# One statement, one snapshot: events the stored vector covers (event_count) plus events
# rerank() folds in (fresh_events) must be every committed event of the user.
ZERO_LAG_CHECK = """
SELECT (SELECT fresh_events FROM recdb.user_vector(%(u)s)),
       coalesce((SELECT event_count FROM recdb.users WHERE user_id = %(u)s), 0),
       (SELECT count(*) FROM recdb.events WHERE user_id = %(u)s)
"""


def zero_lag_gap(conn: psycopg.Connection[Any], user_id: int) -> int:
    """Committed events of the user that neither the stored vector nor the fold counts
    (0 when the zero-lag guarantee holds; negative when an event is counted twice)."""
    fresh, stored, total = conn.execute(ZERO_LAG_CHECK, {"u": user_id}).fetchone()
    return int(total) - int(fresh) - int(stored)


def drain(url: str, encoder: Any) -> Any:
    return Worker(WorkerConfig(database_url=url, device="cpu"), text_encoder=encoder).run(once=True)


def _vectors(conn: psycopg.Connection[Any]) -> tuple[dict, dict]:
    items = {
        r[0]: r[1]
        for r in conn.execute("SELECT item_id, embedding FROM recdb.items ORDER BY 1").fetchall()
    }
    users = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT user_id, embedding, encoded_through FROM recdb.users ORDER BY 1"
        ).fetchall()
    }
    return items, users


def assert_consistent(conn: psycopg.Connection[Any], url: str, encoder: Any) -> None:
    """Queues empty; every vector equals what a from-scratch re-encoding produces."""
    drain(url, encoder)
    assert conn.execute("SELECT count(*) FROM recdb.item_queue").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM recdb.user_queue").fetchone()[0] == 0
    items, users = _vectors(conn)
    assert all(v is not None for v in items.values())
    n_users = conn.execute("SELECT count(DISTINCT user_id) FROM recdb.events").fetchone()[0]
    assert len(users) == n_users
    latest = dict(conn.execute("SELECT user_id, max(event_id) FROM recdb.events GROUP BY 1"))
    assert all(users[u][1] == latest[u] for u in users)  # watermark = newest event
    requeue_all_items(conn)
    requeue_all_users(conn)
    drain(url, encoder)
    items2, users2 = _vectors(conn)
    for i, v in items.items():
        assert np.allclose(v, items2[i], atol=1e-5), f"item {i} was stale"
    for u, (v, _) in users.items():
        v2 = users2[u][0]
        assert (v is None and v2 is None) or np.allclose(v, v2, atol=1e-5), f"user {u} was stale"
