"""The trained model's own fold (recdb.sequence.fold): stored in the model's blob,
installed by activation, applied by rerank() only while that model is served (with the
worker's per-item "what follows" vectors), and close to what the worker writes once it
has encoded the folded events.

Same data as test_sequence_serving: users walk a cycle of 40 items, so after a fresh
event on item x the model's next item is x + 1.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from recdb.sequence import registry
from recdb.sequence.fold import POSITIONS, STORED_FOLD_EVENTS
from recdb.sequence.job import train_and_register
from tests.support.builders import ids, rerank
from tests.support.tiny_model import tiny_text_encoder
from tests.worker.test_sequence_serving import CFG, N_ITEMS, load, run_once


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


@pytest.fixture
def served(conn, db_url, encoder):
    """A trained, activated model; items (with their "what follows" vectors) and users
    encoded by the worker."""
    w = load(conn, db_url, encoder)
    result = train_and_register(db_url, CFG, progress=False)
    assert result.activated and run_once(db_url, encoder).errors == 0
    return w, result


def _vec(conn, sql: str, *args: Any) -> np.ndarray:
    return np.asarray(conn.execute(sql, args).fetchone()[0], dtype=np.float64)


def _fresh(conn, user: int, items: list[int]) -> None:
    last = conn.execute(
        "SELECT max(occurred_at) FROM recdb.events WHERE user_id = %s", (user,)
    ).fetchone()[0]
    with conn.cursor() as cur:
        for n, item in enumerate(items, 1):
            cur.execute(
                "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
                " VALUES (%s, %s, 'click', %s)",
                (user, item, last + timedelta(minutes=n)),
            )


def test_the_fold_is_stored_in_the_blob_and_installed_by_activation(conn, served):
    _, result = served
    model = registry.load(conn, result.model_id)
    assert model.fold is not None and model.fold.shape == (1 + 2 * POSITIONS,)
    assert np.all(model.fold > 0)
    column, installed = conn.execute(
        "SELECT m.fold_weights, s.fold_weights FROM recdb.models m, recdb.serving s"
        " WHERE m.model_id = %s", (result.model_id,),
    ).fetchone()  # fmt: skip
    assert np.array_equal(np.float32(column), model.fold)  # the blob is the source
    assert installed == column
    registry.activate(conn, None)
    assert conn.execute("SELECT model_id, fold_weights FROM recdb.serving").fetchone() == (
        None, None,
    )  # fmt: skip
    registry.activate(conn, result.model_id)
    assert conn.execute("SELECT fold_weights FROM recdb.serving").fetchone()[0] == column


def test_rerank_folds_in_the_models_terms_only_while_it_is_served(conn, served):
    w, result = served
    user = next(iter(w))
    stored, norm = conn.execute(
        "SELECT embedding, norm FROM recdb.users WHERE user_id = %s", (user,)
    ).fetchone()
    fresh = [(w[user][-1] + 3) % N_ITEMS, (w[user][-1] + 7) % N_ITEMS]
    _fresh(conn, user, fresh)
    item = {
        i: np.asarray(v, dtype=np.float64)
        for i, v in conn.execute("SELECT item_id, embedding FROM recdb.items").fetchall()
    }
    nexts = {
        i: np.asarray(v, dtype=np.float64)
        for i, v in conn.execute(
            "SELECT item_id, embedding FROM recdb.item_next WHERE model_id = %s",
            (result.model_id,),
        ).fetchall()
    }
    assert set(nexts) == set(item)  # the worker wrote one per item
    fold = np.asarray(registry.load(conn, result.model_id).fold, dtype=np.float64)
    a, b, c = fold[0], fold[1 : 1 + POSITIONS], fold[1 + POSITIONS :]
    newest_first = fresh[::-1]
    want = a * np.asarray(stored) + sum(
        b[j] * item[i] + c[j] * nexts[i] for j, i in enumerate(newest_first)
    )
    got = _vec(conn, "SELECT embedding FROM recdb.user_vector(%s)", user)
    assert np.allclose(got, want / np.linalg.norm(want), atol=1e-5)

    # Without a fold installed (a model that ships none, or text vectors served), the
    # mean encoder's algebra: stored sum + each event's weight (click: 1.0, recent).
    conn.execute("UPDATE recdb.serving SET fold_weights = NULL")
    mean = norm * np.asarray(stored) + sum(item[i] for i in fresh)
    got = _vec(conn, "SELECT embedding FROM recdb.user_vector(%s)", user)
    assert np.allclose(got, mean / np.linalg.norm(mean), atol=1e-4)
    assert not np.allclose(got, want / np.linalg.norm(want), atol=1e-3)


@pytest.mark.parametrize("steps", [1, 3])
def test_a_folded_ranking_is_what_the_worker_then_writes(conn, db_url, encoder, served, steps):
    """Each user jumps ahead in the cycle (events the worker has not seen): the folded
    ranking already puts the model's next item first, as the re-encoded one does."""
    w, _ = served
    users = sorted(w)[:12]
    jumped = {u: [(w[u][-1] + 5 + s) % N_ITEMS for s in range(steps)] for u in users}
    for u in users:
        _fresh(conn, u, jumped[u])
    folded = {u: ids(rerank(conn, u, k=10)) for u in users}
    assert all(r[5] == steps for u in users for r in rerank(conn, u, k=1))
    assert run_once(db_url, encoder).errors == 0
    encoded = {u: ids(rerank(conn, u, k=10)) for u in users}
    nxt = {u: (jumped[u][-1] + 1) % N_ITEMS for u in users}
    assert sum(nxt[u] in folded[u][:3] for u in users) >= len(users) - 1
    assert sum(nxt[u] in encoded[u][:3] for u in users) >= len(users) - 1
    overlap = np.mean([len(set(folded[u]) & set(encoded[u])) / 10 for u in users])
    assert overlap >= 0.6, overlap


def test_the_worker_stores_the_model_over_older_events_with_the_newest_folded(conn, served):
    """The stored vector is the model over the history minus its newest
    STORED_FOLD_EVENTS events, those folded in exactly as rerank()'s user_vector() folds
    unseen events (a vector the worker writes and one rerank() folds speak the same
    language), not the model over the whole history."""
    w, result = served
    user = max(w, key=lambda u: len(w[u]))
    assert len(w[user]) > STORED_FOLD_EVENTS
    model = registry.load(conn, result.model_id)
    rows = conn.execute(
        "SELECT item_id, text_embedding FROM recdb.items ORDER BY item_id"
    ).fetchall()
    item_ids = [r[0] for r in rows]
    vecs = model.item_vectors(item_ids, np.asarray([r[1] for r in rows], dtype=np.float32))
    events = conn.execute(
        "SELECT event_id, item_id, kind, value, extract(epoch FROM occurred_at)::float8"
        " FROM recdb.events WHERE user_id = %s ORDER BY occurred_at, event_id", (user,),
    ).fetchall()  # fmt: skip
    history = [tuple(e[1:]) for e in events]
    worker = _vec(conn, "SELECT embedding FROM recdb.users WHERE user_id = %s", user)
    alone = model.user_vectors([history], (item_ids, vecs))[0]
    assert not np.allclose(worker, alone, atol=1e-3)

    # Store the model over the older events only, watermarked before the newest
    # STORED_FOLD_EVENTS: user_vector() folds those in SQL, and gets what the worker stored.
    prefix = model.user_vectors([history[:-STORED_FOLD_EVENTS]], (item_ids, vecs))[0]
    conn.execute(
        "UPDATE recdb.users SET embedding = %s, encoded_through = %s, encoded_snapshot = NULL"
        " WHERE user_id = %s", (prefix, events[-STORED_FOLD_EVENTS - 1][0], user),
    )  # fmt: skip
    folded = _vec(conn, "SELECT embedding FROM recdb.user_vector(%s)", user)
    assert np.allclose(folded, worker, atol=1e-5)
