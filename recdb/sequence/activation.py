"""Activate a model at catalogue scale: project every item beside the served vectors,
build their index once, then switch in one transaction.

Staging (keyset chunks, one transaction each) and the index build run while the old
model is served and the worker keeps encoding; only recdb.activate_model() holds the
activation lock, and rerank() sees the old model whole until it commits and the new one
whole after. An item whose text changes meanwhile is re-queued by the switch.

The session activating a model holds that model's staging lock throughout: a second
activation of the same model is refused (ActivationInProgress), and each activation
first drops what killed ones left behind (staged rows and built tables whose lock nobody
holds: at 10^6 items, gigabytes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from recdb.config import ACTIVATION_BUILD_MEMORY, ACTIVATION_CHUNK
from recdb.db.sqlfiles import query
from recdb.sequence import registry

_Q = "queries/models.sql"


@dataclass(frozen=True, slots=True)
class Activation:
    """What an activation did, and how long each phase took."""

    model_id: int | None
    staged: int  # items projected
    requeued: int  # items whose text changed while staged: the worker encodes them
    stage_s: float
    build_s: float
    switch_s: float


class ActiveModelChanged(RuntimeError):
    """Another activation committed while this one was staged."""


class ModelDoesNotFit(ValueError):
    """The model's vectors are not the width of the vector columns."""


class ActivationInProgress(RuntimeError):
    """Another session is activating the same model."""


def activate(
    conn: psycopg.Connection[Any],
    model_id: int | None,
    *,
    device: Any = "cpu",
    chunk: int = ACTIVATION_CHUNK,
    build_memory: str = ACTIVATION_BUILD_MEMORY,
    expect_active: int | bool | None = False,
    progress: bool = False,
) -> Activation:
    """Serve ``model_id`` (None: the text vectors). ``expect_active`` (when not False):
    the model that must still be active at the switch, or ActiveModelChanged. Each phase
    commits on its own, on an autocommit connection or not."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    conn.rollback()
    space = model_id or 0
    served = registry.active(conn)
    conn.rollback()
    if served == model_id:
        return Activation(model_id, 0, 0, 0.0, 0.0, 0.0)  # served already
    if not _bool(conn, "staging_lock", {"space": space}):
        conn.rollback()
        what = "the text vectors" if model_id is None else f"model {model_id}"
        raise ActivationInProgress(
            f"another session is activating {what}; wait for it to finish (or stop it)"
        )
    try:
        conn.commit()
        clear_abandoned(conn, keep=space)
        return _activate(conn, model_id, space, device, chunk, build_memory, expect_active,
                         progress)  # fmt: skip
    finally:
        if not conn.closed:  # a lost session has released its locks already
            conn.rollback()
            conn.execute(query(_Q, "staging_unlock"), {"space": space})
            conn.commit()


def clear_abandoned(conn: psycopg.Connection[Any], keep: int | None = None) -> list[int]:
    """Drop the stagings (rows and built tables) of activations that were killed: those
    whose staging lock no session holds, other than space ``keep``. Returns their spaces.
    A staging in flight holds its lock; one inside a transaction (recdb.activate_model(NULL)
    from SQL) is invisible here."""
    spaces = [int(r[0]) for r in conn.execute(query(_Q, "staged_spaces")).fetchall()]
    conn.commit()
    mine = [s for s in spaces if s != keep and _bool(conn, "staging_lock", {"space": s})]
    try:
        with conn.transaction():
            for s in mine:
                conn.execute(query(_Q, "unstage"), {"space": s})
    finally:
        for s in mine:
            conn.execute(query(_Q, "staging_unlock"), {"space": s})
        conn.commit()
    return mine


def _activate(
    conn: psycopg.Connection[Any],
    model_id: int | None,
    space: int,
    device: Any,
    chunk: int,
    build_memory: str,
    expect_active: int | bool | None,
    progress: bool,
) -> Activation:
    """activate(), its staging lock held."""
    t0 = time.perf_counter()
    if model_id is None:
        staged = _one(conn, "stage_text_vectors")
        conn.commit()
    else:
        model = registry.load(conn, model_id, device=device)  # ModelNotFound first
        dim = _one(conn, "vector_columns_dim")
        conn.rollback()  # each phase below commits on its own: no transaction may be open
        if model.dim != dim or model.text_dim != dim:
            raise ModelDoesNotFit(
                f"model {model_id} maps {model.text_dim}-d text vectors to {model.dim}-d "
                f"vectors, but the embedding columns are vector({dim}); activate another "
                "model or train one on this database's text vectors"
            )
        staged = _stage(conn, model, model_id, chunk, progress)
    t1 = time.perf_counter()
    try:
        with conn.transaction():
            conn.execute(query(_Q, "build_settings"), {"memory": build_memory})
            _one(conn, "build_vector_space", {"space": space})
        t2 = time.perf_counter()
        with conn.transaction():
            conn.execute(query(_Q, "activation_lock"))
            if expect_active is not False and registry.active(conn) != expect_active:
                raise ActiveModelChanged(
                    f"model {registry.active(conn)} was activated while model {model_id} "
                    "was staged; not replacing it"
                )
            requeued = registry.switch(conn, model_id)
    except BaseException:
        with conn.transaction():
            conn.execute(query(_Q, "unstage"), {"space": space})
        raise
    return Activation(model_id, staged, requeued, t1 - t0, t2 - t1, time.perf_counter() - t2)


def _stage(
    conn: psycopg.Connection[Any], model: Any, model_id: int, chunk: int, progress: bool
) -> int:
    """Project every item with a text vector, ``chunk`` per transaction."""
    from tqdm.auto import tqdm

    from recdb.sequence.fold import successor_vectors

    with conn.transaction():
        conn.execute(query(_Q, "unstage"), {"space": model_id})
        total = _one(conn, "items_total")
    after, staged = -(2**63), 0
    with tqdm(total=total, desc=f"model {model_id}", unit=" items", disable=not progress) as bar:
        while True:
            with conn.transaction():
                rows = conn.execute(
                    query(_Q, "stage_chunk"), {"after": after, "limit": chunk}, binary=True
                ).fetchall()
                if not rows:
                    break
                ids = [int(r[0]) for r in rows]
                text = np.stack([np.asarray(r[1], dtype=np.float32) for r in rows])
                vectors = _finite(model.item_vectors(ids, text))
                nexts: list[np.ndarray | None] = [None] * len(ids)
                if model.fold is not None:
                    nexts = list(_finite(successor_vectors(model, ids, vectors)))
                conn.execute(
                    query(_Q, "stage_items"),
                    {
                        "space": model_id,
                        "ids": ids,
                        "text_keys": [r[2] for r in rows],
                        "vectors": list(vectors),
                        "nexts": nexts,
                    },
                )
            after, staged = ids[-1], staged + len(ids)
            bar.update(len(ids))
    return staged


def _finite(vectors: np.ndarray) -> np.ndarray:
    """As the worker writes them: float4, nothing pgvector would refuse."""
    from recdb.worker.items import flush_tiny

    if not np.isfinite(vectors).all():
        raise ValueError("the model produced non-finite item vectors")
    return flush_tiny(vectors)


def _bool(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> bool:
    row = conn.execute(query(_Q, name), params).fetchone()
    return bool(row and row[0])


def _one(conn: psycopg.Connection[Any], name: str, params: dict[str, Any] | None = None) -> int:
    row = conn.execute(query(_Q, name), params).fetchone()
    assert row is not None
    return int(row[0])
