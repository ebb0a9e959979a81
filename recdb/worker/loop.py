"""The encoding worker: claims queued items and users, encodes them, writes vectors back.

One batch = one transaction (recdb.worker.queue): claim queue rows (FOR UPDATE SKIP
LOCKED), encode, write the vectors and delete the claimed rows, commit. A crash anywhere
before the commit leaves the rows queued for the next worker; any number of workers can
run side by side. NOTIFY on `recdb_work` only wakes the worker early; polling still runs,
so a lost notification delays work by at most the poll interval.

This module is the loop itself: connect and LISTEN, drain, wait, heartbeat, reconnect
with backoff. Items are encoded by recdb.worker.items, users by recdb.worker.users, and
recdb.worker.model_sync follows the active model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from recdb import db
from recdb.config import NOTIFY_CHANNEL, WORKER_LOCK_DEFER_S, env
from recdb.worker.config import WorkerConfig, WorkerStats
from recdb.worker.items import ItemWriter
from recdb.worker.maintenance import Maintenance, run_jobs
from recdb.worker.model_sync import ModelSync
from recdb.worker.queue import ITEMS, USERS, BatchQueue
from recdb.worker.sql import q
from recdb.worker.users import UserWriter

log = logging.getLogger(__name__)


class Worker:
    """Drains recdb.item_queue then recdb.user_queue; see the module docstring."""

    def __init__(
        self, config: WorkerConfig | None = None, text_encoder: Any = None, user_encoder: Any = None
    ) -> None:
        """Encoders may be injected (tests, notebooks); by default they are built from config."""
        self.config = config or WorkerConfig()
        self.stats = WorkerStats()
        self._text_encoder = text_encoder
        self._user_encoder: Any = user_encoder
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._listener: psycopg.Connection[Any] | None = None
        self._last_heartbeat = 0.0
        self._on_batch: list[Any] = []  # callables(stats), e.g. the systemd watchdog ping
        self._observers: list[Callable[[str, float], None]] = []  # the metrics' histogram
        self._once = False
        self._models = ModelSync(self.config)
        self._maintenance_stop = threading.Event()
        self._maintenance = Maintenance(self.config, self._maintenance_stop)
        # Built by load_encoders(), once the encoders they use exist.
        self._item_queue: BatchQueue | None = None
        self._user_queue: BatchQueue | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to exit after the batch in progress (thread-safe, signal-safe)."""
        self._stop.set()
        self._maintenance_stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> bool:
        """Interruptible sleep; True when woken by stop()."""
        return self._stop.wait(seconds)

    def add_batch_hook(self, hook: Any) -> None:
        """Call ``hook(stats)`` after every batch and every idle wait slice (watchdogs,
        progress marks)."""
        self._on_batch.append(hook)

    def add_batch_observer(self, observer: Callable[[str, float], None]) -> None:
        """Call ``observer(kind, seconds)`` after each item or user batch that did work
        (kind "items" or "users"; the batch duration histogram of /metrics)."""
        self._observers.append(observer)

    @property
    def text_encoder(self) -> Any:
        """The text encoder, loaded on first use (share it between in-process workers)."""
        self.load_encoders()
        return self._text_encoder

    def load_encoders(self) -> None:
        """Build the encoders not injected, and the queues that use them (idempotent)."""
        from recdb.encoders import TextEncoder, get_user_encoder
        from recdb.encoders.users import MeanUserEncoder

        cfg = self.config
        if self._text_encoder is None:
            self._text_encoder = TextEncoder(cfg.model or env("MODEL"), device=cfg.device)
        if self._user_encoder is None:
            if cfg.user_encoder in ("mean", "auto", "sequence"):
                self._user_encoder = MeanUserEncoder(cfg.device)
            else:
                self._user_encoder = get_user_encoder(cfg.user_encoder, self._text_encoder)
        if self._item_queue is None or self._user_queue is None:
            items = ItemWriter(self._text_encoder, self._models, self.stats, WORKER_LOCK_DEFER_S)
            users = UserWriter(
                self._user_encoder, self._models, self.stats, cfg.max_history, cfg.item_cache
            )
            stopping = self._stop.is_set
            self._item_queue = BatchQueue(ITEMS, items.encode, cfg, self.stats, stopping)
            self._user_queue = BatchQueue(USERS, users.encode, cfg, self.stats, stopping)

    def _connect(self) -> None:
        self._close()
        name = f"recdb worker {self.config.worker_id}"[:63]
        self._conn = db.connect(self.config.database_url, application_name=name)
        self._listener = db.connect(
            self.config.database_url,
            autocommit=True,
            application_name=name + " listen",
            vector=False,
        )
        self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self._conn.execute(
            q("set_claim_timeout"), {"ms": f"{int(self.config.claim_timeout * 1000)}"}
        )
        self._conn.commit()
        self._models.check_schema(self._conn, self._text_encoder.dim)
        with self._conn.transaction():
            self._conn.execute(q("forget_stale_workers"))
            self._conn.execute(
                q("register_worker"),
                {
                    "worker_id": self.config.worker_id,
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "device": str(self._text_encoder.device),
                    "user_encoder": self.config.user_encoder,
                },
            )

    def _close(self) -> None:
        for c in (self._conn, self._listener):
            if c is not None:
                with contextlib.suppress(Exception):  # closing a broken connection
                    c.close()
        self._conn = self._listener = None

    def run(self, once: bool = False) -> WorkerStats:
        """Work until stop() (or, with once=True, until both queues are drained)."""
        started = time.monotonic()
        self._once = once
        self.load_encoders()
        backoff = 1.0
        if not once:
            self._maintenance_stop.clear()
            self._maintenance.start()
        try:
            while not self.stopping:
                try:
                    if self._conn is None:
                        self._connect()
                        backoff = 1.0
                    if self._loop(once):
                        break
                except psycopg.OperationalError as exc:
                    # Whether psycopg has flagged the connection closed yet is a race with
                    # the server going away; either way the cure is a fresh connection.
                    log.warning("database error (%s); reconnecting in %.0fs", exc, backoff)
                    self.stats.errors += 1
                    self._close()
                    if self.sleep(backoff):
                        break
                    backoff = min(backoff * 2, 30.0)
        finally:
            self._maintenance_stop.set()
            self._maintenance.stop()
            self.stats.seconds = time.monotonic() - started
            self._finish()
        return self.stats

    def _finish(self) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()
                self._heartbeat(force=True)
                self._conn.execute(q("stop_worker"), {"worker_id": self.config.worker_id})
                self._conn.commit()
            except psycopg.Error as exc:
                log.warning("could not record the worker's stop: %s", exc)
        self._close()

    # --- the loop -------------------------------------------------------------------------

    def _loop(self, once: bool) -> bool:
        """Process until idle; True when the run should end (once-mode drained)."""
        while not self.stopping:
            # One batch of each queue per turn: neither starves the other (a re-queued
            # catalogue after an activation does not hold back users, nor the reverse).
            did_items = self._timed(ITEMS.kind, self.process_items)
            did_users = not self.stopping and self._timed(USERS.kind, self.process_users)
            if did_items or did_users:
                self._after_batch()
                continue
            self._heartbeat()
            if once:
                assert self._conn is not None
                run_jobs(self._conn, lambda: self.stopping)  # maintenance, then done
                return True
            self._wait()
        return True

    def process_items(self, only: list[int] | None = None) -> bool:
        """One item batch; True when it made progress."""
        assert self._conn is not None and self._item_queue is not None
        return self._item_queue.process(self._conn, self.config.batch_size, only, once=self._once)

    def process_users(self, only: list[int] | None = None) -> bool:
        """One user batch; True when it made progress."""
        assert self._conn is not None and self._user_queue is not None
        return self._user_queue.process(
            self._conn, self.config.user_batch_size, only, once=self._once
        )

    def _timed(self, kind: str, process: Callable[[], bool]) -> bool:
        """``process()`` (one batch); its duration goes to the observers when it did work."""
        started = time.monotonic()
        progressed = process()
        if progressed:
            seconds = time.monotonic() - started
            for observe in self._observers:
                observe(kind, seconds)
        return progressed

    def _after_batch(self) -> None:
        self.stats.batches += 1
        self._heartbeat()
        for hook in self._on_batch:
            hook(self.stats)

    def _wait(self) -> None:
        """Block until a NOTIFY, the poll interval or stop(), in short slices."""
        assert self._listener is not None
        deadline = time.monotonic() + self.config.poll_interval
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for _ in self._listener.notifies(timeout=min(left, 0.5), stop_after=1):
                return
            for hook in self._on_batch:
                hook(self.stats)

    def _heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_heartbeat < self.config.heartbeat_interval:
            return
        assert self._conn is not None
        s = self.stats
        self._conn.execute(
            q("heartbeat"),
            {
                "worker_id": self.config.worker_id,
                "items": s.items_encoded,
                "users": s.users_encoded,
                "batches": s.batches,
                "errors": s.errors,
                "model_id": self._models.model_id,
            },
        )
        self._conn.commit()
        self._last_heartbeat = now
