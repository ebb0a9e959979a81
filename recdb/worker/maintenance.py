"""Maintenance off the encoding path: popularity (and the content prior fitted on it),
co-visitation neighbours, retention.

Both collaborative jobs are incremental, so their cost grows with what changed, not with
the event log: popularity counts the events committed since its last run and subtracts
the counted ones deleted since (recdb.refresh_popularity); co-visitation applies the
users whose vectors the worker rewrote since the last step (recdb.sync_covisitation).
Each does its full rebuild the first time, when its knobs change, or on
`recdb refresh --full` (recdb.rebuild_popularity, recdb.refresh_neighbors).

Each job is its own short transaction on a connection of its own, in a background thread
on the worker's popularity interval, so user and item batches never wait behind a
rebuild (freshness under load depends on it). The interval counts from when any worker
last ran a refresh (recdb.maintenance): a restarted worker does not rebuild again at
once. One worker at a time runs a refresh (an advisory lock; the others skip it).
Retention deletes in small batches, each its own transaction, until nothing is left to
expire. A stop request cancels the statement in flight, so the worker stops within one
batch.

Maintenance yields to the encoding path (Pace): while users wait in the queue, each of
its transactions is followed by a pause, so that it holds at most `duty` of a core
against the user batches (on a small machine a co-visitation step running flat out beside
the worker was what made freshness miss its target under load); with no user waiting it
runs flat out. Under a sustained load the neighbour lists then trail further behind, the
user vectors do not.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from recdb import db
from recdb.worker import content_prior
from recdb.worker.config import WorkerConfig
from recdb.worker.sql import q

log = logging.getLogger(__name__)

# Events deleted per retention transaction: short enough never to hold locks for long.
RETENTION_BATCH = 1000
# Co-visitation queue rows (users) applied per transaction.
COVISIT_BATCH = 200
# The longest pause Pace makes between two maintenance transactions.
PACE_MAX_PAUSE_S = 10.0


class Pace:
    """Pauses between maintenance transactions while users wait to be re-encoded: after
    a transaction of t seconds, t * (1 - duty) / duty (at most PACE_MAX_PAUSE_S), so
    maintenance takes at most `duty` of the time it shares with user batches. duty 1:
    never pauses (recdb refresh, the benches' cost figures)."""

    def __init__(
        self, conn: psycopg.Connection[Any], duty: float, stopping: Callable[[], bool]
    ) -> None:
        if not 0.0 < duty <= 1.0:
            raise ValueError(f"maintenance duty must be in (0, 1], got {duty}")
        self.conn = conn
        self.duty = duty
        self.stopping = stopping
        self.paused_s = 0.0  # all pauses, for the figures
        self._since = time.perf_counter()

    def step(self) -> None:
        """Call after each transaction: pauses if users wait, then starts the next lap."""
        took = time.perf_counter() - self._since
        if self.duty < 1.0 and not self.stopping():
            waiting = self.conn.execute(q("users_waiting")).fetchone()
            self.conn.commit()
            if waiting and waiting[0]:
                pause = min(took * (1.0 - self.duty) / self.duty, PACE_MAX_PAUSE_S)
                end = time.perf_counter() + pause
                while not self.stopping() and (left := end - time.perf_counter()) > 0:
                    time.sleep(min(left, 0.05))
                self.paused_s += pause
        self._since = time.perf_counter()


def run_jobs(
    conn: psycopg.Connection[Any],
    stopping: Any = lambda: False,
    *,
    full: bool = False,
    seconds: dict[str, float] | None = None,
    duty: float = 1.0,
) -> dict[str, int]:
    """Every maintenance job once, each step its own transaction; rows touched per job.

    Popularity applies what changed since its last run (items changed; `full`: rebuilds
    it, items with events); the content prior is refitted after it and re-scores the
    listed new items (`full`: rebuilds that list from every item). Co-visitation applies
    the users changed since the last run, COVISIT_BATCH per transaction, until none are
    left (`full`: rebuilds everything instead). `seconds`, when given, receives each job's
    wall time (all its transactions: recdb.maintenance keeps only the last step of each).
    `duty` < 1 yields to the user batches between transactions (Pace; pauses included in
    `seconds`).
    """
    done: dict[str, int] = {}
    took = seconds if seconds is not None else {}
    pace = Pace(conn, duty, stopping)
    t0 = time.perf_counter()
    row = conn.execute(q("rebuild_popularity" if full else "refresh_popularity")).fetchone()
    conn.commit()
    pace.step()
    done["refresh_popularity"] = int(row[0]) if row and row[0] is not None else 0
    t0 = _lap(took, "refresh_popularity", t0)
    if row and row[0] is not None:  # this worker refreshed: the prior follows the scores
        done["content_prior"] = content_prior.refit(conn, full=full, between=pace.step)
        t0 = _lap(took, "content_prior", t0)
    if full:
        done["refresh_neighbors"] = int(conn.execute(q("refresh_neighbors")).fetchone()[0])
        conn.commit()
        t0 = _lap(took, "refresh_neighbors", t0)
    else:
        users = 0
        while not stopping():
            n = int(conn.execute(q("sync_covisitation"), {"batch": COVISIT_BATCH}).fetchone()[0])
            conn.commit()
            pace.step()
            users += n
            if n < COVISIT_BATCH:
                break
        done["sync_covisitation"] = users
        t0 = _lap(took, "sync_covisitation", t0)
    expired = 0
    while not stopping():
        n = conn.execute(q("apply_retention"), {"batch": RETENTION_BATCH}).fetchone()[0]
        conn.commit()
        pace.step()
        expired += n
        if n < RETENTION_BATCH:
            break
    done["retention"] = expired
    _lap(took, "retention", t0)
    return done


def _lap(took: dict[str, float], job: str, since: float) -> float:
    now = time.perf_counter()
    took[job] = round(now - since, 3)
    return now


class Maintenance:
    """The background thread (see the module docstring)."""

    def __init__(self, config: WorkerConfig, stop: threading.Event) -> None:
        self.config = config
        self._stop = stop
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="recdb-maintenance", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Cancel what runs and wait for the thread (the caller set the stop event)."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.cancel_safe(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = self.config.popularity_interval
        while not self._stop.is_set():
            try:
                if self._conn is None:
                    self._conn = db.connect(
                        self.config.database_url,
                        application_name=f"recdb maintenance {self.config.worker_id}"[:63],
                    )
                if self._stop.wait(self._due_in(self._conn, interval)):
                    break
                started = time.monotonic()
                done = run_jobs(self._conn, self._stop.is_set, duty=self.config.maintenance_duty)
                log.debug("maintenance in %.1fs: %s", time.monotonic() - started, done)
                self.last_error = None
            except psycopg.Error as exc:
                if self._stop.is_set():
                    break
                self.last_error = str(exc)
                log.warning("maintenance failed (%s); next try in %.0fs", exc, interval)
                with contextlib.suppress(Exception):
                    if self._conn is not None:
                        self._conn.close()
                self._conn = None
                if self._stop.wait(interval):
                    break
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    @staticmethod
    def _due_in(conn: psycopg.Connection[Any], interval: float) -> float:
        """Seconds until the refreshes are due, by when any worker last ran them."""
        row = conn.execute(q("maintenance_due_in"), {"interval": interval}).fetchone()
        conn.commit()
        return min(interval, float(row[0])) if row else 0.0
