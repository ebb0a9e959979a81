"""The sequence encoder served through the database: `recdb train` reads the events,
the registry stores the model, activation swaps the vectors rerank() searches, a running
worker follows activations, and a cold item with only text gets a rankable vector.

Data: users walk a cycle of 40 items (next item = obvious), the tiny random BERT (dim 32)
encodes the titles, a tiny transformer is trained on CPU in seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from recdb import status
from recdb.sequence import TrainConfig, TrainedModel, registry
from recdb.sequence.activation import ModelDoesNotFit
from recdb.sequence.job import train_and_register
from recdb.worker import ModelUnavailable, Worker, WorkerConfig
from tests.support import REPO_ROOT
from tests.support.builders import ids, rerank
from tests.support.tiny_model import tiny_text_encoder

N_ITEMS = 40
WORDS = ("apple", "river", "engine", "violin", "tiger", "castle", "meadow", "rocket")
CFG = TrainConfig(
    epochs=30, max_len=12, hidden=32, layers=1, heads=2, dropout=0.1, lr=5e-3,
    batch_size=64, min_count=3, id_dropout=0.25, patience=8, seed=0, device="cpu", threads=1,
)  # fmt: skip
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = REPO_ROOT


def title(i: int) -> str:
    return f"{WORDS[i % len(WORDS)]} {WORDS[(i // len(WORDS)) % len(WORDS)]} number {i}"


def walks() -> dict[int, list[int]]:
    rng = np.random.default_rng(2)
    out = {}
    for user in range(1, 49):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(8, 16))
        out[user] = [(start + t) % N_ITEMS for t in range(length)]
    return out


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def run_once(url: str, encoder: Any, **kw: Any) -> Any:
    cfg = WorkerConfig(database_url=url, device="cpu", poll_interval=0.2, **kw)
    return Worker(cfg, text_encoder=encoder).run(once=True)


def load(conn: psycopg.Connection[Any], url: str, encoder: Any) -> dict[int, list[int]]:
    """Catalogue + walks in the database, text vectors written by the real worker."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO recdb.items (item_id, title) VALUES (%s, %s)",
            [(i, title(i)) for i in range(N_ITEMS)],
        )
        w = walks()
        cur.executemany(
            "INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)"
            " VALUES (%s, %s, %s, %s)",
            [
                (u, item, "click" if t % 3 else "view", T0 + timedelta(hours=u, minutes=t))
                for u, items in w.items()
                for t, item in enumerate(items)
            ],
        )
    # measure the model alone: no co-visitation, popularity prior or diversity re-ordering
    conn.execute(
        "UPDATE recdb.settings SET covisit_weight = 0, popularity_weight = 0, diversity_penalty = 0"
    )
    stats = run_once(url, encoder)
    assert stats.errors == 0
    return w


def vectors(conn, column: str) -> dict[int, np.ndarray]:
    return dict(
        conn.execute(f"SELECT item_id, {column} FROM recdb.items ORDER BY item_id").fetchall()
    )


@pytest.fixture
def served(conn, db_url, encoder):
    """A trained, activated model with every item and user re-encoded by the worker."""
    w = load(conn, db_url, encoder)
    result = train_and_register(db_url, CFG, progress=False)
    assert result.activated and result.reason == "no model was active"
    assert result.items_queued == 0  # every item switched by the activation itself
    stats = run_once(db_url, encoder)
    assert stats.errors == 0 and stats.items_encoded == 0 and stats.users_encoded == len(w)
    return w, result


def test_model_trained_from_the_database_ranks_the_next_item_first_through_rerank(conn, served):
    w, result = served
    assert result.valid_ndcg is not None and result.valid_ndcg > 0.8
    assert result.users == len(w) and result.items == N_ITEMS
    encoders = conn.execute("SELECT DISTINCT encoder FROM recdb.users").fetchall()
    assert encoders == [(f"sequence:{result.model_id}",)]
    hits = 0
    for user, items in w.items():
        nxt = (items[-1] + 1) % N_ITEMS
        top = ids(rerank(conn, user, k=10))
        assert not set(top) & set(items)  # consumed items stay excluded
        hits += nxt in top
    assert hits == len(w)  # HR@10 = 1 through rerank(), not just offline


def test_registry_round_trip_is_byte_identical_and_hash_checked(conn, db_url, encoder):
    load(conn, db_url, encoder)
    result = train_and_register(db_url, CFG, activate=False, progress=False)
    assert not result.activated and registry.active(conn) is None
    blob, sha, cfg = conn.execute(
        "SELECT blob, sha256, config FROM recdb.models WHERE model_id = %s", (result.model_id,)
    ).fetchone()
    assert hashlib.sha256(blob).digest() == bytes(sha)
    model = registry.load(conn, result.model_id)
    assert model.to_bytes() == bytes(blob)
    assert TrainConfig.from_json(cfg) == model.cfg == dataclasses.replace(CFG)
    again = registry.save(conn, model, 0)
    assert registry.load(conn, again).to_bytes() == bytes(blob)
    # a blob edited behind the registry's back is refused by the constraint
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "UPDATE recdb.models SET blob = blob || '\\x00'::bytea WHERE model_id = %s",
            (result.model_id,),
        )
    with pytest.raises(registry.ModelNotFound):
        registry.activate(conn, 999_999)


def test_activation_swaps_the_vectors_rerank_uses_and_rollback_restores_them(
    conn, db_url, encoder, served
):
    w, result = served
    model = registry.load(conn, result.model_id)
    text = vectors(conn, "text_embedding")
    served_vecs = vectors(conn, "embedding")
    item_ids = sorted(text)
    expected = model.item_vectors(item_ids, np.stack([text[i] for i in item_ids]))
    np.testing.assert_allclose(np.stack([served_vecs[i] for i in item_ids]), expected, atol=1e-5)
    assert not np.allclose(served_vecs[0], text[0], atol=1e-3)

    # the rerank() order is the model's: user vector x item vectors, history excluded
    user, items = next(iter(w.items()))
    uvec = conn.execute("SELECT embedding FROM recdb.users WHERE user_id = %s", (user,)).fetchone()
    scores = expected @ uvec[0]
    model_top = [item_ids[i] for i in np.argsort(-scores) if item_ids[i] not in items][:5]
    assert ids(rerank(conn, user, k=5)) == model_top
    with_model = ids(rerank(conn, user, k=10))

    # roll back to "no model": text vectors again, users re-encoded by the mean encoder
    assert registry.activate(conn, None) == 0  # switched at once, nothing left to encode
    run_once(db_url, encoder)
    back = vectors(conn, "embedding")
    for i in item_ids:
        np.testing.assert_array_equal(back[i], text[i])
    assert conn.execute("SELECT DISTINCT encoder FROM recdb.users").fetchall() == [("mean",)]
    assert ids(rerank(conn, user, k=10)) != with_model

    # and forward again (the rollback of the rollback): same vectors as before
    registry.activate(conn, result.model_id)
    run_once(db_url, encoder)
    again = vectors(conn, "embedding")
    for i in item_ids:
        np.testing.assert_allclose(again[i], served_vecs[i], atol=1e-6)
    assert ids(rerank(conn, user, k=10)) == with_model


def test_a_running_worker_picks_up_a_new_activation(conn, db_url, encoder):
    load(conn, db_url, encoder)
    result = train_and_register(db_url, CFG, activate=False, progress=False)
    # a long poll interval: only the activation's NOTIFY can wake it in time
    cfg = WorkerConfig(database_url=db_url, device="cpu", poll_interval=60, heartbeat_interval=0)
    worker = Worker(cfg, text_encoder=encoder)
    t = threading.Thread(target=worker.run)
    t.start()
    try:
        deadline = time.monotonic() + 10
        live = "SELECT model_id FROM recdb.workers WHERE stopped_at IS NULL"
        while conn.execute(live).fetchone() is None:
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.05)
        time.sleep(0.3)  # idle in its LISTEN wait
        registry.activate(conn, result.model_id)
        deadline = time.monotonic() + 30
        want = f"sequence:{result.model_id}"
        while True:
            done = conn.execute(
                "SELECT count(*) FILTER (WHERE encoder = %s) FROM recdb.items", (want,)
            ).fetchone()[0]
            users = conn.execute(
                "SELECT count(*) FROM recdb.users WHERE encoder = %s", (want,)
            ).fetchone()[0]
            if done == N_ITEMS and users == 48:
                break
            assert time.monotonic() < deadline, f"{done} items, {users} users re-encoded"
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while conn.execute(live).fetchone()[0] != result.model_id:
            assert time.monotonic() < deadline, "workers.model_id not updated"
            time.sleep(0.1)
    finally:
        worker.stop()
        t.join(10)
    assert not t.is_alive()
    snap = status.collect(conn)
    assert snap["active_model"]["model_id"] == result.model_id
    assert f"model      {result.model_id} active" in status.render(snap)


def test_a_cold_item_with_text_only_gets_a_vector_and_is_ranked(conn, db_url, encoder, served):
    w, result = served
    model = registry.load(conn, result.model_id)
    user, items = next(iter(w.items()))
    nxt = (items[-1] + 1) % N_ITEMS
    # A brand-new item, no events: its vector can only come from its text.
    conn.execute("INSERT INTO recdb.items (item_id, title) VALUES (1000, %s)", (title(nxt),))
    run_once(db_url, encoder)
    vec, text = conn.execute(
        "SELECT embedding, text_embedding FROM recdb.items WHERE item_id = 1000"
    ).fetchone()
    assert not model.has_id([1000])[0]
    np.testing.assert_allclose(vec, model.item_vectors([1000], text[None, :])[0], atol=1e-5)
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4
    rows = rerank(conn, user, candidates=[1000, nxt, items[0]])
    scored = {r[1]: r[2] for r in rows}
    assert set(scored) == {1000, nxt, items[0]}
    assert scored[1000] is not None and np.isfinite(scored[1000])
    # same text as the user's obvious next item: the text projection puts it near that item
    # (the ID embedding is what separates them), well inside the catalogue's top half
    full = ids(rerank(conn, user, k=N_ITEMS + 1))
    assert 1000 in full and full.index(1000) < (N_ITEMS - len(items)) // 2


def test_train_activates_only_a_better_model(conn, db_url, encoder, served):
    _, first = served
    weak = train_and_register(db_url, dataclasses.replace(CFG, epochs=1), progress=False)
    assert not weak.activated and "does not beat" in weak.reason
    assert weak.active_before == first.model_id
    assert weak.valid_ndcg < weak.active_before_ndcg
    assert registry.active(conn) == first.model_id
    forced = train_and_register(
        db_url, dataclasses.replace(CFG, epochs=1), activate=True, progress=False
    )
    assert forced.activated and registry.active(conn) == forced.model_id
    registry.activate(conn, first.model_id)  # roll back
    assert registry.active(conn) == first.model_id
    assert conn.execute("SELECT count(*) FROM recdb.models WHERE active").fetchone()[0] == 1


def test_sequence_encoder_without_an_active_model_is_a_clear_error(conn, db_url, encoder):
    load(conn, db_url, encoder)
    conn.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (1, 2, 'click')")
    with pytest.raises(ModelUnavailable, match="recdb train --activate"):
        run_once(db_url, encoder, user_encoder="sequence")
    # nothing was lost: the user is still queued for a worker that can serve it
    assert conn.execute("SELECT count(*) FROM recdb.user_queue WHERE user_id = 1").fetchone()[0]


def test_recdb_train_cli(conn, db_url, encoder, tmp_path):
    load(conn, db_url, encoder)
    conn.execute("UPDATE recdb.settings SET covisit_weight = 2")  # the shipped default
    out = tmp_path / "train.json"
    env_cmd = [
        sys.executable, "-m", "recdb.cli", "train", "--epochs", "2", "--device", "cpu",
        "--no-progress", "--json", str(out),
    ]  # fmt: skip
    res = subprocess.run(
        env_cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "RECDB_DATABASE_URL": db_url},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(out.read_text())
    assert summary["activated"] and summary["epochs"] == 2
    assert "activated (no model was active)" in res.stdout
    assert "UPDATE recdb.settings SET covisit_weight = 0.25" in res.stdout  # the hint
    assert registry.active(conn) == summary["model_id"]


def test_train_without_text_vectors_says_what_to_do(conn, db_url):
    conn.execute("INSERT INTO recdb.items (item_id, title) VALUES (1, 'x')")
    with pytest.raises(ValueError, match="run the worker"):
        train_and_register(db_url, CFG, progress=False)


def test_model_blob_is_not_pickle(served, conn):
    _, result = served
    blob = conn.execute(
        "SELECT blob FROM recdb.models WHERE model_id = %s", (result.model_id,)
    ).fetchone()[0]
    assert bytes(blob).startswith(b"RECDBSEQ")
    assert TrainedModel.from_bytes(bytes(blob)).to_bytes() == bytes(blob)


def test_zero_lag_fold_still_works_on_top_of_a_sequence_vector(conn, served):
    """An event the worker has not seen counts at once, folded in with the model's item
    vectors, and with a pull proportionate to the history (norm = weighted-sum length)."""
    w, _ = served
    user = next(iter(w))
    norm = conn.execute("SELECT norm FROM recdb.users WHERE user_id = %s", (user,)).fetchone()[0]
    assert norm >= 1.0
    before = rerank(conn, user, k=10)
    assert {r[5] for r in before} == {0}
    target = ids(before)[0]
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind) VALUES (%s, %s, 'purchase')",
        (user, target),
    )
    after = rerank(conn, user, k=10)
    assert {r[5] for r in after} == {1}  # one fresh event folded in
    assert target not in ids(after)  # and already counted as seen


def test_requeued_items_reuse_text_vectors_and_changed_text_is_reencoded(conn, db_url, encoder):
    """Re-queued items are re-projected; only changed texts (or another text model) hit the
    encoder.
    Rows migrated from 0002 (no text_key) keep their vector unless the text changed since."""
    load(conn, db_url, encoder)
    marker = np.zeros(32, dtype=np.float32)
    marker[0] = 1.0
    # as migration 0003 leaves them: embedding copied to text_embedding, no text_key.
    # 1: unchanged since its encoding; 2: edited after it; 5: made by another text model
    conn.execute(
        "UPDATE recdb.items SET text_key = NULL, text_embedding = %s, embedding = %s"
        " WHERE item_id IN (1, 2, 5)",
        (marker, marker),
    )
    conn.execute(
        "UPDATE recdb.items SET embedded_at = updated_at - interval '1 s' WHERE item_id = 2"
    )
    conn.execute("UPDATE recdb.items SET encoder = 'another-model' WHERE item_id = 5")
    conn.execute("UPDATE recdb.items SET text_embedding = %s WHERE item_id = 3", (marker,))
    conn.execute("UPDATE recdb.items SET title = 'a brand new title' WHERE item_id = 4")
    calls: list[int] = []
    real = encoder.encode

    class Counting:
        dim, device, model_name = encoder.dim, encoder.device, encoder.model_name

        def encode(self, texts):
            calls.append(len(texts))
            return real(texts)

    conn.execute("SELECT recdb.enqueue_items(ARRAY(SELECT item_id FROM recdb.items))")
    cfg = WorkerConfig(database_url=db_url, device="cpu", poll_interval=0.2, batch_size=100)
    assert Worker(cfg, text_encoder=Counting()).run(once=True).errors == 0
    assert sum(calls) == 3  # items 2 (edited), 5 (other model), 4 (new title), nothing else
    text = vectors(conn, "text_embedding")
    np.testing.assert_array_equal(text[1], marker)  # trusted legacy vector, now keyed
    np.testing.assert_array_equal(text[3], marker)  # same key: not re-encoded
    assert not np.array_equal(text[2], marker) and not np.array_equal(text[5], marker)
    np.testing.assert_allclose(text[4], encoder.encode(["a brand new title"])[0], atol=1e-5)
    assert conn.execute("SELECT count(*) FROM recdb.items WHERE text_key IS NULL").fetchone() == (
        0,
    )


def test_a_model_whose_vectors_do_not_fit_is_refused_at_activation(conn, db_url, encoder):
    load(conn, db_url, encoder)
    before = vectors(conn, "embedding")
    narrow = dataclasses.replace(CFG, dim=16, epochs=1)  # 16-d vectors, columns are 32-d
    with pytest.raises(ModelDoesNotFit, match=r"16-d vectors.*vector\(32\)"):
        train_and_register(db_url, narrow, progress=False)
    # stored, not served: nothing switched, nothing left staged, the worker carries on
    assert registry.active(conn) is None
    after = vectors(conn, "embedding")
    assert all(np.array_equal(before[i], after[i]) for i in before)
    assert conn.execute("SELECT count(*) FROM recdb.staged_items").fetchone()[0] == 0
    assert run_once(db_url, encoder).errors == 0


def test_an_activation_during_training_is_not_overruled(conn, db_url, served, monkeypatch):
    """A DBA rollback (or another run) that lands while `recdb train` compares models wins."""
    import recdb.sequence as seq
    from recdb.db import connect

    _, first = served
    other = registry.save(conn, registry.load(conn, first.model_id), 0)
    real = seq.validation_metrics

    def meanwhile(*args: Any, **kw: Any) -> dict[str, float]:
        with connect(db_url, autocommit=True) as dba:
            registry.activate(dba, other)
        return real(*args, **kw)

    monkeypatch.setattr(seq, "validation_metrics", meanwhile)
    result = train_and_register(db_url, CFG, progress=False)
    assert not result.activated and "activated while training" in result.reason
    assert registry.active(conn) == other


def test_auto_loss_switches_to_sampled_softmax_for_large_catalogues() -> None:
    from recdb.config import FULL_SOFTMAX_MAX_ITEMS
    from recdb.sequence.job import choose_loss

    assert choose_loss("auto", 1682) == "full"
    assert choose_loss("auto", FULL_SOFTMAX_MAX_ITEMS + 1) == "sampled"
    assert choose_loss("full", 10**6) == "full"  # an explicit choice is kept
