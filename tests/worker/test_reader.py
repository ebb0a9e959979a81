"""The worker reads item vectors packed (one value of vector_send bytes per slice, not a
row per item): what it reads is exactly what the table holds."""

from __future__ import annotations

import numpy as np
from psycopg.rows import class_row

from recdb.worker import users
from recdb.worker.sql import fetch
from tests.support.builders import add_events, add_items, axis


def test_packed_item_vectors_equal_the_stored_ones(conn, monkeypatch):
    rng = np.random.default_rng(3)
    add_items(
        conn,
        [{"item_id": i, "embedding": rng.standard_normal(len(axis(0)))} for i in range(1, 8)],
    )
    add_items(conn, [{"item_id": 99}])  # not embedded yet: absent from the answer
    monkeypatch.setattr(users, "PACKED_ITEMS", 3)  # several slices
    reader = users.DatabaseReader(conn, len(axis(0)), None)
    ids, mat = reader.item_vectors(np.array([7, 1, 99, 4, 2, 5, 3, 6]))
    stored = dict(conn.execute("SELECT item_id, embedding FROM recdb.items").fetchall())
    assert sorted(ids.tolist()) == [1, 2, 3, 4, 5, 6, 7]
    assert mat.dtype == np.float32 and mat.shape == (7, len(axis(0)))
    for i, row in zip(ids.tolist(), mat, strict=True):
        assert np.array_equal(row, np.asarray(stored[i], dtype=np.float32))
    empty_ids, empty = reader.item_vectors(np.array([99]))
    assert len(empty_ids) == 0 and empty.shape == (0, len(axis(0)))


def _events_read_from_the_table(conn) -> int:
    """Rows of recdb.events fetched from the table by index scans so far (this backend's
    counts flushed first; an index-only scan the visibility map lets skip the table
    fetches none)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute(
        "SELECT idx_tup_fetch FROM pg_stat_user_tables WHERE relid = 'recdb.events'::regclass"
    ).fetchone()[0]


def test_a_users_history_reaches_the_worker_packed_and_from_the_events_key_alone(conn):
    """user_events hands each user's newest events over packed (item ids and weights as
    one value each, in event order) with the weights rerank()'s fold uses, and reads them
    from events_pkey alone (it carries occurred_at since revision 0017): a user's events
    lie on as many heap pages as events, every user's interleaving in time."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(1, 7)])
    for round_ in range(3):  # the two users' events interleave
        add_events(conn, 1, [1 + round_, 4], "click")
        add_events(conn, 2, [5], "rate", 1 + round_)
    add_events(conn, 1, [6], "dislike")
    conn.execute("VACUUM (ANALYZE) recdb.events")
    conn.execute("SET enable_seqscan = off")  # a few rows: as on a real log, through the key
    before = _events_read_from_the_table(conn)
    rows = fetch(
        conn, "user_events", {"users": [2, 1], "max_history": 5}, class_row(users.UserEvents),
        binary=True,
    )  # fmt: skip
    assert _events_read_from_the_table(conn) == before
    expected = conn.execute(
        "SELECT e.user_id, array_agg(e.item_id ORDER BY e.event_id),"
        " array_agg(recdb.event_weight(k.weight, k.half_life, k.value_center, k.value_scale,"
        "   e.value, n.ref - e.occurred_at)::real ORDER BY e.event_id)"
        " FROM (SELECT * FROM recdb.events x WHERE x.user_id = 1 OR x.user_id = 2"
        "       ORDER BY x.event_id DESC LIMIT 100) e"
        " JOIN (SELECT user_id, event_id FROM (SELECT user_id, event_id, row_number() OVER"
        "       (PARTITION BY user_id ORDER BY event_id DESC) AS r FROM recdb.events) t"
        "       WHERE r <= 5) keep USING (user_id, event_id)"
        " JOIN (SELECT user_id, max(occurred_at) AS ref FROM (SELECT user_id, occurred_at,"
        "       row_number() OVER (PARTITION BY user_id ORDER BY event_id DESC) AS r"
        "       FROM recdb.events) t WHERE r <= 5 GROUP BY user_id) n USING (user_id)"
        " JOIN recdb.event_kinds k ON k.kind = e.kind GROUP BY e.user_id"
    ).fetchall()
    by_user = {u: (items, weights) for u, items, weights in expected}
    assert sorted(r.user_index for r in rows) == [0, 1]
    for r in rows:
        items, weights = by_user[[2, 1][r.user_index]]
        assert np.frombuffer(r.items, dtype=">i8").tolist() == items
        assert np.array_equal(
            np.frombuffer(r.weights, dtype=">f4").astype(np.float32),
            np.asarray(weights, dtype=np.float32),
        )
        assert r.n == len(items) == min(5, 3 if r.user_index == 0 else 7)
        assert len(r.items) == 8 * r.n
