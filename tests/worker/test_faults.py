"""Fault injection: kills, a database restart, concurrent writers, a frozen worker.
Every scenario ends with a clean drain and checks that nothing was lost or left stale:
each vector equals a from-scratch recomputation and no queue row leaks."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.support import REPO_ROOT
from tests.support.builders import add_items, spawn_worker
from tests.support.consistency import assert_consistent, drain
from tests.support.tiny_model import tiny_text_encoder

pytestmark = pytest.mark.faults
ROOT = REPO_ROOT


@pytest.fixture(scope="module")
def encoder():
    return tiny_text_encoder()


def _wait_workers(conn, n: int, timeout: float = 90) -> None:
    """Block until n worker processes have registered (startup imports torch: slow)."""
    deadline = time.monotonic() + timeout
    while (
        conn.execute("SELECT count(*) FROM recdb.workers WHERE stopped_at IS NULL").fetchone()[0]
        < n
    ):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.1)


class Writer(threading.Thread):
    """Inserts events (and sometimes retitles items) until stopped; retries failed txns."""

    def __init__(self, url: str, seed: int, users: int, items: int, rate_s: float = 0.002):
        super().__init__(daemon=True)
        self.url, self.rng, self.users, self.items, self.rate_s = (
            url,
            random.Random(seed),
            users,
            items,
            rate_s,
        )
        self.stop = threading.Event()
        self.committed = 0
        self.failed = 0
        self.errors: list[str] = []

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=False, connect_timeout=3)
                with conn.transaction():
                    for _ in range(self.rng.randint(1, 5)):
                        conn.execute(
                            "INSERT INTO recdb.events (user_id, item_id, kind) VALUES (%s, %s, %s)",
                            (
                                self.rng.randrange(self.users),
                                self.rng.randrange(self.items),
                                self.rng.choice(["view", "click", "purchase", "dislike"]),
                            ),
                        )
                    if self.rng.random() < 0.05:
                        conn.execute(
                            "UPDATE recdb.items SET title = title || '!' WHERE item_id = %s",
                            (self.rng.randrange(self.items),),
                        )
                self.committed += 1
            except psycopg.Error as exc:
                self.failed += 1  # only the writer's own transaction fails; it retries
                self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)
            time.sleep(self.rate_s)
        if conn is not None:
            conn.close()


def _catalog(conn, n: int = 40) -> None:
    add_items(conn, [{"item_id": i, "title": f"product {i} {'abcdefgh'[i % 8]}"} for i in range(n)])


def test_sigkill_at_random_points_loses_nothing(conn, db_url, encoder):
    _catalog(conn)
    writers = [Writer(db_url, seed=s, users=60, items=40) for s in range(2)]
    for w in writers:
        w.start()
    rng = random.Random(7)
    kills = 0
    try:
        for _ in range(5):
            proc = spawn_worker(db_url, "--delay", "0.05", "--user-batch-size", "7")
            time.sleep(rng.uniform(0.5, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
    finally:
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(timeout=30)
    assert kills == 5 and sum(w.committed for w in writers) > 50
    assert_consistent(conn, db_url, encoder)


def test_concurrent_writers_and_two_workers_end_consistent(conn, db_url, encoder):
    _catalog(conn)
    writers = [Writer(db_url, seed=10 + s, users=30, items=40, rate_s=0.001) for s in range(4)]
    procs = [
        spawn_worker(db_url, "--user-batch-size", "5", "--poll-interval", "0.2") for _ in range(2)
    ]
    _wait_workers(conn, 2)
    for w in writers:
        w.start()
    time.sleep(6)
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(timeout=30)
    time.sleep(1)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    errors = [e for w in writers for e in w.errors]
    assert not errors  # workers never make a writer fail
    assert_consistent(conn, db_url, encoder)


def test_frozen_worker_loses_its_claim_and_others_proceed(conn, db_url, encoder, tmp_path):
    _catalog(conn, 5)
    drain(db_url, encoder)
    conn.execute(
        "INSERT INTO recdb.events (user_id, item_id, kind)"
        " SELECT u, u % 5, 'click' FROM generate_series(1, 40) u"
    )
    marker = tmp_path / "batch"
    frozen = spawn_worker(
        db_url,
        "--delay",
        "1",
        "--marker",
        str(marker),
        "--user-batch-size",
        "20",
        "--claim-timeout",
        "2",
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    frozen.send_signal(signal.SIGSTOP)  # frozen mid-batch, holding 20 claimed rows
    try:
        time.sleep(0.5)
        first = drain(db_url, encoder)
        assert first.users_encoded == 20  # the other 20 proceed at once
        time.sleep(3)  # the rule: a claim lives as long as its transaction (<= claim_timeout)
        second = drain(db_url, encoder)
        assert second.users_encoded == 20
        assert conn.execute("SELECT count(*) FROM recdb.user_queue").fetchone()[0] == 0
    finally:
        frozen.send_signal(signal.SIGKILL)
        frozen.send_signal(signal.SIGCONT)
        frozen.wait(timeout=30)
    assert_consistent(conn, db_url, encoder)


def _embedded_data_dir(conn) -> str | None:
    if os.environ.get("RECDB_TEST_DATABASE_URL"):
        return None
    host = psycopg.conninfo.conninfo_to_dict(conn.info.dsn).get("host", "")
    return host if host.startswith("/") and Path(host, "PG_VERSION").exists() else None


def test_database_restart_during_a_worker_run(conn, db_url, encoder):
    from pgserver._commands import pg_ctl

    pgdata = _embedded_data_dir(conn)
    if pgdata is None:
        pytest.skip("needs the embedded server, which the test can restart")
    _catalog(conn)
    writer = Writer(db_url, seed=3, users=20, items=40, rate_s=0.01)
    worker = spawn_worker(db_url, "--poll-interval", "0.3")
    _wait_workers(conn, 1)
    writer.start()
    time.sleep(2)
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(
        [
            "-w",
            "-m",
            "fast",
            "restart",
            "-o",
            f"-h '' -k {pgdata}",
            "-l",
            str(Path(pgdata) / "log"),
        ],
        pgdata=Path(pgdata),
        user=user,
        timeout=60,
    )
    conn = psycopg.connect(db_url, autocommit=True)
    from recdb.db import register_numpy_vector

    register_numpy_vector(conn)
    time.sleep(4)
    writer.stop.set()
    writer.join(timeout=30)
    committed_after = conn.execute("SELECT count(*) FROM recdb.events").fetchone()[0]
    assert writer.committed > 0 and committed_after > 0
    deadline = time.monotonic() + 60  # the worker reconnects and drains by itself
    while (
        conn.execute("SELECT count(*) FROM recdb.user_queue").fetchone()[0]
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert conn.execute("SELECT count(*) FROM recdb.user_queue").fetchone()[0] == 0
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "reconnecting" in err
    assert_consistent(conn, db_url, encoder)
    conn.close()
