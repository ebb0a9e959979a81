"""The worker keeps making progress: no spinning on rows it cannot lock, no starvation of
users by items (or the reverse), no crash in its own failure path."""

from __future__ import annotations

import time

import psycopg
import pytest

from recdb.worker import Worker, WorkerConfig
from recdb.worker.runner import BackgroundWorker
from tests.support.builders import add_events, add_items, spawn_worker
from tests.support.tiny_model import tiny_text_encoder


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def test_an_item_locked_by_the_app_neither_spins_the_worker_nor_starves_users(
    conn, db_url, encoder
):
    add_items(conn, [{"item_id": i, "title": f"thing {i}"} for i in range(3)])
    Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=encoder).run(once=True)
    conn.execute("UPDATE recdb.items SET title = 'renamed' WHERE item_id = 1")  # queued again
    app = psycopg.connect(db_url)
    try:
        # An open app transaction holds item 1's row (not its queue row).
        app.execute("UPDATE recdb.items SET available = false WHERE item_id = 1")
        add_events(conn, 5, [0, 2])
        cfg = WorkerConfig(database_url=db_url, device="cpu", poll_interval=0.2)
        worker = Worker(cfg, text_encoder=encoder)
        with BackgroundWorker(worker):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                row = conn.execute("SELECT 1 FROM recdb.users WHERE user_id = 5").fetchone()
                if row:
                    break
                time.sleep(0.05)
            time.sleep(2.0)  # a spinning worker would run thousands of batches here
        assert row, "user 5 starved while item 1 stayed locked"
        assert worker.stats.batches < 50, f"{worker.stats.batches} batches: the worker spun"
        assert (
            conn.execute("SELECT count(*) FROM recdb.item_queue WHERE item_id = 1").fetchone()[0]
            == 1
        ), "the locked item must stay queued"
    finally:
        app.rollback()
        app.close()
    Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=encoder).run(once=True)
    assert conn.execute("SELECT count(*) FROM recdb.item_queue").fetchone()[0] == 0


def test_drain_mode_ends_while_an_item_stays_locked(conn, db_url, encoder):
    add_items(conn, [{"item_id": i, "title": f"thing {i}"} for i in range(2)])
    app = psycopg.connect(db_url)
    try:
        app.execute("UPDATE recdb.items SET available = false WHERE item_id = 1")
        worker = Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=encoder)
        with BackgroundWorker(worker, once=True) as bg:
            bg.join(timeout=20)
            assert not bg.is_alive(), "--once never ends while a row stays locked"
        assert worker.stats.items_encoded == 1
    finally:
        app.rollback()
        app.close()


def test_backoff_never_overflows_whatever_max_attempts(conn, db_url, encoder):
    """attempts >= 44 made `backoff * 2 ^ attempts` overflow inside the failure handler."""
    add_items(conn, [{"item_id": 1, "title": "poison"}])
    conn.execute("UPDATE recdb.item_queue SET attempts = 60")
    conn.execute("INSERT INTO recdb.user_queue (user_id, attempts) VALUES (3, 70)")
    conn.execute("DELETE FROM recdb.event_kinds WHERE kind = 'rate'")  # nothing to do with it

    class Broken:
        dim = encoder.dim
        device = "cpu"
        model_name = "broken"

        def encode(self, texts):
            raise ValueError("cannot encode")

    cfg = WorkerConfig(
        database_url=db_url, device="cpu", max_attempts=1000, backoff_seconds=2, poll_interval=0.2
    )
    worker = Worker(cfg, text_encoder=Broken())
    with BackgroundWorker(worker):
        deadline = time.monotonic() + 20
        while worker.stats.errors < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    assert worker.stats.errors >= 1
    row = conn.execute(
        "SELECT attempts, parked_at, not_before - now() < interval '2 hours', last_error"
        " FROM recdb.item_queue WHERE item_id = 1"
    ).fetchone()
    assert row[0] == 61 and row[1] is None and row[2] and "cannot encode" in row[3]


def test_item_changes_reach_users_even_if_the_worker_dies_right_after_its_commit(
    conn, db_url, encoder
):
    """The users of a re-encoded item are queued inside the batch transaction: a worker
    killed between its commit and the second (post-commit) sweep leaves nobody stale."""
    add_items(conn, [{"item_id": i, "title": f"thing {i}"} for i in range(3)])
    add_events(conn, 5, [1])
    add_events(conn, 6, [1, 2])
    add_events(conn, 7, [2])
    Worker(WorkerConfig(database_url=db_url, device="cpu"), text_encoder=encoder).run(once=True)
    conn.execute("UPDATE recdb.items SET title = 'a different thing' WHERE item_id = 1")
    proc = spawn_worker(db_url, "--once", "--die-after-item-commit")
    assert proc.wait(timeout=120) == 9, proc.stderr.read() if proc.stderr else ""
    assert conn.execute("SELECT count(*) FROM recdb.item_queue").fetchone()[0] == 0
    queued = {r[0] for r in conn.execute("SELECT user_id FROM recdb.user_queue").fetchall()}
    assert queued == {5, 6}
