"""The maintenance thread runs what is due: a worker (re)started right after a refresh
does not rebuild popularity and neighbours again (on a large event log that rebuild takes
a core for seconds, under the freshness of every user batch); an overdue one runs at once;
while users wait to be re-encoded, maintenance yields the core to them."""

from __future__ import annotations

import threading
import time

import pytest

from recdb.worker import Worker, WorkerConfig
from recdb.worker.maintenance import Maintenance, Pace, run_jobs
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


def _maintenance_writes(conn) -> int:
    """Rows ever written to recdb.maintenance (each job run records one), this
    connection's writes included."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.commit()  # flushes this backend's counts; the next transaction reads afresh
    row = conn.execute(
        "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables"
        " WHERE relid = 'recdb.maintenance'::regclass"
    ).fetchone()
    return int(row[0])


def test_an_idle_maintenance_thread_waits_for_its_interval(conn, db_url):
    """Nobody re-encoded since the last run: the co-visitation step has nothing to apply
    and is recorded anyway, so one overdue run is followed by a wait of the interval
    (revision 0015; before, the job stayed overdue and the thread ran back to back,
    hundreds of popularity steps a second in an idle shop)."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    add_events(conn, 1, [0, 1], "click")
    conn.commit()
    run_jobs(conn)
    conn.execute("DELETE FROM recdb.user_queue")
    conn.execute("DELETE FROM recdb.covisit_queue")
    conn.execute("UPDATE recdb.maintenance SET finished_at = finished_at - interval '1 hour'")
    before = _maintenance_writes(conn)
    stop = threading.Event()
    thread = Maintenance(WorkerConfig(database_url=db_url, popularity_interval=300.0), stop)
    thread.start()
    time.sleep(2.0)
    stop.set()
    thread.stop()
    assert _maintenance_writes(conn) - before <= 3  # one run: popularity, neighbours
    ages = conn.execute(
        "SELECT job, clock_timestamp() - finished_at < interval '1 minute'"
        " FROM recdb.maintenance WHERE job IN ('popularity', 'neighbors')"
    ).fetchall()
    assert dict(ages) == {"popularity": True, "neighbors": True}


def _step_seconds(pace: Pace, work_s: float) -> float:
    """Seconds Pace.step() takes after a 'transaction' of work_s seconds."""
    time.sleep(work_s)
    started = time.perf_counter()
    pace.step()
    return time.perf_counter() - started


def test_maintenance_yields_to_waiting_users_only(conn):
    """While a user waits to be re-encoded, a maintenance transaction of t seconds is
    followed by t (1 - duty) / duty of pause (the user batches get the core); with no user
    waiting, a parked user or one backing off, or at duty 1, none."""
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    add_events(conn, 1, [0, 1], "click")  # queues user 1
    conn.commit()
    assert _step_seconds(Pace(conn, 1.0, lambda: False), 0.3) < 0.1
    assert _step_seconds(Pace(conn, 0.5, lambda: False), 0.3) >= 0.25  # ~0.3 s
    assert 0.5 <= _step_seconds(Pace(conn, 0.25, lambda: False), 0.2) < 2.0  # ~0.6 s
    conn.execute("UPDATE recdb.user_queue SET not_before = now() + interval '1 hour'")
    conn.commit()
    assert _step_seconds(Pace(conn, 0.5, lambda: False), 0.3) < 0.1
    conn.execute("UPDATE recdb.user_queue SET not_before = now(), parked_at = now()")
    conn.commit()
    assert _step_seconds(Pace(conn, 0.5, lambda: False), 0.3) < 0.1


def test_a_stop_request_cuts_a_maintenance_pause_short(conn):
    add_items(conn, [{"item_id": i, "embedding": axis(i)} for i in range(4)])
    add_events(conn, 1, [0, 1], "click")
    conn.commit()
    asked = time.perf_counter() + 0.2
    pace = Pace(conn, 0.01, lambda: time.perf_counter() > asked)  # would pause 10 s
    assert _step_seconds(pace, 0.5) < 1.0


def test_maintenance_duty_must_be_a_share_of_a_core(conn):
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="duty"):
            Pace(conn, bad, lambda: False)
        with pytest.raises(ValueError, match="maintenance_duty"):
            WorkerConfig(maintenance_duty=bad)
