"""Zero-lag under concurrent writers: every committed event is either in the stored user
vector or folded in by rerank(), whatever order transactions commit in.

Identity values are handed out at INSERT, not at COMMIT: a writer that inserts first and
commits last leaves an event *below* the worker's watermark that the worker never saw.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import psycopg
import pytest

from recdb.worker import Worker, WorkerConfig
from tests.support.builders import add_items, axis, spawn_worker, unit
from tests.support.consistency import assert_consistent, zero_lag_gap
from tests.support.tiny_model import tiny_text_encoder


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def _once(url, encoder) -> None:
    Worker(WorkerConfig(database_url=url, device="cpu"), text_encoder=encoder).run(once=True)


def test_an_event_committed_after_a_later_one_is_folded(conn, db_url, encoder):
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    early = psycopg.connect(db_url)  # inserts first, commits last
    try:
        early.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (7, 1, 'click')")
        conn.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (7, 2, 'click')")
        _once(db_url, encoder)  # encodes user 7 through the later event id
        early.commit()
    finally:
        early.close()
    fresh = conn.execute("SELECT fresh_events FROM recdb.user_vector(7)").fetchone()[0]
    assert fresh == 1, "the early event is below the watermark but was never encoded"
    assert zero_lag_gap(conn, 7) == 0
    _once(db_url, encoder)
    assert conn.execute("SELECT fresh_events FROM recdb.user_vector(7)").fetchone()[0] == 0
    assert zero_lag_gap(conn, 7) == 0


def test_a_stored_vector_is_not_double_counted_after_catching_up(conn, db_url, encoder):
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    for i in range(3):
        conn.execute(
            "INSERT INTO recdb.events (user_id, item_id, kind) VALUES (8, %s, 'click')", (i,)
        )
    _once(db_url, encoder)
    assert zero_lag_gap(conn, 8) == 0
    assert conn.execute("SELECT fresh_events FROM recdb.user_vector(8)").fetchone()[0] == 0


def test_an_in_flight_writer_above_the_snapshot_xmax_is_folded(conn, db_url):
    """A snapshot's xmax is the newest *completed* xid + 1, not the next xid: a writer
    whose xid is newer than every completed one is in flight yet absent from xip, and the
    snapshot reads xmin = xmax. Its event can still sit below the watermark (B takes its
    xid first, A its xid and event id, B its event id, B commits): it must be folded."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    b, a, worker = (psycopg.connect(db_url) for _ in range(3))
    try:
        b.execute("SELECT pg_current_xact_id()")
        a.execute("SELECT pg_current_xact_id()")
        a.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (9, 1, 'click')")
        b.execute("INSERT INTO recdb.events (user_id, item_id, kind) VALUES (9, 2, 'click')")
        b.commit()
        # what the worker's read sees: B's event only, A in flight
        snapshot, through = worker.execute(
            "SELECT pg_current_snapshot()::text, max(event_id) FROM recdb.events WHERE user_id = 9"
        ).fetchone()
        worker.rollback()
        xmin, xmax, _ = snapshot.split(":")
        assert xmin == xmax, f"precondition: A's xid above the snapshot's xmax ({snapshot})"
        conn.execute(
            "INSERT INTO recdb.users (user_id, embedding, norm, encoded_through, event_count,"
            " encoded_snapshot) VALUES (9, %s, 1, %s, 1, %s::pg_snapshot)",
            (unit(axis(2)), through, snapshot),
        )
        a.commit()
    finally:
        for c in (a, b, worker):
            c.close()
    assert conn.execute("SELECT fresh_events FROM recdb.user_vector(9)").fetchone()[0] == 1
    assert zero_lag_gap(conn, 9) == 0


SECONDS = float(os.environ.get("RECDB_CONCURRENCY_SECONDS", "60"))


class Writer(threading.Thread):
    """Short transactions, sometimes held open, checking zero-lag after each commit."""

    def __init__(self, url: str, seed: int, users: int, items: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.rng, self.users, self.items, self.stop = (
            url,
            random.Random(seed),
            users,
            items,
            stop,
        )
        self.committed = self.checks = 0
        self.violations: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self.url) as conn:
            while not self.stop.is_set():
                touched = set()
                try:
                    with conn.transaction():
                        for _ in range(self.rng.randint(1, 4)):
                            u = self.rng.randrange(self.users)
                            touched.add(u)
                            conn.execute(
                                "INSERT INTO recdb.events (user_id, item_id, kind)"
                                " VALUES (%s, %s, %s)",
                                (u, self.rng.randrange(self.items), self.rng.choice(KINDS)),
                            )
                            if self.rng.random() < 0.3:  # hold the transaction open a while
                                time.sleep(self.rng.uniform(0.0, 0.05))
                    self.committed += 1
                    for u in touched:
                        gap = zero_lag_gap(conn, u)
                        conn.commit()
                        self.checks += 1
                        if gap:
                            self.violations.append(f"user {u}: {gap} committed events unseen")
                except psycopg.Error as exc:
                    conn.rollback()
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(self.rng.uniform(0.01, 0.06))


KINDS = ["view", "click", "purchase", "dislike"]


class Reader(threading.Thread):
    """rerank() callers checking the same invariant for random users at any moment."""

    def __init__(self, url: str, seed: int, users: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.rng, self.users, self.stop = url, random.Random(seed), users, stop
        self.checks = 0
        self.violations: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                u = self.rng.randrange(self.users)
                conn.execute("SELECT count(*) FROM rerank(%s, 5)", (u,)).fetchone()
                gap = zero_lag_gap(conn, u)
                self.checks += 1
                if gap:
                    self.violations.append(f"user {u}: {gap}")
                time.sleep(0.005)


@pytest.mark.faults
def test_randomized_writers_workers_readers_and_kills(conn, db_url, encoder):
    """>= 8 writers, 2 worker processes killed with SIGKILL and restarted, 2 readers, for
    RECDB_CONCURRENCY_SECONDS (60 by default): no committed event is ever missing from
    rerank()'s view, and at the end every vector equals a from-scratch recomputation."""
    add_items(
        conn, [{"item_id": i, "title": f"product {i} {'abcdefgh'[i % 8]}"} for i in range(40)]
    )
    _once(db_url, encoder)
    stop = threading.Event()
    writers = [Writer(db_url, seed, users=200, items=40, stop=stop) for seed in range(8)]
    readers = [Reader(db_url, 100 + seed, users=200, stop=stop) for seed in range(2)]
    workers = [spawn_worker(db_url, "--poll-interval", "0.2") for _ in range(2)]
    rng = random.Random(11)
    kills = 0
    for t in writers + readers:
        t.start()
    deadline = time.monotonic() + SECONDS
    try:
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(3.0, 8.0))
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = spawn_worker(db_url, "--poll-interval", "0.2")
    finally:
        stop.set()
        for t in writers + readers:
            t.join(timeout=30)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=60)
            except Exception:
                w.kill()
    committed = sum(w.committed for w in writers)
    checks = sum(w.checks for w in writers) + sum(r.checks for r in readers)
    events = conn.execute("SELECT count(*) FROM recdb.events").fetchone()[0]
    print(
        f"\nconcurrency: {SECONDS:.0f}s, {committed} transactions, {events} events, "
        f"{checks} zero-lag checks, {kills} worker SIGKILLs"
    )
    violations = [v for t in writers + readers for v in t.violations]
    assert not violations, violations[:10]
    assert committed > 100 and kills >= 3
    assert_consistent(conn, db_url, encoder)
    for u in range(200):
        assert zero_lag_gap(conn, u) == 0
