"""The model registry in recdb.models: store, load (hash-checked) and activate models.

The blob is TrainedModel.to_bytes() (no pickle), so loading a row executes no code, and
the sha256 column (checked by a constraint on write and here on read) catches a blob
altered after the fact.
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from recdb.db.sqlfiles import query
from recdb.sequence.model import TrainedModel

_Q = "queries/models.sql"


class ModelNotFound(LookupError):
    """No row with that model_id in recdb.models."""


def save(conn: psycopg.Connection[Any], model: TrainedModel, trained_through: int) -> int:
    """Insert the model (inactive) and return its model_id."""
    blob = model.to_bytes()
    metrics = {k: v for k, v in model.metrics.items() if k != "history"}
    metrics["history"] = [
        {k: round(float(v), 6) for k, v in h.items()} for h in model.metrics.get("history", [])
    ]
    row = conn.execute(
        query(_Q, "insert_model"),
        {
            "config": Jsonb(model.cfg.to_json()),
            "metrics": Jsonb(metrics),
            "text_dim": model.text_dim,
            "dim": model.dim,
            "trained_through": int(trained_through),
            "blob": blob,
            "fold_weights": None if model.fold is None else [float(w) for w in model.fold],
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def load(conn: psycopg.Connection[Any], model_id: int, device: Any = "cpu") -> TrainedModel:
    """Rebuild model ``model_id`` on ``device``; the stored hash must match the bytes."""
    row = conn.execute(query(_Q, "model_blob"), {"model_id": model_id}).fetchone()
    if row is None:
        raise ModelNotFound(f"no model with model_id {model_id} in recdb.models")
    blob, sha = bytes(row[0]), bytes(row[1])
    if hashlib.sha256(blob).digest() != sha:
        raise ValueError(f"model {model_id}: blob does not match its sha256; refusing to load")
    return TrainedModel.from_bytes(blob, device=device)


def active(conn: psycopg.Connection[Any]) -> int | None:
    """model_id of the served model, or None (text vectors are served)."""
    row = conn.execute(query(_Q, "active_model")).fetchone()
    return None if row is None else int(row[0])


def activate(conn: psycopg.Connection[Any], model_id: int | None, **kwargs: Any) -> int:
    """Serve ``model_id`` (None: no model), staged in bulk first (recdb.sequence.activation);
    returns how many items the switch re-queued (their text changed meanwhile). Commits."""
    from recdb.sequence.activation import activate as staged_activation

    return staged_activation(conn, model_id, **kwargs).requeued


def switch(conn: psycopg.Connection[Any], model_id: int | None) -> int:
    """recdb.activate_model(): the switch to a staged model, in the caller's transaction."""
    try:
        row = conn.execute(query(_Q, "activate"), {"model_id": model_id}).fetchone()
    except psycopg.errors.NoDataFound as exc:
        raise ModelNotFound(str(exc).strip()) from None
    assert row is not None
    return int(row[0])


def list_models(conn: psycopg.Connection[Any], limit: int = 10) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query(_Q, "list_models"), {"limit": limit}).fetchall()
