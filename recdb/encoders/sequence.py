"""The trained sequence model (recdb.sequence) behind the UserEncoder protocol.

"sequence" is not built here: it is the active model of recdb.models, which the worker
loads and wraps in this adapter for as long as it serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recdb.encoders.protocol import UserBatch
from recdb.encoders.users import MeanUserEncoder

if TYPE_CHECKING:
    from recdb.sequence import TrainedModel


class SequenceUserEncoder:
    """Users through a TrainedModel; ``mean`` gives the stored norms (see encode_batch)."""

    def __init__(self, model: TrainedModel, model_id: int, mean: MeanUserEncoder) -> None:
        self.model = model
        self.model_id = model_id
        self.mean = mean
        self.name = f"sequence:{model_id}"

    def item_vectors(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        """The model's item vectors, computed from the stored text vectors: the user
        encoding does not depend on how far the item re-projection has got."""
        ids, text = batch.reader.item_text_vectors(batch.unique_items)
        if not len(ids):
            return ids, np.zeros((0, self.model.dim), dtype=np.float32)
        return ids, self.model.item_vectors(ids.tolist(), text)

    def encode_batch(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        """Users through the sequence model, their newest events folded in as rerank()
        folds them (recdb.sequence.fold.stored_vectors: better than the model alone). The
        stored norm is the weighted sum's length (at least 1), as for the mean encoder, so
        rerank()'s zero-lag fold gives a new event the same pull whichever encoder built
        the stored vector."""
        from recdb.sequence.fold import STORED_FOLD_EVENTS, stored_vectors

        item_ids, item_vecs = self.item_vectors(batch)
        _, mean_norms = self.mean.encode_over(batch, item_ids, item_vecs)
        folds = self.model.fold is not None  # its newest events are folded, not read
        longest = self.model.cfg.max_len + (STORED_FOLD_EVENTS if folds else 0)
        histories = batch.reader.user_sequences(batch.user_ids, batch.through, longest)
        signs = batch.reader.kind_signs() if folds else {}
        vectors = stored_vectors(self.model, histories, (item_ids.tolist(), item_vecs), signs)
        alive = np.abs(vectors).sum(axis=1) > 0
        norms = np.where(alive, np.maximum(mean_norms, 1.0), 0.0).astype(np.float32)
        return vectors, norms
