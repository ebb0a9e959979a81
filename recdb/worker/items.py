"""Item batches: text vectors (reused while the text is unchanged), the active model's
projection (and its "what follows this item" vectors for the zero-lag fold), and the
write-back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import class_row

from recdb.worker.config import WorkerStats
from recdb.worker.model_sync import ModelSync
from recdb.worker.queue import Done
from recdb.worker.sql import fetch, q


@dataclass(slots=True)
class LockedItem:
    """A row of lock_items."""

    item_id: int
    title: str
    body: str | None
    attrs: dict[str, Any] | None
    text_key: str | None
    text_embedding: np.ndarray | None
    legacy_ok: bool | None  # NULL (a NULL column in the test) counts as false


class ItemWriter:
    """Encodes and writes claimed items inside the batch transaction."""

    def __init__(
        self, text_encoder: Any, models: ModelSync, stats: WorkerStats, defer_seconds: float
    ) -> None:
        self.text_encoder = text_encoder
        self.models = models
        self.stats = stats
        self.defer_seconds = defer_seconds

    def encode(self, conn: psycopg.Connection[Any], ids: list[int]) -> Done:
        """Encode and write the claimed items."""
        from recdb.encoders import item_text

        text_encoder, models = self.text_encoder, self.models
        model_name = str(getattr(text_encoder, "model_name", "text"))
        identity = str(getattr(text_encoder, "identity", model_name))
        locked = fetch(
            conn,
            "lock_items",
            {"ids": ids, "model_name": model_name},
            class_row(LockedItem),
            binary=True,
        )
        existing = set(fetch(conn, "items_exist", {"ids": ids}))
        got = {r.item_id for r in locked}
        # Deleted items: nothing to encode. Locked by an app transaction in flight: leave
        # queued, deferred a little so no worker spins on them while the lock lasts.
        done = [i for i in ids if i not in existing] + sorted(got)
        held = [i for i in ids if i in existing and i not in got]
        if held:
            conn.execute(q("defer_items"), {"ids": held, "seconds": self.defer_seconds})
        if locked:
            models.sync(conn)
            item_ids = [r.item_id for r in locked]
            texts_in = [item_text(r.title, r.body, r.attrs) for r in locked]
            keys = [text_key(identity, text) for text in texts_in]
            # Only new or changed texts go through the transformer; a re-queue after a
            # model activation just re-projects the stored text vectors. Keys written
            # before they were location-independent (model path + text) still count.
            stale = [
                n
                for n, r in enumerate(locked)
                if not r.legacy_ok
                and (
                    r.text_embedding is None
                    or r.text_key not in (keys[n], text_key(model_name, texts_in[n]))
                )
            ]
            text = np.zeros((len(locked), text_encoder.dim), dtype=np.float32)
            for n, r in enumerate(locked):
                if r.text_embedding is not None:
                    text[n] = r.text_embedding
            if stale:
                texts = [texts_in[n] for n in stale]
                text[stale] = flush_tiny(text_encoder.encode(texts))
            if not np.isfinite(text).all():
                bad = [item_ids[i] for i in np.where(~np.isfinite(text).all(axis=1))[0]]
                raise ValueError(f"encoder produced non-finite values for items {bad}")
            if models.model is None:
                vectors, encoder = text, model_name
            else:
                vectors = flush_tiny(models.model.item_vectors(item_ids, text))
                encoder = f"sequence:{models.model_id}"
            conn.execute(
                q("write_items"),
                {
                    "ids": item_ids,
                    "vectors": list(vectors),
                    "text_vectors": list(text),
                    "text_keys": keys,
                    "encoder": encoder,
                },
            )
            if models.model is not None and models.model.fold is not None:
                from recdb.sequence.fold import successor_vectors

                nexts = flush_tiny(successor_vectors(models.model, item_ids, vectors))
                conn.execute(
                    q("write_item_next"),
                    {"ids": item_ids, "vectors": list(nexts), "model_id": models.model_id},
                )
        conn.execute(q("delete_items"), {"ids": done})
        self.stats.items_encoded += len(locked)
        return Done([r.item_id for r in locked], len(done))


def text_key(model_name: str, text: str) -> str:
    """Identifies the text vector's input: the same text under the same model needs no
    new encoding."""
    return hashlib.sha1(f"{model_name}\n{text}".encode()).hexdigest()


def flush_tiny(vectors: np.ndarray) -> np.ndarray:
    """Zero components below 1e-20: pgvector rejects float4 products that underflow, and
    rerank() scales stored vectors by decayed weights down to ~1e-13."""
    vectors = np.array(vectors, dtype=np.float32, copy=True)
    vectors[np.abs(vectors) < 1e-20] = 0.0
    return vectors
