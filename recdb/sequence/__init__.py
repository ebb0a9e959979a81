"""Sequence-aware user encoder (SASRec-style) whose vectors share the items' search space.

``train()`` fits the model from arrays the database layer can feed; the result encodes
items (including text-only cold items) and users into unit vectors for the HNSW index and
round-trips through ``to_bytes()`` / ``TrainedModel.from_bytes()`` for storage.
"""

from recdb.sequence.model import Event, TrainConfig, TrainedModel
from recdb.sequence.train import rank_metrics, train, validation_metrics

__all__ = ["Event", "TrainConfig", "TrainedModel", "rank_metrics", "train", "validation_metrics"]
