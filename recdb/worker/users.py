"""User batches: read each claimed user's weighted events once, let the serving user
encoder (recdb.encoders.UserEncoder) turn them into vectors, write them back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg.rows import class_row, namedtuple_row, tuple_row

from recdb.worker.config import WorkerStats
from recdb.worker.item_cache import ItemVectorCache
from recdb.worker.items import flush_tiny
from recdb.worker.model_sync import ModelSync
from recdb.worker.queue import Done
from recdb.worker.sql import fetch, q

if TYPE_CHECKING:
    from recdb.encoders import UserEncoder


@dataclass(slots=True)
class UserEvents:
    """A row of user_events: one user's newest events, in event order."""

    user_index: int
    items: bytes  # big-endian int8s, oldest event first
    weights: bytes  # big-endian float4s, one per item
    through: int
    n: int
    last_at: datetime
    snapshot: str  # pg_snapshot of the statement: which events it saw


@dataclass(slots=True)
class UserSequence:
    """A row of user_sequences: one user's events as the sequence model reads them."""

    user_index: int
    items: list[int]
    kinds: list[str]
    vals: list[float | None]
    ts: list[float]


class DatabaseReader:
    """recdb.encoders.BatchReader on the batch's own transaction."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        dim: int,
        snapshot: str | None,
        cache: ItemVectorCache | None = None,
    ) -> None:
        self.conn = conn
        self.dim = dim  # of the embedding columns: the width of an empty answer
        self.snapshot = snapshot  # user_events' snapshot: sequences read the same events
        self.cache = cache  # the worker's, kept between batches; None: read every vector
        self.vectors_cached = 0  # item vectors this reader took from the cache...
        self.vectors_read = 0  # ...and read from the table

    def item_vectors(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The served vectors of ``item_ids`` that have one, in any order; with a cache,
        only the missing or changed ones are read (see recdb.worker.item_cache)."""
        if self.cache is None or not self.cache.capacity:
            ids, mat, _ = self._vectors("item_vectors", item_ids)
            self.vectors_read += len(ids)
            return ids, mat
        ids, versions = self._versions(item_ids)
        have, held, read = self.cache.known(ids, versions)
        got, mat, got_versions = self._vectors("item_vectors", read)
        self.vectors_cached += len(have)
        self.vectors_read += len(got)
        if got_versions is not None:
            self.cache.put(got, got_versions, mat)
        if not len(have):
            return got, mat
        return np.concatenate([have, got]), np.concatenate([held, mat])

    def item_text_vectors(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids, mat, _ = self._vectors("item_text_vectors", item_ids)
        return ids, mat

    def item_titles(self, item_ids: np.ndarray) -> dict[int, str]:
        rows = fetch(self.conn, "item_titles", {"ids": item_ids.tolist()}, namedtuple_row)
        return {r.item_id: r.title for r in rows}

    def user_sequences(
        self, user_ids: Sequence[int], through: np.ndarray, max_len: int
    ) -> list[list[tuple[Any, ...]]]:
        histories: list[list[tuple[Any, ...]]] = [[] for _ in user_ids]
        params = {
            "users": user_ids,
            "through": through.tolist(),
            "max_len": max_len,
            "snapshot": self.snapshot,
        }
        for r in fetch(self.conn, "user_sequences", params, class_row(UserSequence)):
            histories[r.user_index] = list(zip(r.items, r.kinds, r.vals, r.ts, strict=True))
        return histories

    def kind_signs(self) -> dict[str, float]:
        return {r.kind: float(r.sign) for r in fetch(self.conn, "kind_signs", {}, namedtuple_row)}

    def _versions(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, row versions) of the wanted items that have a vector."""
        ids: list[np.ndarray] = []
        versions: list[np.ndarray] = []
        for row in self._packed("item_versions", item_ids):
            ids.append(np.asarray(row[0], dtype=np.int64))
            versions.append(np.asarray(row[1], dtype=np.int64))
        if not ids:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        return np.concatenate(ids), np.concatenate(versions)

    def _packed(self, name: str, item_ids: np.ndarray) -> Iterator[tuple[Any, ...]]:
        """The one-row answers of packed query ``name`` (ids first) that found something,
        over slices that keep each packed value far below PostgreSQL's 1 GB limit."""
        wanted = item_ids.tolist()
        for start in range(0, len(wanted), PACKED_ITEMS):
            params = {"ids": wanted[start : start + PACKED_ITEMS]}
            row = fetch(self.conn, name, params, tuple_row, binary=True)[0]
            if row[0]:
                yield row

    def _vectors(
        self, name: str, item_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(ids, matrix, row versions if the query returns them) from a packed (ids,
        vector_send bytes[, versions]) query."""
        ids: list[np.ndarray] = []
        mats: list[np.ndarray] = []
        versions: list[np.ndarray] = []
        for row in self._packed(name, item_ids):
            ids.append(np.asarray(row[0], dtype=np.int64))
            mats.append(unpack_vectors(row[1], len(row[0])))
            if len(row) > 2:
                versions.append(np.asarray(row[2], dtype=np.int64))
        if not ids:
            none = np.array([], dtype=np.int64)
            return none, np.zeros((0, self.dim), dtype=np.float32), none
        kept = np.concatenate(versions) if versions else None
        return np.concatenate(ids), np.concatenate(mats), kept


# Items per packed read: 50,000 x 384 float4 = 77 MB per value.
PACKED_ITEMS = 50_000


def unpack_vectors(packed: bytes, n: int) -> np.ndarray:
    """n pgvector binary values (vector_send) end to end -> (n, dim) float32."""
    raw = np.frombuffer(packed, dtype=np.uint8).reshape(n, -1)
    return raw[:, 4:].copy().view(">f4").astype(np.float32)


class UserWriter:
    """Encodes and writes claimed users inside the batch transaction."""

    def __init__(
        self,
        configured: UserEncoder,
        models: ModelSync,
        stats: WorkerStats,
        max_history: int,
        item_cache: int = 0,
    ) -> None:
        self.configured = configured  # the worker's user encoder; models picks who serves
        self.models = models
        self.stats = stats
        self.max_history = max_history
        self.item_cache = ItemVectorCache(item_cache)  # served item vectors, between batches

    def encode(self, conn: psycopg.Connection[Any], ids: list[int]) -> Done:
        """Encode and write the claimed users (all of them: claims hold the users)."""
        from recdb.encoders import UserBatch  # recdb.encoders loads torch: on first use

        row_ids = [r.id for r in fetch(conn, "lock_user_rows", {"ids": ids}, namedtuple_row)]
        self.models.sync(conn)
        encoder = self.models.user_encoder(self.configured)
        n = len(ids)
        per_user = fetch(
            conn,
            "user_events",
            {"users": ids, "max_history": self.max_history},
            class_row(UserEvents),
            binary=True,
        )
        through = np.zeros(n, dtype=np.int64)
        counts = np.zeros(n, dtype=np.int32)
        last_at: list[Any] = [None] * n
        for r in per_user:
            through[r.user_index] = r.through
            counts[r.user_index] = r.n
            last_at[r.user_index] = r.last_at
        lengths = [len(r.items) // 8 for r in per_user]
        user_index = np.repeat(np.array([r.user_index for r in per_user], dtype=np.int64), lengths)
        item_ids = np.frombuffer(b"".join(r.items for r in per_user), dtype=">i8").astype(np.int64)
        weights = np.frombuffer(b"".join(r.weights for r in per_user), dtype=">f4").astype(
            np.float32
        )
        snapshot = per_user[0].snapshot if per_user else None
        reader = DatabaseReader(conn, self.models.embedding_dim, snapshot, self.item_cache)
        batch = UserBatch(ids, user_index, item_ids, weights, through, reader)
        vectors, norms = encoder.encode_batch(batch)
        self.stats.item_vectors_cached += reader.vectors_cached
        self.stats.item_vectors_read += reader.vectors_read
        vectors = flush_tiny(vectors)
        conn.execute(
            q("write_users"),
            {
                "ids": ids,
                "vectors": [v if nrm > 0 else None for v, nrm in zip(vectors, norms, strict=True)],
                "norms": norms.astype(np.float32).tolist(),
                "through": through.tolist(),
                "last_at": last_at,
                "counts": counts.tolist(),
                "encoder": encoder.name,
                "snapshot": snapshot,
            },
        )
        conn.execute(q("delete_user_rows"), {"row_ids": row_ids})
        self.stats.users_encoded += n
        return Done(ids, n)
