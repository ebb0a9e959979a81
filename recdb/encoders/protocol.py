"""The one way every user encoder is called: ``encoder.encode_batch(batch) -> (vectors, norms)``.

The worker reads a batch's weighted events once and hands the same UserBatch to whichever
encoder serves (mean, text profile, or the active sequence model). What else an encoder
needs from the database (item vectors in its space, titles, event sequences) it asks the
batch's reader for, so a mean-encoder batch pays for no title or sequence query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np


class BatchReader(Protocol):
    """Reads a user encoder may need beyond the batch's events. The worker implements it on
    the batch's transaction (what it reads is consistent with the claimed rows)."""

    def item_vectors(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those items that have a searched vector (recdb.items.embedding)."""
        ...

    def item_text_vectors(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, text vectors) of those items that have a text vector."""
        ...

    def item_titles(self, item_ids: np.ndarray) -> dict[int, str]:
        """item_id -> title."""
        ...

    def user_sequences(
        self, user_ids: Sequence[int], through: np.ndarray, max_len: int
    ) -> list[list[tuple[Any, ...]]]:
        """Per user (in ``user_ids`` order), the newest ``max_len`` events up to event id
        ``through``, oldest first, as (item_id, kind, value, epoch seconds)."""
        ...

    def kind_signs(self) -> dict[str, float]:
        """kind -> sign of its weight (recdb.event_kinds): which way rerank()'s fold of a
        trained model moves a user for an event of that kind."""
        ...


@dataclass(frozen=True)
class UserBatch:
    """The users of one batch and their weighted events (one entry per event, flattened)."""

    user_ids: list[int]  # the users to encode; output row i is user_ids[i]
    user_index: np.ndarray  # (events,) int64: each event's row in user_ids
    item_ids: np.ndarray  # (events,) int64
    weights: np.ndarray  # (events,) float32, exactly as rerank()'s zero-lag fold weighs them
    through: np.ndarray  # (users,) int64: the newest event id read for each user
    reader: BatchReader

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @cached_property
    def unique_items(self) -> np.ndarray:
        """The distinct items the batch's events touch (sorted)."""
        return np.unique(self.item_ids)

    def positions(self, have: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each event's item in ``have`` (vectorised lookup) and whether it is there.

        Events on items without a vector yet carry no direction; they still count as seen
        (and the item's first encoding queues the user again)."""
        wanted = self.item_ids
        if not len(have):
            return np.zeros(len(wanted), dtype=np.int64), np.zeros(len(wanted), dtype=bool)
        order = np.argsort(have)
        pos = np.minimum(np.searchsorted(have[order], wanted), len(have) - 1)
        rows = order[pos]
        return rows, have[rows] == wanted


class UserEncoder(Protocol):
    """What the worker calls, whichever encoder serves."""

    # What recdb.users.encoder records for the vectors this encoder builds.
    name: str

    def encode_batch(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        """(vectors (n_users, dim) float32, norms (n_users,) float32); a zero row with norm 0
        for a user with nothing to go on (the worker stores NULL for it)."""
        ...
