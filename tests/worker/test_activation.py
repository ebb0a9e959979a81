"""Model activation at catalogue scale (recdb.sequence.activation, revision 0016): staged
beside the served vectors while the old model is served, switched in one transaction,
never across a worker batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import psycopg
import pytest

from recdb.sequence import activation, registry
from recdb.sequence.job import train_and_register
from recdb.worker import Worker, WorkerConfig
from tests.support.builders import ids, rerank
from tests.support.tiny_model import tiny_text_encoder
from tests.worker.test_sequence_serving import CFG, load

LOCK = "SELECT pg_advisory_xact_lock(hashtext('recdb.activate_model'))"


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


@pytest.fixture
def trained(conn, db_url, encoder):
    """Items and users encoded in the text space; a model trained, stored, not active."""
    w = load(conn, db_url, encoder)
    result = train_and_register(db_url, CFG, activate=False, progress=False)
    assert not result.activated and registry.active(conn) is None
    return w, result.model_id


def _served(conn) -> dict[int, np.ndarray]:
    rows = conn.execute("SELECT item_id, embedding FROM recdb.items WHERE embedding IS NOT NULL")
    return {r[0]: np.asarray(r[1]) for r in rows}


def test_staging_serves_the_old_model_whole_until_the_switch(conn, trained, monkeypatch):
    """Everything up to the switch (projection, index build) leaves what rerank() serves
    untouched; the switch serves the model's projection of every item at once."""
    w, model_id = trained
    user = next(iter(w))
    before_items, before = _served(conn), ids(rerank(conn, user, k=10))
    seen: list[tuple[dict[int, np.ndarray], list[int]]] = []
    switch = registry.switch

    def observe_then_switch(c, m):  # runs in the switch's transaction, before it
        with conn.transaction():
            seen.append((_served(conn), ids(rerank(conn, user, k=10))))
        return switch(c, m)

    monkeypatch.setattr(registry, "switch", observe_then_switch)
    done = activation.activate(conn, model_id)
    assert done.staged == len(before_items) and done.requeued == 0
    staged_items, staged_rank = seen[0]
    assert staged_rank == before
    assert all(np.array_equal(staged_items[i], v) for i, v in before_items.items())

    model = registry.load(conn, model_id)
    after = _served(conn)
    text = {r[0]: np.asarray(r[1]) for r in conn.execute(
        "SELECT item_id, text_embedding FROM recdb.items")}  # fmt: skip
    order = sorted(text)
    want = model.item_vectors(order, np.stack([text[i] for i in order]))
    np.testing.assert_allclose(np.stack([after[i] for i in order]), want, atol=1e-5)
    assert conn.execute("SELECT DISTINCT space FROM recdb.item_vectors").fetchall() == [(model_id,)]
    # users: no stored vector of the text space survives; rerank() folds their events
    assert (
        conn.execute("SELECT count(*) FROM recdb.users WHERE embedding IS NOT NULL").fetchone()[0]
        == 0
    )
    assert rerank(conn, user, k=3)[0][5] > 0


def test_a_worker_batch_never_straddles_the_switch(conn, db_url, trained, encoder):
    """While the switch holds the activation lock, a worker batch waits before it claims
    anything (so it neither writes vectors of the old model after the switch nor holds
    rows the switch updates)."""
    conn.execute("UPDATE recdb.items SET title = title || ' (new)' WHERE item_id = 3")
    conn.commit()
    cfg = WorkerConfig(database_url=db_url, device="cpu", poll_interval=0.05)
    worker = Worker(cfg, text_encoder=encoder)
    with conn.transaction():
        conn.execute(LOCK)
        t = threading.Thread(target=worker.run, kwargs={"once": True})
        t.start()
        time.sleep(1.5)
        assert t.is_alive()
        queued = "SELECT count(*) FROM recdb.item_queue WHERE item_id = 3"
        assert conn.execute(queued).fetchone()[0] == 1
    t.join(30)
    assert not t.is_alive()
    assert conn.execute(queued).fetchone()[0] == 0


def test_an_activation_that_came_in_between_is_not_replaced(conn, trained):
    _, model_id = trained
    with pytest.raises(activation.ActiveModelChanged, match="was activated while"):
        activation.activate(conn, model_id, expect_active=12345)
    assert registry.active(conn) is None
    assert conn.execute("SELECT count(*) FROM recdb.staged_items").fetchone()[0] == 0
    assert (
        conn.execute("SELECT to_regclass(%s)", (f"recdb.item_vectors_{model_id}_next",)).fetchone()[
            0
        ]
        is None
    )


def test_an_unknown_model_is_refused_before_anything_is_staged(conn, trained):
    with pytest.raises(registry.ModelNotFound):
        activation.activate(conn, 999_999)
    with pytest.raises(ValueError, match="chunk"):
        activation.activate(conn, None, chunk=0)


def test_recdb_activate_commits_the_switch(conn, db_url, trained):
    """The CLI's connection is not autocommit: every phase commits, and the switch is
    seen by other sessions (and survives the command's exit)."""
    _, model_id = trained
    env = {**os.environ, "RECDB_DATABASE_URL": db_url}
    cmd = [sys.executable, "-m", "recdb.cli", "activate", str(model_id), "--no-progress"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["staged"] > 0
    assert registry.active(conn) == model_id
    served = f"sequence:{model_id}"
    assert conn.execute("SELECT DISTINCT encoder FROM recdb.items").fetchall() == [(served,)]
    res = subprocess.run([*cmd[:4], "none", "--no-progress"], env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert registry.active(conn) is None
    bad = subprocess.run([*cmd[:4], "seven"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "MODEL must be a model_id or none" in bad.stderr


STAGING_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('recdb.staging', %s))"


def _stage_by_hand(c, space: int) -> int:
    """What an activation of ``space`` has staged so far: every item's text vector."""
    return c.execute(
        "INSERT INTO recdb.staged_items (space, item_id, text_key, embedding)"
        " SELECT %s, item_id, text_key, text_embedding FROM recdb.items"
        " WHERE text_embedding IS NOT NULL",
        (space,),
    ).rowcount


def _staged(conn) -> dict[int, int]:
    rows = conn.execute("SELECT space, count(*) FROM recdb.staged_items GROUP BY space")
    return dict(rows.fetchall())


def test_a_second_activation_of_the_same_model_is_refused(conn, db_url, trained):
    """Two `recdb activate N` at once would interleave their chunks in one staging: the
    second is refused, naming the problem, and the first's staging is left as it was."""
    _, model_id = trained
    conn.commit()
    with psycopg.connect(db_url, autocommit=True) as first:
        assert first.execute(STAGING_LOCK, (model_id,)).fetchone()[0]
        n = _stage_by_hand(first, model_id)
        with pytest.raises(activation.ActivationInProgress, match=f"activating model {model_id}"):
            activation.activate(conn, model_id)
        assert _staged(conn) == {model_id: n}
        assert registry.active(conn) is None
    assert activation.activate(conn, model_id).staged == n  # its session gone: it may
    assert registry.active(conn) == model_id


def test_an_activation_drops_what_killed_activations_left(conn, db_url, trained):
    """A killed `recdb activate` leaves its staged rows and built table (gigabytes at 10^6
    items); the next activation drops every staging whose lock no session holds, and
    keeps one in flight."""
    _, model_id = trained
    abandoned, live = 555, 777
    _stage_by_hand(conn, abandoned)
    conn.execute("SELECT recdb.build_vector_space(%s)", (abandoned,))
    conn.commit()
    built = f"recdb.item_vectors_{abandoned}_next"
    assert conn.execute("SELECT to_regclass(%s)", (built,)).fetchone()[0] is not None
    with psycopg.connect(db_url, autocommit=True) as other:
        assert other.execute(STAGING_LOCK, (live,)).fetchone()[0]
        n_live = _stage_by_hand(other, live)
        activation.activate(conn, model_id)
        assert registry.active(conn) == model_id
        assert _staged(conn) == {live: n_live}
        assert conn.execute("SELECT to_regclass(%s)", (built,)).fetchone()[0] is None
