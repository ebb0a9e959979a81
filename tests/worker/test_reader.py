"""The worker reads item vectors packed (one value of vector_send bytes per slice, not a
row per item): what it reads is exactly what the table holds."""

from __future__ import annotations

import numpy as np

from recdb.worker import users
from tests.support.builders import add_items, axis


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
