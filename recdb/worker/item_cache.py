"""Item vectors a worker keeps between user batches, checked against the table every batch.

A user batch reads the vector of every item its users' histories touch: at 500 users that
is thousands of vectors of 1.5 kB (384 dimensions), the largest read of the batch (~45 of
~110 ms on a 10^5-item shop). Popular items recur batch after batch, so the worker keeps
the vectors it read, keyed by the row's version (``xmin``, which every write to the row
changes, whoever makes it). Each batch still asks the table for the version of every
wanted item (sql/queries/worker.sql ``item_versions``, 8 bytes an item) and reads only the
vectors that are missing or changed: what the encoder gets is always what the table holds.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class ItemVectorCache:
    """At most ``capacity`` item vectors, least recently used dropped first (0: off)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"item cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._rows: OrderedDict[int, tuple[int, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def known(
        self, ids: np.ndarray, versions: np.ndarray
    ) -> tuple[list[int], list[np.ndarray], np.ndarray]:
        """(ids held at these versions, their vectors, the ids to read from the table)."""
        have: list[int] = []
        vecs: list[np.ndarray] = []
        read: list[int] = []
        rows = self._rows
        for i, v in zip(ids.tolist(), versions.tolist(), strict=True):
            row = rows.get(i)
            if row is not None and row[0] == v:
                rows.move_to_end(i)
                have.append(i)
                vecs.append(row[1])
            else:
                read.append(i)
        return have, vecs, np.asarray(read, dtype=np.int64)

    def put(self, ids: np.ndarray, versions: np.ndarray, vectors: np.ndarray) -> None:
        """Keep what was just read (the oldest entries go beyond capacity). Each row is
        copied: a view would keep the whole batch's matrix alive."""
        if not self.capacity:
            return
        rows = self._rows
        for i, v, vec in zip(ids.tolist(), versions.tolist(), vectors, strict=True):
            rows[i] = (v, vec.copy())
            rows.move_to_end(i)
        while len(rows) > self.capacity:
            rows.popitem(last=False)

    def clear(self) -> None:
        self._rows.clear()
