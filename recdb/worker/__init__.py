"""The encoding worker: claims queued items and users, encodes them, writes vectors back.

`Worker` (loop) is the loop: LISTEN, wait, heartbeat, reconnect. It runs batches through
`queue` (claim, commit, isolate poison rows), which calls `items` and `users` to encode
and write them; `model_sync` follows the active trained model and picks the user encoder
that serves; `config` holds WorkerConfig, WorkerStats and the errors that stop a worker;
`admin` requeues and unparks; `sql` loads the named queries. `runner` runs a worker in the
background or drains the queues with progress bars (what the loader, demo, eval and bench
use); `systemd` holds the unit file and sd_notify pings.
"""

from recdb.worker.admin import requeue_all_items, requeue_all_users, unpark
from recdb.worker.config import DimensionMismatch, ModelUnavailable, WorkerConfig, WorkerStats
from recdb.worker.items import flush_tiny, text_key
from recdb.worker.loop import Worker

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
