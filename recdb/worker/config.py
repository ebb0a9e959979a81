"""What a worker is told (WorkerConfig), what it counts (WorkerStats), and the two errors
that stop it instead of parking rows."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

from recdb import config as defaults
from recdb.config import WORKER_USER_ENCODERS


@dataclass
class WorkerConfig:
    """Knobs of one worker process (the CLI fills them from options / RECDB_* vars)."""

    database_url: str | None = None
    batch_size: int = defaults.WORKER_BATCH_SIZE
    user_batch_size: int = defaults.WORKER_USER_BATCH_SIZE
    poll_interval: float = defaults.WORKER_POLL_INTERVAL_S
    device: str = "auto"
    # auto: the active trained model (recdb.models) when there is one, else mean.
    user_encoder: str = "auto"
    model: str | None = None
    max_attempts: int = defaults.WORKER_MAX_ATTEMPTS
    backoff_seconds: float = defaults.WORKER_BACKOFF_S
    max_history: int = defaults.WORKER_MAX_HISTORY
    item_cache: int = defaults.WORKER_ITEM_CACHE  # item vectors kept between batches; 0: off
    popularity_interval: float = defaults.WORKER_POPULARITY_INTERVAL_S
    maintenance_duty: float = defaults.WORKER_MAINTENANCE_DUTY
    heartbeat_interval: float = defaults.WORKER_HEARTBEAT_INTERVAL_S
    claim_timeout: float = defaults.WORKER_CLAIM_TIMEOUT_S
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    )

    def __post_init__(self) -> None:
        for name in ("batch_size", "user_batch_size", "max_attempts", "max_history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.item_cache < 0:
            raise ValueError(f"item_cache must be >= 0, got {self.item_cache}")
        if not 0.0 < self.maintenance_duty <= 1.0:
            raise ValueError(f"maintenance_duty must be in (0, 1], got {self.maintenance_duty}")
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {self.poll_interval}")
        if self.user_encoder not in WORKER_USER_ENCODERS:
            raise ValueError(
                f"unknown user encoder {self.user_encoder!r}; "
                f"valid: {', '.join(WORKER_USER_ENCODERS)}"
            )


@dataclass
class WorkerStats:
    items_encoded: int = 0
    users_encoded: int = 0
    item_vectors_cached: int = 0  # user batches' item vectors taken from the worker's cache
    item_vectors_read: int = 0  # ... and read from recdb.items
    batches: int = 0
    errors: int = 0
    parked: int = 0
    seconds: float = 0.0


class DimensionMismatch(RuntimeError):
    """The model's vectors do not fit the embedding columns fixed by the first migration."""


class ModelUnavailable(RuntimeError):
    """The active model cannot be served by this worker: stop, instead of parking every row."""
