"""User encoders: turn a batch of users' weighted event histories into unit vectors.

Weights arrive fully prepared by the database (kind weight, rating mapping, time decay;
negative = push away), so encoders only combine them. A user whose history cancels out
gets a zero row and norm 0; the caller stores NULL for it. The worker calls every encoder
through ``encode_batch(UserBatch)`` (recdb.encoders.protocol); ``encode`` is each one's
array-level core.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from recdb.config import USER_ENCODER_NAMES
from recdb.encoders.protocol import UserBatch
from recdb.encoders.text import TextEncoder, resolve_device

# "sequence" is the trained model served from recdb.models (recdb.sequence), not built here.
_ZERO_NORM = 1e-6
_PROFILE_ITEMS = 8
# Keeps all profile entries inside the encoder's token budget (256 tokens ~ 8 x 100 chars).
_PROFILE_ENTRY_CHARS = 100


def _array(a: Any, dtype: type, name: str, ndim: int) -> np.ndarray:
    # Writable + contiguous so torch.from_numpy shares memory without a warning.
    arr = np.require(np.asarray(a), dtype=dtype, requirements=["C", "W"])
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


class MeanUserEncoder:
    """Weighted sum of the user's item vectors, normalised: cheap and strong for feeds."""

    name = "mean"

    def __init__(self, device: str = "auto") -> None:
        self.device = resolve_device(device)

    def encode_batch(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        """The batch's users over the searched item vectors."""
        item_ids, item_vecs = batch.reader.item_vectors(batch.unique_items)
        return self.encode_over(batch, item_ids, item_vecs)

    def encode_over(
        self, batch: UserBatch, item_ids: np.ndarray, item_vecs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The batch's users over the given item vectors (rows of ``item_vecs`` are the items
        ``item_ids``); events on other items are left out."""
        rows, keep = batch.positions(item_ids)
        return self.encode(
            batch.n_users, batch.user_index[keep], rows[keep], batch.weights[keep], item_vecs
        )

    def encode(
        self,
        n_users: int,
        user_index: np.ndarray,
        item_rows: np.ndarray,
        weights: np.ndarray,
        item_vecs: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (vectors (n_users, dim) float32, norms (n_users,) float32 of the raw sums)."""
        users = _array(user_index, np.int64, "user_index", 1)
        rows = _array(item_rows, np.int64, "item_rows", 1)
        w = _array(weights, np.float32, "weights", 1)
        vecs = _array(item_vecs, np.float32, "item_vecs", 2)
        if not len(users) == len(rows) == len(w):
            raise ValueError(
                f"user_index, item_rows and weights differ in length "
                f"({len(users)}, {len(rows)}, {len(w)})"
            )
        # Checked here because an out-of-range index is a device-side assert on CUDA.
        if len(users) and (users.min() < 0 or users.max() >= n_users):
            raise ValueError(f"user_index out of range [0, {n_users})")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(vecs)):
            raise ValueError(f"item_rows out of range [0, {len(vecs)})")

        dev = self.device
        items = torch.from_numpy(vecs).to(dev)
        if len(users):
            # The (users x items) weight matrix is sparse: one product, no (events x dim)
            # intermediate (5-10x faster than gathering each event's vector). Repeated
            # (user, item) pairs add up, as events do.
            weights = torch.sparse_coo_tensor(
                torch.from_numpy(np.stack([users, rows])).to(dev),
                torch.from_numpy(w).to(dev),
                (n_users, len(vecs)),
                check_invariants=False,
            )
            sums = torch.sparse.mm(weights, items)
        else:
            sums = torch.zeros((n_users, vecs.shape[1]), dtype=torch.float32, device=dev)
        norms = sums.norm(dim=1)
        alive = norms >= _ZERO_NORM
        vectors = torch.where(
            alive.unsqueeze(1), sums / norms.clamp(min=_ZERO_NORM).unsqueeze(1), 0
        )
        norms = torch.where(alive, norms, 0)
        return vectors.cpu().numpy(), norms.cpu().numpy()


def _entry(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > _PROFILE_ENTRY_CHARS:
        text = text[: _PROFILE_ENTRY_CHARS - 1].rstrip() + "…"
    return text


def profile_text(events: Sequence[tuple[str, float, Any]]) -> str | None:
    """Summarise one user's (item_text, weight, recency) events as a sentence.

    Repeated events on one item are summed (a view then a dislike nets out), then the
    strongest items win, newer first on ties. None when there is nothing the user likes.
    """
    totals: dict[str, list[Any]] = {}
    for text, weight, when in events:
        key = _entry(text)
        if not key:
            continue
        if key in totals:
            totals[key][0] += float(weight)
            totals[key][1] = max(totals[key][1], when)
        else:
            totals[key] = [float(weight), when]
    by_recency = sorted(totals.items(), key=lambda kv: kv[1][1], reverse=True)
    likes = [k for k, (wt, _) in sorted(by_recency, key=lambda kv: -kv[1][0]) if wt > 0]
    dislikes = [k for k, (wt, _) in sorted(by_recency, key=lambda kv: kv[1][0]) if wt < 0]
    if not likes:
        return None
    text = "Likes: " + "; ".join(likes[:_PROFILE_ITEMS])
    if dislikes:
        text += ". Dislikes: " + "; ".join(dislikes[:_PROFILE_ITEMS])
    return text


class TextProfileUserEncoder:
    """Encode a short 'Likes: ...' profile with the text model (works for cold items too)."""

    name = "text"

    def __init__(self, text_encoder: TextEncoder) -> None:
        self.text_encoder = text_encoder

    def encode_batch(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        """Profiles of the batch's users from the titles of the items they met. Events on
        items without a searched vector are left out, as the mean encoder leaves them out."""
        have, _ = batch.reader.item_vectors(batch.unique_items)
        _, keep = batch.positions(have)
        titles = batch.reader.item_titles(batch.unique_items)
        histories: list[list[tuple[str, float, Any]]] = [[] for _ in range(batch.n_users)]
        events = zip(
            batch.user_index.tolist(),
            batch.item_ids.tolist(),
            batch.weights.tolist(),
            keep,
            strict=True,
        )
        for seq, (ui, item, w, k) in enumerate(events):
            if k:
                histories[ui].append((titles[item], w, seq))
        return self.encode(histories)

    def encode(
        self, histories: Sequence[Sequence[tuple[str, float, Any]]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (vectors (n_users, dim) float32, norms: 1.0, or 0.0 with a zero row)."""
        profiles = [profile_text(events) for events in histories]
        vectors = np.zeros((len(profiles), self.text_encoder.dim), dtype=np.float32)
        norms = np.zeros(len(profiles), dtype=np.float32)
        present = [i for i, p in enumerate(profiles) if p is not None]
        if present:
            vectors[present] = self.text_encoder.encode([profiles[i] for i in present])
            norms[present] = 1.0
        return vectors, norms


def get_user_encoder(
    name: str, text_encoder: TextEncoder | None = None
) -> MeanUserEncoder | TextProfileUserEncoder:
    """Pick a user encoder by its configured name ("text" loads a model if none is given)."""
    if name == "mean":
        return MeanUserEncoder()
    if name == "text":
        return TextProfileUserEncoder(text_encoder or TextEncoder())
    if name == "sequence":
        raise ValueError(
            "the sequence encoder is a trained model: the worker serves the active one from "
            "recdb.models (`recdb train`)"
        )
    raise ValueError(f"unknown user encoder {name!r}; valid: {', '.join(USER_ENCODER_NAMES)}")
