"""The queue protocol: one batch = one transaction.

Claim queue rows (FOR UPDATE SKIP LOCKED), encode and write (the caller's function, which
also locks and deletes the rows it claimed), commit. A crash anywhere before the commit
leaves the rows queued for the next worker. A batch that fails is retried one row at a
time, so a poison row is found, counted and eventually parked while the others proceed.
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

# Encodes and writes a claimed batch inside its transaction; returns the ids it wrote.
Encode = Callable[[psycopg.Connection[Any], list[int]], list[int]]


@dataclass(frozen=True)
class QueueQueries:
    """One queue's named queries (sql/queries/worker.sql)."""

    kind: str  # "items" or "users", as log lines name them
    claim: str
    fail: str
    # Run with the written ids once the batch has committed.
    follow_up: str | None = None


ITEMS = QueueQueries(
    "items",
    claim="claim_items",
    fail="fail_items",
    # Events on these items committed while the batch ran were invisible to its
    # in-transaction requeue; a worker may have built those users from the old item
    # vectors. A second sweep, now that ours are visible, queues them again.
    follow_up="requeue_item_users",
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
        """One batch; True when any queue row was claimed."""
        kind = self.queries.kind
        # once-mode (and targeted retries) ignore backoff timing so a drain terminates.
        params = {"limit": limit, "only": only, "ignore_backoff": only is not None or once}
        ids: list[int] = []
        try:
            ids = fetch(conn, self.queries.claim, params)  # a claim selects the ids first
            if not ids:
                conn.rollback()
                return False
            written = self.encode(conn, ids)
            conn.commit()
            if self.queries.follow_up and written:
                conn.execute(q(self.queries.follow_up), {"ids": written})
                conn.commit()
            return True
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

    def record_failure(self, conn: psycopg.Connection[Any], ids: list[int], exc: Exception) -> None:
        """Count an attempt on the rows (with backoff); the last allowed one parks them."""
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
