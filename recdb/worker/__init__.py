"""The encoding worker: claims queued items and users, encodes them, writes vectors back.

`Worker` is the loop (LISTEN, wait, heartbeat, reconnect); `runner` runs one in the
background or drains the queues with progress bars (what the loader, demo, eval and
bench use); `systemd` holds the unit file and sd_notify pings.
"""

from recdb.worker.loop import (
    DimensionMismatch,
    ModelUnavailable,
    Worker,
    WorkerConfig,
    WorkerStats,
    flush_tiny,
    requeue_all_items,
    requeue_all_users,
    text_key,
    unpark,
)

__all__ = [
    "DimensionMismatch",
    "ModelUnavailable",
    "Worker",
    "WorkerConfig",
    "WorkerStats",
    "flush_tiny",
    "requeue_all_items",
    "requeue_all_users",
    "text_key",
    "unpark",
]
