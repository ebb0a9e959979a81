"""The queue protocol: one batch = one transaction.

Claim queue rows (FOR UPDATE SKIP LOCKED), encode and write (the caller's function, which
also locks and deletes the rows it claimed), commit. A crash anywhere before the commit
leaves the rows queued for the next worker. A batch that fails is retried one row at a
time, so a poison row is found, counted and eventually parked while the others proceed.
A batch that could handle none of its rows (an app transaction holds them) reports no
progress, so the loop waits instead of spinning on them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from recdb.worker.config import ModelUnavailable, WorkerConfig, WorkerStats
from recdb.worker.sql import fetch, q

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Done:
    """What a batch did: the ids whose vectors it wrote, and how many claimed rows it
    finished (written or gone); 0 means it could not take any of them yet."""

    written: list[int]
    finished: int


# Encodes and writes a claimed batch inside its transaction.
Encode = Callable[[psycopg.Connection[Any], list[int]], Done]


@dataclass(frozen=True)
class QueueQueries:
    """One queue's named queries (sql/queries/worker.sql)."""

    kind: str  # "items" or "users", as log lines name them
    claim: str
    fail: str
    # Run with the written ids inside the batch transaction, and again once it committed.
    sweep: str | None = None


ITEMS = QueueQueries(
    "items",
    claim="claim_items",
    fail="fail_items",
    # Users are built from item vectors: the users of re-encoded items are queued in the
    # batch transaction (a crash right after the commit loses nothing), and once more
    # after it, for events on these items that committed while the batch ran (invisible
    # to the first sweep; a worker may have built those users from the old vectors).
    sweep="requeue_item_users",
)
USERS = QueueQueries("users", claim="claim_users", fail="fail_users")


class BatchQueue:
    """Runs batches of one queue; see the module docstring."""

    def __init__(
        self,
        queries: QueueQueries,
        encode: Encode,
        config: WorkerConfig,
        stats: WorkerStats,
        stopping: Callable[[], bool],
    ) -> None:
        self.queries = queries
        self.encode = encode
        self.config = config
        self.stats = stats
        self.stopping = stopping

    def process(
        self, conn: psycopg.Connection[Any], limit: int, only: list[int] | None, *, once: bool
    ) -> bool:
        """One batch; True when it finished any claimed row (progress was made)."""
        kind = self.queries.kind
        # once-mode (and targeted retries) ignore backoff timing so a drain terminates.
        params = {"limit": limit, "only": only, "ignore_backoff": only is not None or once}
        ids: list[int] = []
        try:
            conn.execute(q("batch_lock"))  # before any row lock (see recdb.activate_model)
            ids = fetch(conn, self.queries.claim, params)  # a claim selects the ids first
            if not ids:
                conn.rollback()
                return False
            done = self.encode(conn, ids)
            if self.queries.sweep and done.written:
                conn.execute(q(self.queries.sweep), {"ids": done.written})
            conn.commit()
            self.after_commit(conn, done.written)
            return done.finished > 0
        except (psycopg.OperationalError, ModelUnavailable):
            raise
        except Exception as exc:  # isolate the poison row(s), keep going
            conn.rollback()
            self.stats.errors += 1
            if only is not None and len(only) == 1:
                self.record_failure(conn, only, exc)
                return True
            log.warning("%s batch failed (%s); retrying its rows one by one", kind, exc)
            for one in ids:
                if self.stopping():
                    break
                self.process(conn, 1, [one], once=once)
            return True

    def after_commit(self, conn: psycopg.Connection[Any], written: list[int]) -> None:
        """The second sweep, on the committed batch (see ITEMS)."""
        if self.queries.sweep and written:
            conn.execute(q(self.queries.sweep), {"ids": written})
            conn.commit()

    def record_failure(self, conn: psycopg.Connection[Any], ids: list[int], exc: Exception) -> None:
        """Count an attempt on the rows (with backoff); the last allowed one parks them.
        A database error here (other than a lost connection) is logged, never raised:
        the rows stay queued and the loop goes on."""
        try:
            self._record_failure(conn, ids, exc)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as failure:
            conn.rollback()
            log.error("could not record the failure of %s %s: %s", self.queries.kind, ids, failure)

    def _record_failure(
        self, conn: psycopg.Connection[Any], ids: list[int], exc: Exception
    ) -> None:
        error = f"{type(exc).__name__}: {exc}".strip()
        parked = fetch(
            conn,
            self.queries.fail,
            {
                "ids": ids,
                "error": error,
                "backoff": self.config.backoff_seconds,
                "max_attempts": self.config.max_attempts,
            },
        )
        conn.commit()
        n_parked = sum(1 for is_parked in parked if is_parked)
        self.stats.parked += n_parked
        log.error(
            "%s %s failed (%s)%s",
            self.queries.kind[:-1],
            ids,
            error,
            "; parked" if n_parked else "; will retry with backoff",
        )
