"""The worker keeps item vectors between user batches (recdb.worker.item_cache) but never
encodes a user with a vector the table no longer holds, whoever changed it."""

from __future__ import annotations

import numpy as np
import pytest

from recdb.worker import Worker, WorkerConfig
from recdb.worker import users as worker_users
from recdb.worker.item_cache import ItemVectorCache
from tests.support.builders import add_events, add_items, axis
from tests.support.tiny_model import tiny_text_encoder


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def user_vector(conn, user_id: int) -> np.ndarray:
    row = conn.execute("SELECT embedding FROM recdb.users WHERE user_id = %s", (user_id,))
    return np.asarray(row.fetchone()[0], dtype=np.float32)


def requeue(conn, user_id: int) -> None:
    conn.execute("INSERT INTO recdb.user_queue (user_id) VALUES (%s)", (user_id,))


def test_an_item_vector_changed_by_any_writer_reaches_the_next_encoding(conn, db_url, encoder):
    add_items(conn, [{"item_id": i, "title": f"t{i}", "embedding": axis(i)} for i in (1, 2, 3)])
    conn.execute("DELETE FROM recdb.item_queue")  # vectors given
    add_events(conn, 7, [1, 2])
    cfg = WorkerConfig(database_url=db_url, device="cpu", user_encoder="mean", poll_interval=0.2)
    worker = Worker(cfg, text_encoder=encoder)  # one worker, one cache, across runs
    stats = worker.run(once=True)
    assert (stats.item_vectors_read, stats.item_vectors_cached) == (2, 0)
    before = user_vector(conn, 7)

    # Not the worker's write and no embedded_at: a DBA's UPDATE, a restore. The row's
    # version changes all the same.
    conn.execute("UPDATE recdb.items SET embedding = %s WHERE item_id = 2", (axis(3),))
    requeue(conn, 7)
    stats = worker.run(once=True)
    assert (stats.item_vectors_read, stats.item_vectors_cached) == (3, 1)  # item 2 re-read
    after = user_vector(conn, 7)

    requeue(conn, 7)
    Worker(WorkerConfig(**{**cfg.__dict__, "item_cache": 0}), text_encoder=encoder).run(once=True)
    uncached = user_vector(conn, 7)
    assert not np.allclose(after, before, atol=1e-3)
    assert np.array_equal(after, uncached)


def test_cached_reads_equal_the_table_and_the_cache_stays_bounded(conn):
    rng = np.random.default_rng(5)
    dim = len(axis(0))
    add_items(conn, [{"item_id": i, "embedding": rng.standard_normal(dim)} for i in range(1, 9)])
    add_items(conn, [{"item_id": 99}])  # not embedded yet: never in an answer
    cache = ItemVectorCache(3)
    reads = ([1, 2, 3, 99], [3, 2, 1], [2, 3, 4, 5], [1, 2, 3, 4, 5, 6, 7, 8, 99], [8, 7])
    for n, wanted in enumerate(reads):
        if n == 3:  # a cached vector changes
            conn.execute("UPDATE recdb.items SET embedding = %s WHERE item_id = 4", (axis(1),))
        reader = worker_users.DatabaseReader(conn, dim, None, cache)
        got, mat = reader.item_vectors(np.array(wanted))
        stored = dict(conn.execute("SELECT item_id, embedding FROM recdb.items").fetchall())
        assert sorted(got.tolist()) == sorted(set(wanted) - {99})
        assert mat.dtype == np.float32 and mat.shape == (len(got), dim)
        for i, row in zip(got.tolist(), mat, strict=True):
            assert np.array_equal(row, np.asarray(stored[i], dtype=np.float32))
        assert reader.vectors_cached + reader.vectors_read == len(got)
        assert len(cache) <= 3
        if n == 1:  # the same three items again: all from the cache
            assert (reader.vectors_cached, reader.vectors_read) == (3, 0)
    with pytest.raises(ValueError, match="capacity"):
        ItemVectorCache(-1)


def test_the_least_recently_used_vectors_go_first_and_every_hit_is_the_stored_vector():
    """LRU over lookups and writes, in place updates of a changed version, growth past the
    first block of slots, and never a vector of another item or version."""

    def vec(i: int, version: int, dim: int = 4) -> np.ndarray:
        return np.full(dim, i * 1000 + version, dtype=np.float32)

    def put(cache, ids, version=1, dim=4):
        vectors = np.stack([vec(i, version, dim) for i in ids])
        cache.put(np.array(ids), np.full(len(ids), version), vectors)

    def check(cache, ids, version=1):
        have, held, read = cache.known(np.array(ids), np.full(len(ids), version))
        for i, row in zip(have.tolist(), held, strict=True):
            assert np.array_equal(row, vec(i, version, held.shape[1]))
        return sorted(have.tolist()), sorted(read.tolist())

    cache = ItemVectorCache(3)
    put(cache, [1, 2, 3])
    assert check(cache, [1]) == ([1], [])  # 1 used: 2 is now the least recent
    put(cache, [4])
    assert len(cache) == 3
    assert check(cache, [1, 2, 3, 4]) == ([1, 3, 4], [2])
    put(cache, [3], version=2)  # a changed row: replaced in place, old version gone
    assert check(cache, [3]) == ([], [3])
    assert check(cache, [3], version=2) == ([3], [])
    put(cache, [5, 6, 7, 8, 9])  # more than fit: the last ones are kept
    assert len(cache) == 3 and check(cache, [5, 6, 7, 8, 9]) == ([7, 8, 9], [5, 6])
    put(cache, [10], dim=6)  # another width (another model's shape): starts over
    assert len(cache) == 1 and check(cache, [10, 7]) == ([10], [7])

    big = ItemVectorCache(3000)
    put(big, list(range(2500)))
    put(big, list(range(2500, 2900)))  # grows past the first block, keeps everything
    assert len(big) == 2900 and check(big, list(range(2900))) == (list(range(2900)), [])
    check(big, list(range(100, 2900)))  # 0-99 are now the least recently used
    put(big, list(range(3000, 3200)))  # 100 free slots, then 100 evicted: 0-99
    assert len(big) == 3000
    assert check(big, list(range(3200)))[1] == list(range(100)) + list(range(2900, 3000))
