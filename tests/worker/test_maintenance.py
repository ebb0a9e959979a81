"""The maintenance thread runs what is due: a worker (re)started right after a refresh
does not rebuild popularity and neighbours again (on a large event log that rebuild takes
a core for seconds, under the freshness of every user batch); an overdue one runs at once."""

from __future__ import annotations

import time

from recdb.worker import Worker, WorkerConfig
from recdb.worker.maintenance import run_jobs
from recdb.worker.runner import BackgroundWorker
from tests.support.builders import add_events, add_items, axis
from tests.support.tiny_model import tiny_text_encoder


def _finished(conn) -> dict[str, object]:
    return dict(conn.execute("SELECT job, finished_at FROM recdb.maintenance").fetchall())


def _worker(url: str) -> Worker:
    config = WorkerConfig(database_url=url, device="cpu", popularity_interval=300.0)
    return Worker(config, text_encoder=tiny_text_encoder())


def _run_for(url: str, seconds: float) -> None:
    with BackgroundWorker(_worker(url)):
        time.sleep(seconds)


def test_a_restarted_worker_does_not_redo_a_fresh_refresh(conn, db_url):
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    add_events(conn, 1, [0, 1], "click")
    conn.commit()
    run_jobs(conn)
    before = _finished(conn)
    assert set(before) >= {"popularity", "neighbors"}
    _run_for(db_url, 2.0)
    assert _finished(conn) == before


def test_an_overdue_or_missing_refresh_runs_at_start(conn, db_url):
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    add_events(conn, 1, [0, 1], "click")
    conn.commit()
    assert _finished(conn) == {}  # never ran: due now
    _run_for(db_url, 2.0)
    first = _finished(conn)
    assert set(first) >= {"popularity", "neighbors"}
    conn.execute("UPDATE recdb.maintenance SET finished_at = finished_at - interval '1 hour'")
    conn.commit()
    overdue = _finished(conn)
    _run_for(db_url, 2.0)
    after = _finished(conn)
    assert all(after[job] > overdue[job] for job in ("popularity", "neighbors"))
