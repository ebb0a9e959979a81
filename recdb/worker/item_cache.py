"""Item vectors a worker keeps between user batches, checked against the table every batch.

A user batch reads the vector of every item its users' histories touch: at 500 users that
is thousands of vectors of 1.5 kB (384 dimensions), the largest read of the batch (~45 of
~110 ms on a 10^5-item shop). Popular items recur batch after batch, so the worker keeps
the vectors it read, keyed by the row's version (``xmin``, which every write to the row
changes, whoever makes it). Each batch still asks the table for the version of every
wanted item (sql/queries/worker.sql ``item_versions``, 8 bytes an item) and reads only the
vectors that are missing or changed: what the encoder gets is always what the table holds.

The vectors sit in one matrix, a slot per item: a batch's lookups, version checks and
gathers are array operations, not a Python step per item (tens of thousands a batch, which
cost more than the database's own work on them).
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.empty(0, dtype=np.int64)
_FIRST_SLOTS = 1024  # the matrix grows by doubling up to the capacity


class ItemVectorCache:
    """At most ``capacity`` item vectors, least recently used dropped first (0: off)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"item cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.clear()

    def __len__(self) -> int:
        return len(self._slot)

    def clear(self) -> None:
        self._slot: dict[int, int] = {}  # item id -> row of the arrays below
        self._ids = _EMPTY  # per slot: the item it holds (meaningless when free)
        self._versions = _EMPTY
        self._used = _EMPTY  # per slot: the lookup (clock) that last used it
        self._vecs = np.empty((0, 0), dtype=np.float32)
        self._free: list[int] = []
        self._clock = 0

    def known(
        self, ids: np.ndarray, versions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids held at these versions, their vectors (a copy), the ids to read)."""
        ids = np.asarray(ids, dtype=np.int64)
        self._clock += 1
        slots = self._slots_of(ids)
        hit = slots >= 0
        hit[hit] = self._versions[slots[hit]] == np.asarray(versions, dtype=np.int64)[hit]
        held = slots[hit]
        self._used[held] = self._clock
        return ids[hit], self._vecs[held], ids[~hit]

    def put(self, ids: np.ndarray, versions: np.ndarray, vectors: np.ndarray) -> None:
        """Keep what was just read, ``ids`` distinct (as a read returns them); the least
        recently used entries go beyond capacity, and of more than fit, the last ones."""
        if not self.capacity or not len(ids):
            return
        cap = self.capacity
        if len(self._ids) and self._vecs.shape[1] != np.shape(vectors)[1]:
            self.clear()  # another width (a model of another shape): start over
        ids = np.asarray(ids, dtype=np.int64)[-cap:]
        versions = np.asarray(versions, dtype=np.int64)[-cap:]
        vectors = np.asarray(vectors, dtype=np.float32)[-cap:]
        slots = self._slots_of(ids)
        new = slots < 0
        if new.any():
            # These ids' own slots are the last to go (at most cap of them: the others fit).
            self._used[slots[~new]] = np.iinfo(np.int64).max
            slots[new] = self._allocate(int(new.sum()), vectors.shape[1])
            self._slot.update(zip(ids[new].tolist(), slots[new].tolist(), strict=True))
        self._ids[slots] = ids
        self._versions[slots] = versions
        self._vecs[slots] = vectors
        self._used[slots] = self._clock

    def _slots_of(self, ids: np.ndarray) -> np.ndarray:
        get = self._slot.get
        return np.fromiter((get(i, -1) for i in ids.tolist()), dtype=np.int64, count=len(ids))

    def _allocate(self, n: int, dim: int) -> np.ndarray:
        """n slots: free ones, then new ones (growing the arrays), then evicted ones."""
        out: list[int] = []
        take = min(n, len(self._free))
        if take:
            out += self._free[-take:]
            del self._free[-take:]
        size = len(self._ids)
        if len(out) < n and size < self.capacity:
            grown = min(self.capacity, max(2 * size, size + n - len(out), _FIRST_SLOTS))
            self._grow(grown, dim)
            fresh = list(range(size, grown))
            more = n - len(out)
            out += fresh[:more]
            self._free += fresh[more:]
        if len(out) < n:
            more = n - len(out)
            self._used[out] = np.iinfo(np.int64).max  # taken above: not victims
            victims = np.argpartition(self._used, more - 1)[:more]
            for item in self._ids[victims].tolist():
                del self._slot[item]
            out += victims.tolist()
        return np.asarray(out, dtype=np.int64)

    def _grow(self, size: int, dim: int) -> None:
        extra = size - len(self._ids)
        self._ids = np.concatenate([self._ids, np.zeros(extra, dtype=np.int64)])
        self._versions = np.concatenate([self._versions, np.zeros(extra, dtype=np.int64)])
        self._used = np.concatenate([self._used, np.zeros(extra, dtype=np.int64)])
        vecs = np.empty((size, dim), dtype=np.float32)
        if len(self._vecs):
            vecs[: len(self._vecs)] = self._vecs
        self._vecs = vecs
