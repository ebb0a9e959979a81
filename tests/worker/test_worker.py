"""The worker against a real database: encode, re-encode, concurrency, crashes, signals,
poison rows, polling without NOTIFY. Uses the tiny random BERT (dim 32)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from recdb.db.sqlfiles import query
from recdb.encoders import MeanUserEncoder, UserBatch
from recdb.worker import DimensionMismatch, Worker, WorkerConfig, requeue_all_users
from tests.support import REPO_ROOT
from tests.support.builders import add_events, add_items, axis, ids, rerank, spawn_worker
from tests.support.tiny_model import tiny_text_encoder

ROOT = REPO_ROOT


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def run_once(url: str, encoder: Any, **kw: Any) -> Any:
    cfg = WorkerConfig(database_url=url, device="cpu", poll_interval=0.2, **kw)
    return Worker(cfg, text_encoder=encoder).run(once=True)


def queue_len(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM recdb.{table}").fetchone()[0]


def test_items_are_encoded_and_reencoded_on_text_change(conn, db_url, encoder):
    add_items(
        conn,
        [
            {"item_id": 1, "title": "red running shoes"},
            {"item_id": 2, "title": "chocolate cake recipe", "body": "x" * 100_000},
        ],
    )
    stats = run_once(db_url, encoder)
    assert stats.items_encoded == 2 and queue_len(conn, "item_queue") == 0
    v1, norm = conn.execute(
        "SELECT embedding, vector_norm(embedding) FROM recdb.items WHERE item_id = 1"
    ).fetchone()
    assert abs(norm - 1.0) < 1e-4
    expected = encoder.encode(["red running shoes"])[0]
    assert np.allclose(v1, expected, atol=1e-5)
    assert (
        conn.execute("SELECT length(body) FROM recdb.items WHERE item_id = 2").fetchone()[0]
        == 100_000
    )  # stored intact, only truncated for encoding

    conn.execute("UPDATE recdb.items SET title = 'blue trail sandals' WHERE item_id = 1")
    assert queue_len(conn, "item_queue") == 1
    run_once(db_url, encoder)
    v2 = conn.execute("SELECT embedding FROM recdb.items WHERE item_id = 1").fetchone()[0]
    assert not np.allclose(v1, v2)
    assert np.allclose(v2, encoder.encode(["blue trail sandals"])[0], atol=1e-5)


def test_users_are_encoded_and_rerank_moves_toward_clicked_neighbours(conn, db_url, encoder):
    rows = [
        {
            "item_id": t * 100 + j,
            "title": f"t{t}-{j}",
            "embedding": axis(t, noise=0.05, seed=t * 100 + j),
        }
        for t in range(3)
        for j in range(10)
    ]
    add_items(conn, rows)
    conn.execute("DELETE FROM recdb.item_queue")  # vectors given; keep the topic geometry
    cold = ids(rerank(conn, 5, k=5))
    add_events(conn, 5, [200, 201], "click")
    stats = run_once(db_url, encoder)
    assert stats.users_encoded == 1
    u = conn.execute(
        "SELECT embedding, norm, encoded_through, event_count, encoder"
        " FROM recdb.users WHERE user_id = 5"
    ).fetchone()
    assert u[2] == conn.execute("SELECT max(event_id) FROM recdb.events").fetchone()[0]
    assert u[3] == 2 and u[4] == "mean" and u[1] > 0
    got = rerank(conn, 5, k=5)
    assert got[0][5] == 0  # nothing left to fold: the stored vector is current
    assert all(200 <= i < 300 for i in ids(got)) and ids(got) != cold

    add_events(conn, 5, [202, 203, 204], "dislike")
    add_events(conn, 5, [0], "click")
    run_once(db_url, encoder)
    got = ids(rerank(conn, 5, k=5))
    assert all(i < 100 for i in got), got


def test_worker_vector_matches_zero_lag_fold(conn, db_url, encoder):
    """rerank()'s fold of unencoded events and the worker's mean encoder agree."""
    add_items(
        conn,
        [
            {"item_id": i, "title": str(i), "embedding": axis(i, noise=0.3, seed=i)}
            for i in range(8)
        ],
    )
    conn.execute("DELETE FROM recdb.item_queue")
    add_events(conn, 9, [1, 2], "click")
    add_events(conn, 9, [3], "rate", 5)
    add_events(conn, 9, [4], "dislike")
    folded = conn.execute("SELECT embedding FROM recdb.user_vector(9)").fetchone()[0]
    run_once(db_url, encoder)
    stored = conn.execute("SELECT embedding FROM recdb.users WHERE user_id = 9").fetchone()[0]
    assert np.allclose(folded, stored, atol=1e-5)


def test_text_user_encoder(conn, db_url, encoder):
    add_items(conn, [{"item_id": 1, "title": "space opera"}, {"item_id": 2, "title": "romcom"}])
    add_events(conn, 3, [1], "like")
    stats = run_once(db_url, encoder, user_encoder="text")
    assert stats.users_encoded == 1
    vec, enc = conn.execute("SELECT embedding, encoder FROM recdb.users").fetchone()
    assert enc == "text"
    assert np.allclose(vec, encoder.encode(["Likes: space opera"])[0], atol=1e-5)


def test_two_workers_process_each_user_exactly_once(conn, db_url, encoder):
    add_items(conn, [{"item_id": i, "title": f"item {i}", "embedding": axis(i)} for i in range(20)])
    conn.execute("DELETE FROM recdb.item_queue")
    with (
        conn.cursor() as cur,
        cur.copy("COPY recdb.events (user_id, item_id, kind) FROM STDIN") as cp,
    ):
        for u in range(2000):
            for j in range(3):
                cp.write_row((u, (u + j) % 20, "click"))
    assert queue_len(conn, "user_queue") == 2000

    seen: list[list[int]] = [[], []]

    class Recording(MeanUserEncoder):
        def __init__(self, slot: int) -> None:
            super().__init__("cpu")
            self.slot = slot

        def encode_batch(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
            seen[self.slot].append(batch.n_users)
            time.sleep(0.01)
            return super().encode_batch(batch)

    workers = [
        Worker(
            WorkerConfig(database_url=db_url, user_batch_size=50, device="cpu"),
            text_encoder=encoder,
            user_encoder=Recording(i),
        )
        for i in range(2)
    ]
    threads = [threading.Thread(target=w.run, kwargs={"once": True}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    counts = [w.stats.users_encoded for w in workers]
    assert sum(counts) == 2000, counts
    assert all(c > 0 for c in counts), counts  # both really worked
    assert queue_len(conn, "user_queue") == 0
    assert (
        conn.execute("SELECT count(*) FROM recdb.users WHERE embedding IS NOT NULL").fetchone()[0]
        == 2000
    )


def _user_fixture(conn, n_users: int) -> None:
    add_items(conn, [{"item_id": i, "title": f"item {i}", "embedding": axis(i)} for i in range(5)])
    conn.execute("DELETE FROM recdb.item_queue")
    for u in range(n_users):
        add_events(conn, u, [u % 5], "click")


def _worker_in_batch(conn, db_url, tmp_path: Path, n_users: int, delay: float, *args: str) -> Any:
    """A worker subprocess over n_users queued users, returned once a user batch is in
    progress (its encoder then sleeps `delay` seconds)."""
    _user_fixture(conn, n_users)
    marker = tmp_path / "in-batch"
    proc = spawn_worker(db_url, "--delay", str(delay), "--marker", str(marker), *args)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the worker never started a batch"
        time.sleep(0.05)
    return proc


def test_sigkill_mid_batch_leaves_rows_queued_for_the_next_run(conn, db_url, tmp_path):
    proc = _worker_in_batch(conn, db_url, tmp_path, 30, 30, "--user-batch-size", "10")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert queue_len(conn, "user_queue") == 30  # the claimed batch rolled back
    assert conn.execute("SELECT count(*) FROM recdb.users").fetchone()[0] == 0
    done = spawn_worker(db_url, "--once")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert "users=30" in out
    assert queue_len(conn, "user_queue") == 0


def test_sigterm_finishes_the_batch_then_exits_zero(conn, db_url, tmp_path):
    proc = _worker_in_batch(conn, db_url, tmp_path, 30, 2, "--user-batch-size", "10")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "users=10" in out  # exactly the batch in progress, committed
    assert conn.execute("SELECT count(*) FROM recdb.users").fetchone()[0] == 10
    assert queue_len(conn, "user_queue") == 20


def test_second_signal_exits_at_once(conn, db_url, tmp_path):
    proc = _worker_in_batch(conn, db_url, tmp_path, 10, 60)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert time.monotonic() - started < 20
    assert proc.returncode != 0
    assert queue_len(conn, "user_queue") == 10  # nothing half-written


def test_polling_finds_work_that_sent_no_notification(conn, db_url, tmp_path):
    _user_fixture(conn, 3)
    conn.execute("DELETE FROM recdb.user_queue")
    proc = spawn_worker(db_url, "--poll-interval", "0.5")
    try:
        time.sleep(2)  # let it go idle, listening
        # Queue rows written directly: no trigger, so no NOTIFY; only polling can find them.
        conn.execute("INSERT INTO recdb.user_queue (user_id) VALUES (0), (1), (2)")
        deadline = time.monotonic() + 30
        while queue_len(conn, "user_queue") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue_len(conn, "user_queue") == 0
        assert conn.execute("SELECT count(*) FROM recdb.users").fetchone()[0] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_notify_wakes_an_idle_worker_before_the_poll_interval(conn, db_url):
    _user_fixture(conn, 1)
    conn.execute("DELETE FROM recdb.user_queue")
    proc = spawn_worker(db_url, "--poll-interval", "60")
    try:
        time.sleep(2)
        add_events(conn, 42, [1], "click")  # trigger -> NOTIFY
        deadline = time.monotonic() + 20
        while queue_len(conn, "user_queue") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert queue_len(conn, "user_queue") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


class PoisonAware:
    """Wraps the tiny encoder; refuses texts containing POISON like a tokenizer might."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.device = inner.device
        self.model_name = "tiny"

    def encode(self, texts):  # type: ignore[no-untyped-def]
        for t in texts:
            if "POISON" in t:
                raise ValueError("tokenizer rejected the text")
        return self.inner.encode(texts)


def test_poison_item_is_parked_and_others_proceed(conn, db_url, encoder):
    add_items(
        conn, [{"item_id": i, "title": "POISON pill" if i == 3 else f"fine {i}"} for i in range(6)]
    )
    cfg = WorkerConfig(database_url=db_url, device="cpu", max_attempts=3, backoff_seconds=0.01)
    stats = Worker(cfg, text_encoder=PoisonAware(encoder)).run(once=True)
    assert stats.items_encoded == 5 and stats.parked == 1
    row = conn.execute(
        "SELECT item_id, attempts, parked_at IS NOT NULL, last_error FROM recdb.item_queue"
    ).fetchall()
    assert len(row) == 1 and row[0][:3] == (3, 3, True)
    assert "tokenizer rejected the text" in row[0][3]
    assert (
        conn.execute("SELECT count(*) FROM recdb.items WHERE embedding IS NOT NULL").fetchone()[0]
        == 5
    )
    # A parked row blocks nothing: new work flows past it.
    add_items(conn, [{"item_id": 10, "title": "new"}])
    assert Worker(cfg, text_encoder=PoisonAware(encoder)).run(once=True).items_encoded == 1
    # Fixing the item requeues it with fresh attempts.
    conn.execute("UPDATE recdb.items SET title = 'antidote' WHERE item_id = 3")
    assert Worker(cfg, text_encoder=PoisonAware(encoder)).run(once=True).items_encoded == 1
    assert queue_len(conn, "item_queue") == 0


def test_dimension_mismatch_is_a_clear_error_at_start(db_url):
    from tests.support.tiny_model import tiny_text_encoder as tiny

    other = tiny()
    other.model.config.hidden_size = 48  # pretend: a model whose vectors do not fit
    with pytest.raises(
        DimensionMismatch, match=r"48-d vectors but recdb.items.embedding is vector\(32\)"
    ):
        Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=other).run(once=True)


def test_requeue_all_users_and_status(conn, db_url, encoder):
    from recdb import status

    _user_fixture(conn, 4)
    run_once(db_url, encoder)
    assert requeue_all_users(conn) == 4
    snap = status.collect(conn)
    for key in (
        "queued_items",
        "queued_users",
        "parked",
        "workers",
        "items_embedded",
        "items_total",
        "users_embedded",
        "oldest_queued_age_s",
    ):
        assert key in snap
    assert snap["queued_users"] == 4 and snap["users_embedded"] == 4 and snap["items_total"] == 5


def test_live_worker_shows_in_status(conn, db_url):
    from recdb import status

    proc = spawn_worker(db_url, "--poll-interval", "0.5")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and status.collect(conn)["workers"] == 0:
            time.sleep(0.1)
        snap = status.collect(conn)
        assert snap["workers"] == 1
        assert snap["worker_details"][0]["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert status.collect(conn)["workers"] == 0


def test_worker_survives_a_dropped_connection(conn, db_url, encoder):
    """Terminate the worker's backends: it reconnects with backoff and keeps draining."""
    _user_fixture(conn, 2)
    conn.execute("DELETE FROM recdb.user_queue")
    w = Worker(
        WorkerConfig(database_url=db_url, device="cpu", poll_interval=0.2), text_encoder=encoder
    )
    t = threading.Thread(target=w.run)
    t.start()
    try:
        time.sleep(1.5)
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name LIKE 'recdb worker%%' AND datname = current_database()"
        ).fetchone()[0]
        assert killed >= 1
        add_events(conn, 0, [1], "click")
        deadline = time.monotonic() + 30
        while queue_len(conn, "user_queue") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue_len(conn, "user_queue") == 0
        assert w.stats.errors >= 1
    finally:
        w.stop()
        t.join(timeout=30)
    assert not t.is_alive()


def test_item_update_during_a_batch_is_not_lost(conn, db_url, encoder):
    """An app UPDATE racing the worker's batch ends re-queued, never silently dropped."""
    add_items(conn, [{"item_id": 1, "title": "first"}])
    # A batch's claim, held by a connection of its own (the worker's claim query).
    batch = psycopg.connect(db_url)
    claimed = batch.execute(
        query("queries/worker.sql", "claim_items"),
        {"limit": 10, "only": None, "ignore_backoff": True},
    )
    assert [r[0] for r in claimed.fetchall()] == [1]
    writer = psycopg.connect(db_url, autocommit=True)
    done = threading.Event()

    def update() -> None:
        writer.execute("UPDATE recdb.items SET title = 'second' WHERE item_id = 1")
        done.set()

    t = threading.Thread(target=update)
    t.start()
    time.sleep(0.5)
    batch.rollback()  # release the claim as a finished batch would
    t.join(timeout=10)
    assert done.is_set()
    assert queue_len(conn, "item_queue") == 1
    stats = run_once(db_url, encoder)
    assert stats.items_encoded == 1
    vec = conn.execute("SELECT embedding FROM recdb.items WHERE item_id = 1").fetchone()[0]
    assert np.allclose(vec, encoder.encode(["second"])[0], atol=1e-5)
    writer.close()
    batch.close()
